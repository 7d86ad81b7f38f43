package prestashop_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// The module's tables are utf8 (3-byte) and the tests run in strict mode:
// the raw texts below are refused there, which is what makes the tests
// after this one able to fail.
func TestModuleTablesRefuseRawHostileText(t *testing.T) {
	store, _, o := sfOrder(t)
	db := store.DB()
	_, err := store.UpsertSyncTasks(context.Background(), []prestashop.TaskChange{{OrderID: o, HistoryID: 1, UpdateAt: time.Now()}})
	must(t, err)
	for name, v := range map[string]string{"emoji": "colis 📦", "latin-1": "r\xe9ponse"} {
		if _, err := db.Exec("UPDATE ps_shoppingfeed_task_order SET sfsync_error = ? WHERE id_order = ?", v, o); err == nil {
			t.Errorf("%s: the module's utf8 table stored %q in strict mode", name, v)
		}
		if _, err := db.Exec("INSERT INTO ps_shoppingfeed_processlogger (name, msg, level, object_name, id_session, date_add) VALUES ('x', ?, 'error', '', 's', NOW())", v); err == nil {
			t.Errorf("%s: the module's utf8 process log stored %q in strict mode", name, v)
		}
	}
	if _, err := db.Exec("INSERT INTO ps_shoppingfeed_processlogger (name, msg, level, object_name, id_session, date_add) VALUES ('x', 'm', 'error', NULL, 's', NOW())"); err == nil {
		t.Error("the process log stored a NULL object_name: the fixture is not the module's table")
	}
}

// A failure whose reason holds a 4-byte character and bytes that are not
// UTF-8 (a Latin-1 error page) is recorded, so the outcome is never lost
// to a refused write.
func TestFailTaskStoresHostileReason(t *testing.T) {
	ctx := context.Background()
	store, sfShop, o := sfOrder(t)
	ids, err := store.UpsertSyncTasks(ctx, []prestashop.TaskChange{{OrderID: o, HistoryID: 1, UpdateAt: time.Now().Add(-time.Second)}})
	must(t, err)
	task := ids[o]
	if _, ok, err := store.ClaimTask(ctx, task, "me", time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	reason := "HTTP 422: r\xe9ponse \xabinvalide\xbb 📦 " + strings.Repeat("é", 5000)
	must(t, store.FailTask(ctx, task, "me", "ship", reason))
	fails, n, err := store.Failures(ctx, sfShop.ShopID, 10)
	must(t, err)
	if n != 1 || len(fails) != 1 {
		t.Fatalf("%d failures, want 1", n)
	}
	got := fails[0].Error
	if !utf8.ValidString(got) || !strings.HasPrefix(got, "HTTP 422: r\uFFFDponse \uFFFDinvalide\uFFFD \uFFFD é") {
		t.Fatalf("stored reason %.60q", got)
	}
	if utf8.RuneCountInString(got) > 2000 {
		t.Fatalf("stored reason has %d characters, more than the cap", utf8.RuneCountInString(got))
	}
}

// A process-log line about no order (the conflict guard's, a shop's
// problem) reaches the module's table, whose object_name is NOT NULL; a
// message with a 4-byte character and Latin-1 bytes is stored, and a text
// longer than its column is cut on a character.
func TestProcessLogLineWithoutObject(t *testing.T) {
	ctx := context.Background()
	store, _, _ := sfOrder(t)
	db := store.DB()
	must(t, store.ProcessLog(ctx, prestashop.LogEntry{Name: "sfsync:detector", Msg: "sending blocked: 📦 r\xe9ponse", Level: prestashop.LevelError, Session: strings.Repeat("é", 300)}))
	must(t, store.ProcessLog(ctx, prestashop.LogEntry{Name: "sfsync:detector", Msg: "shop 1: no token", Level: prestashop.LevelError, ObjectName: "Shop", ObjectID: 1, Session: "s"}))
	rows, err := db.Query("SELECT msg, object_name, object_id, id_session FROM ps_shoppingfeed_processlogger WHERE name = 'sfsync:detector' ORDER BY id_shoppingfeed_processlogger")
	must(t, err)
	defer rows.Close()
	type line struct {
		msg, object, session string
		id                   sql.NullInt64
	}
	var got []line
	for rows.Next() {
		var l line
		must(t, rows.Scan(&l.msg, &l.object, &l.id, &l.session))
		got = append(got, l)
	}
	must(t, rows.Err())
	if len(got) != 2 {
		t.Fatalf("%d lines, want 2", len(got))
	}
	if got[0].object != "" || got[0].id.Valid {
		t.Errorf("line without object: object %q id %v", got[0].object, got[0].id)
	}
	if got[0].msg != "sending blocked: \uFFFD r\uFFFDponse" {
		t.Errorf("message stored as %q", got[0].msg)
	}
	if got[0].session != strings.Repeat("é", 255) {
		t.Errorf("session of %d characters stored, want the first 255", utf8.RuneCountInString(got[0].session))
	}
	if got[1].object != "Shop" || got[1].id.Int64 != 1 {
		t.Errorf("shop line: object %q id %v", got[1].object, got[1].id)
	}
}
