package main

import (
	"bytes"
	"testing"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestCheckConfigGolden runs --check-config over testdata/check-config:
// every problem on its own line ("field.path: cause"), cross-field
// mistakes included, and the documented exit code (3 invalid, 0 ok).
func TestCheckConfigGolden(t *testing.T) {
	t.Parallel()
	testutil.CheckConfigGolden(t, "testdata/check-config", func(args []string, stdout, stderr *bytes.Buffer) int {
		return run(args, stdout, stderr)
	})
}
