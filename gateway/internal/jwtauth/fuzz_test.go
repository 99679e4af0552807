package jwtauth

import (
	"context"
	"encoding/base64"
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
