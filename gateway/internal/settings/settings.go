// Package settings is the gateway's configuration: one YAML file, every field
// overridable by an environment variable (SLUICE_<YAML_PATH>, see
// pkg/config), defaults in Default, every problem reported by Validate.
package settings

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"time"

	"github.com/sluicegw/sluice/gateway/internal/clientip"
	"github.com/sluicegw/sluice/gateway/internal/edgetls"
	"github.com/sluicegw/sluice/gateway/internal/emitter"
	"github.com/sluicegw/sluice/gateway/internal/jwtauth"
	"github.com/sluicegw/sluice/gateway/internal/limit"
	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/gateway/internal/server"
	"github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/connect"
	"github.com/sluicegw/sluice/pkg/logging"
	"github.com/sluicegw/sluice/pkg/tracing"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Config is the gateway node's configuration.
type Config struct {
	// NodeID names the node in usage events and heartbeats; default:
	// hostname plus a short random suffix.
	NodeID string `yaml:"node_id"`
	// Listen is the plain HTTP traffic address (default ":8080"); empty
	// turns plain HTTP off (tls.listen must then be set).
	Listen string `yaml:"listen"`
	// TLS is the HTTPS traffic listener (off unless tls.listen is set).
	TLS edgetls.Options `yaml:"tls"`
	// OpsListen serves /health, /ready and /metrics (default ":9080").
	OpsListen string `yaml:"ops_listen"`
	// AdvertiseAddress is the traffic address the node reports in its
	// heartbeats (GET /v1/nodes on the syncer); default: Listen, with the
	// host name when Listen names no host.
	AdvertiseAddress string `yaml:"advertise_address"`
	// Profiling serves Go's pprof endpoints under /debug/pprof/ on the
	// operations listener (default false).
	Profiling bool `yaml:"profiling"`
	// ShutdownTimeout bounds the drain of in-flight requests and the flush
	// of usage events on SIGINT/SIGTERM (default 15s).
	ShutdownTimeout time.Duration   `yaml:"shutdown_timeout"`
	Redis           connect.Redis   `yaml:"redis"`
	NATS            connect.NATS    `yaml:"nats"`
	Limits          limit.Options   `yaml:"limits"`
	Usage           emitter.Options `yaml:"usage"`
	Sync            Sync            `yaml:"sync"`
	Proxy           Proxy           `yaml:"proxy"`
	Auth            Auth            `yaml:"auth"`
	// JWT tunes key fetching and token verification for APIs in auth mode
	// jwt (and API key APIs that also take a JWT).
	JWT jwtauth.Options `yaml:"jwt"`
	Log logging.Config  `yaml:"log"`
	// AccessLog: one JSON line per request (mode off, errors, sampled or
	// all; see docs/operations.md, "Access log").
	AccessLog server.AccessLogOptions `yaml:"access_log"`
	// Tracing: OpenTelemetry spans, off by default; exporter, endpoint and
	// sampler come from the OTEL_* variables (docs/operations.md, "Tracing").
	Tracing tracing.Config `yaml:"tracing"`
}

// Sync tunes how the node follows config changes.
type Sync struct {
	CheckInterval     time.Duration `yaml:"check_interval"`     // periodic version check, default 5s
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"` // default 2s
}

// Proxy bounds requests and sets upstream defaults (an API's own upstream
// timeouts win).
type Proxy struct {
	// MaxBodyBytes bounds request and response bodies (default 10 MiB); an
	// API's max_body_bytes can lower it for that API, never raise it.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// RequestBufferBytes: a request body up to this size (a Content-Length
	// at most it, or a chunked body ending within it) is read whole before
	// the request is judged; a larger one is forwarded as it arrives, once
	// judged (default 1 MiB; docs/streaming.md, "Streaming request bodies").
	RequestBufferBytes int `yaml:"request_buffer_bytes"`
	// MinRequestBodyRate is the slowest, in bytes per second, a streamed
	// request body may arrive, averaged from one read_timeout after it
	// began; a slower one is cut with 408 (default 1024; 0: no minimum,
	// each wait for more bytes is still bounded by read_timeout).
	MinRequestBodyRate int64 `yaml:"min_request_body_rate"`
	// MaxHeaderBytes bounds the request line plus headers; larger get 431
	// (default 8192).
	MaxHeaderBytes  int           `yaml:"max_header_bytes"`
	ConnectTimeout  time.Duration `yaml:"connect_timeout"`    // default 2s
	ReadTimeout     time.Duration `yaml:"read_timeout"`       // default 30s
	WriteTimeout    time.Duration `yaml:"write_timeout"`      // default 30s
	MaxConnsPerHost int           `yaml:"max_conns_per_host"` // default 1024
	// ClientIdleTimeout closes idle client keep-alive connections (default 60s).
	ClientIdleTimeout time.Duration `yaml:"client_idle_timeout"`
	// MaxForwardedForBytes bounds the X-Forwarded-For list a request
	// brings, all its lines joined with ", "; a longer one is refused with
	// 431 header_too_large (default 1024, at most 65536).
	MaxForwardedForBytes int `yaml:"max_forwarded_for_bytes"`
	// ClientForwardingHeaders says what becomes of the Forwarded and
	// X-Real-IP headers clients send: "strip" (default) removes them and
	// sets X-Real-IP to the client address; "pass" forwards them unchanged,
	// for a gateway that only ever hears from a proxy that sets them.
	ClientForwardingHeaders string `yaml:"client_forwarding_headers"`
	// UpgradeIdleTimeout closes an upgraded (WebSocket) connection when no
	// byte crossed it either way for this long (default 5m);
	// UpgradeMaxLifetime closes it at this age (default 24h).
	UpgradeIdleTimeout time.Duration `yaml:"upgrade_idle_timeout"`
	UpgradeMaxLifetime time.Duration `yaml:"upgrade_max_lifetime"`
	// RequestIDHeader names the request id header (default X-Request-ID):
	// a client's value of 1 to 128 visible ASCII characters is kept,
	// anything else replaced by an id the node makes; the upstream receives
	// it, the client gets it back, and it is in the usage event, the access
	// log and every log line about the request.
	RequestIDHeader string `yaml:"request_id_header"`
	// TrustedProxies are the CIDRs (or addresses) of proxies in front of
	// the gateway whose forwarding header names the client: a limit_by
	// client_ip counts the right-most address of that header that is not a
	// trusted proxy. A request from any other peer is counted by its own
	// address, whatever it sends. Default: none (the peer is the client).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ClientIPHeader is the header trusted proxies name the client in:
	// "X-Forwarded-For" (default) or "Forwarded" (RFC 7239 for=).
	ClientIPHeader string `yaml:"client_ip_header"`
}

// Auth tunes API key authentication.
type Auth struct {
	// MinKeyLength: shorter keys get 401 without a store lookup (default 16).
	MinKeyLength int `yaml:"min_key_length"`
	// SessionCacheSize bounds the cached sessions (default 100000).
	SessionCacheSize int `yaml:"session_cache_size"`
	// SessionTTL bounds how long a cached session is used without re-reading
	// the key, should a sync event be missed (default 30s).
	SessionTTL time.Duration `yaml:"session_ttl"`
	// NegativeCacheSize bounds the remembered unknown key hashes (default 10000).
	NegativeCacheSize int `yaml:"negative_cache_size"`
	// NegativeTTL is how long an unknown key hash is answered 401 without a
	// store lookup (default 5s).
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// LookupTimeout bounds one key lookup in Redis (default 50ms).
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
	// MaxStale bounds how long past session_ttl a fail-open API still
	// serves a cached session the store cannot re-read (Redis down); an
	// eviction heard on NATS still applies at once. 0 (default): for the
	// whole outage.
	MaxStale time.Duration `yaml:"max_stale"`
}

// defaultRedis is the shared default with no retries: a failed command
// is answered by the limiter's and the session cache's own fallbacks.
func defaultRedis() connect.Redis {
	r := connect.DefaultRedis()
	r.MaxRetries = -1
	return r
}

// Default returns the configuration with every default set.
func Default() Config {
	return Config{
		Listen:          ":8080",
		TLS:             edgetls.Options{}.WithDefaults(),
		OpsListen:       ":9080",
		ShutdownTimeout: 15 * time.Second,
		Redis:           defaultRedis(),
		NATS:            connect.DefaultNATS(),
		Limits:          limit.Options{}.WithDefaults(),
		Usage:           emitter.Options{}.WithDefaults(),
		Sync:            Sync{CheckInterval: 5 * time.Second, HeartbeatInterval: 2 * time.Second},
		Proxy: Proxy{
			MaxBodyBytes: 10 << 20, MaxHeaderBytes: 8192, ConnectTimeout: 2 * time.Second,
			RequestBufferBytes: server.DefaultRequestBufferBytes, MinRequestBodyRate: 1024,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, MaxConnsPerHost: 1024,
			ClientIdleTimeout: 60 * time.Second, MaxForwardedForBytes: proxy.DefaultMaxForwardedFor,
			ClientForwardingHeaders: string(proxy.StripClientHeaders),
			UpgradeIdleTimeout:      5 * time.Minute, UpgradeMaxLifetime: 24 * time.Hour,
			RequestIDHeader: "X-Request-ID",
		},
		Auth: Auth{
			MinKeyLength: 16, SessionCacheSize: 100000, SessionTTL: 30 * time.Second,
			NegativeCacheSize: 10000, NegativeTTL: 5 * time.Second, LookupTimeout: 50 * time.Millisecond,
		},
		JWT: jwtauth.Options{
			RefreshInterval: jwtauth.DefaultRefreshInterval, MinRefreshInterval: jwtauth.DefaultMinRefreshInterval,
			FetchTimeout: jwtauth.DefaultFetchTimeout, MaxResponseBytes: jwtauth.DefaultMaxResponseBytes,
			CacheSize: jwtauth.DefaultCacheSize, MaxTokenBytes: jwtauth.DefaultMaxTokenBytes,
		},
		Log:       logging.Default(),
		AccessLog: server.AccessLogOptions{}.WithDefaults(),
	}
}

// Load returns the defaults overlaid with the YAML file at path (none when
// empty) and then the SLUICE_* environment. It does not validate.
func Load(path string) (Config, error) {
	c := Default()
	if err := config.Load(path, &c); err != nil {
		return c, err
	}
	return c, nil
}

// Vars lists the environment variables that set configuration fields.
func Vars() []config.Var {
	c := Default()
	return config.Vars(config.Prefix, &c)
}

// ResolveAdvertiseAddress fills AdvertiseAddress when it is empty: Listen
// (tls.listen when plain HTTP is off), with the host name when it has no
// host (":8080").
func (c *Config) ResolveAdvertiseAddress() {
	if c.AdvertiseAddress != "" {
		return
	}
	listen := c.Listen
	if listen == "" {
		listen = c.TLS.Listen
	}
	c.AdvertiseAddress = listen
	host, port, err := net.SplitHostPort(listen)
	if err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.AdvertiseAddress = net.JoinHostPort(h, port)
		}
	}
}

// ResolveNodeID fills NodeID when it is empty: hostname plus a random suffix.
func (c *Config) ResolveNodeID() {
	if c.NodeID != "" {
		return
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "gateway"
	}
	host = strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, host)
	var b [3]byte
	_, _ = rand.Read(b[:])
	c.NodeID = host + "-" + hex.EncodeToString(b[:])
}

// Validate returns every problem, each with its field path.
func (c *Config) Validate() validation.Errors {
	var errs validation.Errors
	if c.NodeID != "" && !validNodeID(c.NodeID) {
		errs.Add("node_id", "must be letters, digits, '_' or '-' (it is part of NATS subjects)")
	}
	switch {
	case c.Listen != "":
		checkAddr(&errs, "listen", c.Listen)
	case !c.TLS.Enabled():
		errs.Add("listen", "set listen, tls.listen or both: the node needs a traffic listener")
	}
	checkAddr(&errs, "ops_listen", c.OpsListen)
	if c.Listen != "" && c.Listen == c.OpsListen {
		errs.Add("ops_listen", "must differ from listen")
	}
	if c.TLS.Enabled() && (c.TLS.Listen == c.Listen || c.TLS.Listen == c.OpsListen) {
		errs.Add("tls.listen", "must differ from listen and ops_listen")
	}
	errs.Merge("tls", c.TLS.Validate())
	positive(&errs, "shutdown_timeout", c.ShutdownTimeout)
	errs.Merge("redis", c.Redis.Validate())
	errs.Merge("nats", c.NATS.Validate())
	errs.Merge("limits", c.Limits.Validate())
	errs.Merge("usage", c.Usage.Validate())
	positive(&errs, "sync.check_interval", c.Sync.CheckInterval)
	positive(&errs, "sync.heartbeat_interval", c.Sync.HeartbeatInterval)
	if c.Proxy.MaxBodyBytes <= 0 || c.Proxy.MaxBodyBytes > 1<<31-1 {
		errs.Add("proxy.max_body_bytes", "must be between 1 and 2147483647")
	}
	if c.Proxy.RequestBufferBytes < 1 || c.Proxy.RequestBufferBytes > 1<<31-1 {
		errs.Add("proxy.request_buffer_bytes", "must be between 1 and 2147483647")
	}
	if c.Proxy.MinRequestBodyRate < 0 {
		errs.Add("proxy.min_request_body_rate", "must not be negative (0: no minimum)")
	}
	if c.Proxy.MaxHeaderBytes < 1024 || c.Proxy.MaxHeaderBytes > 1<<20 {
		errs.Add("proxy.max_header_bytes", "must be between 1024 and 1048576")
	}
	positive(&errs, "proxy.connect_timeout", c.Proxy.ConnectTimeout)
	positive(&errs, "proxy.read_timeout", c.Proxy.ReadTimeout)
	positive(&errs, "proxy.write_timeout", c.Proxy.WriteTimeout)
	positive(&errs, "proxy.client_idle_timeout", c.Proxy.ClientIdleTimeout)
	positive(&errs, "proxy.upgrade_idle_timeout", c.Proxy.UpgradeIdleTimeout)
	positive(&errs, "proxy.upgrade_max_lifetime", c.Proxy.UpgradeMaxLifetime)
	if c.Proxy.MaxConnsPerHost <= 0 {
		errs.Add("proxy.max_conns_per_host", "must be positive")
	}
	if c.Proxy.MaxForwardedForBytes < 64 || c.Proxy.MaxForwardedForBytes > 65536 {
		errs.Add("proxy.max_forwarded_for_bytes", "must be between 64 and 65536")
	}
	for i, cidr := range c.Proxy.TrustedProxies {
		if _, err := clientip.ParsePrefix(cidr); err != nil {
			errs.Add(validation.Index("proxy.trusted_proxies", i), "%v", err)
		}
	}
	if _, err := clientip.ParseHeader(c.Proxy.ClientIPHeader); err != nil {
		errs.Add("proxy.client_ip_header", "%v", err)
	}
	switch proxy.ClientHeaders(c.Proxy.ClientForwardingHeaders) {
	case proxy.StripClientHeaders, proxy.PassClientHeaders:
	default:
		errs.Add("proxy.client_forwarding_headers", "must be %q or %q, got %q",
			proxy.StripClientHeaders, proxy.PassClientHeaders, c.Proxy.ClientForwardingHeaders)
	}
	if !validHeaderName(c.Proxy.RequestIDHeader) {
		errs.Add("proxy.request_id_header", "must be a header name of 1 to 64 letters, digits or '-', got %q", c.Proxy.RequestIDHeader)
	}
	if c.Auth.MinKeyLength < 1 || c.Auth.MinKeyLength > 1024 {
		errs.Add("auth.min_key_length", "must be between 1 and 1024")
	}
	if c.Auth.SessionCacheSize <= 0 {
		errs.Add("auth.session_cache_size", "must be positive")
	}
	if c.Auth.NegativeCacheSize <= 0 {
		errs.Add("auth.negative_cache_size", "must be positive")
	}
	positive(&errs, "auth.session_ttl", c.Auth.SessionTTL)
	positive(&errs, "auth.negative_ttl", c.Auth.NegativeTTL)
	positive(&errs, "auth.lookup_timeout", c.Auth.LookupTimeout)
	if c.Auth.MaxStale < 0 {
		errs.Add("auth.max_stale", "must not be negative (0: no bound)")
	}
	errs.Merge("jwt", c.JWT.Validate())
	errs.Merge("access_log", c.AccessLog.Validate())
	errs.Merge("tracing", c.Tracing.Validate())
	errs.Merge("log", c.Log.Validate())
	c.crossChecks(&errs)
	return errs
}

func positive(errs *validation.Errors, field string, d time.Duration) {
	if d <= 0 {
		errs.Add(field, "must be a positive duration, like 500ms or 5s")
	}
}

func checkAddr(errs *validation.Errors, field, addr string) {
	if err := validation.ListenAddr(addr); err != nil {
		errs.Add(field, "%v", err)
	}
}

func validHeaderName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func validNodeID(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
