package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

func getJSON(t *testing.T, url string, v any) error {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// verifyWithPEM checks a token's signature with the standard library, so
// the provider's signing is proven independently of any JWT library.
func verifyWithPEM(t *testing.T, token, pemKey string) bool {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	block, _ := pem.Decode([]byte(pemKey))
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	input := []byte(parts[0] + "." + parts[1])
	digest := sha256.Sum256(input)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil
	case *ecdsa.PublicKey:
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, digest[:], r, s)
	case ed25519.PublicKey:
		return ed25519.Verify(k, input, sig)
	}
	return false
}

func TestOIDCServesDiscoveryJWKSAndSigns(t *testing.T) {
	t.Parallel()
	o := StartOIDC(t)

	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(t, o.Issuer()+"/.well-known/openid-configuration", &disc); err != nil {
		t.Fatal(err)
	}
	if disc.Issuer != o.Issuer() || disc.JWKSURI != o.JWKSURL() {
		t.Fatalf("discovery = %+v", disc)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := getJSON(t, o.JWKSURL(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 5 {
		t.Fatalf("jwks has %d keys, want 5", len(set.Keys))
	}
	if o.JWKSFetches() != 1 || o.DiscoveryFetches() != 1 {
		t.Fatalf("fetch counts = %d jwks, %d discovery", o.JWKSFetches(), o.DiscoveryFetches())
	}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		tok := o.Sign(alg, map[string]any{"sub": "alice"})
		if !verifyWithPEM(t, tok, o.PublicKeyPEM(alg)) {
			t.Errorf("%s token does not verify with the provider's public key", alg)
		}
		tampered := tok[:len(tok)-4] + "AAAA"
		if verifyWithPEM(t, tampered, o.PublicKeyPEM(alg)) {
			t.Errorf("%s tampered token verifies", alg)
		}
	}
}

func TestOIDCRotateStopStart(t *testing.T) {
	t.Parallel()
	o := StartOIDC(t)
	kid := o.KID("RS256")
	o.Rotate(true)
	if o.KID("RS256") == kid {
		t.Fatal("rotation kept the kid")
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := getJSON(t, o.JWKSURL(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 10 {
		t.Fatalf("graceful rotation publishes %d keys, want 10", len(set.Keys))
	}
	o.Rotate(false)
	o.Stop()
	if err := getJSON(t, o.JWKSURL(), &set); err == nil {
		t.Fatal("stopped provider answered")
	}
	o.Start()
	set.Keys = nil
	if err := getJSON(t, o.JWKSURL(), &set); err != nil {
		t.Fatalf("restarted provider: %v", err)
	}
	if len(set.Keys) != 5 {
		t.Fatalf("abrupt rotation publishes %d keys, want 5", len(set.Keys))
	}
}
