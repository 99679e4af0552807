package model

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// ParseAPI decodes and validates an API definition the way the admin API
// and declarative files do: unknown fields are refused, every problem is
// listed.
func parseAPIForTest(data []byte) (*API, string) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var a API
	if err := dec.Decode(&a); err != nil {
		return nil, "decode: " + err.Error() + "\n"
	}
	errs := a.Validate()
	lines := make([]string, len(errs))
	for i, p := range errs {
		lines[i] = p.String()
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return &a, ""
	}
	return &a, strings.Join(lines, "\n") + "\n"
}

// TestAPIDefinitionGolden runs every testdata/apis/*.json through decoding
// and validation and compares the problems with the .golden file beside it.
func TestAPIDefinitionGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/apis/*.json")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, got := parseAPIForTest(data)
			golden := strings.TrimSuffix(f, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Fatalf("problems differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// FuzzAPIDefinition checks that any input decodes and validates without a
// panic, and that a valid definition stays valid through a JSON round trip.
func FuzzAPIDefinition(f *testing.F) {
	files, _ := filepath.Glob("testdata/apis/*.json")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, problems := parseAPIForTest(data)
		if a == nil || problems != "" {
			return
		}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("marshal valid API: %v", err)
		}
		if _, p := parseAPIForTest(again); p != "" {
			t.Fatalf("valid API invalid after round trip: %s\n%s", p, again)
		}
	})
}
