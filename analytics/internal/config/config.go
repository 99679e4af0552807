// Package config is the configuration of the analytics worker: one YAML
// file, every field overridable by SLUICE_<YAML_PATH> (see pkg/config).
package config

import (
	"time"

	"github.com/sluicegw/sluice/pkg/logging"
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
	// Aggregation sets buckets, dedup and retention.
	Aggregation Aggregation `yaml:"aggregation"`
	// Log is the logger configuration.
	Log logging.Config `yaml:"log"`
}

// Redis connection.
type Redis struct {
	Addr string `yaml:"addr"`
	// ClusterAddrs, when set, are seed addresses (host:port) of a Redis
	// Cluster, used instead of Addr; DB must then be 0.
	ClusterAddrs []string      `yaml:"cluster_addrs"`
	Password     string        `yaml:"password"`
	DB           int           `yaml:"db"`
	Timeout      time.Duration `yaml:"timeout"` // per command
}

// NATS connection and the shared consumer.
type NATS struct {
	URL string `yaml:"url"`
	// Durable is the name of the consumer every worker shares.
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
	// StreamMaxAge and DedupWindow size the usage stream when the worker
	// creates it.
	StreamMaxAge time.Duration `yaml:"stream_max_age"`
	DedupWindow  time.Duration `yaml:"dedup_window"`
}

// Aggregation settings.
type Aggregation struct {
	// Grace is how long after its end a minute stays open for late events.
	Grace time.Duration `yaml:"grace"`
	// Retention is how long closed minutes are kept in the streams.
	Retention time.Duration `yaml:"retention"`
	// DedupTTL is how long a message's dedup record is kept; keep it above
	// the longest time a recorded batch may be redelivered or republished.
	DedupTTL time.Duration `yaml:"dedup_ttl"`
	// CloseInterval is how often a worker looks for minutes to close.
	CloseInterval time.Duration `yaml:"close_interval"`
}

// Default returns the documented defaults.
func Default() Config {
	return Config{
		Listen: ":9091",
		Redis:  Redis{Addr: "127.0.0.1:6379", Timeout: 2 * time.Second},
		NATS: NATS{
			URL: "nats://127.0.0.1:4222", Durable: "sluice-analytics",
			AckWait: 30 * time.Second, MaxAckPending: 2000,
			FetchBatch: 200, FetchWait: 500 * time.Millisecond,
			StreamMaxAge: 24 * time.Hour, DedupWindow: 2 * time.Minute,
		},
		Aggregation: Aggregation{
			Grace: 10 * time.Second, Retention: 7 * 24 * time.Hour,
			DedupTTL: 25 * time.Hour, CloseInterval: time.Second,
		},
		Log: logging.Default(),
	}
}

// Validate returns every problem, each with its field path.
func (c *Config) Validate() error {
	var errs validation.Errors
	if err := validation.ListenAddr(c.Listen); err != nil {
		errs.Add("listen", "%v", err)
	}
	if err := validation.HostPort(c.Redis.Addr); err != nil {
		errs.Add("redis.addr", "%v", err)
	}
	if c.Redis.DB < 0 {
		errs.Add("redis.db", "must not be negative")
	}
	for i, a := range c.Redis.ClusterAddrs {
		if err := validation.HostPort(a); err != nil {
			errs.Add(validation.Index("redis.cluster_addrs", i), "%v", err)
		}
	}
	if len(c.Redis.ClusterAddrs) > 0 && c.Redis.DB != 0 {
		errs.Add("redis.db", "must be 0 with redis.cluster_addrs (a Redis Cluster has only database 0)")
	}
	positive(&errs, "redis.timeout", c.Redis.Timeout)
	if err := validation.NATSURLs(c.NATS.URL); err != nil {
		errs.Add("nats.url", "%v", err)
	}
	if c.NATS.Durable == "" {
		errs.Add("nats.durable", "must not be empty")
	}
	positive(&errs, "nats.ack_wait", c.NATS.AckWait)
	positive(&errs, "nats.fetch_wait", c.NATS.FetchWait)
	positive(&errs, "nats.stream_max_age", c.NATS.StreamMaxAge)
	positive(&errs, "nats.dedup_window", c.NATS.DedupWindow)
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
	positive(&errs, "aggregation.dedup_ttl", c.Aggregation.DedupTTL)
	positive(&errs, "aggregation.close_interval", c.Aggregation.CloseInterval)
	if c.NATS.AckWait > 0 && c.Aggregation.DedupTTL > 0 && c.Aggregation.DedupTTL < 2*c.NATS.AckWait {
		errs.Add("aggregation.dedup_ttl", "must be at least twice nats.ack_wait")
	}
	if err := c.Log.Validate(); err != nil {
		errs.Add("log", "%v", err)
	}
	return errs.Err()
}

func positive(errs *validation.Errors, field string, d time.Duration) {
	if d <= 0 {
		errs.Add(field, "must be a positive duration")
	}
}
