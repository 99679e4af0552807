package limit

import (
	"time"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Options tune the limiter. They sit under `limits:` in the gateway config.
type Options struct {
	// Timeout bounds one script call to Redis (default 25ms). A request
	// queued behind a full set of in-flight calls waits at most about twice
	// this before it is decided.
	Timeout time.Duration `yaml:"timeout"`
	// MaxBatch is the most decisions sent in one script call (default
	// 256), and the most settlements and refunds in one adjust call.
	MaxBatch int `yaml:"max_batch"`
	// Pipelines is the most script calls in flight per API (default 2),
	// and the most adjust calls in flight per slot.
	Pipelines int `yaml:"pipelines"`
	// FallbackShare is the share of each limit and quota one node allows on
	// its own while Redis is unreachable and the API fails open (default 1:
	// every node allows the whole limit, so N nodes may together allow up to
	// N times it; set 1/N to keep the cluster within the limit when traffic
	// is spread evenly over N nodes). Values in (0, 1].
	FallbackShare float64 `yaml:"fallback_share"`
	// FallbackMaxKeys bounds the counters the fallback limiter keeps
	// (default 100000); past it, new identities are allowed untracked.
	FallbackMaxKeys int `yaml:"fallback_max_keys"`
	// StoreRetry is how long decisions skip Redis after a store error before
	// the next call tries it again (default 250ms).
	StoreRetry time.Duration `yaml:"store_retry"`
	// LogInterval is the least time between two log lines about store
	// errors (default 10s); errors in between are counted, not logged.
	LogInterval time.Duration `yaml:"log_interval"`

	// LeaseTTL is how long a node may hold requests leased from Redis for a
	// rule in lease mode before it forgets them (default 1s). When every
	// rule of a request is in lease mode its quotas are leased too, under
	// the same three settings; unspent quota is given back. It also
	// bounds a lease to what the rule refills in LeaseTTL, so unspent
	// leases hold others back for about that long at most.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// LeaseMax is the most requests one lease grants (default 100).
	LeaseMax int64 `yaml:"lease_max"`
	// LeaseFraction is the most of what a rule allows right now that one
	// lease takes (default 0.1), so nodes share a busy limit. Values in
	// (0, 1].
	LeaseFraction float64 `yaml:"lease_fraction"`

	// Layout names the counters: the environment's redis.namespace, set by
	// the node, not by the limits: section (zero: the default namespace).
	Layout store.Layout `yaml:"-"`
}

// Defaults.
const (
	DefaultTimeout         = 25 * time.Millisecond
	DefaultMaxBatch        = 256
	DefaultPipelines       = 2
	DefaultFallbackShare   = 1.0
	DefaultFallbackMaxKeys = 100000
	DefaultStoreRetry      = 250 * time.Millisecond
	DefaultLogInterval     = 10 * time.Second
	DefaultLeaseTTL        = time.Second
	DefaultLeaseMax        = 100
	DefaultLeaseFraction   = 0.1
)

// WithDefaults returns o with every unset field at its default.
func (o Options) WithDefaults() Options {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Pipelines == 0 {
		o.Pipelines = DefaultPipelines
	}
	if o.FallbackShare == 0 {
		o.FallbackShare = DefaultFallbackShare
	}
	if o.FallbackMaxKeys == 0 {
		o.FallbackMaxKeys = DefaultFallbackMaxKeys
	}
	if o.StoreRetry == 0 {
		o.StoreRetry = DefaultStoreRetry
	}
	if o.LogInterval == 0 {
		o.LogInterval = DefaultLogInterval
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.LeaseMax == 0 {
		o.LeaseMax = DefaultLeaseMax
	}
	if o.LeaseFraction == 0 {
		o.LeaseFraction = DefaultLeaseFraction
	}
	return o
}

// Validate returns every problem with the options (unset fields are fine:
// they take their defaults).
func (o Options) Validate() validation.Errors {
	var errs validation.Errors
	if o.Timeout < 0 {
		errs.Add("timeout", "must not be negative")
	}
	if o.MaxBatch < 0 || o.MaxBatch > 4096 {
		errs.Add("max_batch", "must be between 1 and 4096")
	}
	if o.Pipelines < 0 || o.Pipelines > 64 {
		errs.Add("pipelines", "must be between 1 and 64")
	}
	if o.FallbackShare < 0 || o.FallbackShare > 1 {
		errs.Add("fallback_share", "must be in (0, 1]")
	}
	if o.FallbackMaxKeys < 0 {
		errs.Add("fallback_max_keys", "must not be negative")
	}
	if o.StoreRetry < 0 {
		errs.Add("store_retry", "must not be negative")
	}
	if o.LogInterval < 0 {
		errs.Add("log_interval", "must not be negative")
	}
	if o.LeaseTTL < 0 {
		errs.Add("lease_ttl", "must not be negative")
	}
	if o.LeaseMax < 0 || o.LeaseMax > 1_000_000 {
		errs.Add("lease_max", "must be between 1 and 1000000")
	}
	if o.LeaseFraction < 0 || o.LeaseFraction > 1 {
		errs.Add("lease_fraction", "must be in (0, 1]")
	}
	return errs
}
