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
	p        *Provider
	algs     []string
	static   any     // HMAC secret ([]byte) or public key; nil with keys
	keys     *keySet // JWKS or OIDC key set; nil with static
	parser   *jwt.Parser
	idClaim  string
	polClaim string
	polMap   map[string][]string
	defaults []string
	forward  []forwardClaim
	source   tokenSource
	cache    *resultCache

	checksIssuer, checksAudience bool
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

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway.D()),
		jwt.WithTimeFunc(p.opts.Now),
		jwt.WithJSONNumber(),
	}
	if iss := cfg.EffectiveIssuer(); iss != "" {
		opts = append(opts, jwt.WithIssuer(iss))
		v.checksIssuer = true
	}
	if len(cfg.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audiences...))
		v.checksAudience = true
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Verify checks token and returns what it grants. A token seen before and
// not yet expired is answered from the cache without a signature check or
// an allocation. ctx bounds the wait for a key set fetch (only when the
// token names a kid not in the cache). Errors are *Error.
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

func (v *Verifier) verify(ctx context.Context, token string) (*Result, *Error) {
	claims := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return v.key(ctx, t)
	})
	if err != nil {
		return nil, v.classify(tok, claims, err)
	}
	return v.result(claims)
}

// key returns the key that verifies t. The parser has already refused any
// algorithm not listed; the key's type must also match the algorithm's
// family, so a public key is never used as an HMAC secret.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if v.static != nil {
		if secret, ok := v.static.([]byte); ok {
			if model.IsHMACAlg(alg) {
				return secret, nil
			}
		} else if model.KeyFitsAlg(v.static, alg) {
			return v.static, nil
		}
		return nil, ErrAlgorithmNotAllowed.with(fmt.Errorf("the configured key does not verify %s", alg))
	}
	if model.IsHMACAlg(alg) {
		return nil, ErrAlgorithmNotAllowed.with(errors.New("key sets never verify HMAC"))
	}
	kid := ""
	if raw := t.Header["kid"]; raw != nil {
		s, ok := raw.(string)
		if !ok {
			return nil, ErrTokenInvalid.with(errors.New("kid is not a string"))
		}
		kid = s
	}
	return v.keys.lookup(ctx, kid, alg)
}

// classify maps a parser error to the error the client sees.
func (v *Verifier) classify(tok *jwt.Token, claims jwt.MapClaims, err error) *Error {
	var e *Error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrTokenInvalid.with(err)
	case errors.As(err, &e):
		return e
	}
	if tok != nil {
		alg, _ := tok.Header["alg"].(string)
		if !v.allowed(alg) {
			return ErrAlgorithmNotAllowed.with(errors.New("algorithm not in the API's list"))
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrSignatureInvalid.with(err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrTokenExpired.with(err)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrTokenNotYetValid.with(err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrIssuerInvalid.with(err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrAudienceInvalid.with(err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// exp, or the iss or aud the API expects, is absent.
		if claims["exp"] != nil {
			if claims["iss"] == nil && v.checksIssuer {
				return ErrIssuerInvalid.with(err)
			}
			if claims["aud"] == nil && v.checksAudience {
				return ErrAudienceInvalid.with(err)
			}
		}
	}
	return ErrTokenInvalid.with(err)
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
func (v *Verifier) result(claims jwt.MapClaims) (*Result, *Error) {
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, ErrTokenInvalid.with(errors.New("exp missing"))
	}
	iss, _ := claims["iss"].(string)
	subject, ok := claimString(claims[v.idClaim])
	if !ok || subject == "" {
		return nil, ErrTokenInvalid.with(fmt.Errorf("identity claim %q missing or not a string", v.idClaim))
	}
	sum := sha256.Sum256([]byte(iss + "|" + subject))
	r := &Result{Identity: hex.EncodeToString(sum[:]), Issuer: iss, Subject: subject, ExpiresAt: exp.Time}
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
func (v *Verifier) policies(claims jwt.MapClaims) []string {
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
