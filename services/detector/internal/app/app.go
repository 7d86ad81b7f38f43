// Package app wires the detector: configuration, connections, the tail and
// the sweeper, and the ops server.
package app

import (
	"context"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/service"
)

// Config is the detector's configuration.
type Config struct {
	service.Config
	Detector detector.Config
}

// Run runs the detector until ctx ends.
func Run(ctx context.Context, lookup config.LookupFunc, stdout io.Writer) error {
	var cfg Config
	log, _, err := service.Load(ctx, lookup, &cfg, func() *service.Config { return &cfg.Config }, stdout)
	if err != nil {
		return err
	}
	if err := cfg.Detector.Validate(); err != nil {
		return err
	}
	log.Info("starting", "service", "detector", "config", cfg)
	deps, err := service.Open(ctx, "detector", cfg.Config, log, service.Options{})
	if err != nil {
		return err
	}
	defer deps.Close()
	det, err := detector.New(ctx, cfg.Detector, detector.Deps{
		Store: deps.Store, NC: deps.NC, Log: log, Registry: deps.Ops.Registry(),
		Instance: deps.Instance, LeaseTTL: cfg.LeaseTTL, Keeper: deps.Keeper,
	})
	if err != nil {
		return err
	}
	deps.Ops.AddInfo("role", func() any { return det.Role() })
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return deps.Ops.Run(ctx, cfg.HTTPAddr) })
	g.Go(func() error { return det.Run(ctx) })
	return g.Wait()
}
