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
	"github.com/sluicegw/sluice/gateway/internal/emitter"
	"github.com/sluicegw/sluice/gateway/internal/follower"
	"github.com/sluicegw/sluice/gateway/internal/jwtauth"
	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/gateway/internal/ops"
	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/gateway/internal/server"
	"github.com/sluicegw/sluice/gateway/internal/settings"
	"github.com/sluicegw/sluice/gateway/internal/state"
	"github.com/sluicegw/sluice/pkg/buildinfo"
	"github.com/sluicegw/sluice/pkg/lifecycle"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// node is one gateway node wired from its configuration: its parts, in
// start order, in a lifecycle.Group.
type node struct {
	lifecycle.Group
	cfg    settings.Config
	log    zerolog.Logger
	rdb    redis.UniversalClient
	nc     *nats.Conn
	state  *state.State
	server *server.Server
	reg    *namedRegistry
}

// newNode builds the node. Each part joins the group as soon as it is
// built, in start order: the Redis client, the JWT key provider, state
// (loads in the background once started), the NATS connection, config
// sync, the limiter, the usage publisher, the operations listener and the
// traffic listener last. Shutdown runs that backwards: traffic drains
// first, usage is flushed while NATS is still connected, the connections
// close last. When a step fails, what the steps before it built is
// released before newNode returns.
func newNode(cfg settings.Config, log zerolog.Logger) (_ *node, err error) {
	n := &node{cfg: cfg, log: log, reg: newNamedRegistry()}
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			if cerr := n.Shutdown(ctx); cerr != nil {
				log.Warn().Err(cerr).Msg("releasing a node whose construction failed")
			}
		}
	}()
	reg := n.reg
	tp, err := tracing.New(context.Background(), cfg.Tracing,
		tracing.Identity{Service: "sluice-gateway", Version: buildinfo.Get().Version, Instance: cfg.NodeID}, log)
	if err != nil {
		return nil, err
	}
	// First in, last out: the spans of the parts stopped before it are
	// exported.
	n.Add("tracing", lifecycle.Funcs(nil, tp.Shutdown))
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	calls, err := ops.NewRedisCalls(reg)
	if err != nil {
		return nil, err
	}
	if n.rdb, err = cfg.Redis.Client(log); err != nil {
		return nil, err
	}
	n.Closer("redis", n.rdb.Close)
	// One environment: its Redis keys and NATS subjects carry the namespaces.
	layout, names := cfg.Redis.Layout(), cfg.NATS.Names()
	jp, err := jwtauth.New(cfg.JWT, log, reg)
	if err != nil {
		return nil, err
	}
	n.Add("jwt", jp)
	if n.state, err = newState(cfg, n.rdb, jp, calls, log); err != nil {
		return nil, err
	}
	n.Add("state", n.state)
	// NATS: reconnect forever; a node whose NATS is down at start still
	// serves, and the usage buffer holds (then drops, counted) events.
	if n.nc, err = cfg.NATS.Connect("sluice-gateway "+cfg.NodeID, log); err != nil {
		return nil, err
	}
	n.Closer("nats", func() error { n.nc.Close(); return nil })
	follower, err := follower.New(n.nc, store.NewIn(layout, n.rdb, 0), n.state, follower.Options{
		NodeID: cfg.NodeID, Address: cfg.AdvertiseAddress, Names: names, BuildVersion: buildinfo.Get().Version,
		CheckInterval: cfg.Sync.CheckInterval, HeartbeatInterval: cfg.Sync.HeartbeatInterval, Tracing: tp,
	}, log, reg)
	if err != nil {
		return nil, err
	}
	n.Add("sync", follower)
	limOpts := cfg.Limits
	limOpts.Layout = layout
	lim, err := limit.New(n.rdb, limOpts, log, reg)
	if err != nil {
		return nil, err
	}
	lim.ObserveCalls(calls.Observer(ops.CallLimitScript))
	n.Add("limit", lim)
	usageOpts := cfg.Usage
	usageOpts.Names = names
	pub, err := emitter.New(n.nc, cfg.NodeID, usageOpts, log, reg)
	if err != nil {
		return nil, err
	}
	n.Add("usage", pub)
	n.registerStateMetrics()
	n.Add("ops", n.newOps())
	if n.server, err = newServer(cfg, n.state, lim, pub, tp, reg, log); err != nil {
		return nil, err
	}
	n.Add("server", n.server)
	return n, nil
}

// newState builds the node's configuration state and session cache.
func newState(cfg settings.Config, rdb redis.UniversalClient, jp *jwtauth.Provider, calls *ops.RedisCalls, log zerolog.Logger) (*state.State, error) {
	return state.New(store.NewIn(cfg.Redis.Layout(), rdb, 0), state.Options{
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
}

// newServer builds the traffic server (its access log, when on, runs from
// here: the server's Shutdown stops it, started or not).
func newServer(cfg settings.Config, st *state.State, lim *limit.Limiter, pub *emitter.Publisher, tp *tracing.Provider, reg prometheus.Registerer, log zerolog.Logger) (*server.Server, error) {
	ciph, err := clientip.ParseHeader(cfg.Proxy.ClientIPHeader)
	if err != nil {
		return nil, err
	}
	cip, err := clientip.NewResolver(cfg.Proxy.TrustedProxies, ciph)
	if err != nil {
		return nil, err
	}
	return server.New(server.Options{
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
}

// registerStateMetrics exports the applied config version and the stale
// sessions served.
func (n *node) registerStateMetrics() {
	st := n.state
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_config_version", Help: "Config version applied by this node.",
	}, func() float64 { return float64(st.Version()) }))
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_config_last_applied_timestamp_seconds",
		Help: "Unix time this node last applied a config version (0 before the first).",
	}, func() float64 {
		if t := st.AppliedAt(); !t.IsZero() {
			return float64(t.UnixNano()) / 1e9
		}
		return 0
	}))
	n.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "sluice_auth_stale_sessions_total",
		Help: "Key lookups answered with a cached session past its TTL because the store could not re-read it.",
	}, func() float64 { return float64(st.Sessions().StaleServed()) }))
}

// newOps builds the operations listener: /health with the Redis and NATS
// probes, /ready, /metrics and, when on, pprof.
func (n *node) newOps() *ops.Server {
	o := ops.New(n.cfg.OpsListen, n.ready, n.reg, n.log)
	o.Watch("redis", func(ctx context.Context) error { return store.Ping(ctx, n.rdb) })
	o.Watch("nats", func(context.Context) error {
		if !n.nc.IsConnected() {
			return errors.New(n.nc.Status().String())
		}
		return nil
	})
	if n.cfg.Profiling {
		o.EnableProfiling()
	}
	return o
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
