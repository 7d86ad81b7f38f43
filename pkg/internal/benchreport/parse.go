// Package benchreport turns the output of `go test -bench` over every module,
// and the RSS figures of `chaos -mode rss`, into the one summary table that
// `make bench` prints and writes to bench/results.md: each figure beside its
// target, when one is defined, and met, not met or not measured.
//
// It never makes a figure up: a benchmark that failed, was skipped or printed
// no result is "not measured", with the reason.
package benchreport

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Result is one benchmark result line:
//
//	BenchmarkDrain-2   1   24312345678 ns/op   411.3 orders/s   82.27 pct_of_ceiling
type Result struct {
	// Pkg is the import path from the "pkg:" header above the line.
	Pkg string
	// Name is the benchmark's name without the -GOMAXPROCS suffix,
	// sub-benchmarks included: "BenchmarkClient/ship".
	Name string
	// Procs is the GOMAXPROCS suffix, 1 when there is none.
	Procs int
	// N is the number of iterations.
	N int64
	// Values are the figures by unit: "ns/op", "B/op", "rows/s".
	Values map[string]float64
}

// Failure is a benchmark, or a whole package, that produced no result.
type Failure struct {
	Pkg string
	// Name is the benchmark, empty when the package as a whole failed
	// (build error, panic, timeout).
	Name string
	// Reason is the first line of what the failure printed.
	Reason string
	// Skipped is a b.Skip: nothing failed, but nothing was measured.
	Skipped bool
}

// Output is what Parse found in a run's output.
type Output struct {
	Results  []Result
	Failures []Failure
}

var (
	procsSuffix = regexp.MustCompile(`-(\d+)$`)
	// logLine is a t.Log line under a result or a failure: "    x_test.go:12: msg".
	logLine = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)
)

// Parse reads the output of one or more `go test -bench` runs. It keeps
// going past lines it does not know (logs, other tests' output), including
// a log line written between a benchmark's name and its figures.
func Parse(r io.Reader) (*Output, error) {
	out := &Output{}
	var (
		pkg string
		// pending is a benchmark whose name was printed but whose figures
		// were not on the same line.
		pending string
		// failing is the failure whose reason the next log line gives.
		failing *Failure
		// crash is the first line of a package's panic or kill.
		crash string
		// failed marks the packages that already have a failure.
		failed = map[string]bool{}
		// building is the package of a "# pkg" compiler header, whose
		// first error line is kept in buildErr.
		building string
		buildErr = map[string]string{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		if failing != nil {
			if m := logLine.FindStringSubmatch(line); m != nil {
				failing.Reason = m[1]
				failing = nil
				continue
			}
			if trimmed != "" && !strings.HasPrefix(line, " ") {
				failing = nil
			}
		}
		if building != "" {
			if _, ok := buildErr[building]; !ok && trimmed != "" && !strings.HasPrefix(line, "#") {
				buildErr[building] = trimmed
			}
			building = ""
		}
		switch {
		case strings.HasPrefix(line, "# "):
			// "# example.com/p [example.com/p.test]" above compiler errors.
			if f := strings.Fields(line); len(f) > 1 {
				building = f[1]
			}
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimSpace(strings.TrimPrefix(line, "pkg: "))
			pending, crash = "", ""
		case strings.HasPrefix(trimmed, "--- FAIL: "), strings.HasPrefix(trimmed, "--- SKIP: "):
			f := strings.Fields(trimmed)
			if len(f) < 3 || !strings.HasPrefix(f[2], "Benchmark") {
				continue
			}
			name, _ := splitProcs(f[2])
			if out.hasSubFailure(pkg, name) {
				// The parent of a failed sub-benchmark: the sub-benchmark
				// already says why.
				continue
			}
			out.Failures = append(out.Failures, Failure{Pkg: pkg, Name: name, Reason: "failed", Skipped: f[1] == "SKIP:"})
			failing = &out.Failures[len(out.Failures)-1]
			if failing.Skipped {
				failing.Reason = "skipped"
			} else {
				failed[pkg] = true
			}
			pending = ""
		case strings.HasPrefix(line, "panic: "), strings.HasPrefix(line, "*** Test killed"), strings.HasPrefix(line, "fatal error: "):
			if crash == "" {
				crash = trimmed
			}
		case strings.HasPrefix(line, "FAIL\t"), strings.HasPrefix(line, "ok  \t"), strings.HasPrefix(line, "?   \t"):
			f := strings.Fields(line)
			if f[0] == "FAIL" && len(f) > 1 {
				p := f[1]
				reason := crash
				switch rest := strings.Join(f[2:], " "); {
				case reason != "":
				case rest == "[build failed]" && buildErr[p] != "":
					reason = "build failed: " + buildErr[p]
				case strings.HasPrefix(rest, "["):
					reason = strings.Trim(rest, "[]")
				default:
					reason = "FAIL " + p
				}
				if !failed[p] || crash != "" {
					out.Failures = append(out.Failures, Failure{Pkg: p, Reason: reason})
					failed[p] = true
				}
			}
			pkg, pending, crash = "", "", ""
		case strings.HasPrefix(line, "Benchmark"):
			f := strings.Fields(line)
			name, procs := splitProcs(f[0])
			if n, vals, ok := parseFigures(f[1:]); ok {
				out.Results = append(out.Results, Result{Pkg: pkg, Name: name, Procs: procs, N: n, Values: vals})
				pending = ""
			} else {
				pending = f[0]
			}
		case pending != "":
			if n, vals, ok := parseFigures(strings.Fields(line)); ok {
				name, procs := splitProcs(pending)
				out.Results = append(out.Results, Result{Pkg: pkg, Name: name, Procs: procs, N: n, Values: vals})
				pending = ""
			}
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read benchmark output: %w", err)
	}
	return out, nil
}

// hasSubFailure reports whether a sub-benchmark of name already failed.
func (o *Output) hasSubFailure(pkg, name string) bool {
	for _, f := range o.Failures {
		if f.Pkg == pkg && strings.HasPrefix(f.Name, name+"/") {
			return true
		}
	}
	return false
}

// splitProcs splits "BenchmarkX/sub-8" into "BenchmarkX/sub" and 8.
func splitProcs(s string) (string, int) {
	if m := procsSuffix.FindStringSubmatch(s); m != nil {
		if p, err := strconv.Atoi(m[1]); err == nil {
			return strings.TrimSuffix(s, m[0]), p
		}
	}
	return s, 1
}

// parseFigures reads "N v1 unit1 v2 unit2 …".
func parseFigures(f []string) (int64, map[string]float64, bool) {
	if len(f) < 3 || len(f)%2 == 0 {
		return 0, nil, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, nil, false
	}
	vals := make(map[string]float64, len(f)/2)
	for i := 1; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return 0, nil, false
		}
		if _, err := strconv.ParseFloat(f[i+1], 64); err == nil {
			return 0, nil, false // a unit is never a number
		}
		vals[f[i+1]] = v
	}
	return n, vals, true
}

// ParseRSS reads the lines "rss <service> <bytes>" that `chaos -mode rss`
// prints; other lines are ignored.
func ParseRSS(r io.Reader) (map[string]int64, error) {
	rss := map[string]int64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "rss" {
			continue
		}
		b, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || b <= 0 {
			return rss, fmt.Errorf("rss line %q: not a byte count", sc.Text())
		}
		rss[f[1]] = b
	}
	if err := sc.Err(); err != nil {
		return rss, fmt.Errorf("read rss output: %w", err)
	}
	return rss, nil
}
