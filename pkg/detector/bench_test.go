package detector_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/testenv"
)

// BenchmarkCatchUp measures how fast a detector that starts from the
// beginning publishes a backlog of BENCH_ROWS (default 1,000,000) history
// rows: a merchant's year, or a replay. States cycle through payment
// accepted, processing, shipped, delivered and canceled over 20,000 orders.
func BenchmarkCatchUp(b *testing.B) {
	rows := testenv.EnvInt("BENCH_ROWS", 1_000_000)
	e := newEnv(b)
	const orders = 20_000
	ids, _, err := e.fx.BulkSFOrders(context.Background(), e.shop, orders, shopfixture.StatePaymentAccepted, 100000)
	if err != nil {
		b.Fatal(err)
	}
	first := ids[0]
	states := []uint32{shopfixture.StatePaymentAccepted, shopfixture.StateProcessing, shopfixture.StateShipped, shopfixture.StateDelivered, shopfixture.StateCanceled}
	loadStart := time.Now()
	for start := 0; start < rows; start += 5000 {
		cnt := min(5000, rows-start)
		vals := make([]string, cnt)
		for i := range vals {
			n := start + i
			vals[i] = fmt.Sprintf("(0, %d, %d, NOW())", int(first)+n%orders, states[n%len(states)])
		}
		if _, err := e.db.DB.Exec("INSERT INTO ps_order_history (id_employee, id_order, id_order_state, date_add) VALUES " + strings.Join(vals, ",")); err != nil {
			b.Fatal(err)
		}
	}
	var maxID uint64
	_ = e.db.DB.QueryRow("SELECT MAX(id_order_history) FROM ps_order_history").Scan(&maxID)
	b.Logf("loaded %d history rows in %s", rows, time.Since(loadStart).Round(time.Millisecond))

	cfg := testConfig()
	cfg.StartFrom = "beginning"
	cfg.BatchSize = 5000
	b.ResetTimer()
	began := time.Now()
	r := e.start(cfg, "bench")
	pos := metric(b, r.reg, "sfsync_detector_position")
	for testutil.ToFloat64(pos) < float64(maxID) {
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(began)
	b.StopTimer()
	r.stop()
	ctx := context.Background()
	s, _ := e.js.Stream(ctx, broker.OrdersStream)
	info, _ := s.Info(ctx)
	if int(info.State.Msgs) != rows {
		b.Fatalf("%d events in the stream for %d rows", info.State.Msgs, rows)
	}
	b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
	b.ReportMetric(took.Seconds(), "s_total")
}

// BenchmarkDetectionLatency changes order states at 20 per second for
// BENCH_SECONDS (default 15) and measures, for each change, the time from
// its commit to the event being stored in JetStream (the stream's own
// timestamp), with POLL_INTERVAL 200ms as in production.
func BenchmarkDetectionLatency(b *testing.B) {
	seconds := testenv.EnvInt("BENCH_SECONDS", 15)
	e := newEnv(b)
	ctx := context.Background()
	orders := make([]uint32, 50)
	for i := range orders {
		orders[i] = e.order()
	}
	cfg := testConfig()
	cfg.PollInterval = 200 * time.Millisecond
	r := e.start(cfg, "bench")
	e.waitLeader(r)
	time.Sleep(500 * time.Millisecond)
	committed := map[uint64]time.Time{}
	b.ResetTimer()
	tick := time.NewTicker(50 * time.Millisecond)
	for i := 0; i < 20*seconds; i++ {
		<-tick.C
		h, err := e.fx.ChangeState(ctx, orders[i%len(orders)], []uint32{shopfixture.StateShipped, shopfixture.StateCanceled, shopfixture.StateProcessing}[i%3])
		if err != nil {
			b.Fatal(err)
		}
		committed[h] = time.Now()
	}
	tick.Stop()
	time.Sleep(time.Second)
	b.StopTimer()
	s, _ := e.js.Stream(ctx, broker.OrdersStream)
	info, _ := s.Info(ctx)
	var lat []time.Duration
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		h, _ := strconv.ParseUint(m.Header.Get("Nats-Msg-Id")[strings.LastIndex(m.Header.Get("Nats-Msg-Id"), ".")+1:], 10, 64)
		if c, ok := committed[h]; ok {
			lat = append(lat, m.Time.Sub(c))
		}
	}
	if len(lat) != len(committed) {
		b.Fatalf("%d events for %d changes", len(lat), len(committed))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	b.ReportMetric(float64(p(0.50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
}
