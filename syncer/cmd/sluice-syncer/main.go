// Command sluice-syncer is Sluice's control plane: the admin API for APIs,
// policies and keys, which writes Redis and announces every change on NATS,
// and the view of live gateway nodes from their heartbeats.
package main

import (
	"io"
	"os"

	"github.com/sluicegw/sluice/pkg/lifecycle"
	"github.com/sluicegw/sluice/pkg/logging"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/pkg/validation"
	"github.com/sluicegw/sluice/syncer/internal/settings"
)

const about = `Runs the control plane: the admin API for APIs, policies and keys (writes
Redis, announces every change on NATS) and the view of live gateway nodes.
Signals: SIGINT or SIGTERM drains in-flight admin requests within
shutdown_timeout; a second signal exits at once.`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command: parse, load and check the configuration,
// build the syncer, run it until a signal (pkg/lifecycle), return the exit
// code.
func run(args []string, stdout, stderr io.Writer) int {
	cli := lifecycle.NewCLI("sluice-syncer", about, settings.Vars())
	listen := cli.Flags.String("listen", "", "admin API `address`, overrides listen (default :7460)")
	insecureDev := cli.Flags.Bool("insecure-dev", false, "allow running without an admin token, only on a loopback listen address")
	if code, exit := cli.Parse(args, stdout, stderr); exit {
		return code
	}
	cfg, err := settings.Load(cli.ConfigPath)
	if err == nil {
		if *listen != "" {
			cfg.Listen = *listen
		}
		err = check(&cfg, *insecureDev).Err()
	}
	if code, exit := cli.Check(err); exit {
		return code
	}
	log := logging.New(cfg.Log, stderr, "syncer")
	if cfg.AdminToken == "" && cfg.AdminTokensFile == "" {
		log.Warn().Msg("admin API has no token (--insecure-dev): anyone on this machine can change the configuration")
	}
	s, err := newSyncer(cfg, log)
	if err != nil {
		return lifecycle.CannotStart(log, err)
	}
	return lifecycle.Run(s, lifecycle.RunOptions{Log: log, ShutdownTimeout: cfg.ShutdownTimeout})
}

// check is every problem of the configuration, including the admin token
// rule (no token is allowed only on loopback with --insecure-dev) and the
// tokens file's contents.
func check(cfg *settings.Config, insecureDev bool) validation.Errors {
	errs := cfg.Validate()
	if cfg.AdminToken == "" && cfg.AdminTokensFile == "" && !(insecureDev && cfg.Loopback()) {
		errs.Add("admin_token", "no admin token: set admin_token (SLUICE_ADMIN_TOKEN) or admin_tokens_file (SLUICE_ADMIN_TOKENS_FILE); "+
			"running without one needs --insecure-dev and a loopback listen address such as 127.0.0.1:7460 (listen is %q)", cfg.Listen)
	}
	if cfg.AdminTokensFile != "" {
		if _, err := tokens.NewSource(tokens.SourceOptions{Path: cfg.AdminTokensFile}); err != nil {
			errs.Add("admin_tokens_file", "%v", err)
		}
	}
	return errs
}
