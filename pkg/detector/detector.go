package detector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppolicy"
	"github.com/sfsync/sfsync/pkg/targets"
)

// Detector is one detector replica.
type Detector struct {
	cfg      Config
	store    *prestashop.Store
	js       jetstream.JetStream
	log      *slog.Logger
	m        *metrics
	instance string
	leaseTTL time.Duration
	start    Start

	// shopDB and key name the shop database in dedup ids, the lease and
	// the checkpoint.
	shopDB string
	key    string

	leading atomic.Bool
	shops   *shoppolicy.Cache
	reports *shopReports
	probe   *writerProbe
	keeper  *broker.Keeper
	gauges  *sharedGauges

	mirrorWarned time.Time // tail's goroutine only
}

// Deps are what a detector runs on.
type Deps struct {
	Store    *prestashop.Store
	NC       *nats.Conn
	Log      *slog.Logger
	Registry prometheus.Registerer
	// Instance names this replica in the lease.
	Instance string
	// LeaseTTL must equal the lease bucket's TTL (broker.Settings.LeaseTTL).
	LeaseTTL time.Duration
	// Keeper, when set, is nudged when the broker says a stream or bucket
	// is gone, so that it declares them again at once.
	Keeper *broker.Keeper
}

// New returns a detector; Run starts it.
func New(ctx context.Context, cfg Config, d Deps) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start, _ := ParseStart(cfg.StartFrom)
	// An acknowledgement lost under load fails its publish after 5 s, and
	// the batch is retried from the checkpoint, rather than holding the
	// tail for the whole wait.
	js, err := jetstream.New(d.NC, jetstream.WithPublishAsyncMaxPending(4*cfg.BatchSize+1024),
		jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	db, err := d.Store.DatabaseName(ctx)
	if err != nil {
		return nil, err
	}
	if d.Instance == "" {
		host, _ := os.Hostname()
		d.Instance = fmt.Sprintf("detector-%s-%d", host, os.Getpid())
	}
	if d.LeaseTTL == 0 {
		d.LeaseTTL = 10 * time.Second
	}
	det := &Detector{
		cfg: cfg, store: d.Store, js: js, log: d.Log, m: newMetrics(d.Registry),
		instance: d.Instance, leaseTTL: d.LeaseTTL, start: start,
		shopDB: db, key: Key(db, d.Store.Prefix()), keeper: d.Keeper,
	}
	pc := shoppolicy.Config{TTL: cfg.SettingsTTL, ShippedDelay: cfg.ShippedDelay}
	det.gauges = newSharedGauges(det.Leading, d.Registry)
	if cfg.Targets.ToWebhook() {
		if pc.Hook, err = targets.LoadMapping(cfg.Targets.Hook.MappingFile); err != nil {
			return nil, err
		}
	}
	det.reports = newShopReports(det)
	pc.Loaded = det.reports.loaded
	det.shops = shoppolicy.New(d.Store, pc)
	if cfg.WriterCheck {
		det.probe = &writerProbe{store: d.Store, log: d.Log, nowait: true}
	}
	return det, nil
}

// Key is the lease and checkpoint key of a shop database and table prefix.
func Key(db, prefix string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return '_'
		}, s)
	}
	return "detector." + clean(db) + "." + clean(prefix)
}

// Leading reports whether this replica is the active detector: it holds the
// lease and knows its resume position, so every row committed from now on
// will be published (with START_FROM=now, rows committed before that
// position was read are not).
func (d *Detector) Leading() bool { return d.leading.Load() }

// Role is "leader" or "waiting", for /readyz.
func (d *Detector) Role() string {
	if d.Leading() {
		return "leader"
	}
	return "waiting"
}

// Run waits for the lease, leads until it is lost, and waits again, until
// ctx ends.
func (d *Detector) Run(ctx context.Context) error {
	leases, err := d.js.KeyValue(ctx, broker.LeaseBucket)
	if err != nil {
		return fmt.Errorf("open lease bucket: %w", err)
	}
	cps, err := d.js.KeyValue(ctx, broker.CheckpointBucket)
	if err != nil {
		return fmt.Errorf("open checkpoint bucket: %w", err)
	}
	lease := broker.NewLease(leases, d.key, d.instance, d.leaseTTL, d.log)
	lease.Keeper = d.keeper
	for {
		d.log.Info("detector waiting for the lease", "key", d.key, "instance", d.instance)
		if err := lease.Acquire(ctx); err != nil {
			return nil // ctx ended
		}
		d.log.Info("detector leads", "key", d.key, "instance", d.instance)
		err := d.leadWhileHeld(ctx, lease, cps)
		if ctx.Err() != nil {
			return nil
		}
		d.log.Error("detector stopped leading", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d.leaseTTL / 4):
		}
	}
}

func (d *Detector) leadWhileHeld(ctx context.Context, lease *broker.Lease, cps jetstream.KeyValue) error {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	lost := make(chan struct{})
	var holdErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		holdErr = lease.Hold(lctx, lost)
	}()
	go func() {
		<-lost
		cancel(errors.New("lease lost"))
	}()
	d.m.leaseHeld.Set(1)
	err := d.lead(lctx, &checkpoints{kv: cps, store: d.store, key: d.key})
	d.leading.Store(false)
	d.m.leaseHeld.Set(0)
	// The lag is the leader's to report: a replica that stepped down reads
	// 0, so that max() over replicas is the new leader's, not a stale one.
	d.m.lagRows.Set(0)
	d.m.lagSeconds.Set(0)
	d.m.gapsOpen.Set(0)
	cancel(nil)
	wg.Wait()
	if holdErr != nil {
		return holdErr
	}
	return err
}

// lead runs the tail, the sweeper and the shared gauges while the lease is
// held.
func (d *Detector) lead(ctx context.Context, cps *checkpoints) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.tail(ctx, cps) })
	g.Go(func() error { return d.sweep(ctx) })
	g.Go(func() error { return d.refreshGauges(ctx) })
	return g.Wait()
}
