package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValid(t *testing.T) {
	t.Parallel()
	c := Default()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("defaults invalid: %v", errs)
	}
}

func TestValidateNamesEveryField(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Listen = "nope"
	c.Redis.Addr = "noport"
	c.NATS.URL = ""
	c.Proxy.MaxHeaderBytes = 10
	c.Proxy.MaxForwardedForBytes = 10
	c.Proxy.ClientForwardingHeaders = "trust"
	c.Proxy.RequestIDHeader = "X Request"
	c.Proxy.TrustedProxies = []string{"10.0.0.0/8", "not-a-cidr"}
	c.Proxy.ClientIPHeader = "X-Real-IP"
	c.Auth.MinKeyLength = 0
	c.Auth.SessionTTL = 0
	c.Auth.MaxStale = -time.Second
	c.Limits.Pipelines = -1
	c.Usage.BufferSize = -1
	c.Log.Level = "loud"
	c.JWT.FetchTimeout = -time.Second
	c.JWT.CacheSize = -1
	c.AccessLog.Mode = "some"
	errs := c.Validate()
	got := errs.Error()
	for _, field := range []string{"listen", "redis.addr", "nats.url", "proxy.max_header_bytes", "proxy.max_forwarded_for_bytes", "proxy.client_forwarding_headers", "proxy.request_id_header", "proxy.trusted_proxies[1]", "proxy.client_ip_header", "auth.min_key_length", "auth.session_ttl", "auth.max_stale", "limits.pipelines", "usage.buffer_size", "log.level", "jwt.fetch_timeout", "jwt.cache_size", "access_log.mode"} {
		if !strings.Contains(got, field+":") {
			t.Errorf("no problem reported for %s in %q", field, got)
		}
	}
}

func TestLoadFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte("listen: \":7000\"\nauth:\n  min_key_length: 32\nproxy:\n  read_timeout: 5s\njwt:\n  cache_size: 500\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_LISTEN", ":7001")
	t.Setenv("SLUICE_REDIS_ADDR", "10.0.0.1:6380")
	t.Setenv("SLUICE_JWT_FETCH_TIMEOUT", "3s")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":7001" || c.Redis.Addr != "10.0.0.1:6380" || c.Auth.MinKeyLength != 32 || c.Proxy.ReadTimeout != 5*time.Second || c.OpsListen != ":9080" ||
		c.JWT.CacheSize != 500 || c.JWT.FetchTimeout != 3*time.Second || c.JWT.RefreshInterval != 5*time.Minute {
		t.Fatalf("loaded %+v", c)
	}
	if err := os.WriteFile(path, []byte("lisen: \":7000\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "lisen") {
		t.Fatalf("unknown field accepted: %v", err)
	}
}

func TestResolveNodeID(t *testing.T) {
	t.Parallel()
	c := Default()
	c.ResolveNodeID()
	if c.NodeID == "" || len(c.Validate()) > 0 {
		t.Fatalf("node id %q: %v", c.NodeID, c.Validate())
	}
}

func TestResolveAdvertiseAddress(t *testing.T) {
	t.Parallel()
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name")
	}
	tests := []struct{ listen, advertise, want string }{
		{":8080", "", host + ":8080"},
		{"0.0.0.0:8080", "", host + ":8080"},
		{"127.0.0.1:8081", "", "127.0.0.1:8081"},
		{":8080", "gw-1.internal:8080", "gw-1.internal:8080"},
	}
	for _, tt := range tests {
		c := Default()
		c.Listen, c.AdvertiseAddress = tt.listen, tt.advertise
		c.ResolveAdvertiseAddress()
		if c.AdvertiseAddress != tt.want {
			t.Errorf("listen %q advertise %q: got %q, want %q", tt.listen, tt.advertise, c.AdvertiseAddress, tt.want)
		}
	}
}

func TestRedisClusterAddrs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		addrs []string
		db    int
		want  []string // fields with a problem
	}{
		{"single redis", nil, 3, nil},
		{"cluster", []string{"10.0.0.1:7000", "redis-1.internal:7001"}, 0, nil},
		{"no port", []string{"10.0.0.1:7000", "10.0.0.2"}, 0, []string{"redis.cluster_addrs[1]"}},
		{"no host", []string{":7000"}, 0, []string{"redis.cluster_addrs[0]"}},
		{"db with cluster", []string{"10.0.0.1:7000"}, 1, []string{"redis.db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.Redis.ClusterAddrs, c.Redis.DB = tt.addrs, tt.db
			errs := c.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("problems %v, want on %v", errs, tt.want)
			}
			for _, f := range tt.want {
				if !strings.Contains(errs.Error(), f+":") {
					t.Errorf("no problem reported for %s in %q", f, errs.Error())
				}
			}
		})
	}
}

func TestRedisClusterAddrsFromEnv(t *testing.T) {
	t.Setenv("SLUICE_REDIS_CLUSTER_ADDRS", "10.0.0.1:7000, 10.0.0.2:7001,10.0.0.3:7002")
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"}
	if strings.Join(c.Redis.ClusterAddrs, " ") != strings.Join(want, " ") || c.Redis.Addr != "127.0.0.1:6379" {
		t.Fatalf("cluster_addrs %q addr %q, want %q and the default addr", c.Redis.ClusterAddrs, c.Redis.Addr, want)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("valid cluster config refused: %v", errs)
	}
}

// TestHostileAddresses checks each bad address alone: exactly one problem,
// at its field path, saying what is wrong.
func TestHostileAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "field: message fragment"
	}{
		{"listen port 99999", func(c *Config) { c.Listen = ":99999" }, "listen: port 99999 out of range 0-65535"},
		{"ops listen port 99999", func(c *Config) { c.OpsListen = ":99999" }, "ops_listen: port 99999 out of range 0-65535"},
		{"listen bad host", func(c *Config) { c.Listen = "not a host:8080" }, `listen: host "not a host" is not a valid host name`},
		{"listen numeric name", func(c *Config) { c.Listen = "300.0.0.1:8080" }, "listen: host \"300.0.0.1\" is neither a valid IP address"},
		{"listen port not a number", func(c *Config) { c.Listen = ":http" }, `listen: port "http" is not a number`},
		{"redis without port", func(c *Config) { c.Redis.Addr = "redis" }, `redis.addr: "redis" has no port`},
		{"redis port 99999", func(c *Config) { c.Redis.Addr = "redis:99999" }, "redis.addr: port 99999 out of range 1-65535"},
		{"cluster address without host", func(c *Config) { c.Redis.ClusterAddrs = []string{":7000"} }, `redis.cluster_addrs[0]: ":7000" has no host`},
		{"nats garbage", func(c *Config) { c.NATS.URL = "garbage" }, `nats.url: server 1: "garbage": scheme must be nats, tls, ws or wss`},
		{"nats port 99999", func(c *Config) { c.NATS.URL = "nats://127.0.0.1:99999" }, "nats.url: server 1: \"nats://127.0.0.1:99999\": port 99999 out of range 1-65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.edit(&c)
			errs := c.Validate()
			if len(errs) != 1 || !strings.HasPrefix(errs[0].String(), tc.want) {
				t.Fatalf("problems %q, want one starting %q", errs, tc.want)
			}
		})
	}
}
