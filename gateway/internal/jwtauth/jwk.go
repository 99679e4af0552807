package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// maxJWKs bounds the keys kept from one JWKS; real providers publish a
// handful.
const maxJWKs = 64

// verificationKey is one public key with the algorithm it is pinned to
// ("" when the JWK names none).
type verificationKey struct {
	key any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	alg string
}

// fits reports whether the key may verify a token signed with alg: the key
// type must match the algorithm family (model.KeyFitsAlg), and a JWK that
// names its algorithm verifies that algorithm only.
func (k *verificationKey) fits(alg string) bool {
	return (k.alg == "" || k.alg == alg) && model.KeyFitsAlg(k.key, alg)
}

// keyMap is an immutable parsed key set. kid is only ever a map key here.
type keyMap struct {
	byKID   map[string]*verificationKey
	noKID   []*verificationKey // keys published without a kid
	fetched time.Time
}

// find returns the keys that may verify a token with kid and alg: the key
// named by kid, or for a token without kid every key without kid that
// fits. With none, the error (unknown_key) says why.
func (m *keyMap) find(kid, alg string) ([]any, *Error) {
	if kid == "" {
		var fit []any
		for _, k := range m.noKID {
			if k.fits(alg) {
				fit = append(fit, k.key)
			}
		}
		if len(fit) == 0 {
			return nil, ErrUnknownKey.with(fmt.Errorf("no key without kid verifies %s", alg))
		}
		return fit, nil
	}
	k, ok := m.byKID[kid]
	if !ok {
		return nil, ErrUnknownKey.with(errors.New("kid not in the key set"))
	}
	if !k.fits(alg) {
		return nil, ErrUnknownKey.with(fmt.Errorf("the key named by kid does not verify %s", alg))
	}
	return []any{k.key}, nil
}

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads a JSON Web Key Set (RFC 7517). Keys that cannot verify
// signatures (symmetric "oct" keys, "use": "enc", unknown types or curves,
// RSA under 2048 bits, points off the curve) are skipped and counted; a set
// without a single usable key is an error.
func parseJWKS(data []byte, fetched time.Time) (*keyMap, int, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, 0, fmt.Errorf("decode jwks: %w", err)
	}
	m := &keyMap{byKID: map[string]*verificationKey{}, fetched: fetched}
	skipped := 0
	for _, raw := range doc.Keys {
		if len(m.byKID)+len(m.noKID) >= maxJWKs {
			skipped++
			continue
		}
		var j rawJWK
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped++
			continue
		}
		k, err := parseJWK(&j)
		if err != nil {
			skipped++
			continue
		}
		if j.Kid == "" {
			m.noKID = append(m.noKID, k)
		} else if _, dup := m.byKID[j.Kid]; !dup {
			m.byKID[j.Kid] = k
		}
	}
	if len(m.byKID)+len(m.noKID) == 0 {
		return nil, skipped, errors.New("jwks holds no usable signature key")
	}
	return m, skipped, nil
}

func parseJWK(j *rawJWK) (*verificationKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, errors.New("not a signature key")
	}
	if j.Alg != "" && (model.IsHMACAlg(j.Alg) || !knownAlg(j.Alg)) {
		return nil, errors.New("unsupported alg")
	}
	var key any
	switch j.Kty {
	case "RSA":
		n, err1 := b64(j.N)
		e, err2 := b64(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad rsa key")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 || pub.E < 3 || pub.E%2 == 0 {
			return nil, errors.New("weak rsa key")
		}
		key = pub
	case "EC":
		curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[j.Crv]
		if curve == nil {
			return nil, errors.New("unsupported curve")
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := b64(j.X)
		y, err2 := b64(j.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad ec key")
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, err
		}
		key = pub
	case "OKP":
		x, err := b64(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("unsupported okp key")
		}
		key = ed25519.PublicKey(x)
	default:
		return nil, errors.New("unsupported key type")
	}
	k := &verificationKey{key: key, alg: j.Alg}
	if j.Alg != "" && !model.KeyFitsAlg(key, j.Alg) {
		return nil, errors.New("alg does not fit the key")
	}
	return k, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func knownAlg(a string) bool {
	for _, k := range model.JWTAlgorithms {
		if k == a {
			return true
		}
	}
	return false
}
