// Command sfsync runs the detector, the sender and the ticket poller in one
// process (embedded NATS when NATS_URL is unset), and the operator
// commands; `sfsync help` lists them.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sfsync/sfsync/services/sfsync/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cli.Run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *cli.ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	if ee == nil || ee.Err != nil {
		fmt.Fprintln(os.Stderr, "sfsync:", err)
	}
	os.Exit(code)
}
