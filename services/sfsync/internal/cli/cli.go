// Package cli dispatches sfsync's commands: run (the default), status,
// retry, replay, check, migrate, seed, probe and demo.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sfsync/sfsync/pkg/buildinfo"
	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/services/sfsync/internal/allinone"
	"github.com/sfsync/sfsync/services/sfsync/internal/demo"
	"github.com/sfsync/sfsync/services/sfsync/internal/ops"
)

// ExitError carries a command's exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return "exit " + strconv.Itoa(e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

const usage = `sfsync keeps marketplaces in step with a PrestaShop shop's orders.

usage: sfsync [command] [flags]

commands:
  run                    run the detector, sender and ticket poller (the default)
  status [--json]        tasks by state per shop, tickets, failures, detector, backlog
  retry --order ID       re-queue the failed updates of one order
  retry --failed         re-queue every failed update
  retry --dead           send the messages given up on (dead letters) again
  replay --from id:N|time:RFC3339
                         move the detector back to re-read the order history
  check [--json]         check schema, configuration, conflict guard and tokens
  migrate                bring sfsync's tables, columns and indexes up to date in
                         MYSQL_DSN (as a user allowed to CREATE and ALTER), then exit
  seed                   create PrestaShop's tables and demo data in MYSQL_DSN
  probe URL              exit 0 when URL answers 2xx (container health checks)
  demo                   the end-to-end demo (make demo)
  version                print the version, commit and build date (also --version)

Each command answers --help. Configuration comes from the environment;
sfsync run --help lists its variables, README.md says what they do.

exit codes: 0 ok, 1 error, 2 usage, 3 nothing to retry, 4 check found a blocker`

// Run runs the command in args.
func Run(ctx context.Context, args []string, lookup config.LookupFunc, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if cmd != "status" && cmd != "retry" && cmd != "replay" && cmd != "check" && cmd != "probe" && len(args) > 0 {
		switch args[0] {
		case "-version", "--version":
			fmt.Fprintln(stdout, "sfsync", buildinfo.Get())
			return nil
		case "-h", "-help", "--help":
			if cmd == "run" {
				fmt.Fprint(stdout, buildinfo.Usage("sfsync run", "runs the detector, the sender and the ticket poller in one process", &allinone.Config{}))
			} else {
				fmt.Fprintln(stdout, usage)
			}
			return nil
		}
		return &ExitError{Code: ops.ExitUsage, Err: fmt.Errorf("%s takes no argument, got %q (sfsync help lists the commands)", cmd, args[0])}
	}
	switch cmd {
	case "run":
		return runAll(ctx, lookup, stdout)
	case "status", "retry", "replay", "check":
		return operate(ctx, cmd, args, lookup, stdout, stderr)
	case "migrate":
		return migrate(ctx, lookup, stdout)
	case "seed":
		return seed(ctx, lookup, stdout)
	case "probe":
		return probe(ctx, args, stdout)
	case "demo":
		dsn, _ := lookup("MYSQL_DSN")
		if err := demo.Run(ctx, demo.Options{MySQLDSN: dsn, Out: stdout}); err != nil {
			return &ExitError{Code: ops.ExitError, Err: fmt.Errorf("demo: %w", err)}
		}
		return nil
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "sfsync", buildinfo.Get())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return &ExitError{Code: ops.ExitUsage, Err: fmt.Errorf("unknown command %q", cmd)}
}

func runAll(ctx context.Context, lookup config.LookupFunc, stdout io.Writer) error {
	cfg, log, err := allinone.Load(ctx, lookup, stdout)
	if err != nil {
		return err
	}
	log.Info("starting", "service", "sfsync", "version", buildinfo.Get().Version, "config", config.Describe(&cfg))
	app, err := allinone.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	err = app.Run(ctx)
	log.Info("stopped")
	return err
}

func operate(ctx context.Context, cmd string, args []string, lookup config.LookupFunc, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	order := fs.Uint("order", 0, "retry: the order id")
	all := fs.Bool("failed", false, "retry: every failed update")
	dead := fs.Bool("dead", false, "retry: every dead letter, sent again to where it came from")
	from := fs.String("from", "", "replay: id:N or time:RFC3339")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			return nil
		}
		fmt.Fprintln(stderr, usage)
		return &ExitError{Code: ops.ExitUsage, Err: err}
	}
	if fs.NArg() > 0 {
		return &ExitError{Code: ops.ExitUsage, Err: fmt.Errorf("%s: unexpected argument %q", cmd, fs.Arg(0))}
	}
	usageErr := func(msg string) error { return &ExitError{Code: ops.ExitUsage, Err: errors.New(msg)} }
	switch {
	case cmd == "retry" && *dead && (*order != 0 || *all):
		return usageErr("retry --dead goes alone")
	case cmd == "retry" && !*dead && (*order == 0) == !*all:
		return usageErr("retry needs --order ID, --failed or --dead")
	case cmd == "replay" && *from == "":
		return usageErr("replay needs --from id:N or --from time:RFC3339")
	}
	cfg, _, err := allinone.Load(ctx, lookup, io.Discard)
	if err != nil {
		return err
	}
	url := cfg.NATS.URL
	if cfg.Embedded {
		url = "nats://" + cfg.EmbeddedNATSAddr
	}
	// The same credentials and TLS as the workers (NATS_CREDS, NATS_USER,
	// NATS_NKEY, NATS_TLS_*).
	natsOpts, err := cfg.NATS.Options()
	if err != nil {
		return err
	}
	env, closeEnv, err := ops.Connect(ctx, prestashop.Config{DSN: cfg.DB.DSN, Prefix: cfg.DB.Prefix}, url, natsOpts)
	if err != nil {
		return err
	}
	defer closeEnv()
	env.Out, env.JSON = stdout, *asJSON
	switch cmd {
	case "status":
		return env.PrintStatus(ctx)
	case "retry":
		if *dead {
			n, err := env.RetryDead(ctx)
			if errors.Is(err, ops.ErrNothing) {
				fmt.Fprintln(stdout, "no dead letter to send again")
				return &ExitError{Code: ops.ExitNothing}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "sent %d dead letters again to where they came from\n", n)
			return nil
		}
		orders, err := env.Retry(ctx, uint32(*order))
		if errors.Is(err, ops.ErrNothing) {
			fmt.Fprintln(stdout, "no failed update to retry")
			return &ExitError{Code: ops.ExitNothing}
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-queued %d orders: %v\n", len(orders), orders)
		return nil
	case "replay":
		pos, err := env.Replay(ctx, *from)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "detector checkpoint moved to position %d: order_history rows after it are read again (events already in the stream within its dedup window are not published twice)\n", pos)
		return nil
	default: // check
		client, err := shoppingfeed.New(cfg.SF, nil, nil)
		if err != nil {
			return err
		}
		fs, err := env.Check(ctx, client, cfg.Sender.SFToken, cfg.Sender.SFStoreID)
		if err != nil {
			return err
		}
		blocking, err := env.PrintCheck(fs)
		if err != nil {
			return err
		}
		if blocking {
			return &ExitError{Code: ops.ExitBlocking}
		}
		return nil
	}
}

// migrate applies what the schema lacks and says what it added.
func migrate(ctx context.Context, lookup config.LookupFunc, stdout io.Writer) error {
	var cfg prestashop.Config
	if err := config.Load(ctx, lookup, &cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	db, err := openWithRetry(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	store := prestashop.New(db, cfg.Prefix)
	st, err := store.CheckSchema(ctx)
	if err != nil {
		return err
	}
	if len(st.ShopMissing) > 0 {
		return fmt.Errorf("migrate: the shop database lacks %s: is DB_PREFIX right, and the Shopping Feed module installed?", strings.Join(st.ShopMissing, ", "))
	}
	if len(st.Missing) == 0 {
		fmt.Fprintf(stdout, "migrate: schema up to date (version %d)\n", st.Version)
		return nil
	}
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "migrate: added %s; schema version %d\n", strings.Join(st.Missing, ", "), prestashop.SchemaVersion)
	return nil
}

func seed(ctx context.Context, lookup config.LookupFunc, stdout io.Writer) error {
	var cfg prestashop.Config
	if err := config.Load(ctx, lookup, &cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var db interface{ Close() error }
	sqlDB, err := openWithRetry(ctx, cfg)
	if err != nil {
		return err
	}
	db = sqlDB
	defer db.Close()
	data, fresh, err := demo.Seed(ctx, sqlDB, cfg.Prefix)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if !fresh {
		fmt.Fprintln(stdout, "seed: the database already has orders; nothing changed")
		return nil
	}
	fmt.Fprintln(stdout, "seed: created "+data.Describe())
	return nil
}

func probe(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(stdout, "usage: sfsync probe URL: exit 0 when URL answers 2xx within 2s (container health checks)")
		return nil
	}
	if len(args) != 1 {
		return &ExitError{Code: ops.ExitUsage, Err: errors.New("probe needs one URL")}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return &ExitError{Code: ops.ExitUsage, Err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &ExitError{Code: ops.ExitError, Err: err}
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &ExitError{Code: ops.ExitError, Err: fmt.Errorf("%s answered %s", args[0], resp.Status)}
	}
	return nil
}
