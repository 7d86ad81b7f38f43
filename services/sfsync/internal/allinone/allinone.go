// Package allinone runs the detector, the sender and the ticket poller (with
// its sweeper and report) in one process. With NATS_URL unset it starts an
// embedded nats-server with JetStream, its store in DATA_DIR.
package allinone

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/sync/errgroup"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/ticketpoller"
)

// Roles sfsync can run.
const (
	RoleDetector     = "detector"
	RoleSender       = "sender"
	RoleTicketPoller = "ticketpoller"
)

// Config is the all-in-one's configuration: every worker's, and its own.
type Config struct {
	service.Config
	Detector detector.Config
	Sender   sender.Config
	Poller   ticketpoller.Config
	SF       shoppingfeed.Config
	// DataDir holds the embedded broker's store.
	DataDir string `env:"DATA_DIR, default=./data"`
	// Roles picks the workers this process runs.
	Roles string `env:"ROLES, default=detector,sender,ticketpoller"`
	// EmbeddedNATSAddr is where the embedded broker listens (for the nats
	// CLI) when NATS_URL is unset.
	EmbeddedNATSAddr string `env:"EMBEDDED_NATS_ADDR, default=127.0.0.1:4222"`
	// Embedded is true when NATS_URL was unset.
	Embedded bool
}

// RoleList returns the roles, validated.
func (c Config) RoleList() ([]string, error) {
	var out []string
	for _, r := range strings.Split(c.Roles, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if r != RoleDetector && r != RoleSender && r != RoleTicketPoller {
			return nil, config.Invalid("ROLES", "%q is not detector, sender or ticketpoller", r)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, config.Invalid("ROLES", "names no role")
	}
	return out, nil
}

// Load reads the configuration and builds the logger.
func Load(ctx context.Context, lookup config.LookupFunc, stdout io.Writer) (Config, *slog.Logger, error) {
	var cfg Config
	log, _, err := service.Load(ctx, lookup, &cfg, func() *service.Config { return &cfg.Config }, stdout)
	if err != nil {
		return cfg, nil, err
	}
	if v, ok := lookup("NATS_URL"); !ok || v == "" {
		cfg.Embedded = true
		if err := cfg.validateEmbedded(); err != nil {
			return cfg, nil, err
		}
	}
	roles, err := cfg.RoleList()
	if err != nil {
		return cfg, nil, err
	}
	for _, v := range []interface{ Validate() error }{cfg.SF} {
		if err := v.Validate(); err != nil {
			return cfg, nil, err
		}
	}
	if slices.Contains(roles, RoleDetector) {
		if err := cfg.Detector.Validate(); err != nil {
			return cfg, nil, err
		}
	}
	if slices.Contains(roles, RoleSender) {
		if err := cfg.Sender.Validate(); err != nil {
			return cfg, nil, err
		}
	}
	if slices.Contains(roles, RoleTicketPoller) {
		if err := cfg.Poller.Validate(); err != nil {
			return cfg, nil, err
		}
	}
	return cfg, log, nil
}

// validateEmbedded refuses an embedded broker anyone on the network could
// use: one that listens beyond loopback needs credentials of its own.
func (c Config) validateEmbedded() error {
	host, _, err := net.SplitHostPort(c.EmbeddedNATSAddr)
	if err != nil {
		return config.Invalid("EMBEDDED_NATS_ADDR", "%q is not host:port", c.EmbeddedNATSAddr)
	}
	switch {
	case c.NATS.Creds != "":
		return config.Invalid("NATS_CREDS", "a credentials file needs a broker with an operator (NATS_URL); the embedded broker takes NATS_USER/NATS_PASSWORD or NATS_NKEY")
	case c.NATS.TLSCA != "" || c.NATS.TLSCert != "":
		return config.Invalid("NATS_TLS_CA", "NATS_TLS_* secure the connection to a broker at NATS_URL; the embedded broker does not serve TLS (put it behind loopback, or run nats-server)")
	case !loopback(host) && !c.NATS.Authenticated():
		return config.Invalid("EMBEDDED_NATS_ADDR", "%s listens beyond this machine without credentials: anyone reaching it could move the detector's checkpoint; set NATS_USER and NATS_PASSWORD (or NATS_NKEY), or listen on 127.0.0.1", c.EmbeddedNATSAddr)
	}
	return nil
}

// loopback reports whether host (from host:port) is reachable from this
// machine only; an empty host means every interface.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Embedded starts a nats-server with JetStream on addr, its store in dir.
// With credentials in auth (NATS_USER/NATS_PASSWORD or NATS_NKEY) it
// accepts only clients that present them: the app's own workers connect
// with the same configuration.
func Embedded(dir, addr string, auth broker.Config) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, config.Invalid("EMBEDDED_NATS_ADDR", "%q is not host:port", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, config.Invalid("EMBEDDED_NATS_ADDR", "%q has no port number", addr)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	if port > 0 {
		// nats-server only logs a taken port and never becomes ready; say
		// what to do instead.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			there := host
			if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
				there = "127.0.0.1"
			}
			return nil, fmt.Errorf("EMBEDDED_NATS_ADDR %s: cannot listen (%w): if a NATS broker already runs there, set NATS_URL=nats://%s to use it; otherwise set EMBEDDED_NATS_ADDR to a free address", addr, err, net.JoinHostPort(there, portStr))
		}
		ln.Close()
	}
	opts := &server.Options{
		ServerName: "sfsync-embedded", Host: host, Port: port, JetStream: true,
		StoreDir: filepath.Join(dir, "nats"), NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
	}
	switch {
	case auth.User != "":
		opts.Username, opts.Password = auth.User, auth.Password.Reveal()
	case auth.NKey != "":
		pub, err := nkeyPublic(auth.NKey)
		if err != nil {
			return nil, err
		}
		opts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats did not start on EMBEDDED_NATS_ADDR %s (port in use?)", addr)
	}
	return s, nil
}

// App is a running all-in-one.
type App struct {
	Deps     *service.Deps
	Detector *detector.Detector
	Sender   *sender.Sender
	Poller   *ticketpoller.Poller
	nats     *server.Server
	cfg      Config
	roles    []string
}

// NATSURL is the broker the app uses (the embedded one's client URL when embedded).
func (a *App) NATSURL() string {
	if a.nats != nil {
		return a.nats.ClientURL()
	}
	return a.cfg.NATS.URL
}

// Start connects everything and builds the roles.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	roles, err := cfg.RoleList()
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, roles: roles}
	var opts service.Options
	if cfg.Embedded {
		if a.nats, err = Embedded(cfg.DataDir, cfg.EmbeddedNATSAddr, cfg.NATS); err != nil {
			return nil, err
		}
		log.Info("NATS_URL unset: embedded nats-server with JetStream started", "url", a.nats.ClientURL(), "store", filepath.Join(cfg.DataDir, "nats"))
		opts.NATSOptions = []nats.Option{nats.InProcessServer(a.nats)}
	}
	a.Deps, err = service.Open(ctx, "sfsync", cfg.Config, log, opts)
	if err != nil {
		a.shutdownNATS()
		return nil, err
	}
	d := a.Deps
	var client *shoppingfeed.Client
	if slices.Contains(roles, RoleSender) || slices.Contains(roles, RoleTicketPoller) {
		if client, err = d.ShoppingFeed(ctx, cfg.SF); err != nil {
			a.Close()
			return nil, err
		}
	}
	if slices.Contains(roles, RoleDetector) {
		if a.Detector, err = detector.New(ctx, cfg.Detector, detector.Deps{Store: d.Store, NC: d.NC, Log: log.With("role", RoleDetector),
			Registry: d.Ops.Registry(), Instance: d.Instance, LeaseTTL: cfg.LeaseTTL, Keeper: d.Keeper}); err != nil {
			a.Close()
			return nil, err
		}
		d.Ops.AddInfo("detector", func() any { return a.Detector.Role() })
	}
	if slices.Contains(roles, RoleSender) {
		if a.Sender, err = sender.New(cfg.Sender, sender.Deps{Store: d.Store, NC: d.NC, Client: client, Log: log.With("role", RoleSender), DrainTimeout: cfg.ShutdownTimeout,
			Registry: d.Ops.Registry(), Instance: d.Instance, Keeper: d.Keeper, LeaseTTL: cfg.LeaseTTL}); err != nil {
			a.Close()
			return nil, err
		}
	}
	if slices.Contains(roles, RoleTicketPoller) {
		if a.Poller, err = ticketpoller.New(cfg.Poller, ticketpoller.Deps{Store: d.Store, NC: d.NC, SF: client, Log: log.With("role", RoleTicketPoller),
			Registry: d.Ops.Registry(), Instance: d.Instance, DrainTimeout: cfg.ShutdownTimeout, Keeper: d.Keeper}); err != nil {
			a.Close()
			return nil, err
		}
	}
	log.Info("sfsync started", "roles", strings.Join(roles, ","), "embedded_nats", cfg.Embedded)
	return a, nil
}

// Run runs the roles and the ops server until ctx ends, then lets
// in-flight work finish or go back to the broker.
func (a *App) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Deps.Ops.Run(ctx, a.cfg.HTTPAddr) })
	if a.Detector != nil {
		g.Go(func() error { return a.Detector.Run(ctx) })
	}
	if a.Sender != nil {
		g.Go(func() error { return a.Sender.Run(ctx) })
	}
	if a.Poller != nil {
		g.Go(func() error { return a.Poller.Run(ctx) })
		g.Go(func() error { return a.Poller.RunReports(ctx) })
	}
	return g.Wait()
}

// Close drains the connections and stops the embedded broker.
func (a *App) Close() {
	if a.Deps != nil {
		a.Deps.Close()
	}
	a.shutdownNATS()
}

func (a *App) shutdownNATS() {
	if a.nats != nil {
		a.nats.Shutdown()
		a.nats.WaitForShutdown()
	}
}

// nkeyPublic reads an nkey user seed file and returns its public key.
func nkeyPublic(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("NATS_NKEY: %w", err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
	if err != nil {
		return "", fmt.Errorf("NATS_NKEY: %s holds no nkey seed", path)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("NATS_NKEY: %s holds no user seed (SU…)", path)
	}
	return pub, nil
}
