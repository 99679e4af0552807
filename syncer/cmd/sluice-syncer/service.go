package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/buildinfo"
	"github.com/sluicegw/sluice/pkg/connect"
	"github.com/sluicegw/sluice/pkg/lifecycle"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/pkg/tracing"
	"github.com/sluicegw/sluice/syncer/internal/api"
	"github.com/sluicegw/sluice/syncer/internal/nodes"
	"github.com/sluicegw/sluice/syncer/internal/publish"
	"github.com/sluicegw/sluice/syncer/internal/settings"
)

// syncer is one syncer process wired from its configuration: its parts,
// in start order, in a lifecycle.Group.
type syncer struct {
	lifecycle.Group
}

// newSyncer builds the syncer: the Redis client, the NATS connection, the
// admin tokens (re-read when their file changes), the node registry
// (heartbeats) and the admin API, started in that order and stopped
// backwards (the API drains first, NATS is drained before Redis closes).
// When a step fails, what the steps before it built is released.
func newSyncer(cfg settings.Config, log zerolog.Logger) (_ *syncer, err error) {
	s := &syncer{}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			if cerr := s.Shutdown(ctx); cerr != nil {
				log.Warn().Err(cerr).Msg("releasing a syncer whose construction failed")
			}
		}
	}()
	rdb, err := cfg.Redis.Client(log)
	if err != nil {
		return nil, err
	}
	s.Closer("redis", rdb.Close)
	nc, err := cfg.NATS.Connect("sluice-syncer", log)
	if err != nil {
		return nil, err
	}
	s.Add("nats", lifecycle.Funcs(nil, func(ctx context.Context) error { return connect.Drain(ctx, nc) }))
	tp, err := tracing.New(context.Background(), cfg.Tracing, tracing.Identity{Service: "sluice-syncer", Version: buildinfo.Get().Version}, log)
	if err != nil {
		return nil, err
	}
	s.Add("tracing", lifecycle.Funcs(nil, tp.Shutdown)) // after the API: its last spans are exported
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	pub, err := publish.New(nc, cfg.NATS.Names(), log, reg, tp)
	if err != nil {
		return nil, err
	}
	toks, err := adminTokens(cfg, log, reg)
	if err != nil {
		return nil, err
	}
	if toks != nil {
		s.Add("tokens", lifecycle.Funcs(func(context.Context) error { toks.Start(); return nil }, toks.Close))
	}
	nodeReg, err := nodes.New(nc, cfg.NATS.Names(), cfg.NodeTTL, log, reg)
	if err != nil {
		return nil, err
	}
	s.Add("nodes", nodeReg)
	st := store.NewIn(cfg.Redis.Layout(), rdb, cfg.ChangelogLength)
	st.SetAuditLength(cfg.AuditLength)
	srv, err := api.New(api.Options{Store: st, Announcer: pub, Nodes: nodeReg,
		NATS: nc, Tokens: toks, Log: log, Registry: reg, Tracing: tp})
	if err != nil {
		return nil, err
	}
	s.Add("api", lifecycle.Funcs(func(ctx context.Context) error { return srv.Start(ctx, cfg.Listen) }, srv.Shutdown))
	return s, nil
}

// adminTokens returns the admin API's tokens: admin_token as an admin named
// api.AdminTokenName, then the file's, re-read when it changes. Nil: no
// token at all (--insecure-dev).
func adminTokens(cfg settings.Config, log zerolog.Logger, reg prometheus.Registerer) (*tokens.Source, error) {
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
