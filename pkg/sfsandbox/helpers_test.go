package sfsandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	tokA = "token-a" // owns 1001 and 1002
	tokB = "token-b" // owns 2001
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testConfig() Config {
	return Config{
		Stores: Tokens{
			{Token: tokA, StoreIDs: []int64{1001, 1002}},
			{Token: tokB, StoreIDs: []int64{2001}},
		},
		Accounts: Accounts{{Username: "merchant", Password: "pw", Token: tokA}},
		Seed:     42,
	}
}

type fixture struct {
	sb    *Sandbox
	h     http.Handler
	clock *fakeClock
}

// newFixture returns a sandbox on a fake clock starting at a whole second.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	sb := New(cfg, nil)
	clock := &fakeClock{t: time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)}
	sb.now = clock.Now
	return &fixture{sb: sb, h: sb.Handler(), clock: clock}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v\n%s", err, a.body)
	}
	return m
}

// problem checks that a is a problem+json answer with status and a detail
// containing want, and returns the detail.
func (a answer) problem(t testing.TB, status int, want string) string {
	t.Helper()
	if a.status != status {
		t.Fatalf("status = %d, want %d; body %s", a.status, status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	m := a.json(t)
	if m["status"] != float64(status) || m["title"] != http.StatusText(status) || m["type"] == "" {
		t.Errorf("problem fields: %v", m)
	}
	d, _ := m["detail"].(string)
	if !strings.Contains(d, want) {
		t.Errorf("detail %q does not contain %q", d, want)
	}
	return d
}

func (f *fixture) do(t testing.TB, method, path, token, body string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return answer{status: rec.Code, header: rec.Result().Header, body: rec.Body.String()}
}

// post sends an operation and returns the batch id.
func (f *fixture) post(t testing.TB, token string, store, op, body string) string {
	t.Helper()
	a := f.do(t, "POST", "/v1/store/"+store+"/order/"+op, token, body)
	if a.status != http.StatusAccepted {
		t.Fatalf("POST %s: status %d, body %s", op, a.status, a.body)
	}
	id, _ := a.json(t)["id"].(string)
	if id == "" {
		t.Fatalf("POST %s: no batch id in %s", op, a.body)
	}
	return id
}

// tickets returns the batch's tickets (one page of 200) and meta.processing.
func (f *fixture) tickets(t testing.TB, token, store, batch string) ([]map[string]any, bool) {
	t.Helper()
	a := f.do(t, "GET", "/v1/store/"+store+"/ticket?batchId="+batch+"&limit=200", token, "")
	if a.status != http.StatusOK {
		t.Fatalf("GET tickets: status %d, body %s", a.status, a.body)
	}
	m := a.json(t)
	var out []map[string]any
	for _, x := range m["_embedded"].(map[string]any)["ticket"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out, m["meta"].(map[string]any)["processing"].(bool)
}
