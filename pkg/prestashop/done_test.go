package prestashop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// sfOrder is a shop with Shopping Feed enabled and one of its orders.
func sfOrder(t *testing.T) (*prestashop.Store, shopfixture.SFShop, uint32) {
	t.Helper()
	_, store, fx := testenv.Shop(t)
	sfShop, err := fx.EnableShoppingFeed(context.Background(), 1, "tok", "1001")
	must(t, err)
	o, err := fx.CreateSFOrder(context.Background(), sfShop, 11, "amazon")
	must(t, err)
	return store, sfShop, o
}

// A change read again after its update went out — a detector resuming
// behind its last batch, or from a broker that lost its store — must not
// make a task that would send the update a second time; a newer change
// still must.
func TestChangeReadAgainAfterItsUpdateWentOutMakesNoTask(t *testing.T) {
	ctx := context.Background()
	store, sfShop, o := sfOrder(t)
	var err error
	upsert := func(history uint64) map[uint32]uint64 {
		t.Helper()
		ids, err := store.UpsertSyncTasks(ctx, []prestashop.TaskChange{{OrderID: o, HistoryID: history, UpdateAt: time.Now().Add(-time.Second)}})
		must(t, err)
		return ids
	}
	pending := func() (prestashop.SyncTask, bool) {
		t.Helper()
		task, err := store.PendingTask(ctx, prestashop.ActionSyncStatus, o)
		if errors.Is(err, prestashop.ErrNotFound) {
			return task, false
		}
		must(t, err)
		return task, true
	}

	task := upsert(10)[o]
	if _, ok, err := store.ClaimTask(ctx, task, "me", time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if _, err := store.RecordSent(ctx, "me", "B1", "ship", "1001", sfShop.TokenID, []prestashop.SentTask{{TaskID: task, OrderID: o, Last: 10}}); err != nil {
		t.Fatal(err)
	}
	if ids := upsert(10); ids[o] != 0 {
		t.Fatalf("change 10 read again while its ticket is pending made task %d", ids[o])
	}
	if _, ok := pending(); ok {
		t.Fatal("a task to send change 10 again exists while its ticket is pending")
	}

	_, err = store.ApplyTicketResults(ctx, prestashop.TicketResults{BatchID: "B1", LogName: "sfsync:ticket", Session: "test",
		Outcomes: []prestashop.TicketOutcome{{TaskID: task, OrderID: o, Kind: prestashop.TicketDone, TicketID: "T1"}}})
	must(t, err)
	upsert(10)
	if _, ok := pending(); ok {
		t.Fatal("change 10 read again after its ticket succeeded made a task")
	}

	newer := upsert(11)[o]
	if got, ok := pending(); !ok || got.ID != newer || got.Last != 11 {
		t.Fatalf("newer change 11: task %+v (found %v), want task %d", got, ok, newer)
	}
	// An update found needless (DropTask) covers its change too.
	if _, ok, err := store.ClaimTask(ctx, newer, "me", time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	dropped, err := store.DropTask(ctx, prestashop.SyncTask{ID: newer, OrderID: o, Last: 11}, "me")
	must(t, err)
	if !dropped {
		t.Fatal("DropTask kept the task")
	}
	upsert(11)
	if _, ok := pending(); ok {
		t.Fatal("change 11 read again after its task was dropped made a task")
	}
}

// A failure that resolves after a newer update of its order succeeded is
// superseded: the merchant has nothing left to fix.
func TestFailureResolvedAfterANewerSuccessIsSuperseded(t *testing.T) {
	ctx := context.Background()
	store, _, o := sfOrder(t)
	var err error
	older, newer := checkTask(t, store, o, "B1"), checkTask(t, store, o, "B2")
	_, err = store.DB().Exec("UPDATE "+store.T("shoppingfeed_task_order")+" SET sfsync_history_last = CASE id_shoppingfeed_task_order WHEN ? THEN 10 ELSE 12 END WHERE id_order = ?", older, o)
	must(t, err)
	_, err = store.ApplyTicketResults(ctx, prestashop.TicketResults{BatchID: "B2", LogName: "sfsync:ticket", Session: "test",
		Outcomes: []prestashop.TicketOutcome{{TaskID: newer, OrderID: o, Kind: prestashop.TicketDone, TicketID: "T2"}}})
	must(t, err)
	_, err = store.ApplyTicketResults(ctx, prestashop.TicketResults{BatchID: "B1", LogName: "sfsync:ticket", Session: "test",
		Outcomes: []prestashop.TicketOutcome{{TaskID: older, OrderID: o, Kind: prestashop.TicketFailed, TicketID: "T1", Message: "refused", LogMsg: "refused"}}})
	must(t, err)
	var n int
	must(t, store.DB().QueryRow("SELECT COUNT(*) FROM "+store.T("shoppingfeed_task_order")+" WHERE id_order = ?", o).Scan(&n))
	if n != 0 {
		t.Fatalf("%d task rows left: the older failure is superseded by the newer success", n)
	}
	must(t, store.DB().QueryRow("SELECT COUNT(*) FROM "+store.T("shoppingfeed_processlogger")+" WHERE msg = 'refused'").Scan(&n))
	if n != 1 {
		t.Fatalf("%d process-log lines for the failure, want 1: it is still told", n)
	}
}

// Two batches of one order resolving at once, in two transactions, do not
// see each other; SupersedeFailures, run after each commit, settles it:
// a failure older than the order's done mark goes, a newer one stays.
func TestSupersedeFailuresAfterConcurrentResolutions(t *testing.T) {
	ctx := context.Background()
	store, _, o := sfOrder(t)
	var err error
	delivered := checkTask(t, store, o, "B2")
	_, err = store.DB().Exec("UPDATE "+store.T("shoppingfeed_task_order")+" SET sfsync_history_last = 12 WHERE id_shoppingfeed_task_order = ?", delivered)
	must(t, err)
	_, err = store.ApplyTicketResults(ctx, prestashop.TicketResults{BatchID: "B2", LogName: "sfsync:ticket", Session: "test",
		Outcomes: []prestashop.TicketOutcome{{TaskID: delivered, OrderID: o, Kind: prestashop.TicketDone, TicketID: "T2"}}})
	must(t, err)
	// Failures committed beside it: one older than the done change, one newer.
	for _, last := range []int{10, 14} {
		_, err = store.DB().Exec("INSERT INTO "+store.T("shoppingfeed_task_order")+" (action, id_order, batch_id, date_add, date_upd, sfsync_history_last, sfsync_failed_at, sfsync_error)"+
			" VALUES (?, ?, 'B1', NOW(), NOW(), ?, NOW(), 'refused')", prestashop.ActionCheckTicketStatus, o, last)
		must(t, err)
	}
	must(t, store.SupersedeFailures(ctx, []uint32{o}))
	var lasts []int
	rows, err := store.DB().Query("SELECT sfsync_history_last FROM "+store.T("shoppingfeed_task_order")+" WHERE id_order = ?", o)
	must(t, err)
	for rows.Next() {
		var l int
		must(t, rows.Scan(&l))
		lasts = append(lasts, l)
	}
	rows.Close()
	if len(lasts) != 1 || lasts[0] != 14 {
		t.Fatalf("failed rows left with changes %v, want only the newer one (14)", lasts)
	}
}

// A ship sent for an order that is Delivered by now leaves a pending task
// for the delivery, holding the same change (so the shipment is not seen
// again); a task a newer change reached while in flight stays pending with
// its first change moved past the one sent.
func TestRecordSentLeavesTheNextOperationPending(t *testing.T) {
	ctx := context.Background()
	store, sfShop, o := sfOrder(t)
	ids, err := store.UpsertSyncTasks(ctx, []prestashop.TaskChange{{OrderID: o, HistoryID: 10, UpdateAt: time.Now().Add(-time.Second)},
		{OrderID: o, HistoryID: 12, UpdateAt: time.Now().Add(-time.Second)}})
	must(t, err)
	task := ids[o]
	if _, ok, err := store.ClaimTask(ctx, task, "me", time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	follow, err := store.RecordSent(ctx, "me", "B1", "ship", "1001", sfShop.TokenID,
		[]prestashop.SentTask{{TaskID: task, OrderID: o, Last: 12, Then: prestashop.OpDeliver}})
	must(t, err)
	next, ok := follow[task]
	if !ok || next == task {
		t.Fatalf("follow-ups %v: want a new task for task %d", follow, task)
	}
	got, err := store.PendingTask(ctx, prestashop.ActionSyncStatus, o)
	must(t, err)
	if got.ID != next || got.First != 12 || got.Last != 12 || !got.Due() || got.Failed {
		t.Fatalf("pending task %+v, want task %d holding change 12, due", got, next)
	}

	// In flight when change 13 came: no follow-up, the task stays pending
	// with its first change past 12.
	if _, ok, err := store.ClaimTask(ctx, next, "me", time.Minute); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	_, err = store.UpsertSyncTasks(ctx, []prestashop.TaskChange{{OrderID: o, HistoryID: 13, UpdateAt: time.Now().Add(-time.Second)}})
	must(t, err)
	follow, err = store.RecordSent(ctx, "me", "B2", "deliver", "1001", sfShop.TokenID,
		[]prestashop.SentTask{{TaskID: next, OrderID: o, Last: 12, Then: prestashop.OpDeliver}})
	must(t, err)
	if len(follow) != 0 {
		t.Fatalf("follow-ups %v for a task a newer change reached", follow)
	}
	got, err = store.PendingTask(ctx, prestashop.ActionSyncStatus, o)
	must(t, err)
	if got.ID != next || got.First != 13 || got.Last != 13 {
		t.Fatalf("pending task %+v, want task %d holding change 13 from 13", got, next)
	}
}
