package sender_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// refundOf decodes the refund an operation entry carries.
func refundOf(t *testing.T, op sentOp) shoppingfeed.Refund {
	t.Helper()
	var e struct {
		Refund shoppingfeed.Refund `json:"refund"`
	}
	if err := json.Unmarshal([]byte(op.raw), &e); err != nil {
		t.Fatalf("entry %s: %v", op.raw, err)
	}
	return e.Refund
}

// TestPartialRefundsSendEachSlipsLines: each order slip goes out as a
// refund of its own lines, named by the product reference the module's
// partial refund uses (the product id, the feed's default), with the
// shipping only when the slip refunds it; the module's task action and
// process-log line follow it; a full refund afterwards is still a full
// refund.
func TestPartialRefundsSendEachSlipsLines(t *testing.T) {
	p := newPipeline(t, options{})
	ctx := context.Background()
	if err := p.fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyPartialRefund, "1"); err != nil {
		t.Fatal(err)
	}
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	mug, err := p.fx.CreateProduct(ctx, shopfixture.ProductSpec{Reference: "MUG-1"})
	if err != nil {
		t.Fatal(err)
	}
	hat, err := p.fx.CreateProduct(ctx, shopfixture.ProductSpec{Reference: "HAT-2"})
	if err != nil {
		t.Fatal(err)
	}
	mugLine, _ := p.fx.AddOrderLine(ctx, o, mug, 3)
	hatLine, _ := p.fx.AddOrderLine(ctx, o, hat, 1)

	if _, err := p.fx.CreateSlip(ctx, o, false, shopfixture.SlipLine{OrderDetailID: mugLine, Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	p.eventually(5*time.Second, "partial refund sent", func() bool { return len(p.sent()[sfID]) == 1 })
	first := p.sent()[sfID][0]
	want := shoppingfeed.Refund{Shipping: false, Products: []shoppingfeed.RefundProduct{{Reference: fmt.Sprint(mug), Quantity: 2}}}
	if diff := cmp.Diff(want, refundOf(t, first)); first.op != "refund" || diff != "" {
		t.Fatalf("first slip sent as %s (-want +got):\n%s", first.op, diff)
	}
	p.eventually(5*time.Second, "task follows its ticket", func() bool {
		ts := p.tasks(o)
		return len(ts) == 1 && ts[0].action == prestashop.ActionCheckTicketPartialRefund && ts[0].batch == first.batch && ts[0].operation == "refund"
	})
	if n := p.processLog(o, fmt.Sprintf("%%Partial refund request is sent%%2 × %d%%%s%%", mug, first.batch)); n != 1 {
		t.Fatalf("%d process-log lines for the sent partial refund", n)
	}

	if _, err := p.fx.CreateSlip(ctx, o, true, shopfixture.SlipLine{OrderDetailID: hatLine, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	p.eventually(5*time.Second, "second partial refund sent", func() bool { return len(p.sent()[sfID]) == 2 })
	want = shoppingfeed.Refund{Shipping: true, Products: []shoppingfeed.RefundProduct{{Reference: fmt.Sprint(hat), Quantity: 1}}}
	if diff := cmp.Diff(want, refundOf(t, p.sent()[sfID][1])); diff != "" {
		t.Fatalf("second slip sent (-want +got):\n%s", diff)
	}

	p.change(o, shopfixture.StateRefunded)
	p.eventually(5*time.Second, "full refund sent", func() bool { return len(p.sent()[sfID]) == 3 })
	want = shoppingfeed.Refund{Shipping: true, Products: []shoppingfeed.RefundProduct{}}
	if diff := cmp.Diff(want, refundOf(t, p.sent()[sfID][2])); diff != "" {
		t.Fatalf("the Refunded state sent (-want +got):\n%s", diff)
	}
}

// TestPartialRefundOfAProductWithoutReferenceFails: with the feed's
// reference set to a field the product lacks, Shopping Feed could not
// tell which product was refunded: the slip fails where the merchant sees
// it, and nothing is sent.
func TestPartialRefundOfAProductWithoutReferenceFails(t *testing.T) {
	p := newPipeline(t, options{})
	ctx := context.Background()
	for k, v := range map[string]string{prestashop.KeyPartialRefund: "1", prestashop.KeyReferenceFormat: "ean13"} {
		if err := p.fx.SetConfig(ctx, shopfixture.Global, k, v); err != nil {
			t.Fatal(err)
		}
	}
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	mug, _ := p.fx.CreateProduct(ctx, shopfixture.ProductSpec{Reference: "MUG-1"}) // no EAN-13
	line, _ := p.fx.AddOrderLine(ctx, o, mug, 1)
	if _, err := p.fx.CreateSlip(ctx, o, false, shopfixture.SlipLine{OrderDetailID: line, Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	p.eventually(5*time.Second, "partial refund failed", func() bool {
		ts := p.tasks(o)
		return len(ts) == 1 && ts[0].failed && ts[0].action == prestashop.ActionPartialRefund
	})
	if n := p.processLog(o, "%has no \"ean13\"%"); n != 1 {
		t.Fatalf("%d process-log lines naming the missing reference", n)
	}
	if n := len(p.sent()[sfID]); n != 0 {
		t.Fatalf("%d operations sent", n)
	}
}
