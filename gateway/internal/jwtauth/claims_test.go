package jwtauth

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/testutil"
)

// exp, nbf and iat of any magnitude: far-future values are far future,
// never wrapped into the past (2^63 and beyond, 1.7e308, 1e400 overflowed
// the int64 conversion and came out as the distant past).
func TestNumericDates(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{})
	v := mustVerifier(t, p, oidcConfig(o))
	n := func(s string) json.Number { return json.Number(s) }
	soon := n(itoa(clk.unix(time.Minute)))
	for _, tc := range []struct {
		name string
		c    map[string]any
		code string
		exp  time.Time // when accepted; zero: not checked
	}{
		{"exp 1e18", map[string]any{"exp": n("1e18")}, "", maxNumericDate},
		{"exp 1000000000000000000", map[string]any{"exp": n("1000000000000000000")}, "", maxNumericDate},
		{"exp 9e18", map[string]any{"exp": n("9e18")}, "", maxNumericDate},
		{"exp 2^63-1", map[string]any{"exp": n("9223372036854775807")}, "", maxNumericDate},
		{"exp 2^63", map[string]any{"exp": n("9223372036854775808")}, "", maxNumericDate},
		{"exp 2^64", map[string]any{"exp": n("18446744073709551616")}, "", maxNumericDate},
		{"exp 1.7e308", map[string]any{"exp": n("1.7e308")}, "", maxNumericDate},
		{"exp 1e400 (beyond float64)", map[string]any{"exp": n("1e400")}, "", maxNumericDate},
		{"exp year 9999", map[string]any{"exp": n("253402300799")}, "", maxNumericDate},
		{"exp fractional", map[string]any{"exp": n(itoa(clk.unix(time.Minute)) + ".5")}, "", time.Unix(clk.unix(time.Minute), 5e8)},
		{"exp -1", map[string]any{"exp": n("-1")}, CodeTokenExpired, time.Time{}},
		{"exp 0", map[string]any{"exp": n("0")}, CodeTokenExpired, time.Time{}},
		{"exp -9e18", map[string]any{"exp": n("-9e18")}, CodeTokenExpired, time.Time{}},
		{"exp -1e400", map[string]any{"exp": n("-1e400")}, CodeTokenExpired, time.Time{}},
		{"exp 1e-400", map[string]any{"exp": n("1e-400")}, CodeTokenExpired, time.Time{}},
		{"exp a numeric string", map[string]any{"exp": "1e18"}, CodeTokenInvalid, time.Time{}},
		{"exp null", map[string]any{"exp": json.RawMessage("null")}, CodeTokenInvalid, time.Time{}},
		{"exp true", map[string]any{"exp": true}, CodeTokenInvalid, time.Time{}},
		{"exp missing", map[string]any{"exp": nil}, CodeTokenInvalid, time.Time{}},
		{"nbf 2^63", map[string]any{"exp": n("1e18"), "nbf": n("9223372036854775808")}, CodeTokenNotYetValid, time.Time{}},
		{"nbf 1.7e308", map[string]any{"exp": n("1e18"), "nbf": n("1.7e308")}, CodeTokenNotYetValid, time.Time{}},
		{"nbf 1e400", map[string]any{"exp": soon, "nbf": n("1e400")}, CodeTokenNotYetValid, time.Time{}},
		{"nbf -1e400", map[string]any{"exp": soon, "nbf": n("-1e400")}, "", time.Time{}},
		{"nbf -1", map[string]any{"exp": soon, "nbf": n("-1")}, "", time.Time{}},
		{"nbf a string", map[string]any{"exp": soon, "nbf": "0"}, CodeTokenInvalid, time.Time{}},
		{"iat 2^63", map[string]any{"exp": soon, "iat": n("9223372036854775808")}, CodeTokenNotYetValid, time.Time{}},
		{"iat 1e400", map[string]any{"exp": soon, "iat": n("1e400")}, CodeTokenNotYetValid, time.Time{}},
		{"iat -9e18", map[string]any{"exp": soon, "iat": n("-9e18")}, "", time.Time{}},
		{"iat an array", map[string]any{"exp": soon, "iat": []int{1}}, CodeTokenInvalid, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := o.Sign("ES256", claims(o, clk, tc.c))
			r, err := verify(v, tok)
			if got := codeOf(err); got != tc.code {
				t.Fatalf("code = %q, want %q (%v)", got, tc.code, err)
			}
			if err != nil {
				return
			}
			if !tc.exp.IsZero() && !r.ExpiresAt.Equal(tc.exp) {
				t.Fatalf("ExpiresAt = %v, want %v", r.ExpiresAt, tc.exp)
			}
			// The result is cached until exp: the same token again is the
			// same result, without a signature check.
			if again, err := verify(v, tok); err != nil || again != r {
				t.Fatalf("again: %v, cached %v", err, again == r)
			}
		})
	}
}

// max_token_lifetime bounds how far ahead exp may lie (plus the leeway);
// unset, exp may lie anywhere in the future.
func TestMaxTokenLifetime(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{})
	cfg := oidcConfig(o)
	cfg.MaxTokenLifetime = 3600e9
	cfg.Leeway = 30e9
	v := mustVerifier(t, p, cfg)
	for _, tc := range []struct {
		name string
		exp  any
		code string
	}{
		{"exp in 30m", clk.unix(30 * time.Minute), ""},
		{"exp in 1h", clk.unix(time.Hour), ""},
		{"exp in 1h and the leeway", clk.unix(time.Hour + 30*time.Second), ""},
		{"exp in 1h, the leeway and 1s", clk.unix(time.Hour + 31*time.Second), CodeTokenInvalid},
		{"exp in 2h", clk.unix(2 * time.Hour), CodeTokenInvalid},
		{"exp 1e18", json.Number("1e18"), CodeTokenInvalid},
		{"exp 1e400", json.Number("1e400"), CodeTokenInvalid},
		{"expired", clk.unix(-time.Hour), CodeTokenExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify(v, o.Sign("RS256", claims(o, clk, map[string]any{"exp": tc.exp})))
			if got := codeOf(err); got != tc.code {
				t.Fatalf("code = %q, want %q (%v)", got, tc.code, err)
			}
		})
	}
}
