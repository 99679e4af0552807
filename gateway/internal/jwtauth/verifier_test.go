package jwtauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-hs256-secret")

func TestValidTokensPass(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{})

	oidc := mustVerifier(t, p, oidcConfig(o))
	jwksCfg := oidcConfig(o)
	jwksCfg.Keys = model.JWTKeys{JWKSURL: o.JWKSURL()}
	jwksCfg.Algorithms = []string{"RS384", "PS512", "ES512"}
	jwks := mustVerifier(t, p, jwksCfg)
	pemCfg := oidcConfig(o)
	pemCfg.Keys = model.JWTKeys{PublicKey: o.PublicKeyPEM("ES256")}
	pemCfg.Algorithms = []string{"ES256"}
	pem := mustVerifier(t, p, pemCfg)
	hsCfg := oidcConfig(o)
	hsCfg.Keys = model.JWTKeys{Secret: base64.StdEncoding.EncodeToString(testSecret)}
	hsCfg.Algorithms = []string{"HS256"}
	hs := mustVerifier(t, p, hsCfg)

	for _, tc := range []struct {
		name string
		v    *Verifier
		tok  string
	}{
		{"RS256 oidc", oidc, o.Sign("RS256", claims(o, clk, nil))},
		{"PS256 oidc", oidc, o.Sign("PS256", claims(o, clk, nil))},
		{"ES256 oidc", oidc, o.Sign("ES256", claims(o, clk, nil))},
		{"ES384 oidc", oidc, o.Sign("ES384", claims(o, clk, nil))},
		{"EdDSA oidc", oidc, o.Sign("EdDSA", claims(o, clk, nil))},
		{"RS384 jwks", jwks, o.Sign("RS384", claims(o, clk, nil))},
		{"PS512 jwks", jwks, o.Sign("PS512", claims(o, clk, nil))},
		{"ES512 jwks", jwks, o.Sign("ES512", claims(o, clk, nil))},
		{"ES256 pem without kid", pem, o.SignWithHeader("ES256", map[string]any{"kid": nil}, claims(o, clk, nil))},
		{"HS256 secret", hs, testutil.SignHMAC(t, "HS256", testSecret, nil, claims(o, clk, nil))},
		{"aud array", oidc, o.Sign("RS256", claims(o, clk, map[string]any{"aud": []string{"billing", "orders"}}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := verify(tc.v, tc.tok)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want := sha256.Sum256([]byte(o.Issuer() + "|alice"))
			if r.Identity != hex.EncodeToString(want[:]) || r.Subject != "alice" || r.Issuer != o.Issuer() {
				t.Errorf("identity = %q subject %q issuer %q", r.Identity, r.Subject, r.Issuer)
			}
			if !reflect.DeepEqual(r.Policies, []string{"orders-read"}) {
				t.Errorf("policies = %v", r.Policies)
			}
		})
	}
}

func TestAttacksAndBadTokensRefused(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{})
	cfg := oidcConfig(o)
	cfg.Algorithms = []string{"RS256", "ES256", "EdDSA"}
	v := mustVerifier(t, p, cfg)
	pemCfg := oidcConfig(o)
	pemCfg.Keys = model.JWTKeys{PublicKey: o.PublicKeyPEM("RS256")}
	pemCfg.Algorithms = []string{"RS256"}
	pemV := mustVerifier(t, p, pemCfg)

	good := o.Sign("RS256", claims(o, clk, nil))
	parts := strings.Split(good, ".")
	none := testutil.EncodeJWTPart(map[string]any{"alg": "none", "typ": "JWT"}) + "." + parts[1] + "."
	noneUpper := testutil.EncodeJWTPart(map[string]any{"alg": "NONE", "kid": o.KID("RS256")}) + "." + parts[1] + "."
	tampered := parts[0] + "." + testutil.EncodeJWTPart(claims(o, clk, map[string]any{"sub": "mallory"})) + "." + parts[2]
	// The classic RS/HS confusion: HMAC over the token with the RSA public
	// key PEM, which anyone can download, as the secret.
	pemSecret := []byte(o.PublicKeyPEM("RS256"))
	confused := testutil.SignHMAC(t, "HS256", pemSecret, map[string]any{"kid": o.KID("RS256")}, claims(o, clk, nil))

	for _, tc := range []struct {
		name   string
		v      *Verifier
		tok    string
		code   string
		status int
	}{
		{"empty", v, "", CodeTokenMissing, 401},
		{"garbage", v, "not a token", CodeTokenInvalid, 401},
		{"three dots", v, "...", CodeTokenInvalid, 401},
		{"alg none", v, none, CodeAlgorithmNotAllowed, 401},
		{"alg NONE with kid", v, noneUpper, CodeAlgorithmNotAllowed, 401},
		{"HS256 with RSA public key as secret", v, confused, CodeAlgorithmNotAllowed, 401},
		{"HS256 with RSA public key as secret, static PEM", pemV, confused, CodeAlgorithmNotAllowed, 401},
		{"algorithm not listed", v, o.Sign("PS256", claims(o, clk, nil)), CodeAlgorithmNotAllowed, 401},
		{"unknown alg", v, o.SignWithHeader("RS256", map[string]any{"alg": "RS257"}, claims(o, clk, nil)), CodeAlgorithmNotAllowed, 401},
		{"unknown kid", v, o.SignWithHeader("RS256", map[string]any{"kid": "../../etc/passwd"}, claims(o, clk, nil)), CodeUnknownKey, 401},
		{"kid of another key type", v, o.SignWithHeader("RS256", map[string]any{"kid": o.KID("ES256")}, claims(o, clk, nil)), CodeUnknownKey, 401},
		{"kid not a string", v, o.SignWithHeader("RS256", map[string]any{"kid": 7}, claims(o, clk, nil)), CodeTokenInvalid, 401},
		{"tampered payload", v, tampered, CodeSignatureInvalid, 401},
		{"tampered payload, static PEM", pemV, tampered, CodeSignatureInvalid, 401},
		{"signature of ES256 under EdDSA header", v, o.SignWithHeader("ES256", map[string]any{"alg": "EdDSA", "kid": o.KID("EdDSA")}, claims(o, clk, nil)), CodeSignatureInvalid, 401},
		{"expired", v, o.Sign("ES256", claims(o, clk, map[string]any{"exp": clk.unix(-time.Minute)})), CodeTokenExpired, 401},
		{"no exp", v, o.Sign("ES256", claims(o, clk, map[string]any{"exp": nil})), CodeTokenInvalid, 401},
		{"not yet valid", v, o.Sign("EdDSA", claims(o, clk, map[string]any{"nbf": clk.unix(time.Minute)})), CodeTokenNotYetValid, 401},
		{"issued in the future", v, o.Sign("EdDSA", claims(o, clk, map[string]any{"iat": clk.unix(time.Hour)})), CodeTokenNotYetValid, 401},
		{"wrong aud", v, o.Sign("RS256", claims(o, clk, map[string]any{"aud": "billing"})), CodeAudienceInvalid, 401},
		{"no aud", v, o.Sign("RS256", claims(o, clk, map[string]any{"aud": nil})), CodeAudienceInvalid, 401},
		{"wrong iss", v, o.Sign("RS256", claims(o, clk, map[string]any{"iss": "https://evil.example"})), CodeIssuerInvalid, 401},
		{"no iss", v, o.Sign("RS256", claims(o, clk, map[string]any{"iss": nil})), CodeIssuerInvalid, 401},
		{"no sub", v, o.Sign("RS256", claims(o, clk, map[string]any{"sub": nil})), CodeTokenInvalid, 401},
		{"sub not a string", v, o.Sign("RS256", claims(o, clk, map[string]any{"sub": map[string]any{"a": 1}})), CodeTokenInvalid, 401},
		{"exp not a number", v, o.Sign("RS256", claims(o, clk, map[string]any{"exp": "tomorrow"})), CodeTokenInvalid, 401},
		{"no scope maps to a policy", v, o.Sign("RS256", claims(o, clk, map[string]any{"scope": "profile email"})), CodeInsufficientScope, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := verify(tc.v, tc.tok)
			if err == nil {
				t.Fatalf("accepted: %+v", r)
			}
			if got := codeOf(err); got != tc.code {
				t.Fatalf("code = %s, want %s (%v)", got, tc.code, err)
			}
			e := err.(*Error)
			if e.Status != tc.status {
				t.Errorf("status = %d, want %d", e.Status, tc.status)
			}
			if tc.tok != "" && strings.Contains(err.Error(), tc.tok) {
				t.Errorf("error text contains the token")
			}
		})
	}
	if _, err := verify(v, good); err != nil {
		t.Fatalf("the untampered token is refused: %v", err)
	}
}

func TestErrorHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    *Error
		header string
		status int
	}{
		{ErrTokenMissing, `Bearer`, http.StatusUnauthorized},
		{ErrTokenExpired.with(nil), `Bearer error="invalid_token"`, http.StatusUnauthorized},
		{ErrSignatureInvalid, `Bearer error="invalid_token"`, http.StatusUnauthorized},
		{ErrInsufficientScope, `Bearer error="insufficient_scope"`, http.StatusForbidden},
	} {
		if got := tc.err.WWWAuthenticate(); got != tc.header || tc.err.Status != tc.status {
			t.Errorf("%s: header %q status %d, want %q %d", tc.err.Code, got, tc.err.Status, tc.header, tc.status)
		}
	}
	codes := map[string]bool{}
	for _, e := range Errors() {
		codes[e.Code] = true
		if !errors.Is(e.with(errErr("cause")), e) {
			t.Errorf("%s with a cause is not its sentinel", e.Code)
		}
	}
	if len(codes) != len(allCodes) {
		t.Errorf("Errors() has %d codes, want %d", len(codes), len(allCodes))
	}
	if !strings.Contains(ErrTokenExpired.with(errErr("x")).Error(), "token_expired") {
		t.Error("error text lacks its code")
	}
}

type errErr string

func (e errErr) Error() string { return string(e) }

func TestLeeway(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := newTestProvider(t, clk, Options{})
	cfg := &model.JWTAuth{
		Algorithms: []string{"HS256"},
		Keys:       model.JWTKeys{Secret: base64.StdEncoding.EncodeToString(testSecret)},
		Leeway:     model.Duration(30 * time.Second),
		Policies:   model.JWTPolicies{Default: []string{"basic"}},
	}
	v := mustVerifier(t, p, cfg)
	for _, tc := range []struct {
		name string
		c    map[string]any
		code string
	}{
		{"expired within leeway", map[string]any{"sub": "a", "exp": clk.unix(-10 * time.Second)}, ""},
		{"expired past leeway", map[string]any{"sub": "a", "exp": clk.unix(-40 * time.Second)}, CodeTokenExpired},
		{"nbf within leeway", map[string]any{"sub": "a", "exp": clk.unix(time.Minute), "nbf": clk.unix(20 * time.Second)}, ""},
		{"nbf past leeway", map[string]any{"sub": "a", "exp": clk.unix(time.Minute), "nbf": clk.unix(40 * time.Second)}, CodeTokenNotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify(v, testutil.SignHMAC(t, "HS256", testSecret, nil, tc.c))
			if got := codeOf(err); got != tc.code {
				t.Fatalf("code = %q, want %q (%v)", got, tc.code, err)
			}
		})
	}
}

func TestPolicyMapping(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := newTestProvider(t, clk, Options{})
	secret := base64.StdEncoding.EncodeToString(testSecret)
	scopeCfg := &model.JWTAuth{
		Algorithms: []string{"HS256"}, Keys: model.JWTKeys{Secret: secret},
		Policies: model.JWTPolicies{Claim: "scope", Map: map[string][]string{
			"orders:read": {"orders-read"}, "orders:write": {"orders-write", "orders-read"},
		}, Default: []string{"basic"}},
	}
	groupsCfg := &model.JWTAuth{
		Algorithms: []string{"HS256"}, Keys: model.JWTKeys{Secret: secret}, IdentityClaim: "email",
		Policies: model.JWTPolicies{Claim: "groups", Map: map[string][]string{"admins": {"admin"}, "staff": {"staff"}}},
	}
	scope, groups := mustVerifier(t, p, scopeCfg), mustVerifier(t, p, groupsCfg)
	base := func(extra map[string]any) map[string]any {
		c := map[string]any{"sub": "u1", "email": "u1@example.com", "exp": clk.unix(time.Hour)}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	for _, tc := range []struct {
		name    string
		v       *Verifier
		c       map[string]any
		want    []string
		code    string
		subject string
	}{
		{"one scope", scope, base(map[string]any{"scope": "orders:read"}), []string{"orders-read"}, "", "u1"},
		{"two scopes, union", scope, base(map[string]any{"scope": "openid orders:write  orders:read"}), []string{"orders-read", "orders-write"}, "", "u1"},
		{"scope array", scope, base(map[string]any{"scope": []string{"orders:write"}}), []string{"orders-read", "orders-write"}, "", "u1"},
		{"no mapped scope: default", scope, base(map[string]any{"scope": "profile"}), []string{"basic"}, "", "u1"},
		{"no scope claim: default", scope, base(nil), []string{"basic"}, "", "u1"},
		{"groups", groups, base(map[string]any{"groups": []any{"staff", "admins", 7}}), []string{"admin", "staff"}, "", "u1@example.com"},
		{"no group maps, no default", groups, base(map[string]any{"groups": []string{"guests"}}), nil, CodeInsufficientScope, ""},
		{"identity claim missing", groups, map[string]any{"sub": "u1", "exp": clk.unix(time.Hour), "groups": []string{"staff"}}, nil, CodeTokenInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := verify(tc.v, testutil.SignHMAC(t, "HS256", testSecret, nil, tc.c))
			if got := codeOf(err); got != tc.code {
				t.Fatalf("code = %q, want %q (%v)", got, tc.code, err)
			}
			if err != nil {
				return
			}
			if !reflect.DeepEqual(r.Policies, tc.want) || r.Subject != tc.subject {
				t.Fatalf("policies %v subject %q, want %v %q", r.Policies, r.Subject, tc.want, tc.subject)
			}
			if r.SessionKey != sha256.Sum256([]byte(r.Identity+"|"+strings.Join(tc.want, ","))) {
				t.Errorf("session key is not sha256(identity|policies)")
			}
			want := sha256.Sum256([]byte("|" + tc.subject)) // no iss claim
			if r.Identity != hex.EncodeToString(want[:]) {
				t.Errorf("identity %s is not sha256(iss|subject)", r.Identity)
			}
		})
	}
}

func TestForwardClaims(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := newTestProvider(t, clk, Options{})
	cfg := &model.JWTAuth{
		Algorithms: []string{"HS256"}, Keys: model.JWTKeys{Secret: base64.RawURLEncoding.EncodeToString(testSecret)},
		Policies: model.JWTPolicies{Default: []string{"basic"}},
		ForwardClaims: map[string]string{
			"sub": "X-User-Id", "groups": "X-User-Groups", "admin": "X-Admin", "n": "X-N",
			"evil": "X-Evil", "absent": "X-Absent", "org": "X-Org",
		},
	}
	v := mustVerifier(t, p, cfg)
	tok := testutil.SignHMAC(t, "HS256", testSecret, nil, map[string]any{
		"sub": "alice", "exp": clk.unix(time.Hour), "groups": []string{"a", "b"}, "admin": true, "n": 12345678901,
		"evil": "x\r\nX-Injected: 1", "org": map[string]any{"id": 1},
	})
	r, err := verify(v, tok)
	if err != nil {
		t.Fatal(err)
	}
	want := []Header{{"X-Admin", "true"}, {"X-User-Groups", "a,b"}, {"X-N", "12345678901"}, {"X-Org", `{"id":1}`}, {"X-User-Id", "alice"}}
	if !reflect.DeepEqual(r.Forward, want) {
		t.Fatalf("forward = %v\nwant %v", r.Forward, want)
	}
}
