package jwtauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// FuzzVerify feeds arbitrary tokens to verifiers of every key source: the
// parsing path must never panic, and every refusal is a typed *Error.
func FuzzVerify(f *testing.F) {
	o := testutil.StartOIDC(f)
	clk := newClock()
	p := newTestProvider(f, clk, Options{MinRefreshInterval: time.Hour})
	oidc := mustVerifier(f, p, oidcConfig(o))
	pemCfg := oidcConfig(o)
	pemCfg.Keys = model.JWTKeys{PublicKey: o.PublicKeyPEM("RS256")}
	pemCfg.Algorithms = []string{"RS256"}
	pem := mustVerifier(f, p, pemCfg)
	hs := mustVerifier(f, p, hsConfig(model.TokenSource{}))
	verifiers := []*Verifier{oidc, pem, hs}

	valid := o.Sign("RS256", claims(o, clk, nil))
	f.Add(valid)
	f.Add(o.Sign("ES256", claims(o, clk, nil)))
	f.Add(o.Sign("EdDSA", claims(o, clk, map[string]any{"scope": []any{"orders:read", 1, nil}})))
	f.Add(testutil.SignHMAC(f, "HS256", testSecret, nil, map[string]any{"sub": "a", "exp": clk.unix(time.Hour)}))
	f.Add("garbage")
	f.Add("")
	f.Add("...")
	f.Add("..")
	f.Add("eyJ.eyJ.")
	f.Add(testutil.EncodeJWTPart(map[string]any{"alg": "none"}) + "." + strings.Split(valid, ".")[1] + ".")
	f.Add(testutil.EncodeJWTPart(map[string]any{"alg": "RS256", "kid": strings.Repeat("k", 6000)}) + ".e30.c2ln")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","x":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}`)) + ".e30.")
	f.Add(testutil.EncodeJWTPart(map[string]any{"alg": "ES256", "kid": o.KID("ES256")}) + "." + testutil.EncodeJWTPart(map[string]any{"exp": 1e308, "sub": 1.5, "aud": []any{1}}) + ".AAAA")

	// Header shapes the gateway refuses (header.go), signed so that only
	// the header rule stands between them and acceptance, and claims of
	// every magnitude (claims.go). More shapes, unsigned, are in
	// testdata/fuzz/FuzzVerify.
	for _, h := range []map[string]any{
		{"crit": []string{"ext"}, "ext": true},
		{"crit": []string{}},
		{"crit": "b64"},
		{"crit": []string{"missing"}},
		{"crit": []string{"b64"}, "b64": false},
		{"b64": false},
		{"b64": "false"},
		{"typ": "logout+jwt"},
		{"typ": "application/at+jwt"},
		{"cty": "JWT"},
		{"kid": nil},
		{"kid": "' OR 1=1 --"},
		{"jku": o.JWKSURL(), "x5u": o.JWKSURL(), "jwk": map[string]any{"kty": "oct", "k": "AAAA"}},
	} {
		f.Add(o.SignWithHeader("RS256", h, claims(o, clk, nil)))
	}
	for _, n := range []string{"1e18", "9223372036854775808", "1.7e308", "1e400", "-1e400", "0.5"} {
		f.Add(o.Sign("ES256", claims(o, clk, map[string]any{"exp": json.Number(n), "nbf": json.Number(n), "iat": json.Number(n)})))
	}
	f.Add(rawHS256(`{"alg":"HS256","alg":"none"}`, `{"sub":"a","exp":1e18}`))
	f.Add(rawHS256(`{"alg":"HS256"}`, `{"sub":"a","sub":"b","exp":1e18}`))
	f.Add(rawHS256(`{"alg":"HS256","b64":false,"crit":["b64"]}`, `{"sub":"a","exp":1e18}`))
	f.Add(strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "==")

	f.Fuzz(func(t *testing.T, tok string) {
		for _, v := range verifiers {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := v.Verify(ctx, []byte(tok))
			cancel()
			if err == nil {
				if r == nil || len(r.Identity) != 64 || len(r.Policies) == 0 {
					t.Fatalf("accepted with result %+v", r)
				}
				continue
			}
			e, ok := err.(*Error)
			if !ok || e.Code == "" || (e.Status != 401 && e.Status != 403) {
				t.Fatalf("untyped or bad error %T %v", err, err)
			}
		}
	})
}
