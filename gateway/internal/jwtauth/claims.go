package jwtauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// The range of a NumericDate: a value after the last second of year 9999
// counts as that second, one before year 1 as its first. Every instant in
// the range converts, compares and adds a leeway without overflow, and
// formats as RFC 3339.
var (
	maxNumericDate = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	minNumericDate = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
)

// numericDate reads a NumericDate (RFC 7519 section 2): a JSON number of
// seconds since 1970-01-01T00:00:00Z, fractional or not, of any magnitude
// (clamped to the range above, never wrapped). ok is false for any other
// JSON type.
func numericDate(v any) (t time.Time, ok bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range: ±Inf or 0, clamped below
		return time.Time{}, false
	}
	switch {
	case f >= float64(maxNumericDate.Unix()):
		return maxNumericDate, true
	case f <= float64(minNumericDate.Unix()):
		return minNumericDate, true
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// decodeClaims parses a verified payload: one JSON object in UTF-8, each
// member name once at every depth, numbers kept as json.Number.
func decodeClaims(payload []byte) (map[string]any, *Error) {
	if err := checkJSONObject(payload); err != nil {
		return nil, ErrTokenInvalid.with(fmt.Errorf("payload: %w", err))
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var c map[string]any
	if err := dec.Decode(&c); err != nil {
		return nil, ErrTokenInvalid.with(fmt.Errorf("payload: %w", err))
	}
	return c, nil
}

// timeClaim reads the NumericDate claim name; present is false when the
// token lacks it.
func timeClaim(c map[string]any, name string) (t time.Time, present bool, err *Error) {
	raw, present := c[name]
	if !present {
		return time.Time{}, false, nil
	}
	t, ok := numericDate(raw)
	if !ok {
		return time.Time{}, true, ErrTokenInvalid.with(fmt.Errorf("%s is not a number", name))
	}
	return t, true, nil
}

// checkClaims checks the registered claims at now and returns exp:
//   - exp is required, always: a token without it is refused;
//   - exp, nbf and iat are numbers (clamped, see numericDate), compared
//     with the leeway: refused at or past exp, before nbf or iat;
//   - with max_token_lifetime, exp may lie at most that far (plus leeway)
//     ahead of now;
//   - iss, when present, is a string (it is part of the identity); with an
//     issuer configured it must be present and equal;
//   - with audiences configured, aud (a string or an array of strings)
//     must name one of them.
//
// When several fail, the first in this order answers: a claim of the wrong
// type, expired, not yet valid, issuer, audience.
func (v *Verifier) checkClaims(c map[string]any, now time.Time) (time.Time, *Error) {
	exp, hasExp, err := timeClaim(c, "exp")
	if err != nil {
		return exp, err
	}
	if !hasExp {
		return exp, ErrTokenInvalid.with(errors.New("exp missing: every token must carry exp"))
	}
	nbf, hasNbf, err := timeClaim(c, "nbf")
	if err != nil {
		return exp, err
	}
	iat, hasIat, err := timeClaim(c, "iat")
	if err != nil {
		return exp, err
	}
	iss, hasIss := c["iss"].(string)
	if _, present := c["iss"]; present && !hasIss {
		return exp, ErrTokenInvalid.with(errors.New("iss is not a string"))
	}
	var aud []string
	if len(v.audiences) > 0 {
		var ok bool
		if aud, ok = audiences(c["aud"]); !ok {
			return exp, ErrTokenInvalid.with(errors.New("aud is not a string or an array of strings"))
		}
	}

	if !now.Before(exp.Add(v.leeway)) {
		return exp, ErrTokenExpired
	}
	if v.maxLifetime > 0 && exp.Sub(now)-v.leeway > v.maxLifetime {
		return exp, ErrTokenInvalid.with(fmt.Errorf("exp lies more than max_token_lifetime (%s) ahead", v.maxLifetime))
	}
	if hasNbf && now.Before(nbf.Add(-v.leeway)) {
		return exp, ErrTokenNotYetValid.with(errors.New("nbf is in the future"))
	}
	if hasIat && now.Before(iat.Add(-v.leeway)) {
		return exp, ErrTokenNotYetValid.with(errors.New("iat is in the future"))
	}
	if v.issuer != "" && (!hasIss || iss != v.issuer) {
		return exp, ErrIssuerInvalid
	}
	if len(v.audiences) > 0 && !anyIn(aud, v.audiences) {
		return exp, ErrAudienceInvalid
	}
	return exp, nil
}

// audiences reads aud: absent, a string or an array of strings.
func audiences(raw any) ([]string, bool) {
	switch a := raw.(type) {
	case nil:
		return nil, true
	case string:
		return []string{a}, true
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func anyIn(values, allowed []string) bool {
	for _, v := range values {
		for _, a := range allowed {
			if v == a {
				return true
			}
		}
	}
	return false
}
