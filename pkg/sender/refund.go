package sender

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// preparePartialRefund turns a claimed PARTIAL_REFUND task into a refund
// of the lines of the order slips it covers (sfsync_history_first to
// sfsync_history_last are slip ids), or settles it: dropped (partial
// refunds switched off, nothing left to refund), failed (a product without
// the reference Shopping Feed knows it by), or held (the shop's updates
// wait, or the reference format is not one the module knows).
func (s *Sender) preparePartialRefund(ctx context.Context, it *item) outcome {
	orderID := it.task.OrderID
	o, sh, bad := s.sfOrderAndShop(ctx, it)
	if bad != nil {
		return *bad
	}
	if !sh.Settings.PartialRefunds {
		return s.drop(ctx, it, fmt.Sprintf("order slip of order %d not sent: partial refunds are off (%s)", orderID, prestashop.KeyPartialRefund))
	}
	it.op = prestashop.OpRefund
	first := it.task.First
	if first == 0 || first > it.task.Last {
		first = it.task.Last
	}
	pr, err := s.store.PartialRefund(ctx, orderID, first, it.task.Last, sh.Settings.ReferenceFormat)
	switch {
	case errors.Is(err, prestashop.ErrBadReferenceFormat):
		s.reportOnce(ctx, "refformat:"+sh.Settings.ReferenceFormat, 0, "partial refunds wait until the product reference format is fixed: "+err.Error(), "shop_id", o.ShopID)
		return s.hold(ctx, it, time.Minute, "config", err.Error())
	case errors.Is(err, prestashop.ErrNoReference):
		return s.fail(ctx, it, "partial refund not sent: "+err.Error()+": Shopping Feed cannot tell which product was refunded")
	case err != nil:
		return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
	}
	if pr.Slips == 0 {
		return s.drop(ctx, it, fmt.Sprintf("order slips %d to %d of order %d no longer exist: no partial refund sent", first, it.task.Last, orderID))
	}
	if len(pr.Lines) == 0 && !pr.Shipping {
		return s.drop(ctx, it, fmt.Sprintf("order slips %d to %d of order %d refund no product and no shipping: no partial refund sent", first, it.task.Last, orderID))
	}
	ref, bad := s.sfOrderAndToken(ctx, it, o)
	if bad != nil {
		return *bad
	}
	products := make([]shoppingfeed.RefundProduct, len(pr.Lines))
	notes := make([]string, len(pr.Lines))
	for i, l := range pr.Lines {
		products[i] = shoppingfeed.RefundProduct{Reference: l.Reference, Quantity: l.Quantity}
		notes[i] = fmt.Sprintf("%d × %s", l.Quantity, l.Reference)
	}
	it.refundNote = strings.Join(notes, ", ")
	if pr.Shipping {
		it.refundNote = strings.TrimPrefix(it.refundNote+", shipping", ", ")
	}
	if it.task.PostedOp == string(prestashop.OpRefund) {
		if out, done := s.partialRefundApplied(ctx, it, ref.ID); done {
			return out
		}
	}
	it.size = groupSize(s.cfg.BatchSize, sh.Settings.MaxOrders, s.client.Config().MaxOrdersPerRequest)
	it.entry = shoppingfeed.OrderOperation{Order: ref, Refund: &shoppingfeed.Refund{Shipping: pr.Shipping, Products: products}}
	return s.toBatch(ctx, it)
}

// partialRefundApplied settles a partial refund an earlier attempt POSTed
// without its outcome being recorded: by its batch when that was kept
// (recoverBatch), else by asking Shopping Feed, and while Shopping Feed
// does not show it, as notShownApplied says. The order's
// status tells only that some refund went through: it settles the task
// (done, when no earlier partial refund of the order had succeeded, so this
// one is what the status shows; failed for a person to check, when one
// had) rather than refund the customer twice. done is false when the
// refund is to be sent.
func (s *Sender) partialRefundApplied(ctx context.Context, it *item, sfID int64) (out outcome, done bool) {
	orderID := it.task.OrderID
	if it.task.PostedBatch != "" {
		return s.recoverBatch(ctx, it), true
	}
	var st shoppingfeed.Order
	err := errors.New("no Shopping Feed order id to read the order by")
	if sfID > 0 {
		st, err = s.client.Order(ctx, it.tok.Secret, it.tok.StoreID, sfID)
	}
	if err != nil || (st.Status != shoppingfeed.OrderPartiallyRefunded && st.Status != shoppingfeed.OrderRefunded) {
		return s.notShownApplied(ctx, it, st.Status, err)
	}
	before, err := s.store.SlipsDone(ctx, orderID)
	if err != nil {
		return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error()), true
	}
	if before == 0 {
		s.m.alreadyApplied.Inc()
		return s.drop(ctx, it, fmt.Sprintf("partial refund of order %d found already applied: Shopping Feed shows the order %s, so it is not sent again", orderID, st.Status)), true
	}
	return s.fail(ctx, it, fmt.Sprintf("partial refund of order %d may have reached Shopping Feed before sfsync stopped (the order is %s, and an earlier partial refund went through): not sent again, so the customer is not refunded twice; check the marketplace, and run `sfsync retry` for the order if it is missing", orderID, st.Status)), true
}
