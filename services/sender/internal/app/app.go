// Package app wires the sender: configuration, connections, the Shopping
// Feed client, the two consume lanes and the ops server.
package app

import (
	"context"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/sfsync/sfsync/pkg/buildinfo"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// Config is the sender's configuration.
type Config struct {
	service.Config
	Sender sender.Config
	SF     shoppingfeed.Config
}

const summary = "sends the order changes to Shopping Feed (or a webhook) and records each outcome in the shop's database"

// Run runs the sender until ctx ends.
func Run(ctx context.Context, args []string, lookup config.LookupFunc, stdout io.Writer) error {
	var cfg Config
	if err := buildinfo.Args("sender", summary, args, &cfg, stdout); err != nil {
		return err
	}
	log, _, err := service.Load(ctx, lookup, &cfg, func() *service.Config { return &cfg.Config }, stdout)
	if err != nil {
		return err
	}
	if err := cfg.Sender.Validate(); err != nil {
		return err
	}
	if err := cfg.SF.Validate(); err != nil {
		return err
	}
	log.Info("starting", "service", "sender", "version", buildinfo.Get().Version, "config", config.Describe(&cfg))
	deps, err := service.Open(ctx, "sender", cfg.Config, log, service.Options{})
	if err != nil {
		return err
	}
	defer deps.Close()
	client, err := deps.ShoppingFeed(ctx, cfg.SF)
	if err != nil {
		return err
	}
	s, err := sender.New(cfg.Sender, sender.Deps{Store: deps.Store, NC: deps.NC, Client: client, Log: log, Registry: deps.Ops.Registry(), Instance: deps.Instance, DrainTimeout: cfg.ShutdownTimeout, Keeper: deps.Keeper, LeaseTTL: cfg.LeaseTTL})
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return deps.Ops.Run(ctx, cfg.HTTPAddr) })
	g.Go(func() error { return s.Run(ctx) })
	return g.Wait()
}
