package state

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
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
	if _, err := st.PutAPI(ctx, api("a", "/a")); err != nil {
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
	if _, err := st.PutAPI(ctx, api("a", "/a")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutPolicy(ctx, &model.Policy{ID: "p", Access: []model.AccessRight{{API: "a"}}}); err != nil {
		t.Fatal(err)
	}
	secret := []byte("state-test-key-0123456789")
	if _, err := st.PutKey(ctx, &model.Key{ID: "k", Hash: model.HashKey(secret), Policies: []string{"p"}}); err != nil {
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
	if _, err := st.PutPolicy(ctx, &model.Policy{ID: "p", Access: []model.AccessRight{{API: "b"}}}); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 3)
	sess, _ = s.Sessions().Lookup(ctx, auth.SumKey(secret))
	if sess.Allowed("a", []byte("GET"), []byte("/")) {
		t.Fatal("policy change not applied to session")
	}
	a2 := api("a", "/a2")
	if _, err := st.PutAPI(ctx, a2); err != nil {
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
	if _, err := st.Delete(ctx, store.KindKey, "k"); err != nil {
		t.Fatal(err)
	}
	apply(t, s, st, 5)
	if _, err := s.Sessions().Lookup(ctx, auth.SumKey(secret)); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("deleted key still works: %v", err)
	}

	// API deletion, gap, replay.
	if _, err := st.Delete(ctx, store.KindAPI, "a"); err != nil {
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
