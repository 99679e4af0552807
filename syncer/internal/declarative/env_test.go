package declarative

import (
	"strings"
	"testing"
)

func TestEnvReferences(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TARGET": "http://127.0.0.1:9", "EMPTY": ""}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	doc := "apis:\n  - id: a\n    name: \"${env:EMPTY}\"\n    listen_path: /a/\n    upstream: {targets: [\"${env:TARGET}\"]}\n    auth: {mode: keyless}\n"
	f, err := ParseWith([]byte(doc), getenv)
	if err != nil || f.APIs[0].Upstream.Targets[0] != "http://127.0.0.1:9" || f.APIs[0].Name != "" {
		t.Fatalf("ParseWith = %+v, %v", f, err)
	}
	// Not whole values, and other syntaxes, are left as they are.
	f, err = ParseWith([]byte("policies:\n  - id: p\n    name: a ${env:TARGET}\n"), getenv)
	if err != nil || f.Policies[0].Name != "a ${env:TARGET}" {
		t.Fatalf("partial reference: %+v, %v", f, err)
	}
	for _, tc := range []struct{ doc, want string }{
		{"apis:\n  - id: a\n    name: ${env:MISSING}\n", "apis[0].name: line 3: environment variable MISSING is not set"},
		{"policies:\n  - id: p\n    rate_limit: {rate: \"${env:TARGET}\", per: 1s}\n", "policies[0].rate_limit.rate: line 3: cannot read"},
	} {
		_, err := ParseWith([]byte(tc.doc), getenv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
		}
	}
	if _, err := Parse([]byte("apis:\n  - id: ${env:X}\n")); err == nil || !strings.Contains(err.Error(), "not resolved here") {
		t.Errorf("Parse of a reference: %v", err)
	}
	lines := Lines([]byte(doc))
	if lines["apis[0].upstream.targets[0]"] != 5 || lines["apis[0].auth"] != 6 {
		t.Errorf("Lines = %v", lines)
	}
}

func FuzzParseWithEnv(f *testing.F) {
	f.Add([]byte("apis:\n  - id: a\n    name: ${env:A}\n"))
	f.Add([]byte("policies: [{id: \"${env:B}\", rate_limit: {rate: \"${env:A}\"}}]"))
	f.Add([]byte("${env:A}: [${env:A}]"))
	f.Add([]byte("keys:\n  - {id: k, policies: [p], key: ${env:A}}\n  - {id: j, key: x}\n"))
	getenv := func(k string) (string, bool) { return "1", k == "A" }
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseWith(data, getenv)
		_ = Lines(data)
	})
}
