package api_test

import (
	"os"
	"path/filepath"
	"testing"
)

// fuzzWrite sends any body to one write route: the answer is 2xx or 4xx,
// never 5xx, and the server never panics (a panic is a 500 from the
// recovery wrapper, which fails too).
func fuzzWrite(f *testing.F, method, path string, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	matches, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "seeds", "*.json"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err == nil {
			f.Add(string(b))
		}
	}
	e := newEnv(f)
	e.must(201, "POST", "/v1/apis", apiJSON("fz", "/fz/"))
	e.must(201, "POST", "/v1/policies", policyJSON("fzp", "fz"))
	e.must(201, "POST", "/v1/keys", `{"id":"fzk","policies":["fzp"]}`)
	f.Fuzz(func(t *testing.T, body string) {
		e.t = t
		r := e.do(method, path, body)
		if r.status >= 500 || r.status < 200 {
			t.Fatalf("%s %s %q = %d: %s", method, path, body, r.status, r.body)
		}
		if r.status >= 400 && r.code(t) == "" {
			t.Fatalf("%d without an error code: %s", r.status, r.body)
		}
	})
}

func FuzzCreateAPI(f *testing.F) {
	fuzzWrite(f, "POST", "/v1/apis", apiJSON("a", "/a/"), apiJSON("fz", "/other/"), `{"id":"b","listen_path":"/fz"}`,
		`{"id":"c","listen_path":"/c/","upstream":{"targets":["http://h"],"read_timeout":1e400},"auth":{"mode":"keyless"},"endpoints":[{"path":"/x/{id}","rate_limit":{"rate":1,"per":-5}}]}`,
		`{"id":"d","listen_path":"/d/","upstream":{"targets":["http://h"]},"auth":{"mode":"keyless"},"max_body_bytes":99999999999999999999}`,
		`null`, `"x"`, `{"id":null}`, `{"hosts":[1,2,{}]}`, "\x00", `{"id":"\u0000"}`,
		apiJSON("e", "/a/%2e%2e/"), apiJSON("f", `/a\\b/`), `{"id":"g","listen_path":"/g/","upstream":{"targets":["http://h:99999"]},"auth":{"mode":"keyless"}}`)
}

func FuzzPutAPI(f *testing.F) {
	fuzzWrite(f, "PUT", "/v1/apis/fz", apiJSON("fz", "/fz2/"), apiJSON("other", "/x/"), `{}`, `{"upstream":{"targets":[]}}`)
}

func FuzzCreatePolicy(f *testing.F) {
	fuzzWrite(f, "POST", "/v1/policies", policyJSON("p", "fz"), policyJSON("q", "ghost"),
		`{"id":"r","access":[{"api":"fz","paths":["/a/{","**/x"],"methods":["get"]}],"quota":{"max":1,"renewal":"forever"}}`,
		`{"id":"s","access":{"api":"fz"}}`, `{"id":"t","access":[null]}`)
}

func FuzzCreateKey(f *testing.F) {
	fuzzWrite(f, "POST", "/v1/keys", `{"policies":["fzp"]}`, `{"id":"fzk","policies":["fzp"]}`,
		`{"policies":["fzp"],"key":"0123456789abcdef"}`, `{"policies":[],"access":[{"api":"fz"}],"expires_at":"2030-01-01T00:00:00Z"}`,
		`{"policies":["fzp"],"expires_at":123}`, `{"policies":["fzp"],"key":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}`)
}

func FuzzUpdateKey(f *testing.F) {
	fuzzWrite(f, "PUT", "/v1/keys/fzk", `{"policies":["fzp"],"alias":"x"}`, `{"hash":"00"}`, `{"id":"other","policies":["fzp"]}`)
}

func FuzzRotateKey(f *testing.F) {
	fuzzWrite(f, "POST", "/v1/keys/fzk/rotate", ``, `{}`, `{"key":"a-new-value-0123456789"}`, `{"key":5}`)
}
