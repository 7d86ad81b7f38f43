package sender

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
)

// DetectorLagLimit bounds how long a task waits for the detector to bring
// it the order's newest change (see prepare): past it, the detector is
// taken to be down and the current state is sent, at the risk of sending
// it again once the detector is back.
const DetectorLagLimit = 30 * time.Second

// prepare turns a claimed task into an item ready to send, or settles it:
// dropped (the current state needs no update), failed (the order cannot be
// sent), or held back to wait (a tracking number, a configuration or a
// token the merchant must fix).
func (s *Sender) prepare(ctx context.Context, it *item) outcome {
	orderID := it.task.OrderID
	o, sh, bad := s.sfOrderAndShop(ctx, it)
	if bad != nil {
		return *bad
	}
	op, ok := sh.Operation(o.CurrentState)
	if ok && o.LastChange > it.task.Last && o.LastChangeAge < DetectorLagLimit {
		// The order changed again and the detector has not brought that
		// change to this task yet. Sending now would send the new state,
		// and the task the detector then makes for that change would send
		// it a second time: wait for the detector.
		return s.hold(ctx, it, time.Second, "detector_behind", "")
	}
	if !ok {
		var err error
		op, ok, err = s.shippedSince(ctx, it, o, sh)
		if err != nil {
			return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
		}
	} else if op == prestashop.OpDeliver {
		// Shipped → Delivered within the delay: the marketplace still
		// needs the shipment and its tracking number. Ship now; deliver
		// follows in a later request, once this one is accepted.
		shipped, err := s.shipReachedSince(ctx, it, o, sh)
		if err != nil {
			return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
		}
		if shipped {
			op, it.then = prestashop.OpShip, prestashop.OpDeliver
		}
	}
	if !ok {
		st, _ := s.shops.State(ctx, o.CurrentState, o.LangID)
		return s.drop(ctx, it, fmt.Sprintf("current state %q (%d) is in no mapping list: nothing sent to Shopping Feed", st.Name, o.CurrentState))
	}
	it.op = op
	ref, bad := s.sfOrderAndToken(ctx, it, o)
	if bad != nil {
		return *bad
	}
	if it.task.PostedOp == string(op) {
		if o, settled := s.earlierAttempt(ctx, it, ref); settled {
			return o
		}
		op = it.op
	}
	it.size = groupSize(s.cfg.BatchSize, sh.Settings.MaxOrders, s.client.Config().MaxOrdersPerRequest)
	entry := shoppingfeed.OrderOperation{Order: ref}
	switch op {
	case prestashop.OpShip:
		tr, err := s.store.Tracking(ctx, orderID)
		if err != nil {
			return s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
		}
		if tr.Number == "" {
			waited := it.task.Now.Sub(it.task.UpdateAt)
			if waited < s.cfg.TrackingMaxWait {
				return s.hold(ctx, it, min(s.cfg.TrackingRecheck, s.cfg.TrackingMaxWait-waited), "tracking", "")
			}
			msg := fmt.Sprintf("shipment of order %d sent without a tracking number: none was typed within %s (TRACKING_MAX_WAIT)", orderID, s.cfg.TrackingMaxWait)
			s.log.Warn("shipment sent without tracking number", "order_id", orderID, "waited", waited.Round(time.Second))
			s.processLog(ctx, orderID, prestashop.LevelInfo, "warning: "+msg)
		}
		entry.Carrier, entry.TrackingNumber, entry.TrackingLink = tr.CarrierName, tr.Number, tr.Link()
	case prestashop.OpCancel:
		entry.Reason = ""
	case prestashop.OpRefund:
		entry.Refund = &shoppingfeed.Refund{Shipping: true, Products: []shoppingfeed.RefundProduct{}}
	}
	it.entry = entry
	return s.toBatch(ctx, it)
}

// toBatch hands a prepared item to the batcher.
func (s *Sender) toBatch(ctx context.Context, it *item) outcome {
	select {
	case s.items <- it:
		return takenByBatch()
	case <-s.stopped:
		return s.hold(ctx, it, 0, "shutdown", "")
	case <-ctx.Done():
		return s.hold(context.WithoutCancel(ctx), it, time.Second, "shutdown", "")
	}
}

// sfOrderAndToken reads how Shopping Feed knows the item's order and the
// token it is sent with (set on it); when it cannot, bad is the outcome:
// failed (not a Shopping Feed order, or one it cannot identify) or held
// (no token, the database did not answer).
func (s *Sender) sfOrderAndToken(ctx context.Context, it *item, o prestashop.Order) (ref shoppingfeed.OrderRef, bad *outcome) {
	orderID := it.task.OrderID
	sf, err := s.store.SFOrder(ctx, orderID)
	if errors.Is(err, prestashop.ErrNotFound) {
		out := s.fail(ctx, it, fmt.Sprintf("order %d has no shoppingfeed_order row: it is not a Shopping Feed order", orderID))
		return ref, &out
	}
	if err != nil {
		out := s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
		return ref, &out
	}
	if id, perr := strconv.ParseInt(sf.InternalID, 10, 64); perr == nil && id > 0 {
		ref.ID = id
	} else if sf.MarketplaceRef != "" && sf.Channel != "" {
		ref.Reference, ref.ChannelName = sf.MarketplaceRef, sf.Channel
	} else {
		out := s.fail(ctx, it, fmt.Sprintf("order %d has neither a Shopping Feed order id (id_internal_shoppingfeed) nor a marketplace reference and channel: Shopping Feed cannot identify it", orderID))
		return ref, &out
	}
	it.sfID, it.ref, it.channel = sf.InternalID, sf.MarketplaceRef, sf.Channel
	tok, err := s.shops.Token(ctx, sf.TokenID, o.ShopID)
	if err != nil {
		s.reportOnce(ctx, "token:"+strconv.FormatUint(uint64(o.ShopID), 10), orderID,
			fmt.Sprintf("shop %d: no Shopping Feed token to send with (shoppingfeed_token, SF_TOKEN): updates wait: %v", o.ShopID, err), "shop_id", o.ShopID)
		out := s.hold(ctx, it, 5*time.Minute, "no_token", "no Shopping Feed token")
		return ref, &out
	}
	it.tok = tok
	return ref, nil
}

// shopHolds holds the item while its shop's updates wait (the conflict
// guard, a configuration the merchant must fix, the sync switch off).
func (s *Sender) shopHolds(ctx context.Context, it *item, o prestashop.Order, sh *shoppolicy.Shop) *outcome {
	var out outcome
	switch kind, why := sh.Hold(); kind {
	case shoppolicy.HoldConfig:
		s.reportOnce(ctx, "config:"+why, 0, "shop configuration cannot be used; updates wait until it is fixed: "+why, "shop_id", o.ShopID)
		out = s.hold(ctx, it, time.Minute, kind, why)
	case shoppolicy.HoldGuard:
		s.reportOnce(ctx, "guard:"+why, 0, why, "shop_id", o.ShopID)
		out = s.hold(ctx, it, time.Minute, kind, why)
	case shoppolicy.HoldDisabled:
		out = s.hold(ctx, it, time.Minute, kind, why)
	default:
		return nil
	}
	return &out
}

// orderAndShop reads a claimed task's order and its shop's settings; when
// it cannot, bad is the task's outcome (failed: the order is gone; held:
// the database did not answer).
func (s *Sender) orderAndShop(ctx context.Context, it *item) (o prestashop.Order, sh *shoppolicy.Shop, bad *outcome) {
	o, err := s.store.Order(ctx, it.task.OrderID)
	if errors.Is(err, prestashop.ErrNotFound) {
		out := s.fail(ctx, it, fmt.Sprintf("order %d no longer exists in the shop", it.task.OrderID))
		return o, nil, &out
	}
	if err == nil {
		it.shopID = o.ShopID
		sh, err = s.shops.Shop(ctx, o.ShopID)
	}
	if err != nil {
		out := s.hold(ctx, it, s.cfg.RetryBase, "database", err.Error())
		return o, nil, &out
	}
	return o, sh, nil
}

// sfOrderAndShop is orderAndShop for a Shopping Feed update: the shop's
// holds (shopHolds) apply too.
func (s *Sender) sfOrderAndShop(ctx context.Context, it *item) (o prestashop.Order, sh *shoppolicy.Shop, bad *outcome) {
	if o, sh, bad = s.orderAndShop(ctx, it); bad != nil {
		return o, sh, bad
	}
	return o, sh, s.shopHolds(ctx, it, o, sh)
}

// shippedSince applies the rule for states in no list: a state PrestaShop
// flags as shipped (Delivered, say) ships the order when a shipped-list
// state was reached since the task was created, so Shipped → Delivered
// within the delay still ships. (With Delivered mapped, prepare ships and
// then delivers.)
func (s *Sender) shippedSince(ctx context.Context, it *item, o prestashop.Order, sh *shoppolicy.Shop) (prestashop.Operation, bool, error) {
	if len(sh.Settings.Mapping[prestashop.OpShip]) == 0 {
		return "", false, nil
	}
	st, err := s.shops.State(ctx, o.CurrentState, o.LangID)
	if err != nil || !st.Shipped {
		return "", false, err
	}
	ok, err := s.shipReachedSince(ctx, it, o, sh)
	if err != nil || !ok {
		return "", false, err
	}
	return prestashop.OpShip, true, nil
}

// shipReachedSince reports whether the order entered a shipped-list state
// in one of the changes its task holds (none of which went out yet).
func (s *Sender) shipReachedSince(ctx context.Context, it *item, o prestashop.Order, sh *shoppolicy.Shop) (bool, error) {
	ships := sh.Settings.Mapping[prestashop.OpShip]
	if len(ships) == 0 {
		return false, nil
	}
	from := it.task.First
	if from == 0 {
		from = it.task.Last
	}
	return s.store.ReachedSince(ctx, o.ID, from, ships)
}

// drop removes a task whose order's current state needs no update.
func (s *Sender) drop(ctx context.Context, it *item, why string) outcome {
	deleted, err := s.store.DropTask(ctx, it.task, s.instance)
	if err != nil {
		return retryLater("database", err)
	}
	if !deleted {
		// A newer change reached the task meanwhile: judge it again.
		return waitFor(it.task, 0, "changed")
	}
	s.m.dropped.Inc()
	s.processLog(ctx, it.task.OrderID, prestashop.LevelInfo, why)
	s.log.Info("update not sent", "order_id", it.task.OrderID, "reason", why)
	return acked()
}

// fail marks a task failed: it goes into the next error report. The write
// is retried as a write while the sender runs: a refusal Shopping Feed gave
// must not lead to another request because the database hiccuped.
func (s *Sender) fail(ctx context.Context, it *item, reason string) outcome {
	if err := s.persist(ctx, "record a failed update", func() error {
		return s.store.FailTask(ctx, it.task.ID, s.instance, string(it.op), reason)
	}); err != nil {
		return retryLater("database", err)
	}
	s.m.failed.Inc()
	s.log.Error("update failed", "order_id", it.task.OrderID, "task_id", it.task.ID, "reason", reason)
	s.processLog(ctx, it.task.OrderID, prestashop.LevelError, reason)
	return acked()
}

// groupSize is how many orders go in one POST: BATCH_SIZE, else the shop's
// SHOPPINGFEED_ORDER_STATUS_MAX_ORDERS (both up to 200), never more than
// one request takes (SF_MAX_ORDERS_PER_REQUEST, 100): a batch size of 150
// sends 100 + 50, not requests the client refuses.
func groupSize(batchSize, shopMax, perRequest int) int {
	n := batchSize
	if n == 0 {
		n = shopMax
	}
	if perRequest > 0 {
		n = min(n, perRequest)
	}
	return max(n, 1)
}
