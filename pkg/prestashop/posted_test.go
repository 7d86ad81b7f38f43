package prestashop_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// The intent before a POST is all or nothing under live claims, the batch
// id kept after it comes back with the claimed task, and a refused POST
// leaves nothing to find out.
func TestIntentLifecycle(t *testing.T) {
	ctx := context.Background()
	_, store, fx := testenv.Shop(t)
	sfShop, err := fx.EnableShoppingFeed(ctx, 1, "tok", "1001")
	must(t, err)
	var tasks []uint64
	for i := range 2 {
		o, err := fx.CreateSFOrder(ctx, sfShop, int64(21+i), "amazon")
		must(t, err)
		ids, err := store.UpsertSyncTasks(ctx, []prestashop.TaskChange{{OrderID: o, HistoryID: uint64(10 + i), UpdateAt: time.Now().Add(-time.Second)}})
		must(t, err)
		if _, ok, err := store.ClaimTask(ctx, ids[o], "me", time.Minute); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		tasks = append(tasks, ids[o])
	}
	claim := func(id uint64) prestashop.SyncTask {
		t.Helper()
		must(t, store.ReleaseTask(ctx, id, "me", ""))
		task, ok, err := store.ClaimTask(ctx, id, "me", time.Minute)
		if err != nil || !ok {
			t.Fatalf("claim again: %v %v", ok, err)
		}
		return task
	}

	// Another sender took the second claim: nothing is marked.
	_, err = store.DB().ExecContext(ctx, "UPDATE ps_shoppingfeed_task_order SET sfsync_claim_owner = 'other' WHERE id_shoppingfeed_task_order = ?", tasks[1])
	must(t, err)
	if err := store.MarkPosted(ctx, "me", "cancel", tasks, time.Minute); !errors.Is(err, prestashop.ErrClaimLost) {
		t.Fatalf("MarkPosted with a claim lost: %v, want ErrClaimLost", err)
	}
	if task := claim(tasks[0]); task.PostedOp != "" {
		t.Fatalf("a lost claim in the batch still marked the other task: %+v", task)
	}

	must(t, store.MarkPosted(ctx, "me", "cancel", tasks[:1], time.Minute))
	if task := claim(tasks[0]); task.PostedOp != "cancel" || task.PostedBatch != "" || task.PostedAge > time.Minute {
		t.Fatalf("after MarkPosted: %+v", task)
	}
	must(t, store.MarkPostedBatch(ctx, "me", "B7", "1001", sfShop.TokenID, tasks[:1]))
	if task := claim(tasks[0]); task.PostedBatch != "B7" || task.PostedStore != "1001" || task.PostedToken != sfShop.TokenID {
		t.Fatalf("after MarkPostedBatch: %+v", task)
	}
	must(t, store.ClearPosted(ctx, "me", tasks[:1]))
	if task := claim(tasks[0]); task.PostedOp != "" || task.PostedBatch != "" {
		t.Fatalf("after ClearPosted: %+v", task)
	}
}
