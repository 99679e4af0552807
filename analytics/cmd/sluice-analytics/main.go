// Command sluice-analytics consumes usage events from NATS JetStream,
// aggregates them into Redis and serves the usage query API and dashboard.
package main

import (
	"io"
	"os"

	"github.com/sluicegw/sluice/analytics/internal/service"
	"github.com/sluicegw/sluice/analytics/internal/settings"
	"github.com/sluicegw/sluice/pkg/lifecycle"
	"github.com/sluicegw/sluice/pkg/logging"
)

const about = `Consumes usage events from NATS JetStream, aggregates them per minute into Redis,
and serves the usage query API, dashboard (/), /health, /ready and /metrics.
Signals: SIGINT or SIGTERM stops the HTTP server and records the batch in hand
within shutdown_timeout; a second signal exits at once.`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command: parse, load and check the configuration,
// run the worker until a signal (pkg/lifecycle), return the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cli := lifecycle.NewCLI("sluice-analytics", about, settings.Vars())
	listen := cli.Flags.String("listen", "", "`address` of the query API, dashboard and metrics (overrides listen)")
	if code, exit := cli.Parse(args, stdout, stderr); exit {
		return code
	}
	cfg, err := settings.Load(cli.ConfigPath)
	if err == nil {
		if *listen != "" {
			cfg.Listen = *listen
		}
		err = cfg.Validate()
	}
	if code, exit := cli.Check(err); exit {
		return code
	}
	log := logging.New(cfg.Log, stderr, "sluice-analytics")
	return lifecycle.Run(service.New(cfg, log), lifecycle.RunOptions{Log: log, ShutdownTimeout: cfg.ShutdownTimeout})
}
