package bench

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// jwtScope is the scope claim of the benchmark tokens; the APIs' policy
// mapping turns it into the benchmark policy.
const jwtScope = "bench:call"

// jwtSigner signs the benchmark tokens of one algorithm, independently of
// the gateway's verifier: crypto/rsa (PKCS #1 v1.5) for RS256, crypto/ecdsa
// (r || s, 32 bytes each) for ES256.
type jwtSigner struct {
	alg    string
	pubPEM string
	sign   func(digest []byte) ([]byte, error)
}

func newJWTSigner(alg string) (*jwtSigner, error) {
	var pub any
	s := &jwtSigner{alg: alg}
	switch alg {
	case model.AlgRS256:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		pub = &k.PublicKey
		s.sign = func(d []byte) ([]byte, error) { return rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d) }
	case model.AlgES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		pub = &k.PublicKey
		s.sign = func(d []byte) ([]byte, error) {
			r, ss, err := ecdsa.Sign(rand.Reader, k, d)
			if err != nil {
				return nil, err
			}
			sig := make([]byte, 64)
			r.FillBytes(sig[:32])
			ss.FillBytes(sig[32:])
			return sig, nil
		}
	default:
		return nil, fmt.Errorf("bench: no signer for %s", alg)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	s.pubPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return s, nil
}

// token signs claims for subject sub with the scope, valid for a day: one
// token a client reuses for the whole run.
func (s *jwtSigner) token(sub string, now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	h, err := json.Marshal(map[string]string{"alg": s.alg, "typ": "JWT"})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(map[string]any{
		"sub": sub, "scope": jwtScope, "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
	})
	if err != nil {
		return "", err
	}
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	d := sha256.Sum256([]byte(signing))
	sig, err := s.sign(d[:])
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// jwtAuth is the auth section of a benchmark JWT API: the signer's public
// key, its algorithm only, and the scope mapped to policy.
func (s *jwtSigner) jwtAuth(policy string) model.Auth {
	return model.Auth{Mode: model.AuthJWT, JWT: &model.JWTAuth{
		Algorithms: []string{s.alg},
		Keys:       model.JWTKeys{PublicKey: s.pubPEM},
		Policies:   model.JWTPolicies{Claim: "scope", Map: map[string][]string{jwtScope: {policy}}},
	}}
}
