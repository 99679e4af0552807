package api_test

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPICoversRoutes walks the router's routes and checks that each
// path and method is in the OpenAPI document, and that the document has no
// operation the router lacks.
func TestOpenAPICoversRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	served := e.must(200, "GET", "/v1/openapi.json", "").body
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(served) != string(file) {
		t.Fatal("served document differs from openapi.json")
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(file, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	routed := map[string]bool{}
	for _, r := range e.srv.Routes() {
		method, path, _ := strings.Cut(r, " ")
		routed[strings.ToLower(method)+" "+path] = true
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	var documented []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			documented = append(documented, m+" "+path)
		}
	}
	sort.Strings(documented)
	for _, d := range documented {
		if !routed[d] {
			t.Errorf("openapi.json documents %s, which no route serves", d)
		}
	}
	if len(routed) < 20 {
		t.Fatalf("only %d routes", len(routed))
	}
}
