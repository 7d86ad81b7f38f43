package shoppingfeed_test

import (
	"bytes"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/sfsandbox/sfsandboxtest"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

const (
	token   config.Secret = sfsandboxtest.Token
	storeID               = "1001"
)

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	sb   *sfsandbox.Server
	c    *shoppingfeed.Client
	reg  *prometheus.Registry
	logs *syncBuffer
}

// setup starts a sandbox, changed by sbCfg.
func setup(t *testing.T, sbCfg func(*sfsandbox.Config)) *env {
	t.Helper()
	cfg := sfsandboxtest.Config()
	if sbCfg != nil {
		sbCfg(&cfg)
	}
	sb := sfsandboxtest.New(t, cfg)
	return &env{sb: sb}
}

// client builds a client of e's sandbox (changed by cCfg) with fast
// retries, no client-side limit and debug logs captured.
func (e *env) client(t *testing.T, cCfg func(*shoppingfeed.Config), opts ...shoppingfeed.Option) *env {
	t.Helper()
	cc := shoppingfeed.Config{
		BaseURL:    e.sb.URL,
		Timeout:    2 * time.Second,
		RateLimit:  "none",
		MaxRetries: 3,
	}
	if cCfg != nil {
		cCfg(&cc)
	}
	e.reg = prometheus.NewRegistry()
	e.logs = &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts = append([]shoppingfeed.Option{shoppingfeed.WithBackoff(time.Millisecond, 5*time.Millisecond)}, opts...)
	c, err := shoppingfeed.New(cc, log, e.reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.c = c
	return e
}

func newEnv(t *testing.T, sbCfg func(*sfsandbox.Config), cCfg func(*shoppingfeed.Config), opts ...shoppingfeed.Option) *env {
	t.Helper()
	return setup(t, sbCfg).client(t, cCfg, opts...)
}

// statuses returns the status of every request the sandbox answered.
func (e *env) statuses() []int {
	var out []int
	for _, r := range e.sb.Requests() {
		out = append(out, r.Status)
	}
	return out
}

// metric returns the value of the counter, or the sample count of the
// histogram, name{labels} in reg (0 when absent).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if !maps.Equal(got, labels) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
		}
	}
	return 0
}

func ship(id int64) shoppingfeed.OrderOperation {
	return shoppingfeed.OrderOperation{Order: shoppingfeed.OrderRef{ID: id}, Carrier: "Colissimo", TrackingNumber: "6A" + time.Now().Format("150405")}
}

// waitResolved polls the batch until no ticket is pending.
func waitResolved(t *testing.T, e *env, batchID string) shoppingfeed.TicketList {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := e.c.BatchTickets(t.Context(), token, storeID, batchID)
		if err != nil {
			t.Fatalf("BatchTickets: %v", err)
		}
		if !list.Processing {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s still processing after 5s: %+v", batchID, list)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func shoppingfeedSecret(s string) config.Secret { return config.Secret(s) }
