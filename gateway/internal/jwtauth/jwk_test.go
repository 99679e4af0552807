package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

func enc(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsaJWK := func(kid string, k *rsa.PublicKey) map[string]any {
		return map[string]any{"kty": "RSA", "kid": kid, "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	}
	ecX, ecY := enc(ek.X.FillBytes(make([]byte, 32))), enc(ek.Y.FillBytes(make([]byte, 32)))
	offCurveY := enc(new(big.Int).Add(ek.Y, big.NewInt(1)).FillBytes(make([]byte, 32)))

	for _, tc := range []struct {
		name  string
		keys  []map[string]any
		kids  []string // usable kids
		noKID int
		err   string
	}{
		{"rsa, ec, okp", []map[string]any{
			rsaJWK("r", &rk.PublicKey),
			{"kty": "EC", "kid": "e", "crv": "P-256", "x": ecX, "y": ecY, "alg": "ES256", "use": "sig"},
			{"kty": "OKP", "kid": "o", "crv": "Ed25519", "x": enc(edPub)},
		}, []string{"e", "o", "r"}, 0, ""},
		{"unusable keys skipped", []map[string]any{
			rsaJWK("r", &rk.PublicKey),
			{"kty": "oct", "kid": "hmac", "k": enc([]byte("secret"))},
			rsaJWK("weak", &weak.PublicKey),
			{"kty": "EC", "kid": "off", "crv": "P-256", "x": ecX, "y": offCurveY},
			{"kty": "EC", "kid": "p224", "crv": "P-224", "x": ecX, "y": ecY},
			{"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": enc(edPub)},
			{"kty": "OKP", "kid": "short", "crv": "Ed25519", "x": enc(edPub[:16])},
			{"kty": "RSA", "kid": "enc", "use": "enc", "n": enc(rk.N.Bytes()), "e": "AQAB"},
			{"kty": "RSA", "kid": "hs-alg", "alg": "HS256", "n": enc(rk.N.Bytes()), "e": "AQAB"},
			{"kty": "EC", "kid": "alg-mismatch", "crv": "P-256", "x": ecX, "y": ecY, "alg": "ES384"},
			{"kty": "RSA", "kid": "even-e", "n": enc(rk.N.Bytes()), "e": "AQA"},
		}, []string{"r"}, 0, ""},
		{"no kid", []map[string]any{{"kty": "OKP", "crv": "Ed25519", "x": enc(edPub)}}, nil, 1, ""},
		{"nothing usable", []map[string]any{{"kty": "oct", "k": "c2VjcmV0"}}, nil, 0, "no usable signature key"},
		{"empty", nil, nil, 0, "no usable signature key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := json.Marshal(map[string]any{"keys": tc.keys})
			m, _, err := parseJWKS(data, time.Now())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range []string{"e", "o", "r", "hmac", "weak", "off", "p224", "x25519", "short", "enc", "hs-alg", "alg-mismatch", "even-e"} {
				if m.byKID[k] != nil {
					kids = append(kids, k)
				}
			}
			if fmt.Sprint(kids) != fmt.Sprint(tc.kids) || len(m.noKID) != tc.noKID || len(m.byKID) != len(tc.kids) {
				t.Fatalf("usable kids %v (+%d without kid), want %v (+%d)", kids, len(m.noKID), tc.kids, tc.noKID)
			}
		})
	}
	for _, bad := range []string{"", "{", `{"keys": 1}`, `[]`} {
		if _, _, err := parseJWKS([]byte(bad), time.Now()); err == nil {
			t.Errorf("parseJWKS(%q) accepted", bad)
		}
	}
}

// A hostile or broken provider: the fetch fails, nothing is accepted and
// nothing hangs.
func TestBrokenProviders(t *testing.T) {
	t.Parallel()
	// Over the size limit, yet a valid set holding kid "k": only the limit
	// refuses it.
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk, _ := json.Marshal(map[string]string{"kty": "EC", "kid": "k", "crv": "P-256", "x": enc(ek.X.FillBytes(make([]byte, 32))), "y": enc(ek.Y.FillBytes(make([]byte, 32)))})
	huge := `{"keys":[` + string(jwk) + `],"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	mux := http.NewServeMux()
	mux.HandleFunc("/huge/jwks", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(huge)) })
	mux.HandleFunc("/status/jwks", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	mux.HandleFunc("/html/jwks", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) })
	var base string
	mux.HandleFunc("/liar/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": "https://someone-else.example", "jwks_uri": base + "/huge/jwks"})
	})
	mux.HandleFunc("/nojwks/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": base + "/nojwks", "jwks_uri": "file:///etc/passwd"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base = srv.URL

	clk := newClock()
	p := newTestProvider(t, clk, Options{MaxResponseBytes: 1 << 20})
	for _, keys := range []model.JWTKeys{
		{JWKSURL: base + "/huge/jwks"},
		{JWKSURL: base + "/status/jwks"},
		{JWKSURL: base + "/html/jwks"},
		{OIDCIssuer: base + "/liar"},
		{OIDCIssuer: base + "/nojwks"},
	} {
		t.Run(keys.JWKSURL+keys.OIDCIssuer, func(t *testing.T) {
			cfg := &model.JWTAuth{Algorithms: []string{"ES256"}, Keys: keys, Policies: model.JWTPolicies{Default: []string{"p"}}}
			v := mustVerifier(t, p, cfg)
			tok := "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJhIn0.AAAA" // {"alg":"ES256","kid":"k"}
			if _, err := verify(v, tok); codeOf(err) != CodeUnknownKey {
				t.Fatalf("err = %v, want unknown_key", err)
			}
			if v.keys.keys.Load() != nil {
				t.Fatal("a key set was stored")
			}
		})
	}
	if got := counter(p.m.fetchErr); got < 5 {
		t.Fatalf("%v failed fetches recorded, want 5", got)
	}
}
