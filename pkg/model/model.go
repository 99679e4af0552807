// Package model holds the objects Sluice stores and every service shares:
// APIs, policies and keys, with their validation.
//
// Limits and who they count against:
//
//   - API.RateLimit counts every request to the API, whoever sends it.
//
//   - Endpoint.RateLimit counts per identity (key or token subject) per
//     endpoint; on a keyless API, per endpoint for everyone.
//
//   - Policy.RateLimit and Policy.Quota count per identity per policy.
//
//   - Key.RateLimit and Key.Quota, when set, replace the limit (or quota) of
//     every policy the key holds: per-key overrides win.
//
//   - Org.RateLimit and Org.Quota count every request of every key naming
//     the org (Key.Org), across all APIs, under the org's hash tag.
//
//   - Limit.LimitBy, on an API or endpoint limit, counts it per client
//     instead: per client IP, header value, token claim and/or key.
//
// Counters are scoped to one API by default: a key's limit and quota apply
// to each API it calls separately, and every counter one request touches
// is on one Redis Cluster slot (hash tag = API id), checked atomically. A
// policy's or key's limit or quota with scope "key" counts across every
// API the key calls, under the key's own hash tag (docs/limits.md says what
// a decision across two slots guarantees).
package model

import "time"

// Auth modes.
const (
	AuthKeyless = "keyless"
	AuthAPIKey  = "api_key"
	AuthJWT     = "jwt"
	// AuthMTLS authenticates callers by a client certificate the gateway's
	// TLS listener verified and registered as a key (see Key.Certificate).
	AuthMTLS = "mtls"
)

// What an API does when the store (Redis) cannot be reached.
const (
	StoreErrorOpen   = "open"   // serve, limited by a per-node in-memory limiter
	StoreErrorClosed = "closed" // refuse with 503
)

// Limit modes.
const (
	LimitExact = "exact" // every decision atomic in Redis
	LimitLease = "lease" // a node spends slices of the allowance leased ahead of time
)

// API is one upstream service published through the gateway.
type API struct {
	ID   string `json:"id" yaml:"id"`
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Hosts the API answers on; empty means any host.
	Hosts []string `json:"hosts,omitempty" yaml:"hosts,omitempty"`
	// ListenPath is the path prefix the API is served under, e.g. "/orders/".
	ListenPath string `json:"listen_path" yaml:"listen_path"`
	// StripListenPath removes ListenPath before proxying.
	StripListenPath bool       `json:"strip_listen_path,omitempty" yaml:"strip_listen_path,omitempty"`
	Upstream        Upstream   `json:"upstream" yaml:"upstream"`
	Auth            Auth       `json:"auth" yaml:"auth"`
	RateLimit       *Limit     `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
	Endpoints       []Endpoint `json:"endpoints,omitempty" yaml:"endpoints,omitempty"`
	// OnStoreError is "open" (default) or "closed".
	OnStoreError string `json:"on_store_error,omitempty" yaml:"on_store_error,omitempty"`
	// MaxBodyBytes bounds request bodies; 0 means the gateway's default.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty" yaml:"max_body_bytes,omitempty"`
	// Streaming, when set, forwards the responses it selects as they
	// arrive (see Streaming); nil: every response is read whole first.
	Streaming *Streaming `json:"streaming,omitempty" yaml:"streaming,omitempty"`
	// Upgrades are the protocols a request may switch to ("websocket");
	// empty: every Upgrade request is refused.
	Upgrades []string `json:"upgrades,omitempty" yaml:"upgrades,omitempty"`
	// Tags label the API for partial ownership: a declarative apply can
	// select the objects of one tag (ValidTag).
	Tags []string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// Upstream is where an API's requests go.
type Upstream struct {
	// Targets are base URLs, e.g. "http://10.0.0.5:8000"; requests are
	// balanced round robin over the healthy ones.
	Targets        []string `json:"targets" yaml:"targets"`
	ConnectTimeout Duration `json:"connect_timeout,omitempty" yaml:"connect_timeout,omitempty"`
	ReadTimeout    Duration `json:"read_timeout,omitempty" yaml:"read_timeout,omitempty"`
	WriteTimeout   Duration `json:"write_timeout,omitempty" yaml:"write_timeout,omitempty"`
	// TLS configures connections to https:// targets (see UpstreamTLS).
	TLS *UpstreamTLS `json:"tls,omitempty" yaml:"tls,omitempty"`
}

// Auth says how callers of an API authenticate.
type Auth struct {
	Mode string `json:"mode" yaml:"mode"`
	// Header carries the API key (default X-API-Key). "Authorization: Bearer"
	// is always accepted too.
	Header string `json:"header,omitempty" yaml:"header,omitempty"`
	// QueryParam, when set, also accepts the key as a query parameter.
	QueryParam string `json:"query_param,omitempty" yaml:"query_param,omitempty"`
	// JWT configures mode "jwt" (see JWTAuth); with mode "api_key" it makes
	// the API take an API key or a JWT, whichever the request carries.
	JWT *JWTAuth `json:"jwt,omitempty" yaml:"jwt,omitempty"`
	// MTLS, with mode "api_key", also accepts a verified client certificate
	// registered as a key instead of an API key (mode "mtls" accepts only
	// certificates).
	MTLS bool `json:"mtls,omitempty" yaml:"mtls,omitempty"`
}

// DefaultKeyHeader is the header that carries an API key when Auth.Header
// is empty.
const DefaultKeyHeader = "X-API-Key"

// EffectiveHeader is Header, or DefaultKeyHeader when it is empty.
func (a *Auth) EffectiveHeader() string {
	if a.Header == "" {
		return DefaultKeyHeader
	}
	return a.Header
}

// Endpoint is a method and path pattern inside an API with its own limit.
type Endpoint struct {
	// Methods the endpoint covers; empty or "*" means all.
	Methods []string `json:"methods,omitempty" yaml:"methods,omitempty"`
	// Path is a pattern relative to the API's listen path (see Pattern).
	Path      string `json:"path" yaml:"path"`
	RateLimit *Limit `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
}

// Limit allows Rate requests per Per, with bursts of up to Burst (default
// Rate). It is enforced with GCRA, so the allowance refills smoothly.
type Limit struct {
	Rate  int64    `json:"rate" yaml:"rate"`
	Per   Duration `json:"per" yaml:"per"`
	Burst int64    `json:"burst,omitempty" yaml:"burst,omitempty"`
	// Mode is "exact" (default) or "lease".
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Shadow limits are counted and reported but never refuse.
	Shadow bool `json:"shadow,omitempty" yaml:"shadow,omitempty"`
	// LimitBy, on an API or endpoint limit, counts it per client instead:
	// per distinct combination of the values named (LimitByClientIP,
	// LimitByKey, "header:<name>", "claim:<name>"). Values are hashed into
	// the counter's name, never stored.
	LimitBy []string `json:"limit_by,omitempty" yaml:"limit_by,omitempty"`
	// OnMissing says what a request lacking a header, claim or key that
	// LimitBy names gets: "refuse" (default, 400) or "shared" (counted
	// under one bucket shared by every such request).
	OnMissing string `json:"on_missing,omitempty" yaml:"on_missing,omitempty"`
	// Scope, on a policy's or key's limit, is "api" (default: counted on
	// each API separately) or "key" (one counter across every API the key
	// calls).
	Scope string `json:"scope,omitempty" yaml:"scope,omitempty"`
	// Units, when set, makes the limit count units (a cost per request)
	// instead of requests: Rate and Burst are then units.
	Units *Units `json:"units,omitempty" yaml:"units,omitempty"`
}

// Units says what one request costs, for a limit counting units.
type Units struct {
	// From is where the cost comes from: "fixed" (Cost), "request_header"
	// (an integer in Header, at most Max), "response_header" (an integer
	// in the upstream's response Header) or "response_json" (a number at
	// Path in the JSON response body, e.g. "usage.total_tokens").
	From string `json:"from" yaml:"from"`
	// Cost is the fixed cost (From "fixed").
	Cost int64 `json:"cost,omitempty" yaml:"cost,omitempty"`
	// Header names the request or response header carrying the cost.
	Header string `json:"header,omitempty" yaml:"header,omitempty"`
	// Path is the dotted path of the cost in a JSON response body.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Max bounds a cost a request declares (From "request_header"):
	// larger, or not a positive integer, is refused with 400.
	Max int64 `json:"max,omitempty" yaml:"max,omitempty"`
	// Reserve is what a response-costed request reserves before it is
	// forwarded (refused with 429 when the limit cannot cover it); once
	// the response gives the cost, the rest is given back, or the excess
	// counted. A Reserve at least every cost keeps the limit exact.
	Reserve int64 `json:"reserve,omitempty" yaml:"reserve,omitempty"`
}

// Where a cost comes from.
const (
	UnitsFixed          = "fixed"
	UnitsRequestHeader  = "request_header"
	UnitsResponseHeader = "response_header"
	UnitsResponseJSON   = "response_json"
)

// FromResponse reports whether the cost is known only after the response.
func (u *Units) FromResponse() bool {
	return u.From == UnitsResponseHeader || u.From == UnitsResponseJSON
}

// LimitBy values; also "header:<name>" and "claim:<name>".
const (
	LimitByClientIP = "client_ip"
	LimitByKey      = "key"
	LimitByHeader   = "header:"
	LimitByClaim    = "claim:"
)

// OnMissing values.
const (
	OnMissingRefuse = "refuse"
	OnMissingShared = "shared"
)

// Scopes of a policy's or key's limit or quota.
const (
	ScopeAPI = "api"
	ScopeKey = "key"
)

// EffectiveBurst is Burst, or Rate when Burst is unset.
func (l *Limit) EffectiveBurst() int64 {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.Rate
}

// Quota allows Max requests per Renewal period, counted from the first
// request of the period.
type Quota struct {
	Max     int64    `json:"max" yaml:"max"`
	Renewal Duration `json:"renewal" yaml:"renewal"`
	// Scope is "api" (default: counted on each API separately) or "key"
	// (one count across every API the key calls).
	Scope string `json:"scope,omitempty" yaml:"scope,omitempty"`
	// Units, when set, makes the quota count units (a cost per request)
	// instead of requests: Max is then units. A cost the response gives
	// is reserved before forwarding and settled after, as for a limit.
	Units *Units `json:"units,omitempty" yaml:"units,omitempty"`
}

// Policy grants access rights and limits; keys hold one or more policies.
type Policy struct {
	ID        string        `json:"id" yaml:"id"`
	Name      string        `json:"name,omitempty" yaml:"name,omitempty"`
	Access    []AccessRight `json:"access" yaml:"access"`
	RateLimit *Limit        `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
	Quota     *Quota        `json:"quota,omitempty" yaml:"quota,omitempty"`
	// Tags label the policy, as API.Tags.
	Tags []string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// AccessRight grants an API, optionally narrowed to methods and paths.
type AccessRight struct {
	API string `json:"api" yaml:"api"`
	// Methods allowed; empty or "*" means all.
	Methods []string `json:"methods,omitempty" yaml:"methods,omitempty"`
	// Paths allowed, as patterns relative to the listen path; empty means all.
	Paths []string `json:"paths,omitempty" yaml:"paths,omitempty"`
}

// Key is an API key as stored: only the SHA-256 of the key is kept.
type Key struct {
	ID string `json:"id" yaml:"id"`
	// Hash is the lowercase hex SHA-256 of the key.
	Hash     string   `json:"hash" yaml:"hash"`
	Alias    string   `json:"alias,omitempty" yaml:"alias,omitempty"`
	Policies []string `json:"policies" yaml:"policies"`
	// Access, when non-empty, replaces the access rights of the policies.
	Access    []AccessRight `json:"access,omitempty" yaml:"access,omitempty"`
	RateLimit *Limit        `json:"rate_limit,omitempty" yaml:"rate_limit,omitempty"`
	Quota     *Quota        `json:"quota,omitempty" yaml:"quota,omitempty"`
	// Org, when set, names the org (tenant) the key belongs to: the org's
	// rate limit and quota count this key's requests too.
	Org       string     `json:"org,omitempty" yaml:"org,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty" yaml:"expires_at,omitempty"`
	Disabled  bool       `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	CreatedAt time.Time  `json:"created_at" yaml:"created_at"`
	// Certificate, when set, makes this the record of a client certificate
	// rather than of an API key: Hash is then HashCert of the certificate,
	// and the record authenticates only TLS clients presenting it.
	Certificate *KeyCertificate `json:"client_certificate,omitempty" yaml:"client_certificate,omitempty"`
	// Tags label the key, as API.Tags (declarative files select by them).
	Tags []string `json:"tags,omitempty" yaml:"tags,omitempty"`
}

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
}
