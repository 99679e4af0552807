//go:build chaos

package chaos

import (
	"testing"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// The binaries this suite runs, and the process helpers it runs them with
// (pkg/testutil).
type (
	binaries = testutil.Binaries
	proc     = testutil.Proc
)

func buildBinaries(t *testing.T, dir string) binaries { return testutil.BuildBinaries(t, dir, true) }

func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	return testutil.StartProc(t, name, bin, env, args...)
}
