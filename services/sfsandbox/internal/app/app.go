// Package app wires the sfsandbox binary: configuration, logger, and the
// HTTP server around pkg/sfsandbox.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sfsync/sfsync/pkg/buildinfo"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/logging"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
)

// Config is the binary's configuration: the sandbox's SANDBOX_* variables,
// logging, and how long shutdown may take.
type Config struct {
	Log     logging.Config
	Sandbox sfsandbox.Config
	// ShutdownTimeout bounds how long in-flight requests may take after
	// SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT, default=10s"`
}

const summary = "serves a simulated Shopping Feed API for tests, demos and trying a configuration"

// Run serves the sandbox on SANDBOX_ADDR until ctx ends.
func Run(ctx context.Context, args []string, lookup config.LookupFunc, stdout io.Writer) error {
	var cfg Config
	if err := buildinfo.Args("sfsandbox", summary, args, &cfg, stdout); err != nil {
		return err
	}
	if err := config.Load(ctx, lookup, &cfg); err != nil {
		return err
	}
	log, _, err := logging.New(stdout, cfg.Log)
	if err != nil {
		return err
	}
	if err := cfg.Sandbox.Validate(); err != nil {
		return err
	}
	if cfg.ShutdownTimeout <= 0 {
		return config.Invalid("SHUTDOWN_TIMEOUT", "must be positive")
	}
	ln, err := net.Listen("tcp", cfg.Sandbox.Addr)
	if err != nil {
		return fmt.Errorf("listen on SANDBOX_ADDR %s: %w", cfg.Sandbox.Addr, err)
	}
	log.Info("starting", "service", "sfsandbox", "version", buildinfo.Get().Version, "config", config.Describe(&cfg))
	return serve(ctx, ln, cfg, log)
}

func serve(ctx context.Context, ln net.Listener, cfg Config, log *slog.Logger) error {
	sb := sfsandbox.New(cfg.Sandbox, log)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.Handle("/", sb.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}
