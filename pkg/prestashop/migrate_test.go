package prestashop_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func columns(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	sort.Strings(cols)
	return cols
}

// migrateConcurrently runs Migrate from 4 separate pools, as 4 processes
// starting at once would, then once more.
func migrateConcurrently(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	var g errgroup.Group
	for range 4 {
		g.Go(func() error {
			db, err := sql.Open("mysql", dsn)
			if err != nil {
				return err
			}
			defer db.Close()
			return prestashop.New(db, "ps_").Migrate(ctx)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("concurrent migrate: %v", err)
	}
}

func TestMigrateEmptySchemaConcurrentAndIdempotent(t *testing.T) {
	ctx := context.Background()
	d := testenv.MySQL(t)
	if err := shopfixture.InstallCore(ctx, d.DB, "ps_"); err != nil {
		t.Fatal(err)
	}
	migrateConcurrently(t, d.DSN)
	first := columns(t, d.DB, "ps_shoppingfeed_task_order")
	store := prestashop.New(d.DB, "ps_")
	if err := store.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if got := columns(t, d.DB, "ps_shoppingfeed_task_order"); len(got) != len(first) {
		t.Fatalf("second run changed columns: %v -> %v", first, got)
	}
	st, err := store.CheckSchema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Missing) != 0 || st.Version != prestashop.SchemaVersion {
		t.Fatalf("schema after migrate: %+v", st)
	}
}

func TestMigrateOverOfficialModuleTables(t *testing.T) {
	ctx := context.Background()
	d := testenv.MySQL(t)
	if err := shopfixture.InstallCore(ctx, d.DB, "ps_"); err != nil {
		t.Fatal(err)
	}
	if err := shopfixture.InstallModuleTables(ctx, d.DB, "ps_"); err != nil {
		t.Fatal(err)
	}
	// A task the PHP module queued before the switch.
	if _, err := d.DB.Exec("INSERT INTO ps_shoppingfeed_task_order (action, id_order, update_at, date_add, date_upd) VALUES ('SYNC_STATUS', 42, NOW(), NOW(), NOW())"); err != nil {
		t.Fatal(err)
	}
	before := columns(t, d.DB, "ps_shoppingfeed_task_order")
	st, err := prestashop.New(d.DB, "ps_").CheckSchema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Missing) == 0 {
		t.Fatal("CheckSchema found nothing missing on the module's bare tables")
	}
	migrateConcurrently(t, d.DSN)
	after := columns(t, d.DB, "ps_shoppingfeed_task_order")
	if len(after) <= len(before) {
		t.Fatalf("no columns added: %v", after)
	}
	// The module's own insert, without sfsync's columns, still works, and the
	// task queued before is intact.
	if _, err := d.DB.Exec("INSERT INTO ps_shoppingfeed_task_order (action, id_order, ticket_number, batch_id, update_at, date_add, date_upd) VALUES ('CHECK_TICKET_SYNC_STATUS', 43, 't1', 'b1', NULL, NOW(), NOW())"); err != nil {
		t.Fatalf("module-style insert after migrate: %v", err)
	}
	// The module's ENUM is left as the module declares it.
	if got := actionType(t, d.DB); got != "enum("+prestashop.ModuleActions+")" {
		t.Fatalf("action column %s", got)
	}
	var n, attempts int
	if err := d.DB.QueryRow("SELECT COUNT(*), SUM(sfsync_attempts) FROM ps_shoppingfeed_task_order WHERE id_order IN (42, 43)").Scan(&n, &attempts); err != nil {
		t.Fatal(err)
	}
	if n != 2 || attempts != 0 {
		t.Fatalf("rows = %d, attempts = %d", n, attempts)
	}
	// Core tables are untouched: orders has exactly the fixture's columns.
	if cols := columns(t, d.DB, "ps_orders"); contains(cols, "sfsync_attempts") {
		t.Fatal("migrate touched a core table")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func actionType(t *testing.T, db *sql.DB) string {
	t.Helper()
	var typ string
	if err := db.QueryRow("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ps_shoppingfeed_task_order' AND COLUMN_NAME = 'action'").Scan(&typ); err != nil {
		t.Fatal(err)
	}
	return typ
}

// TestMigrateUndoesTheWebhookEnumValue: a shop migrated by schema version 1
// has SFSYNC_WEBHOOK in the module's ENUM and webhook tasks in the module's
// table (pending, claimed, failed), and one a module reset blanked. Migrate
// moves them all, every column kept, and gives the module its ENUM back, so
// that the module's own reset then succeeds in strict mode.
func TestMigrateUndoesTheWebhookEnumValue(t *testing.T) {
	ctx := context.Background()
	d := testenv.MySQL(t)
	must(t, shopfixture.InstallCore(ctx, d.DB, "ps_"))
	must(t, shopfixture.InstallModuleTables(ctx, d.DB, "ps_"))
	store := prestashop.New(d.DB, "ps_")
	must(t, store.Migrate(ctx))
	// Schema version 1, as it was.
	for _, q := range []string{
		"ALTER TABLE ps_shoppingfeed_task_order MODIFY COLUMN action ENUM(" + prestashop.ModuleActions + ",'SFSYNC_WEBHOOK') NOT NULL",
		"UPDATE ps_sfsync_meta SET value = '1' WHERE name = 'schema_version'",
		`INSERT INTO ps_shoppingfeed_task_order (action, id_order, update_at, date_add, date_upd, sfsync_history_first, sfsync_history_last, sfsync_operation)
		 VALUES ('SYNC_STATUS', 1, NOW(), NOW(), NOW(), 10, 10, NULL),
		        ('SFSYNC_WEBHOOK', 1, NOW(), NOW(), NOW(), 10, 11, NULL),
		        ('SFSYNC_WEBHOOK', 2, NOW(), NOW(), NOW(), 20, 20, NULL),
		        ('CHECK_TICKET_SYNC_STATUS', 3, NULL, NOW(), NOW(), 30, 30, 'ship')`,
		"UPDATE ps_shoppingfeed_task_order SET sfsync_claim_owner = 'sender-1', sfsync_claim_until = NOW(3) + INTERVAL 1 MINUTE WHERE id_order = 2",
		`INSERT INTO ps_shoppingfeed_task_order (action, id_order, date_add, date_upd, sfsync_history_last, sfsync_operation, sfsync_failed_at, sfsync_error, sfsync_attempts)
		 VALUES ('SFSYNC_WEBHOOK', 4, NOW(), NOW(), 40, 'webhook', NOW(), 'HTTP 422: refusé', 3)`,
	} {
		if _, err := d.DB.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// A row a module reset outside strict mode blanked (action '').
	conn, err := d.DB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = ''"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO ps_shoppingfeed_task_order (action, id_order, update_at, date_add, date_upd, sfsync_history_last) VALUES ('NO_SUCH_ACTION', 5, NOW(), NOW(), NOW(), 50)"); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	st, err := store.CheckSchema(ctx)
	must(t, err)
	if !strings.Contains(strings.Join(st.Missing, ", "), "the module's own values of ps_shoppingfeed_task_order.action") {
		t.Fatalf("CheckSchema on schema version 1: %v", st.Missing)
	}
	migrateConcurrently(t, d.DSN)
	if got := actionType(t, d.DB); got != "enum("+prestashop.ModuleActions+")" {
		t.Fatalf("action column after migrate: %s", got)
	}
	st, err = store.CheckSchema(ctx)
	if err != nil || len(st.Missing) != 0 || st.Version != prestashop.SchemaVersion {
		t.Fatalf("CheckSchema after migrate: %+v (%v)", st, err)
	}
	var left []string
	rows, err := d.DB.Query("SELECT CONCAT(action, ':', id_order) FROM ps_shoppingfeed_task_order ORDER BY id_order")
	must(t, err)
	for rows.Next() {
		var r string
		must(t, rows.Scan(&r))
		left = append(left, r)
	}
	rows.Close()
	if strings.Join(left, " ") != "SYNC_STATUS:1 CHECK_TICKET_SYNC_STATUS:3" {
		t.Fatalf("the module's table holds %v, want only Shopping Feed's tasks", left)
	}
	type hook struct {
		action, owner, errMsg string
		order, last, attempts int
		failed                bool
	}
	var got []hook
	rows, err = d.DB.Query("SELECT action, id_order, COALESCE(sfsync_history_last, 0), COALESCE(sfsync_claim_owner, ''), sfsync_attempts," +
		" sfsync_failed_at IS NOT NULL, COALESCE(sfsync_error, '') FROM ps_sfsync_webhook_task ORDER BY id_order")
	must(t, err)
	for rows.Next() {
		var h hook
		must(t, rows.Scan(&h.action, &h.order, &h.last, &h.owner, &h.attempts, &h.failed, &h.errMsg))
		got = append(got, h)
	}
	rows.Close()
	want := []hook{
		{action: "SFSYNC_WEBHOOK", order: 1, last: 11},
		{action: "SFSYNC_WEBHOOK", order: 2, last: 20, owner: "sender-1"},
		{action: "SFSYNC_WEBHOOK", order: 4, last: 40, attempts: 3, failed: true, errMsg: "HTTP 422: refusé"},
		{action: "SFSYNC_WEBHOOK", order: 5, last: 50},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sfsync_webhook_task:\n got %+v\nwant %+v", got, want)
	}
	// The store finds them there, under task ids above the module's.
	task, err := store.PendingTask(ctx, prestashop.ActionWebhook, 1)
	must(t, err)
	if task.ID < prestashop.WebhookTaskIDBase || task.Last != 11 {
		t.Fatalf("webhook task of order 1: %+v", task)
	}
	// The module's own reset now succeeds, in strict mode.
	if _, err := d.DB.Exec("ALTER TABLE ps_shoppingfeed_task_order MODIFY action  ENUM(" + prestashop.ModuleActions + ") NOT NULL"); err != nil {
		t.Fatalf("the module's reset of action: %v", err)
	}
}
