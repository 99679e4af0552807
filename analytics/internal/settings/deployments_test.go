package settings

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/deploycheck"
)

// The container configuration in deployments/ loads and is valid.
func TestDeploymentsConfig(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := config.Load(filepath.Join(deployments, "config", "analytics.yaml"), &c); err != nil {
		t.Fatal(err)
	}
	// The token comes from the environment (docker-compose.yml, k8s).
	if err := config.ApplyEnv(config.Prefix, []string{"SLUICE_AUTH_TOKEN=deployment-token-0123456789"}, &c); err != nil {
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

var deployments = filepath.Join("..", "..", "..", "deployments")

// Every SLUICE_* variable docker-compose.yml, the Kubernetes manifests and
// the Helm chart's rendered manifests give the analytics is one it reads: a
// misspelt variable would be silently ignored by the binary.
func TestDeploymentEnvVars(t *testing.T) {
	t.Parallel()
	settings, err := deploycheck.EnvSettings(deployments)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	n, errs := deploycheck.CheckEnv(settings, "sluice-analytics", config.Vars(config.Prefix, &def))
	for _, err := range errs {
		t.Error(err)
	}
	if n == 0 {
		t.Fatal("no variable is given to sluice-analytics: the files were not read")
	}
}

// Every analytics.yaml of a ConfigMap (deployments/k8s, the Helm chart's
// rendered value sets) loads with unknown fields refused and is valid.
func TestDeploymentConfigMaps(t *testing.T) {
	t.Parallel()
	files, err := deploycheck.ConfigFiles(deployments, "analytics.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tokensFile := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tokensFile, []byte("tokens:\n  - {name: grafana, role: viewer, token: deployment-token-0123456789}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d analytics.yaml ConfigMap entries, want k8s and Helm's", len(files))
	}
	for _, f := range files {
		c := Default()
		if err := config.Decode([]byte(f.Data), &c); err != nil {
			t.Errorf("%s: ConfigMap %s, %s: %v", f.File, f.ConfigMap, f.Key, err)
			continue
		}
		// What the Secrets bring: the token (SLUICE_AUTH_TOKEN) and the
		// tokens file, mounted at the path the configuration names.
		if c.Auth.TokensFile != "" {
			c.Auth.TokensFile = tokensFile
		} else {
			c.Auth.Token = "deployment-token-0123456789"
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: ConfigMap %s, %s: %v", f.File, f.ConfigMap, f.Key, err)
		}
	}
}
