package limit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// quotaCount is the quota counter in Redis (0 when absent).
func quotaCount(t *testing.T, rdb *redis.Client, api, key string) int64 {
	t.Helper()
	n, err := rdb.Get(context.Background(), store.Layout{}.CounterPrefix(api)+key).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatalf("quota counter: %v", err)
	}
	return n
}

// heldQuota waits until no refill of a node's quota lease is in flight and
// returns what it holds.
func heldQuota(t *testing.T, l *Limiter, api, key string) int64 {
	t.Helper()
	c, ok := l.collectors.Load(api)
	if !ok {
		return 0
	}
	v, ok := c.(*collector).qleases.Load(key)
	if !ok {
		return 0
	}
	ql := v.(*qlease)
	var held int64
	testutil.WaitFor(t, 2*time.Second, func() error {
		ql.mu.Lock()
		defer ql.mu.Unlock()
		if ql.refilling {
			return fmt.Errorf("refill in flight")
		}
		held = ql.held
		return nil
	})
	return held
}

// TestQuotaLeaseAcrossNodes runs three limiters with a lease rule and a
// quota on one key from many goroutines: never more than the quota, most
// of it, and far fewer script calls than decisions.
func TestQuotaLeaseAcrossNodes(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	const max, nodes, workers, perWorker = 600, 3, 8, 60
	var ls []*Limiter
	for i := 0; i < nodes; i++ {
		c := redis.NewClient(&redis.Options{Addr: r.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		ls = append(ls, newLimiter(t, c, Options{Timeout: 2 * time.Second}))
	}
	req := &Request{APIID: "shared", Rules: []Rule{leaseRule("k:hot", 1_000_000, time.Hour, 0)},
		Quotas: []QuotaRule{quota("k:hot:q", max, time.Hour)}}
	var accepted, limited, other atomic.Int64
	var wg sync.WaitGroup
	for n := 0; n < nodes; n++ {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(l *Limiter) {
				defer wg.Done()
				var d Decision
				for i := 0; i < perWorker; i++ {
					l.Check(context.Background(), req, &d)
					switch {
					case d.Fallback || d.Outcome == Unavailable:
						other.Add(1)
					case d.Outcome == Allowed:
						accepted.Add(1)
					case d.Reason != ReasonQuota:
						t.Errorf("limited by %q, want quota", d.Reason)
					default:
						limited.Add(1)
					}
				}
			}(ls[n])
		}
	}
	wg.Wait()
	if other.Load() != 0 {
		t.Fatalf("%d decisions not taken by the store or a lease", other.Load())
	}
	if accepted.Load() > max {
		t.Fatalf("accepted %d, more than the quota %d", accepted.Load(), max)
	}
	if accepted.Load() < max*3/4 {
		t.Fatalf("accepted %d, want at least 75%% of the quota %d (limited %d)", accepted.Load(), max, limited.Load())
	}
	var calls uint64
	var held int64
	for _, l := range ls {
		calls += l.Stats().ScriptCalls
		held += heldQuota(t, l, "shared", "k:hot:q")
	}
	const decisions = nodes * workers * perWorker
	// Exact mode batches about 4 of these decisions per call; leases far more.
	if calls*15 > decisions {
		t.Fatalf("%d script calls for %d decisions, want fewer than %d", calls, decisions, decisions/15)
	}
	if got := quotaCount(t, r.Client(t), "shared", "k:hot:q"); got > max || got < accepted.Load() {
		t.Fatalf("quota counter %d, want between the %d accepted and the max %d", got, accepted.Load(), max)
	}
	t.Logf("accepted %d of %d, limited %d; %d script calls for %d decisions; %d held", accepted.Load(), max,
		limited.Load(), calls, decisions, held)
}

// TestQuotaLeaseReturn: what a node leased and did not spend goes back to
// Redis when its lease expires, and other nodes can then spend it.
func TestQuotaLeaseReturn(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	rdb := r.Client(t)
	a := newLimiter(t, client(t, r), Options{LeaseTTL: 300 * time.Millisecond, LeaseFraction: 1, LeaseMax: 1000})
	b := newLimiter(t, client(t, r), Options{})
	lr := leaseRule("k", 1_000_000, time.Hour, 0)
	req := &Request{APIID: "a", Rules: []Rule{lr}, Quotas: []QuotaRule{quota("q", 100, time.Hour)}}
	const spent = 6
	for i := 0; i < spent; i++ {
		if d := check(a, req); d.Outcome != Allowed {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	held := heldQuota(t, a, "a", "q")
	if held == 0 {
		t.Fatalf("node holds no quota lease")
	}
	if got := quotaCount(t, rdb, "a", "q"); got != spent+held {
		t.Fatalf("quota counter %d, want %d spent + %d held", got, spent, held)
	}
	// The lease expires; the sweep gives back what it held.
	testutil.WaitFor(t, 5*time.Second, func() error {
		if got := quotaCount(t, rdb, "a", "q"); got != spent {
			return fmt.Errorf("quota counter %d, want %d (what was spent)", got, spent)
		}
		return nil
	})
	// Another node, exact, can spend the whole rest.
	exact := &Request{APIID: "a", Quotas: []QuotaRule{quota("q", 100, time.Hour)}}
	for i := 0; i < 100-spent; i++ {
		if d := check(b, exact); d.Outcome != Allowed {
			t.Fatalf("after the return, exact request %d: %+v", i, d)
		}
	}
	if d := check(b, exact); d.Outcome != Limited || d.Reason != ReasonQuota {
		t.Fatalf("past the quota: %+v", d)
	}
}

// TestQuotaLeaseReturnSamePeriodOnly: a node that gives back a lease after
// its quota period renewed does not lower the new period's count.
func TestQuotaLeaseReturnSamePeriodOnly(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	rdb := r.Client(t)
	a, err := New(client(t, r), Options{LeaseTTL: time.Hour, LeaseFraction: 1, LeaseMax: 1000}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b := newLimiter(t, client(t, r), Options{})
	req := &Request{APIID: "a", Rules: []Rule{leaseRule("k", 1_000_000, time.Hour, 0)},
		Quotas: []QuotaRule{quota("q", 100, 300*time.Millisecond)}}
	for i := 0; i < 4; i++ {
		if d := check(a, req); d.Outcome != Allowed {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	if heldQuota(t, a, "a", "q") == 0 {
		t.Fatalf("node holds no quota lease")
	}
	testutil.WaitFor(t, 3*time.Second, func() error {
		if n := quotaCount(t, rdb, "a", "q"); n != 0 {
			return fmt.Errorf("period still running: count %d", n)
		}
		return nil
	})
	exact := &Request{APIID: "a", Quotas: []QuotaRule{quota("q", 100, 300*time.Millisecond)}}
	for i := 0; i < 3; i++ {
		if d := check(b, exact); d.Outcome != Allowed {
			t.Fatalf("new period, request %d: %+v", i, d)
		}
	}
	if err := a.Shutdown(context.Background()); err != nil { // gives back what a held
		t.Fatal(err)
	}
	if got := quotaCount(t, rdb, "a", "q"); got != 3 {
		t.Fatalf("new period's count %d after an old period's return, want 3", got)
	}
}

// TestQuotaLeaseShutdownReturns: a node that shuts down gives back what it
// held.
func TestQuotaLeaseShutdownReturns(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	rdb := r.Client(t)
	a, err := New(client(t, r), Options{LeaseTTL: time.Hour, LeaseFraction: 1, LeaseMax: 1000}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{APIID: "a", Rules: []Rule{leaseRule("k", 1_000_000, time.Hour, 0)},
		Quotas: []QuotaRule{quota("q", 1000, time.Hour)}}
	for i := 0; i < 10; i++ {
		if d := check(a, req); d.Outcome != Allowed {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	if heldQuota(t, a, "a", "q") == 0 {
		t.Fatalf("node holds no quota lease")
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := quotaCount(t, rdb, "a", "q"); got != 10 {
		t.Fatalf("quota counter %d after shutdown, want the 10 spent", got)
	}
}
