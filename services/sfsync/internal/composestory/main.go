// Command composestory plays the demo's merchant story against the compose
// stack of `make compose-test` (deployments/compose-test/run.sh), from the
// host, through the ports the test's override publishes:
//
//	composestory sandbox-orders     print SANDBOX_ORDERS for the seeded shops
//	composestory -mysql DSN -sandbox URL -mail URL [-report-to ADDR] [-timeout D]
//
// It exits 1 naming every order that did not end as expected, or the
// report mail that did not arrive.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sfsync/sfsync/services/sfsync/internal/demo"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "sandbox-orders" {
		fmt.Println(demo.SandboxOrders())
		return
	}
	fs := flag.NewFlagSet("composestory", flag.ExitOnError)
	var o demo.StackOptions
	fs.StringVar(&o.MySQLDSN, "mysql", "", "the stack's shop database (DSN)")
	fs.StringVar(&o.SandboxURL, "sandbox", "", "the stack's Shopping Feed sandbox")
	fs.StringVar(&o.MailURL, "mail", "", "the mail catcher's message list (mailsink /api/messages)")
	fs.StringVar(&o.ReportTo, "report-to", "merchant@demo.test", "where the error report goes (the seeded PS_SHOP_EMAIL)")
	fs.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "how long the orders, then the mail, may take")
	_ = fs.Parse(os.Args[1:])
	if o.MySQLDSN == "" || o.SandboxURL == "" || o.MailURL == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: composestory -mysql DSN -sandbox URL -mail URL [-report-to ADDR] [-timeout D] | composestory sandbox-orders")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.Out = os.Stdout
	if err := demo.RunStack(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "composestory:", err)
		os.Exit(1)
	}
}
