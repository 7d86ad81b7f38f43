package sender_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/events"
	"github.com/sfsync/sfsync/pkg/logging"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/targets"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func testLogger() *slog.Logger {
	if os.Getenv("SENDER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return logging.Discard()
}

// pipeline is a shop, a broker, the sandbox, a running detector, and the
// senders a test starts.
type pipeline struct {
	t     testing.TB
	db    *testenv.DB
	store *prestashop.Store
	fx    *shopfixture.Fixture
	shop  shopfixture.SFShop
	nats  *testenv.Broker
	js    jetstream.JetStream
	sb    *sfsandbox.Server
	next  int64
	// leaseTTL is the lease bucket's TTL, the detector's lease and the
	// senders' shop leads.
	leaseTTL time.Duration
	// stopDetector stops the running detector (idempotent).
	stopDetector func()
	targets      targets.Config
	mu           sync.Mutex
}

type options struct {
	shippedDelay time.Duration
	sandbox      func(*sfsandbox.Config)
	targets      targets.Config
	// broker starts the broker (default: in-process; testenv.NATSBinary
	// runs Debian's nats-server, the 2.9 line).
	broker func(testing.TB) *testenv.Broker
	// leaseTTL is the lease bucket's TTL (default 2 s).
	leaseTTL time.Duration
}

func newPipeline(t testing.TB, o options) *pipeline {
	t.Helper()
	ctx := context.Background()
	db, store, fx := testenv.Shop(t)
	shop, err := fx.EnableShoppingFeed(ctx, 1, sfsandboxtest.Token, fmt.Sprint(sfsandboxtest.StoreID))
	if err != nil {
		t.Fatal(err)
	}
	start := testenv.NATS
	if o.broker != nil {
		start = o.broker
	}
	b := start(t)
	_, js := b.Connect(t)
	if o.leaseTTL == 0 {
		o.leaseTTL = 2 * time.Second
	}
	if err := broker.Declare(ctx, js, broker.Settings{LeaseTTL: o.leaseTTL}); err != nil {
		t.Fatal(err)
	}
	cfg := sfsandboxtest.Config()
	if o.sandbox != nil {
		o.sandbox(&cfg)
	}
	p := &pipeline{t: t, db: db, store: store, fx: fx, shop: shop, nats: b, js: js, sb: sfsandboxtest.New(t, cfg), next: 500000, leaseTTL: o.leaseTTL}
	if o.shippedDelay == 0 {
		o.shippedDelay = time.Second
	}
	p.targets = o.targets
	p.stopDetector = p.startDetector(o.shippedDelay, 20*time.Millisecond)
	return p
}

// restartDetectorPolling runs the detector again with another POLL_INTERVAL.
func (p *pipeline) restartDetectorPolling(poll time.Duration) {
	p.stopDetector()
	p.stopDetector = p.startDetector(time.Second, poll)
}

func (p *pipeline) startDetector(delay, poll time.Duration) (stop func()) {
	p.t.Helper()
	nc := p.conn()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := detector.New(ctx, detector.Config{PollInterval: poll, BatchSize: 2000, GapGrace: 2 * time.Second, WriterCheck: true,
		ShippedDelay: &delay, StartFrom: "now", SweepInterval: time.Hour, SweepAfter: time.Hour, SettingsTTL: 50 * time.Millisecond, Targets: p.targets},
		detector.Deps{Store: p.store, NC: nc, Log: testLogger(), Instance: "detector", LeaseTTL: p.leaseTTL})
	if err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	stop = func() { cancel(); <-done }
	p.t.Cleanup(stop)
	deadline := time.Now().Add(5 * time.Second)
	for !d.Leading() {
		if time.Now().After(deadline) {
			p.t.Fatal("detector never led")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stop
}

func (p *pipeline) conn() *nats.Conn {
	p.t.Helper()
	nc, err := nats.Connect(p.nats.URL)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(nc.Close)
	return nc
}

func senderConfig() sender.Config {
	return sender.Config{Mode: sender.ModeRealtime, Linger: 50 * time.Millisecond, Interval: time.Minute, TrackingMaxWait: time.Hour,
		TrackingRecheck: 200 * time.Millisecond, MaxAttempts: 10, RetryBase: 100 * time.Millisecond, RetryMax: time.Second,
		ClaimTTL: 30 * time.Second, Workers: 4, Concurrency: 8, SettingsTTL: 50 * time.Millisecond}
}

type runningSender struct {
	s      *sender.Sender
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *runningSender) stop() { r.cancel(); <-r.done }

func (p *pipeline) startSender(cfg sender.Config, name string) *runningSender {
	p.t.Helper()
	return p.startSenderWith(cfg, name, shoppingfeed.Config{BaseURL: p.sb.URL, Timeout: 5 * time.Second, RateLimit: "none", MaxRetries: 0})
}

func (p *pipeline) startSenderWith(cfg sender.Config, name string, sf shoppingfeed.Config, opts ...shoppingfeed.Option) *runningSender {
	p.t.Helper()
	reg := prometheus.NewRegistry()
	client, err := shoppingfeed.New(sf, testLogger(), reg, opts...)
	if err != nil {
		p.t.Fatal(err)
	}
	s, err := sender.New(cfg, sender.Deps{Store: p.store, NC: p.conn(), Client: client, Log: testLogger(), Registry: reg, Instance: name})
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningSender{s: s, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); _ = s.Run(ctx) }()
	p.t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// order creates a Shopping Feed order known to SF by id.
func (p *pipeline) order() (uint32, int64) {
	p.t.Helper()
	p.mu.Lock()
	p.next++
	sfID := p.next
	p.mu.Unlock()
	id, err := p.fx.CreateSFOrder(context.Background(), p.shop, sfID, "amazon")
	if err != nil {
		p.t.Fatal(err)
	}
	return id, sfID
}

func (p *pipeline) change(order, state uint32) {
	p.t.Helper()
	if _, err := p.fx.ChangeState(context.Background(), order, state); err != nil {
		p.t.Fatal(err)
	}
}

// sent returns, per SF order id, the operations the sandbox received.
func (p *pipeline) sent() map[int64][]sentOp {
	out := map[int64][]sentOp{}
	for _, op := range p.sb.Sandbox.Operations() {
		var e struct {
			ID             int64           `json:"id"`
			Reference      string          `json:"reference"`
			TrackingNumber string          `json:"trackingNumber"`
			TrackingLink   string          `json:"trackingLink"`
			Carrier        string          `json:"carrier"`
			Refund         json.RawMessage `json:"refund"`
		}
		_ = json.Unmarshal(op.Entry, &e)
		out[e.ID] = append(out[e.ID], sentOp{op: op.Operation, batch: op.BatchID, tracking: e.TrackingNumber, link: e.TrackingLink, carrier: e.Carrier, ref: e.Reference, raw: string(op.Entry)})
	}
	return out
}

type sentOp struct {
	op, batch, tracking, link, carrier, ref, raw string
}

func (p *pipeline) eventually(d time.Duration, what string, cond func() bool) {
	p.t.Helper()
	testenv.Eventually(p.t, d, what, cond)
}

type taskRow struct {
	action, batch, operation, errMsg string
	failed                           bool
}

func (p *pipeline) tasks(order uint32) []taskRow {
	p.t.Helper()
	// Shopping Feed's tasks in the module's table, the webhook's in sfsync's.
	rows, err := p.db.DB.Query("SELECT action, COALESCE(batch_id,''), COALESCE(sfsync_operation,''), COALESCE(sfsync_error,''), sfsync_failed_at IS NOT NULL FROM ps_shoppingfeed_task_order WHERE id_order = ?"+
		" UNION ALL SELECT action, COALESCE(batch_id,''), COALESCE(sfsync_operation,''), COALESCE(sfsync_error,''), sfsync_failed_at IS NOT NULL FROM ps_sfsync_webhook_task WHERE id_order = ? ORDER BY 1", order, order)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	var out []taskRow
	for rows.Next() {
		var r taskRow
		if err := rows.Scan(&r.action, &r.batch, &r.operation, &r.errMsg, &r.failed); err != nil {
			p.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func (p *pipeline) processLog(order uint32, like string) int {
	var n int
	_ = p.db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_processlogger WHERE object_id = ? AND msg LIKE ?", order, like).Scan(&n)
	return n
}

func TestCancelIsSentAtOnceAndRecorded(t *testing.T) {
	p := newPipeline(t, options{})
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	began := time.Now()
	p.change(o, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "cancel sent", func() bool { return len(p.sent()[sfID]) == 1 })
	t.Logf("cancel reached the sandbox %s after the commit", time.Since(began))
	got := p.sent()[sfID][0]
	if got.op != "cancel" || !strings.Contains(got.raw, `"reason":""`) {
		t.Fatalf("sent %+v", got)
	}
	p.eventually(5*time.Second, "task recorded", func() bool {
		ts := p.tasks(o)
		return len(ts) == 1 && ts[0].action == prestashop.ActionCheckTicketStatus && ts[0].batch == got.batch && ts[0].operation == "cancel"
	})
	// The back office's process log says it was sent, under the module's
	// order-sync process, with the batch id, as the module's "Ticket
	// created" line.
	var name, level, objName, msg string
	if err := p.db.DB.QueryRow("SELECT name, level, object_name, msg FROM ps_shoppingfeed_processlogger WHERE object_id = ? AND msg LIKE '%Ticket created%'", o).
		Scan(&name, &level, &objName, &msg); err != nil {
		t.Fatalf("no process-log line for the sent update: %v", err)
	}
	if name != prestashop.ProcessOrderSync || level != prestashop.LevelSuccess || objName != "Order" || !strings.Contains(msg, "Status cancel") || !strings.Contains(msg, got.batch) {
		t.Fatalf("process-log line %q %q %q %q", name, level, objName, msg)
	}
	// The batch was handed to the ticket poller.
	s, _ := p.js.Stream(context.Background(), broker.TicketsStream)
	m, err := s.GetLastMsgForSubject(context.Background(), events.TicketCheckSubject(fmt.Sprint(sfsandboxtest.StoreID)))
	if err != nil || !strings.Contains(string(m.Data), got.batch) || m.Header.Get("Nats-Msg-Id") == "" {
		t.Fatalf("ticket check: %v %s", err, m.Data)
	}
}

// TestOnNATS29 runs the core scenarios against Debian's nats-server 2.9.10:
// the two lanes rely on NakWithDelay and a large MaxAckPending there too.
func TestOnNATS29(t *testing.T) {
	p := newPipeline(t, options{broker: testenv.NATSBinary, shippedDelay: time.Second})
	p.startSender(senderConfig(), "s1")
	cancelled, cancelID := p.order()
	shipped, shipID := p.order()
	p.change(shipped, shopfixture.StateShipped) // waits 1 s, then for its tracking number
	p.change(cancelled, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "cancel sent", func() bool { return len(p.sent()[cancelID]) == 1 })
	time.Sleep(1500 * time.Millisecond)
	if len(p.sent()[shipID]) != 0 {
		t.Fatal("shipment sent without its tracking number")
	}
	if err := p.fx.SetTracking(context.Background(), shipped, "NATS29"); err != nil {
		t.Fatal(err)
	}
	p.eventually(5*time.Second, "ship sent", func() bool { return len(p.sent()[shipID]) == 1 })
	if got := p.sent()[shipID][0]; got.op != "ship" || got.tracking != "NATS29" {
		t.Fatalf("sent %+v", got)
	}
}

func TestRefundIsAFullRefund(t *testing.T) {
	p := newPipeline(t, options{})
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	p.change(o, shopfixture.StateRefunded)
	p.eventually(5*time.Second, "refund sent", func() bool { return len(p.sent()[sfID]) == 1 })
	if got := p.sent()[sfID][0]; got.op != "refund" || !strings.Contains(strings.ReplaceAll(got.raw, " ", ""), `"refund":{"shipping":true,"products":[]}`) {
		t.Fatalf("sent %+v", got)
	}
}

func TestShipmentWaitsForTrackingTypedDuringDelay(t *testing.T) {
	p := newPipeline(t, options{shippedDelay: time.Second})
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	p.change(o, shopfixture.StateShipped)
	time.Sleep(500 * time.Millisecond)
	if len(p.sent()[sfID]) != 0 {
		t.Fatal("shipment sent before its delay")
	}
	// Past the delay with no number: it keeps waiting.
	time.Sleep(2 * time.Second)
	if len(p.sent()[sfID]) != 0 {
		t.Fatal("shipment sent without its tracking number")
	}
	if err := p.fx.SetTracking(context.Background(), o, "6A12345"); err != nil {
		t.Fatal(err)
	}
	p.eventually(5*time.Second, "ship sent", func() bool { return len(p.sent()[sfID]) == 1 })
	got := p.sent()[sfID][0]
	if got.op != "ship" || got.tracking != "6A12345" || got.carrier != "Colissimo" || got.link != "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345" {
		t.Fatalf("sent %+v", got)
	}
}

func TestShipmentSentWithoutTrackingAfterMaxWait(t *testing.T) {
	p := newPipeline(t, options{shippedDelay: time.Second, sandbox: func(c *sfsandbox.Config) { c.AllowShipWithoutTracking = true }})
	cfg := senderConfig()
	cfg.TrackingMaxWait = time.Second
	p.startSender(cfg, "s1")
	o, sfID := p.order()
	p.change(o, shopfixture.StateShipped)
	p.eventually(10*time.Second, "ship sent", func() bool { return len(p.sent()[sfID]) == 1 })
	if got := p.sent()[sfID][0]; got.op != "ship" || got.tracking != "" {
		t.Fatalf("sent %+v", got)
	}
	if p.processLog(o, "%without a tracking number%") != 1 {
		t.Fatal("no warning in the process log")
	}
}

func TestRevertWithinDelaySendsNothing(t *testing.T) {
	p := newPipeline(t, options{shippedDelay: 2 * time.Second})
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	if err := p.fx.SetTracking(context.Background(), o, "X1"); err != nil {
		t.Fatal(err)
	}
	p.change(o, shopfixture.StateShipped)
	time.Sleep(100 * time.Millisecond)
	p.change(o, shopfixture.StateProcessing) // a mistaken Shipped, reverted
	p.eventually(6*time.Second, "task removed", func() bool { return len(p.tasks(o)) == 0 })
	time.Sleep(500 * time.Millisecond)
	if n := len(p.sent()[sfID]); n != 0 {
		t.Fatalf("%d operations sent for a reverted shipment", n)
	}
	if p.processLog(o, "%no mapping list%") == 0 {
		t.Fatal("the process log does not say why nothing was sent")
	}
}

func TestShippedThenDeliveredWithinDelayShipsOnce(t *testing.T) {
	p := newPipeline(t, options{shippedDelay: 2 * time.Second})
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	if err := p.fx.SetTracking(context.Background(), o, "T-77"); err != nil {
		t.Fatal(err)
	}
	p.change(o, shopfixture.StateShipped)
	time.Sleep(100 * time.Millisecond)
	p.change(o, shopfixture.StateDelivered) // in no list, but flagged shipped
	time.Sleep(500 * time.Millisecond)
	if len(p.sent()[sfID]) != 0 {
		t.Fatal("shipment sent before its delay")
	}
	p.eventually(6*time.Second, "ship sent", func() bool { return len(p.sent()[sfID]) >= 1 })
	time.Sleep(700 * time.Millisecond)
	ops := p.sent()[sfID]
	if len(ops) != 1 || ops[0].op != "ship" || ops[0].tracking != "T-77" {
		t.Fatalf("sent %+v, want one ship", ops)
	}
}

// With Delivered mapped, Shipped → Delivered within the delay sends the
// shipment (carrier, tracking number, link) and then the delivery, in a
// later request made once the first was accepted; an order delivered after
// its shipment went out sends the delivery alone.
func TestShippedThenDeliveredWithinDelayShipsThenDelivers(t *testing.T) {
	p := newPipeline(t, options{shippedDelay: 2 * time.Second})
	if err := p.fx.SetStateList(context.Background(), shopfixture.ShopScope(1), prestashop.KeyDelivered, shopfixture.StateDelivered); err != nil {
		t.Fatal(err)
	}
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	later, laterID := p.order()
	for _, id := range []uint32{o, later} {
		if err := p.fx.SetTracking(context.Background(), id, fmt.Sprintf("T-%d", id)); err != nil {
			t.Fatal(err)
		}
	}
	p.change(o, shopfixture.StateShipped)
	p.change(later, shopfixture.StateShipped)
	time.Sleep(100 * time.Millisecond)
	p.change(o, shopfixture.StateDelivered)
	p.eventually(10*time.Second, "ship and deliver sent", func() bool { return len(p.sent()[sfID]) >= 2 })
	p.eventually(10*time.Second, "later order shipped", func() bool { return len(p.sent()[laterID]) == 1 })
	p.change(later, shopfixture.StateDelivered)
	p.eventually(10*time.Second, "later order delivered", func() bool { return len(p.sent()[laterID]) >= 2 })
	time.Sleep(700 * time.Millisecond) // nothing more may follow

	ops := p.sent()[sfID]
	if len(ops) != 2 || ops[0].op != "ship" || ops[1].op != "deliver" {
		t.Fatalf("sent %+v, want ship then deliver", ops)
	}
	want := fmt.Sprintf("T-%d", o)
	if ops[0].tracking != want || ops[0].carrier != "Colissimo" || ops[0].link != "https://www.laposte.fr/outils/suivre-vos-envois?code="+want {
		t.Fatalf("ship %+v, want carrier, tracking number and link", ops[0])
	}
	if ops[0].batch == ops[1].batch {
		t.Fatalf("ship and deliver went in one request (batch %s)", ops[0].batch)
	}
	// The sandbox's log: the ship request was accepted before the deliver
	// request came.
	var seq []string
	for _, r := range p.sb.Sandbox.Requests() {
		if r.Method == "POST" {
			seq = append(seq, fmt.Sprintf("%s %d", r.Path[strings.LastIndex(r.Path, "/")+1:], r.Status))
		}
	}
	if i, j := slices.Index(seq, "ship 202"), slices.Index(seq, "deliver 202"); i < 0 || j < i {
		t.Fatalf("POSTs %v: want ship accepted before deliver", seq)
	}
	if ops := p.sent()[laterID]; len(ops) != 2 || ops[0].op != "ship" || ops[1].op != "deliver" {
		t.Fatalf("order delivered after its shipment went out: sent %+v, want ship then deliver once each", ops)
	}
	if n := p.processLog(o, "%Ticket created%Status ship%deliver follows%"); n != 1 {
		t.Fatalf("%d process-log lines for the ship, want 1 saying deliver follows", n)
	}
	if n := p.processLog(o, "%Ticket created%Status deliver%"); n != 1 {
		t.Fatalf("%d process-log lines for the deliver, want 1", n)
	}
	p.eventually(5*time.Second, "no task left pending", func() bool {
		for _, r := range p.tasks(o) {
			if r.action == prestashop.ActionSyncStatus {
				return false
			}
		}
		return true
	})
}

func TestShipThenCancelWithinDelaySendsCancelOnly(t *testing.T) {
	p := newPipeline(t, options{shippedDelay: 2 * time.Second})
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	p.change(o, shopfixture.StateShipped)
	time.Sleep(100 * time.Millisecond)
	p.change(o, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "cancel sent", func() bool { return len(p.sent()[sfID]) == 1 })
	time.Sleep(2500 * time.Millisecond) // past the shipment's delay
	if ops := p.sent()[sfID]; len(ops) != 1 || ops[0].op != "cancel" {
		t.Fatalf("sent %+v, want the cancel only", ops)
	}
}

// A change the detector has not read yet must not be sent ahead of it on
// an older task's turn: the detector's task for that change would send it
// a second time.
func TestChangeTheDetectorHasNotReadIsSentOnce(t *testing.T) {
	p := newPipeline(t, options{shippedDelay: time.Second})
	p.startSender(senderConfig(), "s1")
	o, sfID := p.order()
	p.change(o, shopfixture.StateShipped)
	p.eventually(5*time.Second, "shipment task saved", func() bool { return len(p.tasks(o)) == 1 })
	p.stopDetector()
	p.change(o, shopfixture.StateCanceled)
	time.Sleep(2500 * time.Millisecond) // the shipment task is due, the cancel unread
	if ops := p.sent()[sfID]; len(ops) != 0 {
		t.Fatalf("sent %+v while the detector had not read the cancel", ops)
	}
	p.restartDetectorPolling(20 * time.Millisecond)
	p.eventually(10*time.Second, "cancel sent", func() bool { return len(p.sent()[sfID]) == 1 })
	time.Sleep(1500 * time.Millisecond)
	if ops := p.sent()[sfID]; len(ops) != 1 || ops[0].op != "cancel" {
		t.Fatalf("sent %+v, want the cancel once", ops)
	}
	if rows := p.tasks(o); len(rows) != 1 || rows[0].action != prestashop.ActionCheckTicketStatus || rows[0].operation != "cancel" {
		t.Fatalf("task rows %+v, want the cancel's ticket check only", rows)
	}
}

// cancelsDueAtOnce sets the shop's MAX_ORDERS and cancels n new orders
// while no sender runs, so that all are due at once when one starts; it
// returns their Shopping Feed ids.
func (p *pipeline) cancelsDueAtOnce(maxOrders string, n int) []int64 {
	p.t.Helper()
	if err := p.fx.SetConfig(context.Background(), shopfixture.ShopScope(1), prestashop.KeyMaxOrders, maxOrders); err != nil {
		p.t.Fatal(err)
	}
	var orders []uint32
	var ids []int64
	for range n {
		o, id := p.order()
		orders, ids = append(orders, o), append(ids, id)
	}
	for _, o := range orders {
		p.change(o, shopfixture.StateCanceled)
	}
	time.Sleep(300 * time.Millisecond) // the detector saves and publishes them
	return ids
}

func TestBatchingGroupsDueOrders(t *testing.T) {
	p := newPipeline(t, options{})
	ids := p.cancelsDueAtOnce("20", 50)
	// A linger long enough for all 50 to be prepared on a loaded machine:
	// what is tested is the grouping by MAX_ORDERS, not the linger.
	cfg := senderConfig()
	cfg.Linger = time.Second
	p.startSender(cfg, "s1")
	p.eventually(10*time.Second, "all sent", func() bool { return len(p.sent()) == 50 })
	batches := map[string]int{}
	for _, id := range ids {
		for _, op := range p.sent()[id] {
			batches[op.batch]++
		}
	}
	if len(batches) != 3 {
		t.Fatalf("%d POSTs for 50 orders with MAX_ORDERS 20, want 3: %v", len(batches), batches)
	}
}

// A shop's batch size above what one request takes (the back office
// allows 200) is bounded by the client's per-request cap (its real
// default, 100): 150 due orders with MAX_ORDERS 150 go as 100 + 50, and no
// request is refused for holding too many.
func TestBatchSizeAboveTheRequestCapSplitsAtTheCap(t *testing.T) {
	p := newPipeline(t, options{})
	ids := p.cancelsDueAtOnce("150", 150)
	cfg := senderConfig()
	cfg.Linger = 2 * time.Second // what is tested is the cap, not the linger
	p.startSender(cfg, "s1")
	p.eventually(20*time.Second, "all sent", func() bool { return len(p.sent()) == 150 })
	batches := map[string]int{}
	for _, id := range ids {
		ops := p.sent()[id]
		if len(ops) != 1 {
			t.Fatalf("order %d: sent %d times", id, len(ops))
		}
		batches[ops[0].batch]++
	}
	sizes := []int{}
	for _, n := range batches {
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{50, 100}) {
		t.Fatalf("POST sizes %v for 150 orders with MAX_ORDERS 150, want [50 100]", sizes)
	}
	for _, r := range p.sb.Sandbox.Requests() {
		if r.Method == "POST" && r.Status != 202 {
			t.Fatalf("a POST was answered %d: %+v", r.Status, r)
		}
	}
}

func TestBatchModeSendsOnTheInterval(t *testing.T) {
	p := newPipeline(t, options{})
	cfg := senderConfig()
	cfg.Mode, cfg.Interval = sender.ModeBatch, 1500*time.Millisecond
	p.startSender(cfg, "s1")
	var ids []int64
	for range 5 {
		o, id := p.order()
		ids = append(ids, id)
		p.change(o, shopfixture.StateCanceled)
		time.Sleep(50 * time.Millisecond)
	}
	p.eventually(5*time.Second, "sent", func() bool { return len(p.sent()) == 5 })
	batches := map[string]bool{}
	for _, id := range ids {
		batches[p.sent()[id][0].batch] = true
	}
	if len(batches) != 1 {
		t.Fatalf("batch mode sent %d POSTs, want 1", len(batches))
	}
}

func TestOrderWithoutIdentifiersFails(t *testing.T) {
	p := newPipeline(t, options{})
	p.startSender(senderConfig(), "s1")
	o, err := p.fx.CreateOrder(context.Background(), shopfixture.OrderSpec{CarrierID: p.shop.CarrierID, SF: &shopfixture.SFLink{Channel: "amazon", TokenID: p.shop.TokenID}})
	if err != nil {
		t.Fatal(err)
	}
	p.change(o, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "task failed", func() bool { ts := p.tasks(o); return len(ts) == 1 && ts[0].failed })
	if ts := p.tasks(o); !strings.Contains(ts[0].errMsg, "neither a Shopping Feed order id") {
		t.Fatalf("error %q", ts[0].errMsg)
	}
	if p.processLog(o, "%neither a Shopping Feed order id%") != 1 {
		t.Fatal("failure not in the process log")
	}
}

func TestOrderSentByReferenceWhenNoSFID(t *testing.T) {
	p := newPipeline(t, options{})
	p.startSender(senderConfig(), "s1")
	o, err := p.fx.CreateOrder(context.Background(), shopfixture.OrderSpec{CarrierID: p.shop.CarrierID, SF: &shopfixture.SFLink{MarketplaceRef: "AMZ-REF-1", Channel: "amazon", TokenID: p.shop.TokenID}})
	if err != nil {
		t.Fatal(err)
	}
	p.change(o, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "sent", func() bool { return len(p.sent()[0]) == 1 })
	if got := p.sent()[0][0]; got.ref != "AMZ-REF-1" || !strings.Contains(got.raw, `"channelName":"amazon"`) {
		t.Fatalf("sent %+v", got)
	}
}

func TestRejectedOrderDataFailsThatOrderOnly(t *testing.T) {
	p := newPipeline(t, options{})
	a, idA := p.order()
	b, idB := p.order()
	p.change(a, shopfixture.StateCanceled)
	p.change(b, shopfixture.StateCanceled)
	time.Sleep(200 * time.Millisecond)
	// The batch is refused, then (sent alone) the first order again.
	p.sb.Sandbox.FailNext(400, 400)
	p.startSender(senderConfig(), "s1")
	p.eventually(5*time.Second, "one sent, one failed", func() bool {
		ta, tb := p.tasks(a), p.tasks(b)
		if len(ta) != 1 || len(tb) != 1 {
			return false
		}
		sentA := ta[0].action == prestashop.ActionCheckTicketStatus
		sentB := tb[0].action == prestashop.ActionCheckTicketStatus
		return (ta[0].failed && sentB) || (tb[0].failed && sentA)
	})
	sent := p.sent()
	if len(sent[idA])+len(sent[idB]) != 1 {
		t.Fatalf("sent %v", sent)
	}
}

func TestRetryableStormLosesNothing(t *testing.T) {
	p := newPipeline(t, options{})
	p.sb.Sandbox.SetFaults(sfsandbox.Faults{ErrorRate: 0.5, ThrottleRate: 0.2, ThrottleWait: 50 * time.Millisecond})
	cfg := senderConfig()
	cfg.MaxAttempts = 100
	p.startSender(cfg, "s1")
	var ids []int64
	for range 30 {
		o, id := p.order()
		ids = append(ids, id)
		p.change(o, shopfixture.StateCanceled)
	}
	p.eventually(30*time.Second, "every order sent", func() bool { return len(p.sent()) == 30 })
	for _, id := range ids {
		if n := len(p.sent()[id]); n != 1 {
			t.Fatalf("order %d sent %d times", id, n)
		}
	}
}

func TestGiveUpAfterMaxAttempts(t *testing.T) {
	p := newPipeline(t, options{})
	p.sb.Sandbox.SetFaults(sfsandbox.Faults{ErrorRate: 1})
	cfg := senderConfig()
	cfg.MaxAttempts = 3
	p.startSender(cfg, "s1")
	o, _ := p.order()
	p.change(o, shopfixture.StateCanceled)
	p.eventually(10*time.Second, "task failed", func() bool { ts := p.tasks(o); return len(ts) == 1 && ts[0].failed })
	if ts := p.tasks(o); !strings.Contains(ts[0].errMsg, "after 3 attempts") {
		t.Fatalf("error %q", ts[0].errMsg)
	}
}

func TestRejectedTokenDropsNothing(t *testing.T) {
	p := newPipeline(t, options{})
	// The shop's token is one the API does not know.
	if _, err := p.db.DB.Exec("UPDATE ps_shoppingfeed_token SET content = 'revoked-token'"); err != nil {
		t.Fatal(err)
	}
	cfg := senderConfig()
	cfg.SettingsTTL = 100 * time.Millisecond
	p.startSender(cfg, "s1")
	o, sfID := p.order()
	p.change(o, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "rejection logged", func() bool {
		var n int
		_ = p.db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_processlogger WHERE msg LIKE '%rejected the token%'").Scan(&n)
		return n == 1
	})
	if ts := p.tasks(o); len(ts) != 1 || ts[0].action != prestashop.ActionSyncStatus || ts[0].failed {
		t.Fatalf("task after rejection: %+v", ts)
	}
	var leaked int
	_ = p.db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_processlogger WHERE msg LIKE '%revoked-token%'").Scan(&leaked)
	if leaked != 0 {
		t.Fatal("the token reached the process log")
	}
	// The merchant fixes the token: the held update goes out.
	if _, err := p.db.DB.Exec("UPDATE ps_shoppingfeed_token SET content = ?", sfsandboxtest.Token); err != nil {
		t.Fatal(err)
	}
	p.eventually(90*time.Second, "sent after the fix", func() bool { return len(p.sent()[sfID]) == 1 })
}

func TestThreeSendersSendEachOrderOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	p := newPipeline(t, options{sandbox: func(c *sfsandbox.Config) {}})
	const n = 2000
	var orders []uint32
	for range n {
		o, _ := p.order()
		orders = append(orders, o)
	}
	for i := range 3 {
		p.startSender(senderConfig(), fmt.Sprintf("s%d", i))
	}
	states := []uint32{shopfixture.StateCanceled, shopfixture.StateRefunded}
	for i, o := range orders {
		p.change(o, states[i%2])
	}
	p.eventually(60*time.Second, "every order sent", func() bool { return len(p.sent()) == n })
	time.Sleep(500 * time.Millisecond)
	for id, ops := range p.sent() {
		if len(ops) != 1 {
			t.Fatalf("SF order %d: %d operations %v", id, len(ops), ops)
		}
	}
	var pending int
	_ = p.db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE action = 'SYNC_STATUS'").Scan(&pending)
	if pending != 0 {
		t.Fatalf("%d tasks still pending", pending)
	}
}

func TestWaitingShipmentsDoNotDelayACancel(t *testing.T) {
	p := newPipeline(t, options{shippedDelay: time.Hour})
	p.startSender(senderConfig(), "s1")
	const waiting = 1500
	var orders []uint32
	for range waiting {
		o, _ := p.order()
		orders = append(orders, o)
	}
	for _, o := range orders {
		p.change(o, shopfixture.StateShipped)
	}
	// All shipments are parked on the wait consumer.
	wait, _ := p.js.Consumer(context.Background(), broker.OrdersStream, broker.SenderWaitConsumer)
	p.eventually(30*time.Second, "shipments waiting", func() bool {
		info, err := wait.Info(context.Background())
		return err == nil && info.NumAckPending >= waiting
	})
	o, sfID := p.order()
	began := time.Now()
	p.change(o, shopfixture.StateCanceled)
	p.eventually(5*time.Second, "cancel sent", func() bool { return len(p.sent()[sfID]) == 1 })
	took := time.Since(began)
	t.Logf("cancel sent %s after its commit, with %d shipments waiting", took, waiting)
	// How fast is the benchmark's to say (BenchmarkCancelBehindWaitingShipments);
	// here only that the cancel does not queue behind the shipments, which
	// would take seconds, with room for a loaded machine.
	if took > 3*time.Second {
		t.Fatalf("cancel took %s behind %d waiting shipments", took, waiting)
	}
}
