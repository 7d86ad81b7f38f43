package benchreport

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Statuses of a row.
const (
	Met         = "met"
	NotMet      = "not met"
	NotMeasured = "not measured"
	// NoTarget is the status of a figure with no target.
	NoTarget = "—"
)

// RSSTarget is the most each service may hold at steady state with 10,000
// updates in flight, the pods' 64Mi memory request.
const RSSTarget = 64 << 20

// Services are those whose RSS is measured, in table order.
var Services = []string{"detector", "sender", "ticketpoller", "sfsandbox"}

// Machine says where and how the figures were measured.
type Machine struct {
	Date      time.Time
	Cores     int
	CPU       string
	GoVersion string
	Command   string
	// Env are the BENCH_* variables set for the run, "NAME=value".
	Env []string
}

// RSS is the outcome of the RSS measurement.
type RSS struct {
	// Bytes by service.
	Bytes map[string]int64
	// Err is why nothing was measured; its first line is shown.
	Err error
}

// Row is one line of the summary table.
type Row struct {
	What   string
	Figure string
	Target string
	// Status is Met, NotMet, NoTarget, or NotMeasured followed by the reason.
	Status string
}

// lookup finds the figures of the benchmarks in out.
type lookup struct{ out *Output }

// result returns the last result of name in the package whose import path
// ends in "/"+pkg, or why there is none.
func (l lookup) result(pkg, name string) (Result, string) {
	inPkg := func(p string) bool { return strings.HasSuffix(p, "/"+pkg) }
	for i := len(l.out.Results) - 1; i >= 0; i-- {
		if r := l.out.Results[i]; inPkg(r.Pkg) && r.Name == name {
			return r, ""
		}
	}
	for _, f := range l.out.Failures {
		if !inPkg(f.Pkg) {
			continue
		}
		switch {
		case f.Name == name || strings.HasPrefix(f.Name, name+"/"):
			if f.Skipped {
				return Result{}, name + " skipped: " + f.Reason
			}
			return Result{}, name + " failed: " + f.Reason
		case f.Name == "":
			return Result{}, f.Pkg + " failed: " + f.Reason
		}
	}
	return Result{}, "no result for " + name + " in the output"
}

// metrics returns the values of the units of one result, or why not.
func (l lookup) metrics(pkg, name string, units ...string) ([]float64, string) {
	r, why := l.result(pkg, name)
	if why != "" {
		return nil, why
	}
	vals := make([]float64, len(units))
	for i, u := range units {
		v, ok := r.Values[u]
		if !ok {
			return nil, fmt.Sprintf("%s reported no %s", name, u)
		}
		vals[i] = v
	}
	return vals, ""
}

// targeted sets r's status from whether its target is met (the targets
// are the ones the issues that built each part set).
func targeted(r Row, met bool) Row {
	r.Status = NotMet
	if met {
		r.Status = Met
	}
	return r
}

func notMeasured(what, why string) Row {
	return Row{What: what, Figure: "—", Status: NotMeasured + ": " + why}
}

// Rows builds the summary table from the benchmarks' output and the RSS
// measurement.
func Rows(out *Output, rss RSS) []Row {
	l := lookup{out}
	var rows []Row
	add := func(what string, units []string, pkg, name string, fill func(v []float64) Row) {
		v, why := l.metrics(pkg, name, units...)
		if why != "" {
			rows = append(rows, notMeasured(what, why))
			return
		}
		r := fill(v)
		r.What = what
		if r.Status == "" {
			r.Status = NoTarget
		}
		if r.Target == "" {
			r.Target = "—"
		}
		rows = append(rows, r)
	}

	add("Detector catch-up (backlog from the beginning)", []string{"rows/s", "s_total"}, "detector", "BenchmarkCatchUp", func(v []float64) Row {
		return targeted(Row{Figure: fmt.Sprintf("%s rows/s (whole backlog in %s s)", num(v[0], 0), num(v[1], 1)), Target: "≥ 50,000 rows/s"}, v[0] >= 50_000)
	})
	add("Detection latency p50 / p99, commit → JetStream", []string{"p50_ms", "p99_ms", "max_ms"}, "detector", "BenchmarkDetectionLatency", func(v []float64) Row {
		// The benchmark polls every 200 ms: the target is p99 under
		// POLL_INTERVAL + 100 ms.
		return targeted(Row{Figure: fmt.Sprintf("%s ms / %s ms (max %s ms)", num(v[0], 0), num(v[1], 0), num(v[2], 0)), Target: "p99 < 300 ms"}, v[1] < 300)
	})

	// The drain's order count: reported by the benchmark, else from its
	// minimum number of calls (100 orders per POST).
	drainOrders := func() (float64, string) {
		if v, why := l.metrics("sender", "BenchmarkDrain", "orders"); why == "" {
			return v[0], ""
		}
		v, why := l.metrics("sender", "BenchmarkDrain", "min_calls")
		if why != "" {
			return 0, why
		}
		return v[0] * 100, ""
	}
	add("Drain throughput vs the rate-limit ceiling", []string{"orders/s", "pct_of_ceiling"}, "sender", "BenchmarkDrain", func(v []float64) Row {
		f := fmt.Sprintf("%s orders/s = %s %% of the ceiling", num(v[0], 0), num(v[1], 1))
		if v[1] > 0 {
			f = fmt.Sprintf("%s orders/s = %s %% of %s orders/s", num(v[0], 0), num(v[1], 1), num(v[0]*100/v[1], 0))
		}
		if n, why := drainOrders(); why == "" {
			f += fmt.Sprintf(" (%s orders)", num(n, 0))
		}
		return targeted(Row{Figure: f, Target: "≥ 90 %"}, v[1] >= 90)
	})
	add("API calls per 1,000 updates", []string{"api_calls", "min_calls"}, "sender", "BenchmarkDrain", func(v []float64) Row {
		n, why := drainOrders()
		if why != "" || n == 0 {
			return notMeasured("", "order count of BenchmarkDrain unknown")
		}
		per := v[0] * 1000 / n
		if c, why := l.metrics("sender", "BenchmarkDrain", "calls_per_1000"); why == "" {
			per = c[0]
		}
		return targeted(Row{Figure: fmt.Sprintf("%s (%s calls for %s orders; fewest possible %s)", num(per, 1), num(v[0], 0), num(n, 0), num(v[1]*1000/n, 1)),
			Target: "≤ ⌈N/100⌉ + 1 %"}, v[0] <= v[1]*1.01)
	})
	add("Naive sender, one POST per order, same run", []string{"naive_orders/s"}, "sender", "BenchmarkDrain", func(v []float64) Row {
		f := fmt.Sprintf("%s orders/s", num(v[0], 1))
		if c, why := l.metrics("sender", "BenchmarkDrain", "naive_calls_per_1000"); why == "" {
			f += fmt.Sprintf(", %s calls per 1,000", num(c[0], 0))
		}
		return Row{Figure: f}
	})
	add("Batched ÷ naive throughput", []string{"ratio"}, "sender", "BenchmarkDrain", func(v []float64) Row {
		return Row{Figure: fmt.Sprintf("%s×", num(v[0], 1))}
	})
	add("Cancel latency p50 / p99, commit → POST", []string{"p50_ms", "p99_ms", "max_ms"}, "sender", "BenchmarkCancelLatency", func(v []float64) Row {
		return targeted(Row{Figure: fmt.Sprintf("%s ms / %s ms (max %s ms)", num(v[0], 0), num(v[1], 0), num(v[2], 0)), Target: "p99 < 1 s"}, v[1] < 1000)
	})
	add("Cancel behind waiting shipments, commit → POST", []string{"cancel_ms", "waiting"}, "sender", "BenchmarkCancelBehindWaitingShipments", func(v []float64) Row {
		r := Row{Figure: fmt.Sprintf("%s ms behind %s shipments", num(v[0], 0), num(v[1], 0)), Target: "< 1 s", Status: Met}
		if v[0] >= 1000 {
			r.Status = NotMet
		}
		return r
	})
	add("Ticket reads per resolved order", []string{"reads/order", "reads", "wall-s"}, "ticketpoller", "BenchmarkResolveBatches", func(v []float64) Row {
		f := fmt.Sprintf("%s (%s reads", num(v[0], 3), num(v[1], 0))
		if v[0] > 0 {
			f += fmt.Sprintf(" for %s orders", num(v[1]/v[0], 0))
		}
		return Row{Figure: f + fmt.Sprintf(", all resolved in %s s)", num(v[2], 1))}
	})

	// The client's sub-benchmarks share one row.
	var client []string
	var why string
	for _, sub := range []string{"ship", "ship-parallel", "batch-tickets"} {
		v, w := l.metrics("shoppingfeed", "BenchmarkClient/"+sub, "req/s")
		if w != "" {
			why = w
			break
		}
		client = append(client, sub+" "+num(v[0], 0))
	}
	if why != "" {
		rows = append(rows, notMeasured("Client requests/s, loopback sandbox", why))
	} else {
		rows = append(rows, Row{What: "Client requests/s, loopback sandbox", Figure: strings.Join(client, " · "), Target: "—", Status: NoTarget})
	}

	strictRows(l, add)

	for _, s := range Services {
		what := "RSS " + s + ", 10,000 updates in flight"
		b, ok := rss.Bytes[s]
		switch {
		case rss.Err != nil:
			r := notMeasured(what, firstLine(rss.Err.Error()))
			r.Target = "< 64 MiB"
			rows = append(rows, r)
		case !ok:
			r := notMeasured(what, "no rss line for "+s)
			r.Target = "< 64 MiB"
			rows = append(rows, r)
		default:
			r := Row{What: what, Figure: num(float64(b)/(1<<20), 1) + " MiB", Target: "< 64 MiB", Status: Met}
			if b >= RSSTarget {
				r.Status = NotMet
			}
			rows = append(rows, r)
		}
	}
	return rows
}

// The deployments of issue 14's benchmarks against the strict sandbox, by
// sub-benchmark name.
var (
	strictDrains = []struct{ sub, who string }{
		{"senders=1", "1 sender"},
		{"senders=3", "3 senders"},
		{"senders=3,pollers=2", "3 senders + 2 ticket pollers"},
	}
	strictTrickles = []struct{ sub, who string }{
		{"senders=1,pollers=1", "1 sender + 1 poller"},
		{"senders=3,pollers=2", "3 senders + 2 pollers"},
	}
)

// TrickleP99Target is the most commit → POST may take under a trickle: the
// latency budget (LATENCY_BUDGET, 1 s), plus the detector's POLL_INTERVAL
// (200 ms) and 300 ms for the commit, the claim and the POST.
const TrickleP99Target = 1500

// strictRows are the rows of issue 14: against the sandbox in strict mode
// (10 requests per token in any 2 s, refused ones counted), every worker on
// the token's shared budget.
func strictRows(l lookup, add func(what string, units []string, pkg, name string, fill func(v []float64) Row)) {
	strict := func(what string, units []string, name string, fill func(v []float64) Row) {
		add(what, units, "sender", name, fill)
	}
	for _, d := range strictDrains {
		name := "BenchmarkStrictDrain/" + d.sub
		strict("Strict drain, "+d.who+": throughput", []string{"orders/s", "pct_of_ceiling", "orders"}, name, func(v []float64) Row {
			f := fmt.Sprintf("%s orders/s = %s %% of 500 orders/s (%s orders)", num(v[0], 0), num(v[1], 1), num(v[2], 0))
			if r, why := l.metrics("sender", name, "ticket_reads"); why == "" && r[0] > 0 {
				f += fmt.Sprintf("; %s ticket reads on the same budget", num(r[0], 0))
			}
			return targeted(Row{Figure: f, Target: "≥ 90 %"}, v[1] >= 90)
		})
		strict("Strict drain, "+d.who+": API calls", []string{"api_calls", "min_calls", "orders"}, name, func(v []float64) Row {
			return targeted(Row{Figure: fmt.Sprintf("%s POSTs for %s orders (fewest possible %s)", num(v[0], 0), num(v[2], 0), num(v[1], 0)),
				Target: "≤ ⌈N/100⌉ + 1 %"}, v[0] <= v[1]*1.01)
		})
		strict("Strict drain, "+d.who+": answers of 429", []string{"http_429"}, name, func(v []float64) Row {
			return targeted(Row{Figure: num(v[0], 0), Target: "0"}, v[0] == 0)
		})
	}
	for _, d := range strictTrickles {
		name := "BenchmarkStrictTrickle/" + d.sub
		strict("Strict trickle, "+d.who+": cancel requests/s, one store", []string{"req/s", "orders/req", "orders"}, name, func(v []float64) Row {
			return targeted(Row{Figure: fmt.Sprintf("%s req/s, %s orders per request (%s cancels, about 30/s)", num(v[0], 2), num(v[1], 1), num(v[2], 0)),
				Target: "about 1/s (≤ 1.25)"}, v[0] <= 1.25)
		})
		strict("Strict trickle, "+d.who+": p50 / p99, commit → POST", []string{"p50_ms", "p99_ms", "max_ms"}, name, func(v []float64) Row {
			return targeted(Row{Figure: fmt.Sprintf("%s ms / %s ms (max %s ms)", num(v[0], 0), num(v[1], 0), num(v[2], 0)),
				Target: "p99 ≤ 1.5 s (budget 1 s + 0.5 s)"}, v[1] <= TrickleP99Target)
		})
		strict("Strict trickle, "+d.who+": answers of 429", []string{"http_429"}, name, func(v []float64) Row {
			return targeted(Row{Figure: num(v[0], 0), Target: "0"}, v[0] == 0)
		})
	}
	strict("Killed sender: its claimed orders out, after the kill", []string{"handover_s", "orders", "duplicates"}, "BenchmarkKilledSenderHandover", func(v []float64) Row {
		return targeted(Row{Figure: fmt.Sprintf("%s s for %s orders (%s sent twice)", num(v[0], 1), num(v[1], 0), num(v[2], 0)), Target: "≤ 15 s"}, v[0] <= 15)
	})
	baseline := ""
	if v, why := l.metrics("sender", "BenchmarkStoreIsolation/slow=none", "p99_ms"); why == "" {
		baseline = fmt.Sprintf("; both stores fast: p99 %s ms", num(v[0], 0))
	}
	for _, d := range []struct{ sub, how string }{{"slow=3s", "answers in 3 s"}, {"slow=429", "gets only 429s"}} {
		strict("Store isolation: other store's lone cancels, p50 / p99, while one "+d.how, []string{"p50_ms", "p99_ms", "max_ms"}, "BenchmarkStoreIsolation/"+d.sub, func(v []float64) Row {
			return targeted(Row{Figure: fmt.Sprintf("%s ms / %s ms (max %s ms%s)", num(v[0], 0), num(v[1], 0), num(v[2], 0), baseline), Target: "p99 ≤ 1 s"}, v[1] <= 1000)
		})
	}
}

// firstLine returns the first non-empty line of s.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return s
}

// num formats v with dec decimals and thousands separators: 12,345.6.
func num(v float64, dec int) string {
	s := strconv.FormatFloat(v, 'f', dec, 64)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

// Markdown writes the header and the table, columns padded so that the
// text reads as a table in a terminal too.
func Markdown(w io.Writer, m Machine, rows []Row) error {
	env := "default sizes"
	if len(m.Env) > 0 {
		e := append([]string(nil), m.Env...)
		sort.Strings(e)
		env = "`" + strings.Join(e, " ") + "`"
	}
	head := fmt.Sprintf("# Benchmark results\n\n"+
		"- command: `%s` (%s)\n"+
		"- date: %s UTC\n"+
		"- machine: %d cores, %s\n"+
		"- Go: %s\n\n",
		m.Command, env, m.Date.UTC().Format("2006-01-02 15:04"), m.Cores, m.CPU, m.GoVersion)
	if _, err := io.WriteString(w, head); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	cells := [][]string{{"what", "figure", "target", "status"}}
	for _, r := range rows {
		cells = append(cells, []string{r.What, r.Figure, r.Target, r.Status})
	}
	width := make([]int, 4)
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len([]rune(s)))
		}
	}
	var b strings.Builder
	line := func(c []string) {
		b.WriteString("|")
		for i, s := range c {
			b.WriteString(" " + s + strings.Repeat(" ", width[i]-len([]rune(s))) + " |")
		}
		b.WriteString("\n")
	}
	line(cells[0])
	sep := make([]string, 4)
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, c := range cells[1:] {
		line(c)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}
