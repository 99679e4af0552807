package settings

import (
	"path/filepath"
	"testing"

	"github.com/sluicegw/sluice/pkg/deploycheck"
)

// The deployment files give the syncer a configuration that loads and is
// valid, and only variables it reads (pkg/deploycheck).
func TestDeployments(t *testing.T) {
	t.Parallel()
	s := deploycheck.Service[Config]{Binary: "sluice-syncer", File: "syncer.yaml", Default: Default, Vars: Vars(),
		Validate: func(c *Config) error { return c.Validate().Err() }}
	for _, err := range s.Check(filepath.Join("..", "..", "..", "deployments")) {
		t.Error(err)
	}
}
