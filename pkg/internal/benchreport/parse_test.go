package benchreport

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testdata/sample.txt is real output of the benchmarks of this repository,
// from two runs: packages that did not build (work in progress at the time)
// in one, the detector's and the sender's figures from the other.
func TestParseSample(t *testing.T) {
	f, err := os.Open("testdata/sample.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Result{
		"BenchmarkEncodeEvent/fast":      {Pkg: p + "detector", Procs: 2, N: 839866, Values: map[string]float64{"ns/op": 1526, "B/op": 352, "allocs/op": 3}},
		"BenchmarkEncodeEvent/protojson": {Pkg: p + "detector", Procs: 2, N: 191508, Values: map[string]float64{"ns/op": 5842, "B/op": 936, "allocs/op": 20}},
		"BenchmarkCatchUp": {Pkg: p + "detector", Procs: 2, N: 1, Values: map[string]float64{
			"ns/op": 63944372286, "rows/s": 15639, "s_total": 63.94, "B/op": 5753348760, "allocs/op": 75961613}},
		"BenchmarkDetectionLatency": {Pkg: p + "detector", Procs: 2, N: 1, Values: map[string]float64{
			"ns/op": 16059927869, "max_ms": 247, "p50_ms": 112.5, "p99_ms": 217.5, "B/op": 3898416, "allocs/op": 53360}},
		"BenchmarkDrain": {Pkg: p + "sender", Procs: 2, N: 1, Values: map[string]float64{
			"ns/op": 36287081365, "api_calls": 174, "min_calls": 100, "naive_orders/s": 4.709, "orders/s": 275.6,
			"pct_of_ceiling": 55.12, "ratio": 58.52, "B/op": 1413807792, "allocs/op": 3840159}},
		"BenchmarkCancelLatency": {Pkg: p + "sender", Procs: 2, N: 1, Values: map[string]float64{
			"ns/op": 10335210990, "max_ms": 370.4, "p50_ms": 267.3, "p99_ms": 370.1, "B/op": 6620136, "allocs/op": 92828}},
		"BenchmarkClient/ship":          {Pkg: p + "shoppingfeed", Procs: 2, N: 8110, Values: map[string]float64{"ns/op": 154099, "req/s": 6489, "B/op": 17001, "allocs/op": 234}},
		"BenchmarkClient/ship-parallel": {Pkg: p + "shoppingfeed", Procs: 2, N: 12202, Values: map[string]float64{"ns/op": 103788, "req/s": 9635, "B/op": 16950, "allocs/op": 233}},
		"BenchmarkClient/batch-tickets": {Pkg: p + "shoppingfeed", Procs: 2, N: 7438, Values: map[string]float64{"ns/op": 146406, "req/s": 6830, "B/op": 19212, "allocs/op": 254}},
		// ns/op reported as 0 is left out of the line.
		"BenchmarkResolveBatches": {Pkg: p + "ticketpoller", Procs: 2, N: 1, Values: map[string]float64{
			"last-resolve-to-gone-ms": 596, "reads": 153, "reads/order": 0.0153, "send-s": 50.47, "wall-s": 52.56, "B/op": 265671184, "allocs/op": 2861142}},
	}
	got := map[string]Result{}
	for _, r := range out.Results {
		name := r.Name
		r.Name = ""
		got[name] = r
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("results (-want +got):\n%s", d)
	}
	wantFail := []Failure{
		{Pkg: p + "broker", Reason: "build failed: vet: broker/lease.go:125:6: undefined: IsGone"},
		{Pkg: p + "internal/deploycheck", Reason: "build failed"},
		{Pkg: p + "service", Reason: "build failed: service/service.go:18:2: could not import github.com/prometheus/client_golang/prometheus/collectors (open : no such file or directory)"},
	}
	if d := cmp.Diff(wantFail, out.Failures); d != "" {
		t.Errorf("failures (-want +got):\n%s", d)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		results  []Result
		failures []Failure
	}{
		{
			name: "log line between the name and the figures",
			in: "pkg: example.com/p\n" +
				"BenchmarkX-4   \ttime=2026-01-01 level=INFO msg=\"started\"\n" +
				"more log\n" +
				"       1\t  12.5 rows/s\t3 s_total\n" +
				"PASS\nok  \texample.com/p\t3.1s\n",
			results: []Result{{Pkg: "example.com/p", Name: "BenchmarkX", Procs: 4, N: 1, Values: map[string]float64{"rows/s": 12.5, "s_total": 3}}},
		},
		{
			name: "sub-benchmark named by its deployment",
			in: "pkg: example.com/p\n" +
				"BenchmarkStrictDrain/senders=3,pollers=2-2   \t       1\t61046140431 ns/op\t       145.0 api_calls\t         0 http_429\n",
			results: []Result{{Pkg: "example.com/p", Name: "BenchmarkStrictDrain/senders=3,pollers=2", Procs: 2, N: 1,
				Values: map[string]float64{"ns/op": 61046140431, "api_calls": 145, "http_429": 0}}},
		},
		{
			name:    "GOMAXPROCS 1: no suffix",
			in:      "pkg: example.com/p\nBenchmarkClient/ship \t 100\t 5 req/s\n",
			results: []Result{{Pkg: "example.com/p", Name: "BenchmarkClient/ship", Procs: 1, N: 100, Values: map[string]float64{"req/s": 5}}},
		},
		{
			name: "failed benchmark with its reason; the package's FAIL adds nothing",
			in: "pkg: example.com/p\n" +
				"--- FAIL: BenchmarkDrain-2\n" +
				"    bench_test.go:88: 3 events in the stream for 4 rows\n" +
				"    bench_test.go:89: second line\n" +
				"BenchmarkOther-2\t1\t7 ms\n" +
				"FAIL\nexit status 1\nFAIL\texample.com/p\t12.0s\n",
			results:  []Result{{Pkg: "example.com/p", Name: "BenchmarkOther", Procs: 2, N: 1, Values: map[string]float64{"ms": 7}}},
			failures: []Failure{{Pkg: "example.com/p", Name: "BenchmarkDrain", Reason: "3 events in the stream for 4 rows"}},
		},
		{
			name: "failed sub-benchmark: its parent is not listed again",
			in: "pkg: example.com/p\n" +
				"--- FAIL: BenchmarkClient/ship-2\n" +
				"    bench_test.go:30: connection refused\n" +
				"--- FAIL: BenchmarkClient-2\n" +
				"FAIL\texample.com/p\t1.0s\n",
			failures: []Failure{{Pkg: "example.com/p", Name: "BenchmarkClient/ship", Reason: "connection refused"}},
		},
		{
			name: "skipped benchmark",
			in: "pkg: example.com/p\n" +
				"--- SKIP: BenchmarkCatchUp\n" +
				"    env.go:12: no MySQL\n" +
				"PASS\nok  \texample.com/p\t1.0s\n",
			failures: []Failure{{Pkg: "example.com/p", Name: "BenchmarkCatchUp", Reason: "no MySQL", Skipped: true}},
		},
		{
			name: "timeout: the package's panic is the reason",
			in: "pkg: example.com/p\n" +
				"BenchmarkA-2\t1\t5 x\n" +
				"panic: test timed out after 10m0s\n" +
				"\trunning tests:\n\t\tBenchmarkB (10m0s)\n\ngoroutine 1 [running]:\n" +
				"FAIL\texample.com/p\t600.1s\n",
			results:  []Result{{Pkg: "example.com/p", Name: "BenchmarkA", Procs: 2, N: 1, Values: map[string]float64{"x": 5}}},
			failures: []Failure{{Pkg: "example.com/p", Reason: "panic: test timed out after 10m0s"}},
		},
		{
			name: "a line that only looks like a result",
			in:   "pkg: example.com/p\nBenchmarkA is slow\n1 2 3\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.results, out.Results); d != "" {
				t.Errorf("results (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.failures, out.Failures); d != "" {
				t.Errorf("failures (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]int64
		wantErr bool
	}{
		{
			name: "lines among logs",
			in:   "starting…\nrss detector 31457280\nrss sender 52428800\nrss ticketpoller 1\nrss sfsandbox 70000000\nrss total is nice\n",
			want: map[string]int64{"detector": 31457280, "sender": 52428800, "ticketpoller": 1, "sfsandbox": 70000000},
		},
		{name: "not a byte count", in: "rss sender 12MB\n", want: map[string]int64{}, wantErr: true},
		{name: "nothing", in: "", want: map[string]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRSS(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
