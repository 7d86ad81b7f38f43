package sfsandbox

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server is a sandbox listening on a loopback port, for tests and tools.
type Server struct {
	*Sandbox
	// URL is the base URL to give a client ("http://127.0.0.1:port").
	URL string
	srv *http.Server
}

// Start serves a new sandbox for cfg on a free loopback port until Close.
func Start(cfg Config, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sfsandbox: listen: %w", err)
	}
	sb := New(cfg, log)
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &Server{Sandbox: sb, URL: "http://" + ln.Addr().String(), srv: srv}, nil
}

// Close stops listening and closes every connection at once.
func (s *Server) Close() error { return s.srv.Close() }
