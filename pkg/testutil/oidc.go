package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// OIDC is a small OpenID Connect provider owned by one test: an HTTP
// server on 127.0.0.1 serving a discovery document and a JWKS, holding real
// RSA 2048, ECDSA (P-256, P-384, P-521) and Ed25519 keys that sign tokens.
// Keys rotate on demand, the server stops and starts again on the same
// port, and it counts the fetches it served. Signing is written with the
// standard library only, independently of the verifier under test.
type OIDC struct {
	t    testing.TB
	port int

	mu   sync.Mutex
	srv  *http.Server
	gen  int
	keys map[string]*oidcKey // family ("RSA", "P-256", "P-384", "P-521", "Ed25519") -> current key
	old  []*oidcKey          // keys still published after a rotation with keep

	jwksFetches      atomic.Int64
	discoveryFetches atomic.Int64
}

type oidcKey struct {
	kid  string
	priv crypto.Signer
}

// StartOIDC starts a provider on a free loopback port with a fresh set of
// keys; it is stopped when the test ends.
func StartOIDC(t testing.TB) *OIDC {
	t.Helper()
	o := &OIDC{t: t}
	o.newKeys()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("oidc: listen: %v", err)
	}
	o.port = ln.Addr().(*net.TCPAddr).Port
	o.serve(ln)
	t.Cleanup(o.Stop)
	return o
}

// Issuer is the provider's issuer URL (no trailing slash).
func (o *OIDC) Issuer() string { return "http://127.0.0.1:" + strconv.Itoa(o.port) }

// JWKSURL is the URL of the key set.
func (o *OIDC) JWKSURL() string { return o.Issuer() + "/jwks" }

// JWKSFetches counts the key set requests served so far.
func (o *OIDC) JWKSFetches() int64 { return o.jwksFetches.Load() }

// DiscoveryFetches counts the discovery document requests served so far.
func (o *OIDC) DiscoveryFetches() int64 { return o.discoveryFetches.Load() }

// Start serves again on the same port after Stop.
func (o *OIDC) Start() {
	o.t.Helper()
	o.mu.Lock()
	running := o.srv != nil
	o.mu.Unlock()
	if running {
		return
	}
	var ln net.Listener
	WaitFor(o.t, 5*time.Second, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(o.port))
		return err
	})
	o.serve(ln)
}

// Stop closes the server and every open connection: the provider is down.
func (o *OIDC) Stop() {
	o.mu.Lock()
	srv := o.srv
	o.srv = nil
	o.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Rotate replaces every key with a new one under a new kid. With keepOld,
// the previous keys stay in the JWKS (a graceful rotation); without, they
// are gone at once.
func (o *OIDC) Rotate(keepOld bool) {
	o.mu.Lock()
	prev := o.keys
	o.mu.Unlock()
	o.newKeys()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !keepOld {
		o.old = nil
		return
	}
	for _, k := range prev {
		o.old = append(o.old, k)
	}
}

// RotateSameKID replaces every key with a new one published under the
// kid of the key it replaces, as a provider that reuses kids does; the
// previous keys are gone at once.
func (o *OIDC) RotateSameKID() {
	o.mu.Lock()
	prev := o.keys
	o.mu.Unlock()
	o.newKeys()
	o.mu.Lock()
	defer o.mu.Unlock()
	same := make(map[string]*oidcKey, len(o.keys))
	for fam, k := range o.keys {
		same[fam] = &oidcKey{kid: prev[fam].kid, priv: k.priv}
	}
	o.keys = same
	o.old = nil
}

// KID is the current kid of the key that signs alg.
func (o *OIDC) KID(alg string) string {
	k, err := o.keyFor(alg)
	if err != nil {
		o.t.Fatalf("oidc: %v", err)
	}
	return k.kid
}

// PublicKeyPEM is the PKIX PEM of the current key that signs alg.
func (o *OIDC) PublicKeyPEM(alg string) string {
	k, err := o.keyFor(alg)
	if err != nil {
		o.t.Fatalf("oidc: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		o.t.Fatalf("oidc: marshal public key: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Sign returns a token signed with alg by the current key of its family,
// with that key's kid, carrying claims.
func (o *OIDC) Sign(alg string, claims map[string]any) string {
	return o.SignWithHeader(alg, nil, claims)
}

// SignWithHeader is Sign with extra header fields; a "kid" or "alg" in
// header replaces the one Sign would write, a nil value removes it (the
// signature is still made with the current key of alg's family).
func (o *OIDC) SignWithHeader(alg string, header, claims map[string]any) string {
	o.t.Helper()
	k, err := o.keyFor(alg)
	if err != nil {
		o.t.Fatalf("oidc: %v", err)
	}
	h := map[string]any{"alg": alg, "typ": "JWT", "kid": k.kid}
	for name, v := range header {
		if v == nil {
			delete(h, name)
			continue
		}
		h[name] = v
	}
	signingInput := EncodeJWTPart(h) + "." + EncodeJWTPart(claims)
	sig, err := signJWS(alg, k.priv, []byte(signingInput))
	if err != nil {
		o.t.Fatalf("oidc: sign %s: %v", alg, err)
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// SignHMAC returns a token signed with HS256, HS384 or HS512 and secret.
func SignHMAC(t testing.TB, alg string, secret []byte, header, claims map[string]any) string {
	t.Helper()
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		t.Fatalf("SignHMAC: %s is not an HS algorithm", alg)
	}
	hd := map[string]any{"alg": alg, "typ": "JWT"}
	for name, v := range header {
		hd[name] = v
	}
	signingInput := EncodeJWTPart(hd) + "." + EncodeJWTPart(claims)
	m := hmac.New(h, secret)
	m.Write([]byte(signingInput))
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// EncodeJWTPart is the base64url (unpadded) JSON of v, a token header or
// payload.
func EncodeJWTPart(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("testutil: encode token part: %v", err)) // test input bug
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (o *OIDC) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		o.discoveryFetches.Add(1)
		writeJSON(w, map[string]any{
			"issuer":                                o.Issuer(),
			"jwks_uri":                              o.JWKSURL(),
			"id_token_signing_alg_values_supported": []string{"RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		o.jwksFetches.Add(1)
		writeJSON(w, o.jwks())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	o.mu.Lock()
	o.srv = srv
	o.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (o *OIDC) newKeys() {
	o.t.Helper()
	o.mu.Lock()
	o.gen++
	gen := o.gen
	o.mu.Unlock()
	keys := map[string]*oidcKey{}
	add := func(family string, priv crypto.Signer, err error) {
		if err != nil {
			o.t.Fatalf("oidc: generate %s key: %v", family, err)
		}
		keys[family] = &oidcKey{kid: fmt.Sprintf("%s-%d", family, gen), priv: priv}
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	add("RSA", rk, err)
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		ek, err := ecdsa.GenerateKey(c, rand.Reader)
		add(c.Params().Name, ek, err)
	}
	_, edk, err := ed25519.GenerateKey(rand.Reader)
	add("Ed25519", edk, err)
	o.mu.Lock()
	o.keys = keys
	o.mu.Unlock()
}

func algFamily(alg string) (string, error) {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return "RSA", nil
	case "ES256":
		return "P-256", nil
	case "ES384":
		return "P-384", nil
	case "ES512":
		return "P-521", nil
	case "EdDSA":
		return "Ed25519", nil
	}
	return "", fmt.Errorf("no provider key signs %q", alg)
}

func (o *OIDC) keyFor(alg string) (*oidcKey, error) {
	fam, err := algFamily(alg)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.keys[fam], nil
}

func (o *OIDC) jwks() map[string]any {
	o.mu.Lock()
	all := make([]*oidcKey, 0, len(o.keys)+len(o.old))
	for _, fam := range []string{"RSA", "P-256", "P-384", "P-521", "Ed25519"} {
		all = append(all, o.keys[fam])
	}
	all = append(all, o.old...)
	o.mu.Unlock()
	keys := make([]map[string]any, 0, len(all))
	for _, k := range all {
		keys = append(keys, publicJWK(k))
	}
	return map[string]any{"keys": keys}
}

func publicJWK(k *oidcKey) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	j := map[string]any{"kid": k.kid, "use": "sig"}
	switch p := k.priv.Public().(type) {
	case *rsa.PublicKey:
		j["kty"] = "RSA"
		j["n"] = b64(p.N.Bytes())
		j["e"] = b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		// The uncompressed point: 0x04 || X || Y, each of the curve's size.
		pt, err := p.Bytes()
		if err != nil {
			panic(err) // a key this provider generated itself
		}
		size := (len(pt) - 1) / 2
		j["kty"] = "EC"
		j["crv"] = p.Curve.Params().Name
		j["x"] = b64(pt[1 : 1+size])
		j["y"] = b64(pt[1+size:])
	case ed25519.PublicKey:
		j["kty"] = "OKP"
		j["crv"] = "Ed25519"
		j["x"] = b64(p)
	}
	return j
}

func signJWS(alg string, priv crypto.Signer, input []byte) ([]byte, error) {
	var hf crypto.Hash
	switch alg[2:] {
	case "256":
		hf = crypto.SHA256
	case "384":
		hf = crypto.SHA384
	case "512":
		hf = crypto.SHA512
	}
	digest := func() []byte {
		h := hf.New()
		h.Write(input)
		return h.Sum(nil)
	}
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if alg[0] == 'P' {
			return rsa.SignPSS(rand.Reader, k, hf, digest(), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, k, hf, digest())
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest())
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input), nil
	}
	return nil, errors.New("unsupported key")
}
