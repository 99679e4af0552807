package limit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// keyOnOtherSlots returns a key hash whose counters (store.Layout.KeyCounterPrefix)
// are on another primary than every API's of apis.
func keyOnOtherSlots(t *testing.T, c *testutil.RedisCluster, apis []string) string {
	t.Helper()
	for i := 0; i < 200; i++ {
		h := model.HashKey([]byte(fmt.Sprintf("secret-%d", i)))
		n := c.NodeFor(t, (store.Layout{}).KeyCounterPrefix(h)+"q")
		ok := true
		for _, a := range apis {
			ok = ok && c.NodeFor(t, (store.Layout{}).CounterPrefix(a)+"k") != n
		}
		if ok {
			return h
		}
	}
	t.Fatal("no key found on a node of its own")
	return ""
}

// TestKeyScopeAcrossAPIs: one key calls three APIs from three nodes at
// once; its quota has scope key (1000): exactly 1000 are accepted in
// total, on a single Redis (one script per decision) and on a Redis
// Cluster of three primaries with the key's counters on another primary
// than the APIs' (a decision split per slot). Each API also has a rule
// that never refuses, so every decision has a part in both slots. Then a
// fourth API refuses most requests with its own rule after the key's part
// allowed them: what those consumed of the key's quota is given back, so
// the key's quota still admits exactly its max.
func TestKeyScopeAcrossAPIs(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"single", "cluster"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var clients []redis.UniversalClient
			var apis []string
			hash := model.HashKey([]byte("one key"))
			switch backend {
			case "single":
				r := testutil.StartRedis(t)
				for i := 0; i < 3; i++ {
					rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: -1})
					t.Cleanup(func() { _ = rdb.Close() })
					clients = append(clients, rdb)
				}
				apis = []string{"a", "b", "c"}
			default:
				c := testutil.StartRedisCluster(t)
				for i := 0; i < 3; i++ {
					clients = append(clients, c.Client(t))
				}
				apis = apisOnDifferentNodes(t, c)
				for i := 0; len(apis) < 3; i++ { // a third API beside the first: the key gets the third primary
					if id := fmt.Sprintf("third%d", i); c.NodeFor(t, (store.Layout{}).CounterPrefix(id)+"k") == c.NodeFor(t, (store.Layout{}).CounterPrefix(apis[0])+"k") {
						apis = append(apis, id)
					}
				}
				hash = keyOnOtherSlots(t, c, apis)
			}
			var ls []*Limiter
			for _, rdb := range clients {
				ls = append(ls, newLimiter(t, rdb, Options{Timeout: 2 * time.Second}))
			}
			const max, perWorker = 1000, 100
			q := quota("q:k:"+hash, max, time.Hour)
			q.KeyScope = hash
			var accepted, other atomic.Int64
			var wg sync.WaitGroup
			for _, l := range ls {
				for _, api := range apis {
					for w := 0; w < 2; w++ { // 3 nodes x 3 APIs x 2 workers x 100 = 1800 decisions
						wg.Add(1)
						go func(l *Limiter, api string) {
							defer wg.Done()
							req := &Request{APIID: api, Rules: []Rule{rule("api", 1000000, time.Hour, 0)}, Quotas: []QuotaRule{q}}
							var d Decision
							for i := 0; i < perWorker; i++ {
								l.Check(context.Background(), req, &d)
								switch {
								case d.Fallback || d.Outcome == Unavailable:
									other.Add(1)
								case d.Outcome == Allowed:
									accepted.Add(1)
								}
							}
						}(l, api)
					}
				}
			}
			wg.Wait()
			if other.Load() != 0 {
				t.Fatalf("%d decisions not taken by the store", other.Load())
			}
			if got := accepted.Load(); got != max {
				t.Fatalf("accepted %d across three APIs, want exactly %d", got, max)
			}

			// refunds: a second key, 50 across APIs; API "tight" admits 10
			hash2 := model.HashKey([]byte("another key"))
			q2 := quota("q:k:"+hash2, 50, time.Hour)
			q2.KeyScope = hash2
			tight := &Request{APIID: "tight", Rules: []Rule{rule("api", 10, time.Hour, 0)}, Quotas: []QuotaRule{q2}}
			loose := &Request{APIID: apis[0], Rules: []Rule{rule("api2", 1000000, time.Hour, 0)}, Quotas: []QuotaRule{q2}}
			n := 0
			for i := 0; i < 100; i++ {
				if d := check(ls[i%3], tight); d.Outcome == Allowed {
					n++
				} else if d.Outcome != Limited || d.Reason != ReasonRate {
					t.Fatalf("tight API: %v %s", d.Outcome, d.Reason)
				}
			}
			if n != 10 {
				t.Fatalf("tight API admitted %d, want 10", n)
			}
			n = 0
			for i := 0; i < 60; i++ {
				if check(ls[i%3], loose).Outcome == Allowed {
					n++
				}
			}
			if n != 40 {
				t.Fatalf("after 10 on the tight API the key's quota admitted %d more, want 40 (refused requests must give back)", n)
			}
			if backend == "cluster" {
				var refunds uint64
				for _, l := range ls {
					refunds += l.Stats().Refunds
				}
				t.Logf("refunds sent: %d", refunds)
				if refunds < 90 {
					t.Errorf("refunds %d, want one per refused request of the tight API (90)", refunds)
				}
			}
		})
	}
}
