package settings

import (
	"path/filepath"
	"testing"

	"github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/deploycheck"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// The container configuration in deployments/ loads and is valid.
func TestDeploymentsConfig(t *testing.T) {
	t.Parallel()
	c, err := Load(filepath.Join(deployments, "config", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

var deployments = filepath.Join("..", "..", "..", "deployments")

// Every SLUICE_* variable docker-compose.yml, the Kubernetes manifests and
// the Helm chart's rendered manifests give the gateway is one it reads: a
// misspelt variable would be silently ignored by the binary.
func TestDeploymentEnvVars(t *testing.T) {
	t.Parallel()
	settings, err := deploycheck.EnvSettings(deployments)
	if err != nil {
		t.Fatal(err)
	}
	n, errs := deploycheck.CheckEnv(settings, "sluice-gateway", Vars())
	for _, err := range errs {
		t.Error(err)
	}
	if n == 0 {
		t.Fatal("no variable is given to sluice-gateway: the files were not read")
	}
}

// Every gateway.yaml of a ConfigMap (deployments/k8s, the Helm chart's
// rendered value sets) loads with unknown fields refused and is valid.
func TestDeploymentConfigMaps(t *testing.T) {
	t.Parallel()
	files, err := deploycheck.ConfigFiles(deployments, "gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d gateway.yaml ConfigMap entries, want k8s and Helm's", len(files))
	}
	// What the Secrets bring: the edge certificate and the client CA,
	// mounted at the paths the configuration names.
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	certFile, keyFile := ca.Server(t, "gateway.example").Write(t, dir, "edge")
	caFile := filepath.Join(dir, "client-ca.pem")
	testutil.WriteFile(t, caFile, ca.PEM)
	for _, f := range files {
		c := Default()
		if err := config.Decode([]byte(f.Data), &c); err != nil {
			t.Errorf("%s: ConfigMap %s, %s: %v", f.File, f.ConfigMap, f.Key, err)
			continue
		}
		for i := range c.TLS.Certificates {
			c.TLS.Certificates[i].CertFile, c.TLS.Certificates[i].KeyFile = certFile, keyFile
		}
		if c.TLS.ClientCAFile != "" {
			c.TLS.ClientCAFile = caFile
		}
		if errs := c.Validate(); len(errs) > 0 {
			t.Errorf("%s: ConfigMap %s, %s: %v", f.File, f.ConfigMap, f.Key, errs)
		}
	}
}
