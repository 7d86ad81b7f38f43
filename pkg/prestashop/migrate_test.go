package prestashop_test

import (
	"context"
	"database/sql"
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
	// sfsync's own action value was added to the module's ENUM, the others kept.
	if _, err := d.DB.Exec("INSERT INTO ps_shoppingfeed_task_order (action, id_order, date_add, date_upd) VALUES ('SFSYNC_WEBHOOK', 44, NOW(), NOW())"); err != nil {
		t.Fatalf("insert an SFSYNC_WEBHOOK task after migrate: %v", err)
	}
	var typ string
	if err := d.DB.QueryRow("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ps_shoppingfeed_task_order' AND COLUMN_NAME = 'action'").Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(typ, "enum('SYNC_STATUS','CHECK_TICKET_SYNC_STATUS','UPLOAD_INVOICE'") || !strings.HasSuffix(typ, ",'SFSYNC_WEBHOOK')") {
		t.Fatalf("action column %s", typ)
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
