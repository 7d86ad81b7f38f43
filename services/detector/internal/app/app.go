// Package app wires the detector: configuration, connections, the tail and
// the sweeper, and the ops server.
package app

import (
	"context"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/sfsync/sfsync/pkg/buildinfo"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/service"
)

// Config is the detector's configuration.
type Config struct {
	service.Config
	Detector detector.Config
}

const summary = "reads the shop's order history and publishes every order change to NATS (one leader among replicas)"

// Run runs the detector until ctx ends.
func Run(ctx context.Context, args []string, lookup config.LookupFunc, stdout io.Writer) error {
	var cfg Config
	if err := buildinfo.Args("detector", summary, args, &cfg, stdout); err != nil {
		return err
	}
	log, _, err := service.Load(ctx, lookup, &cfg, func() *service.Config { return &cfg.Config }, stdout)
	if err != nil {
		return err
	}
	if err := cfg.Detector.Validate(); err != nil {
		return err
	}
	log.Info("starting", "service", "detector", "version", buildinfo.Get().Version, "config", config.Describe(&cfg))
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
