package main

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/gateway/internal/clientip"
	"github.com/sluicegw/sluice/gateway/internal/config"
	"github.com/sluicegw/sluice/gateway/internal/jwtauth"
	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/gateway/internal/ops"
	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/gateway/internal/server"
	"github.com/sluicegw/sluice/gateway/internal/state"
	configsync "github.com/sluicegw/sluice/gateway/internal/sync"
	"github.com/sluicegw/sluice/gateway/internal/usage"
	"github.com/sluicegw/sluice/pkg/buildinfo"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// component is what the node starts and stops, in order.
type component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// node is one gateway node wired from its configuration.
type node struct {
	cfg     config.Config
	log     zerolog.Logger
	rdb     redis.UniversalClient
	nc      *nats.Conn
	state   *state.State
	server  *server.Server
	ops     *ops.Server
	reg     *namedRegistry
	tracing *tracing.Provider // nil: off
	started []component
	order   []component // start order; shutdown runs it backwards
}

func newNode(cfg config.Config, log zerolog.Logger) (*node, error) {
	n := &node{cfg: cfg, log: log}
	tp, err := tracing.New(context.Background(), cfg.Tracing,
		tracing.Identity{Service: "sluice-gateway", Version: buildinfo.Get().Version, Instance: cfg.NodeID}, log)
	if err != nil {
		return nil, err
	}
	n.tracing = tp
	reg := newNamedRegistry()
	n.reg = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	calls, err := ops.NewRedisCalls(reg)
	if err != nil {
		return nil, err
	}
	rdb, err := cfg.Redis.Client(log)
	if err != nil {
		return nil, err
	}
	n.rdb = rdb
	// One environment: its Redis keys and NATS subjects carry the namespaces.
	layout, names := cfg.Redis.Layout(), cfg.NATS.Names()
	jp, err := jwtauth.New(cfg.JWT, log, reg)
	if err != nil {
		return nil, err
	}
	st, err := state.New(store.NewIn(layout, n.rdb, 0), state.Options{
		JWT:     jp,
		MaxBody: int(cfg.Proxy.MaxBodyBytes),
		Proxy: proxy.Options{
			ConnectTimeout: cfg.Proxy.ConnectTimeout, ReadTimeout: cfg.Proxy.ReadTimeout, WriteTimeout: cfg.Proxy.WriteTimeout,
			MaxConnsPerHost: cfg.Proxy.MaxConnsPerHost, MaxResponseBodySize: int(cfg.Proxy.MaxBodyBytes),
		},
		Auth: auth.Options{
			CacheSize: cfg.Auth.SessionCacheSize, TTL: cfg.Auth.SessionTTL, NegativeCacheSize: cfg.Auth.NegativeCacheSize,
			NegativeTTL: cfg.Auth.NegativeTTL, LookupTimeout: cfg.Auth.LookupTimeout, MaxStale: cfg.Auth.MaxStale,
			Observe: calls.Observer(ops.CallSessionLookup),
		},
	}, log)
	if err != nil {
		return nil, err
	}
	n.state = st
	limOpts := cfg.Limits
	limOpts.Layout = layout
	lim, err := limit.New(n.rdb, limOpts, log, reg)
	if err != nil {
		return nil, err
	}
	lim.ObserveCalls(calls.Observer(ops.CallLimitScript))
	// NATS: reconnect forever; a node whose NATS is down at start still
	// serves, and the usage buffer holds (then drops, counted) events.
	n.nc, err = cfg.NATS.Connect("sluice-gateway "+cfg.NodeID, log)
	if err != nil {
		return nil, err
	}
	usageOpts := cfg.Usage
	usageOpts.Names = names
	pub, err := usage.New(n.nc, cfg.NodeID, usageOpts, log, reg)
	if err != nil {
		return nil, err
	}
	ciph, err := clientip.ParseHeader(cfg.Proxy.ClientIPHeader)
	if err != nil {
		return nil, err
	}
	cip, err := clientip.NewResolver(cfg.Proxy.TrustedProxies, ciph)
	if err != nil {
		return nil, err
	}
	n.server, err = server.New(server.Options{
		ClientIP: cip,
		Listen:   cfg.Listen, TLS: cfg.TLS, Node: cfg.NodeID, MaxHeaderBytes: cfg.Proxy.MaxHeaderBytes, MaxBodyBytes: int(cfg.Proxy.MaxBodyBytes),
		MinKeyLength: cfg.Auth.MinKeyLength, ReadTimeout: cfg.Proxy.ReadTimeout, WriteTimeout: cfg.Proxy.WriteTimeout,
		RequestBufferBytes: cfg.Proxy.RequestBufferBytes, MinBodyRate: cfg.Proxy.MinRequestBodyRate,
		IdleTimeout:        cfg.Proxy.ClientIdleTimeout,
		UpgradeIdleTimeout: cfg.Proxy.UpgradeIdleTimeout, UpgradeMaxLifetime: cfg.Proxy.UpgradeMaxLifetime,
		Forwarding: proxy.Forwarding{
			MaxForwardedFor: cfg.Proxy.MaxForwardedForBytes,
			ClientHeaders:   proxy.ClientHeaders(cfg.Proxy.ClientForwardingHeaders),
		},
		RequestIDHeader: cfg.Proxy.RequestIDHeader,
		AccessLog:       cfg.AccessLog,
		Tracing:         tp,
	}, st, lim, pub, reg, log)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_config_version", Help: "Config version applied by this node.",
	}, func() float64 { return float64(st.Version()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_config_last_applied_timestamp_seconds",
		Help: "Unix time this node last applied a config version (0 before the first).",
	}, func() float64 {
		if t := st.AppliedAt(); !t.IsZero() {
			return float64(t.UnixNano()) / 1e9
		}
		return 0
	}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "sluice_auth_stale_sessions_total",
		Help: "Key lookups answered with a cached session past its TTL because the store could not re-read it.",
	}, func() float64 { return float64(st.Sessions().StaleServed()) }))
	n.ops = ops.New(cfg.OpsListen, n.ready, reg, log)
	n.ops.Watch("redis", func(ctx context.Context) error { return store.Ping(ctx, n.rdb) })
	n.ops.Watch("nats", func(context.Context) error {
		if !n.nc.IsConnected() {
			return errors.New(n.nc.Status().String())
		}
		return nil
	})
	if cfg.Profiling {
		n.ops.EnableProfiling()
	}
	follower, err := configsync.New(n.nc, store.NewIn(layout, n.rdb, 0), st, configsync.Options{
		NodeID: cfg.NodeID, Address: cfg.AdvertiseAddress, Names: names, BuildVersion: buildinfo.Get().Version,
		CheckInterval: cfg.Sync.CheckInterval, HeartbeatInterval: cfg.Sync.HeartbeatInterval, Tracing: tp,
	}, log, reg)
	if err != nil {
		return nil, err
	}
	// Start order: the JWT key provider, state loads (in the background),
	// config sync follows changes, limiter, usage, ops, traffic last.
	// Shutdown stops traffic first (drain), then flushes usage, and stops
	// key fetches last.
	n.order = []component{jp, st, follower, lim, pub, n.ops, n.server}
	return n, nil
}

// ready is /ready: the node holds a configuration snapshot and serves
// traffic. Redis and NATS are deliberately not part of it: a node keeps
// serving through their outages (fail-open APIs, cached sessions, buffered
// usage), and a readiness probe failing on every node at once would turn a
// store blip into a full outage. Their state is in /health and
// sluice_dependency_up.
func (n *node) ready(context.Context) error {
	if !n.state.Loaded() {
		return errors.New("configuration not loaded yet")
	}
	return nil
}

// Start starts every component in order.
func (n *node) Start(ctx context.Context) error {
	for _, c := range n.order {
		if err := c.Start(ctx); err != nil {
			return err
		}
		n.started = append(n.started, c)
	}
	return nil
}

// Shutdown stops the started components in reverse order, then closes the
// connections.
func (n *node) Shutdown(ctx context.Context) error {
	var errs []error
	for i := len(n.started) - 1; i >= 0; i-- {
		if err := n.started[i].Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	n.started = nil
	if n.nc != nil {
		n.nc.Close()
	}
	_ = n.rdb.Close()
	if err := n.tracing.Shutdown(ctx); err != nil { // the spans still buffered
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
