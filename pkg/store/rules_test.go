package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// backends runs f on a single Redis and on a three-primary Redis Cluster.
func backends(t *testing.T, f func(t *testing.T, client func() redis.UniversalClient)) {
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		r := testutil.StartRedis(t)
		f(t, func() redis.UniversalClient { return r.Client(t) })
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := testutil.StartRedisCluster(t)
		f(t, func() redis.UniversalClient { return c.Client(t) })
	})
}

func apiAt(id, listen string, hosts ...string) store.Change {
	a := model.API{ID: id, ListenPath: listen, Hosts: hosts, Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthKeyless}}
	body, _ := json.Marshal(a)
	return store.Change{Kind: store.KindAPI, Op: store.OpPut, ID: id, Body: body}
}

func grantingPolicy(id string, apis ...string) store.Change {
	p := model.Policy{ID: id, Access: []model.AccessRight{}}
	for _, a := range apis {
		p.Access = append(p.Access, model.AccessRight{API: a})
	}
	body, _ := json.Marshal(p)
	return store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: id, Body: body, Refs: store.PolicyRefs(&p)}
}

func holdingKey(id string, policies ...string) store.Change {
	k := model.Key{ID: id, Hash: model.HashKey([]byte("secret-of-" + id + "-0123456789")), Policies: policies}
	body, _ := json.Marshal(k)
	return store.Change{Kind: store.KindKey, Op: store.OpPut, ID: id, Hash: k.Hash, Body: body, Refs: store.KeyRefs(&k)}
}

func apiDelete(id string) store.Change {
	return store.Change{Kind: store.KindAPI, Op: store.OpDelete, ID: id, IfUnused: true}
}

// TestCrossObjectRules: each step is one Apply on the state the steps
// before it left, with the error it must return (nil: accepted).
func TestCrossObjectRules(t *testing.T) {
	t.Parallel()
	steps := []struct {
		name    string
		changes []store.Change
		want    error
	}{
		{"first API", []store.Change{apiAt("a", "/orders/")}, nil},
		{"same listen path", []store.Change{apiAt("b", "/orders")}, store.ErrRouteTaken},
		{"same path on a host is another route", []store.Change{apiAt("b", "/orders/", "shop.example.com")}, nil},
		{"same host in another case", []store.Change{apiAt("c", "/orders/", "SHOP.example.com")}, store.ErrRouteTaken},
		{"an API keeps its own path", []store.Change{apiAt("a", "/orders/")}, nil},
		{"a longer path is no clash", []store.Change{apiAt("c", "/orders/v2/")}, nil},
		{"moving an API frees its old path", []store.Change{apiAt("a", "/sales/")}, nil},
		{"the freed path can be taken", []store.Change{apiAt("d", "/orders/")}, nil},
		{"policy granting a missing API", []store.Change{grantingPolicy("p", "a", "nope")}, store.ErrDanglingRef},
		{"policy granting stored APIs", []store.Change{grantingPolicy("p", "a", "d")}, nil},
		{"key holding a missing policy", []store.Change{holdingKey("k", "p", "nope")}, store.ErrDanglingRef},
		{"key holding a stored policy", []store.Change{holdingKey("k", "p")}, nil},
		{"deleting a granted API", []store.Change{apiDelete("d")}, store.ErrInUse},
		{"API and policy created together", []store.Change{apiAt("e", "/e/"), grantingPolicy("q", "e")}, nil},
		{"policy granting an API deleted before it in the same write", []store.Change{apiDelete("c"), grantingPolicy("r", "c")}, store.ErrDanglingRef},
		{"a clash inside one write", []store.Change{apiAt("f", "/f/"), apiAt("g", "/f/")}, store.ErrRouteTaken},
		{"API deleted after the policy granting it stops", []store.Change{grantingPolicy("p", "a"), apiDelete("d")}, nil},
		{"deleting an API frees its path", []store.Change{apiAt("h", "/orders/")}, nil},
		{"deleting a policy held by keys is allowed", []store.Change{{Kind: store.KindPolicy, Op: store.OpDelete, ID: "p"}}, nil},
		{"then the API it granted can go", []store.Change{apiDelete("a")}, nil},
	}
	backends(t, func(t *testing.T, client func() redis.UniversalClient) {
		ctx := context.Background()
		s := store.New(client(), 0)
		for _, st := range steps {
			before, _ := s.Version(ctx)
			_, err := s.Apply(ctx, st.changes...)
			if (st.want == nil) != (err == nil) || (st.want != nil && !errors.Is(err, st.want)) {
				t.Fatalf("%s: err = %v, want %v", st.name, err, st.want)
			}
			if after, _ := s.Version(ctx); err != nil && after != before {
				t.Fatalf("%s: refused write moved the version from %d to %d", st.name, before, after)
			}
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if clashes := model.ListenPathClashes(snap.APIs); len(clashes) > 0 {
			t.Fatalf("stored APIs clash: %v", clashes)
		}
	})
}

// TestRouteIndexBuiltForOlderData: APIs stored before the route index
// existed (or by other means) are indexed at the next API write, so a clash
// with them is refused too.
func TestRouteIndexBuiltForOlderData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testutil.StartRedis(t)
	rdb := r.Client(t)
	s := store.New(rdb, 0)
	if _, err := s.Apply(ctx, apiAt("a", "/a/")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"old", "old2"} { // both on /legacy/: the first in id order owns it
		c := apiAt(id, "/legacy/")
		if err := rdb.HSet(ctx, store.Layout{}.APIs(), id, c.Body).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Apply(ctx, apiAt("new", "/legacy/")); !errors.Is(err, store.ErrRouteTaken) {
		t.Fatalf("clash with an API written before the index: %v, want ErrRouteTaken", err)
	}
	if _, err := s.Apply(ctx, apiAt("new", "/new/")); err != nil {
		t.Fatal(err)
	}
	if owner, _ := rdb.HGet(ctx, store.Layout{}.Routes(), " /legacy").Result(); owner != "old" {
		t.Fatalf("/legacy owned by %q, want old", owner)
	}
}

// TestConcurrentWritersKeepTheRules: writers on their own connections race
// conflicting writes; exactly one wins each conflict and the stored state
// holds no clash and no dangling reference.
func TestConcurrentWritersKeepTheRules(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, client func() redis.UniversalClient) {
		ctx := context.Background()
		s := store.New(client(), 0)
		const writers, rounds = 8, 20
		stores := make([]*store.Store, writers)
		for i := range stores {
			stores[i] = store.New(client(), 0)
		}
		for round := range rounds {
			path := fmt.Sprintf("/r%d/", round)
			target := fmt.Sprintf("t%d", round)
			if _, err := s.Apply(ctx, apiAt(target, fmt.Sprintf("/target%d/", round))); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			results := make(chan error, 2*writers)
			for w, ws := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := ws.Apply(ctx, apiAt(fmt.Sprintf("r%d-w%d", round, w), path))
					results <- err
					if w%2 == 0 { // half delete the target, half grant it
						_, err = ws.Apply(ctx, apiDelete(target))
					} else {
						_, err = ws.Apply(ctx, grantingPolicy(fmt.Sprintf("p%d-w%d", round, w), target))
					}
					if err != nil && !errors.Is(err, store.ErrDanglingRef) && !errors.Is(err, store.ErrInUse) && !errors.Is(err, store.ErrNotFound) {
						results <- err
					}
				}()
			}
			wg.Wait()
			close(results)
			won := 0
			for err := range results {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, store.ErrRouteTaken):
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d writers created an API on %s, want exactly 1", round, won, path)
			}
		}
		snap, err := s.LoadSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if clashes := model.ListenPathClashes(snap.APIs); len(clashes) > 0 {
			t.Fatalf("stored APIs clash: %v", clashes)
		}
		apis := map[string]bool{}
		for _, a := range snap.APIs {
			apis[a.ID] = true
		}
		for _, p := range snap.Policies {
			for _, ar := range p.Access {
				if !apis[ar.API] {
					t.Fatalf("policy %s grants the missing API %s", p.ID, ar.API)
				}
			}
		}
	})
}
