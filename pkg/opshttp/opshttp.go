// Package opshttp serves what operators and orchestrators ask a service:
// /healthz (the process answers), /readyz (its dependencies answer) and
// /metrics (Prometheus).
package opshttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sfsync/sfsync/pkg/buildinfo"
)

// Check reports whether one dependency is usable; nil means ready.
type Check func(ctx context.Context) error

// Server is the operations HTTP server of one process.
type Server struct {
	log      *slog.Logger
	registry *prometheus.Registry

	mu     sync.Mutex
	checks map[string]Check
	info   map[string]func() any
}

// New returns a server whose registry already holds the Go and process collectors.
func New(log *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	return &Server{log: log, registry: reg, checks: map[string]Check{}, info: map[string]func() any{}}
}

// Registry is where the process registers its metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// AddCheck adds a readiness check under name.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// AddInfo adds a value shown in /readyz's body (e.g. "leader" or "waiting")
// that does not decide readiness.
func (s *Server) AddInfo(name string, f func() any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info[name] = f
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	return mux
}

type checkResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	sort.Strings(names)
	checks := make([]Check, len(names))
	for i, n := range names {
		checks[i] = s.checks[n]
	}
	info := map[string]any{}
	for n, f := range s.info {
		info[n] = f()
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	results := make([]checkResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c(ctx); err != nil {
				results[i] = checkResult{Error: err.Error()}
				return
			}
			results[i] = checkResult{OK: true}
		}()
	}
	wg.Wait()
	status := http.StatusOK
	body := map[string]any{}
	byName := map[string]checkResult{}
	for i, n := range names {
		byName[n] = results[i]
		if !results[i].OK {
			status = http.StatusServiceUnavailable
		}
	}
	body["checks"] = byName
	if len(info) > 0 {
		body["info"] = info
	}
	body["ready"] = status == http.StatusOK
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Run serves on addr until ctx ends, then shuts down within 5 s. An empty
// addr serves nothing and returns when ctx ends.
func (s *Server) Run(ctx context.Context, addr string) error {
	if addr == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("ops http listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve ops http: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down ops http: %w", err)
	}
	return nil
}
