package model

import (
	"encoding/base64"
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pkg/validation"
)

func TestCheckListenPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path string
		want string // fragment of the error; "" for a valid listen path
	}{
		{"/", ""},
		{"/orders/", ""},
		{"/orders/v2/", ""},
		{"/a-b.c_d~e/", ""},
		{"/!$&'()+,=:@/", ""},
		{"/v1.0/", ""},
		{"/...", ""},    // "..." is a segment like any other
		{"/orders", ""}, // the same prefix as /orders/
		{"/orders/v2", ""},
		{"/.../", ""},
		{"/.well-known/", ""},
		{"", `must start with "/"`},
		{"orders/", `must start with "/"`},
		{"/../admin/", `".." segment`},
		{"/a/../", `".." segment`},
		{"/a/./b/", `"." segment`},
		{"/./", `"." segment`},
		{"/a/..", `".." segment`},
		{"/a//b/", `empty segment ("//")`},
		{"//", `empty segment ("//")`},
		{"//a/", `empty segment ("//")`},
		{"/a/%2e%2e/", `"%" at offset 3: percent-escapes are not allowed`},
		{"/a%2Fb/", `"%" at offset 2: percent-escapes are not allowed`},
		{"/%41/", "percent-escapes are not allowed"},
		{"/a%/", "percent-escapes are not allowed"},
		{"/a\\b/", "a backslash is not allowed"},
		{"/a\x00b/", `"\x00" at offset 2: control characters are not allowed`},
		{"/a\r\n/", "control characters are not allowed"},
		{"/a\tb/", "control characters are not allowed"},
		{"/a\x7fb/", "control characters are not allowed"},
		{"/a b/", "spaces are not allowed"},
		{"/caf\xc3\xa9/", `"\xc3" at offset 4: non-ASCII bytes are not allowed`},
		{"/a;b/", `";" is not allowed`},
		{"/a;jsessionid=1/", `";" is not allowed`},
		{"/a?b/", "a query or fragment is not part of a path"},
		{"/a/?", "a query or fragment is not part of a path"},
		{"/a#b/", "a query or fragment is not part of a path"},
		{"/a*/", `"*" at offset 2: a listen path is a plain prefix`},
		{"/{id}/", `"{" at offset 1`},
		{"/a|b/", `"|" at offset 2`},
		{"/a\"b/", `"\"" at offset 2`},
		{"/a<b>/", `"<" at offset 2`},
		{"/a^b/", `"^" at offset 2`},
		{"/a`b/", "\"`\" at offset 2"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			err := CheckListenPath(tc.path)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && err == nil:
				return
			case err == nil:
				t.Fatalf("accepted, want an error with %q", tc.want)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q lacks %q", err, tc.want)
			case !errors.Is(err, ErrPath) && !errors.Is(err, ErrListenPath):
				t.Fatalf("error %q wraps neither ErrPath nor ErrListenPath", err)
			}
		})
	}
}

// FuzzListenPath checks that every accepted listen path is a fixed point of
// normalisation: made of the allowed bytes only, unchanged by unescaping
// and by path.Clean (but for a final "/"), and read back unchanged as the
// path of a URL.
func FuzzListenPath(f *testing.F) {
	for _, s := range []string{"/", "/a/", "/a/b/", "/../", "/a/%2e/", "/a//b/", "/a\\b/", "/a;b/", "/é/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := CheckListenPath(p)
		if err != nil {
			if !errors.Is(err, ErrPath) && !errors.Is(err, ErrListenPath) {
				t.Fatalf("%q: error %v wraps neither sentinel", p, err)
			}
			return
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c != '/' && (!pathChar[c] || c == '*') {
				t.Fatalf("%q accepted with byte %q", p, c)
			}
		}
		if u, err := url.PathUnescape(p); err != nil || u != p {
			t.Fatalf("%q accepted but unescapes to %q (%v)", p, u, err)
		}
		if clean := path.Clean(p); clean != p && clean+"/" != p {
			t.Fatalf("%q accepted but cleans to %q", p, clean)
		}
		u, err := url.Parse("http://h" + p)
		if err != nil || u.EscapedPath() != p || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("%q accepted but reads back as a URL path %q (%v)", p, u.EscapedPath(), err)
		}
	})
}

func hostileBase() API {
	return API{ID: "a", ListenPath: "/a/", Upstream: Upstream{Targets: []string{"http://127.0.0.1:8000"}}, Auth: Auth{Mode: AuthAPIKey}}
}

func withJWT(forward map[string]string, edit func(*API)) func(*API) {
	return func(a *API) {
		a.Auth.JWT = &JWTAuth{Algorithms: []string{AlgHS256}, Keys: JWTKeys{Secret: base64.RawURLEncoding.EncodeToString(make([]byte, 32))},
			Policies: JWTPolicies{Default: []string{"p"}}, ForwardClaims: forward}
		if edit != nil {
			edit(a)
		}
	}
}

// TestAPIValidateHostile checks that each hostile value of an otherwise
// valid API is refused with exactly one problem at its field path.
func TestAPIValidateHostile(t *testing.T) {
	t.Parallel()
	listen := func(p string) func(*API) { return func(a *API) { a.ListenPath = p } }
	target := func(u string) func(*API) {
		return func(a *API) { a.Upstream.Targets = []string{"http://127.0.0.1:1", u} }
	}
	endpoint := func(p string) func(*API) { return func(a *API) { a.Endpoints = []Endpoint{{Path: "/ok"}, {Path: p}} } }
	claim := func(h string) func(*API) { return withJWT(map[string]string{"ok": "X-User", "sub": h}, nil) }
	for _, tc := range []struct {
		name  string
		edit  func(*API)
		field string
		msg   string
	}{
		{"valid", func(*API) {}, "", ""},
		{"valid jwt and targets", withJWT(map[string]string{"sub": "X-User-Id", "email": "x-user-email"}, func(a *API) {
			a.Upstream.Targets = []string{"https://svc.internal:8443", "http://[::1]:80/base", "http://10.0.0.5/base/v1/", "http://h/"}
		}), "", ""},
		{"valid endpoint patterns", func(a *API) {
			a.Endpoints = []Endpoint{{Path: "/"}, {Path: "/users/{id}/orders/"}, {Path: "/files/**"}, {Path: "/a/*/b"}, {Path: "/v1.0/x:y@z"}}
		}, "", ""},

		{"listen dot-dot", listen("/../admin/"), "listen_path", `".." segment`},
		{"listen dot", listen("/a/./b/"), "listen_path", `"." segment`},
		{"listen escaped dot-dot", listen("/a/%2e%2e/"), "listen_path", "percent-escapes"},
		{"listen empty segment", listen("/a//b/"), "listen_path", "empty segment"},
		{"listen escaped slash", listen("/a%2Fb/"), "listen_path", "percent-escapes"},
		{"listen escaped letter", listen("/%61/"), "listen_path", "percent-escapes"},
		{"listen backslash", listen("/a\\b/"), "listen_path", "backslash"},
		{"listen NUL", listen("/a\x00/"), "listen_path", "control characters"},
		{"listen newline", listen("/a\n/"), "listen_path", "control characters"},
		{"listen non-ASCII", listen("/ä/"), "listen_path", "non-ASCII"},
		{"listen semicolon", listen("/a;b/"), "listen_path", `";"`},
		{"listen question mark", listen("/a?/"), "listen_path", "query or fragment"},
		{"listen hash", listen("/a#/"), "listen_path", "query or fragment"},
		{"listen space", listen("/a b/"), "listen_path", "spaces"},
		{"listen without a final slash", listen("/a/b"), "", ""},
		{"listen relative", listen("a/"), "listen_path", `must start with "/"`},

		{"target port 99999", target("http://127.0.0.1:99999"), "upstream.targets[1]", "port 99999 out of range 1-65535"},
		{"target port 0", target("http://127.0.0.1:0"), "upstream.targets[1]", "port 0 out of range 1-65535"},
		{"target empty port", target("http://127.0.0.1:/"), "upstream.targets[1]", "port is empty"},
		{"target scheme", target("ftp://h"), "upstream.targets[1]", "must be an http:// or https:// URL"},
		{"target no scheme", target("127.0.0.1:8000"), "upstream.targets[1]", "must be an http:// or https:// URL"},
		{"target no host", target("http:///a"), "upstream.targets[1]", "must be an http:// or https:// URL"},
		{"target opaque", target("http:h"), "upstream.targets[1]", "must be an http:// or https:// URL"},
		{"target userinfo", target("http://user:pw@h"), "upstream.targets[1]", "credentials"},
		{"target query", target("http://h/?a=1"), "upstream.targets[1]", "query or fragment"},
		{"target empty query", target("http://h/?"), "upstream.targets[1]", "query or fragment"},
		{"target fragment", target("http://h/#f"), "upstream.targets[1]", "query or fragment"},
		{"target bad host", target("http://bad_host-/"), "upstream.targets[1]", "not a valid host name"},
		{"target numeric host", target("http://300.1.1.1/"), "upstream.targets[1]", "last label is a number"},
		{"target dot-dot path", target("http://h/a/../b"), "upstream.targets[1]", `".." segment`},
		{"target escaped path", target("http://h/a/%2e%2e/"), "upstream.targets[1]", "percent-escapes"},
		{"target empty segment", target("http://h//a"), "upstream.targets[1]", "empty segment"},
		{"target backslash path", target("http://h/a\\b"), "upstream.targets[1]", "backslash"},
		{"target semicolon path", target("http://h/a;b"), "upstream.targets[1]", `";"`},
		{"target NUL", target("http://h/a\x00"), "upstream.targets[1]", "control characters"},
		{"target space", target("http://h/a b"), "upstream.targets[1]", "spaces or control characters"},

		{"claim into X-Forwarded-For", claim("X-Forwarded-For"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into x-forwarded-proto", claim("x-forwarded-proto"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into X-Forwarded-Anything", claim("X-Forwarded-Anything"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Forwarded", claim("Forwarded"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into X-Real-IP", claim("X-Real-Ip"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Via", claim("Via"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Host", claim("host"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Content-Length", claim("Content-Length"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Transfer-Encoding", claim("Transfer-Encoding"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Connection", claim("Connection"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Keep-Alive", claim("Keep-Alive"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into TE", claim("TE"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Trailer", claim("Trailer"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Upgrade", claim("Upgrade"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Proxy-Authorization", claim("Proxy-Authorization"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Proxy-Connection", claim("Proxy-Connection"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Expect", claim("Expect"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Authorization", claim("AUTHORIZATION"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into Cookie", claim("Cookie"), "auth.jwt.forward_claims.sub", "reserved"},
		{"claim into default key header", claim("x-api-key"), "auth.jwt.forward_claims.sub", "carries this API's keys"},
		{"claim into own key header", withJWT(map[string]string{"sub": "X-Key"}, func(a *API) { a.Auth.Header = "x-key" }),
			"auth.jwt.forward_claims.sub", "carries this API's keys"},
		{"claim into token header", withJWT(map[string]string{"sub": "X-Token"}, func(a *API) { a.Auth.JWT.Token.Header = "X-Token" }),
			"auth.jwt.forward_claims.sub", "carries the token"},
		{"two claims into one header", withJWT(map[string]string{"a": "X-User", "b": "x-user"}, nil), "auth.jwt.forward_claims.b", `already used by claim "a"`},
		{"claim header with space", claim("X User"), "auth.jwt.forward_claims.sub", "RFC 9110 token"},
		{"claim header with colon", claim("X-User:"), "auth.jwt.forward_claims.sub", "RFC 9110 token"},
		{"claim header with CRLF", claim("X-User\r\nX-Admin"), "auth.jwt.forward_claims.sub", "RFC 9110 token"},
		{"claim header non-ASCII", claim("X-Üser"), "auth.jwt.forward_claims.sub", "RFC 9110 token"},
		{"key header not a token", func(a *API) { a.Auth.Header = "X Key" }, "auth.header", "RFC 9110 token"},

		{"endpoint dot-dot", endpoint("/a/../b"), "endpoints[1].path", `".." segment`},
		{"endpoint dot", endpoint("/a/./b"), "endpoints[1].path", `"." segment`},
		{"endpoint escaped", endpoint("/a/%2e%2e/"), "endpoints[1].path", "percent-escapes"},
		{"endpoint empty segment", endpoint("/a//b"), "endpoints[1].path", "empty segment"},
		{"endpoint leading empty segment", endpoint("//a"), "endpoints[1].path", "empty segment"},
		{"endpoint double trailing slash", endpoint("/a//"), "endpoints[1].path", "empty segment"},
		{"endpoint escaped slash", endpoint("/a%2Fb"), "endpoints[1].path", "percent-escapes"},
		{"endpoint backslash", endpoint("/a\\b"), "endpoints[1].path", "backslash"},
		{"endpoint NUL", endpoint("/a\x00"), "endpoints[1].path", "control characters"},
		{"endpoint semicolon", endpoint("/a;b"), "endpoints[1].path", `";"`},
		{"endpoint query", endpoint("/a?b"), "endpoints[1].path", "query or fragment"},
		{"endpoint non-ASCII", endpoint("/é"), "endpoints[1].path", "non-ASCII"},
		{"endpoint bad wildcard name", endpoint("/a/{i d}"), "endpoints[1].path", "wildcard name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := hostileBase()
			tc.edit(&a)
			errs := a.Validate()
			if tc.field == "" {
				if len(errs) > 0 {
					t.Fatalf("valid API refused: %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Message, tc.msg) {
				t.Fatalf("problems %q, want one at %s containing %q", errs, tc.field, tc.msg)
			}
		})
	}
}

// TestAccessPathsHostile checks that access-right paths of policies and
// keys follow the same rule, named by their field path.
func TestAccessPathsHostile(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/../admin", "/a/./b", "/a/%2e%2e/", "/a//b", "/a%2Fb", "/a\\b", "/a\x00", "/a;b", "/a?b", "/a#b", "/a b", "/é"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			access := []AccessRight{{API: "a", Paths: []string{"/ok/**", p}}}
			pol := Policy{ID: "p", Access: access}
			key := Key{ID: "k", Hash: strings.Repeat("ab", 32), Access: access}
			for name, errs := range map[string][]string{"policy": fields(pol.Validate()), "key": fields(key.Validate())} {
				if len(errs) != 1 || errs[0] != "access[0].paths[1]" {
					t.Errorf("%s problems at %q, want one at access[0].paths[1]", name, errs)
				}
			}
		})
	}
}

func fields(errs validation.Errors) []string {
	out := make([]string, len(errs))
	for i, p := range errs {
		out[i] = p.Field
	}
	return out
}
