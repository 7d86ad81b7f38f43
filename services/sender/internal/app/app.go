// Package app wires the sender: configuration, connections, and its loops.
package app

import (
	"context"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/service"
)

// Config is the sender's configuration.
type Config struct {
	service.Config
}

// Run runs the sender until ctx ends.
func Run(ctx context.Context, lookup config.LookupFunc, stdout io.Writer) error {
	var cfg Config
	log, _, err := service.Load(ctx, lookup, &cfg, func() *service.Config { return &cfg.Config }, stdout)
	if err != nil {
		return err
	}
	log.Info("starting", "service", "sender", "config", cfg)
	deps, err := service.Open(ctx, "sender", cfg.Config, log, service.Options{})
	if err != nil {
		return err
	}
	defer deps.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return deps.Ops.Run(ctx, cfg.HTTPAddr) })
	return g.Wait()
}
