package ticketpoller_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/testenv"
	"github.com/sfsync/sfsync/pkg/ticketpoller"
	sfsyncv1 "github.com/sfsync/sfsync/proto/sfsync/v1"
)

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// BenchmarkResolveBatches follows BENCH_TICKET_ORDERS orders (10,000) in
// BENCH_TICKET_BATCHES batches (100) through the sandbox at its default
// speed: tickets scheduled 500 ms, running 1 s, and 10 requests per 2 s per
// token (BENCH_TICKET_RATE, "none" to lift it). A simulated sender POSTs
// the batches through the same client as the poller, as the all-in-one
// binary does, so both share the token's budget, and hands each batch over
// as the sender does. It runs once whatever b.N and reports:
//
//   - reads/order: ticket reads (HTTP GETs the sandbox answered) per resolved order;
//   - last-resolve-to-gone-ms: from the last ticket turning final (by the
//     sandbox's schedule) to the last task row being deleted;
//   - wall-s: from the first POST to the last row gone.
func BenchmarkResolveBatches(b *testing.B) {
	orders := testenv.EnvInt("BENCH_TICKET_ORDERS", 10000)
	batches := testenv.EnvInt("BENCH_TICKET_BATCHES", 100)
	pollers := testenv.EnvInt("BENCH_TICKET_POLLERS", 1)
	rate := envString("BENCH_TICKET_RATE", "10/2s")
	per := (orders + batches - 1) / batches
	if per > 200 {
		b.Fatalf("%d orders per batch: Shopping Feed takes at most 200", per)
	}
	def := sfsandbox.DefaultConfig()
	e := newEnv(b, func(c *sfsandbox.Config) {
		c.ScheduledFor, c.RunningFor = def.ScheduledFor, def.RunningFor
		c.MaxOrdersPerRequest = 200
		c.Faults = def.Faults
		if err := c.Faults.RateLimit.UnmarshalText([]byte(rate)); err != nil {
			b.Fatal(err)
		}
	})
	sf, err := shoppingfeed.New(shoppingfeed.Config{BaseURL: e.sb.URL, RateLimit: rate, MaxOrdersPerRequest: 200}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	e.sf = sf
	ids, sfIDs := bulkOrders(b, e, orders)

	cfg := ticketpoller.Config{
		MaxAge: 24 * time.Hour, BackoffMin: 2 * time.Second, BackoffMax: 5 * time.Minute, Concurrency: 16,
		CheckTimeout: 2 * time.Minute, ReportInterval: time.Hour, ReportMaxRows: 500,
		SMTPTimeout: 30 * time.Second,
	}
	for i := range pollers {
		e.start(cfg, fmt.Sprintf("bench%d", i), nil)
	}

	b.ResetTimer()
	start := time.Now()
	for bi := 0; bi*per < orders; bi++ {
		lo, hi := bi*per, min((bi+1)*per, orders)
		ops := make([]shoppingfeed.OrderOperation, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ops = append(ops, shoppingfeed.OrderOperation{Order: shoppingfeed.OrderRef{ID: sfIDs[i]}, Carrier: "Colissimo", TrackingNumber: "6A" + strconv.Itoa(i)})
		}
		batch, err := sf.Operate(e.ctx, config.Secret(sfsandboxtest.Token), e.shop.StoreID, shoppingfeed.OpShip, ops)
		if err != nil {
			b.Fatal(err)
		}
		tc := &sfsyncv1.TicketCheck{StoreId: e.shop.StoreID, ShopId: 1, BatchId: batch.ID, Operation: "ship", TokenId: e.shop.TokenID, FirstSeen: timestamppb.Now()}
		vals := make([]string, 0, hi-lo)
		for i := lo; i < hi; i++ {
			vals = append(vals, fmt.Sprintf("('CHECK_TICKET_SYNC_STATUS', %d, '%s', NOW(), NOW(), 'ship', '%s', %d, NOW())", ids[i], batch.ID, e.shop.StoreID, e.shop.TokenID))
		}
		res, err := e.db.DB.Exec("INSERT INTO ps_shoppingfeed_task_order (action, id_order, batch_id, date_add, date_upd, sfsync_operation," +
			" sfsync_store_id, sfsync_token_id, sfsync_progress_at) VALUES " + strings.Join(vals, ","))
		if err != nil {
			b.Fatal(err)
		}
		first, _ := res.LastInsertId()
		for i := lo; i < hi; i++ {
			tc.Orders = append(tc.Orders, &sfsyncv1.TicketOrder{OrderId: ids[i], TaskId: uint64(first) + uint64(i-lo), SfOrderId: strconv.FormatInt(sfIDs[i], 10)})
		}
		e.publish(tc, "batch."+e.shop.StoreID+"."+batch.ID)
	}
	sent := time.Since(start)
	var gone time.Time
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Minute)
	defer cancel()
	for {
		var n int
		if err := e.db.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE action = 'CHECK_TICKET_SYNC_STATUS'").Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			gone = time.Now()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()

	var lastFinal time.Time
	for _, op := range e.sb.Operations() {
		if f := op.Time.Add(def.ScheduledFor + def.RunningFor); f.After(lastFinal) {
			lastFinal = f
		}
	}
	reads := 0
	for _, r := range e.sb.Requests() {
		if r.Method == "GET" && strings.Contains(r.Path, "/ticket?") {
			reads++
		}
	}
	if n := e.count("SELECT COUNT(*) FROM ps_shoppingfeed_processlogger WHERE name = ? AND level = 'success'", ticketpoller.LogName); n != orders {
		b.Fatalf("%d success lines, want %d", n, orders)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(reads)/float64(orders), "reads/order")
	b.ReportMetric(float64(reads), "reads")
	b.ReportMetric(float64(gone.Sub(lastFinal).Milliseconds()), "last-resolve-to-gone-ms")
	b.ReportMetric(gone.Sub(start).Seconds(), "wall-s")
	b.ReportMetric(sent.Seconds(), "send-s")
}

// bulkOrders creates n Shopping Feed orders, state shipped, in one go,
// and returns their ids and SF ids.
func bulkOrders(b *testing.B, e *env, n int) ([]uint32, []int64) {
	b.Helper()
	ids, sfIDs, err := e.fx.BulkSFOrders(context.Background(), e.shop, n, shopfixture.StateShipped, 900000)
	if err != nil {
		b.Fatal(err)
	}
	return ids, sfIDs
}
