package testutil

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// CheckConfigGolden runs a binary's --check-config over every
// <dir>/*.yaml and compares what it printed to <dir>/<name>.golden: the
// exit code on the first line ("exit 3"), then stdout, then stderr. With
// UPDATE_GOLDEN=1 in the environment the golden files are written
// instead. run is the binary's run(args, stdout, stderr) exit code; the
// SLUICE_* variables of the test's environment apply, so callers run it
// where none is set.
func CheckConfigGolden(t *testing.T, dir string, run func(args []string, stdout, stderr *bytes.Buffer) int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no configuration in %s: %v", dir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := run([]string{"--check-config", "--config", file}, &out, &errb)
			got := fmt.Sprintf("exit %d\n%s%s", code, out.String(), errb.String())
			if want := Golden(t, filepath.Join(dir, name+".golden"), got); got != want {
				t.Errorf("--check-config --config %s:\ngot:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}
