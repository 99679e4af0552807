package jwtauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicegw/sluice/pkg/model"
)

// Result is what a valid token yields. It is immutable and shared by every
// request that presents the same token.
type Result struct {
	// Identity is the hex SHA-256 of "<iss>|<identity claim value>": what
	// limits, quotas and usage events count against, shaped like a key hash.
	Identity string
	// Issuer is the token's iss claim ("" when it has none).
	Issuer string
	// Subject is the value of the identity claim (sub by default).
	Subject string
	// Policies are the policy ids the token's claims map to (or the
	// default ones); never empty.
	Policies []string
	// Forward lists the headers to set upstream from the token's claims.
	Forward []Header
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
	// SessionKey is the SHA-256 of Identity and Policies: tokens of one
	// identity with the same policies share it, so a session cache keyed by
	// it builds one session per identity, not one per token.
	SessionKey [32]byte

	claims map[string]any
}

// Claim returns a claim of the token rendered as a forwarded header value
// would be (strings and numbers as they are, arrays joined with ","), for
// limit_by claim:<name>; false when the token has no such claim.
func (r *Result) Claim(name string) (string, bool) {
	c, ok := r.claims[name]
	if !ok {
		return "", false
	}
	return headerValue(c)
}

// Header is one request header set upstream from a claim.
type Header struct {
	Name  string
	Value string
}

// maxForwardValue bounds a forwarded claim value.
const maxForwardValue = 4096

// Verifier checks the tokens of one API. It is safe for concurrent use and
// immutable apart from its cache; build a new one when the API changes.
type Verifier struct {
	p           *Provider
	algs        []string
	static      any     // HMAC secret ([]byte) or public key; nil with keys
	keys        *keySet // JWKS or OIDC key set; nil with static
	issuer      string  // "" when not checked
	audiences   []string
	leeway      time.Duration
	maxLifetime time.Duration // 0: no bound
	idClaim     string
	polClaim    string
	polMap      map[string][]string
	defaults    []string
	forward     []forwardClaim
	source      tokenSource
	cache       *resultCache
}

type forwardClaim struct{ claim, header string }

// Verifier builds the verifier of an API from its JWT settings, which must
// be valid (model.JWTAuth.Validate).
func (p *Provider) Verifier(cfg *model.JWTAuth) (*Verifier, error) {
	if cfg == nil {
		return nil, errors.New("jwt: no settings")
	}
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("jwt settings: %w", err)
	}
	v := &Verifier{
		p: p, algs: append([]string(nil), cfg.Algorithms...),
		issuer: cfg.EffectiveIssuer(), audiences: append([]string(nil), cfg.Audiences...),
		leeway: cfg.Leeway.D(), maxLifetime: cfg.MaxTokenLifetime.D(),
		idClaim: cfg.EffectiveIdentityClaim(), polClaim: cfg.Policies.Claim,
		polMap: cfg.Policies.Map, defaults: cfg.Policies.Default,
		source: newTokenSource(cfg.Token),
		cache:  newResultCache(p.opts.CacheSize),
	}
	for claim, header := range cfg.ForwardClaims {
		v.forward = append(v.forward, forwardClaim{claim: claim, header: header})
	}
	sort.Slice(v.forward, func(i, j int) bool { return v.forward[i].claim < v.forward[j].claim })

	var err error
	switch k := &cfg.Keys; {
	case k.Secret != "":
		v.static, err = model.DecodeJWTSecret(k.Secret)
	case k.PublicKey != "":
		v.static, err = model.ParseJWTPublicKey(k.PublicKey)
	case k.JWKSURL != "":
		v.keys = p.keySetFor(k.JWKSURL, "")
	default:
		v.keys = p.keySetFor("", k.OIDCIssuer)
	}
	if err != nil {
		return nil, fmt.Errorf("jwt keys: %w", err)
	}
	return v, nil
}

// Verify checks token and returns what it grants. A token seen before and
// not yet expired is answered from the cache without a signature check or
// an allocation. ctx bounds the wait for a key set fetch (only when the
// token's key is not in the cached set, or fails and the set may have
// changed). Errors are *Error.
func (v *Verifier) Verify(ctx context.Context, token []byte) (*Result, error) {
	if len(token) == 0 {
		v.p.m.results[CodeTokenMissing].Inc()
		return nil, ErrTokenMissing
	}
	if len(token) > v.p.opts.MaxTokenBytes {
		v.p.m.results[CodeTokenInvalid].Inc()
		return nil, ErrTokenInvalid.with(fmt.Errorf("token longer than %d bytes", v.p.opts.MaxTokenBytes))
	}
	sum := sha256.Sum256(token)
	now := v.p.now()
	if r := v.cache.get(&sum, now); r != nil {
		v.p.m.cacheHits.Inc()
		return r, nil
	}
	r, err := v.verify(ctx, string(token))
	if err != nil {
		v.p.m.results[err.Code].Inc()
		return nil, err
	}
	v.p.m.valid.Inc()
	if now.Before(r.ExpiresAt) {
		v.cache.add(&sum, r)
	}
	return r, nil
}

// verify checks a token in this order: its shape and header
// (parseCompact), its algorithm, its key and signature, then its claims.
// The payload is parsed only once the signature verifies.
func (v *Verifier) verify(ctx context.Context, token string) (*Result, *Error) {
	now := v.p.now()
	t, err := parseCompact(token)
	if err != nil {
		return nil, err
	}
	if t.header.alg == "" {
		return nil, ErrAlgorithmNotAllowed.with(errors.New("alg missing or not a string"))
	}
	if !v.allowed(t.header.alg) {
		return nil, ErrAlgorithmNotAllowed.with(errors.New("algorithm not in the API's list"))
	}
	if err := v.checkSignature(ctx, t); err != nil {
		return nil, err
	}
	claims, err := decodeClaims(t.payload)
	if err != nil {
		return nil, err
	}
	exp, err := v.checkClaims(claims, now)
	if err != nil {
		return nil, err
	}
	return v.result(claims, exp)
}

// checkSignature verifies t's signature with the key the API's settings
// give for its alg and kid. The key's type must match the algorithm's
// family, so a public key is never used as an HMAC secret.
//
// When a key from a key set fails, the provider may have rotated the key
// under the same kid: the set is fetched again (rate-limited like a fetch
// for an unknown kid, so a flood of bad signatures costs the provider at
// most one fetch per MinRefreshInterval) and the signature is checked once
// more with the key the new set names.
func (v *Verifier) checkSignature(ctx context.Context, t *compactJWS) *Error {
	alg := t.header.alg
	method := jwt.GetSigningMethod(alg)
	if method == nil { // every algorithm model.JWTAuth accepts is registered
		return ErrAlgorithmNotAllowed.with(fmt.Errorf("no implementation of %s", alg))
	}
	if v.static != nil {
		if !v.staticFits(alg) {
			return ErrAlgorithmNotAllowed.with(fmt.Errorf("the configured key does not verify %s", alg))
		}
		return verifyWith(method, t, []any{v.static})
	}
	if model.IsHMACAlg(alg) {
		return ErrAlgorithmNotAllowed.with(errors.New("key sets never verify HMAC"))
	}
	keys, m, err := v.keys.lookup(ctx, t.header.kid, alg)
	if err != nil {
		return err
	}
	first := verifyWith(method, t, keys)
	if first == nil {
		return nil
	}
	m, ferr := v.keys.newer(ctx, m)
	if ferr != nil {
		return ErrSignatureInvalid.with(fmt.Errorf("%v; no newer key set: %w", first.cause, ferr))
	}
	if keys, err = m.find(t.header.kid, alg); err != nil {
		return err // the refreshed set no longer has the token's key
	}
	return verifyWith(method, t, keys)
}

func (v *Verifier) staticFits(alg string) bool {
	if _, ok := v.static.([]byte); ok {
		return model.IsHMACAlg(alg)
	}
	return model.KeyFitsAlg(v.static, alg)
}

// verifyWith checks t's signature with each key until one verifies it.
func verifyWith(method jwt.SigningMethod, t *compactJWS, keys []any) *Error {
	err := errors.New("no key")
	for _, k := range keys {
		if err = method.Verify(t.signingInput, t.signature, k); err == nil {
			return nil
		}
	}
	return ErrSignatureInvalid.with(err)
}

func (v *Verifier) allowed(alg string) bool {
	for _, a := range v.algs {
		if a == alg {
			return true
		}
	}
	return false
}

// result builds the Result of a verified token's claims.
func (v *Verifier) result(claims map[string]any, exp time.Time) (*Result, *Error) {
	iss, _ := claims["iss"].(string)
	subject, ok := claimString(claims[v.idClaim])
	if !ok || subject == "" {
		return nil, ErrTokenInvalid.with(fmt.Errorf("identity claim %q missing or not a string", v.idClaim))
	}
	sum := sha256.Sum256([]byte(iss + "|" + subject))
	r := &Result{Identity: hex.EncodeToString(sum[:]), Issuer: iss, Subject: subject, ExpiresAt: exp, claims: claims}
	r.Policies = v.policies(claims)
	if len(r.Policies) == 0 {
		return nil, ErrInsufficientScope
	}
	r.SessionKey = sha256.Sum256([]byte(r.Identity + "|" + strings.Join(r.Policies, ",")))
	for _, f := range v.forward {
		raw, ok := claims[f.claim]
		if !ok {
			continue
		}
		if val, ok := headerValue(raw); ok {
			r.Forward = append(r.Forward, Header{Name: f.header, Value: val})
		}
	}
	return r, nil
}

// policies maps the values of the policy claim (a space-separated string
// or an array of strings) through the table, or falls back to the default.
func (v *Verifier) policies(claims map[string]any) []string {
	var values []string
	if v.polClaim != "" {
		switch c := claims[v.polClaim].(type) {
		case string:
			values = strings.Fields(c)
		case []any:
			for _, x := range c {
				if s, ok := x.(string); ok {
					values = append(values, s)
				}
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, val := range values {
		for _, id := range v.polMap[val] {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	if len(out) == 0 {
		return v.defaults
	}
	sort.Strings(out)
	return out
}

// claimString reads a string or number claim.
func claimString(c any) (string, bool) {
	switch x := c.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// headerValue renders a claim as a header value: strings and numbers as
// they are, booleans as true/false, arrays of those joined with ",",
// anything else as JSON. Values with control characters or longer than
// maxForwardValue are not forwarded.
func headerValue(c any) (string, bool) {
	var s string
	switch x := c.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case bool:
		s = fmt.Sprint(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			p, ok := headerValue(e)
			if !ok {
				return "", false
			}
			parts = append(parts, p)
		}
		s = strings.Join(parts, ",")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", false
		}
		s = string(b)
	}
	if len(s) > maxForwardValue {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", false
		}
	}
	return s, true
}
