// Command sluice-syncer is Sluice's control plane: the admin API for APIs,
// policies and keys, which writes Redis and announces every change on NATS,
// and the view of live gateway nodes from their heartbeats.
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/buildinfo"
	pkgconfig "github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/logging"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/pkg/tracing"
	"github.com/sluicegw/sluice/syncer/internal/api"
	"github.com/sluicegw/sluice/syncer/internal/config"
	"github.com/sluicegw/sluice/syncer/internal/nodes"
	"github.com/sluicegw/sluice/syncer/internal/publish"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "sluice-syncer:", err)
		os.Exit(1)
	}
}

type flags struct {
	config      string
	listen      string
	checkConfig bool
	insecureDev bool
	version     bool
}

func parseFlags(args []string, out io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("sluice-syncer", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&f.config, "config", "", "YAML configuration file")
	fs.StringVar(&f.listen, "listen", "", "admin API address, overrides listen (default :7460)")
	fs.BoolVar(&f.checkConfig, "check-config", false, "validate the configuration and exit")
	fs.BoolVar(&f.version, "version", false, "print the version, commit, build date and Go version, and exit")
	fs.BoolVar(&f.insecureDev, "insecure-dev", false, "allow running without an admin token, only on a loopback listen address")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: sluice-syncer [--config FILE] [flags]\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(out, "\nEnvironment variables (override the file):\n")
		def := config.Default()
		for _, v := range pkgconfig.Vars(pkgconfig.Prefix, &def) {
			fmt.Fprintf(out, "  %-30s %s (%s)\n", v.Name, v.Field, v.Type)
		}
	}
	return f, fs.Parse(args)
}

// loadConfig loads and checks the configuration, including the admin token
// rule: no token is allowed only on loopback with --insecure-dev.
func loadConfig(f flags) (config.Config, error) {
	cfg, err := config.Load(f.config)
	if err != nil {
		return cfg, err
	}
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	errs := cfg.Validate()
	if cfg.AdminToken == "" && cfg.AdminTokensFile == "" && !(f.insecureDev && cfg.Loopback()) {
		errs.Add("admin_token", "no admin token: set admin_token (SLUICE_ADMIN_TOKEN) or admin_tokens_file (SLUICE_ADMIN_TOKENS_FILE); "+
			"running without one needs --insecure-dev and a loopback listen address such as 127.0.0.1:7460 (listen is %q)", cfg.Listen)
	}
	if cfg.AdminTokensFile != "" {
		if _, err := tokens.NewSource(tokens.SourceOptions{Path: cfg.AdminTokensFile}); err != nil {
			errs.Add("admin_tokens_file", "%v", err)
		}
	}
	if err := errs.Err(); err != nil {
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	if f.version {
		fmt.Fprintln(stdout, buildinfo.Get().String("sluice-syncer"))
		return nil
	}
	cfg, err := loadConfig(f)
	if err != nil {
		return err
	}
	if f.checkConfig {
		fmt.Fprintln(stdout, "configuration ok")
		return nil
	}
	log := logging.New(cfg.Log, stderr, "syncer")
	if cfg.AdminToken == "" && cfg.AdminTokensFile == "" {
		log.Warn().Msg("admin API has no token (--insecure-dev): anyone on this machine can change the configuration")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, log)
}

func serve(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	rdb, err := cfg.Redis.Client(log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	nc, err := cfg.NATS.Connect("sluice-syncer", log)
	if err != nil {
		return err
	}
	defer nc.Close()

	tp, err := tracing.New(ctx, cfg.Tracing, tracing.Identity{Service: "sluice-syncer", Version: buildinfo.Get().Version}, log)
	if err != nil {
		return err
	}
	defer tp.Close(log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	pub, err := publish.New(nc, cfg.NATS.Names(), log, reg, tp)
	if err != nil {
		return err
	}
	nodeReg, err := nodes.New(nc, cfg.NATS.Names(), cfg.NodeTTL, log, reg)
	if err != nil {
		return err
	}
	toks, err := adminTokens(cfg, log, reg)
	if err != nil {
		return err
	}
	st := store.NewIn(cfg.Redis.Layout(), rdb, cfg.ChangelogLength)
	st.SetAuditLength(cfg.AuditLength)
	srv, err := api.New(api.Options{Store: st, Announcer: pub, Nodes: nodeReg,
		NATS: nc, Tokens: toks, Log: log, Registry: reg, Tracing: tp})
	if err != nil {
		return err
	}
	if toks != nil {
		toks.Start()
		defer func() { _ = toks.Close(context.Background()) }()
	}
	if err := nodeReg.Start(ctx); err != nil {
		return err
	}
	if err := srv.Start(ctx, cfg.Listen); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	_ = nodeReg.Shutdown(sctx)
	_ = nc.Drain()
	return err
}

// adminTokens returns the admin API's tokens: admin_token as an admin named
// api.AdminTokenName, then the file's, re-read when it changes. Nil: no
// token at all (--insecure-dev).
func adminTokens(cfg config.Config, log zerolog.Logger, reg prometheus.Registerer) (*tokens.Source, error) {
	if cfg.AdminToken == "" && cfg.AdminTokensFile == "" {
		return nil, nil
	}
	var static []tokens.Token
	if cfg.AdminToken != "" {
		static = append(static, tokens.New(api.AdminTokenName, tokens.Admin, cfg.AdminToken))
	}
	src, err := tokens.NewSource(tokens.SourceOptions{Path: cfg.AdminTokensFile, Static: static,
		Log: log.With().Str("component", "syncer.tokens").Logger(), Registry: reg})
	if err != nil {
		return nil, fmt.Errorf("admin_tokens_file: %w", err)
	}
	log.Info().Strs("tokens", src.Current().Names()).Msg("admin tokens loaded")
	return src, nil
}
