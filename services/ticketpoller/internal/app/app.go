// Package app wires the ticketpoller: configuration, connections, the
// Shopping Feed client, the ticket checks, the report loop and the ops
// server.
package app

import (
	"context"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/sfsync/sfsync/pkg/buildinfo"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/ticketpoller"
)

// Config is the ticketpoller's configuration.
type Config struct {
	service.Config
	Poller ticketpoller.Config
	SF     shoppingfeed.Config
}

const summary = "follows Shopping Feed's tickets until each batch is settled, and mails the failure report"

// Run runs the ticketpoller until ctx ends. Then it stops fetching, lets
// the checks in flight finish within SHUTDOWN_TIMEOUT, drains NATS and
// closes the database.
func Run(ctx context.Context, args []string, lookup config.LookupFunc, stdout io.Writer) error {
	var cfg Config
	if err := buildinfo.Args("ticketpoller", summary, args, &cfg, stdout); err != nil {
		return err
	}
	log, _, err := service.Load(ctx, lookup, &cfg, func() *service.Config { return &cfg.Config }, stdout)
	if err != nil {
		return err
	}
	if err := cfg.Poller.Validate(); err != nil {
		return err
	}
	if err := cfg.SF.Validate(); err != nil {
		return err
	}
	log.Info("starting", "service", "ticketpoller", "version", buildinfo.Get().Version, "config", config.Describe(&cfg))
	deps, err := service.Open(ctx, "ticketpoller", cfg.Config, log, service.Options{})
	if err != nil {
		return err
	}
	defer deps.Close()
	client, err := deps.ShoppingFeed(ctx, cfg.SF)
	if err != nil {
		return err
	}
	p, err := ticketpoller.New(cfg.Poller, ticketpoller.Deps{
		Store: deps.Store, NC: deps.NC, SF: client, Log: log, Registry: deps.Ops.Registry(),
		Instance: deps.Instance, DrainTimeout: cfg.ShutdownTimeout, Keeper: deps.Keeper,
	})
	if err != nil {
		return err
	}
	reports := "log"
	if cfg.Poller.SMTP.Set() {
		reports = "smtp"
	}
	deps.Ops.AddInfo("reports", func() any { return reports })
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return deps.Ops.Run(ctx, cfg.HTTPAddr) })
	g.Go(func() error { return p.Run(ctx) })
	g.Go(func() error { return p.RunReports(ctx) })
	return g.Wait()
}
