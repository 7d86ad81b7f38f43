package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/targets"
	"github.com/sfsync/sfsync/pkg/webhook"
	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
)

// Sender is one sender replica; any number may run.
type Sender struct {
	cfg      Config
	store    *prestashop.Store
	js       jetstream.JetStream
	client   *shoppingfeed.Client
	log      *slog.Logger
	m        *metrics
	instance string
	shops    *shopCache

	items    chan *item
	stopped  chan struct{} // closed when the batcher has stopped taking items
	sem      chan struct{}
	inHand   sync.Map // task id → struct{}: claimed by this replica
	inflight sync.Map // *item → struct{}: acked or put back when done
	sends    sync.WaitGroup
	// posts numbers this process's POSTs in the debug log, so that the
	// window between a POST and the commit of its outcome can be told
	// from the log (the chaos run counts kills that land in it).
	posts atomic.Uint64

	keeper *broker.Keeper

	muReport sync.Mutex
	reported map[string]time.Time
	drain    time.Duration

	// The webhook target.
	hook       targets.Mapping
	hookClient *http.Client
	signer     webhook.Signer
	clock      struct {
		mu     sync.Mutex
		offset time.Duration
		read   time.Time
	}
}

// Deps are what a sender runs on.
type Deps struct {
	Store    *prestashop.Store
	NC       *nats.Conn
	Client   *shoppingfeed.Client
	Log      *slog.Logger
	Registry prometheus.Registerer
	// Instance names this replica in task claims.
	Instance string
	// DrainTimeout bounds how long work in flight may take once Run's
	// context ends (default 20s); past it, what is left goes back to the
	// broker.
	DrainTimeout time.Duration
	// Keeper, when set, is nudged when a lane's consumer or stream is
	// gone, so that it declares them again at once.
	Keeper *broker.Keeper
}

// New returns a sender; Run starts it.
func New(cfg Config, d Deps) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(d.NC)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s := &Sender{
		cfg: cfg, store: d.Store, js: js, client: d.Client, log: d.Log, m: newMetrics(d.Registry),
		instance: d.Instance, items: make(chan *item, 4096), stopped: make(chan struct{}), sem: make(chan struct{}, cfg.Concurrency),
		reported: map[string]time.Time{}, drain: d.DrainTimeout, keeper: d.Keeper,
	}
	if s.drain <= 0 {
		s.drain = 20 * time.Second
	}
	if cfg.Targets.ToWebhook() {
		if s.hook, err = targets.LoadMapping(cfg.Targets.Hook.MappingFile); err != nil {
			return nil, err
		}
		s.hookClient = &http.Client{Timeout: cfg.Targets.Hook.Timeout}
		s.signer = webhook.Signer{KeyID: cfg.Targets.Hook.KeyID, Secret: cfg.Targets.Hook.Secret}
	}
	if len(s.instance) > 64 {
		s.instance = s.instance[:64]
	}
	s.shops = newShopCache(s)
	return s, nil
}

// lanes: the due lane takes changes to look at now; the wait lane holds
// updates until they are due.
const (
	laneDue  = "due"
	laneWait = "wait"
)

// Run consumes both lanes until ctx ends. On shutdown it stops fetching,
// lets the messages it holds finish or go back to the broker, and returns.
func (s *Sender) Run(ctx context.Context) error {
	// Work in flight finishes under its own context when ctx ends: claims
	// are released and messages answered, so nothing waits out a claim
	// after a restart. DrainTimeout bounds it.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
		case <-finished:
			return
		}
		select {
		case <-time.After(s.drain):
			s.log.Warn("sender drain timeout: work still in flight goes back to the broker")
			stopWork()
		case <-finished:
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	// The batcher stops once every worker has finished: no item can then
	// arrive after it stopped.
	workersDone := make(chan struct{})
	var allWorkers sync.WaitGroup
	batchDone := make(chan struct{})
	g.Go(func() error { defer close(batchDone); defer close(s.stopped); return s.batcher(workersDone, work) })
	g.Go(func() error { return s.keepAlive(gctx) })
	for _, lane := range []struct{ name, consumer string }{{laneDue, broker.SenderConsumer}, {laneWait, broker.SenderWaitConsumer}} {
		msgs := make(chan jetstream.Msg, 2*s.cfg.Workers)
		var workers sync.WaitGroup
		for range s.cfg.Workers {
			workers.Add(1)
			allWorkers.Add(1)
			go func() {
				defer allWorkers.Done()
				defer workers.Done()
				for m := range msgs {
					s.handle(work, lane.name, m)
				}
			}()
		}
		g.Go(func() error {
			s.consumeLane(gctx, lane.name, lane.consumer, msgs) // drained when gctx ends
			close(msgs)
			workers.Wait()
			return nil
		})
	}
	go func() { allWorkers.Wait(); close(workersDone) }()
	err := g.Wait()
	<-batchDone
	s.sends.Wait()
	return err
}

// item is one due update on its way to Shopping Feed.
type item struct {
	msg      jetstream.Msg
	ev       *sfsyncv1.OrderStatusChanged
	task     prestashop.SyncTask
	shopID   uint32
	op       prestashop.Operation
	entry    shoppingfeed.OrderOperation
	tok      token
	size     int
	sfID     string
	ref      string
	channel  string
	received time.Time
	// hookChange is the history id of the change a webhook update carries.
	hookChange uint64
}

type groupKey struct {
	tokenID uint32
	storeID string
	op      prestashop.Operation
}

func (it *item) key() groupKey {
	return groupKey{tokenID: it.tok.id, storeID: it.tok.storeID, op: it.op}
}

// handle decides what one message needs. It never blocks on the API: due
// updates go to the batcher, everything else is answered here.
func (s *Sender) handle(ctx context.Context, lane string, m jetstream.Msg) {
	var ev sfsyncv1.OrderStatusChanged
	if err := protojson.Unmarshal(m.Data(), &ev); err != nil || ev.OrderId == 0 {
		s.m.errors.WithLabelValues("bad_message").Inc()
		s.log.Error("bad order-status message terminated", "subject", m.Subject(), "err", err, "body", truncate(string(m.Data()), 200))
		_ = m.Term()
		return
	}
	action := prestashop.ActionSyncStatus
	if ev.Target == targets.Webhook {
		action = prestashop.ActionWebhook
	}
	t, err := s.store.PendingTask(ctx, action, ev.OrderId)
	switch {
	case errors.Is(err, prestashop.ErrNotFound):
		_ = m.Ack() // nothing pending for this order (sent, dropped, or never mapped)
		return
	case err != nil:
		s.retryMsg(m, "database", err)
		return
	case t.Failed:
		_ = m.Ack() // failed tasks wait for the merchant's next change or sfsync retry
		return
	}
	due := t.UpdateAt
	if ev.Source == sourceDeferred && ev.NotBefore != nil && ev.NotBefore.AsTime().After(due) {
		due = ev.NotBefore.AsTime()
	}
	if wait := due.Sub(t.Now); wait > 0 {
		if lane == laneWait {
			_ = m.NakWithDelay(wait)
			return
		}
		s.deferMsg(ctx, m, &ev, t, wait, "not_due")
		return
	}
	if _, busy := s.inHand.LoadOrStore(t.ID, struct{}{}); busy || t.Claimed() {
		if !busy {
			s.inHand.Delete(t.ID)
		}
		// Another event of the same order is in hand here or in another
		// sender; look again once it is done, in case a newer change
		// reached the task meanwhile.
		s.deferMsg(ctx, m, &ev, t, min(max(t.ClaimUntil.Sub(t.Now), 500*time.Millisecond), 5*time.Second), "claimed")
		return
	}
	ct, ok, err := s.store.ClaimTask(ctx, t.ID, s.instance, s.cfg.ClaimTTL)
	if err != nil || !ok {
		s.inHand.Delete(t.ID)
		if err != nil {
			s.retryMsg(m, "database", err)
		} else {
			s.deferMsg(ctx, m, &ev, t, time.Second, "claimed")
		}
		return
	}
	it := &item{msg: m, ev: &ev, task: ct, received: time.Now()}
	s.inflight.Store(it, struct{}{})
	if ev.Target == targets.Webhook {
		s.prepareWebhook(ctx, it)
		return
	}
	s.prepare(ctx, it)
}

// release forgets an item this replica held.
func (s *Sender) release(it *item) {
	s.inflight.Delete(it)
	s.inHand.Delete(it.task.ID)
}

// sourceDeferred marks the events the sender publishes to wait itself.
const sourceDeferred = "deferred"

// deferMsg puts an update back to wait d (in the database's clock) on the
// wait lane and acknowledges m. If the wait message cannot be published, m
// itself is NAKed with the delay: nothing is dropped.
func (s *Sender) deferMsg(ctx context.Context, m jetstream.Msg, ev *sfsyncv1.OrderStatusChanged, t prestashop.SyncTask, d time.Duration, reason string) {
	s.m.deferred.WithLabelValues(reason).Inc()
	next := &sfsyncv1.OrderStatusChanged{
		ShopId: ev.ShopId, OrderId: ev.OrderId, OrderStateId: ev.OrderStateId, TaskId: t.ID,
		ChangedAt: ev.ChangedAt, NotBefore: timestamppb.New(t.Now.Add(d)), Source: sourceDeferred, ShopDb: ev.ShopDb, Target: ev.Target,
	}
	body, err := protojson.Marshal(next)
	if err == nil {
		msg := nats.NewMsg(broker.OrderWaitSubject(ev.ShopId, ev.OrderId))
		msg.Data = body
		msg.Header.Set(broker.HeaderShop, strconv.FormatUint(uint64(ev.ShopId), 10))
		msg.Header.Set(broker.HeaderOrder, strconv.FormatUint(uint64(ev.OrderId), 10))
		msg.Header.Set(broker.HeaderOperation, "wait:"+reason)
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err = s.js.PublishMsg(pctx, msg)
		cancel()
	}
	if err != nil {
		s.log.Warn("put update back to wait", "order_id", ev.OrderId, "err", err)
		_ = m.NakWithDelay(d)
		return
	}
	_ = m.Ack()
}

// retryMsg NAKs a message after a transient error, backing off with its
// deliveries.
func (s *Sender) retryMsg(m jetstream.Msg, kind string, err error) {
	s.m.errors.WithLabelValues(kind).Inc()
	n := uint64(1)
	if md, merr := m.Metadata(); merr == nil {
		n = md.NumDelivered
	}
	d := min(time.Duration(1<<min(n, 8))*100*time.Millisecond, 30*time.Second)
	s.log.Warn("order-status message retried", "subject", m.Subject(), "kind", kind, "err", err, "retry_in", d)
	_ = m.NakWithDelay(d)
}

// finish acknowledges an item's message and forgets it.
func (s *Sender) finish(it *item) {
	s.release(it)
	_ = it.msg.Ack()
}

// hold gives an item's task back and puts its update back to wait d.
func (s *Sender) hold(ctx context.Context, it *item, d time.Duration, reason, note string) {
	s.release(it)
	if err := s.store.ReleaseTask(ctx, it.task.ID, s.instance, note); err != nil {
		s.log.Warn("release task", "task_id", it.task.ID, "err", err)
	}
	s.deferMsg(ctx, it.msg, it.ev, it.task, d, reason)
}

// keepAlive tells the broker every 20 s that held messages are still being
// worked on, and renews their claims.
func (s *Sender) keepAlive(ctx context.Context) error {
	t := time.NewTicker(20 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var ids []uint64
		s.inflight.Range(func(k, _ any) bool {
			it := k.(*item)
			_ = it.msg.InProgress()
			ids = append(ids, it.task.ID)
			return true
		})
		if err := s.store.RenewClaims(ctx, ids, s.instance, s.cfg.ClaimTTL); err != nil {
			s.log.Warn("renew claims", "err", err)
		}
	}
}

// reportOnce logs an error, and writes it to the back office's process
// log, at most once a minute per key.
func (s *Sender) reportOnce(ctx context.Context, key string, orderID uint32, msg string, attrs ...any) {
	s.muReport.Lock()
	last, seen := s.reported[key]
	if seen && time.Since(last) < time.Minute {
		s.muReport.Unlock()
		return
	}
	s.reported[key] = time.Now()
	s.muReport.Unlock()
	s.log.Error(msg, attrs...)
	s.processLog(ctx, orderID, prestashop.LevelError, msg)
}

func (s *Sender) processLog(ctx context.Context, orderID uint32, level, msg string) {
	e := prestashop.LogEntry{Name: "sfsync:sender", Msg: msg, Level: level, Session: s.instance}
	if orderID != 0 {
		e.ObjectName, e.ObjectID = "Order", orderID
	}
	if err := s.store.ProcessLog(context.WithoutCancel(ctx), e); err != nil {
		s.log.Warn("write process log", "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
