package sender

import (
	"context"
	"errors"
	"fmt"

	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// earlierAttempt handles an update that an earlier attempt POSTed
// (it.task.PostedOp, the operation prepare chose again) without its outcome
// being recorded: the sender died while the request was out or before it
// recorded the answer, or the answer could not be read. The rule: nothing
// Shopping Feed did not apply is dropped, and nothing is sent while an
// earlier request for it may still be applied.
//
//   - The batch id was kept (MarkPostedBatch): Shopping Feed accepted the
//     POST. It is recorded now as it would have been, and the ticket poller
//     follows its ticket: a success ends the task, a failure is reported.
//   - Otherwise the order is read from Shopping Feed: a status that
//     reflects the operation means it was applied (done, with a process-log
//     line that says so).
//   - A status that does not reflect it, or an order that cannot be read,
//     is not an answer while the earlier POST is younger than
//     APPLIED_CHECK_WAIT: its ticket may still be pending. The update waits
//     until then, and is sent once the POST is that old and Shopping Feed
//     still does not show it.
//
// settled is false when the update is to be sent: it.op (and it.then) say
// what, which may be the operation that follows one found applied.
func (s *Sender) earlierAttempt(ctx context.Context, it *item, ref shoppingfeed.OrderRef) (o outcome, settled bool) {
	t := it.task
	orderID := t.OrderID
	if t.PostedBatch != "" {
		return s.recoverBatch(ctx, it), true
	}
	var st shoppingfeed.Order
	err := errors.New("no Shopping Feed order id to read the order by")
	if ref.ID > 0 {
		st, err = s.client.Order(ctx, it.tok.Secret, it.tok.StoreID, ref.ID)
	}
	op, then := shoppingfeed.Operation(it.op), shoppingfeed.Operation(it.then)
	switch {
	case err == nil && st.Status.Reflects(op) && (then == "" || st.Status.Reflects(then)):
		s.m.alreadyApplied.Inc()
		return s.drop(ctx, it, fmt.Sprintf("%s of order %d found already applied: Shopping Feed shows the order %s, so it is not sent again", it.op, orderID, st.Status)), true
	case err == nil && st.Status.Reflects(op):
		// The shipment went through; what follows it has not.
		s.m.alreadyApplied.Inc()
		s.log.Info("earlier attempt found already applied; sending what follows", "order_id", orderID, "applied", it.op, "next", it.then)
		it.op, it.then = it.then, ""
		return outcome{}, false
	}
	return s.notShownApplied(ctx, it, st.Status, err)
}

// recoverBatch records the batch an earlier attempt's POST was accepted as
// (kept by MarkPostedBatch before that sender stopped), as the commit would
// have: the ticket poller follows it, and nothing is sent again.
func (s *Sender) recoverBatch(ctx context.Context, it *item) outcome {
	t := it.task
	s.m.recovered.Inc()
	s.log.Info("earlier attempt recovered by its batch id; following its ticket, not sending again",
		"order_id", t.OrderID, "operation", it.op, "batch_id", t.PostedBatch, "store_id", t.PostedStore)
	s.accepted(ctx, groupKey{tokenID: t.PostedToken, storeID: t.PostedStore, op: it.op}, t.PostedBatch, []*item{it})
	return takenByBatch()
}

// notShownApplied handles an earlier attempt whose operation Shopping Feed
// does not show applied (status), or that could not be asked about (err):
// no answer while the POST is younger than APPLIED_CHECK_WAIT (its ticket
// may still be pending), so the update waits; past it, it is sent again
// (settled false).
func (s *Sender) notShownApplied(ctx context.Context, it *item, status shoppingfeed.OrderStatus, err error) (outcome, bool) {
	t := it.task
	switch {
	case t.PostedAge < s.cfg.AppliedWait:
		// Asked again as the wait goes by (each time a request of the
		// token's budget), until the POST is APPLIED_CHECK_WAIT old.
		wait := min(s.cfg.AppliedWait-t.PostedAge, max(s.cfg.RetryBase, t.PostedAge/4))
		s.log.Info("earlier attempt not shown applied yet; waiting for its ticket before sending again",
			"order_id", t.OrderID, "operation", it.op, "posted_ago", t.PostedAge, "wait", wait, "status", status, "err", err)
		return s.hold(ctx, it, wait, "applied_unknown", ""), true
	case err != nil:
		s.log.Warn("could not ask Shopping Feed whether an earlier attempt was applied; sending", "order_id", t.OrderID, "operation", it.op, "err", err)
	default:
		s.log.Info("earlier attempt not applied; sending again", "order_id", t.OrderID, "operation", it.op, "status", status,
			"posted_ago", t.PostedAge)
	}
	return outcome{}, false
}
