package auth

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// auth depends on pkg and shardlru only: what it needs from the rest of
// the gateway (the node's policies) it is given as data, so it never
// imports the state, the router or the server (docs/architecture.md).
func TestImportsNoOtherGatewayPackage(t *testing.T) {
	t.Parallel()
	const internal = "github.com/sluicegw/sluice/gateway/"
	allowed := map[string]bool{internal + "internal/shardlru": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, internal) && !allowed[path] {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}
