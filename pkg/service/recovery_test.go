package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/targets"
	"github.com/sfsync/sfsync/pkg/testenv"
	"github.com/sfsync/sfsync/pkg/ticketpoller"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestBrokerWipedMidRunLosesNothing runs a detector, a sender and a ticket
// poller as separate processes would (each opened by service.Open, with
// its own connection and keeper) against Debian's nats-server 2.9, and
// wipes the broker's store while updates are in flight: sent and waiting
// for their tickets, waiting for their shipment delay, just committed.
// More orders change while the broker restarts and after. Every update
// must reach Shopping Feed exactly once, and every task row must be gone.
func TestBrokerWipedMidRunLosesNothing(t *testing.T) {
	ctx := context.Background()
	db, fx, shop := sfShop(t)
	nats := testenv.NATSBinary(t)
	sbCfg := sfsandboxtest.Config()
	// Tickets stay pending for a while: checks are waiting in the stream
	// when it is wiped.
	sbCfg.ScheduledFor, sbCfg.RunningFor = time.Second, time.Second
	sb := sfsandboxtest.New(t, sbCfg)

	log, _ := workersLog(t)
	cfg := service.Config{
		DB: db.Config(), NATS: broker.Config{URL: nats.URL, Replicas: 1},
		ShutdownTimeout: 5 * time.Second, LeaseTTL: 2 * time.Second,
	}
	w := startWorkers(t, cfg, sb.URL, log, pipeline{})
	det, dd := w.detector, w.detectorDeps
	testenv.Eventually(t, 20*time.Second, "detector leads", det.Leading)

	var mu sync.Mutex
	want := map[int64]string{} // SF order id → the one operation it must receive
	next := int64(900000)
	change := func(op string) {
		t.Helper()
		mu.Lock()
		next++
		sfID := next
		want[sfID] = op
		mu.Unlock()
		o, err := fx.CreateSFOrder(ctx, shop, sfID, "amazon")
		if err != nil {
			t.Fatal(err)
		}
		state := map[string]uint32{"cancel": shopfixture.StateCanceled, "refund": shopfixture.StateRefunded, "ship": shopfixture.StateShipped}[op]
		if op == "ship" {
			if err := fx.SetTracking(ctx, o, fmt.Sprintf("TRK%d", sfID)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := fx.ChangeState(ctx, o, state); err != nil {
			t.Fatal(err)
		}
	}
	sent := func() map[int64][]string {
		out := map[int64][]string{}
		for _, op := range sb.Sandbox.Operations() {
			var e struct {
				ID int64 `json:"id"`
			}
			_ = json.Unmarshal(op.Entry, &e)
			out[e.ID] = append(out[e.ID], op.Operation)
		}
		return out
	}

	// Before the wipe: two updates sent (their tickets still pending),
	// then a shipment waiting for its delay and a cancel just committed.
	change("cancel")
	change("refund")
	testenv.Eventually(t, 20*time.Second, "first updates sent", func() bool { return len(sent()) == 2 })
	change("ship")
	change("cancel")

	nats.Restart(true)
	// While the broker is empty and the workers find out.
	for _, op := range []string{"cancel", "ship", "refund"} {
		change(op)
	}
	testenv.Eventually(t, 60*time.Second, "streams declared again", func() bool {
		missing, err := broker.Missing(ctx, dd.JS)
		return err == nil && len(missing) == 0
	})
	// After it is back.
	for _, op := range []string{"cancel", "ship", "refund", "cancel"} {
		change(op)
	}

	remaining := func() int {
		var n int
		if err := db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_task_order").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	testenv.Eventually(t, 120*time.Second, "every update sent and every ticket resolved", func() bool {
		got := sent()
		mu.Lock()
		defer mu.Unlock()
		for id := range want {
			if len(got[id]) == 0 {
				return false
			}
		}
		return remaining() == 0
	})
	got := sent()
	mu.Lock()
	defer mu.Unlock()
	for id, op := range want {
		if len(got[id]) != 1 || got[id][0] != op {
			t.Errorf("SF order %d: received %v, want [%s]", id, got[id], op)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Shopping Feed received %d orders' updates, want %d: %v", len(got), len(want), got)
	}
	for _, op := range sb.Sandbox.Operations() {
		if op.TicketState != sfsandbox.StateSucceed {
			t.Errorf("ticket of %s %s: %s", op.Operation, op.Entry, op.TicketState)
		}
	}
}

// workers are a detector, senders and ticket pollers, each opened by
// service.Open as its own process would be.
type workers struct {
	detector     *detector.Detector
	detectorDeps *service.Deps
}

// pipeline says how many senders and pollers run, and how they reach
// Shopping Feed; the zero value is one of each, the client unpaced.
type pipeline struct {
	// senders is how many run (0: one; -1: none).
	senders, pollers int
	// rateLimit is SF_RATE_LIMIT ("none" when empty).
	rateLimit string
	// batchSize is BATCH_SIZE (0: the shop's).
	batchSize int
	// sweepAfter is SWEEP_AFTER (0: 3 s).
	sweepAfter time.Duration
	// targets is TARGETS and the webhook's settings (zero: Shopping Feed).
	targets targets.Config
	// schemaInterval is how often the schema is checked (0: service's default).
	schemaInterval time.Duration
	// noLead runs each sender on its own, with no shop leads (every sender
	// sends what it fetches), as before leads existed.
	noLead bool
}

func (p pipeline) withDefaults() pipeline {
	if p.senders == 0 {
		p.senders = 1
	}
	p.pollers = max(p.pollers, 1)
	if p.rateLimit == "" {
		p.rateLimit = "none"
	}
	if p.sweepAfter == 0 {
		p.sweepAfter = 3 * time.Second
	}
	return p
}

// openDeps opens a worker's connections as its process would; they close
// when the test ends.
func openDeps(t *testing.T, name string, cfg service.Config, log *slog.Logger, p pipeline) *service.Deps {
	t.Helper()
	d, err := service.Open(context.Background(), name, cfg, log.With("worker", name), service.Options{KeepInterval: time.Second, SchemaInterval: p.schemaInterval})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// sfClient is a worker's Shopping Feed client for the sandbox at sbURL.
func sfClient(t *testing.T, d *service.Deps, sbURL string, p pipeline) *shoppingfeed.Client {
	t.Helper()
	c, err := d.ShoppingFeed(context.Background(), shoppingfeed.Config{BaseURL: sbURL, Timeout: 5 * time.Second, RateLimit: p.withDefaults().rateLimit, MaxRetries: 0, MaxOrdersPerRequest: 200})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runUntilCleanup runs f until the test ends.
func runUntilCleanup(t *testing.T, name string, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// senderConfig is a sender's configuration for these tests.
func senderConfig(p pipeline) sender.Config {
	return sender.Config{Mode: sender.ModeRealtime, Linger: 50 * time.Millisecond, Interval: time.Minute,
		TrackingMaxWait: time.Hour, TrackingRecheck: 200 * time.Millisecond, MaxAttempts: 1000, RetryBase: 100 * time.Millisecond,
		RetryMax: time.Second, ClaimTTL: 30 * time.Second, Workers: 4, Concurrency: 8, SettingsTTL: time.Second, BatchSize: p.batchSize,
		Targets: p.targets}
}

// newSender opens a sender named name on cfg with scfg.
func newSender(t *testing.T, name string, cfg service.Config, scfg sender.Config, sbURL string, log *slog.Logger, p pipeline) (*sender.Sender, *service.Deps) {
	t.Helper()
	sd := openDeps(t, name, cfg, log, p)
	var leaseTTL time.Duration
	if !p.noLead {
		leaseTTL = cfg.LeaseTTL
	}
	snd, err := sender.New(scfg, sender.Deps{Store: sd.Store, NC: sd.NC, Client: sfClient(t, sd, sbURL, p), Log: sd.Log, Instance: name, DrainTimeout: 5 * time.Second, Keeper: sd.Keeper,
		LeaseTTL: leaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	return snd, sd
}

// startWorkers opens and runs the workers on cfg against the sandbox at
// sbURL, with short delays and intervals; they stop when the test ends.
func startWorkers(t *testing.T, cfg service.Config, sbURL string, log *slog.Logger, p pipeline) workers {
	t.Helper()
	ctx := context.Background()
	p = p.withDefaults()
	dd := openDeps(t, "detector", cfg, log, p)
	delay := time.Second
	det, err := detector.New(ctx, detector.Config{PollInterval: 50 * time.Millisecond, BatchSize: 500, GapGrace: 2 * time.Second,
		WriterCheck: true, ShippedDelay: &delay, StartFrom: "now", SweepInterval: 500 * time.Millisecond, SweepAfter: p.sweepAfter,
		SettingsTTL: time.Second, Targets: p.targets},
		detector.Deps{Store: dd.Store, NC: dd.NC, Log: dd.Log, Instance: "detector", LeaseTTL: cfg.LeaseTTL, Keeper: dd.Keeper})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, "detector", det.Run)

	for i := range max(p.senders, 0) {
		name := fmt.Sprintf("sender-%d", i+1)
		snd, _ := newSender(t, name, cfg, senderConfig(p), sbURL, log, p)
		runUntilCleanup(t, name, snd.Run)
	}
	for i := range p.pollers {
		name := fmt.Sprintf("ticketpoller-%d", i+1)
		pd := openDeps(t, name, cfg, log, p)
		poller, err := ticketpoller.New(ticketpoller.Config{MaxAge: time.Hour, BackoffMin: 200 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
			Concurrency: 4, CheckTimeout: 10 * time.Second, ReportInterval: time.Hour, ReportMaxRows: 500,
			SMTPTimeout: 5 * time.Second},
			ticketpoller.Deps{Store: pd.Store, NC: pd.NC, SF: sfClient(t, pd, sbURL, p), Log: pd.Log, Instance: name, DrainTimeout: 5 * time.Second, Keeper: pd.Keeper})
		if err != nil {
			t.Fatal(err)
		}
		runUntilCleanup(t, name, poller.Run)
	}
	return workers{detector: det, detectorDeps: dd}
}

// sfShop is a fresh shop database with shop 1 on Shopping Feed (the
// sandbox's token and store).
func sfShop(t *testing.T) (*testenv.DB, *shopfixture.Fixture, shopfixture.SFShop) {
	t.Helper()
	db, _, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(context.Background(), 1, sfsandboxtest.Token, fmt.Sprint(sfsandboxtest.StoreID))
	if err != nil {
		t.Fatal(err)
	}
	return db, fx, shop
}

// workersLog is the workers' logger, shown when the test fails, and its
// buffer.
func workersLog(t *testing.T) (*slog.Logger, *testenv.SyncBuffer) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("workers' log:\n%s", logs.String())
		}
	})
	return testLog(logs), logs
}

func testLog(w *testenv.SyncBuffer) *slog.Logger {
	if os.Getenv("SERVICE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
