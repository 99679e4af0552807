package model

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/sluicegw/sluice/pkg/validation"
)

// JWTAuth configures auth mode "jwt": which tokens an API accepts, where the
// keys that sign them come from, and how a verified token becomes an
// identity with policies. Set on an API in mode "api_key", it makes the API
// take an API key or a JWT: the first credential present wins (a key in the
// API's key header or query parameter, else a bearer value shaped like a
// JWT, else a bearer API key).
//
//	auth:
//	  mode: jwt
//	  jwt:
//	    algorithms: [RS256, ES256]
//	    keys: {oidc_issuer: "https://idp.example.com/"}
//	    audiences: [orders]
//	    leeway: 30s
//	    max_token_lifetime: 24h
//	    policies:
//	      claim: scope
//	      map: {"orders:read": [orders-read], "orders:write": [orders-write]}
//	      default: [orders-basic]
//	    forward_claims: {sub: X-User-Id}
type JWTAuth struct {
	// Token says where the token is read; by default from
	// "Authorization: Bearer <token>".
	Token TokenSource `json:"token,omitempty" yaml:"token,omitempty"`
	// Algorithms lists the accepted signature algorithms; a token signed
	// with any other algorithm (including "none") is refused.
	Algorithms []string `json:"algorithms" yaml:"algorithms"`
	// Keys says where the verification keys come from; exactly one source.
	Keys JWTKeys `json:"keys" yaml:"keys"`
	// Issuer, when set, must equal the token's iss claim. With
	// keys.oidc_issuer and no Issuer, the OIDC issuer is required.
	Issuer string `json:"issuer,omitempty" yaml:"issuer,omitempty"`
	// Audiences, when set, must include one of the token's aud values.
	Audiences []string `json:"audiences,omitempty" yaml:"audiences,omitempty"`
	// Leeway tolerates clock skew on exp, nbf and iat (at most 5m).
	Leeway Duration `json:"leeway,omitempty" yaml:"leeway,omitempty"`
	// MaxTokenLifetime, when set, refuses a token whose exp lies further
	// ahead of the time of verification than this (plus Leeway); unset, a
	// token is accepted until its exp, however far. exp itself is always
	// required.
	MaxTokenLifetime Duration `json:"max_token_lifetime,omitempty" yaml:"max_token_lifetime,omitempty"`
	// IdentityClaim names the claim that identifies the caller, the one
	// limits and quotas count against (default "sub").
	IdentityClaim string `json:"identity_claim,omitempty" yaml:"identity_claim,omitempty"`
	// Policies maps a claim's values to policies.
	Policies JWTPolicies `json:"policies,omitempty" yaml:"policies,omitempty"`
	// ForwardClaims maps a claim name to the request header that carries
	// its value upstream; incoming headers of those names are removed.
	ForwardClaims map[string]string `json:"forward_claims,omitempty" yaml:"forward_claims,omitempty"`
}

// TokenSource is where a token is read. At most one field is set; with
// none, the token comes from "Authorization: Bearer".
type TokenSource struct {
	// Header names a request header holding the token (a "Bearer " prefix
	// is accepted).
	Header string `json:"header,omitempty" yaml:"header,omitempty"`
	// Cookie names a cookie holding the token.
	Cookie string `json:"cookie,omitempty" yaml:"cookie,omitempty"`
}

// JWTKeys is the source of verification keys; exactly one field is set.
type JWTKeys struct {
	// Secret is the base64 (standard or URL alphabet) HMAC secret for the
	// HS algorithms, at least as long as the hash (32 bytes for HS256).
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
	// PublicKey is a PEM public key (PKIX "PUBLIC KEY", "RSA PUBLIC KEY"
	// or a "CERTIFICATE") for the RS, PS, ES or EdDSA algorithms.
	PublicKey string `json:"public_key,omitempty" yaml:"public_key,omitempty"`
	// JWKSURL is an http(s) URL serving a JSON Web Key Set.
	JWKSURL string `json:"jwks_url,omitempty" yaml:"jwks_url,omitempty"`
	// OIDCIssuer is an OpenID Connect issuer URL; its discovery document
	// (<issuer>/.well-known/openid-configuration) names the JWKS.
	OIDCIssuer string `json:"oidc_issuer,omitempty" yaml:"oidc_issuer,omitempty"`
}

// JWTPolicies maps the values of one claim to policy ids.
type JWTPolicies struct {
	// Claim is the claim read, e.g. "scope", "scp", "groups" or a custom
	// one; a space-separated string or an array of strings.
	Claim string `json:"claim,omitempty" yaml:"claim,omitempty"`
	// Map gives, for a claim value, the policies it grants. A token gets
	// the union of the policies of all its values.
	Map map[string][]string `json:"map,omitempty" yaml:"map,omitempty"`
	// Default policies are granted when no claim value maps to a policy. A
	// token that ends up with no policy is refused with 403.
	Default []string `json:"default,omitempty" yaml:"default,omitempty"`
}

// JWT signature algorithms (RFC 7518, RFC 8037).
const (
	AlgHS256 = "HS256"
	AlgHS384 = "HS384"
	AlgHS512 = "HS512"
	AlgRS256 = "RS256"
	AlgRS384 = "RS384"
	AlgRS512 = "RS512"
	AlgPS256 = "PS256"
	AlgPS384 = "PS384"
	AlgPS512 = "PS512"
	AlgES256 = "ES256"
	AlgES384 = "ES384"
	AlgES512 = "ES512"
	AlgEdDSA = "EdDSA"
)

// JWTAlgorithms lists every algorithm an API may accept.
var JWTAlgorithms = []string{
	AlgHS256, AlgHS384, AlgHS512,
	AlgRS256, AlgRS384, AlgRS512,
	AlgPS256, AlgPS384, AlgPS512,
	AlgES256, AlgES384, AlgES512,
	AlgEdDSA,
}

// hmacKeyBytes is the minimum secret length of each HS algorithm (RFC 7518
// section 3.2: a key at least as long as the hash output).
var hmacKeyBytes = map[string]int{AlgHS256: 32, AlgHS384: 48, AlgHS512: 64}

// MaxJWTLeeway bounds the configurable clock-skew tolerance.
const MaxJWTLeeway = Duration(5 * 60 * 1e9)

// IsHMACAlg reports whether alg is one of the HS algorithms.
func IsHMACAlg(alg string) bool { _, ok := hmacKeyBytes[alg]; return ok }

// reservedForwardHeaders are the headers a claim may not be forwarded in
// (lower case), because the HTTP framing, the connection or the gateway
// owns them, or because they carry credentials:
//   - hop-by-hop (RFC 9110 section 7.6.1), and Proxy-Connection:
//     Connection, Keep-Alive, Proxy-Connection, Proxy-Authenticate,
//     Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade;
//   - framing and routing: Host, Content-Length, Content-Type, Expect;
//   - set by the gateway for the upstream: Forwarded, Via, X-Real-IP and
//     every X-Forwarded-* (see reservedForwardPrefix);
//   - credentials: Authorization, Cookie.
//
// The API's own credential headers (its key header, auth.header or
// X-API-Key, and its token header, auth.jwt.token.header) are refused too.
var reservedForwardHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
	"host": true, "content-length": true, "content-type": true, "expect": true,
	"forwarded": true, "via": true, "x-real-ip": true,
	"authorization": true, "cookie": true,
}

// reservedForwardPrefix starts every header name the gateway sets for the
// upstream (X-Forwarded-For, -Proto, -Host, and any future one).
const reservedForwardPrefix = "x-forwarded-"

// ReservedForwardHeader reports whether a claim may not be forwarded in the
// header name (case-insensitive); the API's own credential headers are
// checked by API.Validate and JWTAuth.Validate.
func ReservedForwardHeader(name string) bool {
	l := strings.ToLower(name)
	return reservedForwardHeaders[l] || strings.HasPrefix(l, reservedForwardPrefix)
}

// EffectiveIdentityClaim is IdentityClaim or "sub".
func (j *JWTAuth) EffectiveIdentityClaim() string {
	if j.IdentityClaim == "" {
		return "sub"
	}
	return j.IdentityClaim
}

// EffectiveIssuer is the issuer a token must name: Issuer, else the OIDC
// issuer, else "" (not checked).
func (j *JWTAuth) EffectiveIssuer() string {
	if j.Issuer != "" {
		return j.Issuer
	}
	return j.Keys.OIDCIssuer
}

// Validate returns every problem with the JWT settings, fields relative to
// them.
func (j *JWTAuth) Validate() validation.Errors {
	var errs validation.Errors
	if j.Token.Header != "" && j.Token.Cookie != "" {
		errs.Add("token", "set header or cookie, not both")
	}
	if j.Token.Header != "" && !validHeaderName(j.Token.Header) {
		errs.Add("token.header", "must be an HTTP header name")
	}
	if j.Token.Cookie != "" && !validHeaderName(j.Token.Cookie) {
		errs.Add("token.cookie", "must be a cookie name (letters, digits and !#$%%&'*+-.^_`|~)")
	}
	hmac, asym := j.validateAlgorithms(&errs)
	j.validateKeys(&errs, hmac, asym)
	if j.Issuer != "" && strings.TrimSpace(j.Issuer) != j.Issuer {
		errs.Add("issuer", "must not have surrounding spaces")
	}
	for i, a := range j.Audiences {
		if a == "" {
			errs.Add(validation.Index("audiences", i), "must not be empty")
		}
	}
	if j.Leeway < 0 || j.Leeway > MaxJWTLeeway {
		errs.Add("leeway", "must be between 0 and %s", MaxJWTLeeway)
	}
	if j.MaxTokenLifetime < 0 {
		errs.Add("max_token_lifetime", "must not be negative")
	}
	if j.IdentityClaim != "" && strings.TrimSpace(j.IdentityClaim) != j.IdentityClaim {
		errs.Add("identity_claim", "must be a claim name without spaces around it")
	}
	j.validatePolicies(&errs)
	j.validateForwardClaims(&errs)
	return errs
}

// validateForwardClaims checks forward_claims: each header an RFC 9110
// token, not reserved (ReservedForwardHeader), not the token header, and
// named by one claim only.
func (j *JWTAuth) validateForwardClaims(errs *validation.Errors) {
	byHeader := map[string]string{}
	for _, claim := range sortedKeys(j.ForwardClaims) {
		f := "forward_claims." + claim
		h := j.ForwardClaims[claim]
		switch {
		case claim == "":
			errs.Add("forward_claims", "claim names must not be empty")
		case !validHeaderName(h):
			errs.Add(f, "must be an HTTP header name (RFC 9110 token), got %q", h)
		case ReservedForwardHeader(h):
			errs.Add(f, "header %q is reserved (the connection, the framing, the gateway or credentials own it); choose another name", h)
		case j.Token.Header != "" && strings.EqualFold(h, j.Token.Header):
			errs.Add(f, "header %q carries the token (token.header); choose another name", h)
		default:
			if other, dup := byHeader[strings.ToLower(h)]; dup {
				errs.Add(f, "header %q is already used by claim %q", h, other)
			}
			byHeader[strings.ToLower(h)] = claim
		}
	}
}

// validateAlgorithms reports whether HS and asymmetric algorithms are listed.
func (j *JWTAuth) validateAlgorithms(errs *validation.Errors) (hmac, asym bool) {
	if len(j.Algorithms) == 0 {
		errs.Add("algorithms", "list at least one algorithm (%s)", strings.Join(JWTAlgorithms, ", "))
	}
	seen := map[string]bool{}
	for i, a := range j.Algorithms {
		f := validation.Index("algorithms", i)
		switch {
		case !knownAlg(a):
			errs.Add(f, "unknown algorithm %q: use one of %s", a, strings.Join(JWTAlgorithms, ", "))
			continue
		case seen[a]:
			errs.Add(f, "%s is listed twice", a)
		}
		seen[a] = true
		if IsHMACAlg(a) {
			hmac = true
		} else {
			asym = true
		}
	}
	if hmac && asym {
		errs.Add("algorithms", "HS algorithms cannot be mixed with RS, PS, ES or EdDSA: one API has one kind of key")
	}
	return hmac, asym
}

func (j *JWTAuth) validateKeys(errs *validation.Errors, hmac, asym bool) {
	k := &j.Keys
	n := 0
	for _, s := range []string{k.Secret, k.PublicKey, k.JWKSURL, k.OIDCIssuer} {
		if s != "" {
			n++
		}
	}
	switch {
	case n == 0:
		errs.Add("keys", "set one of secret, public_key, jwks_url or oidc_issuer")
		return
	case n > 1:
		errs.Add("keys", "set only one of secret, public_key, jwks_url or oidc_issuer")
		return
	}
	if k.Secret != "" {
		if asym {
			errs.Add("keys.secret", "an HMAC secret only verifies HS algorithms; remove the RS, PS, ES and EdDSA algorithms")
		}
		secret, err := DecodeJWTSecret(k.Secret)
		if err != nil {
			errs.Add("keys.secret", "%v", err)
			return
		}
		for i, a := range j.Algorithms {
			if min := hmacKeyBytes[a]; len(secret) < min {
				errs.Add("keys.secret", "%s (algorithms[%d]) needs a secret of at least %d bytes, got %d", a, i, min, len(secret))
			}
		}
		return
	}
	if hmac {
		errs.Add("algorithms", "HS algorithms need keys.secret; public keys, JWKS and OIDC keys only verify RS, PS, ES and EdDSA")
	}
	switch {
	case k.PublicKey != "":
		key, err := ParseJWTPublicKey(k.PublicKey)
		if err != nil {
			errs.Add("keys.public_key", "%v", err)
			return
		}
		for i, a := range j.Algorithms {
			if !IsHMACAlg(a) && knownAlg(a) && !KeyFitsAlg(key, a) {
				errs.Add(validation.Index("algorithms", i), "%s cannot be verified with the %s in keys.public_key", a, keyKind(key))
			}
		}
	case k.JWKSURL != "":
		checkKeyURL(errs, "keys.jwks_url", k.JWKSURL, false)
	case k.OIDCIssuer != "":
		checkKeyURL(errs, "keys.oidc_issuer", k.OIDCIssuer, true)
	}
}

func (j *JWTAuth) validatePolicies(errs *validation.Errors) {
	p := &j.Policies
	if p.Claim == "" && len(p.Map) > 0 {
		errs.Add("policies.claim", "name the claim whose values the map reads (e.g. scope or groups)")
	}
	for _, v := range sortedKeys(p.Map) {
		f := "policies.map." + v
		if v == "" {
			errs.Add("policies.map", "claim values must not be empty")
		}
		if len(p.Map[v]) == 0 {
			errs.Add(f, "list at least one policy")
		}
		for i, id := range p.Map[v] {
			checkID(errs, validation.Index(f, i), id)
		}
	}
	for i, id := range p.Default {
		checkID(errs, validation.Index("policies.default", i), id)
	}
	if len(p.Map) == 0 && len(p.Default) == 0 {
		errs.Add("policies", "set a claim map or default policies: a token without policies has no access")
	}
}

func knownAlg(a string) bool {
	for _, k := range JWTAlgorithms {
		if a == k {
			return true
		}
	}
	return false
}

func checkKeyURL(errs *validation.Errors, field, raw string, issuer bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs.Add(field, "must be an http:// or https:// URL with a host, got %q", raw)
		return
	}
	if u.User != nil {
		errs.Add(field, "must not carry credentials")
	}
	if u.Fragment != "" || (issuer && u.RawQuery != "") {
		errs.Add(field, "must not have a fragment or, for an issuer, a query")
	}
}

// DecodeJWTSecret decodes a base64 HMAC secret in the standard or URL
// alphabet, padded or not.
func DecodeJWTSecret(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("must be base64 (standard or URL alphabet)")
	}
	return b, nil
}

// ParseJWTPublicKey parses the first PEM block of s into an RSA, ECDSA
// (P-256, P-384, P-521) or Ed25519 public key.
func ParseJWTPublicKey(s string) (any, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errors.New("must be a PEM block (-----BEGIN PUBLIC KEY-----)")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key (private keys do not belong here)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", strings.ToLower(block.Type), err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too small: use at least 2048", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if CurveAlg(k.Curve) == "" {
			return nil, errors.New("ECDSA key must be on P-256, P-384 or P-521")
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("unsupported key type %T: use RSA, ECDSA or Ed25519", key)
	}
	return key, nil
}

// CurveAlg is the ES algorithm of an ECDSA curve, or "" for another curve.
func CurveAlg(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return AlgES256
	case elliptic.P384():
		return AlgES384
	case elliptic.P521():
		return AlgES512
	}
	return ""
}

// KeyFitsAlg reports whether a public key verifies alg: RSA for RS and PS,
// ECDSA on the matching curve for ES, Ed25519 for EdDSA. HMAC is never
// verified with a public key.
func KeyFitsAlg(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return CurveAlg(k.Curve) == alg
	case ed25519.PublicKey:
		return alg == AlgEdDSA
	}
	return false
}

func keyKind(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return "RSA key"
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name + " key"
	case ed25519.PublicKey:
		return "Ed25519 key"
	}
	return fmt.Sprintf("%T", key)
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
