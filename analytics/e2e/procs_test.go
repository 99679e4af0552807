package e2e

import (
	"testing"

	"github.com/sluicegw/sluice/analytics/internal/proctest"
)

// The binaries this suite runs, and the process helpers it runs them with
// (analytics/internal/proctest).
type (
	binaries = proctest.Binaries
	proc     = proctest.Proc
)

func buildBinaries(t *testing.T, dir string) binaries { return proctest.Build(t, dir, false) }

func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	return proctest.Start(t, name, bin, env, args...)
}
