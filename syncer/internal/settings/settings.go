// Package settings is the syncer's configuration: a typed struct with
// documented defaults, loaded from YAML and SLUICE_* environment variables
// (pkg/config), and a Validate that reports every problem at once.
package settings

import (
	"net"
	"time"

	"github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/connect"
	"github.com/sluicegw/sluice/pkg/logging"
	"github.com/sluicegw/sluice/pkg/tokens"
	"github.com/sluicegw/sluice/pkg/tracing"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Config is the whole syncer configuration.
type Config struct {
	// Listen is the admin API address (default ":7460").
	Listen string `yaml:"listen"`
	// AdminToken is the bearer token every /v1 request must carry. Empty is
	// refused unless the syncer listens on loopback with --insecure-dev.
	// It is an admin token named "admin-token" in the audit trail.
	AdminToken string `yaml:"admin_token"`
	// AdminTokensFile is a YAML file of named tokens with roles (admin,
	// operator, issuer, viewer; docs/security.md), re-read when it changes.
	AdminTokensFile string        `yaml:"admin_tokens_file"`
	Redis           connect.Redis `yaml:"redis"`
	NATS            connect.NATS  `yaml:"nats"`
	// ChangelogLength is how many versions the changelog keeps (default
	// 10000); a node further behind reloads the full snapshot.
	ChangelogLength int64 `yaml:"changelog_length"`
	// AuditLength is how many audit entries (one per version) are kept,
	// approximately (default 100000).
	AuditLength int64 `yaml:"audit_length"`
	// NodeTTL is how long a node counts as live after its last heartbeat
	// (default 6s: three 2s gateway heartbeat intervals).
	NodeTTL time.Duration `yaml:"node_ttl"`
	// ShutdownTimeout bounds the drain of in-flight admin requests on
	// SIGINT/SIGTERM (default 15s); past it the process exits 1.
	ShutdownTimeout time.Duration  `yaml:"shutdown_timeout"`
	Log             logging.Config `yaml:"log"`
	// Tracing: OpenTelemetry spans, off by default; exporter, endpoint and
	// sampler come from the OTEL_* variables (docs/operations.md, "Tracing").
	Tracing tracing.Config `yaml:"tracing"`
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		Listen:          ":7460",
		Redis:           connect.DefaultRedis(),
		NATS:            connect.DefaultNATS(),
		ChangelogLength: 10000,
		AuditLength:     100000,
		NodeTTL:         6 * time.Second,
		ShutdownTimeout: 15 * time.Second,
		Log:             logging.Default(),
	}
}

// Load reads the defaults, then the YAML file at path (if any), then the
// environment.
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

// Validate returns every problem with the configuration, with field paths.
func (c *Config) Validate() validation.Errors {
	var errs validation.Errors
	if err := validation.ListenAddr(c.Listen); err != nil {
		errs.Add("listen", "%v", err)
	}
	if c.AdminToken != "" {
		checkAdminToken(&errs, c.AdminToken)
	}
	errs.Merge("redis", c.Redis.Validate())
	errs.Merge("nats", c.NATS.Validate())
	errs.Merge("tracing", c.Tracing.Validate())
	if c.ChangelogLength < 100 {
		errs.Add("changelog_length", "must be at least 100")
	}
	if c.AuditLength < 100 {
		errs.Add("audit_length", "must be at least 100")
	}
	if c.NodeTTL < 100*time.Millisecond {
		errs.Add("node_ttl", "must be at least 100ms")
	}
	if c.ShutdownTimeout <= 0 {
		errs.Add("shutdown_timeout", "must be a positive duration, like 500ms or 5s")
	}
	errs.Merge("log", c.Log.Validate())
	return errs
}

// MinAdminTokenChars is the fewest non-whitespace characters an admin
// token has.
const MinAdminTokenChars = tokens.MinChars

// checkAdminToken refuses a token that is short once whitespace is left
// out, has whitespace around it or holds control characters (the rule of
// every token, pkg/tokens.CheckClear).
func checkAdminToken(errs *validation.Errors, tok string) {
	tokens.CheckClear(errs, "admin_token", tok)
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
