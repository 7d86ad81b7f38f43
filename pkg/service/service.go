// Package service is the start-up wiring every sfsync worker shares: the
// common configuration, the logger, the shop database (migrated), the NATS
// connection (streams, consumers and buckets declared) and the ops HTTP
// server, with an orderly Close.
package service

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/logging"
	"github.com/sfsync/sfsync/pkg/opshttp"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/ratebudget"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
)

// Config is the configuration every worker shares.
type Config struct {
	Log  logging.Config
	NATS broker.Config
	DB   prestashop.Config
	// HTTPAddr serves /healthz, /readyz and /metrics; empty disables it.
	HTTPAddr string `env:"HTTP_ADDR, default=:8080"`
	// ShutdownTimeout bounds how long in-flight work may take after SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT, default=25s"`
	// LeaseTTL is the detector lease's length (and the lease bucket's TTL).
	LeaseTTL time.Duration `env:"LEASE_TTL, default=10s"`
	// Migrate is auto (bring the schema up to date at start when something
	// is missing, which needs CREATE and ALTER) or off (exit instead, naming
	// `sfsync migrate`).
	Migrate string `env:"MIGRATE, default=auto"`
}

// Validate checks the rules that span variables.
func (c Config) Validate() error {
	if err := c.NATS.Validate(); err != nil {
		return err
	}
	if err := c.DB.Validate(); err != nil {
		return err
	}
	if c.ShutdownTimeout <= 0 {
		return config.Invalid("SHUTDOWN_TIMEOUT", "must be positive")
	}
	if c.LeaseTTL < time.Second {
		return config.Invalid("LEASE_TTL", "%s is shorter than 1s", c.LeaseTTL)
	}
	if c.Migrate != MigrateAuto && c.Migrate != MigrateOff {
		return config.Invalid("MIGRATE", "%q is not auto or off", c.Migrate)
	}
	return nil
}

// MIGRATE values.
const (
	MigrateAuto = "auto"
	MigrateOff  = "off"
)

// ensureSchema checks the schema and, when something is missing and mode
// allows it, migrates. The runtime user needs no more than SELECT for the
// check: CREATE and ALTER only when there is something to add.
func ensureSchema(ctx context.Context, store *prestashop.Store, mode string, log *slog.Logger) error {
	st, err := store.CheckSchema(ctx)
	if err != nil {
		return err
	}
	if len(st.ShopMissing) > 0 {
		return fmt.Errorf("the shop database lacks %s: is this PrestaShop's database (DB_PREFIX) with the Shopping Feed module installed?", strings.Join(st.ShopMissing, ", "))
	}
	if len(st.Missing) == 0 {
		return nil
	}
	missing := strings.Join(st.Missing, ", ")
	if mode == MigrateOff {
		return fmt.Errorf("the schema lacks %s and MIGRATE=off: run `sfsync migrate` once as a user allowed to CREATE and ALTER", missing)
	}
	log.Info("schema incomplete, migrating", "missing", missing)
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("the schema lacks %s and this user cannot add it (%w): run `sfsync migrate` once as a user allowed to CREATE and ALTER, or grant them", missing, err)
	}
	return nil
}

// watchSchema checks the schema every period while the process runs, in
// one process at a time (a turn taken in sfsync_meta): the module's
// re-install drops sfsync's indexes on the module's tables (and would reset
// its action ENUM), so what was there at start may go. With MIGRATE=auto
// what is missing is added back; otherwise, or when this user may not, the
// log says what is missing and names `sfsync migrate`.
func watchSchema(ctx context.Context, store *prestashop.Store, mode string, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mine, err := store.TakeTurn(ctx, "schema_watch", every)
		if err != nil || !mine {
			if err != nil && ctx.Err() == nil {
				log.Warn("schema watch: take turn", "err", err)
			}
			continue
		}
		st, err := store.CheckSchema(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("schema watch: check", "err", err)
			}
			continue
		}
		if len(st.Missing) == 0 {
			continue
		}
		missing := strings.Join(st.Missing, ", ")
		if mode != MigrateAuto {
			log.Warn("the schema lost what sfsync needs (the Shopping Feed module re-installed?); run `sfsync migrate`", "missing", missing)
			continue
		}
		if err := store.Migrate(ctx); err != nil {
			log.Warn("the schema lost what sfsync needs and this user cannot add it; run `sfsync migrate`", "missing", missing, "err", err)
			continue
		}
		log.Info("schema healed", "added", missing)
	}
}

// Load reads cfg (a struct that embeds or holds a service.Config) from lookup
// and builds the logger from its Log part.
func Load(ctx context.Context, lookup config.LookupFunc, cfg any, base func() *Config, stdout io.Writer) (*slog.Logger, *slog.LevelVar, error) {
	if err := config.Load(ctx, lookup, cfg); err != nil {
		return nil, nil, err
	}
	log, lv, err := logging.New(stdout, base().Log)
	if err != nil {
		return nil, nil, err
	}
	if err := base().Validate(); err != nil {
		return nil, nil, err
	}
	return log, lv, nil
}

// Deps are the connections a worker runs on.
type Deps struct {
	Log   *slog.Logger
	DB    *sql.DB
	Store *prestashop.Store
	NC    *nats.Conn
	JS    jetstream.JetStream
	Ops   *opshttp.Server
	// Instance names this process in claims and logs (host name and pid).
	Instance string
	// Keeper declares the streams, consumers and buckets again when the
	// broker loses them; it runs from Open to Close. Workers nudge it.
	Keeper      *broker.Keeper
	stopKeeper  func()
	stopWatcher func()
}

// Options change how Open connects.
type Options struct {
	// NATSOptions are added to the connection (e.g. nats.InProcessServer).
	NATSOptions []nats.Option
	// KeepInterval is how often the keeper checks the broker (default 5s).
	KeepInterval time.Duration
	// SchemaInterval is how often the schema is checked while running
	// (default 1m), by one process at a time.
	SchemaInterval time.Duration
}

// Open connects to the database (and migrates it when MIGRATE allows and
// something is missing) and to NATS (and declares
// the streams), and registers their readiness checks.
func Open(ctx context.Context, name string, cfg Config, log *slog.Logger, opts Options) (*Deps, error) {
	host, _ := os.Hostname()
	d := &Deps{Log: log, Ops: opshttp.New(log), Instance: fmt.Sprintf("%s-%s-%d", name, host, os.Getpid())}
	db, err := prestashop.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	d.DB = db
	// go_sql_* show the pool: open, in use, idle, waits (a leak shows as a
	// growing open count at rest).
	d.Ops.Registry().MustRegister(collectors.NewDBStatsCollector(db, "shop"))
	d.Store = prestashop.New(db, cfg.DB.Prefix)
	if err := ensureSchema(ctx, d.Store, cfg.Migrate, log); err != nil {
		d.Close()
		return nil, err
	}
	every := opts.SchemaInterval
	if every <= 0 {
		every = time.Minute
	}
	wctx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	watched := make(chan struct{})
	go func() { defer close(watched); watchSchema(wctx, d.Store, cfg.Migrate, every, log) }()
	d.stopWatcher = func() { stopWatch(); <-watched }
	nc, err := broker.Connect(cfg.NATS, "sfsync-"+name, log, opts.NATSOptions...)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.NC = nc
	js, err := jetstream.New(nc)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	d.JS = js
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	settings := broker.Settings{Replicas: cfg.NATS.Replicas, LeaseTTL: cfg.LeaseTTL}
	if err := declareWithRetry(dctx, js, settings, log); err != nil {
		d.Close()
		return nil, err
	}
	d.Keeper = broker.NewKeeper(js, settings, log)
	if opts.KeepInterval > 0 {
		d.Keeper.Interval = opts.KeepInterval
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	kept := make(chan struct{})
	go func() { defer close(kept); _ = d.Keeper.Run(kctx) }()
	d.stopKeeper = func() { stop(); <-kept }
	d.Ops.AddCheck("database", d.Store.Ping)
	d.Ops.AddCheck("nats", func(ctx context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats: %s", nc.Status())
		}
		return nil
	})
	return d, nil
}

// declareWithRetry waits for a broker that is still starting (or not yet
// reachable) instead of failing the process at once.
func declareWithRetry(ctx context.Context, js jetstream.JetStream, s broker.Settings, log *slog.Logger) error {
	for wait := 200 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		err := broker.Declare(ctx, js, s)
		if err == nil {
			return nil
		}
		log.Warn("declare streams, retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// ShoppingFeed returns a Shopping Feed client whose requests share each
// token's budget (SF_RATE_LIMIT) with every other sender and ticket poller
// on the broker, and whose metrics go to the ops registry.
func (d *Deps) ShoppingFeed(ctx context.Context, cfg shoppingfeed.Config) (*shoppingfeed.Client, error) {
	var opts []shoppingfeed.Option
	if n, per := cfg.Rate(); n > 0 {
		kv, err := d.JS.KeyValue(ctx, broker.BudgetBucket)
		if err != nil {
			return nil, fmt.Errorf("open the rate budget bucket: %w", err)
		}
		opts = append(opts, shoppingfeed.WithLimiter(ratebudget.New(kv, n, per, d.Log, ratebudget.NewMetrics(d.Ops.Registry()))))
	}
	return shoppingfeed.New(cfg, d.Log, d.Ops.Registry(), opts...)
}

// Close stops the keeper, drains NATS and closes the database.
func (d *Deps) Close() {
	if d.stopWatcher != nil {
		d.stopWatcher()
	}
	if d.stopKeeper != nil {
		d.stopKeeper()
	}
	if d.NC != nil {
		_ = d.NC.Drain()
		for i := 0; i < 100 && !d.NC.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		d.NC.Close()
	}
	if d.DB != nil {
		_ = d.DB.Close()
	}
}
