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

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
	"github.com/sfsync/sfsync/pkg/targets"
	"github.com/sfsync/sfsync/pkg/webhook"
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
	shops    *shoppolicy.Cache

	items   chan *item
	stopped chan struct{} // closed when the batcher has stopped taking items
	// slots bound the requests in flight per store (and for the webhook):
	// a store that answers slowly, or throttles for minutes, holds its own
	// slots only, never another store's.
	slots    sync.Map // string → chan struct{}
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
	// shopDB is this sender's shop database, once read (ownDB).
	shopDB string
	drain  time.Duration

	// The webhook target.
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
		instance: d.Instance, items: make(chan *item, 4096), stopped: make(chan struct{}),
		reported: map[string]time.Time{}, drain: d.DrainTimeout, keeper: d.Keeper,
	}
	if s.drain <= 0 {
		s.drain = 20 * time.Second
	}
	pc := shoppolicy.Config{TTL: cfg.SettingsTTL, SFToken: cfg.SFToken, SFStoreID: cfg.SFStoreID}
	if cfg.Targets.ToWebhook() {
		if pc.Hook, err = targets.LoadMapping(cfg.Targets.Hook.MappingFile); err != nil {
			return nil, err
		}
		s.hookClient = webhookClient(cfg.Targets.Hook.Timeout)
		s.signer = webhook.Signer{KeyID: cfg.Targets.Hook.KeyID, Secret: cfg.Targets.Hook.Secret}
	}
	if len(s.instance) > 64 {
		s.instance = prestashop.ColumnText(s.instance, 64)
	}
	s.shops = shoppolicy.New(d.Store, pc)
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
					ev, o := s.handle(work, lane.name, m)
					s.settle(work, m, ev, o)
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
	ev       events.Change
	task     prestashop.SyncTask
	shopID   uint32
	op       prestashop.Operation
	entry    shoppingfeed.OrderOperation
	tok      shoppolicy.Token
	size     int
	sfID     string
	ref      string
	channel  string
	received time.Time
	// then is the operation that follows once this one is accepted
	// (deliver after ship): a pending task is left for it.
	then prestashop.Operation
	// hookChange is the history id of the change a webhook update carries.
	hookChange uint64
	// action is the task's: SYNC_STATUS, PARTIAL_REFUND or SFSYNC_WEBHOOK.
	action string
	// refundNote says what a partial refund sends, for the process log.
	refundNote string
}

type groupKey struct {
	tokenID uint32
	storeID string
	op      prestashop.Operation
}

// storeKey names the store of a group: its requests' slots.
func (k groupKey) storeKey() string {
	return strconv.FormatUint(uint64(k.tokenID), 10) + "/" + k.storeID
}

func (it *item) key() groupKey {
	return groupKey{tokenID: it.tok.ID, storeID: it.tok.StoreID, op: it.op}
}

// handle decides what one message needs. It never blocks on the API: due
// updates go to the batcher (taken), everything else gets its outcome here.
func (s *Sender) handle(ctx context.Context, lane string, m jetstream.Msg) (events.Change, outcome) {
	ev, err := events.DecodeChange(m.Data())
	if err != nil {
		return ev, terminated(err)
	}
	if ev.ShopDB != "" {
		own, err := s.ownDB(ctx)
		if err != nil {
			return ev, retryLater("database", err)
		}
		if ev.ShopDB != own {
			return ev, s.passBack(ev, own)
		}
	}
	action := prestashop.ActionSyncStatus
	switch {
	case ev.Webhook():
		action = prestashop.ActionWebhook
	case ev.Action == prestashop.ActionPartialRefund:
		action = prestashop.ActionPartialRefund
	}
	t, err := s.store.PendingTask(ctx, action, ev.OrderID)
	switch {
	case errors.Is(err, prestashop.ErrNotFound):
		return ev, acked() // nothing pending for this order (sent, dropped, or never mapped)
	case err != nil:
		return ev, retryLater("database", err)
	case t.Failed:
		return ev, acked() // failed tasks wait for the merchant's next change or sfsync retry
	}
	due := t.UpdateAt
	if ev.Source == events.SourceDeferred && ev.NotBefore.After(due) {
		due = ev.NotBefore
	}
	if wait := due.Sub(t.Now); wait > 0 {
		if lane == laneWait {
			return ev, nakAfter(wait)
		}
		return ev, waitFor(t, wait, "not_due")
	}
	if _, busy := s.inHand.LoadOrStore(t.ID, struct{}{}); busy || t.Claimed() {
		if !busy {
			s.inHand.Delete(t.ID)
		}
		// Another event of the same order is in hand here or in another
		// sender; look again once it is done, in case a newer change
		// reached the task meanwhile.
		return ev, waitFor(t, min(max(t.ClaimUntil.Sub(t.Now), 500*time.Millisecond), 5*time.Second), "claimed")
	}
	ct, ok, err := s.store.ClaimTask(ctx, t.ID, s.instance, s.cfg.ClaimTTL)
	if err != nil || !ok {
		s.inHand.Delete(t.ID)
		if err != nil {
			return ev, retryLater("database", err)
		}
		return ev, waitFor(t, time.Second, "claimed")
	}
	it := &item{msg: m, ev: ev, task: ct, received: time.Now(), action: action}
	s.inflight.Store(it, struct{}{})
	var o outcome
	switch action {
	case prestashop.ActionWebhook:
		o = s.prepareWebhook(ctx, it)
	case prestashop.ActionPartialRefund:
		o = s.preparePartialRefund(ctx, it)
	default:
		o = s.prepare(ctx, it)
	}
	if o.kind != taken {
		s.release(it)
	}
	return ev, o
}

// slot takes one of key's request slots (SEND_CONCURRENCY of them) and
// returns the function that gives it back.
func (s *Sender) slot(key string) (release func()) {
	ch, _ := s.slots.LoadOrStore(key, make(chan struct{}, s.cfg.Concurrency))
	sem := ch.(chan struct{})
	sem <- struct{}{}
	return func() { <-sem }
}

// ForeignPassBack is how long an event of another shop database waits
// before the broker offers it again, to any sender of the durable consumer
// (which every database on the broker shares).
const ForeignPassBack = 500 * time.Millisecond

// passBack NAKs an event of another shop database, never acks it, so that
// a sender of its own database takes it: it names an order of that
// database, which this sender must not look up in its own. An event that
// names no database (published before events named it) is this sender's.
func (s *Sender) passBack(ev events.Change, own string) outcome {
	s.m.foreign.Inc()
	if s.loudOnce("foreign." + ev.ShopDB) {
		s.log.Warn("events of another shop database reach this sender: passed back for its own senders; give each shop database its own broker or account",
			"shop_db", ev.ShopDB, "own_shop_db", own, "order_id", ev.OrderID)
	}
	return nakAfter(ForeignPassBack)
}

// ownDB is the name of this sender's shop database, read once.
func (s *Sender) ownDB(ctx context.Context) (string, error) {
	s.muReport.Lock()
	db := s.shopDB
	s.muReport.Unlock()
	if db != "" {
		return db, nil
	}
	db, err := s.store.DatabaseName(ctx)
	if err != nil {
		return "", err
	}
	s.muReport.Lock()
	s.shopDB = db
	s.muReport.Unlock()
	return db, nil
}

// release forgets an item this replica held.
func (s *Sender) release(it *item) {
	s.inflight.Delete(it)
	s.inHand.Delete(it.task.ID)
}

// hold gives an item's task back; its update waits d.
func (s *Sender) hold(ctx context.Context, it *item, d time.Duration, reason, note string) outcome {
	if err := s.store.ReleaseTask(ctx, it.task.ID, s.instance, note); err != nil {
		s.log.Warn("release task", "task_id", it.task.ID, "err", err)
	}
	return waitFor(it.task, d, reason)
}

// keepAlive tells the broker every third of CLAIM_TTL that held messages
// are still being worked on, and renews their claims: both stay short, so
// that a sender that dies frees its orders within seconds.
func (s *Sender) keepAlive(ctx context.Context) error {
	t := time.NewTicker(min(s.cfg.ClaimTTL/3, broker.SenderAckWait/3))
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
	if !s.loudOnce(key) {
		return
	}
	s.log.Error(msg, attrs...)
	s.processLog(ctx, orderID, prestashop.LevelError, msg)
}

// loudOnce reports whether a loud line under key is due: at most one a
// minute per key.
func (s *Sender) loudOnce(key string) bool {
	s.muReport.Lock()
	defer s.muReport.Unlock()
	if last, seen := s.reported[key]; seen && time.Since(last) < time.Minute {
		return false
	}
	s.reported[key] = time.Now()
	return true
}

func (s *Sender) processLog(ctx context.Context, orderID uint32, level, msg string) {
	e := prestashop.LogEntry{Name: prestashop.ProcessOrderSync, Msg: msg, Level: level, Session: s.instance}
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
