// Command chaos runs sfsync's chaos test (make chaos) or measures the
// services' memory with updates in flight (-mode rss, part of make bench).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sfsync/sfsync/pkg/chaos"
)

func main() {
	o := chaos.DefaultOptions()
	small := chaos.SmallOptions()
	mode := flag.String("mode", "run", "run: the chaos test; rss: memory of each service with updates in flight")
	useSmall := flag.Bool("small", false, "the small run of make test (500 orders, fewer faults)")
	flag.Uint64Var(&o.Seed, "seed", o.Seed, "seeds the load, the fault schedule and the sandbox")
	flag.IntVar(&o.Orders, "orders", o.Orders, "orders changed by the load")
	flag.IntVar(&o.Shops, "shops", o.Shops, "shops (one Shopping Feed store each)")
	flag.DurationVar(&o.LoadFor, "load", o.LoadFor, "how long the load lasts")
	flag.DurationVar(&o.KillEvery, "kill-every", o.KillEvery, "mean time between worker kills (0: none)")
	flag.IntVar(&o.BrokerRestarts, "broker-restarts", o.BrokerRestarts, "broker restarts during the load")
	flag.IntVar(&o.DBRestarts, "db-restarts", o.DBRestarts, "MariaDB restarts during the load")
	flag.BoolVar(&o.Wipe, "wipe", o.Wipe, "once, stop the broker, delete its store and start it empty")
	flag.IntVar(&o.Detectors, "detectors", o.Detectors, "detector processes")
	flag.IntVar(&o.Senders, "senders", o.Senders, "sender processes")
	flag.IntVar(&o.Pollers, "pollers", o.Pollers, "ticket poller processes")
	flag.DurationVar(&o.ShipDelay, "ship-delay", o.ShipDelay, "shipment delay")
	flag.DurationVar(&o.Quiesce, "quiesce", o.Quiesce, "longest wait for the system to settle after the load")
	flag.StringVar(&o.BinDir, "bin", "bin", "directory of the built services (make build)")
	flag.StringVar(&o.WorkDir, "workdir", "", "where logs go (default: a temporary directory, kept when the run fails)")
	rssUpdates := flag.Int("rss-updates", 10000, "-mode rss: updates in flight")
	flag.Parse()
	if *useSmall {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["orders"] {
			o.Orders = small.Orders
		}
		if !set["load"] {
			o.LoadFor = small.LoadFor
		}
		if !set["kill-every"] {
			o.KillEvery = small.KillEvery
		}
		if !set["broker-restarts"] {
			o.BrokerRestarts = small.BrokerRestarts
		}
		if !set["db-restarts"] {
			o.DBRestarts = small.DBRestarts
		}
	}
	o.Out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch *mode {
	case "run":
		rep, err := chaos.Run(ctx, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			os.Exit(2)
		}
		rep.Print(os.Stdout)
		if !rep.Passed {
			os.Exit(1)
		}
	case "rss":
		if err := chaos.MeasureRSS(ctx, o, *rssUpdates); err != nil {
			fmt.Fprintln(os.Stderr, "chaos rss:", err)
			os.Exit(2)
		}
	default:
		fmt.Fprintln(os.Stderr, "chaos: -mode is run or rss")
		os.Exit(2)
	}
}
