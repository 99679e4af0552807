package config

import (
	"path/filepath"
	"testing"
)

// The container configuration in deployments/ loads and is valid.
func TestDeploymentsConfig(t *testing.T) {
	t.Parallel()
	c, err := Load(filepath.Join("..", "..", "..", "deployments", "config", "syncer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
}
