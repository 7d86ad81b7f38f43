// Command detector is sfsync's detector worker; see README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sfsync/sfsync/pkg/buildinfo"
	"github.com/sfsync/sfsync/services/detector/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := buildinfo.Exit("detector", app.Run(ctx, os.Args[1:], os.LookupEnv, os.Stdout), os.Stderr)
	stop()
	os.Exit(code)
}
