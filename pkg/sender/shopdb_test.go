package sender_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// Two shop databases on one broker share its durable consumers, so a
// sender takes events of the other database too. It passes them back
// rather than look their order ids up in its own database (where the same
// ids are other orders, here with updates due): every order of database A
// is sent once, by A's sender, and nothing of database B is sent, since no
// event of B's was published.
func TestTwoShopDatabasesOnOneBroker(t *testing.T) {
	p := newPipeline(t, options{})
	ctx := context.Background()
	const n = 20
	var aOrders []uint32
	var aSF []int64
	for range n {
		o, sf := p.order()
		aOrders = append(aOrders, o)
		aSF = append(aSF, sf)
	}
	// Database B: the same order ids, other Shopping Feed orders, each with
	// an update due now that only an event naming it would send.
	db2, store2, fx2 := testenv.Shop(t)
	shop2, err := fx2.EnableShoppingFeed(ctx, 1, sfsandboxtest.Token, fmt.Sprint(sfsandboxtest.StoreID))
	if err != nil {
		t.Fatal(err)
	}
	bSF := map[int64]bool{}
	for i := range n {
		sf := int64(800000 + i)
		o, err := fx2.CreateSFOrder(ctx, shop2, sf, "amazon")
		if err != nil {
			t.Fatal(err)
		}
		if o != aOrders[i] {
			t.Fatalf("order %d of B is not A's %d: the test needs the same ids", o, aOrders[i])
		}
		bSF[sf] = true
		h, err := fx2.ChangeState(ctx, o, shopfixture.StateCanceled)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db2.DB.Exec(`INSERT INTO ps_shoppingfeed_task_order (action, id_order, update_at, date_add, date_upd, sfsync_history_first, sfsync_history_last)
			VALUES ('SYNC_STATUS', ?, NOW(), NOW(), NOW(), ?, ?)`, o, h, h); err != nil {
			t.Fatal(err)
		}
	}
	// One sender per database, on the same broker and durable consumers.
	cfg := senderConfig()
	senders := map[string]*prometheus.Registry{}
	for _, name := range []string{"a", "b"} {
		reg := prometheus.NewRegistry()
		client, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: p.sb.URL, Timeout: 5 * time.Second, RateLimit: "none", MaxOrdersPerRequest: 200}, testLogger(), reg)
		if err != nil {
			t.Fatal(err)
		}
		st := p.store
		if name == "b" {
			st = store2
		}
		s, err := sender.New(cfg, sender.Deps{Store: st, NC: p.conn(), Client: client, Log: testLogger(), Registry: reg, Instance: "sender-" + name})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(rctx) }()
		t.Cleanup(func() { cancel(); <-done })
		senders[name] = reg
	}
	for _, o := range aOrders {
		p.change(o, shopfixture.StateCanceled)
	}
	p.eventually(20*time.Second, "every order of A sent", func() bool {
		sent := p.sent()
		for _, sf := range aSF {
			if len(sent[sf]) == 0 {
				return false
			}
		}
		return true
	})
	sent := p.sent()
	for _, sf := range aSF {
		if len(sent[sf]) != 1 {
			t.Errorf("order %d of A sent %d times", sf, len(sent[sf]))
		}
	}
	for sf := range sent {
		if bSF[sf] {
			t.Errorf("order %d of B was sent on an event of A", sf)
		}
	}
	if got := counter0(t, senders["b"], "sfsync_sender_foreign_events_total"); got == 0 {
		t.Fatal("B's sender never took an event of A: the test proves nothing")
	}
}

// counter0 is a counter without labels.
func counter0(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}
