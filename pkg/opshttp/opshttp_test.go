package opshttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/logging"
	"github.com/sfsync/sfsync/pkg/opshttp"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
	}
	return resp.StatusCode, body
}

// TestReadyzFollowsTheDatabase stops a private MySQL server under a running
// readiness check: /readyz turns 503 while it is down and 200 once it is back.
func TestReadyzFollowsTheDatabase(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartPrivateMySQL(t)
	db, err := prestashop.Open(ctx, prestashop.Config{DSN: config.Secret(srv.RootDSN())})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := prestashop.New(db, "ps_")
	b := testenv.NATS(t)
	nc, _ := b.Connect(t)

	ops := opshttp.New(logging.Discard())
	ops.AddCheck("database", store.Ping)
	ops.AddCheck("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return io.ErrUnexpectedEOF
		}
		return nil
	})
	ops.AddInfo("role", func() any { return "leader" })
	hs := httptest.NewServer(ops.Handler())
	defer hs.Close()

	if code, body := get(t, hs.URL+"/readyz"); code != http.StatusOK || body["ready"] != true {
		t.Fatalf("readyz with everything up: %d %v", code, body)
	}
	srv.Stop(false)
	code, body := get(t, hs.URL+"/readyz")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the database down: %d %v", code, body)
	}
	checks := body["checks"].(map[string]any)
	if checks["database"].(map[string]any)["ok"] != false || checks["nats"].(map[string]any)["ok"] != true {
		t.Fatalf("checks %v", checks)
	}
	if code, _ := get(t, hs.URL+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz while the database is down: %d, want 200 (the process is alive)", code)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := get(t, hs.URL+"/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz still %d after the database came back", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	ops := opshttp.New(logging.Discard())
	hs := httptest.NewServer(ops.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "go_goroutines") {
		t.Fatalf("metrics: %d %.200s", resp.StatusCode, b)
	}
}

// TestMetricsCarryBuildInfo: every process's /metrics says which build runs.
func TestMetricsCarryBuildInfo(t *testing.T) {
	srv := httptest.NewServer(opshttp.New(logging.Discard()).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var line string
	for l := range strings.Lines(string(b)) {
		if strings.HasPrefix(l, "sfsync_build_info{") {
			line = strings.TrimSpace(l)
		}
	}
	for _, want := range []string{`version="`, `commit="`, `goversion="go`, "} 1"} {
		if !strings.Contains(line, want) {
			t.Fatalf("sfsync_build_info line %q lacks %s; /metrics:\n%s", line, want, b)
		}
	}
}
