package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// Golden returns the content of the golden file path, for the caller to
// compare with got. With UPDATE_GOLDEN=1 in the environment it writes got
// to path first (creating its folder), so the comparison passes and the
// diff of the file shows what changed.
func Golden(t testing.TB, path, got string) string {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	return string(want)
}
