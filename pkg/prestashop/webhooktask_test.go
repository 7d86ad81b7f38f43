package prestashop_test

import (
	"context"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
)

// TestWebhookTaskLifeInItsOwnTable follows a webhook task and a Shopping
// Feed task of the same order, whose rows have the same id in their two
// tables, through every store call: each call reaches the right row, and
// the lists that cover both tables (stuck tasks, failures, counts,
// re-queue) tell them apart by task id.
func TestWebhookTaskLifeInItsOwnTable(t *testing.T) {
	ctx := context.Background()
	store, _, o := sfOrder(t)
	db := store.DB()
	due := []prestashop.TaskChange{{OrderID: o, HistoryID: 5, UpdateAt: time.Now().Add(-time.Hour)}}
	sfIDs, err := store.UpsertTasks(ctx, prestashop.ActionSyncStatus, due)
	must(t, err)
	hookIDs, err := store.UpsertTasks(ctx, prestashop.ActionWebhook, due)
	must(t, err)
	sfTask, hookTask := sfIDs[o], hookIDs[o]
	if hookTask != prestashop.WebhookTaskIDBase+sfTask {
		t.Fatalf("task ids: Shopping Feed %d, webhook %d; want the webhook's row to be the same row id above the base", sfTask, hookTask)
	}
	var n int
	must(t, db.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE action = 'SFSYNC_WEBHOOK'").Scan(&n))
	if n != 0 {
		t.Fatal("a webhook task went into the module's table")
	}

	// Claimed, renewed, an attempt counted, claimed again, failed: only the
	// webhook's row moves.
	if _, ok, err := store.ClaimTask(ctx, hookTask, "me", time.Minute); err != nil || !ok {
		t.Fatalf("claim the webhook task: %v %v", ok, err)
	}
	must(t, store.RenewClaims(ctx, []uint64{hookTask}, "me", time.Minute))
	if n, err := store.CountAttempt(ctx, hookTask, "me", "HTTP 503"); err != nil || n != 1 {
		t.Fatalf("count attempt: %d %v", n, err)
	}
	if _, ok, err := store.ClaimTask(ctx, hookTask, "me", time.Minute); err != nil || !ok {
		t.Fatalf("claim again: %v %v", ok, err)
	}
	must(t, store.FailTask(ctx, hookTask, "me", "webhook", "HTTP 422"))
	sf, err := store.PendingTask(ctx, prestashop.ActionSyncStatus, o)
	must(t, err)
	if sf.ID != sfTask || sf.Attempts != 0 || sf.Failed || sf.ClaimedBy != "" {
		t.Fatalf("the Shopping Feed task changed with the webhook's: %+v", sf)
	}
	hook, err := store.PendingTask(ctx, prestashop.ActionWebhook, o)
	must(t, err)
	if hook.ID != hookTask || hook.Attempts != 1 || !hook.Failed {
		t.Fatalf("webhook task: %+v", hook)
	}

	// The lists over both tables.
	stuck, err := store.StuckTasks(ctx, -time.Hour, 10)
	must(t, err)
	if len(stuck) != 1 || stuck[0].TaskID != sfTask {
		t.Fatalf("stuck tasks: %+v, want the Shopping Feed task only (the webhook's failed)", stuck)
	}
	shops, err := store.FailedShops(ctx)
	must(t, err)
	fs, total, err := store.Failures(ctx, 1, 10)
	must(t, err)
	if len(shops) != 1 || total != 1 || len(fs) != 1 || fs[0].TaskID != hookTask || fs[0].Action != prestashop.ActionWebhook || fs[0].Error != "HTTP 422" {
		t.Fatalf("failures: shops %v, %d %+v", shops, total, fs)
	}
	counts, err := store.TicketCounts(ctx)
	must(t, err)
	if counts.Unreported[1] != 1 {
		t.Fatalf("unreported failures: %v", counts.Unreported)
	}
	if marked, err := store.MarkReported(ctx, fs, true); err != nil || marked != 1 {
		t.Fatalf("mark reported: %d %v", marked, err)
	}
	recent, err := store.RecentFailures(ctx, 10)
	must(t, err)
	if len(recent) != 1 || recent[0].OrderID != o {
		t.Fatalf("recent failures: %+v", recent)
	}
	tc, err := store.TaskCounts(ctx)
	must(t, err)
	if len(tc) != 2 || tc[0].Action != prestashop.ActionWebhook || !tc[0].Failed || tc[1].Action != prestashop.ActionSyncStatus || tc[1].Failed {
		t.Fatalf("task counts: %+v", tc)
	}
	req, err := store.RequeueFailed(ctx, o)
	must(t, err)
	if len(req) != 1 || req[0].Action != prestashop.ActionWebhook {
		t.Fatalf("re-queued: %+v", req)
	}
	stuck, err = store.StuckTasks(ctx, -time.Hour, 10)
	must(t, err)
	if len(stuck) != 2 || stuck[0].TaskID+stuck[1].TaskID != sfTask+hookTask {
		t.Fatalf("stuck tasks after re-queue: %+v", stuck)
	}
	must(t, store.TouchTasks(ctx, []uint64{sfTask, hookTask}))

	// Done: the webhook's row goes, with its mark; the other stays.
	claimed, ok, err := store.ClaimTask(ctx, hookTask, "me", time.Minute)
	if err != nil || !ok || claimed.ID != hookTask {
		t.Fatalf("claim the re-queued webhook task: %+v %v %v", claimed, ok, err)
	}
	if dropped, err := store.DropTask(ctx, claimed, "me"); err != nil || !dropped {
		t.Fatalf("drop: %v %v", dropped, err)
	}
	must(t, db.QueryRow("SELECT (SELECT COUNT(*) FROM ps_sfsync_webhook_task) * 10 + (SELECT COUNT(*) FROM ps_shoppingfeed_task_order)").Scan(&n))
	if n != 1 {
		t.Fatalf("rows left: webhook×10 + Shopping Feed = %d, want 1", n)
	}
	must(t, db.QueryRow("SELECT COUNT(*) FROM ps_sfsync_task_done WHERE id_order = ? AND action = 'SFSYNC_WEBHOOK' AND id_order_history = 5", o).Scan(&n))
	if n != 1 {
		t.Fatal("the webhook task's done mark is missing")
	}
}
