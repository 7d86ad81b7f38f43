package demo

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/localmysql"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/shopfixture"
	"github.com/sfsync/sfsync/services/sfsync/internal/allinone"
)

// Options tune the demo.
type Options struct {
	// MySQLDSN, when set, is used instead of a private MariaDB; the demo
	// creates and drops its own database there.
	MySQLDSN string
	Out      io.Writer
	// Timeout bounds the wait for every order to settle.
	Timeout time.Duration
}

// step is one merchant action of the script and what must come of it.
type step struct {
	order   Order
	shop    uint32
	did     string
	act     func(ctx context.Context, fx *shopfixture.Fixture) error
	wantOps []string // operations Shopping Feed must receive, in order
	// wantRow is the task row at the end: "gone" or "failed".
	wantRow string
	// wantTicket is the ticket result: "succeed", "failed" or "" (none).
	wantTicket string
}

const shipDelay = 4 * time.Second

// Run plays the demo and returns an error naming every order that did not
// end as expected.
func Run(ctx context.Context, o Options) error {
	out := o.Out
	began := time.Now()
	fmt.Fprintln(out, "sfsync demo: a merchant's day on two shops, end to end through the Shopping Feed sandbox")
	fmt.Fprintln(out)

	dsn, cleanup, err := database(ctx, o)
	if err != nil {
		return err
	}
	defer cleanup()
	db, err := prestashop.Open(ctx, prestashop.Config{DSN: config.Secret(dsn), Prefix: "ps_"})
	if err != nil {
		return err
	}
	defer db.Close()
	data, fresh, err := Seed(ctx, db, "ps_")
	if err != nil {
		return fmt.Errorf("seed demo data: %w", err)
	}
	if !fresh {
		return errors.New("the demo database already has orders")
	}
	fmt.Fprintf(out, "  shop data      %s\n", data.Describe())

	sbCfg := sfsandbox.DefaultConfig()
	sbCfg.Stores = sfsandbox.Tokens{{Token: Token1, StoreIDs: []int64{mustInt(Store1)}}, {Token: Token2, StoreIDs: []int64{mustInt(Store2)}}}
	sbCfg.ScheduledFor, sbCfg.RunningFor = 500*time.Millisecond, time.Second
	sbCfg.RefundUnsupportedChannels = []string{"cdiscount"}
	sbCfg.Seed = 42
	// The sandbox knows each store's orders and their channels, as Shopping
	// Feed does: that is how a refund of a cdiscount order sent by id fails.
	if err := sbCfg.Orders.UnmarshalText([]byte(SandboxOrders())); err != nil {
		return fmt.Errorf("SandboxOrders: %w", err)
	}
	sb, err := sfsandbox.Start(sbCfg, nil)
	if err != nil {
		return err
	}
	defer sb.Close()
	fmt.Fprintf(out, "  SF sandbox     %s (10 requests per 2 s per token; refunds refused on cdiscount)\n", sb.URL)

	dataDir, err := os.MkdirTemp("", "sfsync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	natsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	env := map[string]string{
		"MYSQL_DSN": dsn, "DB_PREFIX": "ps_", "HTTP_ADDR": "", "LOG_FORMAT": "console", "LOG_LEVEL": "error",
		"DATA_DIR": dataDir, "EMBEDDED_NATS_ADDR": natsAddr, "SF_API_URL": sb.URL,
		"SHIPPED_DELAY": shipDelay.String(), "POLL_INTERVAL": "100ms", "TRACKING_RECHECK": "1s",
		"TICKET_BACKOFF_MIN": "500ms", "TICKET_BACKOFF_MAX": "2s", "REPORT_INTERVAL": "3s",
		"REPORT_TO": "merchant@demo.test", "REPORT_FROM": "sfsync@demo.test", "LEASE_TTL": "3s", "START_FROM": "now",
	}
	cfg, log, err := allinone.Load(ctx, config.MapLookup(env), io.Discard)
	if err != nil {
		return err
	}
	_ = log
	appLog, _, _ := loggerTo(out)
	app, err := allinone.Start(ctx, cfg, appLog)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	defer func() { stop(); <-done; app.Close() }()
	fmt.Fprintf(out, "  sfsync         detector, sender and ticket poller in one process; embedded NATS on %s\n", app.NATSURL())
	fmt.Fprintf(out, "  shipment delay %s (SHIPPED_DELAY), so that a tracking number typed late still goes out\n\n", shipDelay)
	for !app.Detector.Leading() {
		time.Sleep(20 * time.Millisecond)
	}

	fx := shopfixture.New(db, "ps_")
	steps := script(data)
	if err := act(ctx, out, fx, steps); err != nil {
		return err
	}
	results, err := settle(ctx, out, db, steps, o.Timeout, func(context.Context) ([]sfsandbox.RecordedOperation, error) { return sb.Operations(), nil })
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "look further while bin/sfsync runs (embedded NATS on 127.0.0.1:4222 by default):")
	for _, c := range []string{
		"nats --server nats://127.0.0.1:4222 stream info SFSYNC_ORDERS",
		"nats --server nats://127.0.0.1:4222 stream view SFSYNC_ORDERS --subject 'sfsync.order.status.>'",
		"nats --server nats://127.0.0.1:4222 consumer info SFSYNC_ORDERS sender-wait",
		"nats --server nats://127.0.0.1:4222 kv get sfsync_checkpoints detector.<database>.ps_",
		"bin/sfsync status   # tasks, tickets, failures, detector position, backlog",
	} {
		fmt.Fprintln(out, "  "+c)
	}
	fmt.Fprintf(out, "\ndemo finished in %s\n", time.Since(began).Round(time.Second))
	return verdict(out, results)
}

// verdict returns an error naming every order that did not end as
// expected.
func verdict(out io.Writer, results []result) error {
	var bad []string
	for _, r := range results {
		if !r.ok {
			bad = append(bad, fmt.Sprintf("order %d (%s): %s", r.step.order.ID, r.step.did, r.why))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d orders did not end as expected:\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
	fmt.Fprintln(out, "every order ended as expected")
	return nil
}

// act plays the merchant's actions of steps.
func act(ctx context.Context, out io.Writer, fx *shopfixture.Fixture, steps []step) error {
	fmt.Fprintln(out, "merchant actions:")
	for _, s := range steps {
		if s.act == nil {
			continue
		}
		if err := s.act(ctx, fx); err != nil {
			return fmt.Errorf("order %d: %s: %w", s.order.ID, s.did, err)
		}
	}
	for _, line := range []string{
		"  ship order #1 with its tracking number typed first",
		"  ship order #2, then type its tracking number during the delay",
		"  cancel order #3; refund order #4",
		"  ship order #5 by mistake, then put it back to processing within the delay",
		"  ship order #6 and mark it delivered within the delay (Delivered is mapped: ship, then deliver)",
		"  refund order #30, sold on cdiscount (which refuses refunds)",
		"  refund part of order #7: an order slip for one of its two products",
		"  cancel orders #8 to #27 at once",
		"  ship order #41 of shop 2, where the legacy module still syncs",
	} {
		fmt.Fprintln(out, line)
	}
	fmt.Fprintln(out)
	return nil
}

// settle checks every step once a second until all have ended as expected
// and the longest delay has passed (so that a late duplicate would show),
// or timeout (90 s when 0) has passed; it prints the progress and the
// table of results. ops returns what Shopping Feed has received.
func settle(ctx context.Context, out io.Writer, db *sql.DB, steps []step, timeout time.Duration, ops func(context.Context) ([]sfsandbox.RecordedOperation, error)) ([]result, error) {
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	deadline := time.Now().Add(timeout)
	start := time.Now()
	var results []result
	for {
		received, err := ops(ctx)
		if err != nil {
			return nil, err
		}
		results, err = check(ctx, db, received, steps)
		if err != nil {
			return nil, err
		}
		ok := 0
		for _, r := range results {
			if r.ok {
				ok++
			}
		}
		pending, tickets, failed := counts(ctx, db)
		fmt.Fprintf(out, "  t+%-4s %2d/%d orders settled | tasks: %d waiting, %d ticket pending, %d failed | %d operations sent\n",
			time.Since(start).Round(time.Second), ok, len(results), pending, tickets, failed, len(received))
		if ok == len(results) && time.Since(start) > shipDelay+3*time.Second {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	fmt.Fprintln(out)
	printTable(out, results)
	fmt.Fprintln(out)
	return results, nil
}

func mustInt(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// database returns the demo database's DSN: a private MariaDB, or a fresh
// database on MySQLDSN's server.
func database(ctx context.Context, o Options) (string, func(), error) {
	if o.MySQLDSN != "" {
		srv, err := localmysql.FromDSN("MYSQL_DSN", o.MySQLDSN, func() {})
		if err != nil {
			return "", nil, err
		}
		name := fmt.Sprintf("sfsync_demo_%d", time.Now().Unix())
		dsn, err := srv.CreateDatabase(ctx, name)
		if err != nil {
			return "", nil, err
		}
		fmt.Fprintf(o.Out, "  database       %s on the MYSQL_DSN server (dropped at the end)\n", name)
		return dsn, func() { _ = srv.DropDatabase(context.Background(), name) }, nil
	}
	t := time.Now()
	srv, err := localmysql.Start()
	if err != nil {
		return "", nil, fmt.Errorf("start a private MariaDB (or set MYSQL_DSN): %w", err)
	}
	dsn, err := srv.CreateDatabase(ctx, "prestashop")
	if err != nil {
		srv.Close()
		return "", nil, err
	}
	fmt.Fprintf(o.Out, "  database       private %s, started in %s\n", srv.Kind, time.Since(t).Round(time.Millisecond))
	return dsn, srv.Close, nil
}

func script(d Data) []step {
	o := d.Orders1
	ship := func(id uint32, tracking string) func(context.Context, *shopfixture.Fixture) error {
		return func(ctx context.Context, fx *shopfixture.Fixture) error {
			if tracking != "" {
				if err := fx.SetTracking(ctx, id, tracking); err != nil {
					return err
				}
			}
			_, err := fx.ChangeState(ctx, id, shopfixture.StateShipped)
			return err
		}
	}
	to := func(id, state uint32) func(context.Context, *shopfixture.Fixture) error {
		return func(ctx context.Context, fx *shopfixture.Fixture) error {
			_, err := fx.ChangeState(ctx, id, state)
			return err
		}
	}
	then := func(first func(context.Context, *shopfixture.Fixture) error, wait time.Duration, next func(context.Context, *shopfixture.Fixture) error) func(context.Context, *shopfixture.Fixture) error {
		return func(ctx context.Context, fx *shopfixture.Fixture) error {
			if err := first(ctx, fx); err != nil {
				return err
			}
			go func() {
				time.Sleep(wait)
				_ = next(context.WithoutCancel(ctx), fx)
			}()
			return nil
		}
	}
	slip := func(id uint32) func(context.Context, *shopfixture.Fixture) error {
		return func(ctx context.Context, fx *shopfixture.Fixture) error {
			var line uint32
			if err := fx.DB().QueryRowContext(ctx, "SELECT MIN(id_order_detail) FROM ps_order_detail WHERE id_order = ?", id).Scan(&line); err != nil {
				return err
			}
			_, err := fx.CreateSlip(ctx, id, false, shopfixture.SlipLine{OrderDetailID: line, Quantity: 1})
			return err
		}
	}
	typeTracking := func(id uint32, n string) func(context.Context, *shopfixture.Fixture) error {
		return func(ctx context.Context, fx *shopfixture.Fixture) error { return fx.SetTracking(ctx, id, n) }
	}
	steps := []step{
		{order: o[0], did: "shipped, tracking typed first", act: ship(o[0].ID, "6A000000001"), wantOps: []string{"ship"}, wantRow: "gone", wantTicket: "succeed"},
		{order: o[1], did: "shipped, tracking typed during the delay", act: then(ship(o[1].ID, ""), 2*time.Second, typeTracking(o[1].ID, "6A000000002")), wantOps: []string{"ship"}, wantRow: "gone", wantTicket: "succeed"},
		{order: o[2], did: "canceled", act: to(o[2].ID, shopfixture.StateCanceled), wantOps: []string{"cancel"}, wantRow: "gone", wantTicket: "succeed"},
		{order: o[3], did: "refunded", act: to(o[3].ID, shopfixture.StateRefunded), wantOps: []string{"refund"}, wantRow: "gone", wantTicket: "succeed"},
		{order: o[4], did: "shipped by mistake, reverted", act: then(ship(o[4].ID, "6A000000005"), time.Second, to(o[4].ID, shopfixture.StateProcessing)), wantRow: "gone"},
		{order: o[5], did: "shipped, then delivered", act: then(ship(o[5].ID, "6A000000006"), time.Second, to(o[5].ID, shopfixture.StateDelivered)), wantOps: []string{"ship", "deliver"}, wantRow: "gone", wantTicket: "succeed"},
		{order: o[6], did: "partially refunded (slip: 1 of 2 products)", act: slip(o[6].ID), wantOps: []string{"refund"}, wantRow: "gone", wantTicket: "succeed"},
		{order: o[29], did: "refunded, sold on cdiscount", act: to(o[29].ID, shopfixture.StateRefunded), wantOps: []string{"refund"}, wantRow: "failed", wantTicket: "failed"},
	}
	for i := 7; i < 27; i++ {
		steps = append(steps, step{order: o[i], did: "canceled (in a batch of 20)", act: to(o[i].ID, shopfixture.StateCanceled), wantOps: []string{"cancel"}, wantRow: "gone", wantTicket: "succeed"})
	}
	steps = append(steps, step{order: d.Orders2[0], shop: d.Shop2.ShopID, did: "shipped in shop 2 (legacy module syncs)", act: ship(d.Orders2[0].ID, "6A000000041"), wantRow: "gone"})
	for i := range steps {
		if steps[i].shop == 0 {
			steps[i].shop = d.Shop1.ShopID
		}
	}
	return steps
}

type result struct {
	step   step
	sent   []string
	batch  string
	ticket string
	row    string
	ok     bool
	why    string
}

// check compares every step with what the sandbox received and what the
// task table and the process log hold.
func check(ctx context.Context, db *sql.DB, received []sfsandbox.RecordedOperation, steps []step) ([]result, error) {
	sent := map[int64][]string{}
	batches := map[int64]string{}
	for _, op := range received {
		var e struct {
			ID     int64  `json:"id"`
			Number string `json:"trackingNumber"`
			Refund *struct {
				Shipping bool `json:"shipping"`
				Products []struct {
					Reference string `json:"reference"`
					Quantity  int    `json:"quantity"`
				} `json:"products"`
			} `json:"refund"`
		}
		_ = json.Unmarshal(op.Entry, &e)
		desc := op.Operation
		if e.Number != "" {
			desc += " " + e.Number
		}
		if e.Refund != nil && len(e.Refund.Products) > 0 {
			var lines []string
			for _, p := range e.Refund.Products {
				lines = append(lines, fmt.Sprintf("%d×product %s", p.Quantity, p.Reference))
			}
			desc += " (" + strings.Join(lines, ", ") + ")"
		}
		sent[e.ID] = append(sent[e.ID], desc)
		batches[e.ID] = op.BatchID
	}
	var out []result
	for _, s := range steps {
		r := result{step: s, sent: sent[s.order.SFID], batch: batches[s.order.SFID]}
		store := prestashop.New(db, "ps_")
		total, failed, msg, err := store.OrderTasks(ctx, s.order.ID)
		if err != nil {
			return nil, err
		}
		switch {
		case total == 0:
			r.row = "gone"
		case failed > 0:
			r.row = "failed"
		default:
			r.row = "pending"
		}
		// The ticket poller's outcome line.
		switch level, _ := store.TicketOutcome(ctx, s.order.ID); level {
		case prestashop.LevelSuccess:
			r.ticket = "succeed"
		case prestashop.LevelError:
			r.ticket = "failed"
		}
		var ops []string
		for _, x := range r.sent {
			ops = append(ops, strings.Fields(x)[0])
		}
		switch {
		case strings.Join(ops, ",") != strings.Join(s.wantOps, ","):
			r.why = fmt.Sprintf("sent %v, want %v", ops, s.wantOps)
		case r.row != s.wantRow:
			r.why = fmt.Sprintf("task row %s, want %s", r.row, s.wantRow)
		case r.ticket != s.wantTicket:
			r.why = fmt.Sprintf("ticket %q, want %q", r.ticket, s.wantTicket)
		case s.order.SFID == 10002 && (len(r.sent) != 1 || !strings.Contains(r.sent[0], "6A000000002")):
			r.why = "the tracking number typed during the delay was not sent"
		case s.order.SFID == 10007 && (len(r.sent) != 1 || !strings.Contains(r.sent[0], "(1×product ")):
			r.why = "the partial refund was not sent with its one product"
		default:
			r.ok = true
		}
		if r.row == "failed" && msg != "" {
			r.ticket += ": " + oneLine(msg, 60)
		}
		out = append(out, r)
	}
	return out, nil
}

func counts(ctx context.Context, db *sql.DB) (pending, tickets, failed int) {
	cs, _ := prestashop.New(db, "ps_").TaskCounts(ctx)
	for _, c := range cs {
		switch {
		case c.Failed:
			failed += c.Count
		case c.Action == prestashop.ActionSyncStatus, c.Action == prestashop.ActionPartialRefund:
			pending += c.Count
		case c.Action == prestashop.ActionCheckTicketStatus, c.Action == prestashop.ActionCheckTicketPartialRefund:
			tickets += c.Count
		}
	}
	return
}

func printTable(out io.Writer, rs []result) {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ORDER\tSHOP\tMERCHANT DID\tSENT TO SHOPPING FEED\tBATCH\tTICKET\tTASK ROW\tOK")
	for _, r := range rs {
		sent := strings.Join(r.sent, "; ")
		if sent == "" {
			sent = "nothing"
		}
		batch := r.batch
		if len(batch) > 10 {
			batch = "…" + batch[len(batch)-8:]
		}
		ok := "yes"
		if !r.ok {
			ok = "NO: " + r.why
		}
		ticket := r.ticket
		if ticket == "" {
			ticket = "-"
		}
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.step.order.ID, r.step.shop, r.step.did, sent, batch, ticket, r.row, ok)
	}
	w.Flush()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
