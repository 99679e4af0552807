package settings

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicegw/sluice/pkg/deploycheck"
)

// The deployment files give the analytics a configuration that loads and
// is valid, and only variables it reads (pkg/deploycheck). The Secrets
// bring the token (SLUICE_AUTH_TOKEN) or the tokens file, mounted at the
// path the configuration names.
func TestDeployments(t *testing.T) {
	t.Parallel()
	const token = "deployment-token-0123456789"
	tokensFile := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tokensFile, []byte("tokens:\n  - {name: grafana, role: viewer, token: "+token+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := deploycheck.Service[Config]{Binary: "sluice-analytics", File: "analytics.yaml", Default: Default, Vars: Vars(),
		Validate: (*Config).Validate,
		Secrets: func(c *Config) {
			if c.Auth.TokensFile != "" {
				c.Auth.TokensFile = tokensFile
			} else {
				c.Auth.Token = token
			}
		}}
	for _, err := range s.Check(filepath.Join("..", "..", "..", "deployments")) {
		t.Error(err)
	}
}
