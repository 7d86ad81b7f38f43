package chaos

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sfsync/sfsync/pkg/internal/pause"
	"github.com/sfsync/sfsync/pkg/shopfixture"
)

// Report is what a run found.
type Report struct {
	Options  Options
	Rows     []Row // one per merchant scenario
	Kills    int
	Restarts string
	// WindowKills are the kills that hit a sender between a POST and the
	// commit of its outcome; WindowOrders the orders those POSTs held.
	WindowKills, WindowPosts, WindowOrders int
	// DupPosts is the number of distinct POSTs (sandbox batches) whose
	// orders reached Shopping Feed again later.
	DupPosts int
	// Requests are the /v1 requests the sandbox answered; RateLimited
	// the 429s its strict rate limit refused (a deployment that keeps to
	// its budget gets none), Throttled the 429s it injected as a fault.
	Requests, RateLimited, Throttled int
	// Recovered are updates whose earlier POST's batch id was kept by a
	// sender that died before recording it: followed, not sent again.
	Recovered int

	Quiescence time.Duration
	Settled    bool
	// Stale are operations sent for a state the order had left before its
	// update was due.
	Stale []string
	// Pending are task rows neither gone nor failed.
	Pending int
	// Problems are the failed checks, one line each.
	Problems []string
	// Leaks are per-process resource readings at rest.
	Resources []string
	Passed    bool
	LogDir    string
}

// Row is one scenario's outcome.
type Row struct {
	Scenario     string
	Orders       int
	Lost         int
	Duplicates   int
	FailedAsExp  int
	FailedOther  int
	StaleSent    int
	ReportedMiss int
	// AlreadyApplied are updates a sender did not send again because
	// Shopping Feed showed them applied (an earlier attempt's POST that
	// was never recorded).
	AlreadyApplied int
}

// taskRow is what is left of an order's task after the run.
type taskRow struct {
	failed bool
	err    string
}

func (c *cluster) verify(ctx context.Context, db *sql.DB, nc *nats.Conn, orders []*order, bySF map[int64]uint32, rep *Report) error {
	ops, err := c.operations(ctx)
	if err != nil {
		return fmt.Errorf("read the sandbox's operation log: %w", err)
	}
	byOrder := map[uint32][]sandboxOp{}
	for _, op := range ops {
		var e struct {
			ID int64 `json:"id"`
		}
		_ = json.Unmarshal(op.Entry, &e)
		id, ok := bySF[e.ID]
		if !ok {
			rep.Problems = append(rep.Problems, fmt.Sprintf("sandbox received a %s for unknown order %s", op.Operation, op.Entry))
			continue
		}
		byOrder[id] = append(byOrder[id], op)
	}
	tasks := map[uint32]taskRow{}
	rows, err := db.QueryContext(ctx, "SELECT id_order, sfsync_failed_at IS NOT NULL, COALESCE(sfsync_error, '') FROM ps_shoppingfeed_task_order")
	if err != nil {
		return fmt.Errorf("read tasks: %w", err)
	}
	for rows.Next() {
		var id uint32
		var t taskRow
		if err := rows.Scan(&id, &t.failed, &t.err); err != nil {
			rows.Close()
			return err
		}
		if !t.failed {
			rep.Pending++
		}
		tasks[id] = t
	}
	rows.Close()
	if rep.Pending > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d task rows left pending", rep.Pending))
	}

	counts, err := c.counts(ctx)
	if err != nil {
		return fmt.Errorf("read the sandbox's request counts: %w", err)
	}
	rep.Requests, rep.RateLimited, rep.Throttled = counts.Requests, counts.RateLimited, counts.Throttled

	c.mu.Lock()
	window := c.windowOrders
	reported := c.reported
	applied := c.applied
	rep.Recovered = c.recovered
	rep.WindowKills, rep.WindowPosts = c.windowKills, c.windowPosts
	for _, n := range window {
		rep.WindowOrders += n
	}
	c.mu.Unlock()

	rowsBy := make([]Row, len(scenarios))
	for i, s := range scenarios {
		rowsBy[i].Scenario = s.name
	}
	failedTasks := 0
	dupBatches := map[string]bool{}
	for _, o := range orders {
		r := &rowsBy[o.scenario]
		r.Orders++
		got := byOrder[o.id]
		sort.SliceStable(got, func(i, j int) bool { return got[i].Time.Before(got[j].Time) })
		t, hasTask := tasks[o.id]
		if hasTask && t.failed {
			failedTasks++
		}
		final := shopfixtureStart
		if n := len(o.changes); n > 0 {
			final = o.changes[n-1].state
		}
		want := opOf(final)

		// Every operation must be for a state the order held until its
		// update was due; beyond the legitimate ones, it is a duplicate.
		legit := map[string]int{}
		for i, ch := range o.changes {
			op := opOf(ch.state)
			if op == "" {
				continue
			}
			if c.leftBeforeDue(o, i) {
				continue // must not be sent
			}
			legit[op]++
		}
		// An update found already applied must have been: Shopping Feed
		// succeeded that operation for the order.
		for _, op := range applied[o.id] {
			r.AlreadyApplied++
			if !slices.ContainsFunc(got, func(g sandboxOp) bool { return g.Operation == op && g.TicketState == "succeed" }) {
				rep.Problems = append(rep.Problems, fmt.Sprintf("order %d: a sender found its %s already applied, but no %s of it succeeded on Shopping Feed", o.id, op, op))
			}
		}
		count := map[string]int{}
		for _, op := range got {
			count[op.Operation]++
			if !c.heldUntilDue(o, op) {
				r.StaleSent++
				rep.Stale = append(rep.Stale, fmt.Sprintf("order %d (%s): %s sent at %s for a state left before it was due; history %s",
					o.id, scenarios[o.scenario].name, op.Operation, op.Time.Format("15:04:05.000"), o.history()))
			}
		}
		for op, n := range count {
			if extra := n - max(legit[op], 1); extra > 0 && legit[op] > 0 {
				r.Duplicates += extra
				for _, g := range got {
					if g.Operation == op {
						dupBatches[g.BatchID] = true // the first copy's POST
						break
					}
				}
				if window[o.id] == 0 {
					rep.Problems = append(rep.Problems, fmt.Sprintf("order %d: %s sent %d times, and no killed sender held it in a POST", o.id, op, n))
				}
			}
		}

		// The final mapped state reached SF, or its task failed with the
		// reason SF gave; nothing else.
		if want == "" {
			if hasTask {
				r.FailedOther++
				rep.Problems = append(rep.Problems, fmt.Sprintf("order %d ends in an unmapped state but has a task row (failed %v: %s)", o.id, t.failed, t.err))
			}
			continue
		}
		var last *sandboxOp
		for i := range got {
			if got[i].Operation == want && !got[i].Time.Before(o.changes[len(o.changes)-1].before) {
				last = &got[i]
			}
		}
		switch {
		case last == nil && hasTask && t.failed:
			r.FailedOther++
			rep.Problems = append(rep.Problems, fmt.Sprintf("order %d: %s never reached Shopping Feed; its task failed: %s", o.id, want, t.err))
		case last == nil:
			r.Lost++
			rep.Problems = append(rep.Problems, fmt.Sprintf("order %d (%s): LOST: its %s never reached Shopping Feed (task row: %v); history %s",
				o.id, scenarios[o.scenario].name, want, hasTask, o.history()))
		case last.TicketState == "succeed" && hasTask && t.failed && failedShipBefore(got, want, t.err):
			// Shipped then delivered: the ship went first and its ticket
			// failed; the deliver that followed succeeded. The failed
			// shipment stays reported: its tracking number never reached
			// the marketplace.
			r.FailedAsExp++
			if reported[o.id] == 0 {
				r.ReportedMiss++
				rep.Problems = append(rep.Problems, fmt.Sprintf("order %d failed (%s) but no error report listed it", o.id, t.err))
			}
		case last.TicketState == "succeed" && hasTask:
			rep.Problems = append(rep.Problems, fmt.Sprintf("order %d: %s succeeded but its task row remains (failed %v: %s)", o.id, want, t.failed, t.err))
		case last.TicketState == "succeed":
		case hasTask && t.failed && strings.Contains(t.err, last.TicketMessage):
			r.FailedAsExp++
			if reported[o.id] == 0 {
				r.ReportedMiss++
				rep.Problems = append(rep.Problems, fmt.Sprintf("order %d failed (%s) but no error report listed it", o.id, t.err))
			}
		case hasTask && t.failed:
			r.FailedOther++
			rep.Problems = append(rep.Problems, fmt.Sprintf("order %d: ticket %s (%q) but task failed with %q", o.id, last.TicketState, last.TicketMessage, t.err))
		default:
			r.Lost++
			rep.Problems = append(rep.Problems, fmt.Sprintf("order %d: ticket %s (%q) and no failed task records it (task row: %v)", o.id, last.TicketState, last.TicketMessage, hasTask))
		}
	}
	// A reported order failed at Shopping Feed at some point: its task
	// may be gone since, when a later update of the order succeeded.
	for id := range reported {
		failedOnce := tasks[id].failed
		for _, op := range byOrder[id] {
			failedOnce = failedOnce || op.TicketState == "failed"
		}
		if !failedOnce {
			rep.Problems = append(rep.Problems, fmt.Sprintf("order %d was listed in an error report but never failed", id))
		}
	}
	rep.Rows = rowsBy
	rep.DupPosts = len(dupBatches)
	for _, r := range rowsBy {
		if r.Lost > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %d lost", r.Scenario, r.Lost))
		}
	}
	if dups := rep.totals().Duplicates; dups > rep.WindowOrders {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d duplicate operations, more than the %d orders held in POSTs that kills cut", dups, rep.WindowOrders))
	}
	if rep.DupPosts > rep.WindowPosts {
		rep.Problems = append(rep.Problems, fmt.Sprintf("duplicates came from %d POSTs, more than the %d POSTs that kills cut", rep.DupPosts, rep.WindowPosts))
	}
	if len(rep.Stale) > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d operations sent for a state left before it was due", len(rep.Stale)))
	}
	c.checkLeaks(ctx, nc, rep)
	rep.Passed = len(rep.Problems) == 0
	return nil
}

// shopfixtureStart is the state orders are created in (Payment accepted).
const shopfixtureStart = shopfixture.StatePaymentAccepted

func (c *cluster) delayOf(op string) time.Duration {
	if op == "ship" {
		return c.o.ShipDelay
	}
	return 0
}

// leftBeforeDue reports whether the order left its i-th change's state
// before that change's update was due (by the commits' time bounds).
func (c *cluster) leftBeforeDue(o *order, i int) bool {
	ch := o.changes[i]
	return i+1 < len(o.changes) && o.changes[i+1].after.Before(ch.before.Add(c.delayOf(opOf(ch.state))))
}

// heldUntilDue reports whether op was sent for a state the order entered
// before the send and still held when the update became due.
func (c *cluster) heldUntilDue(o *order, op sandboxOp) bool {
	for i, ch := range o.changes {
		if opOf(ch.state) != op.Operation || ch.before.After(op.Time) {
			continue
		}
		if c.leftBeforeDue(o, i) {
			continue
		}
		return true
	}
	return false
}

func (o *order) history() string {
	var b strings.Builder
	for i, ch := range o.changes {
		if i > 0 {
			b.WriteString(" → ")
		}
		fmt.Fprintf(&b, "%d@%s", ch.state, ch.before.Format("15:04:05.000"))
	}
	return b.String()
}

// checkLeaks reads every surviving worker's goroutines and database pool
// at rest, twice, and the broker's connection count.
func (c *cluster) checkLeaks(ctx context.Context, nc *nats.Conn, rep *Report) {
	read := func() map[*proc]map[string]float64 {
		out := map[*proc]map[string]float64{}
		for _, p := range c.workers {
			m, err := p.metrics(ctx, "go_goroutines", "go_sql_open_connections", "go_sql_in_use_connections")
			if err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s: read metrics: %v", p.name, err))
				continue
			}
			out[p] = m
		}
		return out
	}
	first := read()
	pause.For(ctx, 5*time.Second)
	second := read()
	for _, p := range c.workers {
		a, b := first[p], second[p]
		if a == nil || b == nil {
			continue
		}
		p.mu.Lock()
		base, inc := p.baseline, p.incarnation
		p.mu.Unlock()
		g1, g2 := int(a["go_goroutines"]), int(b["go_goroutines"])
		rep.Resources = append(rep.Resources, fmt.Sprintf("%-14s incarnation %d: goroutines %d at start, %d then %d at rest; db connections open %g",
			p.name, inc, base, g1, g2, b["go_sql_open_connections"]))
		if g2 > g1+10 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: goroutines still growing at rest (%d → %d)", p.name, g1, g2))
		}
		if base > 0 && g2 > base+max(25, base/4) {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %d goroutines at rest, %d when it started: a leak", p.name, g2, base))
		}
		// A worker at rest still polls (the leading detector every
		// POLL_INTERVAL): a leaked connection is one that is never free.
		inUse := b["go_sql_in_use_connections"]
		for i := 0; i < 20 && inUse > 0; i++ {
			pause.For(ctx, 100*time.Millisecond)
			if m, err := p.metrics(ctx, "go_sql_in_use_connections"); err == nil {
				inUse = min(inUse, m["go_sql_in_use_connections"])
			}
		}
		if inUse > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %g database connections in use at rest, through 20 readings over 2 s", p.name, inUse))
		}
	}
	if n, err := c.nats.connections(ctx); err != nil {
		rep.Problems = append(rep.Problems, "broker connections: "+err.Error())
	} else {
		want := len(c.workers) + 1 // and this checker's
		rep.Resources = append(rep.Resources, fmt.Sprintf("broker: %d client connections (%d workers and the checker)", n, len(c.workers)))
		if n != want {
			rep.Problems = append(rep.Problems, fmt.Sprintf("broker holds %d connections, want %d: one per worker and the checker's", n, want))
		}
	}
}

func (r *Report) totals() Row {
	t := Row{Scenario: "all"}
	for _, x := range r.Rows {
		t.Orders += x.Orders
		t.Lost += x.Lost
		t.Duplicates += x.Duplicates
		t.FailedAsExp += x.FailedAsExp
		t.FailedOther += x.FailedOther
		t.StaleSent += x.StaleSent
		t.ReportedMiss += x.ReportedMiss
		t.AlreadyApplied += x.AlreadyApplied
	}
	return t
}

// Print writes the run's table and findings.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\nchaos run, seed %d: %d orders on %d shops, %d detectors, %d senders, %d ticket pollers\n\n",
		r.Options.Seed, r.Options.Orders, r.Options.Shops, r.Options.Detectors, r.Options.Senders, r.Options.Pollers)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\torders\tkills\trestarts\tlost\tduplicates\tfound already applied\tfailed as expected\tstale sent\t429s\ttime to quiescence")
	for _, x := range r.Rows {
		fmt.Fprintf(tw, "%s\t%d\t\t\t%d\t%d\t%d\t%d\t%d\t\t\n", x.Scenario, x.Orders, x.Lost, x.Duplicates, x.AlreadyApplied, x.FailedAsExp, x.StaleSent)
	}
	t := r.totals()
	q := r.Quiescence.Round(100 * time.Millisecond).String()
	if !r.Settled {
		q = "not settled"
	}
	fmt.Fprintf(tw, "%s (seed %d)\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", t.Scenario, r.Options.Seed, t.Orders, r.Kills, r.Restarts,
		t.Lost, t.Duplicates, t.AlreadyApplied, t.FailedAsExp, t.StaleSent, r.RateLimited, q)
	_ = tw.Flush()
	fmt.Fprintf(w, "\nkills that hit a sender between POST and commit: %d, cutting %d POSTs of %d orders; %d duplicate order operations, first sent in %d POSTs (allowed: only orders of cut POSTs, at most their number)\n",
		r.WindowKills, r.WindowPosts, r.WindowOrders, r.totals().Duplicates, r.DupPosts)
	fmt.Fprintf(w, "earlier POSTs cut by a kill: %d found already applied on Shopping Feed, %d recovered by the batch id kept before the kill (neither sent again)\n",
		t.AlreadyApplied, r.Recovered)
	fmt.Fprintf(w, "429 answers: %d refused by the sandbox's strict rate limit of %s per token (target 0), %d injected as faults; %d requests in all\n",
		r.RateLimited, rateLimit, r.Throttled, r.Requests)
	fmt.Fprintf(w, "task rows left pending: %d; failures not explained by Shopping Feed: %d; failed orders missing from the error report: %d\n",
		r.Pending, t.FailedOther, t.ReportedMiss)
	for _, l := range r.Resources {
		fmt.Fprintln(w, "  "+l)
	}
	if r.Passed {
		fmt.Fprintln(w, "\nPASS: nothing lost, nothing sent for a state left before due, duplicates within the kills' reach, no leak")
		return
	}
	fmt.Fprintf(w, "\nFAIL: %d problems (logs in %s)\n", len(r.Problems), r.LogDir)
	for i, p := range r.Problems {
		if i == 40 {
			fmt.Fprintf(w, "  … and %d more\n", len(r.Problems)-40)
			break
		}
		fmt.Fprintln(w, "  "+p)
	}
}

// failedShipBefore reports whether, before a deliver, the order's ship was
// sent and its ticket failed with the message the task holds.
func failedShipBefore(got []sandboxOp, want, taskErr string) bool {
	if want != "deliver" {
		return false
	}
	for _, op := range got {
		if op.Operation == "ship" && op.TicketState == "failed" && op.TicketMessage != "" && strings.Contains(taskErr, op.TicketMessage) {
			return true
		}
	}
	return false
}
