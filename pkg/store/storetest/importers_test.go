package storetest_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tools may import storetest outside tests: the benchmark harness and
// the development cluster's seed.
var tools = map[string]bool{"gateway/tools/bench": true, "gateway/tools/cmd/sluice-dev": true}

// TestImporters walks every module of the repository: no file but a test's
// or a tool's imports storetest, so no service writes configuration
// without validating and announcing it.
func TestImporters(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "..")
	const path = "github.com/sluicegw/sluice/pkg/store/storetest"
	seen := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		seen++
		for _, imp := range f.Imports {
			if v, _ := strconv.Unquote(imp.Path.Value); v == path && !tools[filepath.ToSlash(filepath.Dir(rel))] {
				t.Errorf("%s imports storetest: a service writes through the admin API (validated, announced), a tool is listed in tools", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 100 {
		t.Fatalf("read %d Go files: the repository was not found at %s", seen, root)
	}
}
