package jwtauth

import (
	"context"
	"testing"

	"github.com/sluicegw/sluice/pkg/testutil"
)

func benchVerifier(b *testing.B) (*Verifier, *testutil.OIDC, *clock) {
	o := testutil.StartOIDC(b)
	clk := newClock()
	p := newTestProvider(b, clk, Options{})
	return mustVerifier(b, p, oidcConfig(o)), o, clk
}

// benchUncached measures a full verification: parse, key lookup in the
// cached key set, signature check, claims and result (the verification
// cache is bypassed).
func benchUncached(b *testing.B, alg string) {
	v, o, clk := benchVerifier(b)
	tok := o.Sign(alg, claims(o, clk, nil))
	ctx := context.Background()
	if _, err := v.Verify(ctx, []byte(tok)); err != nil { // loads the key set
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) { benchUncached(b, "RS256") }
func BenchmarkVerifyES256(b *testing.B) { benchUncached(b, "ES256") }
func BenchmarkVerifyEdDSA(b *testing.B) { benchUncached(b, "EdDSA") }

// BenchmarkVerifyCached is a repeated token: SHA-256 and a cache lookup.
func BenchmarkVerifyCached(b *testing.B) {
	v, o, clk := benchVerifier(b)
	tok := []byte(o.Sign("RS256", claims(o, clk, nil)))
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkParseToken is the gateway's own share of a first verification:
// shape, header rules and the payload's duplicate check and decoding,
// without the signature check.
func BenchmarkParseToken(b *testing.B) {
	_, o, clk := benchVerifier(b)
	tok := o.Sign("RS256", claims(o, clk, nil))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, err := parseCompact(tok)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := decodeClaims(t.payload); err != nil {
			b.Fatal(err)
		}
	}
}
