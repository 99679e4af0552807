// Package jwtauth verifies JSON Web Tokens for APIs in auth mode "jwt".
//
// A Provider is built once per gateway. It holds the key sets fetched from
// JWKS URLs and OIDC issuers, each shared by every API that names the same
// source, and builds one Verifier per API from its model.JWTAuth. A
// Verifier reads the token from the request, checks its shape and JOSE
// header (header.go: canonical base64url, no duplicate members, no crit, no
// unencoded payload, a JWT typ), its algorithm against the API's list, its
// signature (the algorithm implementations of github.com/golang-jwt/jwt/v5),
// then its claims (claims.go: exp required, nbf and iat with leeway, iss and
// aud when configured, NumericDates of any magnitude clamped, never
// wrapped), and caches the outcome per token until the token expires, so a
// repeated token costs a SHA-256 and a map lookup, not a signature check.
//
// The identity a token yields (Result.Identity) is the hex SHA-256 of
// "<iss>|<identity claim>": the same shape as an API key hash, so rate
// limits, quotas and usage events treat token callers like key holders.
//
// Lock order: keySet.mu before Provider.mu; no other lock nests.
package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/validation"
)

// Options tune key fetching and the verification cache. They sit under
// `jwt:` in the gateway config.
type Options struct {
	// RefreshInterval is the age after which a key set is fetched again in
	// the background (default 5m).
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// MinRefreshInterval is the least time between two fetches of one key
	// set, whatever triggers them: a flood of tokens with unknown kids or
	// bad signatures causes at most one fetch per interval (default 10s).
	MinRefreshInterval time.Duration `yaml:"min_refresh_interval"`
	// FetchTimeout bounds one discovery or JWKS fetch (default 5s).
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
	// MaxResponseBytes bounds a discovery document or JWKS (default 1 MiB).
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// CacheSize is the most verified tokens remembered per API (default
	// 10000).
	CacheSize int `yaml:"cache_size"`
	// MaxTokenBytes refuses longer tokens before parsing (default 8192).
	MaxTokenBytes int `yaml:"max_token_bytes"`

	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time `yaml:"-"`
	// HTTPClient fetches keys (default: a client with FetchTimeout).
	HTTPClient *http.Client `yaml:"-"`
}

// Defaults.
const (
	DefaultRefreshInterval    = 5 * time.Minute
	DefaultMinRefreshInterval = 10 * time.Second
	DefaultFetchTimeout       = 5 * time.Second
	DefaultMaxResponseBytes   = 1 << 20
	DefaultCacheSize          = 10000
	DefaultMaxTokenBytes      = 8192
)

func (o Options) withDefaults() Options {
	if o.RefreshInterval == 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.MinRefreshInterval == 0 {
		o.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if o.FetchTimeout == 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MaxTokenBytes == 0 {
		o.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate returns every problem with the options (zero means default).
func (o *Options) Validate() validation.Errors {
	var errs validation.Errors
	for name, d := range map[string]time.Duration{"refresh_interval": o.RefreshInterval, "min_refresh_interval": o.MinRefreshInterval, "fetch_timeout": o.FetchTimeout} {
		if d < 0 {
			errs.Add(name, "must not be negative")
		}
	}
	if o.MaxResponseBytes < 0 {
		errs.Add("max_response_bytes", "must not be negative")
	}
	if o.CacheSize < 0 {
		errs.Add("cache_size", "must not be negative")
	}
	if o.MaxTokenBytes < 0 {
		errs.Add("max_token_bytes", "must not be negative")
	}
	return errs
}

// Provider holds the key sets shared by every API's Verifier.
type Provider struct {
	opts   Options
	log    zerolog.Logger
	client *http.Client
	m      *metrics

	ctx    context.Context // ends at Shutdown: fetches in flight stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	sets   map[string]*keySet
	closed bool
}

// New returns a Provider; metrics go to reg.
func New(opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Provider, error) {
	if err := opts.Validate().Err(); err != nil {
		return nil, fmt.Errorf("jwt options: %w", err)
	}
	opts = opts.withDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("jwt metrics: %w", err)
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{
			Timeout: opts.FetchTimeout,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: opts.FetchTimeout}).DialContext,
				TLSHandshakeTimeout:   opts.FetchTimeout,
				ResponseHeaderTimeout: opts.FetchTimeout,
				MaxIdleConnsPerHost:   1,
				IdleConnTimeout:       30 * time.Second,
			},
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Provider{
		opts: opts, log: log.With().Str("component", "gateway.jwtauth").Logger(),
		client: client, m: m, ctx: ctx, cancel: cancel, sets: map[string]*keySet{},
	}, nil
}

// Start does nothing yet: key sets are fetched when a Verifier is built and
// refreshed as they are used. It is here so the gateway starts every
// component the same way.
func (p *Provider) Start(ctx context.Context) error { return nil }

// Shutdown stops fetches in flight and waits for them until ctx ends.
func (p *Provider) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jwt provider shutdown: %w", ctx.Err())
	}
}

func (p *Provider) now() time.Time { return p.opts.Now() }

// keySetFor returns the shared key set of a JWKS URL or issuer, creating
// it (and starting its first fetch) on first use.
func (p *Provider) keySetFor(jwksURL, issuer string) *keySet {
	id := "jwks " + jwksURL
	if issuer != "" {
		id = "oidc " + issuer
	}
	p.mu.Lock()
	s, ok := p.sets[id]
	if !ok {
		s = &keySet{p: p, jwksURL: jwksURL, issuer: issuer}
		p.sets[id] = s
	}
	p.mu.Unlock()
	if !ok {
		s.fetch(p.now(), false) // warm up before the first token arrives
	}
	return s
}

// goFetch runs s.run on its own goroutine unless the provider is shut
// down. Called with s.mu held.
func (p *Provider) goFetch(s *keySet) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		s.run(p.ctx)
	}()
	return true
}

// fetched records the outcome of one key set fetch.
func (p *Provider) fetched(s *keySet, err error) {
	if err == nil {
		p.m.fetchOK.Inc()
		return
	}
	p.m.fetchErr.Inc()
	if errors.Is(err, context.Canceled) {
		return
	}
	cached := "none"
	if m := s.keys.Load(); m != nil {
		cached = m.fetched.UTC().Format(time.RFC3339)
	}
	// Fetches are rate-limited per key set, so this logs at most once per
	// MinRefreshInterval per source.
	p.log.Warn().Err(err).Str("source", s.source()).Str("cached_keys_from", cached).Msg("jwt key set fetch failed; cached keys stay in use")
}

type metrics struct {
	results   map[string]prometheus.Counter
	valid     prometheus.Counter
	cacheHits prometheus.Counter
	fetchOK   prometheus.Counter
	fetchErr  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	verifications := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_jwt_verifications_total",
		Help: "Tokens checked, by result: valid or the error code.",
	}, []string{"result"})
	hits := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_jwt_cache_hits_total",
		Help: "Tokens accepted from the verification cache, without a signature check.",
	})
	fetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_jwt_key_fetches_total",
		Help: "Discovery and JWKS fetches, by result (ok or error).",
	}, []string{"result"})
	if reg != nil {
		for _, c := range []prometheus.Collector{verifications, hits, fetches} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	m := &metrics{
		results: map[string]prometheus.Counter{}, valid: verifications.WithLabelValues("valid"),
		cacheHits: hits, fetchOK: fetches.WithLabelValues("ok"), fetchErr: fetches.WithLabelValues("error"),
	}
	for _, c := range allCodes {
		m.results[c] = verifications.WithLabelValues(c)
	}
	return m, nil
}
