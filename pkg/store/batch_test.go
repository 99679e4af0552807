package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// batch returns n API puts, n policy puts granting them and 2n key puts
// holding the policies: one declarative apply's worth of changes.
func batch(t *testing.T, n int) []store.Change {
	t.Helper()
	return batchOf(t, n, 2*n)
}

// batchOf returns n API puts, n policy puts and keys key puts.
func batchOf(t testing.TB, n, keys int) []store.Change {
	var out []store.Change
	for i := 0; i < n; i++ {
		a := model.API{ID: fmt.Sprintf("api-%04d", i), ListenPath: fmt.Sprintf("/a%04d/", i),
			Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthAPIKey}}
		body, _ := json.Marshal(&a)
		out = append(out, store.Change{Kind: store.KindAPI, Op: store.OpPut, ID: a.ID, Body: body, Create: true})
	}
	for i := 0; i < n; i++ {
		p := model.Policy{ID: fmt.Sprintf("pol-%04d", i), Access: []model.AccessRight{{API: fmt.Sprintf("api-%04d", i)}}}
		body, _ := json.Marshal(&p)
		out = append(out, store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: p.ID, Body: body, Create: true, Refs: store.PolicyRefs(&p)})
	}
	for i := 0; i < keys; i++ {
		k := model.Key{ID: fmt.Sprintf("key-%05d", i), Hash: model.HashKey([]byte(fmt.Sprintf("batch-key-value-%05d", i))),
			Policies: []string{fmt.Sprintf("pol-%04d", i%n)}}
		body, _ := json.Marshal(&k)
		out = append(out, store.Change{Kind: store.KindKey, Op: store.OpPut, ID: k.ID, Hash: k.Hash, Body: body, Create: true, Refs: store.KeyRefs(&k)})
	}
	return out
}

// TestApplyLargeBatch writes thousands of changes in one Apply, on one
// Redis and on a three-primary Redis Cluster: one version, one changelog
// entry naming every change; a batch whose last change is refused writes
// nothing.
func TestApplyLargeBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
	}{
		{"single", func(t *testing.T) redis.UniversalClient { return testutil.StartRedis(t).Client(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return testutil.StartRedisCluster(t).Client(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := store.New(tc.client(t), 0)
			changes := batch(t, 1000)

			// The last change names a missing policy: nothing is written.
			bad := append([]store.Change(nil), changes...)
			k := model.Key{ID: "key-bad", Hash: model.HashKey([]byte("batch-key-value-bad")), Policies: []string{"missing"}}
			body, _ := json.Marshal(&k)
			bad = append(bad, store.Change{Kind: store.KindKey, Op: store.OpPut, ID: k.ID, Hash: k.Hash, Body: body, Refs: store.KeyRefs(&k)})
			if _, err := s.Apply(ctx, bad...); !errors.Is(err, store.ErrDanglingRef) {
				t.Fatalf("batch with a dangling reference: %v, want ErrDanglingRef", err)
			}
			if v, err := s.Version(ctx); err != nil || v != 0 {
				t.Fatalf("refused batch left version %d, %v", v, err)
			}
			if n := s.Client().HLen(ctx, s.Layout().APIs()).Val(); n != 0 {
				t.Fatalf("refused batch left %d APIs", n)
			}

			v, err := s.Apply(ctx, changes...)
			if err != nil || v != 1 {
				t.Fatalf("Apply of %d changes = %d, %v; want version 1", len(changes), v, err)
			}
			for key, want := range map[string]int64{s.Layout().APIs(): 1000, s.Layout().Policies(): 1000, s.Layout().KeyIDs(): 2000, s.Layout().Keys(): 2000} {
				if n := s.Client().HLen(ctx, key).Val(); n != want {
					t.Errorf("%s holds %d, want %d", key, n, want)
				}
			}
			vers, err := s.ChangesSince(ctx, 0, 0)
			if err != nil || len(vers) != 1 || len(vers[0].Changes) != len(changes) {
				t.Fatalf("changelog: %d versions, %v", len(vers), err)
			}
			last := vers[0].Changes[len(changes)-1]
			if last.Kind != store.KindKey || last.ID != "key-01999" {
				t.Fatalf("last changelog entry %+v", last)
			}
		})
	}
}

// BenchmarkApplyBatch12000 measures one store.Apply of 1,000 APIs, 1,000
// policies and 10,000 keys (each key holding a policy) into an empty
// store: the atomic write a whole configuration costs.
func BenchmarkApplyBatch12000(b *testing.B) {
	ctx := context.Background()
	rdb := testutil.StartRedis(b).Client(b)
	s := store.New(rdb, 0)
	changes := batchOf(b, 1000, 10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := s.Apply(ctx, changes...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/apply")
}
