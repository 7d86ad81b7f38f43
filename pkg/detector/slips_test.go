package detector_test

import (
	"context"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// slipEvents counts the partial-refund events published for a slip.
func (e *env) slipEvents(slip uint64) int {
	n := 0
	for _, ev := range e.events() {
		if ev.Action == prestashop.ActionPartialRefund && ev.OrderHistoryId == slip {
			n++
		}
	}
	return n
}

// TestOrderSlipsBecomePartialRefundsOnce follows order slips through the
// detector: each becomes the order's PARTIAL_REFUND task and one event, in
// id order even when an earlier slip commits after a later one, once
// across a restart, and only for shops that allow partial refunds.
func TestOrderSlipsBecomePartialRefundsOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyPartialRefund, "1"); err != nil {
		t.Fatal(err)
	}
	o := e.order()
	r := e.start(testConfig(), "a")
	e.waitLeader(r)

	// A slip whose transaction is still open when a later one commits.
	tx, err := e.db.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO ps_order_slip (id_customer, id_order, shipping_cost, amount, shipping_cost_amount, `partial`, date_add, date_upd)"+
		" VALUES (1, ?, 0, 0, 0, 1, NOW(), NOW())", o)
	if err != nil {
		t.Fatal(err)
	}
	early, _ := res.LastInsertId()
	later, err := e.fx.CreateSlip(ctx, o, true)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // polls go by: the later slip waits behind the open one
	if n := e.slipEvents(later); n != 0 {
		t.Fatalf("slip %d published while slip %d before it was not committed", later, early)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.eventually(5*time.Second, "both slips published", func() bool { return e.slipEvents(uint64(early)) == 1 && e.slipEvents(later) == 1 })
	var refund []task
	for _, tk := range e.tasks(o) {
		if tk.action == prestashop.ActionPartialRefund {
			refund = append(refund, tk)
		}
	}
	if len(refund) != 1 || refund[0].first != uint64(early) || refund[0].last != later {
		t.Fatalf("partial refund tasks %+v, want one covering slips %d to %d", refund, early, later)
	}

	// A restart publishes nothing again; the next slip goes out.
	r.stop()
	r2 := e.start(testConfig(), "b")
	e.waitLeader(r2)
	third, err := e.fx.CreateSlip(ctx, o, false)
	if err != nil {
		t.Fatal(err)
	}
	e.eventually(5*time.Second, "the next slip published", func() bool { return e.slipEvents(third) == 1 })
	if a, b := e.slipEvents(uint64(early)), e.slipEvents(later); a != 1 || b != 1 {
		t.Fatalf("after a restart: slips published %d and %d times", a, b)
	}

	// With partial refunds off (the module's default), a slip is no task.
	if err := e.fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyPartialRefund, "0"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // SETTINGS_TTL
	off := e.order()
	offSlip, err := e.fx.CreateSlip(ctx, off, false)
	if err != nil {
		t.Fatal(err)
	}
	h := e.change(off, shopfixture.StateCanceled) // committed after the slip: read in the same poll or a later one
	e.eventually(5*time.Second, "the change after it published", func() bool { return e.eventsFor(h) == 1 })
	if n := e.slipEvents(offSlip); n != 0 || len(e.tasksOf(off, prestashop.ActionPartialRefund)) != 0 {
		t.Fatalf("slip of a shop without partial refunds: %d events, tasks %+v", n, e.tasks(off))
	}
}

func (e *env) tasksOf(order uint32, action string) []task {
	var out []task
	for _, tk := range e.tasks(order) {
		if tk.action == action {
			out = append(out, tk)
		}
	}
	return out
}
