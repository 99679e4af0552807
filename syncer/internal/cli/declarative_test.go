package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/syncer/internal/declarative"
)

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func version(t *testing.T, s *syncer) int64 {
	t.Helper()
	v, err := s.Store.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestApplyDiffExportRoundTrip(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	addr := s.URL

	// diff on an empty store plans every create, in order; nothing is written.
	// diff exits 2 when there are differences.
	res := sluicectl(t, addr, "", "diff", "-f", "testdata/sluice.yaml")
	want := "+ create api catalog\n+ create api orders\n+ create policy free\n+ create policy gold\nplan: 4 to create, 0 to update, 0 to delete\n"
	if res.code != ExitDiff || res.stdout != want {
		t.Errorf("diff: exit %d\n%s\nwant exit 2 and:\n%s", res.code, res.stdout, want)
	}
	must(t, addr, "", "apply", "-f", "testdata/sluice.yaml", "--dry-run")
	if v := version(t, s); v != 0 {
		t.Fatalf("dry run wrote: version %d", v)
	}

	out := must(t, addr, "", "apply", "-f", "testdata/sluice.yaml")
	if out != strings.TrimSuffix(want, "\n")+"\napplied 4 change(s) in config version 1\n" {
		t.Errorf("apply:\n%s", out)
	}
	v := version(t, s)

	// Applying again, and applying the export, changes nothing.
	if out := must(t, addr, "", "apply", "-f", "testdata/sluice.yaml"); out != "plan: 0 to create, 0 to update, 0 to delete\n" {
		t.Errorf("second apply:\n%s", out)
	}
	exported := filepath.Join(t.TempDir(), "export.yaml")
	must(t, addr, "", "export", "-o", exported)
	data, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	if stdout := must(t, addr, "", "export"); stdout != string(data) {
		t.Errorf("export to stdout and to a file differ")
	}
	if out := must(t, addr, "", "diff", "-f", exported, "--prune"); out != "plan: 0 to create, 0 to update, 0 to delete\n" {
		t.Errorf("diff of the export:\n%s", out)
	}
	must(t, addr, "", "apply", "-f", exported, "--prune")
	if got := version(t, s); got != v {
		t.Errorf("no-op apply wrote: version %d -> %d", v, got)
	}
	// The export is the file, normalized.
	f, err := declarative.Parse(data)
	if err != nil {
		t.Fatalf("export does not parse: %v\n%s", err, data)
	}
	if len(f.APIs) != 2 || f.APIs[0].ID != "catalog" || len(f.Policies) != 2 || f.Policies[0].ID != "free" {
		t.Errorf("export: %+v", f)
	}

	// A change shows as a field diff and is applied with If-Match.
	changed := strings.Replace(string(data), "    rate_limit:\n      rate: 5\n", "    rate_limit:\n      rate: 7\n", 1)
	changed = strings.Replace(changed, "http://127.0.0.1:8003", "http://127.0.0.1:8004", 1)
	cf := writeFile(t, "changed.yaml", changed)
	res = sluicectl(t, addr, "", "diff", "-f", cf)
	if res.code != ExitDiff {
		t.Errorf("diff with changes: exit %d", res.code)
	}
	out = res.stdout
	for _, w := range []string{
		"~ update api catalog\n    ~ upstream.targets[0]: \"http://127.0.0.1:8003\" -> \"http://127.0.0.1:8004\"\n",
		"~ update policy free\n    ~ rate_limit.rate: 5 -> 7\n",
		"plan: 0 to create, 2 to update, 0 to delete\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("diff lacks %q:\n%s", w, out)
		}
	}
	must(t, addr, "", "apply", "-f", cf)
	if out := must(t, addr, "", "policies", "get", "free"); !strings.Contains(out, "7/1s") {
		t.Errorf("policy not updated:\n%s", out)
	}

	// Without --prune, objects missing from the file are kept; with it,
	// deleted, policies before the APIs they grant.
	onlyCatalog := "apis:\n  - id: catalog\n    listen_path: /catalog/\n    upstream: {targets: ['http://127.0.0.1:8004']}\n    auth: {mode: keyless}\n"
	of := writeFile(t, "only.yaml", onlyCatalog)
	out = must(t, addr, "", "apply", "-f", of)
	if !strings.Contains(out, "plan: 0 to create, 0 to update, 0 to delete (3 stored objects not in the file kept; --prune deletes them)") {
		t.Errorf("apply without prune:\n%s", out)
	}
	out = must(t, addr, "", "apply", "-f", of, "--prune")
	if !strings.Contains(out, "- delete policy free\n- delete policy gold\n- delete api orders\n") || !strings.Contains(out, "applied 3 change(s) in config version") {
		t.Errorf("apply --prune:\n%s", out)
	}
	if out := must(t, addr, "", "export"); out != "apis:\n  - id: catalog\n    listen_path: /catalog/\n    upstream:\n      targets:\n        - http://127.0.0.1:8004\n    auth:\n      mode: keyless\npolicies: []\nkeys: []\n" {
		t.Errorf("export after prune:\n%s", out)
	}
}

func TestApplyRefusesInvalidFile(t *testing.T) {
	t.Parallel()
	s := startSyncer(t)
	must(t, s.URL, "", "apis", "create", "-f", "testdata/api-b.yaml")
	before := version(t, s)
	tests := []struct {
		name string
		file string
		args []string
		want []string
	}{
		{"invalid objects", "testdata/invalid.yaml", nil, []string{
			"testdata/invalid.yaml: 9 problem(s); nothing was written",
			": apis[1].id: must be 1-64",
			": apis[1].listen_path: \"orders\" is not a normalised path: must start with \"/\"",
			": apis[1].upstream.targets[0]: must be an http:// or https:// URL",
			": apis[1].auth.mode: must be",
			": apis[2].rate_limit.rate: must be a positive number",
			": apis[3].id: duplicate id \"orders\" (also apis[0])",
			": apis[2].listen_path: API \"orders\" and API \"shop\" both listen",
			": policies[0].access[0].methods[0]: unknown HTTP method \"get\"",
			": policies[0].quota.max: must be a positive number",
		}},
		{"unknown fields", "", nil, []string{
			"2 problem(s); nothing was written",
			"f.yaml:4: apis[0].upstream.target: unknown field",
			"f.yaml:8: policies[0].acess: unknown field",
		}},
		{"clash with a stored API kept", "", nil, []string{
			"1 problem(s)",
			": apis[0].listen_path: API \"b\" and API \"c\" both listen on host \"\" path \"/b/\"",
		}},
		{"unknown API once pruned", "", []string{"--prune"}, []string{
			"1 problem(s)",
			": policies[0].access[0].api: unknown API \"b\"",
		}},
	}
	files := map[string]string{
		"unknown fields":               "apis:\n  - id: a\n    listen_path: /a/\n    upstream: {target: x}\n    auth: {mode: keyless}\npolicies:\n  - id: p\n    acess: []\n",
		"clash with a stored API kept": "apis:\n  - id: c\n    listen_path: /b/\n    upstream: {targets: ['http://127.0.0.1:1']}\n    auth: {mode: keyless}\n",
		"unknown API once pruned":      "policies:\n  - id: p\n    access: [{api: b}]\n",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = writeFile(t, "f.yaml", files[tt.name])
			}
			for _, cmd := range []string{"apply", "diff"} {
				r := sluicectl(t, s.URL, "", append([]string{cmd, "-f", file}, tt.args...)...)
				if r.code != ExitError {
					t.Errorf("%s: exit %d, want 1", cmd, r.code)
				}
				for _, w := range tt.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, r.stderr)
					}
				}
				if r.stdout != "" {
					t.Errorf("%s printed a plan for a refused file:\n%s", cmd, r.stdout)
				}
			}
			if v := version(t, s); v != before {
				t.Errorf("a refused file wrote: version %d -> %d", before, v)
			}
		})
	}
}
