package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestStoreOnRedisCluster runs the config store against a real Redis
// Cluster of three primaries: every script and transaction touches only
// keys tagged {cfg}, so each lands in one slot. Writers on separate cluster
// clients get distinct, gapless versions.
func TestStoreOnRedisCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := testutil.StartRedisCluster(t)
	s := store.New(c.Client(t), 0)

	api := &model.API{ID: "orders", ListenPath: "/orders/", Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthKeyless}}
	if v, err := storetest.PutAPI(ctx, s, api); err != nil || v != 1 {
		t.Fatalf("PutAPI = %d, %v; want 1", v, err)
	}
	if v, err := storetest.PutPolicy(ctx, s, &model.Policy{ID: "gold"}); err != nil || v != 2 {
		t.Fatalf("PutPolicy = %d, %v; want 2", v, err)
	}
	k := &model.Key{ID: "k1", Hash: model.HashKey([]byte("secret-key-0123456789")), Policies: []string{"gold"}}
	if v, err := storetest.PutKey(ctx, s, k); err != nil || v != 3 {
		t.Fatalf("PutKey = %d, %v; want 3", v, err)
	}
	if got, err := s.KeyByHash(ctx, k.Hash); err != nil || got.ID != "k1" {
		t.Fatalf("KeyByHash = %+v, %v", got, err)
	}
	if _, err := s.Apply(ctx, store.Change{Kind: store.KindPolicy, Op: store.OpDelete, ID: "missing"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of a missing policy: %v, want ErrNotFound", err)
	}

	// Concurrent writers, each with its own cluster client.
	const writers, perWriter = 3, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := 0; w < writers; w++ {
		ws := store.New(c.Client(t), 0)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if _, err := storetest.PutPolicy(ctx, ws, &model.Policy{ID: fmt.Sprintf("p%d-%d", w, i)}); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent PutPolicy: %v", err)
	}
	const last = 3 + writers*perWriter
	vers, err := s.ChangesSince(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(vers) != last {
		t.Fatalf("changelog holds %d versions, want %d", len(vers), last)
	}
	for i, v := range vers {
		if v.Version != int64(i+1) || len(v.Changes) != 1 {
			t.Fatalf("changelog entry %d = %+v", i, v)
		}
	}
	if vers[2].Changes[0].Kind != store.KindKey || vers[2].Changes[0].Hash != k.Hash {
		t.Fatalf("version 3 = %+v, want the key", vers[2])
	}
	snap, err := s.LoadSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != last || len(snap.APIs) != 1 || len(snap.Policies) != 1+writers*perWriter {
		t.Fatalf("snapshot at %d with %d APIs, %d policies", snap.Version, len(snap.APIs), len(snap.Policies))
	}
	if v, err := storetest.Delete(ctx, s, store.KindKey, "k1"); err != nil || v != last+1 {
		t.Fatalf("Delete = %d, %v; want %d", v, err, last+1)
	}
	if _, err := s.KeyByHash(ctx, k.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted key: %v, want ErrNotFound", err)
	}
	// The audit entry is written by the same script, in the same slot: one
	// per version, the refused delete none.
	audit, _, err := s.Audit(ctx, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != last+1 || audit[0].Version != last+1 || audit[0].Changes[0].Op != store.OpDelete || audit[0].Actor != store.SystemActor {
		t.Fatalf("%d audit entries on the cluster, newest %+v; want %d", len(audit), audit[0], last+1)
	}
}
