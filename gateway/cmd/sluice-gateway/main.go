// Command sluice-gateway runs one gateway node: the traffic listener, the
// operations listener, config sync and the usage publisher.
package main

import (
	"io"
	"os"

	"github.com/sluicegw/sluice/gateway/internal/settings"
	"github.com/sluicegw/sluice/pkg/lifecycle"
	"github.com/sluicegw/sluice/pkg/logging"
)

const about = `Runs one gateway node: routes, authenticates, rate limits and proxies the
traffic of the APIs in Redis, follows their changes on NATS and publishes
usage events. Signals: SIGINT or SIGTERM drains in-flight requests and
flushes usage events within shutdown_timeout; a second signal exits at once.`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command: parse, load and check the configuration,
// build the node, run it until a signal (pkg/lifecycle), return the exit
// code.
func run(args []string, stdout, stderr io.Writer) int {
	cli := lifecycle.NewCLI("sluice-gateway", about, settings.Vars())
	listen := cli.Flags.String("listen", "", "traffic `address`, overrides listen")
	opsListen := cli.Flags.String("ops-listen", "", "operations `address` (/health /ready /metrics), overrides ops_listen")
	if code, exit := cli.Parse(args, stdout, stderr); exit {
		return code
	}
	cfg, err := settings.Load(cli.ConfigPath)
	if err == nil {
		if *listen != "" {
			cfg.Listen = *listen
		}
		if *opsListen != "" {
			cfg.OpsListen = *opsListen
		}
		err = cfg.Validate().Err()
	}
	if code, exit := cli.Check(err); exit {
		return code
	}
	cfg.ResolveNodeID()
	cfg.ResolveAdvertiseAddress()
	log := logging.New(cfg.Log, stderr, "sluice-gateway").With().Str("node", cfg.NodeID).Logger()
	n, err := newNode(cfg, log)
	if err != nil {
		return lifecycle.CannotStart(log, err)
	}
	return lifecycle.Run(n, lifecycle.RunOptions{Log: log, ShutdownTimeout: cfg.ShutdownTimeout})
}
