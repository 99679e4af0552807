package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/gateway/internal/jwtauth"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// jwtSettings accept RS256, ES256 and EdDSA tokens of the test provider for
// audience "orders"; scopes map to policies, with no default.
func jwtSettings(o *testutil.OIDC) *model.JWTAuth {
	return &model.JWTAuth{
		Algorithms: []string{"RS256", "ES256", "EdDSA"},
		Keys:       model.JWTKeys{OIDCIssuer: o.Issuer()},
		Audiences:  []string{"orders"},
		Policies: model.JWTPolicies{
			Claim: "scope",
			Map: map[string][]string{
				"orders:read":    {"read"},
				"orders:limited": {"limited"},
			},
		},
		ForwardClaims: map[string]string{"sub": "X-User-Id", "email": "X-User-Email"},
	}
}

func jwtAPI(id, path, target string, o *testutil.OIDC) *model.API {
	a := keyless(id, path, target)
	a.Auth = model.Auth{Mode: model.AuthJWT, JWT: jwtSettings(o)}
	return a
}

// tokenClaims are valid claims for jwtSettings, with extra ones replacing
// them (a nil value deletes the claim).
func tokenClaims(o *testutil.OIDC, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": o.Issuer(), "sub": "alice", "aud": "orders", "iat": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "scope": "orders:read", "email": "alice@example.com",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// identity is the hash a token of sub counts against.
func identity(o *testutil.OIDC, sub string) string {
	return model.HashKey([]byte(o.Issuer() + "|" + sub))
}

func readPolicy(api string) *model.Policy {
	return &model.Policy{ID: "read", Access: []model.AccessRight{{API: api, Methods: []string{"GET"}}}}
}

// An API in auth mode jwt with keys from an OIDC issuer: every accepted
// algorithm passes with the claims forwarded; every refusal has its status,
// stable code and challenge.
func TestJWTAuthentication(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	o := testutil.StartOIDC(t)
	up := echoUpstream(t)
	c.put(jwtAPI("orders", "/orders", up.URL, o), readPolicy("orders"))
	n := c.node()

	sign := func(alg string, extra map[string]any) string { return o.Sign(alg, tokenClaims(o, extra)) }
	valid := sign("RS256", nil)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + testutil.EncodeJWTPart(tokenClaims(o, map[string]any{"sub": "mallory"})) + "." + parts[2]
	none := testutil.EncodeJWTPart(map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."
	confused := testutil.SignHMAC(t, "HS256", []byte(o.PublicKeyPEM("RS256")), map[string]any{"kid": o.KID("RS256")}, tokenClaims(o, nil))

	cases := []struct {
		name    string
		method  string
		headers []string
		status  int
		code    string
		www     string
	}{
		{"RS256", "GET", bearer(valid), 200, "", ""},
		{"ES256", "GET", bearer(sign("ES256", nil)), 200, "", ""},
		{"EdDSA", "GET", bearer(sign("EdDSA", nil)), 200, "", ""},
		{"missing", "GET", nil, 401, "token_missing", "Bearer"},
		{"not bearer", "GET", []string{"Authorization", "Basic " + valid}, 401, "token_missing", "Bearer"},
		{"expired", "GET", bearer(sign("ES256", map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})), 401, "token_expired", `Bearer error="invalid_token"`},
		{"bad signature", "GET", bearer(tampered), 401, "signature_invalid", `Bearer error="invalid_token"`},
		{"wrong aud", "GET", bearer(sign("RS256", map[string]any{"aud": "billing"})), 401, "audience_invalid", `Bearer error="invalid_token"`},
		{"wrong iss", "GET", bearer(sign("RS256", map[string]any{"iss": "https://evil.example"})), 401, "issuer_invalid", `Bearer error="invalid_token"`},
		{"alg none", "GET", bearer(none), 401, "algorithm_not_allowed", `Bearer error="invalid_token"`},
		{"HS256 with the RSA public key", "GET", bearer(confused), 401, "algorithm_not_allowed", `Bearer error="invalid_token"`},
		{"algorithm not listed", "GET", bearer(sign("ES384", nil)), 401, "algorithm_not_allowed", `Bearer error="invalid_token"`},
		{"unknown kid", "GET", bearer(o.SignWithHeader("RS256", map[string]any{"kid": "nope"}, tokenClaims(o, nil))), 401, "unknown_key", `Bearer error="invalid_token"`},
		{"garbage", "GET", bearer("not-a-token"), 401, "token_invalid", `Bearer error="invalid_token"`},
		{"no policy", "GET", bearer(sign("RS256", map[string]any{"scope": "profile"})), 403, "insufficient_scope", `Bearer error="insufficient_scope"`},
		{"policy without the method", "POST", bearer(valid), 403, "forbidden", `Bearer error="insufficient_scope"`},
	}
	t.Run("requests", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				h := append([]string{"X-User-Id", "mallory", "X-User-Email", "mallory@example.com"}, tc.headers...)
				r := do(t, tc.method, n.url+"/orders/1", h...)
				if r.status != tc.status || r.code != tc.code {
					t.Fatalf("got %d %q, want %d %q: %s", r.status, r.code, tc.status, tc.code, r.body)
				}
				if got := r.header.Get("WWW-Authenticate"); got != tc.www {
					t.Fatalf("WWW-Authenticate %q, want %q", got, tc.www)
				}
				if r.status != 200 {
					if r.header.Get("Content-Type") != "application/json" || strings.Contains(r.body, "eyJ") {
						t.Fatalf("error body %q", r.body)
					}
					return
				}
				if r.echo.Headers["X-User-Id"] != "alice" || r.echo.Headers["X-User-Email"] != "alice@example.com" {
					t.Fatalf("forwarded claims %v", r.echo.Headers)
				}
			})
		}
	})

	// A forwarded claim the token lacks: the incoming header is still gone.
	r := do(t, "GET", n.url+"/orders/1", append(bearer(sign("ES256", map[string]any{"email": nil})), "X-User-Email", "mallory@example.com")...)
	if r.status != 200 || r.echo.Headers["X-User-Email"] != "" || r.echo.Headers["X-User-Id"] != "alice" {
		t.Fatalf("claim absent from the token: %d %v", r.status, r.echo.Headers)
	}

	// Usage events carry the identity hash (authenticated requests: the 4
	// accepted and the one refused by its policy), never the token.
	want := identity(o, "alice")
	var withHash, without int
	for _, e := range n.events.all() {
		switch {
		case e.KeyHash == want:
			withHash++
		case e.KeyHash != "":
			t.Errorf("event (%d) with key hash %q, want %q", e.Status, e.KeyHash, want)
		case e.Status == 200:
			t.Errorf("accepted request without key hash")
		default:
			without++
		}
		if strings.Contains(e.Path, "eyJ") {
			t.Errorf("token in event path %q", e.Path)
		}
	}
	if withHash != 5 || without != len(cases)-4 {
		t.Fatalf("%d events with the identity hash and %d without, want 5 and %d", withHash, without, len(cases)-4)
	}
}

// A limit keyed on the token subject holds across three nodes sharing one
// Redis, and two different tokens of one subject (even signed with
// different algorithms) share it.
func TestJWTThreeNodesExactLimit(t *testing.T) {
	t.Parallel()
	c := newExactCluster(t)
	o := testutil.StartOIDC(t)
	up := echoUpstream(t)
	const L = 40
	api := jwtAPI("orders", "/orders", up.URL, o)
	api.OnStoreError = model.StoreErrorClosed
	c.put(api,
		&model.Policy{ID: "limited", Access: []model.AccessRight{{API: "orders"}}, RateLimit: &model.Limit{Rate: L, Per: model.Duration(time.Hour)}})
	nodes := []*node{c.node(), c.node(), c.node()}
	scope := map[string]any{"scope": "orders:limited", "sub": "carol"}
	tokens := []string{o.Sign("RS256", tokenClaims(o, scope)), o.Sign("ES256", tokenClaims(o, map[string]any{"scope": "orders:limited", "sub": "carol", "jti": "2"}))}
	if tokens[0] == tokens[1] {
		t.Fatal("tokens are equal")
	}
	ok, limited := hammer(t, func(w, i int) response {
		return do(t, "GET", nodes[(w+i)%3].url+"/orders", bearer(tokens[(w+i/3)%2])...)
	})
	if ok != L || limited != hammerRequests-L {
		t.Fatalf("accepted %d, limited %d; want %d and %d", ok, limited, L, hammerRequests-L)
	}
	// Another subject has its own allowance.
	other := o.Sign("EdDSA", tokenClaims(o, map[string]any{"scope": "orders:limited", "sub": "dave"}))
	for _, n := range nodes {
		if r := do(t, "GET", n.url+"/orders", bearer(other)...); r.status != 200 {
			t.Fatalf("other subject: %d %s", r.status, r.body)
		}
	}
	for _, n := range nodes {
		for _, e := range n.events.all() {
			if e.KeyHash != identity(o, "carol") && e.KeyHash != identity(o, "dave") {
				t.Fatalf("event key hash %q", e.KeyHash)
			}
		}
	}
}

// An API key API with JWT settings takes either; the first credential
// present wins: the key in its header or query parameter, then a bearer
// value shaped like a JWT, then a bearer API key.
func TestAPIKeyOrJWT(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	o := testutil.StartOIDC(t)
	up := echoUpstream(t)
	a := keyless("either", "/either", up.URL)
	a.Auth = model.Auth{Mode: model.AuthAPIKey, QueryParam: "api_key", JWT: jwtSettings(o)}
	c.put(a, readPolicy("either"), keyFor(secret, func(k *model.Key) { k.Policies = []string{"read"} }))
	n := c.node()
	valid := o.Sign("ES256", tokenClaims(o, nil))
	expired := o.Sign("RS256", tokenClaims(o, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}))
	keyHash, tokenHash := model.HashKey([]byte(secret)), identity(o, "alice")
	cases := []struct {
		name    string
		path    string
		headers []string
		status  int
		code    string
		hash    string // the usage event's
	}{
		{"key header", "/either", []string{"X-API-Key", secret}, 200, "", keyHash},
		{"key query", "/either?api_key=" + secret, nil, 200, "", keyHash},
		{"bearer key", "/either", bearer(secret), 200, "", keyHash},
		{"bearer jwt", "/either", bearer(valid), 200, "", tokenHash},
		{"key header wins over a bad jwt", "/either", append(bearer(expired), "X-API-Key", secret), 200, "", keyHash},
		{"key header wins over a good jwt", "/either", append(bearer(valid), "X-API-Key", "unknown-key-0123456789"), 401, "invalid_key", ""},
		{"expired jwt", "/either", bearer(expired), 401, "token_expired", ""},
		{"unknown bearer key", "/either", bearer("unknown-key-0123456789"), 401, "invalid_key", ""},
		{"nothing", "/either", nil, 401, "missing_key", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: each case finds its own usage event last.
			h := append([]string{"X-User-Id", "mallory"}, tc.headers...)
			r := do(t, "GET", n.url+tc.path, h...)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("got %d %q, want %d %q: %s", r.status, r.code, tc.status, tc.code, r.body)
			}
			if r.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") && tc.code != "invalid_key" {
				t.Fatalf("401 without a Bearer challenge: %v", r.header)
			}
			ev := n.events.all()
			if got := ev[len(ev)-1].KeyHash; got != tc.hash {
				t.Fatalf("usage key hash %q, want %q", got, tc.hash)
			}
			if r.status != 200 {
				return
			}
			if r.echo.Headers["X-Api-Key"] != "" || strings.Contains(r.echo.Path, secret) {
				t.Fatalf("key forwarded upstream: %+v", r.echo)
			}
			wantUser := ""
			if tc.hash == tokenHash {
				wantUser = "alice"
			}
			if got := r.echo.Headers["X-User-Id"]; got != wantUser {
				t.Fatalf("X-User-Id %q upstream, want %q", got, wantUser)
			}
		})
	}
}

// A policy change evicts the sessions of token identities holding it, as
// it does those of keys: the next request sees the new access rights.
func TestJWTPolicyChangeEvicts(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	o := testutil.StartOIDC(t)
	up := echoUpstream(t)
	c.put(jwtAPI("orders", "/orders", up.URL, o), readPolicy("orders"))
	n := c.node()
	tok := bearer(o.Sign("RS256", tokenClaims(o, nil)))
	if r := do(t, "GET", n.url+"/orders", tok...); r.status != 200 {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	if r := do(t, "POST", n.url+"/orders", tok...); r.status != 403 {
		t.Fatalf("POST before the change: %d %s", r.status, r.body)
	}
	ctx := context.Background()
	from := n.state.Version()
	c.put(&model.Policy{ID: "read", Access: []model.AccessRight{{API: "orders", Methods: []string{"GET", "POST"}}}})
	vs, err := c.store.ChangesSince(ctx, from, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if err := n.state.Apply(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if r := do(t, "POST", n.url+"/orders", tok...); r.status != 200 {
		t.Fatalf("POST after the change: %d %s", r.status, r.body)
	}
	// The token's cached verification is untouched: only the session was
	// rebuilt. A policy removed leaves the token without access.
	from = n.state.Version()
	if _, err := storetest.Delete(ctx, c.store, store.KindPolicy, "read"); err != nil {
		t.Fatal(err)
	}
	vs, err = c.store.ChangesSince(ctx, from, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if err := n.state.Apply(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if r := do(t, "GET", n.url+"/orders", tok...); r.status != 403 || r.code != "forbidden" {
		t.Fatalf("GET after the policy was deleted: %d %s", r.status, r.body)
	}
}

// An API with JWT settings the gateway could not turn into a verifier
// answers 500, never lets a token through.
func TestJWTWithoutVerifier(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	o := testutil.StartOIDC(t)
	up := echoUpstream(t)
	c.put(jwtAPI("orders", "/orders", up.URL, o), readPolicy("orders"))
	n := c.node()
	n.state.Snapshot().API("orders").JWT = nil // as when the provider is missing
	r := do(t, "GET", n.url+"/orders", bearer(o.Sign("RS256", tokenClaims(o, nil)))...)
	if r.status != 500 || r.code != "internal" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// jwtClock is the JWT provider's clock in a test: the real time plus what
// the test has added.
type jwtClock struct{ skew atomic.Int64 }

func (c *jwtClock) Now() time.Time      { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *jwtClock) Add(d time.Duration) { c.skew.Add(int64(d)) }

// A provider that rotates its keys under the same kids: the first request
// with a token of the new key is accepted, without waiting for the periodic
// refresh (refresh_interval, 5m); the replaced key's tokens are refused,
// and a flood of bad signatures costs the provider no further fetch within
// min_refresh_interval.
func TestJWTSameKIDRotation(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	clk := &jwtClock{}
	c.jwt = jwtauth.Options{Now: clk.Now} // refresh_interval 5m, min_refresh_interval 10s
	o := testutil.StartOIDC(t)
	up := echoUpstream(t)
	c.put(jwtAPI("orders", "/orders", up.URL, o), readPolicy("orders"))
	n := c.node()

	cached := bearer(o.Sign("RS256", tokenClaims(o, nil)))
	if r := do(t, "GET", n.url+"/orders", cached...); r.status != 200 {
		t.Fatalf("before the rotation: %d %s", r.status, r.body)
	}
	kid := o.KID("RS256")
	byOldKey := bearer(o.Sign("RS256", tokenClaims(o, map[string]any{"sub": "bob"})))
	o.RotateSameKID()
	if o.KID("RS256") != kid {
		t.Fatalf("kid changed: %s -> %s", kid, o.KID("RS256"))
	}
	fetches := o.JWKSFetches()
	// In a running gateway the last fetch is older than min_refresh_interval.
	clk.Add(11 * time.Second)

	fresh := o.Sign("RS256", tokenClaims(o, map[string]any{"sub": "carol"}))
	if r := do(t, "GET", n.url+"/orders", bearer(fresh)...); r.status != 200 || r.echo.Headers["X-User-Id"] != "carol" {
		t.Fatalf("new key under the same kid, first request: %d %s", r.status, r.body)
	}
	if got := o.JWKSFetches() - fetches; got != 1 {
		t.Fatalf("%d key set fetches for the rotation, want 1", got)
	}
	if r := do(t, "GET", n.url+"/orders", byOldKey...); r.status != 401 || r.code != "signature_invalid" {
		t.Fatalf("token of the replaced key: %d %s", r.status, r.body)
	}
	// Verified before the rotation: answered from the cache until its exp.
	if r := do(t, "GET", n.url+"/orders", cached...); r.status != 200 {
		t.Fatalf("cached token: %d %s", r.status, r.body)
	}
	parts := strings.Split(fresh, ".")
	for i := 0; i < 50; i++ {
		forged := parts[0] + "." + testutil.EncodeJWTPart(tokenClaims(o, map[string]any{"sub": fmt.Sprint("mallory", i)})) + "." + parts[2]
		if r := do(t, "GET", n.url+"/orders", bearer(forged)...); r.status != 401 || r.code != "signature_invalid" {
			t.Fatalf("forged token %d: %d %s", i, r.status, r.body)
		}
	}
	if got := o.JWKSFetches() - fetches; got != 1 {
		t.Fatalf("%d key set fetches after 50 bad signatures within min_refresh_interval, want still 1", got)
	}
}

// The header rules and NumericDates of any magnitude, through a gateway
// node: what jwtauth refuses reaches the client as a 401 with its code and
// challenge, never the upstream.
func TestJWTHeaderRulesEndToEnd(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	o := testutil.StartOIDC(t)
	up := echoUpstream(t)
	c.put(jwtAPI("orders", "/orders", up.URL, o), readPolicy("orders"))
	n := c.node()
	signH := func(h map[string]any, extra map[string]any) string {
		return o.SignWithHeader("ES256", h, tokenClaims(o, extra))
	}
	num := func(s string) map[string]any { return map[string]any{"exp": json.Number(s)} }
	for _, tc := range []struct {
		name   string
		tok    string
		status int
		code   string
	}{
		{"exp 1e18", signH(nil, num("1e18")), 200, ""},
		{"exp 2^63", signH(nil, num("9223372036854775808")), 200, ""},
		{"exp 1.7e308", signH(nil, num("1.7e308")), 200, ""},
		{"exp -1", signH(nil, num("-1")), 401, "token_expired"},
		{"nbf 1e400", signH(nil, map[string]any{"nbf": json.Number("1e400")}), 401, "token_not_yet_valid"},
		{"typ at+jwt", signH(map[string]any{"typ": "at+jwt"}, nil), 200, ""},
		{"crit", signH(map[string]any{"crit": []string{"ext"}, "ext": 1}, nil), 401, "token_invalid"},
		{"b64 false", signH(map[string]any{"b64": false}, nil), 401, "token_invalid"},
		{"typ logout+jwt", signH(map[string]any{"typ": "logout+jwt"}, nil), 401, "token_invalid"},
		{"jku", signH(map[string]any{"jku": o.JWKSURL(), "kid": "elsewhere"}, nil), 401, "unknown_key"},
		{"padding", signH(nil, nil) + "==", 401, "token_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := do(t, "GET", n.url+"/orders/1", bearer(tc.tok)...)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("got %d %q, want %d %q: %s", r.status, r.code, tc.status, tc.code, r.body)
			}
			if r.status == 401 && r.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
				t.Fatalf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
			if r.status == 200 && r.echo.Headers["X-User-Id"] != "alice" {
				t.Fatalf("forwarded claims %v", r.echo.Headers)
			}
		})
	}
}
