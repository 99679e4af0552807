package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/validation"
)

// Redis is the connection to Redis: one server (addr), a Redis Cluster
// (cluster_addrs) or a primary found through Sentinel (sentinel.master).
type Redis struct {
	// Addr is host:port of a single Redis (default "127.0.0.1:6379").
	Addr string `yaml:"addr"`
	// ClusterAddrs, when set, are seed addresses (host:port) of a Redis
	// Cluster, used instead of Addr; DB must then be 0.
	ClusterAddrs []string `yaml:"cluster_addrs"`
	// Sentinel, when its master is set, finds the primary through Redis
	// Sentinel instead of Addr, and follows failovers.
	Sentinel Sentinel `yaml:"sentinel"`
	// Username is the ACL user (default none: the "default" user).
	Username string `yaml:"username"`
	// Password authenticates Username (or the default user).
	Password string `yaml:"password"`
	// PasswordFile holds the password instead (trailing newlines ignored).
	// It is read again for every new connection, so a rotated password
	// needs no restart.
	PasswordFile string `yaml:"password_file"`
	// DB is the database number of a single Redis or Sentinel (default 0).
	DB int `yaml:"db"`
	// PoolSize is the most connections per server (0: go-redis default,
	// 10 per CPU).
	PoolSize int `yaml:"pool_size"`
	// MaxRetries is how often a failed command is retried (0: go-redis
	// default, 3; -1: never).
	MaxRetries int `yaml:"max_retries"`
	// DialTimeout bounds opening a connection (default 1s).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout and WriteTimeout bound one command's socket I/O (default
	// 3s). A shorter deadline of the caller's context always wins: every
	// client is built with go-redis's ContextTimeoutEnabled.
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// TLS encrypts the connections (to the sentinels too).
	TLS TLSClient `yaml:"tls"`
	// Namespace prefixes every key Sluice writes ("<namespace>:{cfg}:version"),
	// so environments share one Redis or Redis Cluster without seeing each
	// other (default "sluice"; 1-32 of a-z, 0-9, '-', '_').
	Namespace string `yaml:"namespace"`
}

// Sentinel names the primary and the sentinels that know it.
type Sentinel struct {
	// Master is the name the sentinels monitor (sentinel monitor <master>).
	Master string `yaml:"master"`
	// Addrs are host:port of one or more sentinels.
	Addrs []string `yaml:"addrs"`
	// Username and Password authenticate to the sentinels themselves
	// (default none).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// DefaultNamespace is the namespace of redis.namespace and nats.namespace
// when none is set.
const DefaultNamespace = store.DefaultNamespace

// Layout returns the key names of r's namespace.
func (r *Redis) Layout() store.Layout { return store.NewLayout(r.Namespace) }

// DefaultRedis returns the defaults.
func DefaultRedis() Redis {
	return Redis{Addr: "127.0.0.1:6379", Namespace: DefaultNamespace, DialTimeout: time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second}
}

// Mode is how a Redis configuration reaches its server(s).
func (r *Redis) Mode() string {
	switch {
	case len(r.ClusterAddrs) > 0:
		return "cluster"
	case r.Sentinel.Master != "":
		return "sentinel"
	}
	return "single"
}

// Validate returns every problem, with field paths relative to the redis
// section ("addr", "tls.ca_file").
func (r *Redis) Validate() validation.Errors {
	var errs validation.Errors
	switch r.Mode() {
	case "single":
		checkHostPort(&errs, "addr", r.Addr)
		if len(r.Sentinel.Addrs) > 0 {
			errs.Add("sentinel.master", "must be set with sentinel.addrs")
		}
	case "cluster":
		for i, a := range r.ClusterAddrs {
			checkHostPort(&errs, validation.Index("cluster_addrs", i), a)
		}
		if r.DB != 0 {
			errs.Add("db", "must be 0 with cluster_addrs (a Redis Cluster has only database 0)")
		}
		if r.Sentinel.Master != "" {
			errs.Add("sentinel.master", "cannot be used with cluster_addrs: choose a Redis Cluster or Sentinel")
		}
	case "sentinel":
		if len(r.Sentinel.Addrs) == 0 {
			errs.Add("sentinel.addrs", "must list at least one sentinel (host:port)")
		}
		for i, a := range r.Sentinel.Addrs {
			checkHostPort(&errs, validation.Index("sentinel.addrs", i), a)
		}
	}
	if r.Sentinel.Password == "" && r.Sentinel.Username != "" {
		errs.Add("sentinel.password", "must be set with sentinel.username")
	}
	if r.Password != "" && r.PasswordFile != "" {
		errs.Add("password_file", "cannot be used with password: choose one")
	}
	if r.Username != "" && r.Password == "" && r.PasswordFile == "" {
		errs.Add("password", "must be set (or password_file) with username")
	}
	if r.DB < 0 {
		errs.Add("db", "must not be negative")
	}
	if r.PoolSize < 0 {
		errs.Add("pool_size", "must not be negative")
	}
	if r.MaxRetries < -1 {
		errs.Add("max_retries", "must be -1 (never), 0 (default) or more")
	}
	positive(&errs, "dial_timeout", r.DialTimeout)
	positive(&errs, "read_timeout", r.ReadTimeout)
	positive(&errs, "write_timeout", r.WriteTimeout)
	if err := validation.Namespace(r.Namespace); err != nil {
		errs.Add("namespace", "%v", err)
	}
	errs.Merge("tls", r.TLS.Validate())
	return errs
}

// Client builds the client and checks what it can at once: the files it
// reads and, when Redis answers within dial_timeout, that it accepts the
// credentials and the TLS settings. Any such failure is an error naming
// the field (redis.password, redis.tls.ca_file, ...); a Redis that does
// not answer is only logged, and the client connects when it comes.
func (r *Redis) Client(log zerolog.Logger) (redis.UniversalClient, error) {
	tlsCfg, err := r.TLS.Config()
	if err != nil {
		return nil, under("redis.tls", err)
	}
	if r.TLS.InsecureSkipVerify {
		log.Warn().Msg("redis.tls.insecure_skip_verify is on: the Redis server's certificate is not checked")
	}
	creds, err := r.credentials()
	if err != nil {
		return nil, err
	}
	rdb := r.build(tlsCfg, creds)
	ctx, cancel := context.WithTimeout(context.Background(), r.DialTimeout+r.ReadTimeout)
	defer cancel()
	if err := r.check(ctx, rdb); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			_ = rdb.Close()
			return nil, err
		}
		log.Warn().Err(err).Str("redis", r.String()).Msg("redis does not answer yet; connecting in the background")
	}
	return rdb, nil
}

// credentials returns the provider that reads PasswordFile at each new
// connection, after checking that it can be read now.
func (r *Redis) credentials() (func(context.Context) (string, string, error), error) {
	if r.PasswordFile == "" {
		return nil, nil
	}
	read := func(context.Context) (string, string, error) {
		b, err := os.ReadFile(r.PasswordFile)
		if err != nil {
			return "", "", fieldError("redis.password_file", err)
		}
		return r.Username, strings.TrimRight(string(b), "\r\n"), nil
	}
	if _, _, err := read(context.Background()); err != nil {
		return nil, err
	}
	return read, nil
}

func (r *Redis) build(tlsCfg *tls.Config, creds func(context.Context) (string, string, error)) redis.UniversalClient {
	switch r.Mode() {
	case "cluster":
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: r.ClusterAddrs, Username: r.Username, Password: r.Password, CredentialsProviderContext: creds,
			PoolSize: r.PoolSize, MaxRetries: r.MaxRetries, TLSConfig: tlsCfg,
			DialTimeout: r.DialTimeout, ReadTimeout: r.ReadTimeout, WriteTimeout: r.WriteTimeout,
			ContextTimeoutEnabled: true,
		})
	case "sentinel":
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: r.Sentinel.Master, SentinelAddrs: r.Sentinel.Addrs,
			SentinelUsername: r.Sentinel.Username, SentinelPassword: r.Sentinel.Password,
			Username: r.Username, Password: r.Password, CredentialsProviderContext: creds, DB: r.DB,
			PoolSize: r.PoolSize, MaxRetries: r.MaxRetries, TLSConfig: tlsCfg,
			DialTimeout: r.DialTimeout, ReadTimeout: r.ReadTimeout, WriteTimeout: r.WriteTimeout,
			ContextTimeoutEnabled: true,
		})
	}
	return redis.NewClient(&redis.Options{
		Addr: r.Addr, Username: r.Username, Password: r.Password, CredentialsProviderContext: creds, DB: r.DB,
		PoolSize: r.PoolSize, MaxRetries: r.MaxRetries, TLSConfig: tlsCfg,
		DialTimeout: r.DialTimeout, ReadTimeout: r.ReadTimeout, WriteTimeout: r.WriteTimeout,
		ContextTimeoutEnabled: true,
	})
}

// check pings Redis (every primary of a cluster) and turns the failures a
// retry will not fix into a *FieldError.
func (r *Redis) check(ctx context.Context, rdb redis.UniversalClient) error {
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
	} else {
		err = rdb.Ping(ctx).Err()
	}
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return err
	}
	if f := r.blame(err); f != "" {
		if r.Username != "" && f != "redis.username" && !strings.HasPrefix(f, "redis.tls") {
			err = fmt.Errorf("user %q (redis.username): %w", r.Username, err)
		}
		return fieldError(f, err)
	}
	return err
}

// blame names the field behind a refusal by the server, or "" when the
// error says nothing about the configuration.
func (r *Redis) blame(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"),
		strings.Contains(msg, "AUTH") && strings.Contains(msg, "without any password configured"):
		if r.PasswordFile != "" {
			return "redis.password_file"
		}
		return "redis.password"
	case strings.HasPrefix(msg, "NOPERM"):
		return "redis.username"
	}
	if f := tlsBlame(err); f != "" {
		return "redis.tls." + f
	}
	return ""
}

func checkHostPort(errs *validation.Errors, field, addr string) {
	if err := validation.HostPort(addr); err != nil {
		errs.Add(field, "%v", err)
	}
}

func positive(errs *validation.Errors, field string, d time.Duration) {
	if d <= 0 {
		errs.Add(field, "must be a positive duration, like 500ms or 5s")
	}
}

// String describes where the configuration connects, without secrets.
func (r *Redis) String() string {
	switch r.Mode() {
	case "cluster":
		return fmt.Sprintf("redis cluster %s", strings.Join(r.ClusterAddrs, ","))
	case "sentinel":
		return fmt.Sprintf("redis sentinel %s via %s", r.Sentinel.Master, strings.Join(r.Sentinel.Addrs, ","))
	}
	return "redis " + r.Addr
}
