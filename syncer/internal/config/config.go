// Package config is the syncer's configuration: a typed struct with
// documented defaults, loaded from YAML and SLUICE_* environment variables
// (pkg/config), and a Validate that reports every problem at once.
package config

import (
	"net"
	"strings"
	"time"
	"unicode"

	pkgconfig "github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/logging"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Config is the whole syncer configuration.
type Config struct {
	// Listen is the admin API address (default ":9090").
	Listen string `yaml:"listen"`
	// AdminToken is the bearer token every /v1 request must carry. Empty is
	// refused unless the syncer listens on loopback with --insecure-dev.
	AdminToken string `yaml:"admin_token"`
	Redis      Redis  `yaml:"redis"`
	NATS       NATS   `yaml:"nats"`
	// ChangelogLength is how many versions the changelog keeps (default
	// 10000); a node further behind reloads the full snapshot.
	ChangelogLength int64 `yaml:"changelog_length"`
	// NodeTTL is how long a node counts as live after its last heartbeat
	// (default 6s: three 2s gateway heartbeat intervals).
	NodeTTL time.Duration  `yaml:"node_ttl"`
	Log     logging.Config `yaml:"log"`
}

// Redis is how to reach Redis.
type Redis struct {
	Addr string `yaml:"addr"`
	// ClusterAddrs, when set, are seed addresses (host:port) of a Redis
	// Cluster, used instead of Addr; DB must then be 0.
	ClusterAddrs []string      `yaml:"cluster_addrs"`
	Password     string        `yaml:"password"`
	DB           int           `yaml:"db"`
	PoolSize     int           `yaml:"pool_size"`
	DialTimeout  time.Duration `yaml:"dial_timeout"`
}

// NATS is how to reach NATS.
type NATS struct {
	URL string `yaml:"url"`
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		Listen:          ":9090",
		Redis:           Redis{Addr: "127.0.0.1:6379", DialTimeout: time.Second},
		NATS:            NATS{URL: "nats://127.0.0.1:4222"},
		ChangelogLength: 10000,
		NodeTTL:         6 * time.Second,
		Log:             logging.Default(),
	}
}

// Load reads the defaults, then the YAML file at path (if any), then the
// environment.
func Load(path string) (Config, error) {
	c := Default()
	if err := pkgconfig.Load(path, &c); err != nil {
		return c, err
	}
	return c, nil
}

// Validate returns every problem with the configuration, with field paths.
func (c *Config) Validate() validation.Errors {
	var errs validation.Errors
	if err := validation.ListenAddr(c.Listen); err != nil {
		errs.Add("listen", "%v", err)
	}
	if c.AdminToken != "" {
		checkAdminToken(&errs, c.AdminToken)
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
	if c.Redis.PoolSize < 0 {
		errs.Add("redis.pool_size", "must not be negative")
	}
	if c.Redis.DialTimeout <= 0 {
		errs.Add("redis.dial_timeout", "must be a positive duration")
	}
	if err := validation.NATSURLs(c.NATS.URL); err != nil {
		errs.Add("nats.url", "%v", err)
	}
	if c.ChangelogLength < 100 {
		errs.Add("changelog_length", "must be at least 100")
	}
	if c.NodeTTL < 100*time.Millisecond {
		errs.Add("node_ttl", "must be at least 100ms")
	}
	if err := c.Log.Validate(); err != nil {
		errs.Add("log", "%v", err)
	}
	return errs
}

// MinAdminTokenChars is the fewest non-whitespace characters an admin
// token has.
const MinAdminTokenChars = 16

// checkAdminToken refuses a token that is short once whitespace is left
// out, has whitespace around it (a copy-paste accident the Authorization
// header would not carry) or holds control characters.
func checkAdminToken(errs *validation.Errors, tok string) {
	n := 0
	for _, r := range tok {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	if n < MinAdminTokenChars {
		errs.Add("admin_token", "must have at least %d non-whitespace characters, has %d", MinAdminTokenChars, n)
	}
	if strings.TrimSpace(tok) != tok {
		errs.Add("admin_token", "must not start or end with whitespace")
	}
	if strings.IndexFunc(tok, unicode.IsControl) >= 0 {
		errs.Add("admin_token", "must not contain control characters (tab, newline, NUL, ...)")
	}
}

// Loopback reports whether the listen address binds only to loopback.
func (c *Config) Loopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
