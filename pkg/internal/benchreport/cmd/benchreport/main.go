// Command benchreport is `make bench`: it runs every module's benchmarks and
// the RSS measurement, streams their output (kept in bench/raw.txt), prints
// one summary table and writes it to bench/results.md. It exits 1 when a
// benchmark or the measurement failed, after printing what was measured.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sfsync/sfsync/pkg/internal/benchreport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// errFailed says that the table was written but something was not measured
// because it failed.
var errFailed = errors.New("some benchmarks failed: see the table")

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	skipRSS := fs.Bool("skip-rss", false, "do not run the RSS measurement (chaos -mode rss)")
	rssTimeout := fs.Duration("rss-timeout", 10*time.Minute, "how long the RSS measurement may take")
	// go test's -timeout does not cover benchmarks: without this a stuck
	// benchmark would hold make bench forever.
	modTimeout := fs.Duration("timeout", 15*time.Minute, "how long one module's benchmarks may run before they are killed")
	outDir := fs.String("out", "", "where results.md and raw.txt go (default: bench/ at the repository root)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := repoRoot(ctx)
	if err != nil {
		return err
	}
	dir := *outDir
	if dir == "" {
		dir = filepath.Join(root, "bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	rawFile, err := os.Create(filepath.Join(dir, "raw.txt"))
	if err != nil {
		return fmt.Errorf("create raw output: %w", err)
	}
	defer rawFile.Close()
	stream := io.MultiWriter(stdout, rawFile)

	m := machine(ctx)
	var all bytes.Buffer
	failed := false
	mods, err := modules(ctx, root)
	if err != nil {
		return err
	}
	for _, mod := range mods {
		fmt.Fprintf(stream, "== %s\n", mod)
		if err := benchModule(ctx, mod, *modTimeout, stream, &all); err != nil {
			fmt.Fprintf(stream, "== %s: %v\n", mod, err)
			failed = true
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	out, err := benchreport.Parse(&all)
	if err != nil {
		return err
	}
	if len(out.Failures) > 0 {
		failed = true
	}

	rss := benchreport.RSS{Err: errors.New("skipped (-skip-rss)")}
	if !*skipRSS {
		rss = measureRSS(ctx, root, *rssTimeout, stream)
		if rss.Err != nil && !errors.Is(rss.Err, errNoChaos) {
			failed = true
		}
	}

	var table bytes.Buffer
	if err := benchreport.Markdown(&table, m, benchreport.Rows(out, rss)); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if _, err := stdout.Write(table.Bytes()); err != nil {
		return fmt.Errorf("print results: %w", err)
	}
	results := filepath.Join(dir, "results.md")
	if err := os.WriteFile(results, table.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", results, err)
	}
	fmt.Fprintf(stdout, "\nwritten to %s; raw output in %s\n", results, rawFile.Name())
	if failed {
		return errFailed
	}
	return nil
}

// benchModule runs the benchmarks of the module in dir, as the Makefile
// did, streaming the output and appending it to all. When they run past
// timeout, they are killed (with the private databases they started) and a
// "FAIL <package> [killed after …]" line names the package that was running.
//
// The module's test binaries are compiled first, outside timeout: on a cold
// build cache compiling can take longer than a benchmark may run, and a
// timeout that counted it would kill a module before any benchmark began.
func benchModule(ctx context.Context, dir string, timeout time.Duration, stream io.Writer, all *bytes.Buffer) error {
	compileTests(ctx, dir)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "./...")
	cmd.Dir = dir
	w := io.MultiWriter(stream, &out)
	cmd.Stdout, cmd.Stderr = w, w
	// Its own process group, so that the test binaries and their mariadbd
	// go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		pkg := dir
		if i := bytes.LastIndex(out.Bytes(), []byte("\npkg: ")); i >= 0 {
			pkg = strings.Fields(out.String()[i+len("\npkg: "):])[0]
		}
		fmt.Fprintf(w, "\nFAIL\t%s\t[killed after %s]\n", pkg, timeout)
	}
	all.Write(out.Bytes())
	return err
}

// compileTests fills the build cache with everything the module's test
// binaries need, running none of them (-exec /bin/true stands in for each
// binary). Its output is dropped: a package that does not build fails again,
// with the compiler's message, in the run that follows.
func compileTests(ctx context.Context, dir string) {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^$", "-exec", "/bin/true", "./...")
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second
	_ = cmd.Run()
}

// repoRoot is the directory of the go.work in use.
func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	work := strings.TrimSpace(string(out))
	if work == "" || work == "off" {
		return "", errors.New("no go.work: run from inside the repository")
	}
	return filepath.Dir(work), nil
}

// modules lists the workspace's module directories, as the Makefile does.
func modules(ctx context.Context, root string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -m: %w", err)
	}
	return strings.Fields(string(out)), nil
}

// machine describes this run's machine and toolchain.
func machine(ctx context.Context) benchreport.Machine {
	m := benchreport.Machine{
		Date:      time.Now().UTC(),
		Cores:     runtime.NumCPU(),
		CPU:       cpuModel(),
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Command:   "make bench",
	}
	// The toolchain that runs the benchmarks, which GOTOOLCHAIN may change.
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION", "GOOS", "GOARCH").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) == 3 {
			m.GoVersion = f[0] + " " + f[1] + "/" + f[2]
		}
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BENCH_") {
			m.Env = append(m.Env, kv)
		}
	}
	sort.Strings(m.Env)
	return m
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "CPU model unknown (" + runtime.GOARCH + ")"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "CPU model unknown (" + runtime.GOARCH + ")"
}

// errNoChaos: the RSS measurement does not exist yet.
var errNoChaos = errors.New("pkg/chaos/cmd/chaos does not exist yet")

// measureRSS runs `go run ./chaos/cmd/chaos -mode rss -bin ../bin` in pkg/
// (make bench builds bin/ first), streaming its output, and reads its
// "rss <service> <bytes>" lines.
func measureRSS(ctx context.Context, root string, timeout time.Duration, stream io.Writer) benchreport.RSS {
	pkgDir := filepath.Join(root, "pkg")
	if _, err := os.Stat(filepath.Join(pkgDir, "chaos", "cmd", "chaos")); err != nil {
		return benchreport.RSS{Err: errNoChaos}
	}
	fmt.Fprintln(stream, "== go run ./chaos/cmd/chaos -mode rss -bin ../bin (in pkg/)")
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	// The services as make build left them in bin/, as make chaos runs them.
	cmd := exec.CommandContext(ctx, "go", "run", "./chaos/cmd/chaos", "-mode", "rss", "-bin", filepath.Join(root, "bin"))
	cmd.Dir = pkgDir
	cmd.Stdout = io.MultiWriter(stream, &stdout)
	cmd.Stderr = io.MultiWriter(stream, &stderr)
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		reason := err.Error()
		if ctx.Err() != nil {
			reason = "timed out after " + timeout.String()
		}
		if l := firstLine(stderr.String()); l != "" {
			reason += ": " + l
		}
		return benchreport.RSS{Err: fmt.Errorf("chaos -mode rss: %s", reason)}
	}
	b, err := benchreport.ParseRSS(&stdout)
	return benchreport.RSS{Bytes: b, Err: err}
}

// firstLine is the first line of s that says something: compiler errors'
// "# package" headers are passed over.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "# ") {
			return l
		}
	}
	return ""
}
