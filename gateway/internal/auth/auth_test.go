package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func limit(rate int64) *model.Limit {
	return &model.Limit{Rate: rate, Per: model.Duration(time.Second)}
}

func TestNewSessionMerge(t *testing.T) {
	t.Parallel()
	pols := map[string]*model.Policy{
		"read":   {ID: "read", Access: []model.AccessRight{{API: "orders", Methods: []string{"GET"}}}, RateLimit: limit(10), Quota: &model.Quota{Max: 100, Renewal: model.Duration(time.Hour)}},
		"write":  {ID: "write", Access: []model.AccessRight{{API: "orders", Methods: []string{"POST"}, Paths: []string{"/orders/*"}}}, RateLimit: limit(5)},
		"pay":    {ID: "pay", Access: []model.AccessRight{{API: "payments"}}, RateLimit: limit(1)},
		"global": {ID: "global", RateLimit: limit(1000)},
	}
	h := "ab"
	cases := []struct {
		name   string
		key    model.Key
		api    string
		method string
		path   string
		allow  bool
		limits []string
		quotas []string
	}{
		{"union read", model.Key{Hash: h, Policies: []string{"read", "write"}}, "orders", "GET", "/anything", true, []string{"p:read:k:ab", "p:write:k:ab"}, []string{"q:p:read:k:ab"}},
		{"union write path", model.Key{Hash: h, Policies: []string{"read", "write"}}, "orders", "POST", "/orders/1", true, nil, nil},
		{"write wrong path", model.Key{Hash: h, Policies: []string{"read", "write"}}, "orders", "POST", "/other", false, nil, nil},
		{"method not granted", model.Key{Hash: h, Policies: []string{"read"}}, "orders", "DELETE", "/", false, nil, nil},
		{"other api", model.Key{Hash: h, Policies: []string{"read"}}, "payments", "GET", "/", false, nil, nil},
		{"policy limits scoped to their api", model.Key{Hash: h, Policies: []string{"read", "pay", "global"}}, "payments", "GET", "/", true, []string{"p:pay:k:ab", "p:global:k:ab"}, nil},
		{"key access overrides", model.Key{Hash: h, Policies: []string{"read"}, Access: []model.AccessRight{{API: "payments", Methods: []string{"PUT"}}}}, "orders", "GET", "/", false, nil, nil},
		{"key access grants, policy limits apply everywhere", model.Key{Hash: h, Policies: []string{"read"}, Access: []model.AccessRight{{API: "payments"}}}, "payments", "PUT", "/", true, []string{"p:read:k:ab"}, []string{"q:p:read:k:ab"}},
		{"key limit and quota replace", model.Key{Hash: h, Policies: []string{"read", "write"}, RateLimit: limit(3), Quota: &model.Quota{Max: 1, Renewal: model.Duration(time.Minute)}}, "orders", "GET", "/", true, []string{"k:ab"}, []string{"q:k:ab"}},
		{"missing policy grants nothing", model.Key{Hash: h, Policies: []string{"nope"}}, "orders", "GET", "/", false, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := NewSession(&c.key, pols)
			if got := s.Allowed(c.api, []byte(c.method), []byte(c.path)); got != c.allow {
				t.Fatalf("Allowed = %v, want %v", got, c.allow)
			}
			if c.limits != nil {
				var got []string
				for _, l := range s.Limits {
					if l.AppliesTo(c.api) {
						got = append(got, l.Key)
					}
				}
				if !equal(got, c.limits) {
					t.Fatalf("limits = %v, want %v", got, c.limits)
				}
			}
			if c.quotas != nil {
				var got []string
				for _, q := range s.Quotas {
					if q.AppliesTo(c.api) {
						got = append(got, q.Key)
					}
				}
				if !equal(got, c.quotas) {
					t.Fatalf("quotas = %v, want %v", got, c.quotas)
				}
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestUsable(t *testing.T) {
	t.Parallel()
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Minute)
	cases := []struct {
		key  model.Key
		want error
	}{
		{model.Key{}, nil},
		{model.Key{ExpiresAt: &future}, nil},
		{model.Key{ExpiresAt: &past}, ErrExpired},
		{model.Key{Disabled: true}, ErrDisabled},
	}
	for _, c := range cases {
		if err := NewSession(&c.key, nil).Usable(time.Now()); !errors.Is(err, c.want) {
			t.Errorf("Usable(%+v) = %v, want %v", c.key, err, c.want)
		}
	}
}

func TestCacheLookup(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	st := store.New(r.Client(t), 0)
	ctx := context.Background()
	pol := &model.Policy{ID: "p1", Access: []model.AccessRight{{API: "a"}}}
	c, err := NewCache(st, Options{
		CacheSize: 10, TTL: time.Minute, NegativeCacheSize: 10, NegativeTTL: time.Minute, LookupTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetPolicies(map[string]*model.Policy{"p1": pol})
	secret := []byte("0123456789abcdef-secret")
	sum := SumKey(secret)

	if _, err := c.Lookup(ctx, sum); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	k := &model.Key{ID: "k1", Hash: model.HashKey(secret), Policies: []string{"p1"}}
	if _, err := storetest.PutKey(ctx, st, k); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, sum); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("negative cache should still answer unknown: %v", err)
	}
	c.Evict(k.Hash)
	s, err := c.Lookup(ctx, sum)
	if err != nil || s.KeyID != "k1" || !s.Allowed("a", []byte("GET"), []byte("/")) {
		t.Fatalf("lookup after evict: %+v %v", s, err)
	}

	// Cached: answers while Redis is down.
	r.Stop()
	if s2, err := c.Lookup(ctx, sum); err != nil || s2 != s {
		t.Fatalf("cached lookup with redis down: %v", err)
	}
	other := SumKey([]byte("another-key-0123456789"))
	if _, err := c.Lookup(ctx, other); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("uncached lookup with redis down: %v", err)
	}
	r.Start()

	// A changed policy evicts the sessions holding it.
	c.SetPolicies(map[string]*model.Policy{"p1": {ID: "p1", Access: []model.AccessRight{{API: "b"}}}})
	c.EvictPolicy("p1")
	s3, err := c.Lookup(ctx, sum)
	if err != nil || s3.Allowed("a", []byte("GET"), []byte("/")) || !s3.Allowed("b", []byte("GET"), []byte("/")) {
		t.Fatalf("after policy change: %v", err)
	}
	c.EvictPolicy("unrelated")
	if c.Len() != 1 {
		t.Fatalf("unrelated policy evicted sessions: %d", c.Len())
	}
	c.Purge()
	if c.Len() != 0 {
		t.Fatal("purge")
	}
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	st := store.New(r.Client(t), 0)
	c, err := NewCache(st, Options{CacheSize: 4, TTL: time.Minute, NegativeCacheSize: 4, NegativeTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.now = func() time.Time { return now }
	secret := []byte("ttl-key-0123456789")
	k := &model.Key{ID: "k", Hash: model.HashKey(secret), Access: []model.AccessRight{{API: "a"}}}
	if _, err := storetest.PutKey(context.Background(), st, k); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(context.Background(), SumKey(secret)); err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.Delete(context.Background(), st, store.KindKey, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(context.Background(), SumKey(secret)); err != nil {
		t.Fatalf("within ttl the cached session answers: %v", err)
	}
	now = now.Add(time.Minute)
	if _, err := c.Lookup(context.Background(), SumKey(secret)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("after ttl a deleted key is unknown: %v", err)
	}
}

// Token identities get sessions from the same cache: one per session key,
// built from the current policies, counted on the identity hash, evicted by
// a policy change and by the TTL.
func TestCacheIdentity(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	st := store.New(r.Client(t), 0)
	c, err := NewCache(st, Options{
		CacheSize: 10, TTL: time.Minute, NegativeCacheSize: 10, NegativeTTL: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetPolicies(map[string]*model.Policy{
		"read": {ID: "read", Access: []model.AccessRight{{API: "a", Methods: []string{"GET"}}}, RateLimit: limit(5)},
	})
	now := time.Now()
	c.now = func() time.Time { return now }
	id := model.HashKey([]byte("issuer|alice"))
	sum := SumKey([]byte(id + "|read"))

	s := c.Identity(sum, id, []string{"read"})
	if s.KeyID != IdentityKeyID || s.Hash != id || s.Usable(now.Add(24*time.Hour)) != nil {
		t.Fatalf("session %+v", s)
	}
	if !s.Allowed("a", []byte("GET"), []byte("/")) || s.Allowed("a", []byte("POST"), []byte("/")) {
		t.Fatal("access rights of the policy not applied")
	}
	if len(s.Limits) != 1 || s.Limits[0].Key != "p:read:k:"+id {
		t.Fatalf("limits %+v", s.Limits)
	}
	if c.Identity(sum, id, []string{"read"}) != s {
		t.Fatal("second call did not hit the cache")
	}

	// Redis down: identities need no store.
	r.Stop()
	other := SumKey([]byte("bob"))
	if s2 := c.Identity(other, "bob-hash", []string{"read"}); s2 == nil || s2.Hash != "bob-hash" {
		t.Fatal("identity session with redis down")
	}

	c.SetPolicies(map[string]*model.Policy{"read": {ID: "read", Access: []model.AccessRight{{API: "a", Methods: []string{"GET", "POST"}}}}})
	c.EvictPolicy("unrelated")
	if c.Identity(sum, id, []string{"read"}) != s {
		t.Fatal("unrelated policy evicted the session")
	}
	c.EvictPolicy("read")
	if c.Len() != 0 {
		t.Fatalf("policy change left %d sessions", c.Len())
	}
	s3 := c.Identity(sum, id, []string{"read"})
	if s3 == s || !s3.Allowed("a", []byte("POST"), []byte("/")) || len(s3.Limits) != 0 {
		t.Fatalf("session after policy change %+v", s3)
	}
	now = now.Add(time.Minute)
	if c.Identity(sum, id, []string{"read"}) == s3 {
		t.Fatal("session outlived the ttl")
	}
}

func TestCacheIdentityAllocs(t *testing.T) {
	c, err := NewCache(nil, Options{CacheSize: 10, TTL: time.Minute, NegativeCacheSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	pols := []string{"read"}
	sum := SumKey([]byte("alice"))
	c.Identity(sum, "alice-hash", pols)
	if n := testing.AllocsPerRun(100, func() { c.Identity(sum, "alice-hash", pols) }); n != 0 {
		t.Fatalf("cached identity allocates %v times", n)
	}
}

// With the store down, a session past its TTL is still returned, with
// ErrStale, within MaxStale (0: without bound); an eviction heard meanwhile
// still forgets it, and once the store answers again it is read afresh.
func TestCacheStaleWhileStoreDown(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		maxStale time.Duration
		after    time.Duration // past the TTL
		stale    bool
	}{
		{"unbounded, an hour later", 0, time.Hour, true},
		{"bounded, within", 10 * time.Minute, 5 * time.Minute, true},
		{"bounded, past", 10 * time.Minute, 11 * time.Minute, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := testutil.StartRedis(t)
			st := store.New(r.Client(t), 0)
			ctx := context.Background()
			c, err := NewCache(st, Options{
				CacheSize: 4, TTL: time.Minute, NegativeCacheSize: 4, NegativeTTL: time.Minute,
				LookupTimeout: time.Second, MaxStale: tc.maxStale, StoreRetry: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			c.now = func() time.Time { return now }
			secret := []byte("stale-key-0123456789")
			k := &model.Key{ID: "k", Hash: model.HashKey(secret), Access: []model.AccessRight{{API: "a"}}}
			if _, err := storetest.PutKey(ctx, st, k); err != nil {
				t.Fatal(err)
			}
			s, err := c.Lookup(ctx, SumKey(secret))
			if err != nil {
				t.Fatal(err)
			}
			r.Stop()
			now = now.Add(time.Minute + tc.after)
			got, err := c.Lookup(ctx, SumKey(secret))
			if tc.stale {
				if got != s || !errors.Is(err, ErrStale) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("stale lookup = %p, %v; want the cached session and ErrStale", got, err)
				}
				// Within the retry pause: answered without the store.
				if got, err := c.Lookup(ctx, SumKey(secret)); got != s || !errors.Is(err, ErrStale) {
					t.Fatalf("second stale lookup = %p, %v", got, err)
				}
				if c.StaleServed() != 2 {
					t.Fatalf("stale served %d, want 2", c.StaleServed())
				}
			} else if got != nil || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrStale) {
				t.Fatalf("past max stale: %p, %v; want ErrUnavailable alone", got, err)
			}

			// A revocation heard during the outage applies at once.
			c.Evict(k.Hash)
			if got, err := c.Lookup(ctx, SumKey(secret)); got != nil || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrStale) {
				t.Fatalf("evicted during the outage: %p, %v", got, err)
			}

			// The store back: read afresh.
			r.Start()
			now = now.Add(2 * time.Second)
			testutil.WaitFor(t, 10*time.Second, func() error {
				got, err := c.Lookup(ctx, SumKey(secret))
				if err != nil || got == nil || got == s {
					return fmt.Errorf("after recovery: %p, %v", got, err)
				}
				return nil
			})
		})
	}
}
