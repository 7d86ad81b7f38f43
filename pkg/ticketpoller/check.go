package ticketpoller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
)

// handleCheck handles a new batch: it is checked at once.
func (p *Poller) handleCheck(ctx context.Context, msg jetstream.Msg) (time.Duration, error) {
	tc, err := decodeCheck(msg)
	if err != nil {
		return 0, err
	}
	if d, err := p.passBack(ctx, tc); d > 0 || err != nil {
		return d, err
	}
	return p.check(ctx, tc, false)
}

// handleWait handles a re-check: NAKed with a delay until it is due. A
// batch still pending (or held) after the check waits on this same
// message, NAKed with the next backoff: waiting publishes nothing.
func (p *Poller) handleWait(ctx context.Context, msg jetstream.Msg) (time.Duration, error) {
	tc, err := decodeCheck(msg)
	if err != nil {
		return 0, err
	}
	if d, err := p.passBack(ctx, tc); d > 0 || err != nil {
		return d, err
	}
	if wait := time.Until(p.due(msg, tc)); wait > 5*time.Millisecond {
		return wait, nil
	}
	// The message's attempt does not move while it waits in place: its
	// deliveries since count as attempts, for the backoff.
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
		tc.Attempt += uint32(min(md.NumDelivered-1, 1000))
	}
	return p.check(ctx, tc, true)
}

// ForeignPassBack is how long a check of another shop database waits
// before the broker offers it again (to any poller of the durable
// consumer, which is shared by every database on the broker).
const ForeignPassBack = 500 * time.Millisecond

// passBack returns ForeignPassBack for a check of another shop database:
// it is NAKed, never acked, so that a poller of its own database takes it.
// A check that names no database (published before checks named it) is
// this poller's.
func (p *Poller) passBack(ctx context.Context, tc events.Batch) (time.Duration, error) {
	if tc.ShopDB == "" {
		return 0, nil
	}
	own, err := p.ownDB(ctx)
	if err != nil {
		return 0, err
	}
	if tc.ShopDB == own {
		return 0, nil
	}
	p.m.foreign.Inc()
	if p.loudOnce("foreign." + tc.ShopDB) {
		p.log.Warn("checks of another shop database reach this poller: passed back for its own pollers; give each shop database its own broker or account",
			"shop_db", tc.ShopDB, "own_shop_db", own, "batch_id", tc.BatchID)
	}
	return ForeignPassBack, nil
}

// ownDB is the name of this poller's shop database, read once.
func (p *Poller) ownDB(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shopDB != "" {
		return p.shopDB, nil
	}
	db, err := p.store.DatabaseName(ctx)
	if err != nil {
		return "", err
	}
	p.shopDB = db
	return db, nil
}

// due is when a re-check is due: its Sfsync-Due header, else its publish
// time plus the backoff of its attempt.
func (p *Poller) due(msg jetstream.Msg, tc events.Batch) time.Time {
	if !tc.Due.IsZero() {
		return tc.Due
	}
	if md, err := msg.Metadata(); err == nil {
		return md.Timestamp.Add(p.cfg.backoff(tc.Attempt))
	}
	return time.Time{}
}

func decodeCheck(msg jetstream.Msg) (events.Batch, error) {
	tc, err := events.DecodeBatch(msg.Data(), msg.Headers())
	if err != nil {
		return tc, &badMessage{err: fmt.Errorf("%s: %w", msg.Subject(), err)}
	}
	return tc, nil
}

// batch is what a check knows of one batch: the message merged with the
// task table.
type batch struct {
	shopDB    string
	id        string
	store     string
	shop      uint32
	tokenID   uint32
	operation string
	attempt   uint32
	// firstSeen is when Shopping Feed accepted the batch (by the local
	// clock): the message's first_seen or, if older, the tasks' date_upd.
	firstSeen time.Time
	// live are the tasks still waiting for their ticket.
	live []prestashop.TicketTask
	// known is every order of the batch the poller knows of, live first:
	// tickets are matched against them all, so that the ticket of an
	// order already resolved is not taken for a stranger.
	known []knownOrder
	// inPlace: the check came on the wait subject, and the batch's next
	// check waits on that message (next says how long) rather than on a
	// new one.
	inPlace bool
	next    time.Duration
}

type knownOrder struct {
	taskID  uint64
	orderID uint32
	ref     shoppingfeed.OrderRef
}

func newBatch(tc events.Batch, tasks []prestashop.TicketTask, now time.Time) *batch {
	b := &batch{shopDB: tc.ShopDB, id: tc.BatchID, store: tc.StoreID, shop: tc.ShopID, tokenID: tc.TokenID, operation: tc.Operation, attempt: tc.Attempt,
		firstSeen: tc.FirstSeen}
	sent := map[uint64]*events.BatchOrder{}
	for i, o := range tc.Orders {
		if o.TaskID != 0 {
			sent[o.TaskID] = &tc.Orders[i]
		}
	}
	var failed []prestashop.TicketTask
	seen := map[uint64]bool{}
	for _, t := range tasks {
		seen[t.TaskID] = true
		if t.Failed {
			failed = append(failed, t)
			continue
		}
		b.live = append(b.live, t)
		if b.store == "" {
			b.store = t.StoreID
		}
		if b.shop == 0 {
			b.shop = t.ShopID
		}
		if b.tokenID == 0 {
			b.tokenID = t.TokenID
		}
		if b.operation == "" {
			b.operation = t.Operation
		}
		if since := now.Add(-t.SinceUpdate); b.firstSeen.IsZero() || since.Before(b.firstSeen) {
			b.firstSeen = since
		}
	}
	if b.firstSeen.IsZero() {
		b.firstSeen = now
	}
	for _, t := range append(append([]prestashop.TicketTask(nil), b.live...), failed...) {
		b.known = append(b.known, knownOrder{taskID: t.TaskID, orderID: t.OrderID, ref: orderRef(sent[t.TaskID], t)})
	}
	for i, o := range tc.Orders {
		if !seen[o.TaskID] {
			b.known = append(b.known, knownOrder{taskID: o.TaskID, orderID: o.OrderID, ref: orderRef(&tc.Orders[i], prestashop.TicketTask{})})
		}
	}
	return b
}

// orderRef is how the order was identified in the batch: as the sender's
// message says it was sent, else as the shoppingfeed_order row says.
func orderRef(sent *events.BatchOrder, t prestashop.TicketTask) shoppingfeed.OrderRef {
	if sent != nil && (sent.SFOrderID != "" || sent.Reference != "") {
		return shoppingfeed.OrderRef{ID: sfOrderID(sent.SFOrderID), Reference: sent.Reference, ChannelName: sent.Channel}
	}
	return shoppingfeed.OrderRef{ID: sfOrderID(t.SFOrderID), Reference: t.MarketplaceRef, ChannelName: t.Channel}
}

func sfOrderID(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func (b *batch) attrs() []any {
	return []any{"batch_id", b.id, "store_id", b.store, "shop_id", b.shop, "operation", b.operation, "attempt", b.attempt}
}

// check checks one batch. It returns an error only when the check must be
// retried (the database or the broker failed); everything the API says is
// an outcome. With inPlace, a batch to check again returns the wait before
// its next check, for its message to be NAKed with; else the next check
// is published and the wait is 0.
func (p *Poller) check(ctx context.Context, tc events.Batch, inPlace bool) (time.Duration, error) {
	tasks, err := p.store.BatchTasks(ctx, tc.BatchID)
	if err != nil {
		return 0, err
	}
	b := newBatch(tc, tasks, time.Now())
	b.inPlace = inPlace
	err = p.checkBatch(ctx, b)
	return b.next, err
}

func (p *Poller) checkBatch(ctx context.Context, b *batch) error {
	now := time.Now()
	if len(b.live) == 0 {
		p.m.checks.WithLabelValues("noop").Inc()
		p.log.Debug("batch has nothing left to check", b.attrs()...)
		return nil
	}
	cred, err := p.credentials(ctx, b)
	if errors.Is(err, errNoCredentials) {
		if p.loudOnce("notoken." + strconv.FormatUint(uint64(b.shop), 10)) {
			p.log.Error("cannot read the tickets of a batch: its checks are held until this is fixed", append(b.attrs(), "err", err)...)
		}
		return p.reschedule(ctx, b, "held")
	}
	if err != nil {
		return err
	}
	if p.isHeld(cred.key) {
		return p.reschedule(ctx, b, "held")
	}
	rctx, cancel := context.WithTimeout(ctx, p.cfg.CheckTimeout)
	list, err := p.sf.BatchTickets(rctx, cred.token, b.store, b.id)
	cancel()
	age := now.Sub(b.firstSeen)
	switch {
	case err == nil:
		p.m.reads.WithLabelValues("ok").Inc()
		return p.record(ctx, b, judge(b, list, age, p.cfg.MaxAge))
	case errors.Is(err, shoppingfeed.ErrNotFound):
		p.m.reads.WithLabelValues("not_found").Inc()
		msg := fmt.Sprintf("Shopping Feed does not know batch %s (404): its outcome cannot be known", b.id)
		return p.record(ctx, b, failAll(b, msg, resNotFound))
	case errors.Is(err, shoppingfeed.ErrTokenRejected):
		p.m.reads.WithLabelValues("token_rejected").Inc()
		p.hold(cred.key)
		if p.loudOnce("rejected." + cred.key) {
			p.log.Error("shopping feed rejected the token: ticket checks are held, nothing is dropped; fix the token",
				append(b.attrs(), "token_id", cred.tokenID, "err", err)...)
		}
		return p.reschedule(ctx, b, "held")
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		p.m.reads.WithLabelValues("error").Inc()
		if age > p.cfg.MaxAge {
			msg := fmt.Sprintf("the tickets of batch %s could not be read for %s: %v", b.id, age.Round(time.Minute), err)
			return p.record(ctx, b, failAll(b, msg, resExpired))
		}
		p.log.Warn("read tickets, retrying later", append(b.attrs(), "err", err)...)
		after, _ := shoppingfeed.RetryAfter(err)
		return p.rescheduleAfter(ctx, b, "retry", max(after, p.cfg.backoff(b.attempt+1)))
	}
}

// outcome is a conclusion for one task and the metric label it counts under.
type outcome struct {
	prestashop.TicketOutcome
	label string
}

// verdict is everything one read of a batch concluded.
type verdict struct {
	outcomes  []outcome
	unmatched []shoppingfeed.Ticket
	// pendingState is a pending ticket's state, for the log.
	pendingState string
}

// judge matches the tickets to the batch's orders and decides each live
// task: by the SF order id of the ticket's payload first, then by the
// marketplace reference and channel; each ticket goes to one order.
func judge(b *batch, list shoppingfeed.TicketList, age, maxAge time.Duration) verdict {
	assigned := make([]*shoppingfeed.Ticket, len(b.known))
	used := make([]bool, len(list.Tickets))
	for ti := range list.Tickets {
		t := &list.Tickets[ti]
		if t.Payload.ID == 0 {
			continue
		}
		for ki, k := range b.known {
			if assigned[ki] == nil && k.ref.ID == t.Payload.ID {
				assigned[ki], used[ti] = t, true
				break
			}
		}
	}
	for ti := range list.Tickets {
		if used[ti] {
			continue
		}
		t := &list.Tickets[ti]
		for ki, k := range b.known {
			if assigned[ki] == nil && t.Payload.Matches(k.ref) {
				assigned[ki], used[ti] = t, true
				break
			}
		}
	}
	var v verdict
	for ti, u := range used {
		if !u {
			v.unmatched = append(v.unmatched, list.Tickets[ti])
		}
	}
	expired := age > maxAge
	for ki := range b.live { // live tasks come first in known
		task, t := b.live[ki], assigned[ki]
		o := outcome{TicketOutcome: prestashop.TicketOutcome{TaskID: task.TaskID, OrderID: task.OrderID}}
		op := b.operation
		if task.Operation != "" {
			op = task.Operation
		}
		switch {
		case t == nil && expired:
			o.Kind, o.label = prestashop.TicketFailed, resExpired
			o.Message = fmt.Sprintf("Shopping Feed gave no ticket for this order in batch %s within %s", b.id, maxAge)
		case t == nil:
			o.Kind = prestashop.TicketPending
		case t.State == shoppingfeed.TicketSucceed || t.State == shoppingfeed.TicketCanceled:
			o.Kind, o.TicketID, o.label = prestashop.TicketDone, t.ID, string(t.State)
			verb := "accepted"
			if t.State == shoppingfeed.TicketCanceled {
				verb = "canceled"
			}
			o.LogMsg = fmt.Sprintf("%s %s by Shopping Feed (batch %s, ticket %s)", op, verb, b.id, t.ID)
		case t.State == shoppingfeed.TicketFailed:
			o.Kind, o.TicketID, o.label = prestashop.TicketFailed, t.ID, resFailed
			o.Message = strings.TrimSpace(t.Message)
			if o.Message == "" {
				o.Message = "Shopping Feed reported the ticket failed without a message"
			}
		case expired:
			o.Kind, o.TicketID, o.label = prestashop.TicketFailed, t.ID, resExpired
			o.Message = fmt.Sprintf("Shopping Feed ticket %s was still %s after %s", t.ID, t.State, maxAge)
		default:
			o.Kind, o.TicketID = prestashop.TicketPending, t.ID
			v.pendingState = string(t.State)
		}
		if o.Kind == prestashop.TicketFailed {
			o.LogMsg = fmt.Sprintf("%s failed at Shopping Feed: %s (batch %s", op, o.Message, b.id)
			if o.TicketID != "" {
				o.LogMsg += ", ticket " + o.TicketID
			}
			o.LogMsg += ")"
		}
		v.outcomes = append(v.outcomes, o)
	}
	return v
}

// failAll fails every live task of the batch with msg.
func failAll(b *batch, msg, label string) verdict {
	var v verdict
	for _, t := range b.live {
		op := t.Operation
		if op == "" {
			op = b.operation
		}
		v.outcomes = append(v.outcomes, outcome{label: label, TicketOutcome: prestashop.TicketOutcome{
			TaskID: t.TaskID, OrderID: t.OrderID, Kind: prestashop.TicketFailed, Message: msg,
			LogMsg: fmt.Sprintf("%s failed at Shopping Feed: %s", op, msg),
		}})
	}
	return v
}

// record writes the verdict in one transaction, counts it, and schedules
// the next check while some task is still pending.
func (p *Poller) record(ctx context.Context, b *batch, v verdict) error {
	res := prestashop.TicketResults{BatchID: b.id, LogName: LogName, Session: p.instance}
	labels := map[uint64]string{}
	for _, o := range v.outcomes {
		res.Outcomes = append(res.Outcomes, o.TicketOutcome)
		labels[o.TaskID] = o.label
	}
	applied, err := p.store.ApplyTicketResults(ctx, res)
	if err != nil {
		return err
	}
	elapsed := time.Since(b.firstSeen).Seconds()
	var done, failed, pending int
	for _, o := range applied {
		switch o.Kind {
		case prestashop.TicketDone:
			done++
		case prestashop.TicketFailed:
			failed++
			p.log.Warn("order update failed at shopping feed", append(b.attrs(), "order_id", o.OrderID,
				"task_id", o.TaskID, "ticket_id", o.TicketID, "err", o.Message)...)
		default:
			pending++
			continue
		}
		p.m.resolved.WithLabelValues(labels[o.TaskID]).Inc()
		p.m.resolve.WithLabelValues(labels[o.TaskID]).Observe(elapsed)
	}
	if pending == 0 {
		for _, t := range v.unmatched {
			p.m.unmatched.Inc()
			p.log.Warn("ticket matches no order of its batch", append(b.attrs(), "ticket_id", t.ID, "state", string(t.State),
				"payload", string(t.Payload.Raw))...)
		}
		p.m.checks.WithLabelValues("resolved").Inc()
		if done+failed > 0 {
			p.log.Info("batch resolved", append(b.attrs(), "succeeded", done, "failed", failed)...)
		}
		return nil
	}
	p.log.Debug("batch still pending", append(b.attrs(), "succeeded", done, "failed", failed, "pending", pending,
		"state", v.pendingState)...)
	b.live = liveAfter(b.live, applied)
	return p.rescheduleAfter(ctx, b, "pending", p.cfg.backoff(b.attempt+1))
}

// liveAfter keeps the tasks that the check left pending.
func liveAfter(live []prestashop.TicketTask, applied []prestashop.TicketOutcome) []prestashop.TicketTask {
	pending := map[uint64]bool{}
	for _, o := range applied {
		if o.Kind == prestashop.TicketPending {
			pending[o.TaskID] = true
		}
	}
	var out []prestashop.TicketTask
	for _, t := range live {
		if pending[t.TaskID] {
			out = append(out, t)
		}
	}
	return out
}

// reschedule records progress on a batch that could not be read now and
// checks it again after the next backoff.
func (p *Poller) reschedule(ctx context.Context, b *batch, result string) error {
	return p.rescheduleAfter(ctx, b, result, p.cfg.backoff(b.attempt+1))
}

// rescheduleAfter records progress on the live tasks (so the sweeper leaves
// a batch that is followed alone) and publishes the next check, due after
// wait, on the wait subject.
func (p *Poller) rescheduleAfter(ctx context.Context, b *batch, result string, wait time.Duration) error {
	if result != "pending" { // record() touched them already
		ids := make([]uint64, len(b.live))
		for i, t := range b.live {
			ids[i] = t.TaskID
		}
		if err := p.store.TouchTasks(ctx, ids); err != nil {
			return err
		}
	}
	if b.inPlace {
		b.next = max(wait, time.Millisecond)
		p.m.checks.WithLabelValues(result).Inc()
		return nil
	}
	next := events.Batch{
		ShopDB: b.shopDB, StoreID: b.store, ShopID: b.shop, BatchID: b.id, Operation: b.operation,
		Attempt: b.attempt + 1, FirstSeen: b.firstSeen, TokenID: b.tokenID, Due: time.Now().Add(wait),
	}
	for _, t := range b.live {
		next.Orders = append(next.Orders, events.BatchOrder{OrderID: t.OrderID, TaskID: t.TaskID,
			SFOrderID: t.SFOrderID, Reference: t.MarketplaceRef, Channel: t.Channel})
	}
	msg, err := next.Msg(events.RecheckID(b.store, b.id, next.Attempt))
	if err != nil {
		return err
	}
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish next check of batch %s: %w", b.id, err)
	}
	p.m.checks.WithLabelValues(result).Inc()
	return nil
}

// cred is what reads a batch's tickets.
type cred struct {
	token   config.Secret
	tokenID uint32
	// key names the token and store in holds and loud logs, never the token.
	key string
}

// errNoCredentials says a batch cannot be read until someone sets a token
// or a store id: it is held, not failed.
var errNoCredentials = errors.New("no credentials")

// credentials picks the token that reads the batch, by the shop policy's
// token rule from the batch's shoppingfeed_token row. The batch's store is
// the one the sender recorded, else the token's.
func (p *Poller) credentials(ctx context.Context, b *batch) (cred, error) {
	tok, err := p.shops.Token(ctx, b.tokenID, b.shop)
	if errors.Is(err, shoppolicy.ErrNoToken) {
		return cred{}, fmt.Errorf("%w: batch %s: %w", errNoCredentials, b.id, err)
	}
	if err != nil {
		return cred{}, err
	}
	if b.store == "" {
		b.store = tok.StoreID
	}
	if b.store == "" {
		return cred{}, fmt.Errorf("%w: batch %s names no store id", errNoCredentials, b.id)
	}
	key := "env/" + b.store
	if tok.ID != 0 {
		key = strconv.FormatUint(uint64(tok.ID), 10) + "/" + b.store
	}
	return cred{token: tok.Secret, tokenID: tok.ID, key: key}, nil
}

// hold stops reads with a rejected token for a minute: its batches are
// rescheduled without asking the API again.
func (p *Poller) hold(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holds[key] = time.Now().Add(p.holdFor)
}

func (p *Poller) isHeld(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.holds[key]
	if ok && time.Now().After(until) {
		delete(p.holds, key)
		return false
	}
	return ok
}
