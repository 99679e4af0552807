// Command sluice-analytics consumes usage events from NATS JetStream,
// aggregates them into Redis and serves the usage query API and dashboard.
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
	"time"

	"github.com/sluicegw/sluice/analytics/internal/config"
	"github.com/sluicegw/sluice/analytics/internal/service"
	"github.com/sluicegw/sluice/pkg/buildinfo"
	pkgconfig "github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice-analytics", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file")
	listen := fs.String("listen", "", "listen address of the query API, dashboard and metrics (overrides listen)")
	check := fs.Bool("check-config", false, "validate the configuration and exit")
	version := fs.Bool("version", false, "print the version, commit, build date and Go version, and exit")
	fs.Usage = func() { usage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.Get().String("sluice-analytics"))
		return 0
	}
	cfg := config.Default()
	if err := pkgconfig.Load(*path, &cfg); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "invalid configuration:\n%v\n", err)
		return 2
	}
	if *check {
		fmt.Fprintln(stdout, "configuration ok")
		return 0
	}
	log := logging.New(cfg.Log, stderr, "sluice-analytics")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	svc := service.New(cfg, log)
	if err := svc.Start(ctx); err != nil {
		log.Error().Err(err).Msg("start")
		return 1
	}
	<-ctx.Done()
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := svc.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("shutdown")
	}
	return 0
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: sluice-analytics [flags]\n\n"+
		"Consumes usage events from NATS JetStream, aggregates them per minute into Redis,\n"+
		"and serves the usage query API, dashboard (/), /health, /ready and /metrics.\n\nFlags:\n")
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nEnvironment variables (override the YAML file):\n")
	def := config.Default()
	for _, v := range pkgconfig.Vars(pkgconfig.Prefix, &def) {
		fmt.Fprintf(w, "  %-42s %s (%s)\n", v.Name, v.Field, v.Type)
	}
}
