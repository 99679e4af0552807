package state

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/gateway/internal/jwtauth"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func newState(t *testing.T) (*State, *store.Store, *testutil.Redis) {
	t.Helper()
	r := testutil.StartRedis(t)
	st := store.New(r.Client(t), 0)
	s, err := New(st, Options{MaxBody: 1 << 20, Auth: auth.Options{CacheSize: 100, TTL: time.Minute, NegativeCacheSize: 100, NegativeTTL: time.Minute, LookupTimeout: time.Second}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return s, st, r
}

func api(id, path string) *model.API {
	return &model.API{ID: id, ListenPath: path, Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthAPIKey}}
}

func TestStartLoadsWhenRedisComesUp(t *testing.T) {
	t.Parallel()
	s, st, r := newState(t)
	ctx := context.Background()
	if _, err := storetest.PutAPI(ctx, st, api("a", "/a")); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	s.opts.RetryInterval = 20 * time.Millisecond
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	if s.Loaded() {
		t.Fatal("loaded with redis down")
	}
	r.Start()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !s.Loaded() {
			return errors.New("not loaded")
		}
		return nil
	})
	if s.Version() != 1 || s.Snapshot().Table.Match(nil, []byte("/a/x")) == nil {
		t.Fatalf("version %d, routes %d", s.Version(), len(s.Snapshot().Table.Routes()))
	}
}

func apply(t *testing.T, s *State, st *store.Store, from int64) {
	t.Helper()
	vs, err := st.ChangesSince(context.Background(), from, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if err := s.Apply(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	s, st, _ := newState(t)
	ctx := context.Background()
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.PutAPI(ctx, st, api("a", "/a")); err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.PutPolicy(ctx, st, &model.Policy{ID: "p", Access: []model.AccessRight{{API: "a"}}}); err != nil {
		t.Fatal(err)
	}
	secret := []byte("state-test-key-0123456789")
	if _, err := storetest.PutKey(ctx, st, &model.Key{ID: "k", Hash: model.HashKey(secret), Policies: []string{"p"}}); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 0)
	if s.Version() != 3 {
		t.Fatalf("version %d", s.Version())
	}
	up := s.Snapshot().API("a").Upstream
	sess, err := s.Sessions().Lookup(ctx, auth.SumKey(secret))
	if err != nil || !sess.Allowed("a", []byte("GET"), []byte("/")) {
		t.Fatalf("session: %v", err)
	}

	// Policy change evicts the session; upstream unchanged is reused.
	if _, err := storetest.PutPolicy(ctx, st, &model.Policy{ID: "p", Access: []model.AccessRight{{API: "b"}}}); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 3)
	sess, _ = s.Sessions().Lookup(ctx, auth.SumKey(secret))
	if sess.Allowed("a", []byte("GET"), []byte("/")) {
		t.Fatal("policy change not applied to session")
	}
	a2 := api("a", "/a2")
	if _, err := storetest.PutAPI(ctx, st, a2); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 4)
	if s.Snapshot().API("a").Upstream != up {
		t.Fatal("unchanged upstream rebuilt")
	}
	if s.Snapshot().Table.Match(nil, []byte("/a2")) == nil || s.Snapshot().Table.Match(nil, []byte("/a")) != nil {
		t.Fatal("api change not routed")
	}

	// Key deletion evicts exactly that session.
	if _, err := storetest.Delete(ctx, st, store.KindKey, "k"); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 5)
	if _, err := s.Sessions().Lookup(ctx, auth.SumKey(secret)); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("deleted key still works: %v", err)
	}

	// API deletion, gap, replay.
	if _, err := storetest.Delete(ctx, st, store.KindAPI, "a"); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 6)
	if len(s.Snapshot().Table.Routes()) != 0 {
		t.Fatal("deleted api still routed")
	}
	if err := s.Apply(ctx, store.Version{Version: 9}); !errors.Is(err, ErrVersionGap) {
		t.Fatalf("gap: %v", err)
	}
	if err := s.Apply(ctx, store.Version{Version: 2}); err != nil || s.Version() != 7 {
		t.Fatalf("old version: %v, version %d", err, s.Version())
	}
}

// APIs with JWT settings get a verifier: kept across changes that leave
// the settings alone (its cache stays warm), rebuilt when they change. A
// policy change evicts the sessions of token identities holding it.
func TestJWTVerifiers(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	st := store.New(r.Client(t), 0)
	p, err := jwtauth.New(jwtauth.Options{}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	s, err := New(st, Options{MaxBody: 1 << 20, JWT: p, Auth: auth.Options{CacheSize: 100, TTL: time.Minute, NegativeCacheSize: 100, NegativeTTL: time.Minute, LookupTimeout: time.Second}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	settings := func() *model.JWTAuth {
		return &model.JWTAuth{
			Algorithms: []string{"HS256"},
			Keys:       model.JWTKeys{Secret: base64.StdEncoding.EncodeToString(secret)},
			Policies:   model.JWTPolicies{Default: []string{"p"}},
		}
	}
	jwtAPI := api("j", "/j")
	jwtAPI.Auth = model.Auth{Mode: model.AuthJWT, JWT: settings()}
	either := api("e", "/e")
	either.Auth = model.Auth{Mode: model.AuthAPIKey, JWT: settings()}
	for _, a := range []*model.API{jwtAPI, either, api("k", "/k")} {
		if _, err := storetest.PutAPI(ctx, st, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := storetest.PutPolicy(ctx, st, &model.Policy{ID: "p", Access: []model.AccessRight{{API: "j", Methods: []string{"GET"}}}}); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 0)
	snap := s.Snapshot()
	v := snap.API("j").JWT
	if v == nil || snap.API("e").JWT == nil || snap.API("k").JWT != nil {
		t.Fatalf("verifiers: jwt %v, key or jwt %v, key %v", v, snap.API("e").JWT, snap.API("k").JWT)
	}

	tok := testutil.SignHMAC(t, "HS256", secret, nil, map[string]any{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	res, err := v.Verify(ctx, []byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	sess := s.Sessions().Identity(auth.Sum(res.SessionKey), res.Identity, res.Policies)
	if !sess.Allowed("j", []byte("GET"), []byte("/")) || sess.Allowed("j", []byte("POST"), []byte("/")) {
		t.Fatal("identity session does not carry the policy")
	}

	// Another API changes: the verifier stays.
	jwtAPI.Upstream.Targets = []string{"http://127.0.0.1:2"}
	if _, err := storetest.PutAPI(ctx, st, jwtAPI); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, s.Version())
	if s.Snapshot().API("j").JWT != v {
		t.Fatal("unchanged jwt settings rebuilt the verifier")
	}

	// The policy changes: the identity's session is evicted.
	if _, err := storetest.PutPolicy(ctx, st, &model.Policy{ID: "p", Access: []model.AccessRight{{API: "j"}}}); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, s.Version())
	sess2 := s.Sessions().Identity(auth.Sum(res.SessionKey), res.Identity, res.Policies)
	if sess2 == sess || !sess2.Allowed("j", []byte("POST"), []byte("/")) {
		t.Fatal("policy change did not evict the identity session")
	}

	// The settings change: a new verifier.
	jwtAPI.Auth.JWT.Leeway = model.Duration(time.Second)
	if _, err := storetest.PutAPI(ctx, st, jwtAPI); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, s.Version())
	if v2 := s.Snapshot().API("j").JWT; v2 == nil || v2 == v {
		t.Fatal("changed jwt settings kept the old verifier")
	}
}

// Without a provider an API with JWT settings is served without a
// verifier (the server answers 500 to its token callers).
func TestJWTWithoutProvider(t *testing.T) {
	t.Parallel()
	s, st, _ := newState(t)
	ctx := context.Background()
	a := api("j", "/j")
	a.Auth = model.Auth{Mode: model.AuthJWT, JWT: &model.JWTAuth{
		Algorithms: []string{"HS256"}, Keys: model.JWTKeys{Secret: base64.StdEncoding.EncodeToString(make([]byte, 32))},
		Policies: model.JWTPolicies{Default: []string{"p"}},
	}}
	if _, err := storetest.PutAPI(ctx, st, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Snapshot().API("j"); got == nil || got.JWT != nil {
		t.Fatalf("api %+v", got)
	}
}

// With Redis down, the node keeps its snapshot and its sessions, and a
// revocation it hears still applies: in a version it cannot apply (an API
// body to read) and in one past a gap (Revoke).
func TestRevocationDuringStoreOutage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		revoke func(s *State, v store.Version) error
	}{
		{"next version, unreadable api", func(s *State, v store.Version) error { return s.Apply(context.Background(), v) }},
		{"past a gap", func(s *State, v store.Version) error { v.Version++; s.Revoke(v); return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, st, r := newState(t)
			ctx := context.Background()
			if _, err := storetest.PutAPI(ctx, st, api("a", "/a")); err != nil {
				t.Fatal(err)
			}
			secret := []byte("revoked-key-0123456789")
			k := &model.Key{ID: "k", Hash: model.HashKey(secret), Access: []model.AccessRight{{API: "a"}}}
			if _, err := storetest.PutKey(ctx, st, k); err != nil {
				t.Fatal(err)
			}
			if err := s.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Sessions().Lookup(ctx, auth.SumKey(secret)); err != nil {
				t.Fatal(err)
			}
			snap := s.Snapshot()
			r.Stop()
			v := store.Version{Version: s.Version() + 1, Changes: []store.Entry{
				{Kind: store.KindAPI, Op: store.OpPut, ID: "a"},
				{Kind: store.KindKey, Op: store.OpPut, ID: "k", Hash: k.Hash},
			}}
			_ = tc.revoke(s, v) // Apply fails: the API cannot be read
			if s.Snapshot() != snap || !s.Loaded() {
				t.Fatal("snapshot lost during the outage")
			}
			if s.Sessions().Len() != 0 {
				t.Fatal("revoked key's session still cached")
			}
		})
	}
}

// Deleting an API tells OnAPIsRemoved its id, once, after the snapshot
// without it is in place; a change that keeps an API reports nothing.
func TestAPIsRemovedHook(t *testing.T) {
	t.Parallel()
	s, st, _ := newState(t)
	ctx := context.Background()
	var heard [][]string
	s.OnAPIsRemoved(func(ids []string) {
		if s.Snapshot().API(ids[0]) != nil {
			t.Errorf("hook ran while %s was still in the snapshot", ids[0])
		}
		heard = append(heard, ids)
	})
	for _, id := range []string{"a", "b"} {
		if _, err := storetest.PutAPI(ctx, st, api(id, "/"+id)); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, s, st, 0)
	if _, err := storetest.PutAPI(ctx, st, api("a", "/a2")); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 2)
	if len(heard) != 0 {
		t.Fatalf("changing an API reported removals %v", heard)
	}
	if _, err := storetest.Delete(ctx, st, store.KindAPI, "b"); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 3)
	if len(heard) != 1 || len(heard[0]) != 1 || heard[0][0] != "b" {
		t.Fatalf("heard %v, want [[b]]", heard)
	}
}
