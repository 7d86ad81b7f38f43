// Command sfsandbox serves a simulated Shopping Feed API for tests, demos
// and merchants trying their configuration; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sfsync/sfsync/services/sfsandbox/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, os.LookupEnv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sfsandbox:", err)
		os.Exit(1)
	}
}
