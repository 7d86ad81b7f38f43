package detector_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/logging"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a shop database with a Shopping Feed shop, and a broker.
type env struct {
	t     testing.TB
	db    *testenv.DB
	store *prestashop.Store
	fx    *shopfixture.Fixture
	shop  shopfixture.SFShop
	nats  *testenv.Broker
	js    jetstream.JetStream
}

const leaseTTL = 2 * time.Second

func newEnv(t testing.TB, brokers ...func(testing.TB) *testenv.Broker) *env {
	t.Helper()
	start := testenv.NATS
	if len(brokers) > 0 {
		start = brokers[0]
	}
	db, store, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(context.Background(), 1, "tok-1", "1001")
	if err != nil {
		t.Fatal(err)
	}
	b := start(t)
	_, js := b.Connect(t)
	if err := broker.Declare(context.Background(), js, broker.Settings{LeaseTTL: leaseTTL}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: db, store: store, fx: fx, shop: shop, nats: b, js: js}
}

func testConfig() detector.Config {
	return detector.Config{PollInterval: 20 * time.Millisecond, BatchSize: 500, GapGrace: 2 * time.Second, WriterCheck: true,
		StartFrom: "now", SweepInterval: time.Hour, SweepAfter: time.Hour, SettingsTTL: 50 * time.Millisecond}
}

type running struct {
	d      *detector.Detector
	nc     *nats.Conn
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

// stop stops the detector gracefully (it releases the lease).
func (r *running) stop() { r.cancel(); <-r.done }

// kill stops it as kill -9 would: the connection dies first, so the lease
// is not released and must expire.
func (r *running) kill() { r.nc.Close(); r.cancel(); <-r.done }

func (e *env) start(cfg detector.Config, instance string) *running {
	e.t.Helper()
	return e.startLogged(cfg, instance, testLogger())
}

// startLogged starts a detector logging to log.
func (e *env) startLogged(cfg detector.Config, instance string, log *slog.Logger) *running {
	e.t.Helper()
	nc, err := nats.Connect(e.nats.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := detector.New(ctx, cfg, detector.Deps{Store: e.store, NC: nc, Log: log, Registry: reg, Instance: instance, LeaseTTL: leaseTTL})
	if err != nil {
		e.t.Fatal(err)
	}
	r := &running{d: d, nc: nc, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); _ = d.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (e *env) waitLeader(r *running) {
	e.t.Helper()
	e.eventually(5*time.Second, "detector leads", r.d.Leading)
}

func (e *env) eventually(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	testenv.Eventually(e.t, d, what, cond)
}

// events returns every event in the orders stream's status subjects.
func (e *env) events() []*sfsyncv1.OrderStatusChanged {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, broker.OrdersStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*sfsyncv1.OrderStatusChanged
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if !strings.HasPrefix(m.Subject, "sfsync.order.status.") && !strings.HasPrefix(m.Subject, "sfsync.order.wait.") {
			continue
		}
		var ev sfsyncv1.OrderStatusChanged
		if err := protojson.Unmarshal(m.Data, &ev); err != nil {
			e.t.Fatalf("event %d: %v", seq, err)
		}
		out = append(out, &ev)
	}
	return out
}

func (e *env) eventsFor(history uint64) int {
	n := 0
	for _, ev := range e.events() {
		if ev.OrderHistoryId == history {
			n++
		}
	}
	return n
}

type task struct {
	id, first, last uint64
	action          string
	updateAt        time.Time
}

func (e *env) tasks(order uint32) []task {
	e.t.Helper()
	rows, err := e.db.DB.Query("SELECT id_shoppingfeed_task_order, action, update_at, COALESCE(sfsync_history_first,0), COALESCE(sfsync_history_last,0) FROM ps_shoppingfeed_task_order WHERE id_order = ? ORDER BY 1", order)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []task
	for rows.Next() {
		var tk task
		if err := rows.Scan(&tk.id, &tk.action, &tk.updateAt, &tk.first, &tk.last); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, tk)
	}
	return out
}

func (e *env) order() uint32 {
	e.t.Helper()
	id, err := e.fx.CreateSFOrder(context.Background(), e.shop, time.Now().UnixNano()%1_000_000_000, "amazon")
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) change(order, state uint32) uint64 {
	e.t.Helper()
	h, err := e.fx.ChangeState(context.Background(), order, state)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

func historyDate(t testing.TB, db *sql.DB, id uint64) time.Time {
	t.Helper()
	var at time.Time
	if err := db.QueryRow("SELECT date_add FROM ps_order_history WHERE id_order_history = ?", id).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

func TestChangesBecomeTasksAndEvents(t *testing.T) {
	for name, start := range map[string]func(testing.TB) *testenv.Broker{"in-process": testenv.NATS, "nats-server-2.9": testenv.NATSBinary} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, start)
			ctx := context.Background()
			// Orders are created (a first history row each) before the
			// detector starts: START_FROM=now skips those rows.
			before := e.order()
			shipped, canceled, processing := e.order(), e.order(), e.order()
			plain, err := e.fx.CreateOrder(ctx, shopfixture.OrderSpec{CarrierID: e.shop.CarrierID}) // not from Shopping Feed
			if err != nil {
				t.Fatal(err)
			}
			r := e.start(testConfig(), "a")
			e.waitLeader(r)
			hShip := e.change(shipped, shopfixture.StateShipped)
			hCancel := e.change(canceled, shopfixture.StateCanceled)
			hProc := e.change(processing, shopfixture.StateProcessing)
			hPlain := e.change(plain, shopfixture.StateShipped)
			e.eventually(5*time.Second, "three events", func() bool { return len(e.events()) >= 3 })
			time.Sleep(100 * time.Millisecond)

			evs := e.events()
			byHistory := map[uint64]*sfsyncv1.OrderStatusChanged{}
			for _, ev := range evs {
				byHistory[ev.OrderHistoryId] = ev
				if ev.OrderId == before {
					t.Fatal("a change made before START_FROM=now was published")
				}
			}
			if len(evs) != 3 || byHistory[hPlain] != nil {
				t.Fatalf("events = %d (non-SF order published: %v), want 3", len(evs), byHistory[hPlain] != nil)
			}
			// Shipped: a task due after the 5-minute default delay.
			ts := e.tasks(shipped)
			if len(ts) != 1 || ts[0].action != prestashop.ActionSyncStatus || ts[0].last != hShip {
				t.Fatalf("shipped tasks %+v", ts)
			}
			at := historyDate(t, e.db.DB, hShip)
			if got := ts[0].updateAt.Sub(at); got != 5*time.Minute {
				t.Fatalf("shipment due %s after the change, want 5m", got)
			}
			if s, _ := e.js.Stream(ctx, broker.OrdersStream); s != nil {
				if m, err := s.GetLastMsgForSubject(ctx, events.OrderWaitSubject(1, shipped)); err != nil || m.Header.Get("Sfsync-Operation") != "ship" {
					t.Fatalf("the delayed shipment is not on the wait subject: %v", err)
				}
			}
			if ev := byHistory[hShip]; ev.TaskId != ts[0].id || ev.NotBefore.AsTime().Sub(ev.ChangedAt.AsTime()) != 5*time.Minute || ev.ShopId != 1 {
				t.Fatalf("shipped event %v", ev)
			}
			// Canceled: due at once.
			tc := e.tasks(canceled)
			if len(tc) != 1 || !tc[0].updateAt.Equal(historyDate(t, e.db.DB, hCancel)) {
				t.Fatalf("canceled tasks %+v", tc)
			}
			// Unmapped: published with no task.
			if len(e.tasks(processing)) != 0 || byHistory[hProc] == nil || byHistory[hProc].TaskId != 0 {
				t.Fatalf("unmapped change: tasks %v event %v", e.tasks(processing), byHistory[hProc])
			}
			if got := testutil.ToFloat64(metric(t, r.reg, "sfsync_detector_lease_held")); got != 1 {
				t.Fatalf("lease_held = %v", got)
			}
		})
	}
}

func metric(t testing.TB, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				var sum float64
				for _, m := range mf.GetMetric() {
					sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
				}
				return sum
			}
		}
		return 0
	})
}

// collectorFunc adapts a value to testutil.ToFloat64.
type collectorFunc func() float64

func (f collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc("x", "x", nil, nil)
}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "x", nil, nil), prometheus.GaugeValue, f())
}

func TestShippedDelayFromShopAndOverride(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyTimeShift, "15"); err != nil {
		t.Fatal(err)
	}
	r := e.start(testConfig(), "a")
	e.waitLeader(r)
	o := e.order()
	h := e.change(o, shopfixture.StateShipped)
	e.eventually(5*time.Second, "task", func() bool { return len(e.tasks(o)) == 1 })
	if got := e.tasks(o)[0].updateAt.Sub(historyDate(t, e.db.DB, h)); got != 15*time.Minute {
		t.Fatalf("TIME_SHIFT 15: due after %s", got)
	}
	r.stop()

	cfg := testConfig()
	delay := 90 * time.Second
	cfg.ShippedDelay = &delay
	r = e.start(cfg, "b")
	e.waitLeader(r)
	o2 := e.order()
	h2 := e.change(o2, shopfixture.StateShipped)
	e.eventually(5*time.Second, "task", func() bool { return len(e.tasks(o2)) == 1 })
	if got := e.tasks(o2)[0].updateAt.Sub(historyDate(t, e.db.DB, h2)); got != delay {
		t.Fatalf("SHIPPED_DELAY 90s: due after %s", got)
	}
	// A later cancel of the same order moves the same task to now.
	h3 := e.change(o2, shopfixture.StateCanceled)
	e.eventually(5*time.Second, "task updated", func() bool { ts := e.tasks(o2); return len(ts) == 1 && ts[0].last == h3 })
	ts := e.tasks(o2)
	if !ts[0].updateAt.Equal(historyDate(t, e.db.DB, h3)) || ts[0].first != h2 {
		t.Fatalf("after cancel: %+v", ts[0])
	}
}

// TestLateCommit reproduces the race of nats-and-cdc.md: a transaction takes
// id N and commits after id N+1 was read. N must still be published.
func TestLateCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.start(testConfig(), "a")
	e.waitLeader(r)
	slow, fast := e.order(), e.order()

	tx, err := e.db.DB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() }) // before the database is dropped
	hSlow, err := shopfixture.ChangeStateTx(ctx, tx, "ps_", slow, shopfixture.StateCanceled)
	if err != nil {
		t.Fatal(err)
	}
	hFast := e.change(fast, shopfixture.StateCanceled)
	if hFast != hSlow+1 {
		t.Fatalf("ids %d, %d: want consecutive", hSlow, hFast)
	}
	e.eventually(5*time.Second, "N+1 published", func() bool { return e.eventsFor(hFast) == 1 })
	time.Sleep(200 * time.Millisecond) // several polls with N missing
	if e.eventsFor(hSlow) != 0 {
		t.Fatal("N published before it committed")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.eventually(5*time.Second, "N published after its commit", func() bool { return e.eventsFor(hSlow) == 1 })
	if ts := e.tasks(slow); len(ts) != 1 || ts[0].last != hSlow {
		t.Fatalf("late-committed change left tasks %+v", ts)
	}
	e.eventually(5*time.Second, "no gap left", func() bool { return testutil.ToFloat64(metric(t, r.reg, "sfsync_detector_gaps_open")) == 0 })
}

func TestRollbackGapCloses(t *testing.T) {
	for _, check := range []bool{true, false} {
		name := map[bool]string{true: "writer check", false: "grace only"}[check]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			cfg := testConfig()
			cfg.WriterCheck = check
			cfg.GapGrace = time.Second
			r := e.start(cfg, "a")
			e.waitLeader(r)
			a, b := e.order(), e.order()
			tx, err := e.db.DB.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tx.Rollback() }) // before the database is dropped
			hRolled, err := shopfixture.ChangeStateTx(ctx, tx, "ps_", a, shopfixture.StateShipped)
			if err != nil {
				t.Fatal(err)
			}
			hB := e.change(b, shopfixture.StateShipped)
			e.eventually(5*time.Second, "N+1 published", func() bool { return e.eventsFor(hB) == 1 })
			gaps := metric(t, r.reg, "sfsync_detector_gaps_open")
			e.eventually(2*time.Second, "gap open", func() bool { return testutil.ToFloat64(gaps) == 1 })
			time.Sleep(300 * time.Millisecond)
			if testutil.ToFloat64(gaps) != 1 {
				t.Fatal("gap closed while its transaction was still open")
			}
			began := time.Now()
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			e.eventually(5*time.Second, "gap closed", func() bool { return testutil.ToFloat64(gaps) == 0 })
			took := time.Since(began)
			if !check && took < 500*time.Millisecond {
				t.Fatalf("without the writer check the gap closed after %s, before GAP_GRACE", took)
			}
			if check && took > cfg.GapGrace {
				t.Fatalf("with the writer check the gap took %s to close, not faster than GAP_GRACE", took)
			}
			if e.eventsFor(hRolled) != 0 || len(e.tasks(a)) != 0 {
				t.Fatal("a rolled-back change was published")
			}
		})
	}
}

func TestRestartMidStreamNoLossNoDuplicate(t *testing.T) {
	e := newEnv(t)
	orders := make([]uint32, 20)
	for i := range orders {
		orders[i] = e.order()
	}
	r := e.start(testConfig(), "a")
	e.waitLeader(r)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var history []uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		states := []uint32{shopfixture.StateProcessing, shopfixture.StateShipped, shopfixture.StateCanceled}
		for i := 0; i < 300; i++ {
			h, err := e.fx.ChangeState(context.Background(), orders[i%len(orders)], states[i%3])
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			history = append(history, h)
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(150 * time.Millisecond)
	r.stop()
	time.Sleep(100 * time.Millisecond)
	r2 := e.start(testConfig(), "b")
	e.waitLeader(r2)
	time.Sleep(100 * time.Millisecond)
	r2.kill() // and once more, without releasing the lease
	r3 := e.start(testConfig(), "c")
	wg.Wait()
	e.eventually(10*time.Second, "every change published", func() bool { return len(e.events()) >= len(history) })
	time.Sleep(200 * time.Millisecond)
	counts := map[uint64]int{}
	for _, ev := range e.events() {
		counts[ev.OrderHistoryId]++
	}
	for _, h := range history {
		if counts[h] != 1 {
			t.Fatalf("change %d published %d times", h, counts[h])
		}
	}
	if len(counts) != len(history) {
		t.Fatalf("%d distinct events for %d changes", len(counts), len(history))
	}
	_ = r3
}

func TestTwoDetectorsPublishEachChangeOnce(t *testing.T) {
	e := newEnv(t)
	o := e.order()
	// Both detectors' logs are shown if the test fails: it is the one that
	// exercises handovers under load.
	var logs testenv.SyncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a := e.startLogged(testConfig(), "a", logger)
	b := e.startLogged(testConfig(), "b", logger)
	e.eventually(5*time.Second, "one leader", func() bool { return a.d.Leading() != b.d.Leading() })
	var history []uint64
	for i := 0; i < 100; i++ {
		history = append(history, e.change(o, []uint32{shopfixture.StateShipped, shopfixture.StateProcessing}[i%2]))
	}
	// Under a saturated CPU (the whole suite with -race on 2 cores) a leader
	// that misses renewals steps down and the other takes over from the
	// checkpoint: slower, never lossy, and still once per change.
	e.eventually(40*time.Second, "all published", func() bool { return len(e.events()) >= len(history) })
	time.Sleep(300 * time.Millisecond)
	if got := len(e.events()); got != len(history) {
		t.Fatalf("%d events for %d changes", got, len(history))
	}
	if a.d.Leading() == b.d.Leading() {
		t.Fatal("both or neither lead")
	}
}

func TestLeaderKilledFollowerTakesOverWithinTTL(t *testing.T) {
	e := newEnv(t)
	a := e.start(testConfig(), "a")
	e.waitLeader(a)
	b := e.start(testConfig(), "b")
	time.Sleep(200 * time.Millisecond)
	if b.d.Leading() {
		t.Fatal("follower leads while the leader is alive")
	}
	killed := time.Now()
	a.kill()
	e.eventually(leaseTTL+leaseTTL/2, "follower leads", b.d.Leading)
	took := time.Since(killed)
	t.Logf("takeover after %s (lease TTL %s)", took, leaseTTL)
	if took > leaseTTL+leaseTTL/4+200*time.Millisecond {
		t.Fatalf("takeover took %s, lease TTL is %s", took, leaseTTL)
	}
	o := e.order()
	h := e.change(o, shopfixture.StateCanceled)
	e.eventually(5*time.Second, "new leader publishes", func() bool { return e.eventsFor(h) == 1 })
}

func TestLeaderThatCannotRenewStops(t *testing.T) {
	e := newEnv(t)
	a := e.start(testConfig(), "a")
	e.waitLeader(a)
	e.nats.Stop() // the broker goes away: renewals fail
	e.eventually(leaseTTL, "leader steps down before its lease can expire", func() bool { return !a.d.Leading() })
}

func TestConflictGuard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.fx.InstallModule(ctx, prestashop.ModuleLegacy, true); err != nil {
		t.Fatal(err)
	}
	if err := e.fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyLegacyShipped, "checked"); err != nil {
		t.Fatal(err)
	}
	r := e.start(testConfig(), "a")
	e.waitLeader(r)
	o := e.order()
	hBlocked := e.change(o, shopfixture.StateShipped)
	e.eventually(5*time.Second, "guard error in the process log", func() bool {
		var msg string
		err := e.db.DB.QueryRow("SELECT msg FROM ps_shoppingfeed_processlogger WHERE level = 'error' AND msg LIKE '%SHOPPING_FLUX_STATUS_SHIPPED%'").Scan(&msg)
		return err == nil && !strings.Contains(msg, "SHOPPING_FLUX_STATUS_CANCELED")
	})
	time.Sleep(200 * time.Millisecond)
	if e.eventsFor(hBlocked) != 0 || len(e.tasks(o)) != 0 {
		t.Fatal("a blocked shop's change was queued or published")
	}
	// The merchant unticks the option: sync resumes for new changes only.
	if err := e.fx.SetConfig(ctx, shopfixture.ShopScope(1), prestashop.KeyLegacyShipped, ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	h := e.change(o, shopfixture.StateCanceled)
	e.eventually(5*time.Second, "published once unblocked", func() bool { return e.eventsFor(h) == 1 })
	if e.eventsFor(hBlocked) != 0 {
		t.Fatal("a change made while blocked was queued for later")
	}
	// No importer at all.
	if _, err := e.db.DB.Exec("DELETE FROM ps_module"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	h2 := e.change(o, shopfixture.StateRefunded)
	e.eventually(5*time.Second, "no-importer error logged", func() bool {
		var n int
		_ = e.db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_processlogger WHERE msg LIKE '%no order importer%'").Scan(&n)
		return n > 0
	})
	time.Sleep(100 * time.Millisecond)
	if e.eventsFor(h2) != 0 {
		t.Fatal("published with no importer installed")
	}
}

func TestSyncDisabledShopSkipped(t *testing.T) {
	e := newEnv(t)
	if err := e.fx.SetConfig(context.Background(), shopfixture.ShopScope(1), prestashop.KeySyncEnabled, "0"); err != nil {
		t.Fatal(err)
	}
	r := e.start(testConfig(), "a")
	e.waitLeader(r)
	o := e.order()
	h := e.change(o, shopfixture.StateCanceled)
	marker := e.change(e.order(), shopfixture.StateProcessing)
	e.eventually(3*time.Second, "position past the changes", func() bool {
		return testutil.ToFloat64(metric(t, r.reg, "sfsync_detector_position")) >= float64(marker)
	})
	if e.eventsFor(h) != 0 || len(e.tasks(o)) != 0 {
		t.Fatal("a disabled shop's change was queued or published")
	}
}

func TestMalformedMappingKeepsChangesAsTasks(t *testing.T) {
	e := newEnv(t)
	if err := e.fx.SetConfig(context.Background(), shopfixture.ShopScope(1), prestashop.KeyShipped, `["4", "four"]`); err != nil {
		t.Fatal(err)
	}
	r := e.start(testConfig(), "a")
	e.waitLeader(r)
	o := e.order()
	h := e.change(o, shopfixture.StateProcessing)
	e.eventually(5*time.Second, "change kept as a task", func() bool { ts := e.tasks(o); return len(ts) == 1 && ts[0].last == h })
	e.eventually(5*time.Second, "config error in the process log", func() bool {
		var n int
		_ = e.db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_processlogger WHERE msg LIKE '%SHOPPINGFEED_SHIPPED_ORDERS%' AND msg LIKE '%shop 1%'").Scan(&n)
		return n > 0
	})
}

func TestSweeperRecoversAfterStreamDeleted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.SweepInterval = 200 * time.Millisecond
	cfg.SweepAfter = time.Second
	r := e.start(cfg, "a")
	e.waitLeader(r)
	o := e.order()
	h := e.change(o, shopfixture.StateCanceled)
	e.eventually(5*time.Second, "published", func() bool { return e.eventsFor(h) == 1 })
	// The broker loses everything.
	if err := e.js.DeleteStream(ctx, broker.OrdersStream); err != nil {
		t.Fatal(err)
	}
	if err := broker.Declare(ctx, e.js, broker.Settings{LeaseTTL: leaseTTL}); err != nil {
		t.Fatal(err)
	}
	ts := e.tasks(o)
	e.eventually(10*time.Second, "task republished by the sweeper", func() bool {
		for _, ev := range e.events() {
			if ev.TaskId == ts[0].id && ev.Source == "sweeper" {
				return true
			}
		}
		return false
	})
	// A task waiting for its ticket is republished as a ticket check.
	if _, err := e.db.DB.Exec(`INSERT INTO ps_shoppingfeed_task_order (action, id_order, batch_id, ticket_number, date_add, date_upd, sfsync_store_id, sfsync_operation, sfsync_progress_at)
		VALUES ('CHECK_TICKET_SYNC_STATUS', ?, 'batch-9', 'tk-1', NOW(), NOW(), '1001', 'ship', NOW() - INTERVAL 1 HOUR)`, o); err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "ticket check republished", func() bool {
		s, _ := e.js.Stream(ctx, broker.TicketsStream)
		m, err := s.GetLastMsgForSubject(ctx, events.TicketCheckSubject("1001"))
		return err == nil && strings.Contains(string(m.Data), "batch-9")
	})
}

func TestStartPositions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o := e.order()
	h1 := e.change(o, shopfixture.StateProcessing)
	h2 := e.change(o, shopfixture.StateShipped)
	tests := []struct {
		start string
		want  uint64
	}{
		{"beginning", 0},
		{"now", h2},
		{"id:" + itoa(h2), h2 - 1},
		{"time:2000-01-01T00:00:00Z", 0},
		{"time:2999-01-01T00:00:00Z", h2},
	}
	for _, tt := range tests {
		s, err := detector.ParseStart(tt.start)
		if err != nil {
			t.Fatal(err)
		}
		got, err := detector.StartPosition(ctx, e.store, s)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s: position %d, want %d (history %d, %d)", tt.start, got, tt.want, h1, h2)
		}
	}
	for _, bad := range []string{"yesterday", "id:x", "id:0", "time:noon"} {
		if _, err := detector.ParseStart(bad); err == nil {
			t.Errorf("ParseStart(%q) succeeded", bad)
		}
	}
	// START_FROM=beginning publishes what was there before.
	cfg := testConfig()
	cfg.StartFrom = "beginning"
	r := e.start(cfg, "a")
	e.waitLeader(r)
	e.eventually(5*time.Second, "history replayed", func() bool { return e.eventsFor(h1) == 1 && e.eventsFor(h2) == 1 })
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func testLogger() *slog.Logger {
	if os.Getenv("DETECTOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return logging.Discard()
}

// lockedBuffer is a log sink the test may read while the detector writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A shop whose order_history was altered (signed, nullable columns, as
// some modules and old upgrades leave it) holds rows no order can come
// from: each is skipped once, with an error line naming its id and a
// record sfsync status shows, and the rows after it flow.
func TestBadHistoryRowIsSkippedAndTheTailFlows(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, q := range []string{
		"ALTER TABLE ps_order_history MODIFY id_order INT NULL, MODIFY id_order_state INT NULL, MODIFY date_add DATETIME NULL",
	} {
		if _, err := e.db.DB.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	first, last := e.order(), e.order()
	var log lockedBuffer
	r := e.startLogged(testConfig(), "a", slog.New(slog.NewTextHandler(&log, nil)))
	e.waitLeader(r)
	hFirst := e.change(first, shopfixture.StateCanceled)
	var bad []uint64
	for _, vals := range []string{
		"NULL, 6, NOW()",                      // no order
		"-3, 6, NOW()",                        // a negative order id
		"0, 6, NOW()",                         // order 0
		itoa(uint64(first)) + ", NULL, NOW()", // no state
		itoa(uint64(first)) + ", -1, NOW()",   // a negative state
		itoa(uint64(first)) + ", 6, NULL",     // no date
	} {
		res, err := e.db.DB.ExecContext(ctx, "INSERT INTO ps_order_history (id_employee, id_order, id_order_state, date_add) VALUES (0, "+vals+")")
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		bad = append(bad, uint64(id))
	}
	hLast := e.change(last, shopfixture.StateCanceled)
	e.eventually(10*time.Second, "the change after the bad rows is published", func() bool { return e.eventsFor(hLast) == 1 })
	if n := e.eventsFor(hFirst); n != 1 {
		t.Fatalf("the change before the bad rows: %d events", n)
	}
	if ts := e.tasks(last); len(ts) != 1 || ts[0].last != hLast {
		t.Fatalf("tasks of the order after the bad rows: %+v", ts)
	}
	bh, err := e.store.BadHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bh.Total != len(bad) || len(bh.Rows) != len(bad) {
		t.Fatalf("record %+v, want the %d bad rows", bh, len(bad))
	}
	for i, id := range bad {
		if bh.Rows[i].ID != id || bh.Rows[i].Reason == "" {
			t.Errorf("recorded row %d: %+v, want id %d with a reason", i, bh.Rows[i], id)
		}
		line := "history_id=" + itoa(id) + " "
		if n := strings.Count(log.String(), line); n != 1 {
			t.Errorf("%d error lines name row %d, want 1", n, id)
		}
	}
	for _, want := range []string{"id_order is NULL", "id_order is negative (-3)", "id_order is 0", "id_order_state is NULL", "id_order_state is negative (-1)", "date_add is NULL"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("no error line says %q", want)
		}
	}
	if got := testutil.ToFloat64(metric(t, r.reg, "sfsync_detector_rows_skipped_total")); got != float64(len(bad)) {
		t.Fatalf("rows_skipped_total = %v", got)
	}
}
