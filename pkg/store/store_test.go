package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func newStore(t *testing.T, changelogLen int64) *store.Store {
	t.Helper()
	r := testutil.StartRedis(t)
	return store.New(r.Client(t), changelogLen)
}

func TestApplyBumpsVersionAndLogsChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	api := &model.API{ID: "orders", ListenPath: "/orders/", Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthKeyless}}
	v1, err := storetest.PutAPI(ctx, s, api)
	if err != nil || v1 != 1 {
		t.Fatalf("PutAPI = %d, %v; want 1", v1, err)
	}
	k := &model.Key{ID: "k1", Hash: model.HashKey([]byte("secret-key-0123456789")), Policies: []string{"p"}}
	if v, err := storetest.PutKey(ctx, s, k); err != nil || v != 2 {
		t.Fatalf("PutKey = %d, %v; want 2", v, err)
	}
	got, err := s.KeyByHash(ctx, k.Hash)
	if err != nil || got.ID != "k1" {
		t.Fatalf("KeyByHash = %+v, %v", got, err)
	}
	// Rotation: same id, new hash; the old hash stops working.
	old := k.Hash
	k.Hash = model.HashKey([]byte("another-secret-0123456789"))
	if _, err := storetest.PutKey(ctx, s, k); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByHash(ctx, old); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old hash after rotation: %v, want ErrNotFound", err)
	}
	vers, err := s.ChangesSince(ctx, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(vers) != 2 || vers[1].Version != 3 || vers[1].Changes[0].OldHash != old || vers[1].Changes[0].Hash != k.Hash {
		t.Fatalf("changes since 1 = %+v", vers)
	}
	if _, err := storetest.Delete(ctx, s, store.KindKey, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KeyByHash(ctx, k.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted key: %v, want ErrNotFound", err)
	}
	snap, err := s.LoadSnapshot(ctx)
	if err != nil || snap.Version != 4 || len(snap.APIs) != 1 {
		t.Fatalf("snapshot = %+v, %v", snap, err)
	}
}

func TestApplyIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	p := &model.Policy{ID: "gold"}
	if _, err := storetest.PutPolicy(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	_, err := s.Apply(ctx,
		store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: "silver", Body: []byte(`{"id":"silver"}`)},
		store.Change{Kind: store.KindPolicy, Op: store.OpDelete, ID: "missing"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if _, _, err := s.GetRaw(ctx, store.KindPolicy, "silver"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half-written change: silver exists (%v)", err)
	}
	if v, _ := s.Version(ctx); v != 1 {
		t.Fatalf("version = %d after failed write, want 1", v)
	}
	_, etag, err := s.GetRaw(ctx, store.KindPolicy, "gold")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: "gold", Body: []byte(`{"id":"gold","name":"x"}`), IfMatch: `"0000"`}); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("stale If-Match: %v, want ErrPrecondition", err)
	}
	if _, err := s.Apply(ctx, store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: "gold", Body: []byte(`{"id":"gold","name":"x"}`), IfMatch: etag}); err != nil {
		t.Fatalf("matching If-Match: %v", err)
	}
	if _, err := s.Apply(ctx, store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: "gold", Body: []byte(`{}`), Create: true}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("create over existing: %v, want ErrExists", err)
	}
}

func TestChangelogGapAfterTrim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 5)
	for i := 0; i < 20; i++ {
		if _, err := storetest.PutPolicy(ctx, s, &model.Policy{ID: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ChangesSince(ctx, 3, 0); !errors.Is(err, store.ErrChangelogGap) {
		t.Fatalf("err = %v, want ErrChangelogGap", err)
	}
	vers, err := s.ChangesSince(ctx, 17, 0)
	if err != nil || len(vers) != 3 || vers[0].Version != 18 {
		t.Fatalf("ChangesSince(17) = %+v, %v", vers, err)
	}
	if vers, err := s.ChangesSince(ctx, 20, 0); err != nil || len(vers) != 0 {
		t.Fatalf("ChangesSince(current) = %+v, %v", vers, err)
	}
}

func TestDataSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testutil.StartRedis(t)
	s := store.New(r.Client(t), 0)
	if _, err := storetest.PutPolicy(ctx, s, &model.Policy{ID: "p"}); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if _, err := s.Version(ctx); err == nil {
		t.Fatal("Version succeeded with Redis stopped")
	}
	r.Start()
	testutil.WaitFor(t, testutilTimeout, func() error {
		v, err := s.Version(ctx)
		if err == nil && v != 1 {
			t.Fatalf("version after restart = %d, want 1", v)
		}
		return err
	})
}

// A reader following the changelog while writes land must never be told the
// changelog was trimmed when it was not.
func TestChangesSinceDuringWritesIsNeverAGap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, 0)
	const writes = 300
	done := make(chan error, 1)
	go func() {
		for i := 0; i < writes; i++ {
			if _, err := storetest.PutPolicy(ctx, s, &model.Policy{ID: "p"}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var applied int64
	for writing := true; writing || applied < writes; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			writing = false
		default:
		}
		vers, err := s.ChangesSince(ctx, applied, 0)
		if err != nil {
			t.Fatalf("ChangesSince(%d) during writes: %v", applied, err)
		}
		if len(vers) > 0 {
			applied = vers[len(vers)-1].Version
		}
	}
}
