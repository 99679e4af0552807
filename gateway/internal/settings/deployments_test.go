package settings

import (
	"path/filepath"
	"testing"

	"github.com/sluicegw/sluice/pkg/deploycheck"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// The deployment files give the gateway a configuration that loads and is
// valid, and only variables it reads (pkg/deploycheck). The Secrets bring
// the edge certificate and the client CA, mounted at the paths the
// configuration names.
func TestDeployments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	certFile, keyFile := ca.Server(t, "gateway.example").Write(t, dir, "edge")
	caFile := filepath.Join(dir, "client-ca.pem")
	testutil.WriteFile(t, caFile, ca.PEM)
	s := deploycheck.Service[Config]{Binary: "sluice-gateway", File: "gateway.yaml", Default: Default, Vars: Vars(),
		Validate: func(c *Config) error { return c.Validate().Err() },
		Secrets: func(c *Config) {
			for i := range c.TLS.Certificates {
				c.TLS.Certificates[i].CertFile, c.TLS.Certificates[i].KeyFile = certFile, keyFile
			}
			if c.TLS.ClientCAFile != "" {
				c.TLS.ClientCAFile = caFile
			}
		}}
	for _, err := range s.Check(filepath.Join("..", "..", "..", "deployments")) {
		t.Error(err)
	}
}
