package settings

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/config"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Config)
		wants []string // field paths named in the error; none when valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"several problems at once", func(c *Config) {
			c.Redis.Addr = ""
			c.NATS.FetchBatch = 0
			c.Aggregation.Grace = -time.Second
			c.Log.Level = "loud"
		}, []string{"redis.addr", "nats.fetch_batch", "aggregation.grace", "log"}},
		{"dedup shorter than redelivery", func(c *Config) { c.Aggregation.DedupTTL = time.Second }, []string{"aggregation.dedup_ttl"}},
		{"ack pending below batch", func(c *Config) { c.NATS.MaxAckPending = 10 }, []string{"nats.max_ack_pending"}},
		{"hourly retention too short", func(c *Config) { c.Aggregation.HourlyRetention = time.Hour }, []string{"aggregation.hourly_retention: must be at least 2h"}},
		{"negative key minute threshold", func(c *Config) { c.Aggregation.KeyMinuteMinRequests = -1 }, []string{"aggregation.key_minute_min_requests: -1 is not between"}},
		{"huge key minute threshold", func(c *Config) { c.Aggregation.KeyMinuteMinRequests = 2_000_000 }, []string{"aggregation.key_minute_min_requests"}},
		{"usage stream", func(c *Config) {
			c.UsageStream = UsageStream{MaxAge: time.Minute, MaxBytes: -1, Replicas: 7, DedupWindow: time.Hour}
		}, []string{"usage_stream.max_bytes", "usage_stream.replicas", "usage_stream.dedup_window"}},
		{"usage stream without age", func(c *Config) { c.UsageStream.MaxAge = 0 }, []string{"usage_stream.max_age"}},
		{"redis cluster", func(c *Config) { c.Redis.ClusterAddrs = []string{"10.0.0.1:7000", "redis-2:7001"} }, nil},
		{"redis cluster address without port", func(c *Config) { c.Redis.ClusterAddrs = []string{"10.0.0.1:7000", "redis-2"} },
			[]string{"redis.cluster_addrs[1]"}},
		{"listen port 99999", func(c *Config) { c.Listen = ":99999" }, []string{"listen: port 99999 out of range 0-65535"}},
		{"listen bad host", func(c *Config) { c.Listen = "a b:7461" }, []string{`listen: host "a b" is not a valid host name`}},
		{"redis without port", func(c *Config) { c.Redis.Addr = "redis" }, []string{`redis.addr: "redis" has no port`}},
		{"redis port 0", func(c *Config) { c.Redis.Addr = "redis:0" }, []string{"redis.addr: port 0 out of range 1-65535"}},
		{"redis cluster port 99999", func(c *Config) { c.Redis.ClusterAddrs = []string{"redis-1:99999"} },
			[]string{"redis.cluster_addrs[0]: port 99999 out of range 1-65535"}},
		{"nats garbage", func(c *Config) { c.NATS.URL = "garbage" }, []string{`nats.url: server 1: "garbage": scheme must be nats, tls, ws or wss`}},
		{"nats list with a bad server", func(c *Config) { c.NATS.URL = "nats://a:4222, tls://b:99999" },
			[]string{`nats.url: server 2: "tls://b:99999": port 99999 out of range 1-65535`}},
		{"nats list", func(c *Config) { c.NATS.URL = "nats://a:4222, tls://b:4443,wss://c/nats" }, nil},
		{"no auth", func(c *Config) { c.Auth.Token = "" }, []string{"auth: no token", "auth.disabled: true"}},
		{"auth disabled", func(c *Config) { c.Auth = Auth{Disabled: true} }, nil},
		{"auth disabled with a token", func(c *Config) { c.Auth.Disabled = true }, []string{"auth.disabled: is true while auth.token"}},
		{"short token", func(c *Config) { c.Auth.Token = "short" }, []string{"auth.token: must have at least 16"}},
		{"missing tokens file", func(c *Config) { c.Auth.TokensFile = "/nonexistent/tokens.yaml" }, []string{"auth.tokens_file: token file"}},
		{"redis cluster with a db", func(c *Config) {
			c.Redis.ClusterAddrs = []string{"10.0.0.1:7000"}
			c.Redis.DB = 2
		}, []string{"redis.db"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.Auth.Token = "analytics-token-0123456789"
			tc.edit(&c)
			err := c.Validate()
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	c := Default()
	env := []string{"SLUICE_AGGREGATION_GRACE=3s", "SLUICE_NATS_FETCH_BATCH=50", "SLUICE_REDIS_ADDR=10.0.0.1:6379"}
	if err := config.ApplyEnv(config.Prefix, env, &c); err != nil {
		t.Fatal(err)
	}
	if c.Aggregation.Grace != 3*time.Second || c.NATS.FetchBatch != 50 || c.Redis.Addr != "10.0.0.1:6379" {
		t.Fatalf("env not applied: %+v", c)
	}
	if err := config.Decode([]byte("aggregation:\n  grase: 1s\n"), &c); err == nil {
		t.Fatal("unknown YAML field accepted")
	}
}

func TestClusterAddrsFromEnv(t *testing.T) {
	t.Parallel()
	c := Default()
	env := []string{"SLUICE_REDIS_CLUSTER_ADDRS=10.0.0.1:7000, 10.0.0.2:7001"}
	if err := config.ApplyEnv(config.Prefix, env, &c); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Redis.ClusterAddrs, " ") != "10.0.0.1:7000 10.0.0.2:7001" || c.Redis.Addr != Default().Redis.Addr {
		t.Fatalf("cluster_addrs %q addr %q", c.Redis.ClusterAddrs, c.Redis.Addr)
	}
}

// Configurations written for earlier releases still load: the connection
// fields moved to pkg/connect, inlined, with their YAML names kept.
func TestEarlierConfigLoads(t *testing.T) {
	t.Parallel()
	c := Default()
	yaml := "redis: {addr: \"10.0.0.1:6379\", cluster_addrs: [], password: \"p\", db: 2, timeout: 3s}\n" +
		"nats: {url: \"nats://10.0.0.2:4222\", durable: d, ack_wait: 10s}\n"
	if err := config.Decode([]byte(yaml), &c); err != nil {
		t.Fatal(err)
	}
	if err := config.ApplyEnv(config.Prefix, []string{"SLUICE_REDIS_TLS_ENABLED=true", "SLUICE_NATS_TOKEN=t", "SLUICE_AUTH_DISABLED=true"}, &c); err != nil {
		t.Fatal(err)
	}
	if c.Redis.Addr != "10.0.0.1:6379" || c.Redis.Password != "p" || c.Redis.DB != 2 || c.Redis.Timeout.String() != "3s" ||
		!c.Redis.TLS.Enabled || c.NATS.URL != "nats://10.0.0.2:4222" || c.NATS.Durable != "d" || c.NATS.Token != "t" {
		t.Fatalf("loaded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
