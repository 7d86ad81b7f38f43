package sender_test

import (
	"context"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// TestALoneCancelDoesNotWaitForTheBudget: with a long latency budget, a
// cancel whose store and operation had no recent request leaves once its
// burst settles (BATCH_LINGER), not at the end of the budget.
func TestALoneCancelDoesNotWaitForTheBudget(t *testing.T) {
	p := newPipeline(t, options{})
	cfg := senderConfig()
	cfg.Linger, cfg.LatencyBudget = 50*time.Millisecond, time.Minute
	p.startSender(cfg, "s1")
	o, sfID := p.order()
	p.change(o, shopfixture.StateCanceled)
	p.eventually(10*time.Second, "the lone cancel sent, long before its minute of budget", func() bool { return len(p.sent()[sfID]) == 1 })
}

// TestATrickleSharesRequests: cancels trickling in every 100 ms, with a
// 50 ms linger, went one per request; within a 2 s latency budget they
// share a few.
func TestATrickleSharesRequests(t *testing.T) {
	p := newPipeline(t, options{})
	cfg := senderConfig()
	cfg.Linger, cfg.LatencyBudget = 50*time.Millisecond, 2*time.Second
	p.startSender(cfg, "s1")
	const n = 20
	var ids []int64
	for range n {
		o, sfID := p.order()
		ids = append(ids, sfID)
		p.change(o, shopfixture.StateCanceled)
		time.Sleep(100 * time.Millisecond)
	}
	p.eventually(15*time.Second, "every cancel sent", func() bool { return len(p.sent()) == n })
	batches := map[string]bool{}
	for _, id := range ids {
		for _, op := range p.sent()[id] {
			batches[op.batch] = true
		}
	}
	// About 2 s of trickle: the first alone (its store was quiet), then one
	// request per budget.
	if len(batches) > 4 {
		t.Fatalf("%d requests for %d cancels trickling over about 2 s with a 2 s budget", len(batches), n)
	}
}

// TestASlowStoreDoesNotHoldAnother: one store answers in 3 s; with one
// request slot (SEND_CONCURRENCY 1), another store's cancel still goes at
// once, not behind the slow store's request.
func TestASlowStoreDoesNotHoldAnother(t *testing.T) {
	p := newPipeline(t, options{sandbox: func(c *sfsandbox.Config) {
		c.Stores = append(c.Stores, sfsandbox.TokenStores{Token: "token-fast", StoreIDs: []int64{2001}})
		c.Faults.StoreLatency = sfsandbox.StoreDurations{1001: 3 * time.Second}
	}})
	ctx := context.Background()
	fast := p.shop
	var err error
	if fast.TokenID, err = p.fx.CreateToken(ctx, fast.ShopID, "token-fast", "2001"); err != nil {
		t.Fatal(err)
	}
	cfg := senderConfig()
	cfg.Concurrency = 1
	p.startSender(cfg, "s1")
	slow, slowID := p.order()
	p.change(slow, shopfixture.StateCanceled)
	time.Sleep(500 * time.Millisecond) // the slow store's request is in flight
	quick, err := p.fx.CreateSFOrder(ctx, fast, 777001, "amazon")
	if err != nil {
		t.Fatal(err)
	}
	p.change(quick, shopfixture.StateCanceled)
	p.eventually(15*time.Second, "both sent", func() bool { return len(p.sent()[slowID]) == 1 && len(p.sent()[777001]) == 1 })
	ops := p.sb.Sandbox.Operations()
	if ops[0].StoreID != 2001 {
		t.Fatalf("the slow store's request was answered first (%v, then %v): the other store waited behind it", ops[0].StoreID, ops[1].StoreID)
	}
}
