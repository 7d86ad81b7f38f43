package benchreport

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const p = "github.com/sfsync/sfsync/pkg/"

// full is an output with every benchmark the table reads.
func full() *Output {
	return &Output{Results: []Result{
		{Pkg: p + "detector", Name: "BenchmarkCatchUp", N: 1, Values: map[string]float64{"rows/s": 15639, "s_total": 63.94}},
		{Pkg: p + "detector", Name: "BenchmarkDetectionLatency", N: 1, Values: map[string]float64{"p50_ms": 112.5, "p99_ms": 217.5, "max_ms": 247}},
		{Pkg: p + "sender", Name: "BenchmarkDrain", N: 1, Values: map[string]float64{
			"orders/s": 275.6, "pct_of_ceiling": 55.12, "api_calls": 174, "min_calls": 100, "orders": 10000,
			"calls_per_1000": 17.4, "naive_orders/s": 4.709, "naive_calls_per_1000": 1000, "ratio": 58.52}},
		{Pkg: p + "sender", Name: "BenchmarkCancelLatency", N: 1, Values: map[string]float64{"p50_ms": 267.3, "p99_ms": 370.1, "max_ms": 370.4}},
		{Pkg: p + "sender", Name: "BenchmarkCancelBehindWaitingShipments", N: 1, Values: map[string]float64{"waiting": 100000, "cancel_ms": 1250}},
		{Pkg: p + "ticketpoller", Name: "BenchmarkResolveBatches", N: 1, Values: map[string]float64{"reads/order": 0.0153, "reads": 153, "wall-s": 52.56}},
		{Pkg: p + "shoppingfeed", Name: "BenchmarkClient/ship", N: 8110, Values: map[string]float64{"req/s": 6489}},
		{Pkg: p + "shoppingfeed", Name: "BenchmarkClient/ship-parallel", N: 12202, Values: map[string]float64{"req/s": 9635}},
		{Pkg: p + "shoppingfeed", Name: "BenchmarkClient/batch-tickets", N: 7438, Values: map[string]float64{"req/s": 6830}},
		{Pkg: p + "sender", Name: "BenchmarkStrictDrain/senders=1", N: 1, Values: map[string]float64{
			"orders/s": 511.6, "pct_of_ceiling": 102.3, "api_calls": 100, "min_calls": 100, "orders": 10000, "ticket_reads": 0, "http_429": 0}},
		{Pkg: p + "sender", Name: "BenchmarkStrictDrain/senders=3", N: 1, Values: map[string]float64{
			"orders/s": 461.1, "pct_of_ceiling": 92.23, "api_calls": 110, "min_calls": 100, "orders": 10000, "ticket_reads": 0, "http_429": 0}},
		{Pkg: p + "sender", Name: "BenchmarkStrictDrain/senders=3,pollers=2", N: 1, Values: map[string]float64{
			"orders/s": 163.8, "pct_of_ceiling": 32.76, "api_calls": 145, "min_calls": 100, "orders": 10000, "ticket_reads": 128, "http_429": 2}},
		{Pkg: p + "sender", Name: "BenchmarkStrictTrickle/senders=1,pollers=1", N: 1, Values: map[string]float64{
			"req/s": 1.043, "orders/req": 28.57, "orders": 600, "p50_ms": 659, "p99_ms": 1167, "max_ms": 1198, "http_429": 0}},
		{Pkg: p + "sender", Name: "BenchmarkStrictTrickle/senders=3,pollers=2", N: 1, Values: map[string]float64{
			"req/s": 3.145, "orders/req": 9.524, "orders": 600, "p50_ms": 2964, "p99_ms": 6498, "max_ms": 6765, "http_429": 0}},
		{Pkg: p + "sender", Name: "BenchmarkKilledSenderHandover", N: 1, Values: map[string]float64{"handover_s": 10.05, "orders": 90, "duplicates": 0}},
		{Pkg: p + "sender", Name: "BenchmarkStoreIsolation/slow=none", N: 1, Values: map[string]float64{"p50_ms": 650, "p99_ms": 1100, "max_ms": 1150}},
		{Pkg: p + "sender", Name: "BenchmarkStoreIsolation/slow=3s", N: 1, Values: map[string]float64{"p50_ms": 671.6, "p99_ms": 1146, "max_ms": 1172}},
		{Pkg: p + "sender", Name: "BenchmarkStoreIsolation/slow=429", N: 1, Values: map[string]float64{"p50_ms": 670.2, "p99_ms": 990, "max_ms": 1170}},
	}}
}

func TestRows(t *testing.T) {
	rss := RSS{Bytes: map[string]int64{"detector": 30 << 20, "sender": 64 << 20, "ticketpoller": 20 << 20}}
	rows := Rows(full(), rss)
	want := []Row{
		{What: "Detector catch-up (backlog from the beginning)", Figure: "15,639 rows/s (whole backlog in 63.9 s)", Target: "≥ 50,000 rows/s", Status: NotMet},
		{What: "Detection latency p50 / p99, commit → JetStream", Figure: "112 ms / 218 ms (max 247 ms)", Target: "p99 < 300 ms", Status: Met},
		{What: "Drain throughput vs the rate-limit ceiling", Figure: "276 orders/s = 55.1 % of 500 orders/s (10,000 orders)", Target: "≥ 90 %", Status: NotMet},
		{What: "API calls per 1,000 updates", Figure: "17.4 (174 calls for 10,000 orders; fewest possible 10.0)", Target: "≤ ⌈N/100⌉ + 1 %", Status: NotMet},
		{What: "Naive sender, one POST per order, same run", Figure: "4.7 orders/s, 1,000 calls per 1,000", Target: "—", Status: NoTarget},
		{What: "Batched ÷ naive throughput", Figure: "58.5×", Target: "—", Status: NoTarget},
		{What: "Cancel latency p50 / p99, commit → POST", Figure: "267 ms / 370 ms (max 370 ms)", Target: "p99 < 1 s", Status: Met},
		{What: "Cancel behind waiting shipments, commit → POST", Figure: "1,250 ms behind 100,000 shipments", Target: "< 1 s", Status: NotMet},
		{What: "Ticket reads per resolved order", Figure: "0.015 (153 reads for 10,000 orders, all resolved in 52.6 s)", Target: "—", Status: NoTarget},
		{What: "Client requests/s, loopback sandbox", Figure: "ship 6,489 · ship-parallel 9,635 · batch-tickets 6,830", Target: "—", Status: NoTarget},
		{What: "Strict drain, 1 sender: throughput", Figure: "512 orders/s = 102.3 % of 500 orders/s (10,000 orders)", Target: "≥ 90 %", Status: Met},
		{What: "Strict drain, 1 sender: API calls", Figure: "100 POSTs for 10,000 orders (fewest possible 100)", Target: "≤ ⌈N/100⌉ + 1 %", Status: Met},
		{What: "Strict drain, 1 sender: answers of 429", Figure: "0", Target: "0", Status: Met},
		{What: "Strict drain, 3 senders: throughput", Figure: "461 orders/s = 92.2 % of 500 orders/s (10,000 orders)", Target: "≥ 90 %", Status: Met},
		{What: "Strict drain, 3 senders: API calls", Figure: "110 POSTs for 10,000 orders (fewest possible 100)", Target: "≤ ⌈N/100⌉ + 1 %", Status: NotMet},
		{What: "Strict drain, 3 senders: answers of 429", Figure: "0", Target: "0", Status: Met},
		{What: "Strict drain, 3 senders + 2 ticket pollers: throughput", Figure: "164 orders/s = 32.8 % of 500 orders/s (10,000 orders); 128 ticket reads on the same budget", Target: "≥ 90 %", Status: NotMet},
		{What: "Strict drain, 3 senders + 2 ticket pollers: API calls", Figure: "145 POSTs for 10,000 orders (fewest possible 100)", Target: "≤ ⌈N/100⌉ + 1 %", Status: NotMet},
		{What: "Strict drain, 3 senders + 2 ticket pollers: answers of 429", Figure: "2", Target: "0", Status: NotMet},
		{What: "Strict trickle, 1 sender + 1 poller: cancel requests/s, one store", Figure: "1.04 req/s, 28.6 orders per request (600 cancels, about 30/s)", Target: "about 1/s (≤ 1.25)", Status: Met},
		{What: "Strict trickle, 1 sender + 1 poller: p50 / p99, commit → POST", Figure: "659 ms / 1,167 ms (max 1,198 ms)", Target: "p99 ≤ 1.5 s (budget 1 s + 0.5 s)", Status: Met},
		{What: "Strict trickle, 1 sender + 1 poller: answers of 429", Figure: "0", Target: "0", Status: Met},
		{What: "Strict trickle, 3 senders + 2 pollers: cancel requests/s, one store", Figure: "3.15 req/s, 9.5 orders per request (600 cancels, about 30/s)", Target: "about 1/s (≤ 1.25)", Status: NotMet},
		{What: "Strict trickle, 3 senders + 2 pollers: p50 / p99, commit → POST", Figure: "2,964 ms / 6,498 ms (max 6,765 ms)", Target: "p99 ≤ 1.5 s (budget 1 s + 0.5 s)", Status: NotMet},
		{What: "Strict trickle, 3 senders + 2 pollers: answers of 429", Figure: "0", Target: "0", Status: Met},
		{What: "Killed sender: its claimed orders out, after the kill", Figure: "10.1 s for 90 orders (0 sent twice)", Target: "≤ 15 s", Status: Met},
		{What: "Store isolation: other store's lone cancels, p50 / p99, while one answers in 3 s", Figure: "672 ms / 1,146 ms (max 1,172 ms; both stores fast: p99 1,100 ms)", Target: "p99 ≤ 1 s", Status: NotMet},
		{What: "Store isolation: other store's lone cancels, p50 / p99, while one gets only 429s", Figure: "670 ms / 990 ms (max 1,170 ms; both stores fast: p99 1,100 ms)", Target: "p99 ≤ 1 s", Status: Met},
		{What: "RSS detector, 10,000 updates in flight", Figure: "30.0 MiB", Target: "< 64 MiB", Status: Met},
		{What: "RSS sender, 10,000 updates in flight", Figure: "64.0 MiB", Target: "< 64 MiB", Status: NotMet},
		{What: "RSS ticketpoller, 10,000 updates in flight", Figure: "20.0 MiB", Target: "< 64 MiB", Status: Met},
		{What: "RSS sfsandbox, 10,000 updates in flight", Figure: "—", Target: "< 64 MiB", Status: "not measured: no rss line for sfsandbox"},
	}
	if d := cmp.Diff(want, rows); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestRowsNotMeasured(t *testing.T) {
	out := full()
	// The sender's benchmarks failed, the client printed nothing, the
	// detector's package did not build.
	var kept []Result
	for _, r := range out.Results {
		if !strings.HasSuffix(r.Pkg, "/sender") && !strings.HasSuffix(r.Pkg, "/shoppingfeed") && !strings.HasSuffix(r.Pkg, "/detector") {
			kept = append(kept, r)
		}
	}
	out.Results = kept
	out.Failures = []Failure{
		{Pkg: p + "sender", Name: "BenchmarkDrain", Reason: "3 events for 4 rows"},
		{Pkg: p + "sender", Reason: "panic: test timed out after 10m0s"},
		{Pkg: p + "detector", Reason: "build failed: detector/x.go:1:1: undefined: y"},
	}
	rows := Rows(out, RSS{Err: errors.New("chaos -mode rss: exit status 1: dial tcp: connection refused\nmore")})
	got := map[string]string{}
	for _, r := range rows {
		got[r.What] = r.Status
		if strings.HasPrefix(r.Status, NotMeasured) && r.Figure != "—" {
			t.Errorf("%s: not measured with figure %q", r.What, r.Figure)
		}
	}
	want := map[string]string{
		"Detector catch-up (backlog from the beginning)":                                   "not measured: " + p + "detector failed: build failed: detector/x.go:1:1: undefined: y",
		"Detection latency p50 / p99, commit → JetStream":                                  "not measured: " + p + "detector failed: build failed: detector/x.go:1:1: undefined: y",
		"Drain throughput vs the rate-limit ceiling":                                       "not measured: BenchmarkDrain failed: 3 events for 4 rows",
		"API calls per 1,000 updates":                                                      "not measured: BenchmarkDrain failed: 3 events for 4 rows",
		"Naive sender, one POST per order, same run":                                       "not measured: BenchmarkDrain failed: 3 events for 4 rows",
		"Batched ÷ naive throughput":                                                       "not measured: BenchmarkDrain failed: 3 events for 4 rows",
		"Cancel latency p50 / p99, commit → POST":                                          "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Cancel behind waiting shipments, commit → POST":                                   "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Ticket reads per resolved order":                                                  NoTarget,
		"Client requests/s, loopback sandbox":                                              "not measured: no result for BenchmarkClient/ship in the output",
		"Strict drain, 1 sender: throughput":                                               "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict drain, 1 sender: API calls":                                                "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict drain, 1 sender: answers of 429":                                           "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict drain, 3 senders: throughput":                                              "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict drain, 3 senders: API calls":                                               "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict drain, 3 senders: answers of 429":                                          "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict drain, 3 senders + 2 ticket pollers: throughput":                           "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict drain, 3 senders + 2 ticket pollers: API calls":                            "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict drain, 3 senders + 2 ticket pollers: answers of 429":                       "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict trickle, 1 sender + 1 poller: cancel requests/s, one store":                "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict trickle, 1 sender + 1 poller: p50 / p99, commit → POST":                    "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict trickle, 1 sender + 1 poller: answers of 429":                              "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict trickle, 3 senders + 2 pollers: cancel requests/s, one store":              "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict trickle, 3 senders + 2 pollers: p50 / p99, commit → POST":                  "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Strict trickle, 3 senders + 2 pollers: answers of 429":                            "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Killed sender: its claimed orders out, after the kill":                            "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Store isolation: other store's lone cancels, p50 / p99, while one answers in 3 s": "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"Store isolation: other store's lone cancels, p50 / p99, while one gets only 429s": "not measured: " + p + "sender failed: panic: test timed out after 10m0s",
		"RSS detector, 10,000 updates in flight":                                           "not measured: chaos -mode rss: exit status 1: dial tcp: connection refused",
		"RSS sender, 10,000 updates in flight":                                             "not measured: chaos -mode rss: exit status 1: dial tcp: connection refused",
		"RSS ticketpoller, 10,000 updates in flight":                                       "not measured: chaos -mode rss: exit status 1: dial tcp: connection refused",
		"RSS sfsandbox, 10,000 updates in flight":                                          "not measured: chaos -mode rss: exit status 1: dial tcp: connection refused",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// Without the "orders" metric (older benchmark), the count comes from the
// fewest calls possible, 100 orders each.
func TestRowsOrdersFromMinCalls(t *testing.T) {
	out := full()
	for _, r := range out.Results {
		delete(r.Values, "orders")
		delete(r.Values, "calls_per_1000")
	}
	for _, r := range Rows(out, RSS{}) {
		if r.What == "API calls per 1,000 updates" && r.Figure != "17.4 (174 calls for 10,000 orders; fewest possible 10.0)" {
			t.Errorf("figure %q", r.Figure)
		}
	}
}

func TestMarkdown(t *testing.T) {
	m := Machine{
		Date: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), Cores: 2, CPU: "Oxide Virtual Turin-like Processor",
		GoVersion: "go1.26.8 linux/amd64", Command: "make bench", Env: []string{"BENCH_ROWS=1000", "BENCH_ORDERS=500"},
	}
	rows := []Row{
		{What: "RSS sender", Figure: "30.0 MiB", Target: "< 64 MiB", Status: Met},
		{What: "Batched ÷ naive", Figure: "58.5×", Target: "—", Status: NoTarget},
	}
	var b strings.Builder
	if err := Markdown(&b, m, rows); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/results.md")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(want), b.String()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestNum(t *testing.T) {
	tests := []struct {
		v    float64
		dec  int
		want string
	}{
		{0, 0, "0"},
		{999, 0, "999"},
		{1000, 0, "1,000"},
		{1234567.891, 1, "1,234,567.9"},
		{-12345, 0, "-12,345"},
		{0.0153, 3, "0.015"},
	}
	for _, tt := range tests {
		if got := num(tt.v, tt.dec); got != tt.want {
			t.Errorf("num(%v, %d) = %q, want %q", tt.v, tt.dec, got, tt.want)
		}
	}
}
