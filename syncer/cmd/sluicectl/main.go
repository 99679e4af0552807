// Command sluicectl manages a Sluice cluster through the syncer's admin
// API: APIs, policies and keys, nodes and status, declarative
// configuration (apply, diff, export) and usage analytics.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicegw/sluice/syncer/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}
