package prestashop_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// TestPartialRefundReadsTheSlipsLines reads an order's slips as the
// official module's partial refund names them: by the product's reference
// in the feed's format, one entry per product, shipping when a slip
// refunds it.
func TestPartialRefundReadsTheSlipsLines(t *testing.T) {
	ctx := context.Background()
	_, store, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(ctx, 1, "tok", "1001")
	if err != nil {
		t.Fatal(err)
	}
	mug, err := fx.CreateProduct(ctx, shopfixture.ProductSpec{Reference: "MUG-1", EAN13: "3700000000011", UPC: "012345678905", ISBN: "978-3-16-148410-0", MPN: "MPN-MUG", SupplierReference: "SUP-MUG"})
	if err != nil {
		t.Fatal(err)
	}
	hat, err := fx.CreateProduct(ctx, shopfixture.ProductSpec{Reference: "CAP-9"}) // no EAN
	if err != nil {
		t.Fatal(err)
	}
	o, err := fx.CreateSFOrder(ctx, shop, 42, "amazon")
	if err != nil {
		t.Fatal(err)
	}
	mugLine, _ := fx.AddOrderLine(ctx, o, mug, 3)
	mugLine2, _ := fx.AddOrderLine(ctx, o, mug, 2) // the same product on a second line
	capLine, _ := fx.AddOrderLine(ctx, o, hat, 1)
	s1, err := fx.CreateSlip(ctx, o, false, shopfixture.SlipLine{OrderDetailID: mugLine, Quantity: 1}, shopfixture.SlipLine{OrderDetailID: mugLine2, Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := fx.CreateSlip(ctx, o, true, shopfixture.SlipLine{OrderDetailID: capLine, Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	s3, err := fx.CreateSlip(ctx, o, true) // shipping only
	if err != nil {
		t.Fatal(err)
	}
	id := func(p uint32) string { return fmt.Sprint(p) }
	for _, tc := range []struct {
		name        string
		first, last uint64
		format      string
		want        prestashop.PartialRefund
		wantErr     error
	}{
		{"default format: the product id", s1, s1, "", prestashop.PartialRefund{Slips: 1, Lines: []prestashop.RefundLine{{id(mug), 3}}}, nil},
		{"two slips, shipping from the second", s1, s2, "", prestashop.PartialRefund{Slips: 2, Shipping: true, Lines: []prestashop.RefundLine{{id(mug), 3}, {id(hat), 1}}}, nil},
		{"shipping only", s3, s3, "", prestashop.PartialRefund{Slips: 1, Shipping: true}, nil},
		{"reference", s1, s1, "reference", prestashop.PartialRefund{Slips: 1, Lines: []prestashop.RefundLine{{"MUG-1", 3}}}, nil},
		{"ean13", s1, s1, "ean13", prestashop.PartialRefund{Slips: 1, Lines: []prestashop.RefundLine{{"3700000000011", 3}}}, nil},
		{"upc", s1, s1, "upc", prestashop.PartialRefund{Slips: 1, Lines: []prestashop.RefundLine{{"012345678905", 3}}}, nil},
		{"isbn", s1, s1, "isbn", prestashop.PartialRefund{Slips: 1, Lines: []prestashop.RefundLine{{"978-3-16-148410-0", 3}}}, nil},
		{"mpn", s1, s1, "mpn", prestashop.PartialRefund{Slips: 1, Lines: []prestashop.RefundLine{{"MPN-MUG", 3}}}, nil},
		{"supplier reference", s1, s1, "supplier_reference", prestashop.PartialRefund{Slips: 1, Lines: []prestashop.RefundLine{{"SUP-MUG", 3}}}, nil},
		{"a product without that reference", s2, s2, "ean13", prestashop.PartialRefund{}, prestashop.ErrNoReference},
		{"a format the module does not know", s1, s1, "name`; DROP TABLE x", prestashop.PartialRefund{}, prestashop.ErrBadReferenceFormat},
		{"no slip in the range", s3 + 1, s3 + 5, "", prestashop.PartialRefund{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.PartialRefund(ctx, o, tc.first, tc.last, tc.format)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("partial refund (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPartialRefundTicketsResolveLikeStatusTickets: a partial refund's
// ticket is followed under the module's ACTION_CHECK_TICKET_PARTIAL_REFUND;
// its success marks the order's slips done, and a failed partial refund is
// superseded by nothing: a status update that succeeds later leaves it for
// the report and sfsync retry, which re-queues it as PARTIAL_REFUND.
func TestPartialRefundTicketsResolveLikeStatusTickets(t *testing.T) {
	ctx := context.Background()
	_, store, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(ctx, 1, "tok", "1001")
	must(t, err)
	o, err := fx.CreateSFOrder(ctx, shop, 21, "amazon")
	must(t, err)
	task := func(action, batch string, slip uint64, failed bool) uint64 {
		t.Helper()
		q := "INSERT INTO " + store.T("shoppingfeed_task_order") + " (action, id_order, batch_id, date_add, date_upd, sfsync_operation, sfsync_store_id, sfsync_history_first, sfsync_history_last, sfsync_failed_at)" +
			" VALUES (?, ?, NULLIF(?, ''), NOW(), NOW(), 'refund', '1001', ?, ?, IF(?, NOW(), NULL))"
		res, err := store.DB().Exec(q, action, o, batch, slip, slip, failed)
		must(t, err)
		id, _ := res.LastInsertId()
		return uint64(id)
	}
	failedSlip := task(prestashop.ActionCheckTicketPartialRefund, "B0", 3, true)
	sentSlip := task(prestashop.ActionCheckTicketPartialRefund, "B1", 5, false)
	status := task(prestashop.ActionCheckTicketStatus, "B2", 900, false)

	tasks, err := store.BatchTasks(ctx, "B1")
	must(t, err)
	if len(tasks) != 1 || tasks[0].TaskID != sentSlip {
		t.Fatalf("batch B1 tasks %+v", tasks)
	}
	for batch, id := range map[string]uint64{"B1": sentSlip, "B2": status} {
		_, err := store.ApplyTicketResults(ctx, prestashop.TicketResults{BatchID: batch, LogName: "sfsync:ticket", Session: "test",
			Outcomes: []prestashop.TicketOutcome{{TaskID: id, OrderID: o, Kind: prestashop.TicketDone}}})
		must(t, err)
	}
	done, err := store.SlipsDone(ctx, o)
	must(t, err)
	if done != 5 {
		t.Fatalf("slips done up to %d, want 5", done)
	}
	var left []uint64
	rows, err := store.DB().Query("SELECT id_shoppingfeed_task_order FROM "+store.T("shoppingfeed_task_order")+" WHERE id_order = ?", o)
	must(t, err)
	for rows.Next() {
		var id uint64
		must(t, rows.Scan(&id))
		left = append(left, id)
	}
	must(t, rows.Err())
	if len(left) != 1 || left[0] != failedSlip {
		t.Fatalf("tasks left %v, want only the failed partial refund %d", left, failedSlip)
	}
	requeued, err := store.RequeueFailed(ctx, o)
	must(t, err)
	if len(requeued) != 1 || requeued[0].Action != prestashop.ActionPartialRefund {
		t.Fatalf("re-queued %+v, want the partial refund", requeued)
	}
	pt, err := store.PendingTask(ctx, prestashop.ActionPartialRefund, o)
	must(t, err)
	if pt.ID != failedSlip || pt.First != 3 || pt.Last != 3 || pt.Failed {
		t.Fatalf("pending partial refund %+v", pt)
	}
}
