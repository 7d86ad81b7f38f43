// Package chaos runs sfsync as separate OS processes — a private MariaDB,
// Debian's nats-server, the sandbox with faults, detectors, senders and
// ticket pollers — under a merchant-like load while a seeded schedule
// kills workers and restarts the broker and the database, then checks
// that nothing was lost or doubled. `make chaos` runs it (cmd/chaos); a
// small run is part of `make test`.
package chaos

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/internal/pause"
	"github.com/sfsync/sfsync/pkg/localmysql"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// Options size a run. DefaultOptions is `make chaos`; SmallOptions is the
// run in `make test`.
type Options struct {
	Seed   uint64
	Orders int
	Shops  int
	// LoadFor spreads the orders' first actions over this long.
	LoadFor time.Duration
	// KillEvery is the mean time between two worker kills (0: none).
	KillEvery      time.Duration
	BrokerRestarts int
	DBRestarts     int
	// Wipe stops the broker once, deletes its store and starts it empty.
	Wipe                        bool
	Detectors, Senders, Pollers int
	// ShipDelay is the shipment delay (SHIPPED_DELAY).
	ShipDelay time.Duration
	// Quiesce bounds the wait for the system to settle after the load.
	Quiesce time.Duration
	// BinDir holds the detector, sender, ticketpoller and sfsandbox binaries.
	BinDir string
	// WorkDir receives every process's log; empty: a temporary directory,
	// removed when the run passes.
	WorkDir string
	Out     io.Writer
}

// DefaultOptions is `make chaos` without flags: 5,000 orders on 3 shops.
func DefaultOptions() Options {
	return Options{Seed: 1, Orders: 5000, Shops: 3, LoadFor: 120 * time.Second, KillEvery: 3 * time.Second,
		BrokerRestarts: 2, DBRestarts: 2, Wipe: true, Detectors: 2, Senders: 3, Pollers: 2,
		ShipDelay: 3 * time.Second, Quiesce: 5 * time.Minute}
}

// SmallOptions is the run in `make test`: 500 orders, fewer faults.
func SmallOptions() Options {
	o := DefaultOptions()
	o.Orders, o.LoadFor, o.KillEvery, o.BrokerRestarts, o.DBRestarts = 500, 30*time.Second, 6*time.Second, 1, 1
	return o
}

func (o *Options) validate() error {
	switch {
	case o.Orders < 1 || o.Shops < 1:
		return errors.New("orders and shops must be at least 1")
	case o.Detectors < 1 || o.Senders < 1 || o.Pollers < 1:
		return errors.New("at least one detector, sender and ticket poller")
	case o.LoadFor <= 0 || o.ShipDelay < time.Second || o.Quiesce <= 0:
		return errors.New("load time and quiescence wait must be positive, the shipment delay at least 1s")
	case o.BinDir == "":
		return errors.New("no binary directory")
	}
	for _, b := range []string{"detector", "sender", "ticketpoller", "sfsandbox"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return fmt.Errorf("binary %s: %w (run make build)", b, err)
		}
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return nil
}

// Intervals the workers run with: short, so that a run settles in minutes.
const (
	reportInterval = 3 * time.Second
	sweepAfter     = 20 * time.Second
)

// rateLimit is Shopping Feed's limit per token, enforced by the sandbox
// in strict mode (a refused request counts in the window too), and the
// budget every sender and ticket poller shares (SF_RATE_LIMIT), as a
// deployment against the real API is configured.
const rateLimit = "10/2s"

// cluster is every process of a run.
type cluster struct {
	o       *Options
	dir     string
	mysql   *localmysql.Server
	dsn     string
	nats    *natsServer
	sandbox *proc
	workers []*proc

	mu sync.Mutex
	// Kills that hit a sender between a POST and the commit of its
	// outcome, and the orders of the POSTs they cut.
	windowKills  int
	windowPosts  int
	windowOrders map[uint32]int
	openPosts    map[*proc]map[int]map[uint64][]uint32 // proc → incarnation → post → orders
	reported     map[uint32]int                        // order → times listed in an error report
	// applied counts, per order, the updates a sender found already
	// applied on Shopping Feed and did not send again.
	applied map[uint32][]string
	// recovered counts updates whose earlier POST's batch id a sender had
	// kept: recorded and followed, not sent again.
	recovered int
	kills     int
	restarts  map[string]int
	// extraEnv overrides variables per kind of process (last value wins).
	extraEnv map[string][]string
}

// Run plays one chaos run and returns its report; err is set when the run
// could not be carried out (a report with Passed false is a failed check).
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	dir := o.WorkDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "sfsync-chaos-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := newCluster(&o, dir, nil)
	rep, err := c.run(ctx)
	c.shutdown()
	if err == nil && rep.Passed && o.WorkDir == "" {
		_ = os.RemoveAll(dir)
	} else if rep != nil {
		rep.LogDir = dir
	}
	return rep, err
}

// newCluster returns a cluster with nothing started; extraEnv overrides
// variables per kind of process.
func newCluster(o *Options, dir string, extraEnv map[string][]string) *cluster {
	return &cluster{o: o, dir: dir, windowOrders: map[uint32]int{}, openPosts: map[*proc]map[int]map[uint64][]uint32{},
		reported: map[uint32]int{}, applied: map[uint32][]string{}, restarts: map[string]int{}, extraEnv: extraEnv}
}

func (c *cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.o.Out, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func (c *cluster) run(ctx context.Context) (*Report, error) {
	o := c.o
	c.logf("chaos: seed %d, %d orders on %d shops over %s; %d detectors, %d senders, %d ticket pollers; logs in %s",
		o.Seed, o.Orders, o.Shops, o.LoadFor, o.Detectors, o.Senders, o.Pollers, c.dir)
	// The driver logs each connection the restarts cut; the workers'
	// logs tell what matters.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	srv, err := localmysql.Start()
	if err != nil {
		return nil, fmt.Errorf("start mariadb: %w", err)
	}
	c.mysql = srv
	if c.dsn, err = srv.CreateDatabase(ctx, "chaos"); err != nil {
		return nil, err
	}
	db, err := sql.Open("mysql", c.dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(32)
	shops, ids, sfIDs, err := seed(ctx, db, "ps_", o)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	c.logf("seeded %d orders", o.Orders)

	if c.nats, err = newNATS(c.dir); err != nil {
		return nil, err
	}
	if err := c.nats.startAndWait(); err != nil {
		return nil, err
	}
	if err := c.startSandbox(shops); err != nil {
		return nil, err
	}
	c.startWorkers()
	superCtx, stopSupervising := context.WithCancel(ctx)
	defer stopSupervising()
	for _, p := range append([]*proc{c.sandbox}, c.workers...) {
		go p.supervise(superCtx, time.Second)
	}
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	c.logf("every process is ready")

	rng := rand.New(rand.NewPCG(o.Seed, 0x5f5f))
	orders := plan(rng, o, ids)
	l := &loader{db: db, fx: shopfixture.New(db, "ps_"), prefix: "ps_"}
	began := time.Now()
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		c.faults(ctx, rand.New(rand.NewPCG(o.Seed, 0xfa17)), began)
	}()
	l.run(ctx, began, orders)
	<-faultsDone
	loadEnd := time.Now()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	c.logf("load done in %s (%d database errors ridden out); waiting for quiescence", loadEnd.Sub(began).Round(time.Millisecond), l.errs)

	nc, err := nats.Connect(c.nats.url(), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	quiet, qerr := c.waitQuiescence(ctx, db, js, loadEnd)
	rep := &Report{Options: *o, Kills: c.kills, Restarts: c.restartCount(), WindowKills: c.windowKills,
		Quiescence: quiet.Sub(loadEnd), Settled: qerr == nil}
	if qerr != nil {
		rep.Problems = append(rep.Problems, qerr.Error())
	}
	if err := c.verify(ctx, db, nc, orders, sfIDs, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

func (c *cluster) restartCount() string {
	return fmt.Sprintf("broker %d, wipe %d, mariadb %d", c.restarts["broker"], c.restarts["wipe"], c.restarts["mariadb"])
}

func (c *cluster) startSandbox(shops []shopfixture.SFShop) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	stores := ""
	for i, s := range shops {
		if i > 0 {
			stores += ","
		}
		stores += s.Token + ":" + s.StoreID
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c.sandbox = &proc{name: "sfsandbox", kind: "sfsandbox", bin: filepath.Join(c.o.BinDir, "sfsandbox"), httpAddr: addr,
		logPath: filepath.Join(c.dir, "sfsandbox.log"),
		env: []string{"SANDBOX_ADDR=" + addr, "SANDBOX_STORES=" + stores, "SANDBOX_SEED=" + strconv.FormatUint(c.o.Seed, 10),
			"SANDBOX_ERROR_RATE=0.05", "SANDBOX_THROTTLE_RATE=0.02", "SANDBOX_THROTTLE_WAIT=500ms",
			"SANDBOX_TICKET_FAILURE_RATE=0.05", "SANDBOX_RATE_LIMIT=" + rateLimit, "SANDBOX_STRICT=true",
			"SANDBOX_TICKET_SCHEDULED_FOR=200ms", "SANDBOX_TICKET_RUNNING_FOR=300ms", "LOG_FORMAT=json"}}
	c.sandbox.env = append(c.sandbox.env, c.extraEnv["sfsandbox"]...)
	if err := c.sandbox.start(); err != nil {
		return err
	}
	return waitTCP(addr, 20*time.Second)
}

func (c *cluster) startWorkers() {
	common := []string{"MYSQL_DSN=" + c.dsn, "DB_PREFIX=ps_", "NATS_URL=" + c.nats.url(), "LOG_FORMAT=json",
		"LEASE_TTL=4s", "SHUTDOWN_TIMEOUT=5s", "SETTINGS_TTL=5s",
		"SF_API_URL=http://" + c.sandbox.httpAddr, "SF_RATE_LIMIT=" + rateLimit}
	add := func(kind string, n int, env ...string) {
		for i := range n {
			port, err := freePort()
			if err != nil {
				panic(err)
			}
			name := fmt.Sprintf("%s-%d", kind, i+1)
			p := &proc{name: name, kind: kind, bin: filepath.Join(c.o.BinDir, kind), httpAddr: "127.0.0.1:" + strconv.Itoa(port),
				logPath: filepath.Join(c.dir, name+".log"),
				env:     append(append(append(slices.Clone(common), "HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port)), env...), c.extraEnv[kind]...)}
			switch kind {
			case "sender":
				p.onLine = func(inc int, line []byte) { c.senderLine(p, inc, line) }
				p.onExit = func(inc int, killed bool) { c.senderExit(p, inc) }
			case "ticketpoller":
				p.onLine = func(_ int, line []byte) { c.pollerLine(line) }
			}
			c.workers = append(c.workers, p)
			if err := p.start(); err != nil {
				panic(err)
			}
		}
	}
	add("detector", c.o.Detectors, "LOG_LEVEL=info", "POLL_INTERVAL=100ms", "START_FROM=beginning",
		"SHIPPED_DELAY="+c.o.ShipDelay.String(), "SWEEP_INTERVAL=3s", "SWEEP_AFTER="+sweepAfter.String(), "GAP_GRACE=10s")
	add("sender", c.o.Senders, "LOG_LEVEL=debug", "BATCH_LINGER=300ms", "CLAIM_TTL=15s",
		"TRACKING_MAX_WAIT=8s", "TRACKING_RECHECK=1s", "SEND_RETRY_BASE=500ms", "SEND_RETRY_MAX=5s")
	// TICKET_BACKOFF_MIN is left at its default: under Shopping Feed's
	// limit a ticket read costs the same budget as a POST.
	add("ticketpoller", c.o.Pollers, "LOG_LEVEL=info", "TICKET_BACKOFF_MAX=5s",
		"REPORT_INTERVAL="+reportInterval.String())
}

// senderLine follows a sender's POSTs: "posting batch" opens a window,
// "batch settled" closes it once the outcome is committed.
func (c *cluster) senderLine(p *proc, inc int, line []byte) {
	var l struct {
		Msg     string   `json:"msg"`
		Post    uint64   `json:"post"`
		Orders  []uint32 `json:"orders"`
		Order   uint32   `json:"order_id"`
		Reason  string   `json:"reason"`
		Applied string   `json:"applied"`
	}
	if json.Unmarshal(line, &l) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch l.Msg {
	case "posting batch":
		if c.openPosts[p] == nil {
			c.openPosts[p] = map[int]map[uint64][]uint32{}
		}
		if c.openPosts[p][inc] == nil {
			c.openPosts[p][inc] = map[uint64][]uint32{}
		}
		c.openPosts[p][inc][l.Post] = l.Orders
	case "batch settled":
		delete(c.openPosts[p][inc], l.Post)
	case "update not sent":
		if op, _, ok := strings.Cut(l.Reason, " of order "); ok && strings.Contains(l.Reason, "found already applied") {
			c.applied[l.Order] = append(c.applied[l.Order], op)
		}
	case "earlier attempt recovered by its batch id; following its ticket, not sending again":
		c.recovered++
	case "earlier attempt found already applied; sending what follows":
		c.applied[l.Order] = append(c.applied[l.Order], l.Applied)
	}
}

// senderExit counts a sender that died with POSTs open: their orders may
// reach Shopping Feed twice.
func (c *cluster) senderExit(p *proc, inc int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	open := c.openPosts[p][inc]
	if len(open) > 0 {
		c.windowKills++
		c.windowPosts += len(open)
		for _, orders := range open {
			for _, o := range orders {
				c.windowOrders[o]++
			}
		}
	}
	delete(c.openPosts[p], inc)
}

func (c *cluster) pollerLine(line []byte) {
	var l struct {
		Msg   string `json:"msg"`
		Order uint32 `json:"order_id"`
	}
	if json.Unmarshal(line, &l) != nil || l.Msg != "error report: order update failed" {
		return
	}
	c.mu.Lock()
	c.reported[l.Order]++
	c.mu.Unlock()
}

func (c *cluster) waitReady(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, p := range c.workers {
		for !p.ready(ctx) {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready within %s; its log: %s", p.name, d, p.logPath)
			}
			if !pause.For(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	// Goroutine baselines, once the first reads and pulls are running.
	var wg sync.WaitGroup
	for _, p := range c.workers {
		wg.Add(1)
		go func() { defer wg.Done(); p.measureBaseline(ctx) }()
	}
	wg.Wait()
	return nil
}

// fault is one event of the schedule.
type fault struct {
	at   time.Duration
	kind string // kill, broker, mariadb, wipe
}

// schedule draws the run's faults: a worker kill every KillEvery or so,
// and the broker and database restarts and the wipe at random times in
// the middle of the load, never two at once.
func schedule(rng *rand.Rand, o *Options) []fault {
	var fs []fault
	if o.KillEvery > 0 {
		for t := jitter(rng, o.KillEvery); t < o.LoadFor; t += jitter(rng, o.KillEvery) {
			fs = append(fs, fault{at: t, kind: "kill"})
		}
	}
	mid := func() time.Duration {
		return o.LoadFor/6 + time.Duration(rng.Int64N(int64(o.LoadFor*2/3)))
	}
	for range o.BrokerRestarts {
		fs = append(fs, fault{at: mid(), kind: "broker"})
	}
	for range o.DBRestarts {
		fs = append(fs, fault{at: mid(), kind: "mariadb"})
	}
	if o.Wipe {
		fs = append(fs, fault{at: mid(), kind: "wipe"})
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].at < fs[j].at })
	return fs
}

// faults plays the schedule; each fault completes before the next.
func (c *cluster) faults(ctx context.Context, rng *rand.Rand, began time.Time) {
	for _, f := range schedule(rng, c.o) {
		if !pause.For(ctx, time.Until(began.Add(f.at))) {
			return
		}
		switch f.kind {
		case "kill":
			p := c.workers[rng.IntN(len(c.workers))]
			if _, ok := p.running(); !ok {
				continue
			}
			c.logf("kill -9 %s", p.name)
			p.kill()
			c.mu.Lock()
			c.kills++
			c.mu.Unlock()
		case "broker":
			c.logf("restart the broker (kill -9, same store)")
			if err := c.nats.restart(false); err != nil {
				c.logf("broker restart failed: %v", err)
			}
			c.restarts["broker"]++
		case "wipe":
			c.logf("stop the broker, delete its store, start it empty")
			if err := c.nats.restart(true); err != nil {
				c.logf("broker wipe failed: %v", err)
			}
			c.restarts["wipe"]++
		case "mariadb":
			c.logf("restart MariaDB (kill -9, crash recovery)")
			c.mysql.Stop(true)
			if err := c.mysql.Start(); err != nil {
				c.logf("mariadb restart failed: %v", err)
			}
			c.restarts["mariadb"]++
		}
	}
}

// waitQuiescence waits until no task is pending, every ticket the sandbox
// issued is final, no consumer holds a message, and that stays so; then
// one more report interval, so that the last failures are reported.
func (c *cluster) waitQuiescence(ctx context.Context, db *sql.DB, js jetstream.JetStream, loadEnd time.Time) (time.Time, error) {
	deadline := loadEnd.Add(c.o.Quiesce)
	var quietSince time.Time
	last := ""
	for {
		why := c.busy(ctx, db, js)
		now := time.Now()
		switch {
		case why != "":
			quietSince = time.Time{}
			if why != last && now.Sub(loadEnd) > 10*time.Second {
				c.logf("not settled: %s", why)
			}
			last = why
		case quietSince.IsZero():
			quietSince = now
		case now.Sub(quietSince) >= 3*time.Second:
			c.logf("settled %s after the load", quietSince.Sub(loadEnd).Round(time.Millisecond))
			pause.For(ctx, 2*reportInterval)
			return quietSince, nil
		}
		if now.After(deadline) {
			return now, fmt.Errorf("not settled within %s: %s", c.o.Quiesce, why)
		}
		if !pause.For(ctx, 500*time.Millisecond) {
			return now, ctx.Err()
		}
	}
}

// busy says what is still going on, or "" when nothing is.
func (c *cluster) busy(ctx context.Context, db *sql.DB, js jetstream.JetStream) string {
	for _, p := range append([]*proc{c.sandbox}, c.workers...) {
		if _, ok := p.running(); !ok {
			return p.name + " is not running"
		}
	}
	var pending int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ps_shoppingfeed_task_order WHERE sfsync_failed_at IS NULL").Scan(&pending); err != nil {
		return "read tasks: " + err.Error()
	}
	if pending > 0 {
		return fmt.Sprintf("%d task rows pending", pending)
	}
	ops, err := c.operations(ctx)
	if err != nil {
		return "read sandbox operations: " + err.Error()
	}
	open := 0
	for _, op := range ops {
		if op.TicketState != "succeed" && op.TicketState != "failed" && op.TicketState != "canceled" {
			open++
		}
	}
	if open > 0 {
		return fmt.Sprintf("%d tickets not final", open)
	}
	for _, cn := range []struct{ stream, name string }{
		{broker.OrdersStream, broker.SenderConsumer}, {broker.OrdersStream, broker.SenderWaitConsumer},
		{broker.TicketsStream, broker.TicketConsumer}, {broker.TicketsStream, broker.TicketWaitConsumer},
	} {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		cons, err := js.Consumer(cctx, cn.stream, cn.name)
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = cons.Info(cctx)
		}
		cancel()
		if err != nil {
			return "consumer " + cn.name + ": " + err.Error()
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Sprintf("consumer %s holds %d pending, %d unacknowledged", cn.name, info.NumPending, info.NumAckPending)
		}
	}
	return ""
}

// sandboxOp is one entry of the sandbox's operation log.
type sandboxOp struct {
	Time          time.Time       `json:"time"`
	BatchID       string          `json:"batchId"`
	StoreID       int64           `json:"storeId"`
	Operation     string          `json:"operation"`
	Entry         json.RawMessage `json:"order"`
	TicketState   string          `json:"ticketState"`
	TicketMessage string          `json:"ticketMessage"`
}

func (c *cluster) operations(ctx context.Context) ([]sandboxOp, error) {
	st, body, err := httpGet(ctx, "http://"+c.sandbox.httpAddr+"/_sandbox/operations")
	if err != nil {
		return nil, err
	}
	if st != 200 {
		return nil, fmt.Errorf("status %d", st)
	}
	var r struct {
		Operations []sandboxOp `json:"operations"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, err
	}
	return r.Operations, nil
}

// sandboxCounts are the sandbox's request counts (GET /_sandbox/counts).
type sandboxCounts struct {
	Requests    int `json:"requests"`
	RateLimited int `json:"rateLimited"`
	Throttled   int `json:"throttled"`
	Errors      int `json:"errors"`
}

func (c *cluster) counts(ctx context.Context) (sandboxCounts, error) {
	var n sandboxCounts
	st, body, err := httpGet(ctx, "http://"+c.sandbox.httpAddr+"/_sandbox/counts")
	if err != nil {
		return n, err
	}
	if st != 200 {
		return n, fmt.Errorf("status %d", st)
	}
	return n, json.Unmarshal([]byte(body), &n)
}

func (c *cluster) shutdown() {
	for _, p := range c.workers {
		p.stop()
	}
	if c.sandbox != nil {
		c.sandbox.stop()
	}
	if c.nats != nil {
		c.nats.stop()
	}
	if c.mysql != nil {
		c.mysql.Close()
	}
}
