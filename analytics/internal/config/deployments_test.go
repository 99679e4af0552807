package config

import (
	"path/filepath"
	"testing"

	pkgconfig "github.com/sluicegw/sluice/pkg/config"
)

// The container configuration in deployments/ loads and is valid.
func TestDeploymentsConfig(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := pkgconfig.Load(filepath.Join("..", "..", "..", "deployments", "config", "analytics.yaml"), &c); err != nil {
		t.Fatal(err)
	}
	// The token comes from the environment (docker-compose.yml, k8s).
	if err := pkgconfig.ApplyEnv(pkgconfig.Prefix, []string{"SLUICE_AUTH_TOKEN=deployment-token-0123456789"}, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Configurations written for earlier releases still load: the connection
// fields moved to pkg/connect, inlined, with their YAML names kept.
func TestEarlierConfigLoads(t *testing.T) {
	t.Parallel()
	c := Default()
	yaml := "redis: {addr: \"10.0.0.1:6379\", cluster_addrs: [], password: \"p\", db: 2, timeout: 3s}\n" +
		"nats: {url: \"nats://10.0.0.2:4222\", durable: d, ack_wait: 10s}\n"
	if err := pkgconfig.Decode([]byte(yaml), &c); err != nil {
		t.Fatal(err)
	}
	if err := pkgconfig.ApplyEnv(pkgconfig.Prefix, []string{"SLUICE_REDIS_TLS_ENABLED=true", "SLUICE_NATS_TOKEN=t", "SLUICE_AUTH_DISABLED=true"}, &c); err != nil {
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
