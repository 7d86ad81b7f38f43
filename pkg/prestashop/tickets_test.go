package prestashop_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// checkTask inserts a CHECK_TICKET_SYNC_STATUS task of batch for the order.
func checkTask(t *testing.T, store *prestashop.Store, orderID uint32, batch string) uint64 {
	t.Helper()
	res, err := store.DB().Exec("INSERT INTO "+store.T("shoppingfeed_task_order")+" (action, id_order, batch_id, date_add, date_upd, sfsync_operation, sfsync_store_id)"+
		" VALUES (?, ?, ?, NOW(), NOW(), 'ship', '1001')", prestashop.ActionCheckTicketStatus, orderID, batch)
	must(t, err)
	id, _ := res.LastInsertId()
	return uint64(id)
}

func TestApplyTicketResultsResolvesEachTaskOnce(t *testing.T) {
	ctx := context.Background()
	_, store, fx := testenv.Shop(t)
	sfShop, err := fx.EnableShoppingFeed(ctx, 1, "tok", "1001")
	must(t, err)
	o1, err := fx.CreateSFOrder(ctx, sfShop, 11, "amazon")
	must(t, err)
	o2, err := fx.CreateSFOrder(ctx, sfShop, 12, "amazon")
	must(t, err)
	o3, err := fx.CreateSFOrder(ctx, sfShop, 13, "amazon")
	must(t, err)
	t1, t2, t3 := checkTask(t, store, o1, "B1"), checkTask(t, store, o2, "B1"), checkTask(t, store, o3, "B1")
	// A second task of o3 in the same batch, as the sender leaves when a
	// newer change reached the task it sent.
	t3b := checkTask(t, store, o3, "B1")

	tasks, err := store.BatchTasks(ctx, "B1")
	must(t, err)
	if len(tasks) != 4 || tasks[0].OrderID != o1 || tasks[0].SFOrderID != "11" || tasks[0].Channel != "amazon" || tasks[0].StoreID != "1001" || tasks[0].ShopID != 1 {
		t.Fatalf("batch tasks %+v", tasks)
	}
	res := prestashop.TicketResults{BatchID: "B1", LogName: "sfsync:ticket", Session: "test", Outcomes: []prestashop.TicketOutcome{
		{TaskID: t1, OrderID: o1, Kind: prestashop.TicketDone, TicketID: "T1", LogMsg: "ok"},
		{TaskID: t2, OrderID: o2, Kind: prestashop.TicketFailed, TicketID: "T2", Message: "refused", LogMsg: "refused"},
		{TaskID: t3, OrderID: o3, Kind: prestashop.TicketPending, TicketID: "T3"},
		{TaskID: t3b, OrderID: o3, Kind: prestashop.TicketPending, TicketID: "T3"},
	}}
	// Both failed tasks of o4 name one ticket: one gets the number, and the
	// check still goes through.
	o4, err := fx.CreateSFOrder(ctx, sfShop, 14, "amazon")
	must(t, err)
	t4, t4b := checkTask(t, store, o4, "B1"), checkTask(t, store, o4, "B1")
	res.Outcomes = append(res.Outcomes,
		prestashop.TicketOutcome{TaskID: t4, OrderID: o4, Kind: prestashop.TicketFailed, TicketID: "T4", Message: "no"},
		prestashop.TicketOutcome{TaskID: t4b, OrderID: o4, Kind: prestashop.TicketFailed, TicketID: "T4", Message: "no"})
	applied, err := store.ApplyTicketResults(ctx, res)
	must(t, err)
	if len(applied) != 6 {
		t.Fatalf("applied %d outcomes, want 6", len(applied))
	}
	again, err := store.ApplyTicketResults(ctx, res)
	must(t, err)
	if len(again) != 2 || again[0].TaskID != t3 || again[1].TaskID != t3b {
		t.Fatalf("second apply %+v: only the pending tasks are still live", again)
	}
	var n int
	must(t, store.DB().QueryRow("SELECT COUNT(*) FROM "+store.T("shoppingfeed_processlogger")+" WHERE name = 'sfsync:ticket'").Scan(&n))
	if n != 2 {
		t.Fatalf("%d process-log lines, want 2 (one done, one failed; o4's failures have no log message)", n)
	}
	for ticket, want := range map[string]int{"T3": 0, "T4": 1} {
		var numbered int
		must(t, store.DB().QueryRow("SELECT COUNT(*) FROM "+store.T("shoppingfeed_task_order")+" WHERE ticket_number = ?", ticket).Scan(&numbered))
		if numbered != want {
			t.Fatalf("%d tasks numbered %s, want %d (pending tasks are not numbered)", numbered, ticket, want)
		}
	}
	shops, err := store.FailedShops(ctx)
	must(t, err)
	if len(shops) != 1 || shops[0] != 1 {
		t.Fatalf("failed shops %v", shops)
	}
	fs, total, err := store.Failures(ctx, 1, 10)
	must(t, err)
	if total != 3 || len(fs) != 3 || fs[0].OrderID != o2 || fs[0].Error != "refused" || fs[0].TicketNumber != "T2" ||
		fs[0].MarketplaceRef != "MP-12" || fs[0].StateName != "Payment accepted" || fs[0].Operation != "ship" {
		t.Fatalf("failures %+v (total %d)", fs, total)
	}
	counts, err := store.TicketCounts(ctx)
	must(t, err)
	if counts.Pending[1] != 2 || counts.Unreported[1] != 3 {
		t.Fatalf("counts %+v", counts)
	}
}

func TestMarkReportedLeavesAFailureThatCameBack(t *testing.T) {
	ctx := context.Background()
	_, store, fx := testenv.Shop(t)
	sfShop, err := fx.EnableShoppingFeed(ctx, 1, "tok", "1001")
	must(t, err)
	o1, err := fx.CreateSFOrder(ctx, sfShop, 21, "amazon")
	must(t, err)
	o2, err := fx.CreateSFOrder(ctx, sfShop, 22, "amazon")
	must(t, err)
	for _, o := range []uint32{o1, o2} {
		_, err := store.DB().Exec("INSERT INTO "+store.T("shoppingfeed_task_order")+" (action, id_order, date_add, date_upd, sfsync_failed_at, sfsync_error)"+
			" VALUES ('SYNC_STATUS', ?, NOW(), NOW(), NOW() - INTERVAL 1 HOUR, 'x')", o)
		must(t, err)
	}
	fs, _, err := store.Failures(ctx, 1, 10)
	must(t, err)
	// o2 is re-queued and fails again before the report is marked.
	_, err = store.DB().Exec("UPDATE "+store.T("shoppingfeed_task_order")+" SET sfsync_failed_at = NOW() WHERE id_order = ?", o2)
	must(t, err)
	n, err := store.MarkReported(ctx, fs, true)
	must(t, err)
	if n != 1 {
		t.Fatalf("marked %d, want 1", n)
	}
	left, _, err := store.Failures(ctx, 1, 10)
	must(t, err)
	if len(left) != 1 || left[0].OrderID != o2 {
		t.Fatalf("left for the next report: %+v", left)
	}
	// The mailed failure's order is flagged as the module flags the orders
	// it mailed; the one left for the next report is not.
	for o, want := range map[uint32]int{o1: 1, o2: 0} {
		var got sql.NullInt64
		must(t, store.DB().QueryRow("SELECT failed_ticket FROM "+store.T("shoppingfeed_order")+" WHERE id_order = ?", o).Scan(&got))
		if int(got.Int64) != want {
			t.Fatalf("order %d: failed_ticket %v, want %d", o, got, want)
		}
	}
}

// A module version whose shoppingfeed_order has no failed_ticket column:
// failures are marked reported all the same.
func TestMarkReportedWithoutFailedTicketColumn(t *testing.T) {
	ctx := context.Background()
	db, _, fx := testenv.Shop(t)
	sfShop, err := fx.EnableShoppingFeed(ctx, 1, "tok", "1001")
	must(t, err)
	o, err := fx.CreateSFOrder(ctx, sfShop, 31, "amazon")
	must(t, err)
	_, err = db.DB.Exec("ALTER TABLE ps_shoppingfeed_order DROP COLUMN failed_ticket")
	must(t, err)
	store := prestashop.New(db.DB, "ps_")
	_, err = db.DB.Exec("INSERT INTO ps_shoppingfeed_task_order (action, id_order, date_add, date_upd, sfsync_failed_at, sfsync_error)"+
		" VALUES ('SYNC_STATUS', ?, NOW(), NOW(), NOW(), 'x')", o)
	must(t, err)
	fs, _, err := store.Failures(ctx, 1, 10)
	must(t, err)
	if n, err := store.MarkReported(ctx, fs, true); err != nil || n != 1 {
		t.Fatalf("marked %d: %v", n, err)
	}
}

func TestTryLockIsExclusive(t *testing.T) {
	ctx := context.Background()
	_, store, _ := testenv.Shop(t)
	release, ok, err := store.TryLock(ctx, "report.1")
	must(t, err)
	if !ok {
		t.Fatal("first TryLock failed")
	}
	if _, ok2, err := store.TryLock(ctx, "report.1"); err != nil || ok2 {
		t.Fatalf("second TryLock = %v, %v; want not taken", ok2, err)
	}
	other, ok3, err := store.TryLock(ctx, "report.2")
	must(t, err)
	if !ok3 {
		t.Fatal("another name is another lock")
	}
	other()
	release()
	again, ok4, err := store.TryLock(ctx, "report.1")
	must(t, err)
	if !ok4 {
		t.Fatal("TryLock after release failed")
	}
	again()
}
