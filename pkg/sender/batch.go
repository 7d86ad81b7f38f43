package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/internal/pause"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

type group struct {
	items       []*item
	first, last time.Time // when the first and the latest item came
}

// batcher gathers prepared items per token, store and operation. A group
// is sent as soon as it is full. In batch mode the rest goes every
// BATCH_INTERVAL. In realtime mode each update goes out within the latency
// budget (LATENCY_BUDGET) of when it became due, and a request fills until
// then: a group whose store and operation had no request within the budget
// goes once it stops growing for BATCH_LINGER (a lone cancel leaves at
// once); otherwise it goes when its oldest item has waited the budget, so
// that a steady trickle makes about one request per budget, each as full
// as the trickle allows.
func (s *Sender) batcher(stop <-chan struct{}, work context.Context) error {
	groups := map[groupKey]*group{}
	lastSent := map[groupKey]time.Time{}
	budget := s.cfg.budget()
	tickEvery := s.cfg.Linger / 4
	if s.cfg.Mode == ModeBatch {
		tickEvery = min(s.cfg.Interval/10, time.Second)
	}
	tick := time.NewTicker(max(tickEvery, 5*time.Millisecond))
	defer tick.Stop()
	lastRound := time.Now()
	flush := func(k groupKey, g *group) {
		delete(groups, k)
		lastSent[k] = time.Now()
		items := g.items
		for len(items) > 0 {
			n := min(len(items), max(items[0].size, 1))
			chunk := items[:n]
			items = items[n:]
			s.sends.Add(1)
			go func() {
				defer s.sends.Done()
				defer s.slot(k.storeKey())()
				s.send(work, k, chunk)
			}()
		}
	}
	for {
		select {
		case <-stop:
			// Shutdown: what was gathered goes back to the broker.
			for k, g := range groups {
				delete(groups, k)
				for _, it := range g.items {
					s.conclude(work, it, s.hold(work, it, 0, "shutdown", ""))
				}
			}
			// Items still arriving from workers finishing up go back too.
			for {
				select {
				case it := <-s.items:
					s.conclude(work, it, s.hold(work, it, 0, "shutdown", ""))
				default:
					return nil
				}
			}
		case it := <-s.items:
			k := it.key()
			g, ok := groups[k]
			if !ok {
				g = &group{first: time.Now()}
				groups[k] = g
			}
			g.items, g.last = append(g.items, it), time.Now()
			if len(g.items) >= max(it.size, 1) {
				flush(k, g)
			}
		case <-tick.C:
			now := time.Now()
			if s.cfg.Mode == ModeBatch {
				if now.Sub(lastRound) >= s.cfg.Interval {
					lastRound = now
					for k, g := range groups {
						flush(k, g)
					}
				}
				continue
			}
			for k, g := range groups {
				quiet := now.Sub(lastSent[k]) >= budget
				if now.Sub(g.first) >= budget || (quiet && now.Sub(g.last) >= s.cfg.Linger) {
					flush(k, g)
				}
			}
			for k, at := range lastSent {
				if _, waiting := groups[k]; !waiting && now.Sub(at) >= budget {
					delete(lastSent, k)
				}
			}
		}
	}
}

// send posts one batch and settles every item in it.
func (s *Sender) send(ctx context.Context, k groupKey, items []*item) {
	entries := make([]shoppingfeed.OrderOperation, len(items))
	for i, it := range items {
		entries[i] = it.entry
	}
	op := shoppingfeed.Operation(k.op)
	now := time.Now()
	for _, it := range items {
		s.m.dueLag.Observe(max(it.task.Now.Sub(it.task.UpdateAt)+now.Sub(it.received), 0).Seconds())
		if !it.ev.ChangedAt.IsZero() && it.task.UpdateAt.Equal(it.ev.ChangedAt) {
			s.m.commitLag.Observe(max(it.task.Now.Sub(it.ev.ChangedAt)+now.Sub(it.received), 0).Seconds())
		}
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		post := s.posts.Add(1)
		orders := make([]uint32, len(items))
		for i, it := range items {
			orders[i] = it.task.OrderID
		}
		s.log.Debug("posting batch", "post", post, "operation", k.op, "store_id", k.storeID, "orders", orders)
		defer s.log.Debug("batch settled", "post", post)
	}
	ids := make([]uint64, len(items))
	for i, it := range items {
		ids[i] = it.task.ID
	}
	// The intent is recorded as each request leaves, once the rate budget
	// let it through (a sender that dies while it waits has sent nothing),
	// and only while every claim is still this sender's: a claim that
	// lapsed and went to another sender means that sender may send it.
	var markErr error
	octx := shoppingfeed.WithSendHooks(ctx, shoppingfeed.SendHooks{
		Before: func(ctx context.Context) error {
			markErr = s.store.MarkPosted(ctx, s.instance, string(op), ids, s.cfg.ClaimTTL)
			return markErr
		},
		// Shopping Feed answered with a 429 or a 5xx: the request was
		// refused, not applied (the client sends it again itself on such
		// answers). Until the next one leaves, a sender that dies has
		// nothing to find out.
		Refused: func(ctx context.Context) {
			if err := s.store.ClearPosted(ctx, s.instance, ids); err != nil {
				s.log.Warn("forget the intent of a refused request; the next attempt asks Shopping Feed first", "err", err)
			}
		},
	})
	b, err := s.client.Operate(octx, items[0].tok.Secret, k.storeID, op, entries)
	if markErr != nil {
		// That request did not leave.
		for _, it := range items {
			if errors.Is(markErr, prestashop.ErrClaimLost) {
				s.conclude(ctx, it, s.hold(ctx, it, time.Second, "claim_lost", ""))
			} else {
				s.conclude(ctx, it, retryLater("database", markErr))
			}
		}
		return
	}
	if err == nil {
		// Kept at once, before the outcome is recorded: a sender that
		// stops in between leaves the next attempt this batch to follow.
		if kerr := s.persist(ctx, "keep the batch id", func() error {
			return s.store.MarkPostedBatch(ctx, s.instance, b.ID, k.storeID, k.tokenID, ids)
		}); kerr != nil {
			s.log.Warn("keep batch id before recording it", "batch_id", b.ID, "err", kerr)
		}
	}
	switch {
	case errors.Is(err, shoppingfeed.ErrMalformedResponse):
		// Shopping Feed answered 2xx but the batch id cannot be read: the
		// operation may be applied. It is not sent again blindly: the next
		// attempt asks Shopping Feed first (the intent stays recorded).
		s.m.calls.WithLabelValues(string(op), "unknown").Inc()
		s.m.errors.WithLabelValues("unknown_outcome").Inc()
		s.log.Error("shopping feed accepted a batch whose answer cannot be read; its orders are checked before any new attempt", "operation", op, "store_id", k.storeID, "orders", len(items), "err", err)
		for _, it := range items {
			s.conclude(ctx, it, s.hold(ctx, it, s.cfg.RetryBase, "unknown_outcome", "accepted, but the answer could not be read"))
		}
	case err == nil:
		s.m.calls.WithLabelValues(string(op), "accepted").Inc()
		s.m.batchSize.Observe(float64(len(items)))
		s.m.sent.WithLabelValues(string(op)).Add(float64(len(items)))
		s.accepted(ctx, k, b.ID, items)
	case errors.Is(err, shoppingfeed.ErrTokenRejected):
		s.m.calls.WithLabelValues(string(op), "token_rejected").Inc()
		s.m.errors.WithLabelValues("token_rejected").Inc()
		s.reportOnce(ctx, "rejected:"+k.storeID+":"+strconv.FormatUint(uint64(k.tokenID), 10), 0,
			fmt.Sprintf("Shopping Feed rejected the token of store %s (shoppingfeed_token %d): updates for this store are held until it is fixed: %v", k.storeID, k.tokenID, err),
			"store_id", k.storeID, "token_id", k.tokenID)
		for _, it := range items {
			s.conclude(ctx, it, s.hold(ctx, it, time.Minute, "token_rejected", "token rejected by Shopping Feed"))
		}
	case shoppingfeed.Retryable(err):
		s.m.calls.WithLabelValues(string(op), "retry").Inc()
		s.m.errors.WithLabelValues("retryable").Inc()
		for _, it := range items {
			s.conclude(ctx, it, s.retry(ctx, it, err))
		}
		s.log.Warn("send failed, will retry", "orders", len(items), "err", err)
	default:
		s.m.calls.WithLabelValues(string(op), "rejected").Inc()
		s.m.errors.WithLabelValues("rejected").Inc()
		if len(items) > 1 {
			// Which order's data was refused? Send each alone, so that
			// only that order fails.
			for _, it := range items {
				s.send(ctx, k, []*item{it})
			}
			return
		}
		s.conclude(ctx, items[0], s.fail(ctx, items[0], fmt.Sprintf("Shopping Feed refused the %s of order %d: %v", op, items[0].task.OrderID, err)))
	}
}

// persist retries a database write that records an outcome Shopping Feed
// (or the webhook) gave, with backoff, until it succeeds or ctx ends: the
// request is never made again because the write failed. The claims of the
// items in hand are renewed meanwhile.
func (s *Sender) persist(ctx context.Context, what string, write func() error) error {
	var err error
	for attempt := 0; ; attempt++ {
		if err = write(); err == nil {
			return nil
		}
		d := min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
		if attempt == 3 {
			s.log.Warn("database write failed; retrying it, not the request", "what", what, "err", err)
		}
		if !pause.For(ctx, d) {
			return err
		}
	}
}

// retry counts a failed attempt for an item and puts it back to wait with
// backoff, or fails it after SEND_MAX_ATTEMPTS.
func (s *Sender) retry(ctx context.Context, it *item, cause error) outcome {
	n, err := s.store.CountAttempt(ctx, it.task.ID, s.instance, cause.Error())
	if err != nil {
		return retryLater("database", err)
	}
	if n >= s.cfg.MaxAttempts {
		if _, ok, err := s.store.ClaimTask(ctx, it.task.ID, s.instance, s.cfg.ClaimTTL); err == nil && ok {
			return s.fail(ctx, it, fmt.Sprintf("gave up the %s of order %d after %d attempts: %v", it.op, it.task.OrderID, n, cause))
		}
	}
	d := min(s.cfg.RetryBase<<min(max(n, 1)-1, 16), s.cfg.RetryMax)
	if wait, ok := shoppingfeed.RetryAfter(cause); ok && wait > d {
		d = wait
	}
	var hinted interface{ RetryWait() time.Duration }
	if errors.As(cause, &hinted) && hinted.RetryWait() > d {
		d = hinted.RetryWait()
	}
	return waitFor(it.task, d, "retry")
}

// accepted records a batch Shopping Feed accepted, hands it to the ticket
// poller, and only then acknowledges the events.
func (s *Sender) accepted(ctx context.Context, k groupKey, batchID string, items []*item) {
	sent := make([]prestashop.SentTask, len(items))
	for i, it := range items {
		sent[i] = prestashop.SentTask{TaskID: it.task.ID, OrderID: it.task.OrderID, Last: it.task.Last, Then: it.then,
			LogMsg: sentLogMsg(it, k.op, batchID), Action: it.action}
		if it.action == prestashop.ActionPartialRefund {
			sent[i].First = it.task.First // the slips the request covered
		}
	}
	var follow map[uint64]uint64
	err := s.persist(ctx, "record an accepted batch", func() (err error) {
		follow, err = s.store.RecordSent(ctx, s.instance, batchID, string(k.op), k.storeID, k.tokenID, sent)
		return err
	})
	if err != nil {
		// Stopping with the batch unrecorded: the claims lapse and the
		// events come back, and the intent recorded before the POST makes
		// the next attempt ask Shopping Feed before sending again.
		s.log.Error("record accepted batch; its orders are checked before any new attempt", "batch_id", batchID, "err", err)
		for _, it := range items {
			s.conclude(ctx, it, nakAfter(s.cfg.RetryBase))
		}
		return
	}
	tc := events.Batch{StoreID: k.storeID, ShopID: items[0].shopID, BatchID: batchID, Operation: string(k.op),
		TokenID: k.tokenID, FirstSeen: time.Now()}
	// Name the shop database, so that only its own pollers read the batch
	// (an unnamed check is any poller's).
	tc.ShopDB, _ = s.ownDB(ctx)
	for _, it := range items {
		tc.Orders = append(tc.Orders, events.BatchOrder{OrderID: it.task.OrderID, TaskID: it.task.ID, SFOrderID: it.sfID, Reference: it.ref, Channel: it.channel})
	}
	if err := s.publishTicketCheck(ctx, tc); err != nil {
		// The task rows hold the batch: the detector's sweeper hands it to
		// the ticket poller later.
		s.log.Warn("hand batch to the ticket poller; the sweeper will", "batch_id", batchID, "err", err)
	}
	for _, it := range items {
		if next, ok := follow[it.task.ID]; ok {
			s.followUp(ctx, it, next)
		}
		s.conclude(ctx, it, acked())
	}
	s.log.Info("batch sent", "operation", k.op, "store_id", k.storeID, "batch_id", batchID, "orders", len(items))
}

// sentLogMsg is the process-log line of an update Shopping Feed accepted,
// worded as the module's "Ticket created" line, with the batch id.
func sentLogMsg(it *item, op prestashop.Operation, batchID string) string {
	ref := it.ref
	if ref == "" {
		ref = it.sfID
	}
	if it.action == prestashop.ActionPartialRefund {
		// The module's own line for a partial refund.
		return fmt.Sprintf("[Order: %d] Partial refund request is sent for Order %s (%s): batch %s (sfsync)", it.task.OrderID, ref, it.refundNote, batchID)
	}
	msg := fmt.Sprintf("[Order: %d] Ticket created for Order %s Status %s: batch %s (sfsync)", it.task.OrderID, ref, op, batchID)
	if it.then != "" {
		msg += "; " + string(it.then) + " follows"
	}
	return msg
}

// followUp hands the pending task RecordSent left for an item's next
// operation (deliver after ship) to the wait lane, due now. When the
// publish fails the sweeper finds the task.
func (s *Sender) followUp(ctx context.Context, it *item, taskID uint64) {
	ev := it.ev.Deferred(taskID, time.Time{})
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.js.PublishMsg(pctx, ev.Msg("then:"+string(it.then), "")); err != nil {
		s.log.Warn("hand the next operation to the wait lane; the sweeper will", "order_id", it.task.OrderID, "operation", it.then, "err", err)
	}
}

func (s *Sender) publishTicketCheck(ctx context.Context, tc events.Batch) error {
	msg, err := tc.Msg(events.BatchID(tc.StoreID, tc.BatchID))
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = s.js.PublishMsg(pctx, msg)
	return err
}
