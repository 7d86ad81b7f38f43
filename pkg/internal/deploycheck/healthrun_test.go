package deploycheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/testenv"
)

// binaries builds the services' binaries from the real repository, once per
// test process: the health checks run them as the images do.
type binaries struct {
	root string // the real repository root
	dir  string
	mu   sync.Mutex
	made map[string]error
}

var (
	binsOnce sync.Once
	bins     *binaries
)

// TestMain stops the shared test services and removes the binaries built
// for the health checks.
func TestMain(m *testing.M) {
	code := testenv.Run(m)
	if bins != nil {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// sharedBinaries returns the process's binaries of the repository at root.
func sharedBinaries(root string) *binaries {
	binsOnce.Do(func() { bins = &binaries{root: root, made: map[string]error{}} })
	return bins
}

// path builds services/<svc> (once) and returns its binary.
func (b *binaries) path(svc string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dir == "" {
		dir, err := os.MkdirTemp("", "deploycheck-bin-")
		if err != nil {
			return "", err
		}
		b.dir = dir
	}
	out := filepath.Join(b.dir, svc)
	err, done := b.made[svc]
	if !done {
		cmd := exec.Command("go", "build", "-o", out, ".")
		cmd.Dir = filepath.Join(b.root, "services", svc)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, e := cmd.CombinedOutput(); e != nil {
			err = fmt.Errorf("go build services/%s: %v\n%s", svc, e, msg)
		}
		b.made[svc] = err
	}
	return out, err
}

// runHealthcheck runs the command line of a CMD health check, whose program
// is the binary of service bin, as the container engine would, but against
// an HTTP server of the test in place of every http:// URL on the
// container's loopback: the command must exit 0 and request the URL's path
// when the server answers 200, and exit non-zero when it answers 503. A
// command line that the binary reads otherwise than as a probe (a URL taken
// for a command, a subcommand missing) fails here.
func runHealthcheck(b *binaries, bin string, test []string) error {
	exe, err := b.path(bin)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	args := make([]string, 0, len(test)-2)
	var want []string
	for _, a := range test[2:] {
		if u, err := url.Parse(a); err == nil && u.Scheme == "http" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost") {
			want = append(want, "GET "+u.Path)
			u.Host = host
			a = u.String()
		}
		args = append(args, a)
	}
	if len(want) == 0 {
		return fmt.Errorf("health check %q probes no http:// URL on the container's loopback", test)
	}
	run := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		// The engine runs the command with the image's environment, not the
		// test's: only what a container would have.
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
		err := cmd.Run()
		return strings.TrimSpace(out.String()), err
	}
	if out, err := run(); err != nil {
		return fmt.Errorf("health check %q (%s binary) fails against a healthy endpoint: %v: %s", test, bin, err, out)
	}
	mu.Lock()
	got := strings.Join(seen, ", ")
	seen, status = nil, http.StatusServiceUnavailable
	mu.Unlock()
	if got != strings.Join(want, ", ") {
		return fmt.Errorf("health check %q (%s binary) requested %q, want %q", test, bin, got, strings.Join(want, ", "))
	}
	if _, err := run(); err == nil {
		return fmt.Errorf("health check %q (%s binary) passes against an endpoint answering 503", test, bin)
	} else if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) {
		return fmt.Errorf("health check %q (%s binary): %v", test, bin, err)
	}
	return nil
}
