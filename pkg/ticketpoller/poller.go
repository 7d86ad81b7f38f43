// Package ticketpoller follows every Shopping Feed batch the sender hands
// over until each of its tickets resolves, records the outcome in the task
// table and the back office's process log, and mails the merchant a report
// of what failed.
//
// # Messages
//
// A TicketCheck (protojson) on events.TicketCheckSubject names a batch; the
// task table is the truth about which of its orders still wait. Each check
// reads the batch's tickets once (every page of ?batchId=), resolves the
// task rows whose ticket is final, and, when some are still pending,
// publishes the next check on events.TicketWaitSubject with a Sfsync-Due
// header and acks. The wait consumer NAKs such a message with a delay until
// it is due: a waiting batch holds a slot of the wait consumer (whose
// MaxAckPending is huge), never one of the consumer new batches arrive on,
// and no handler ever sleeps. A re-check that finds the batch still pending
// (or held) waits on its own message, NAKed with the next backoff: a batch
// costs one message on the wait subject however long it waits.
//
// A check that fails (an error, not a wait) is published again, due after
// a backoff, with its failure count (events.HeaderErrors); after
// MESSAGE_MAX_ERRORS failures it goes to the dead-letter stream. A check
// of another shop database is NAKed back for that database's pollers.
//
// Checks are idempotent: a batch may be checked twice, by two replicas at
// once, or after the sweeper republished it; the rows are locked while a
// check is recorded, so each is resolved and logged once.
//
// # Outcomes
//
//   - succeed, canceled: the task row is deleted, with any older failed task
//     of the same order it supersedes, and a success line is logged.
//   - failed, a 404 on the batch, or pending past TICKET_MAX_AGE: the row is
//     kept and marked failed with the reason, an error line is logged, and
//     the failure goes into the next error report.
//   - a rejected or missing token: the batch is held and retried; nothing is
//     dropped, and the problem is logged loudly at most once a minute.
package ticketpoller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/internal/pause"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
)

// LogName is the process-log name of the poller's lines: the module's
// order-sync process, which the back office's process log filters on.
const LogName = prestashop.ProcessOrderSync

// Deps are what a poller runs on.
type Deps struct {
	Store *prestashop.Store
	NC    *nats.Conn
	SF    *shoppingfeed.Client
	Log   *slog.Logger
	// Registry receives the metrics; nil registers nothing.
	Registry prometheus.Registerer
	// Instance names this replica in the process log (id_session).
	Instance string
	// DrainTimeout bounds how long checks in flight may run once Run's
	// context ends (default 25s).
	DrainTimeout time.Duration
	// SMTPTLS is the TLS configuration for the SMTP servers, SMTP_URL's or
	// a shop's (nil: the system's roots).
	SMTPTLS *tls.Config
	// Keeper, when set, is nudged when a consumer or its stream is gone,
	// so that it declares them again at once.
	Keeper *broker.Keeper
}

// Poller is one ticket-poller replica.
type Poller struct {
	cfg      Config
	store    *prestashop.Store
	js       jetstream.JetStream
	sf       *shoppingfeed.Client
	log      *slog.Logger
	m        *metrics
	instance string
	drain    time.Duration
	mailer   *smtpMailer
	smtpTLS  *tls.Config
	keeper   *broker.Keeper
	shops    *shoppolicy.Cache

	// holdFor is how long reads with a rejected token stop.
	holdFor time.Duration

	mu     sync.Mutex
	shopDB string               // this poller's shop database, once read
	holds  map[string]time.Time // credential key → reads held until
	loud   map[string]time.Time // log key → last loud line
	// noMail is, per shop, why its reports cannot be mailed, as last logged.
	noMail map[string]string
}

// New returns a poller; Run and RunReports start it.
func New(cfg Config, d Deps) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Store == nil || d.NC == nil || d.SF == nil {
		return nil, errors.New("ticketpoller: Store, NC and SF are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.DrainTimeout <= 0 {
		d.DrainTimeout = 25 * time.Second
	}
	if d.Instance == "" {
		d.Instance = "ticketpoller"
	}
	js, err := jetstream.New(d.NC)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, fmt.Errorf("ticketpoller metrics: %w", err)
	}
	p := &Poller{
		cfg: cfg, store: d.Store, js: js, sf: d.SF, log: d.Log, m: m,
		instance: d.Instance, drain: d.DrainTimeout, keeper: d.Keeper,
		holdFor: time.Minute, holds: map[string]time.Time{}, loud: map[string]time.Time{}, noMail: map[string]string{},
		smtpTLS: d.SMTPTLS,
		shops:   shoppolicy.New(d.Store, shoppolicy.Config{TTL: cfg.SettingsTTL, SFToken: cfg.Token}),
	}
	if cfg.SMTP.Set() {
		p.mailer = newSMTPMailer(cfg.SMTP, cfg.SMTPTimeout, d.SMTPTLS)
	}
	return p, nil
}

// Run consumes new batches and re-checks, and keeps the gauges fresh, until
// ctx ends; checks in flight then get DrainTimeout to finish.
func (p *Poller) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.consume(ctx, broker.TicketConsumer, p.handleCheck) })
	g.Go(func() error { return p.consume(ctx, broker.TicketWaitConsumer, p.handleWait) })
	return g.Wait()
}

// handler handles one message. It returns a delay to NAK a message that is
// not due yet, nil to ack it, a *badMessage to terminate it, or any other
// error to retry it later.
type handler func(ctx context.Context, msg jetstream.Msg) (time.Duration, error)

// badMessage is a message that no retry can make usable.
type badMessage struct{ err error }

func (e *badMessage) Error() string { return "bad ticket check message: " + e.err.Error() }
func (e *badMessage) Unwrap() error { return e.err }

// consume runs Concurrency workers on one durable consumer. Each pulls one
// message at a time and handles it before pulling the next: nothing waits
// in a client buffer while its ack timer runs, a message NAKed for later
// does not use up a pull request others wait on, and fetching stops as
// soon as ctx ends. Checks in flight then get DrainTimeout to finish.
func (p *Poller) consume(ctx context.Context, name string, h handler) error {
	var cons jetstream.Consumer
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		var err error
		cons, err = p.js.Consumer(ctx, broker.TicketsStream, name)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if broker.IsGone(err) {
			p.keeper.Nudge()
		}
		p.log.Warn("open consumer, retrying", "consumer", name, "err", err)
		if !pause.For(ctx, wait) {
			return nil
		}
	}
	ackWait := cons.CachedInfo().Config.AckWait
	if ackWait <= 0 {
		ackWait = 30 * time.Second
	}
	// Handlers outlive ctx by up to DrainTimeout, then are cancelled.
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var wg sync.WaitGroup
	for range p.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx, hctx, cons, name, ackWait, h)
		}()
	}
	<-ctx.Done()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.drain):
		p.log.Warn("shutdown: checks still running after the drain timeout are cancelled", "consumer", name, "timeout", p.drain)
		cancelHandlers()
		<-done
	}
	return nil
}

// work is one worker of consume: fetch one message, handle it, repeat
// until ctx ends. A consumer the broker lost (a wiped store) fails each
// fetch until the keeper declares it again; the handle names the consumer,
// so fetching resumes with the same handle.
func (p *Poller) work(ctx, hctx context.Context, cons jetstream.Consumer, name string, ackWait time.Duration, h handler) {
	failures := 0
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err := cons.Fetch(1, jetstream.FetchContext(fctx))
		if err == nil {
			for msg := range batch.Messages() {
				p.handle(hctx, name, msg, ackWait, h)
			}
			err = batch.Error()
		}
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
			failures++
			if broker.IsGone(err) {
				p.keeper.Nudge()
			}
			wait := min(100*time.Millisecond<<min(failures, 6), 5*time.Second)
			p.log.Warn("fetch ticket checks, retrying", "consumer", name, "retry_in", wait, "err", err)
			pause.For(ctx, wait)
			continue
		}
		failures = 0
	}
}

// handle runs h on msg, telling the server the work is in progress while
// it lasts, then settles the message: the one place a handler's error is
// logged and turned into Ack, NakWithDelay or Term.
func (p *Poller) handle(ctx context.Context, consumer string, msg jetstream.Msg, ackWait time.Duration, h handler) {
	stop := keepAlive(msg, ackWait/3)
	delay, err := h(ctx, msg)
	stop()
	var bad *badMessage
	var settle error
	switch {
	case err == nil && delay > 0:
		settle = msg.NakWithDelay(delay)
	case err == nil:
		settle = msg.Ack()
	case errors.As(err, &bad):
		p.log.Error("ticket check message terminated: kept on the dead-letter stream", "consumer", consumer, "subject", msg.Subject(),
			"batch_id", msg.Headers().Get(events.HeaderBatch), "err", err)
		if derr := p.deadLetter(ctx, msg, err); derr != nil {
			p.log.Warn("keep a bad message on the dead-letter stream", "subject", msg.Subject(), "err", derr)
		}
		settle = msg.Term()
	default:
		// Failures are counted on the message (events.HeaderErrors), not
		// by its deliveries: a re-check waiting for its time is NAKed
		// too, and waiting is no failure.
		n := events.Errors(msg.Headers()) + 1
		if n >= p.cfg.maxErrors() {
			p.log.Error("ticket check given up after repeated failures: kept on the dead-letter stream (sfsync retry --dead)",
				"consumer", consumer, "subject", msg.Subject(), "batch_id", msg.Headers().Get(events.HeaderBatch), "failures", n, "err", err)
			if derr := p.deadLetter(ctx, msg, err); derr != nil {
				p.log.Warn("publish dead letter, retrying", "subject", msg.Subject(), "err", derr)
				settle = msg.NakWithDelay(30 * time.Second) // nothing is dropped
			} else {
				settle = msg.Ack()
			}
			break
		}
		retry := p.cfg.backoff(uint32(min(n, 40)))
		p.log.Warn("ticket check failed, retrying", "consumer", consumer, "subject", msg.Subject(),
			"batch_id", msg.Headers().Get(events.HeaderBatch), "failures", n, "retry_in", retry, "err", err)
		if perr := p.retryLater(ctx, msg, n, retry); perr != nil {
			settle = msg.NakWithDelay(retry) // counted again on its next failure
		} else {
			settle = msg.Ack()
		}
	}
	if settle != nil {
		// The message comes back after AckWait; the check is idempotent.
		p.log.Warn("settle ticket check message", "consumer", consumer, "subject", msg.Subject(), "err", settle)
	}
}

// retryLater publishes the check of msg again as a re-check due after
// wait, carrying its failure count n, for the caller to ack msg.
func (p *Poller) retryLater(ctx context.Context, msg jetstream.Msg, n int, wait time.Duration) error {
	tc, err := events.DecodeBatch(msg.Data(), msg.Headers())
	if err != nil {
		return err
	}
	tc.Due = time.Now().Add(wait)
	next, err := tc.Msg("")
	if err != nil {
		return err
	}
	next.Header.Del(jetstream.MsgIDHeader)
	events.SetErrors(next, n)
	return p.publish(ctx, next)
}

// deadLetter publishes a copy of msg, given up, to the dead-letter stream;
// the caller settles msg.
func (p *Poller) deadLetter(ctx context.Context, msg jetstream.Msg, cause error) error {
	if err := p.publish(ctx, events.DeadLetter(msg.Subject(), msg.Data(), msg.Headers(), "ticketpoller "+p.instance, cause.Error())); err != nil {
		return err
	}
	p.m.dead.Inc()
	return nil
}

// publish publishes msg within 5 s, even while shutting down.
func (p *Poller) publish(ctx context.Context, msg *nats.Msg) error {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := p.js.PublishMsg(pctx, msg)
	return err
}

// keepAlive reports progress on msg every period until stop is called.
func keepAlive(msg jetstream.Msg, period time.Duration) (stop func()) {
	if period <= 0 {
		period = 10 * time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// loudOnce reports whether a loud log line under key is due: at most one a
// minute per key.
func (p *Poller) loudOnce(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if last, ok := p.loud[key]; ok && now.Sub(last) < time.Minute {
		return false
	}
	p.loud[key] = now
	return true
}
