// Command sluice-gateway runs one gateway node: the traffic listener, the
// operations listener, config sync and the usage publisher.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sluicegw/sluice/gateway/internal/config"
	"github.com/sluicegw/sluice/pkg/buildinfo"
	"github.com/sluicegw/sluice/pkg/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration `file` (optional: defaults and SLUICE_* variables apply)")
	check := fs.Bool("check-config", false, "validate the configuration, print every problem and exit")
	listen := fs.String("listen", "", "traffic `address`, overrides listen")
	opsListen := fs.String("ops-listen", "", "operations `address` (/health /ready /metrics), overrides ops_listen")
	version := fs.Bool("version", false, "print the version, commit, build date and Go version, and exit")
	fs.Usage = func() { printUsage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.Get().String("sluice-gateway"))
		return 0
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "sluice-gateway: %v\n", err)
		return 1
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *opsListen != "" {
		cfg.OpsListen = *opsListen
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		fmt.Fprintln(stderr, "sluice-gateway: invalid configuration:")
		for _, p := range errs {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return 1
	}
	if *check {
		fmt.Fprintln(stdout, "configuration ok")
		return 0
	}
	cfg.ResolveNodeID()
	cfg.ResolveAdvertiseAddress()
	log := logging.New(cfg.Log, stderr, "sluice-gateway").With().Str("node", cfg.NodeID).Logger()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	n, err := newNode(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot build the node")
		return 1
	}
	if err := n.Start(ctx); err != nil {
		log.Error().Err(err).Msg("cannot start the node")
		_ = n.Shutdown(context.Background())
		return 1
	}
	<-ctx.Done()
	log.Info().Msg("shutting down: draining requests and flushing usage events")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		log.Error().Err(err).Msg("shutdown incomplete")
		return 1
	}
	return 0
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: sluice-gateway [--config FILE] [--check-config] [--listen ADDR] [--ops-listen ADDR] [--version]\n\nFlags:\n")
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nEnvironment (each overrides the configuration field named):\n")
	for _, v := range config.Vars() {
		fmt.Fprintf(w, "  %-40s %s (%s)\n", v.Name, v.Field, v.Type)
	}
}
