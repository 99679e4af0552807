package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/config"
)

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	c := Default()
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("default config invalid: %v", errs)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Listen = "nope"
	c.AdminToken = "short"
	c.Redis.Addr = ""
	c.NATS.URL = "::"
	c.ChangelogLength = 1
	c.AuditLength = 10
	c.NodeTTL = 0
	c.Log.Level = "loud"
	errs := c.Validate()
	want := []string{"listen", "admin_token", "redis.addr", "nats.url", "changelog_length", "audit_length", "node_ttl", "log.level"}
	got := map[string]bool{}
	for _, p := range errs {
		got[p.Field] = true
	}
	for _, f := range want {
		if !got[f] {
			t.Errorf("no problem reported for %s (got %v)", f, errs)
		}
	}
}

func TestYAMLThenEnv(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "syncer.yaml")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:9999\nnode_ttl: 10s\nredis:\n  addr: 127.0.0.1:7000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := config.Decode(mustRead(t, path), &c); err != nil {
		t.Fatal(err)
	}
	if err := config.ApplyEnv("SLUICE_", []string{"SLUICE_ADMIN_TOKEN=0123456789abcdef0", "SLUICE_NATS_URL=nats://127.0.0.1:5000"}, &c); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.NodeTTL != 10*time.Second || c.Redis.Addr != "127.0.0.1:7000" ||
		c.AdminToken != "0123456789abcdef0" || c.NATS.URL != "nats://127.0.0.1:5000" || c.ChangelogLength != 10000 {
		t.Fatalf("loaded %+v", c)
	}
	if !c.Loopback() {
		t.Fatal("127.0.0.1:9999 should be loopback")
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	t.Parallel()
	c := Default()
	err := config.Decode([]byte("listn: :1\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "listn") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{":7460": false, "0.0.0.0:7460": false, "127.0.0.1:7460": true, "[::1]:7460": true, "localhost:1": true, "10.0.0.1:1": false} {
		c := Config{Listen: addr}
		if got := c.Loopback(); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRedisClusterAddrs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want []string // fields with a problem
	}{
		{"single redis with a db", []string{"SLUICE_REDIS_DB=2"}, nil},
		{"cluster", []string{"SLUICE_REDIS_CLUSTER_ADDRS=10.0.0.1:7000, redis-2:7001"}, nil},
		{"no port", []string{"SLUICE_REDIS_CLUSTER_ADDRS=10.0.0.1:7000,10.0.0.2"}, []string{"redis.cluster_addrs[1]"}},
		{"db with cluster", []string{"SLUICE_REDIS_CLUSTER_ADDRS=10.0.0.1:7000", "SLUICE_REDIS_DB=1"}, []string{"redis.db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			if err := config.ApplyEnv("SLUICE_", tt.env, &c); err != nil {
				t.Fatal(err)
			}
			errs := c.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("problems %v, want on %v", errs, tt.want)
			}
			for i, f := range tt.want {
				if errs[i].Field != f {
					t.Errorf("problem %d on %q, want %q", i, errs[i].Field, f)
				}
			}
		})
	}
	c := Default()
	if err := config.ApplyEnv("SLUICE_", []string{"SLUICE_REDIS_CLUSTER_ADDRS=10.0.0.1:7000, redis-2:7001,"}, &c); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Redis.ClusterAddrs, " ") != "10.0.0.1:7000 redis-2:7001" {
		t.Fatalf("cluster_addrs %q", c.Redis.ClusterAddrs)
	}
}

// TestHostileValues checks each bad value alone: exactly the problems
// named, with their field paths and messages.
func TestHostileValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*Config)
		want []string // "field: message fragment"
	}{
		{"valid token", func(c *Config) { c.AdminToken = "0123456789abcdef" }, nil},
		{"token with inner space", func(c *Config) { c.AdminToken = "0123456789 abcdef" }, nil},
		{"listen port 99999", func(c *Config) { c.Listen = ":99999" }, []string{"listen: port 99999 out of range 0-65535"}},
		{"listen bad host", func(c *Config) { c.Listen = "bad host:7460" }, []string{`listen: host "bad host" is not a valid host name`}},
		{"listen no port", func(c *Config) { c.Listen = "7460" }, []string{`listen: "7460" has no port`}},
		{"token of 16 spaces", func(c *Config) { c.AdminToken = strings.Repeat(" ", 16) }, []string{
			"admin_token: must have at least 16 non-whitespace characters, has 0", "admin_token: must not start or end with whitespace"}},
		{"token padded to 16", func(c *Config) { c.AdminToken = "0123456789ab    " }, []string{
			"admin_token: must have at least 16 non-whitespace characters, has 12", "admin_token: must not start or end with whitespace"}},
		{"token with trailing newline", func(c *Config) { c.AdminToken = "0123456789abcdef\n" }, []string{
			"admin_token: must not start or end with whitespace", "admin_token: must not contain control characters"}},
		{"token with NUL", func(c *Config) { c.AdminToken = "0123456789abcdef\x00x" }, []string{"admin_token: must not contain control characters"}},
		{"token with tab", func(c *Config) { c.AdminToken = "01234567\t89abcdef" }, []string{"admin_token: must not contain control characters"}},
		{"redis without port", func(c *Config) { c.Redis.Addr = "redis" }, []string{`redis.addr: "redis" has no port`}},
		{"redis port 0", func(c *Config) { c.Redis.Addr = "redis:0" }, []string{"redis.addr: port 0 out of range 1-65535"}},
		{"cluster port 99999", func(c *Config) { c.Redis.ClusterAddrs = []string{"a:1", "b:99999"} }, []string{"redis.cluster_addrs[1]: port 99999 out of range 1-65535"}},
		{"nats garbage", func(c *Config) { c.NATS.URL = "garbage" }, []string{"nats.url: server 1: \"garbage\": scheme must be nats, tls, ws or wss"}},
		{"nats second server bad", func(c *Config) { c.NATS.URL = "nats://a:4222,nats://b:99999" }, []string{"nats.url: server 2: \"nats://b:99999\": port 99999 out of range 1-65535"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.edit(&c)
			errs := c.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("problems %q, want %q", errs, tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(errs[i].String(), w) {
					t.Errorf("problem %d = %q, want prefix %q", i, errs[i], w)
				}
			}
		})
	}
}
