package model

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func pemOf(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pkixPEM(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PUBLIC KEY", der)
}

func TestParseJWTPublicKey(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	weakRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, edPub, edPriv)
	if err != nil {
		t.Fatal(err)
	}
	privDER, _ := x509.MarshalPKCS8PrivateKey(p256)

	for _, tc := range []struct {
		name    string
		pem     string
		fits    string // an algorithm the key verifies
		notFits string
		err     string
	}{
		{"rsa pkix", pkixPEM(t, &rsaKey.PublicKey), "PS384", "ES256", ""},
		{"rsa pkcs1", pemOf(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), "RS256", "HS256", ""},
		{"ec p-256", pkixPEM(t, &p256.PublicKey), "ES256", "ES384", ""},
		{"ed25519", pkixPEM(t, edPub), "EdDSA", "RS256", ""},
		{"certificate", pemOf(t, "CERTIFICATE", certDER), "EdDSA", "ES256", ""},
		{"weak rsa", pkixPEM(t, &weakRSA.PublicKey), "", "", "too small"},
		{"p-224", pkixPEM(t, &p224.PublicKey), "", "", "P-256, P-384 or P-521"},
		{"private key", pemOf(t, "PRIVATE KEY", privDER), "", "", "not a public key"},
		{"not pem", "hello", "", "", "must be a PEM block"},
		{"corrupt", pemOf(t, "PUBLIC KEY", []byte{1, 2, 3}), "", "", "parse public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, err := ParseJWTPublicKey(tc.pem)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !KeyFitsAlg(key, tc.fits) || KeyFitsAlg(key, tc.notFits) {
				t.Fatalf("KeyFitsAlg(%s)=%v, (%s)=%v", tc.fits, KeyFitsAlg(key, tc.fits), tc.notFits, KeyFitsAlg(key, tc.notFits))
			}
		})
	}
}

func TestJWTAuthValidateKeys(t *testing.T) {
	t.Parallel()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPEM := pkixPEM(t, &p256.PublicKey)
	secret32 := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		name string
		j    JWTAuth
		want []string // field: message fragments, in order
	}{
		{"hs256 secret ok", JWTAuth{Algorithms: []string{"HS256"}, Keys: JWTKeys{Secret: secret32}, Policies: JWTPolicies{Default: []string{"p"}}}, nil},
		{"secret too short for hs384", JWTAuth{Algorithms: []string{"HS384"}, Keys: JWTKeys{Secret: secret32}, Policies: JWTPolicies{Default: []string{"p"}}}, []string{"keys.secret: HS384 (algorithms[0]) needs a secret of at least 48 bytes"}},
		{"secret not base64", JWTAuth{Algorithms: []string{"HS256"}, Keys: JWTKeys{Secret: "%%%"}, Policies: JWTPolicies{Default: []string{"p"}}}, []string{"keys.secret: must be base64"}},
		{"pem with wrong curve alg", JWTAuth{Algorithms: []string{"ES256", "ES384"}, Keys: JWTKeys{PublicKey: ecPEM}, Policies: JWTPolicies{Default: []string{"p"}}}, []string{"algorithms[1]: ES384 cannot be verified with the ECDSA P-256 key"}},
		{"hs with pem", JWTAuth{Algorithms: []string{"HS256"}, Keys: JWTKeys{PublicKey: ecPEM}, Policies: JWTPolicies{Default: []string{"p"}}}, []string{"algorithms: HS algorithms need keys.secret"}},
		{"hs with oidc", JWTAuth{Algorithms: []string{"HS256"}, Keys: JWTKeys{OIDCIssuer: "https://idp.example.com"}, Policies: JWTPolicies{Default: []string{"p"}}}, []string{"algorithms: HS algorithms need keys.secret"}},
		{"max token lifetime", JWTAuth{Algorithms: []string{"HS256"}, Keys: JWTKeys{Secret: secret32}, MaxTokenLifetime: Duration(time.Hour), Policies: JWTPolicies{Default: []string{"p"}}}, nil},
		{"negative max token lifetime", JWTAuth{Algorithms: []string{"HS256"}, Keys: JWTKeys{Secret: secret32}, MaxTokenLifetime: -1, Policies: JWTPolicies{Default: []string{"p"}}}, []string{"max_token_lifetime: must not be negative"}},
		{"issuer with credentials", JWTAuth{Algorithms: []string{"RS256"}, Keys: JWTKeys{OIDCIssuer: "https://u:p@idp.example.com?x=1"}, Policies: JWTPolicies{Default: []string{"p"}}}, []string{"keys.oidc_issuer: must not carry credentials", "keys.oidc_issuer: must not have a fragment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.j.Validate()
			if len(errs) != len(tc.want) {
				t.Fatalf("problems = %v, want %d", errs, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(errs[i].String(), w) {
					t.Errorf("problem %d = %q, want prefix %q", i, errs[i].String(), w)
				}
			}
		})
	}
}

func TestJWTAuthDefaults(t *testing.T) {
	t.Parallel()
	j := JWTAuth{Keys: JWTKeys{OIDCIssuer: "https://idp"}}
	if j.EffectiveIdentityClaim() != "sub" || j.EffectiveIssuer() != "https://idp" {
		t.Fatalf("defaults: %q %q", j.EffectiveIdentityClaim(), j.EffectiveIssuer())
	}
	j.Issuer, j.IdentityClaim = "https://other", "email"
	if j.EffectiveIdentityClaim() != "email" || j.EffectiveIssuer() != "https://other" {
		t.Fatalf("explicit: %q %q", j.EffectiveIdentityClaim(), j.EffectiveIssuer())
	}
}
