package prestashop_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// TestTakeTurnOnePerPeriod: of every process asking within a period, one
// takes the turn.
func TestTakeTurnOnePerPeriod(t *testing.T) {
	ctx := context.Background()
	db, store, _ := testenv.Shop(t)
	other := prestashop.New(db.DB, "ps_")
	for i, tc := range []struct {
		store *prestashop.Store
		want  bool
	}{{store, true}, {other, false}, {store, false}} {
		got, err := tc.store.TakeTurn(ctx, "test_turn", time.Hour)
		if err != nil || got != tc.want {
			t.Fatalf("ask %d: turn %v (%v), want %v", i+1, got, err, tc.want)
		}
	}
	if _, err := db.DB.Exec("UPDATE ps_sfsync_meta SET date_upd = NOW() - INTERVAL 2 HOUR WHERE name = 'test_turn'"); err != nil {
		t.Fatal(err)
	}
	if got, err := other.TakeTurn(ctx, "test_turn", time.Hour); err != nil || !got {
		t.Fatalf("after the period: turn %v (%v), want true", got, err)
	}
}

// TestCheckSchemaSeesWebhookTasksLeftInTheModulesTable: rows a module
// reset blanked (to the empty string) once the ENUM is the module's again
// are still webhook tasks to move, and Migrate moves them.
func TestCheckSchemaSeesWebhookTasksLeftInTheModulesTable(t *testing.T) {
	ctx := context.Background()
	db, store, _ := testenv.Shop(t)
	conn, err := db.DB.Conn(ctx)
	must(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "SET SESSION sql_mode = ''")
	must(t, err)
	_, err = conn.ExecContext(ctx, "INSERT INTO ps_shoppingfeed_task_order (action, id_order, update_at, date_add, date_upd, sfsync_history_last) VALUES ('SFSYNC_WEBHOOK', 7, NOW(), NOW(), NOW(), 70)")
	must(t, err)
	st, err := store.CheckSchema(ctx)
	must(t, err)
	if !strings.Contains(strings.Join(st.Missing, ", "), "the move of 1 webhook tasks") {
		t.Fatalf("CheckSchema: %v", st.Missing)
	}
	must(t, store.Migrate(ctx))
	task, err := store.PendingTask(ctx, prestashop.ActionWebhook, 7)
	must(t, err)
	if task.Last != 70 || task.ID < prestashop.WebhookTaskIDBase {
		t.Fatalf("moved task: %+v", task)
	}
	if st, err := store.CheckSchema(ctx); err != nil || len(st.Missing) != 0 {
		t.Fatalf("CheckSchema after migrate: %v (%v)", st.Missing, err)
	}
}
