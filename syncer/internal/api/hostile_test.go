package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// hostileAPI is a valid API definition with one field replaced: set is
// called on the decoded document before it is encoded again, so any byte
// (NUL, backslash) reaches the API as a JSON string would carry it.
func hostileAPI(t *testing.T, id string, set func(map[string]any)) string {
	t.Helper()
	doc := map[string]any{
		"id": id, "listen_path": "/" + id + "/",
		"upstream": map[string]any{"targets": []any{"http://127.0.0.1:8000"}},
		"auth": map[string]any{"mode": "jwt", "jwt": map[string]any{
			"algorithms": []any{"HS256"}, "keys": map[string]any{"secret": strings.Repeat("A", 43)},
			"policies": map[string]any{"default": []any{"p"}}, "forward_claims": map[string]any{"sub": "X-User-Id"},
		}},
	}
	set(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hostileCase is one refused write: the request, and the one field and
// message fragment the 400 must name. body builds the document for an id.
type hostileCase struct {
	name, method, path string
	body               func(t *testing.T, id string) string
	field, msg         string
}

// TestHostileDefinitionsAreRefused sends definitions a gateway must never
// serve: each is refused with 400, a JSON error naming the field, and
// nothing is stored (the config version does not move, the object does
// not exist, an existing object is unchanged).
func TestHostileDefinitionsAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(201, "POST", "/v1/apis", hostileAPI(t, "good", func(map[string]any) {}))
	e.must(201, "POST", "/v1/policies", policyJSON("p", "good"))
	before, err := e.store.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	goodETag := e.must(200, "GET", "/v1/apis/good", "").header.Get("ETag")

	listen := func(p string) func(map[string]any) { return func(d map[string]any) { d["listen_path"] = p } }
	target := func(u string) func(map[string]any) {
		return func(d map[string]any) { d["upstream"] = map[string]any{"targets": []any{"http://127.0.0.1:1", u}} }
	}
	claim := func(h string) func(map[string]any) {
		return func(d map[string]any) {
			d["auth"].(map[string]any)["jwt"].(map[string]any)["forward_claims"] = map[string]any{"sub": h}
		}
	}
	endpoint := func(p string) func(map[string]any) {
		return func(d map[string]any) { d["endpoints"] = []any{map[string]any{"path": p}} }
	}
	var cases []hostileCase
	addAPI := func(name string, set func(map[string]any), field, msg string) {
		cases = append(cases, hostileCase{name, "POST", "/v1/apis", func(t *testing.T, id string) string { return hostileAPI(t, id, set) }, field, msg})
	}
	for _, p := range []struct{ name, path, msg string }{
		{"dot-dot", "/../admin/", `".." segment`},
		{"dot", "/a/./b/", `"." segment`},
		{"escaped dot-dot", "/a/%2e%2e/", "percent-escapes"},
		{"empty segment", "/a//b/", "empty segment"},
		{"escaped slash", "/a%2Fb/", "percent-escapes"},
		{"backslash", "/a\\b/", "backslash"},
		{"NUL", "/a\x00b/", "control characters"},
		{"non-ASCII", "/é/", "non-ASCII"},
		{"semicolon", "/a;b/", "not allowed"},
		{"query", "/a?b/", "query or fragment"},
		{"fragment", "/a#b/", "query or fragment"},
		{"space", "/a b/", "spaces"},
	} {
		addAPI("listen "+p.name, listen(p.path), "listen_path", p.msg)
		addAPI("endpoint "+p.name, endpoint(strings.TrimSuffix(p.path, "/")), "endpoints[0].path", p.msg)
	}
	addAPI("target port 99999", target("http://127.0.0.1:99999"), "upstream.targets[1]", "port 99999 out of range 1-65535")
	addAPI("target userinfo", target("http://u:p@h/"), "upstream.targets[1]", "credentials")
	addAPI("target query", target("http://h/?x=1"), "upstream.targets[1]", "query or fragment")
	addAPI("target path", target("http://h/a/../b"), "upstream.targets[1]", "segment")
	addAPI("claim X-Forwarded-For", claim("X-Forwarded-For"), "auth.jwt.forward_claims.sub", "reserved")
	addAPI("claim Host", claim("Host"), "auth.jwt.forward_claims.sub", "reserved")
	addAPI("claim key header", claim("X-API-Key"), "auth.jwt.forward_claims.sub", "keys")
	addAPI("claim header not a token", claim("X User"), "auth.jwt.forward_claims.sub", "RFC 9110 token")
	for _, p := range []string{"/../admin", "/a/%2e%2e/", "/a\\b"} {
		cases = append(cases, hostileCase{"policy path " + p, "POST", "/v1/policies", func(t *testing.T, id string) string {
			b, _ := json.Marshal(map[string]any{"id": id, "access": []any{map[string]any{"api": "good", "paths": []any{p}}}})
			return string(b)
		}, "access[0].paths[0]", "invalid path pattern"})
	}
	// An update of the stored API: refused, the stored one unchanged.
	cases = append(cases, hostileCase{"update with a hostile listen path", "PUT", "/v1/apis/good", func(t *testing.T, _ string) string {
		return hostileAPI(t, "good", listen("/good/../admin/"))
	}, "listen_path", "segment"})

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			se := *e // the same API, failing this subtest
			se.t = t
			id := fmt.Sprintf("h%d", i)
			r := se.must(400, tc.method, tc.path, tc.body(t, id))
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
					Details []struct{ Field, Message string }
				} `json:"error"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("error body: %v: %s", err, r.body)
			}
			if body.Error.Code != "invalid_request" || len(body.Error.Details) != 1 || body.Error.Details[0].Field != tc.field ||
				!strings.Contains(r.header.Get("Content-Type"), "application/json") || !strings.Contains(body.Error.Details[0].Message, tc.msg) ||
				!strings.Contains(body.Error.Message, tc.field+": ") {
				t.Fatalf("want one problem at %s mentioning %q; got %s", tc.field, tc.msg, r.body)
			}
			if tc.method == "POST" {
				se.must(404, "GET", strings.TrimSuffix(tc.path, "/")+"/"+id, "")
			}
		})
	}
	t.Cleanup(func() {
		after, err := e.store.Version(context.Background())
		if err != nil || after != before {
			t.Errorf("config version moved from %d to %d (%v): a refused write stored something", before, after, err)
		}
		if etag := e.must(200, "GET", "/v1/apis/good", "").header.Get("ETag"); etag != goodETag {
			t.Errorf("stored API changed: ETag %s, was %s", etag, goodETag)
		}
	})
}

// TestAdminTokenScheme checks the Authorization header: the Bearer scheme
// in any case, one or more spaces or tabs, one header only.
func TestAdminTokenScheme(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		values []string
		want   int
	}{
		{[]string{"Bearer " + token}, 200},
		{[]string{"bearer " + token}, 200},
		{[]string{"BEARER " + token}, 200},
		{[]string{"bEaReR " + token}, 200},
		{[]string{"Bearer   " + token}, 200},
		{[]string{"Bearer\t" + token}, 200},
		{[]string{"Bearer \t " + token + " "}, 200},
		{[]string{"Bearer" + token}, 401},
		{[]string{"Bearer"}, 401},
		{[]string{"Bearer "}, 401},
		{[]string{"Bearer " + token[:len(token)-1]}, 401},
		{[]string{"Bearer " + token + "x"}, 401},
		{[]string{"Bearer " + strings.ToUpper(token)}, 401},
		{[]string{"Basic " + token}, 401},
		{[]string{"Bearer x", "Bearer " + token}, 401},
		{[]string{"Bearer " + token, "Bearer " + token}, 401},
		{[]string{"Bearers " + token}, 401},
	} {
		req, err := http.NewRequest("GET", e.url+"/v1/apis", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range tc.values {
			req.Header.Add("Authorization", v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.want || (tc.want == 401 && !bytes.Contains(b, []byte(`"code":"unauthorized"`))) {
			t.Errorf("Authorization %q: %d, want %d: %s", tc.values, res.StatusCode, tc.want, b)
		}
	}
}
