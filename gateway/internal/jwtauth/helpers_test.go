package jwtauth

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// clock is a test clock the provider and the token checks read.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *clock) Now() time.Time             { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration)        { c.ns.Add(int64(d)) }
func (c *clock) unix(d time.Duration) int64 { return c.Now().Add(d).Unix() }

func newTestProvider(t testing.TB, clk *clock, opts Options) *Provider {
	t.Helper()
	opts.Now = clk.Now
	if opts.FetchTimeout == 0 {
		opts.FetchTimeout = 2 * time.Second
	}
	p, err := New(opts, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return p
}

func oidcConfig(o *testutil.OIDC) *model.JWTAuth {
	return &model.JWTAuth{
		Algorithms: []string{"RS256", "PS256", "ES256", "ES384", "EdDSA"},
		Keys:       model.JWTKeys{OIDCIssuer: o.Issuer()},
		Audiences:  []string{"orders"},
		Policies: model.JWTPolicies{
			Claim: "scope",
			Map: map[string][]string{
				"orders:read":  {"orders-read"},
				"orders:write": {"orders-write", "orders-read"},
			},
		},
	}
}

func mustVerifier(t testing.TB, p *Provider, cfg *model.JWTAuth) *Verifier {
	t.Helper()
	v, err := p.Verifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims are valid claims for oidcConfig at the clock's time, with extra
// ones replacing them (a nil value deletes the claim).
func claims(o *testutil.OIDC, clk *clock, extra map[string]any) map[string]any {
	c := map[string]any{
		"iss":   o.Issuer(),
		"sub":   "alice",
		"aud":   "orders",
		"iat":   clk.unix(0),
		"exp":   clk.unix(5 * time.Minute),
		"scope": "orders:read",
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func verify(v *Verifier, tok string) (*Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return v.Verify(ctx, []byte(tok))
}

func codeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return "untyped: " + err.Error()
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
