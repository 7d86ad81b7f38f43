package sender_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// limited is the sandbox as the real API behaves for these figures: 10
// requests per 2 s per token, 20 ms per answer.
func limited(c *sfsandbox.Config) {
	c.Faults.RateLimit = sfsandbox.Rate{Requests: 10, Per: 2 * time.Second}
	c.Faults.Latency = 20 * time.Millisecond
}

// bulkOrders creates n Shopping Feed orders in one go.
// shipAll moves the orders to Shipped as PrestaShop does, many per
// transaction, with no tracking number.
func (p *pipeline) shipAll(tb testing.TB, ids []uint32) {
	tb.Helper()
	for start := 0; start < len(ids); start += 2000 {
		chunk := ids[start:min(start+2000, len(ids))]
		vals := make([]string, len(chunk))
		in := make([]string, len(chunk))
		for i, id := range chunk {
			vals[i] = fmt.Sprintf("(1, %d, %d, NOW())", id, shopfixture.StateShipped)
			in[i] = strconv.Itoa(int(id))
		}
		if _, err := p.db.DB.Exec("INSERT INTO ps_order_history (id_employee, id_order, id_order_state, date_add) VALUES " + strings.Join(vals, ",")); err != nil {
			tb.Fatal(err)
		}
		if _, err := p.db.DB.Exec(fmt.Sprintf("UPDATE ps_orders SET current_state = %d WHERE id_order IN (%s)", shopfixture.StateShipped, strings.Join(in, ","))); err != nil {
			tb.Fatal(err)
		}
	}
}

func (p *pipeline) bulkOrders(b testing.TB, n int) ([]uint32, []int64) {
	b.Helper()
	ids, sfIDs, err := p.fx.BulkSFOrders(context.Background(), p.shop, n, shopfixture.StatePaymentAccepted, 900000)
	if err != nil {
		b.Fatal(err)
	}
	return ids, sfIDs
}

// bulkCancel cancels orders as PrestaShop does, many per transaction.
func (p *pipeline) bulkCancel(b testing.TB, ids []uint32) {
	b.Helper()
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		vals := make([]string, len(chunk))
		in := make([]string, len(chunk))
		for i, id := range chunk {
			vals[i] = fmt.Sprintf("(1, %d, %d, NOW())", id, shopfixture.StateCanceled)
			in[i] = strconv.Itoa(int(id))
		}
		tx, _ := p.db.DB.Begin()
		if _, err := tx.Exec("INSERT INTO ps_order_history (id_employee, id_order, id_order_state, date_add) VALUES " + strings.Join(vals, ",")); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(fmt.Sprintf("UPDATE ps_orders SET current_state = %d WHERE id_order IN (%s)", shopfixture.StateCanceled, strings.Join(in, ","))); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func productionSender() sender.Config {
	c := senderConfig()
	c.Linger = 100 * time.Millisecond
	c.Workers = 8
	c.Concurrency = 16
	return c
}

// BenchmarkDrain drains BENCH_ORDERS (default 10,000) due cancellations
// through the sandbox with its default rate limit (10 requests per 2 s per
// token) and 20 ms latency, and reports orders/s against the ceiling that
// limit allows (100 orders × 5 requests/s = 500/s) and the API calls made.
// In the same run a naive sender that posts one request per order drains
// BENCH_NAIVE_ORDERS (default 100) for the ratio.
func BenchmarkDrain(b *testing.B) {
	n := testenv.EnvInt("BENCH_ORDERS", 10_000)
	p := newPipeline(b, options{sandbox: limited})
	ids, _ := p.bulkOrders(b, n)
	p.bulkCancel(b, ids)
	// Every task saved before the sender starts: all due at once.
	for {
		var c int
		_ = p.db.DB.QueryRow("SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE action = 'SYNC_STATUS'").Scan(&c)
		if c == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.ResetTimer()
	began := time.Now()
	r := p.startSenderWith(productionSender(), "bench", shoppingfeed.Config{BaseURL: p.sb.URL, Timeout: 10 * time.Second, RateLimit: "10/2s", MaxRetries: 3, MaxOrdersPerRequest: 100})
	for len(p.sb.Sandbox.Operations()) < n {
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(began)
	b.StopTimer()
	r.stop()
	calls := map[string]bool{}
	for _, op := range p.sb.Sandbox.Operations() {
		calls[op.BatchID] = true
	}
	rate := float64(n) / took.Seconds()
	b.ReportMetric(rate, "orders/s")
	b.ReportMetric(100*rate/500, "pct_of_ceiling")
	b.ReportMetric(float64(len(calls)), "api_calls")
	b.ReportMetric(float64((n+99)/100), "min_calls")
	b.ReportMetric(float64(n), "orders")
	b.ReportMetric(float64(len(calls))*1000/float64(n), "calls_per_1000")

	// The naive sender: one POST per order, same limit and latency.
	naive := testenv.EnvInt("BENCH_NAIVE_ORDERS", 100)
	client, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: p.sb.URL, Timeout: 10 * time.Second, RateLimit: "10/2s", MaxRetries: 3, MaxOrdersPerRequest: 100}, testLogger(), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	nb := time.Now()
	for i := range naive {
		if _, err := client.Operate(ctx, config.Secret(p.shop.Token), p.shop.StoreID, shoppingfeed.OpCancel, []shoppingfeed.OrderOperation{{Order: shoppingfeed.OrderRef{ID: int64(800000 + i)}}}); err != nil {
			b.Fatal(err)
		}
	}
	naiveRate := float64(naive) / time.Since(nb).Seconds()
	naiveCalls := map[string]bool{}
	for _, op := range p.sb.Sandbox.Operations() {
		if !calls[op.BatchID] {
			naiveCalls[op.BatchID] = true
		}
	}
	b.ReportMetric(naiveRate, "naive_orders/s")
	b.ReportMetric(float64(len(naiveCalls))*1000/float64(naive), "naive_calls_per_1000")
	b.ReportMetric(rate/naiveRate, "ratio")
}

// BenchmarkCancelLatency commits cancellations at 10 per second for
// BENCH_SECONDS (default 10) with the detector polling every 200 ms and the
// sender in realtime mode, and reports the time from each commit to its
// POST reaching the sandbox.
func BenchmarkCancelLatency(b *testing.B) {
	seconds := testenv.EnvInt("BENCH_SECONDS", 10)
	p := newPipeline(b, options{sandbox: limited})
	p.restartDetectorPolling(200 * time.Millisecond)
	count := 10 * seconds
	ids, sfIDs := p.bulkOrders(b, count)
	p.startSenderWith(productionSender(), "bench", shoppingfeed.Config{BaseURL: p.sb.URL, Timeout: 10 * time.Second, RateLimit: "10/2s", MaxRetries: 3, MaxOrdersPerRequest: 100})
	time.Sleep(500 * time.Millisecond)
	committed := map[int64]time.Time{}
	b.ResetTimer()
	tick := time.NewTicker(100 * time.Millisecond)
	for i, id := range ids {
		<-tick.C
		p.change(id, shopfixture.StateCanceled)
		committed[sfIDs[i]] = time.Now()
	}
	tick.Stop()
	for len(p.sb.Sandbox.Operations()) < count {
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	var lat []time.Duration
	for sfID, ops := range p.sent() {
		if c, ok := committed[sfID]; ok && len(ops) > 0 {
			lat = append(lat, opTime(p, sfID).Sub(c))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
}

func opTime(p *pipeline, sfID int64) time.Time {
	for _, op := range p.sb.Sandbox.Operations() {
		if strings.Contains(string(op.Entry), fmt.Sprintf(`"id":%d`, sfID)) {
			return op.Time
		}
	}
	return time.Time{}
}

// BenchmarkCancelBehindWaitingShipments parks BENCH_WAITING (default
// 100,000) shipments on their delay, then cancels one order and reports the
// time from its commit to its POST: waiting updates live on their own
// consumer, so they must not delay it (target under 1 s).
func BenchmarkCancelBehindWaitingShipments(b *testing.B) {
	waiting := testenv.EnvInt("BENCH_WAITING", 100_000)
	p := newPipeline(b, options{shippedDelay: time.Hour})
	ids, _ := p.bulkOrders(b, waiting)
	// Ship them all as PrestaShop does, many per transaction.
	p.shipAll(b, ids)
	p.startSender(productionSender(), "bench")
	wait, _ := p.js.Consumer(context.Background(), "SFSYNC_ORDERS", "sender-wait")
	parked := time.Now()
	for {
		info, err := wait.Info(context.Background())
		if err == nil && info.NumAckPending >= waiting && info.NumPending == 0 {
			break
		}
		if time.Since(parked) > 10*time.Minute {
			b.Fatalf("shipments not parked: %+v", info)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Logf("%d shipments parked on sender-wait in %s", waiting, time.Since(parked).Round(time.Millisecond))
	o, sfID := p.order()
	// No b.ResetTimer: the timer counts the parking too, so the run is
	// longer than -benchtime and the framework does not run it again with a
	// larger b.N (each run parks every shipment anew: minutes each).
	began := time.Now()
	p.change(o, shopfixture.StateCanceled)
	for len(p.sent()[sfID]) == 0 {
		if time.Since(began) > time.Minute {
			b.Fatal("cancel not sent within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(waiting), "waiting")
	b.ReportMetric(float64(took.Microseconds())/1000, "cancel_ms")
}
