// Package settings is the configuration of the analytics worker: one YAML
// file, every field overridable by SLUICE_<YAML_PATH> (see pkg/config).
package settings

import (
	"strings"
	"time"

	"github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/connect"
	"github.com/sluicegw/sluice/pkg/logging"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/pkg/tracing"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Config is the whole worker configuration.
type Config struct {
	// Listen is the address of the query API, dashboard, health and metrics.
	Listen string `yaml:"listen"`
	// Redis holds the aggregates.
	Redis Redis `yaml:"redis"`
	// NATS carries the usage events and the rollups.
	NATS NATS `yaml:"nats"`
	// UsageStream sets the JetStream stream of usage events. The analytics
	// workers own it: they create it or bring it to these settings at
	// start; gateways only create it, with defaults, when it is absent.
	UsageStream UsageStream `yaml:"usage_stream"`
	// Aggregation sets buckets, dedup and retention.
	Aggregation Aggregation `yaml:"aggregation"`
	// Auth guards the query API (/v1/...): every request carries a token.
	Auth Auth `yaml:"auth"`
	// ShutdownTimeout bounds the drain on SIGINT/SIGTERM: the HTTP server
	// stops and the batch in hand is recorded (default 15s); past it the
	// process exits 1.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Log is the logger configuration.
	Log logging.Config `yaml:"log"`
	// Tracing: OpenTelemetry spans, off by default; exporter, endpoint and
	// sampler come from the OTEL_* variables (docs/operations.md, "Tracing").
	Tracing tracing.Config `yaml:"tracing"`
}

// Redis is the connection (the fields every service shares, see
// pkg/connect) and the worker's command timeout.
type Redis struct {
	connect.Redis `yaml:",inline"`
	// Timeout bounds each command of the worker and the query API.
	Timeout time.Duration `yaml:"timeout"`
}

// NATS is the connection (see pkg/connect) and the shared consumer.
type NATS struct {
	connect.NATS `yaml:",inline"`
	// Durable is the name of the consumer every worker shares (default
	// "<nats.namespace>-analytics": sluice-analytics).
	Durable string `yaml:"durable"`
	// AckWait: a batch not acknowledged in this time is redelivered.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxAckPending bounds the messages delivered and not yet acknowledged,
	// over all workers.
	MaxAckPending int `yaml:"max_ack_pending"`
	// FetchBatch is the number of messages one fetch asks for.
	FetchBatch int `yaml:"fetch_batch"`
	// FetchWait is how long an idle fetch waits for a first message.
	FetchWait time.Duration `yaml:"fetch_wait"`
}

// UsageStream is the usage stream's settings (the workers own them; every
// worker of a deployment should share them).
type UsageStream struct {
	// MaxAge is how long events are kept (default 24h): the longest a
	// worker outage can last without losing events.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes bounds the stream's size; 0 (default): unbounded.
	MaxBytes int64 `yaml:"max_bytes"`
	// Replicas is the number of copies in a NATS cluster (default 1; 3 or
	// 5 in production).
	Replicas int `yaml:"replicas"`
	// DedupWindow is how long JetStream remembers a batch's message id, so
	// a gateway's retry of a batch that did arrive is dropped (default 2m).
	DedupWindow time.Duration `yaml:"dedup_window"`
}

// Aggregation settings.
type Aggregation struct {
	// Grace is how long after its end a minute stays open for late events.
	Grace time.Duration `yaml:"grace"`
	// Retention is how long closed minutes are kept in the streams.
	Retention time.Duration `yaml:"retention"`
	// HourlyRetention is how long closed hours are kept in the hourly
	// streams (default 90 days); at least Retention. Long ranges read
	// hours: keep minutes for the detail of recent days, hours for
	// months (docs/analytics.md, "Hourly rollups").
	HourlyRetention time.Duration `yaml:"hourly_retention"`
	// KeyMinuteMinRequests: a key gets a minute of its own (in its key
	// stream) only when it made at least this many requests of an API in
	// that minute; the minutes of keys below it are summed into the key
	// "~other", and every key keeps its exact usage per hour. 0 (default)
	// or 1: every key, every minute. Raise it where keys are many and
	// most are light (docs/analytics.md, "Cardinality").
	KeyMinuteMinRequests int `yaml:"key_minute_min_requests"`
	// DedupTTL is how long a message's dedup record is kept; keep it above
	// the longest time a recorded batch may be redelivered or republished.
	DedupTTL time.Duration `yaml:"dedup_ttl"`
	// CloseInterval is how often a worker looks for minutes to close.
	CloseInterval time.Duration `yaml:"close_interval"`
}

// Auth is who may read usage: any token of TokensFile (whatever its role)
// or Token. Unauthenticated reads need Disabled: true.
type Auth struct {
	// TokensFile is a YAML file of named tokens in the format of the
	// syncer's admin_tokens_file (docs/security.md), re-read when it
	// changes.
	TokensFile string `yaml:"tokens_file"`
	// Token is one more token, named "token".
	Token string `yaml:"token"`
	// Disabled serves usage to anyone who can reach the listener.
	Disabled bool `yaml:"disabled"`
}

// Default returns the documented defaults.
func Default() Config {
	return Config{
		Listen: ":7461",
		Redis:  Redis{Redis: connect.DefaultRedis(), Timeout: 2 * time.Second},
		NATS: NATS{
			NATS:    connect.DefaultNATS(),
			AckWait: 30 * time.Second, MaxAckPending: 2000,
			FetchBatch: 200, FetchWait: 500 * time.Millisecond,
		},
		UsageStream: UsageStream{MaxAge: 24 * time.Hour, Replicas: 1, DedupWindow: 2 * time.Minute},
		Aggregation: Aggregation{
			Grace: 10 * time.Second, Retention: 7 * 24 * time.Hour, HourlyRetention: 90 * 24 * time.Hour,
			DedupTTL: 25 * time.Hour, CloseInterval: time.Second,
		},
		ShutdownTimeout: 15 * time.Second,
		Log:             logging.Default(),
	}
}

// Load returns the defaults overlaid with the YAML file at path (none when
// empty) and then the SLUICE_* environment. It does not validate.
func Load(path string) (Config, error) {
	c := Default()
	err := config.Load(path, &c)
	return c, err
}

// Vars lists the environment variables that set configuration fields.
func Vars() []config.Var {
	c := Default()
	return config.Vars(config.Prefix, &c)
}

// Validate returns every problem, each with its field path.
func (c *Config) Validate() error {
	var errs validation.Errors
	if err := validation.ListenAddr(c.Listen); err != nil {
		errs.Add("listen", "%v", err)
	}
	errs.Merge("redis", c.Redis.Validate())
	positive(&errs, "redis.timeout", c.Redis.Timeout)
	errs.Merge("nats", c.NATS.Validate())
	errs.Merge("tracing", c.Tracing.Validate())
	if d := c.NATS.Durable; strings.ContainsAny(d, ".*> \t") {
		errs.Add("nats.durable", "%q holds '.', '*', '>' or white space, which a consumer name cannot", d)
	}
	positive(&errs, "nats.ack_wait", c.NATS.AckWait)
	positive(&errs, "nats.fetch_wait", c.NATS.FetchWait)
	positive(&errs, "usage_stream.max_age", c.UsageStream.MaxAge)
	positive(&errs, "usage_stream.dedup_window", c.UsageStream.DedupWindow)
	if c.UsageStream.MaxBytes < 0 {
		errs.Add("usage_stream.max_bytes", "must not be negative (0: unbounded)")
	}
	if r := c.UsageStream.Replicas; r < 1 || r > 5 {
		errs.Add("usage_stream.replicas", "%d is not between 1 and 5", r)
	}
	if c.UsageStream.DedupWindow > c.UsageStream.MaxAge && c.UsageStream.MaxAge > 0 {
		errs.Add("usage_stream.dedup_window", "must not exceed usage_stream.max_age")
	}
	if c.NATS.FetchBatch < 1 || c.NATS.FetchBatch > 10000 {
		errs.Add("nats.fetch_batch", "%d is not between 1 and 10000", c.NATS.FetchBatch)
	}
	if c.NATS.MaxAckPending < c.NATS.FetchBatch {
		errs.Add("nats.max_ack_pending", "%d is below nats.fetch_batch (%d)", c.NATS.MaxAckPending, c.NATS.FetchBatch)
	}
	if c.Aggregation.Grace < 0 {
		errs.Add("aggregation.grace", "must not be negative")
	}
	if c.Aggregation.Retention < time.Hour {
		errs.Add("aggregation.retention", "must be at least 1h")
	}
	if c.Aggregation.HourlyRetention < 2*time.Hour {
		errs.Add("aggregation.hourly_retention", "must be at least 2h")
	}
	if n := c.Aggregation.KeyMinuteMinRequests; n < 0 || n > 1_000_000 {
		errs.Add("aggregation.key_minute_min_requests", "%d is not between 0 and 1000000", n)
	}
	positive(&errs, "aggregation.dedup_ttl", c.Aggregation.DedupTTL)
	positive(&errs, "aggregation.close_interval", c.Aggregation.CloseInterval)
	positive(&errs, "shutdown_timeout", c.ShutdownTimeout)
	c.crossChecks(&errs)
	errs.Merge("log", c.Log.Validate())
	c.Auth.validate(&errs)
	return errs.Err()
}

// crossChecks are the rules between fields: each names the field to
// change and the one it is measured against.
func (c *Config) crossChecks(errs *validation.Errors) {
	agg, ns, us := c.Aggregation, c.NATS, c.UsageStream
	if ns.AckWait > 0 && agg.DedupTTL > 0 && agg.DedupTTL < 2*ns.AckWait {
		errs.Add("aggregation.dedup_ttl", "must be at least twice nats.ack_wait")
	}
	// A batch stays in the stream, and may be redelivered, for up to
	// max_age: its dedup record must outlive it, or the redelivery is
	// counted twice.
	if agg.DedupTTL > 0 && us.MaxAge > 0 && agg.DedupTTL < us.MaxAge {
		errs.Add("aggregation.dedup_ttl", "%v is shorter than usage_stream.max_age (%v): a batch redelivered after its dedup record expired would be counted twice",
			agg.DedupTTL, us.MaxAge)
	}
	// Messages delivered at the start of a fetch wait for it to end before
	// they are processed: the wait must leave time within ack_wait.
	if ns.FetchWait > 0 && ns.AckWait > 0 && ns.FetchWait >= ns.AckWait {
		errs.Add("nats.fetch_wait", "%v is not below nats.ack_wait (%v): fetched events would be redelivered before they are recorded", ns.FetchWait, ns.AckWait)
	}
	// Late events of a minute are accepted for grace; a grace as long as
	// the retention would keep minutes open past their deletion.
	if agg.Grace > 0 && agg.Retention > 0 && agg.Grace >= agg.Retention {
		errs.Add("aggregation.grace", "%v is not below aggregation.retention (%v)", agg.Grace, agg.Retention)
	}
	// Hours answer the long ranges and the ends of a range are read from
	// minutes: hours kept for less than minutes would leave a long range
	// with a hole where minutes still exist.
	if agg.HourlyRetention >= 2*time.Hour && agg.Retention >= time.Hour && agg.HourlyRetention < agg.Retention {
		errs.Add("aggregation.hourly_retention", "%v is shorter than aggregation.retention (%v): hours must be kept at least as long as minutes",
			agg.HourlyRetention, agg.Retention)
	}
}

func positive(errs *validation.Errors, field string, d time.Duration) {
	if d <= 0 {
		errs.Add(field, "must be a positive duration")
	}
}

func (a *Auth) validate(errs *validation.Errors) {
	switch {
	case a.Disabled && (a.Token != "" || a.TokensFile != ""):
		errs.Add("auth.disabled", "is true while auth.token or auth.tokens_file is set: choose one")
	case !a.Disabled && a.Token == "" && a.TokensFile == "":
		errs.Add("auth", "no token: set auth.token (SLUICE_AUTH_TOKEN) or auth.tokens_file (SLUICE_AUTH_TOKENS_FILE), "+
			"or auth.disabled: true to serve usage to anyone who can reach the listener")
	}
	if a.Token != "" {
		tokens.CheckClear(errs, "auth.token", a.Token)
	}
	if a.TokensFile != "" {
		if _, err := tokens.NewSource(tokens.SourceOptions{Path: a.TokensFile}); err != nil {
			errs.Add("auth.tokens_file", "%v", err)
		}
	}
}
