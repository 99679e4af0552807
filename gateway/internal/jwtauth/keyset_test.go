package jwtauth

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func TestKeyRotationPickedUpWithoutRestart(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{RefreshInterval: time.Minute, MinRefreshInterval: 10 * time.Second})
	v := mustVerifier(t, p, oidcConfig(o))

	old := o.Sign("RS256", claims(o, clk, nil))
	if _, err := verify(v, old); err != nil {
		t.Fatal(err)
	}
	oldKID := o.KID("RS256")
	o.Rotate(false) // abrupt: the old kid leaves the JWKS at once
	fresh := o.Sign("RS256", claims(o, clk, map[string]any{"sub": "bob"}))

	// Right after a fetch, an unknown kid does not refetch (rate limit)...
	if _, err := verify(v, fresh); codeOf(err) != CodeUnknownKey {
		t.Fatalf("new kid within the rate-limit window: %v, want unknown_key", err)
	}
	// ...after the window it does, and the new key verifies.
	clk.Add(11 * time.Second)
	if _, err := verify(v, fresh); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	// The retired key stops verifying new tokens once the set is refreshed.
	retired := o.SignWithHeader("RS256", map[string]any{"kid": oldKID}, claims(o, clk, map[string]any{"sub": "carol"}))
	if _, err := verify(v, retired); codeOf(err) != CodeUnknownKey {
		t.Fatalf("token naming the retired kid: %v, want unknown_key", err)
	}
}

func TestGracefulRotationKeepsOldTokens(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{RefreshInterval: time.Minute})
	v := mustVerifier(t, p, oidcConfig(o))
	if _, err := verify(v, o.Sign("ES256", claims(o, clk, nil))); err != nil {
		t.Fatal(err)
	}
	oldKID := o.KID("ES256")
	signedByOld := o.Sign("ES256", claims(o, clk, map[string]any{"sub": "x", "exp": clk.unix(time.Hour)}))
	o.Rotate(true)
	before := o.JWKSFetches()
	// Past the refresh interval, a token with a known kid is answered from
	// the cached keys and starts a background refresh.
	clk.Add(2 * time.Minute)
	if _, err := verify(v, signedByOld); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if m := v.keys.keys.Load(); m.byKID[o.KID("ES256")] == nil || m.byKID[oldKID] == nil {
			return fmt.Errorf("refreshed set lacks the old or new key")
		}
		return nil
	})
	if got := o.JWKSFetches() - before; got != 1 {
		t.Fatalf("%d fetches for one periodic refresh", got)
	}
	// Tokens of both keys verify without another fetch.
	for _, tok := range []string{signedByOld, o.Sign("ES256", claims(o, clk, map[string]any{"sub": "y"}))} {
		if _, err := verify(v, tok); err != nil {
			t.Fatal(err)
		}
	}
	if got := o.JWKSFetches() - before; got != 1 {
		t.Fatalf("%d fetches after the refresh, want still 1", got)
	}
}

func TestProviderDownKeepsCachedKeys(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{RefreshInterval: time.Minute, FetchTimeout: time.Second})
	v := mustVerifier(t, p, oidcConfig(o))
	if _, err := verify(v, o.Sign("EdDSA", claims(o, clk, nil))); err != nil {
		t.Fatal(err)
	}
	o.Stop()
	// Past the refresh interval: the refresh fails, the cached keys stay.
	clk.Add(5 * time.Minute)
	for i := 0; i < 3; i++ {
		tok := o.Sign("EdDSA", claims(o, clk, map[string]any{"sub": fmt.Sprint("user", i)}))
		if _, err := verify(v, tok); err != nil {
			t.Fatalf("provider down, cached key: %v", err)
		}
		clk.Add(11 * time.Second)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if counter(p.m.fetchErr) == 0 {
			return fmt.Errorf("no failed fetch recorded")
		}
		return nil
	})
	// An unknown kid while down is refused without hanging.
	o.Rotate(false)
	if _, err := verify(v, o.Sign("EdDSA", claims(o, clk, nil))); codeOf(err) != CodeUnknownKey {
		t.Fatalf("unknown kid while down: %v", err)
	}
	// The provider returns: the rotated key is fetched and verifies.
	o.Start()
	clk.Add(11 * time.Second)
	if _, err := verify(v, o.Sign("EdDSA", claims(o, clk, map[string]any{"sub": "back"}))); err != nil {
		t.Fatalf("after the provider returned: %v", err)
	}
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{MinRefreshInterval: 10 * time.Second})
	cfg := oidcConfig(o)
	v := mustVerifier(t, p, cfg)
	// A second API on the same issuer shares the key set and its limit.
	cfg2 := oidcConfig(o)
	cfg2.Audiences = []string{"billing"}
	v2 := mustVerifier(t, p, cfg2)
	if _, err := verify(v, o.Sign("ES256", claims(o, clk, nil))); err != nil {
		t.Fatal(err)
	}
	start := o.JWKSFetches()
	if start != 1 {
		t.Fatalf("%d fetches to warm up one issuer used by two APIs, want 1", start)
	}
	tokens := make([]string, 200)
	for i := range tokens {
		tokens[i] = o.SignWithHeader("ES256", map[string]any{"kid": fmt.Sprintf("bogus-%d", i)}, claims(o, clk, nil))
	}
	const rounds = 4 // 4 rounds 5s apart: 20s, so at most 2 more fetches
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < len(tokens); i += 8 {
					target := v
					if i%2 == 1 {
						target = v2
					}
					if _, err := verify(target, tokens[i]); codeOf(err) != CodeUnknownKey {
						t.Errorf("bogus kid: %v", err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		clk.Add(5 * time.Second)
	}
	if got := o.JWKSFetches() - start; got > 2 {
		t.Fatalf("%d JWKS fetches for %d unknown-kid tokens over 20s, want at most 2", got, rounds*len(tokens))
	}
	if got := o.DiscoveryFetches(); got != 1 {
		t.Fatalf("%d discovery fetches, want 1 (cached)", got)
	}
}

func TestVerificationCache(t *testing.T) {
	t.Parallel()
	clk := newClock()
	p := newTestProvider(t, clk, Options{CacheSize: 32})
	o := testutil.StartOIDC(t)
	cfg := oidcConfig(o)
	cfg.Keys = model.JWTKeys{PublicKey: o.PublicKeyPEM("ES256")}
	cfg.Algorithms = []string{"ES256"}
	cfg.Leeway = model.Duration(30 * time.Second)
	v := mustVerifier(t, p, cfg)

	tok := o.Sign("ES256", claims(o, clk, map[string]any{"exp": clk.unix(time.Minute)}))
	r1, err := verify(v, tok)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := verify(v, tok)
	if err != nil || r2 != r1 {
		t.Fatalf("second verification: %v, same result %v", err, r2 == r1)
	}
	if hits, valid := counter(p.m.cacheHits), counter(p.m.valid); hits != 1 || valid != 1 {
		t.Fatalf("cache hits %v, signature checks %v; want 1 and 1", hits, valid)
	}
	// Past exp the entry is gone even though the leeway still accepts the
	// token: it is verified again, and not cached.
	clk.Add(time.Minute + time.Second)
	valid := counter(p.m.valid)
	if _, err := verify(v, tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	if counter(p.m.valid) != valid+1 {
		t.Fatal("an entry outlived the token's exp")
	}
	clk.Add(time.Minute)
	if _, err := verify(v, tok); codeOf(err) != CodeTokenExpired {
		t.Fatalf("after exp and leeway: %v", err)
	}
	// Bounded.
	for i := 0; i < 100; i++ {
		if _, err := verify(v, o.Sign("ES256", claims(o, clk, map[string]any{"sub": fmt.Sprint(i)}))); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.cache.lru.Len(); n > 32 {
		t.Fatalf("cache holds %d tokens, bound 32", n)
	}
}

// A provider that rotates a key under the same kid: the first token of the
// new key that fails with the cached one refetches the set and is
// accepted, without waiting for the periodic refresh.
func TestSameKIDRotationRefetches(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{RefreshInterval: 5 * time.Minute, MinRefreshInterval: 10 * time.Second})
	cfg := oidcConfig(o)
	cfg.Keys = model.JWTKeys{JWKSURL: o.JWKSURL()}
	jwks := mustVerifier(t, p, cfg)
	issuer := mustVerifier(t, p, oidcConfig(o))
	// Both key sets loaded before counting: the provider's fetch counter is
	// shared by the two, so a first load still under way would be counted
	// as a refetch.
	for _, w := range []struct {
		v   *Verifier
		alg string
	}{{jwks, "RS256"}, {issuer, "ES256"}} {
		if _, err := verify(w.v, o.Sign(w.alg, claims(o, clk, nil))); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name string
		v    *Verifier
		alg  string
	}{
		{"jwks url, RS256", jwks, "RS256"},
		{"oidc issuer, ES256", issuer, "ES256"},
	} {
		// Not parallel: the cases rotate one provider in turn.
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verify(tc.v, o.Sign(tc.alg, claims(o, clk, nil))); err != nil {
				t.Fatal(err)
			}
			kid := o.KID(tc.alg)
			byOldKey := o.Sign(tc.alg, claims(o, clk, map[string]any{"sub": "old"})) // not verified yet
			o.RotateSameKID()
			if o.KID(tc.alg) != kid {
				t.Fatalf("kid changed: %s -> %s", kid, o.KID(tc.alg))
			}
			before := o.JWKSFetches()
			// The last fetch was longer than min_refresh_interval ago.
			clk.Add(11 * time.Second)
			if _, err := verify(tc.v, o.Sign(tc.alg, claims(o, clk, map[string]any{"sub": "new"}))); err != nil {
				t.Fatalf("new key under the same kid: %v", err)
			}
			if got := o.JWKSFetches() - before; got != 1 {
				t.Fatalf("%d fetches, want 1", got)
			}
			// The replaced key is gone: its tokens fail, and cost no fetch
			// within the interval.
			if _, err := verify(tc.v, byOldKey); codeOf(err) != CodeSignatureInvalid {
				t.Fatalf("token of the replaced key: %v, want signature_invalid", err)
			}
			if got := o.JWKSFetches() - before; got != 1 {
				t.Fatalf("%d fetches after a bad signature within the interval, want still 1", got)
			}
		})
	}
	// Within min_refresh_interval of the last fetch, a rotation is seen only
	// once the interval has passed.
	// The issuer's set was fetched by the last case, at the clock's time.
	o.RotateSameKID()
	fresh := o.Sign("ES256", claims(o, clk, map[string]any{"sub": "fresh"}))
	if _, err := verify(issuer, fresh); codeOf(err) != CodeSignatureInvalid {
		t.Fatalf("within the interval: %v, want signature_invalid", err)
	}
	clk.Add(10 * time.Second)
	if _, err := verify(issuer, fresh); err != nil {
		t.Fatalf("once the interval passed: %v", err)
	}
}

// A flood of tokens naming a known kid with bad signatures costs the
// provider at most one fetch per min_refresh_interval, on two APIs sharing
// the issuer, and every one of them is refused.
func TestBadSignatureFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	o := testutil.StartOIDC(t)
	clk := newClock()
	p := newTestProvider(t, clk, Options{MinRefreshInterval: 10 * time.Second})
	v := mustVerifier(t, p, oidcConfig(o))
	cfg2 := oidcConfig(o)
	cfg2.Audiences = []string{"billing"}
	v2 := mustVerifier(t, p, cfg2)
	if _, err := verify(v, o.Sign("RS256", claims(o, clk, nil))); err != nil {
		t.Fatal(err)
	}
	start := o.JWKSFetches()
	good := strings.Split(o.Sign("RS256", claims(o, clk, nil)), ".")
	tokens := make([]string, 200)
	for i := range tokens {
		forged := testutil.EncodeJWTPart(claims(o, clk, map[string]any{"sub": fmt.Sprint("mallory", i)}))
		tokens[i] = good[0] + "." + forged + "." + good[2]
	}
	const rounds = 4 // 0s, 5s, 10s, 15s after the last fetch: one more fetch, at 10s
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < len(tokens); i += 8 {
					target := v
					if i%2 == 1 {
						target = v2
					}
					if _, err := verify(target, tokens[i]); codeOf(err) != CodeSignatureInvalid {
						t.Errorf("forged token: %v", err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		clk.Add(5 * time.Second)
	}
	if got := o.JWKSFetches() - start; got != 1 {
		t.Fatalf("%d JWKS fetches for %d bad signatures over 20s, want 1 (one per 10s interval)", got, rounds*len(tokens))
	}
}
