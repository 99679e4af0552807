package limit

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestExactAcrossNodesOnRedisCluster runs three limiters, each with its own
// cluster client, against a Redis Cluster of three primaries. Two APIs whose
// counters live on different nodes are hammered at once, each with a rule,
// a quota and a lease rule: exactly the limit is accepted in exact mode,
// never more in lease mode. A script touching counters of two slots would
// fail with CROSSSLOT and show up as decisions not taken by the store.
func TestExactAcrossNodesOnRedisCluster(t *testing.T) {
	t.Parallel()
	const rateLimit, quotaMax, leaseLimit = 120, 90, 100
	const nodes, perStream, perWorker = 3, 2, 100
	c := testutil.StartRedisCluster(t)
	apis := apisOnDifferentNodes(t, c)

	type stream struct {
		name string
		req  *Request
		want int64 // exactly this many accepted; 0 for the lease stream
	}
	var streams []stream
	for _, api := range apis {
		streams = append(streams,
			stream{api + " rule", &Request{APIID: api, Rules: []Rule{rule("k:rate", rateLimit, time.Hour, 0)}}, rateLimit},
			stream{api + " quota", &Request{APIID: api, Rules: []Rule{rule("k:big", 100000, time.Hour, 0)},
				Quotas: []QuotaRule{quota("k:quota", quotaMax, time.Hour)}}, quotaMax},
			stream{api + " lease", &Request{APIID: api, Rules: []Rule{leaseRule("k:lease", leaseLimit, 24*time.Hour, 0)}}, 0},
		)
	}
	var ls []*Limiter
	for i := 0; i < nodes; i++ {
		ls = append(ls, newLimiter(t, c.Client(t), Options{Timeout: 2 * time.Second}))
	}
	accepted := make([]atomic.Int64, len(streams))
	var other atomic.Int64
	var wg sync.WaitGroup
	for _, l := range ls {
		for s := range streams {
			for w := 0; w < perStream; w++ {
				wg.Add(1)
				go func(l *Limiter, s int) {
					defer wg.Done()
					var d Decision
					for i := 0; i < perWorker; i++ {
						l.Check(context.Background(), streams[s].req, &d)
						switch {
						case d.Fallback || d.Outcome == Unavailable:
							other.Add(1)
						case d.Outcome == Allowed:
							accepted[s].Add(1)
						}
					}
				}(l, s)
			}
		}
	}
	wg.Wait()
	if other.Load() != 0 {
		t.Fatalf("%d decisions not taken by the store or a lease", other.Load())
	}
	for s, st := range streams {
		got := accepted[s].Load()
		switch {
		case st.want > 0 && got != st.want:
			t.Errorf("%s: accepted %d, want exactly %d", st.name, got, st.want)
		case st.want == 0 && (got > leaseLimit+1 || got < leaseLimit/2):
			t.Errorf("%s: accepted %d, want at most %d and most of it", st.name, got, leaseLimit+1)
		default:
			t.Logf("%s: accepted %d", st.name, got)
		}
	}
}

// apisOnDifferentNodes returns two API ids whose counters (hash tag
// {api:<id>}) are served by different primaries of the cluster.
func apisOnDifferentNodes(t *testing.T, c *testutil.RedisCluster) []string {
	t.Helper()
	first := "orders"
	node := c.NodeFor(t, store.Layout{}.CounterPrefix(first)+"k")
	for i := 0; i < 100; i++ {
		id := "billing" + strconv.Itoa(i)
		if n := c.NodeFor(t, store.Layout{}.CounterPrefix(id)+"k"); n != node {
			t.Logf("API %s on %s, API %s on %s", first, node, id, n)
			return []string{first, id}
		}
	}
	t.Fatal("no API id found on another node than " + node)
	return nil
}

// TestNamespacedLimitsOnRedisCluster runs the limit script for two
// environments (namespaces) on one Redis Cluster of three primaries, with the
// same API, key and counter names and different quotas: each is held to its
// own, every decision is the script's (a namespace inside the hash tag's
// reach would split a call over slots and fail with CROSSSLOT), and the
// counters carry the namespace.
func TestNamespacedLimitsOnRedisCluster(t *testing.T) {
	t.Parallel()
	c := testutil.StartRedisCluster(t)
	envs := []struct {
		ns    string
		quota int64
	}{{"staging", 5}, {"production", 3}}
	const workers, perWorker = 4, 5
	for _, env := range envs {
		l := newLimiter(t, c.Client(t), Options{Timeout: 2 * time.Second, Layout: store.NewLayout(env.ns)})
		req := &Request{APIID: "orders", Rules: []Rule{rule("k:rate", 100000, time.Hour, 0)},
			Quotas: []QuotaRule{quota("k:quota", env.quota, time.Hour)}}
		var accepted, other atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
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
			}()
		}
		wg.Wait()
		if n := other.Load(); n != 0 {
			t.Fatalf("%s: %d decisions not taken by the store", env.ns, n)
		}
		if got := accepted.Load(); got != env.quota {
			t.Errorf("%s: accepted %d, want exactly its quota %d", env.ns, got, env.quota)
		}
	}
	rdb := c.Client(t)
	for _, env := range envs {
		key := store.NewLayout(env.ns).CounterPrefix("orders") + "k:quota"
		if !strings.HasPrefix(key, env.ns+":{api:orders}:") {
			t.Fatalf("counter key %q: want the namespace outside the hash tag", key)
		}
		n, err := rdb.Get(context.Background(), key).Int64()
		if err != nil || n != env.quota {
			t.Errorf("%s: counter %s = %d (%v), want %d", env.ns, key, n, err, env.quota)
		}
	}
	if n, err := rdb.Exists(context.Background(), store.Layout{}.CounterPrefix("orders")+"k:quota").Result(); err != nil || n != 0 {
		t.Errorf("default namespace counter exists (%d, %v): a limiter ignored its namespace", n, err)
	}
}
