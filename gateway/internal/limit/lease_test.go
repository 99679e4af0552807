package limit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func leaseRule(key string, rate int64, per time.Duration, burst int64) Rule {
	r := rule(key, rate, per, burst)
	r.Limit.Mode = model.LimitLease
	return r
}

// leaseOf returns the node's lease of a rule, or nil.
func leaseOf(l *Limiter, api, key string) *lease {
	c, ok := l.collectors.Load(api)
	if !ok {
		return nil
	}
	v, ok := c.(*collector).leases.Load(key)
	if !ok {
		return nil
	}
	return v.(*lease)
}

// settled waits until no refill of the lease is in flight and returns what
// it holds.
func settled(t *testing.T, ls *lease) int64 {
	t.Helper()
	var held int64
	testutil.WaitFor(t, 2*time.Second, func() error {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		if ls.refilling {
			return fmt.Errorf("refill in flight")
		}
		ls.prune(time.Now().UnixNano())
		held = ls.held()
		return nil
	})
	return held
}

// TestLeaseAcrossNodes runs three limiters, each with its own Redis client,
// against one lease rule from many goroutines: never more than the rule
// allows over the run, and most of it.
func TestLeaseAcrossNodes(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	const burst, nodes, workers, maxPerWorker = 300, 3, 8, 200
	// 36000/h: one request every 100ms refills, on top of the burst.
	lr := leaseRule("k:hot", 36000, time.Hour, burst)
	var ls []*Limiter
	for i := 0; i < nodes; i++ {
		c := redis.NewClient(&redis.Options{Addr: r.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		ls = append(ls, newLimiter(t, c, Options{Timeout: 2 * time.Second}))
	}
	var accepted, limited, other atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for n := 0; n < nodes; n++ {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(l *Limiter) {
				defer wg.Done()
				req := &Request{APIID: "shared", Rules: []Rule{lr}}
				var d Decision
				// Every node stays busy until the rule has refused plenty.
				for i := 0; i < maxPerWorker && limited.Load() < 600; i++ {
					l.Check(context.Background(), req, &d)
					switch {
					case d.Fallback || d.Outcome == Unavailable:
						other.Add(1)
					case d.Outcome == Allowed:
						accepted.Add(1)
					default:
						limited.Add(1)
					}
				}
			}(ls[n])
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	if other.Load() != 0 {
		t.Fatalf("%d decisions not taken by the store or a lease", other.Load())
	}
	// GCRA allows the burst plus one request per 100ms of the run (plus the
	// one in progress).
	most := int64(burst) + int64(elapsed/(100*time.Millisecond)) + 1
	if accepted.Load() > most {
		t.Fatalf("accepted %d in %v, more than the rule allows (%d)", accepted.Load(), elapsed, most)
	}
	if accepted.Load() < burst*3/4 {
		t.Fatalf("accepted %d, want at least 75%% of the burst %d (limited %d)", accepted.Load(), burst, limited.Load())
	}
	var calls, local uint64
	for _, l := range ls {
		calls += l.Stats().ScriptCalls
		local += l.Stats().LeaseDecisions
	}
	var held int64
	for _, l := range ls {
		if le := leaseOf(l, "shared", "k:hot"); le != nil {
			held += settled(t, le)
		}
	}
	t.Logf("accepted %d of at most %d, limited %d; %d script calls, %d decisions from leases; %d left in leases",
		accepted.Load(), most, limited.Load(), calls, local, held)
}

// TestLeaseSavesScriptCalls decides a hot lease rule sequentially on one
// node: far fewer script calls than decisions.
func TestLeaseSavesScriptCalls(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	l := newLimiter(t, client(t, r), Options{Timeout: time.Second})
	req := &Request{APIID: "a", Rules: []Rule{leaseRule("k", 1_000_000, time.Hour, 0)}}
	const n = 1000
	for i := 0; i < n; i++ {
		if d := check(l, req); d.Outcome != Allowed || d.Fallback {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	s := l.Stats()
	if s.ScriptCalls >= n/5 {
		t.Fatalf("%d script calls for %d decisions, want fewer than %d", s.ScriptCalls, n, n/5)
	}
	if s.LeaseDecisions == 0 {
		t.Fatalf("no decision taken from a lease")
	}
	settled(t, leaseOf(l, "a", "k"))
	if n := len(l.refills); n != 0 {
		t.Fatalf("%d refill slots still taken with no refill in flight", n)
	}
	t.Logf("%d decisions: %d script calls, %d from leases", n, s.ScriptCalls, s.LeaseDecisions)
}

// TestLeaseConsumedInRedis checks that what a node leases is taken from
// the counter in Redis at once: another node deciding exactly sees it gone.
func TestLeaseConsumedInRedis(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	a := newLimiter(t, client(t, r), Options{LeaseTTL: time.Hour, LeaseFraction: 1})
	b := newLimiter(t, client(t, r), Options{})
	lr := leaseRule("k", 100, time.Hour, 0)
	req := &Request{APIID: "a", Rules: []Rule{lr}}
	for i := 0; i < 4; i++ {
		if d := check(a, req); d.Outcome != Allowed {
			t.Fatalf("request %d: %v", i, d.Outcome)
		}
	}
	held := settled(t, leaseOf(a, "a", "k"))
	if held == 0 {
		t.Fatalf("node holds no lease after 4 requests")
	}
	d := check(b, &Request{APIID: "a", Rules: []Rule{rule("k", 100, time.Hour, 0)}})
	if want := 100 - 4 - held - 1; d.Outcome != Allowed || d.Remaining != want {
		t.Fatalf("exact decision on the leased counter: %v remaining %d, want %d (4 spent, %d leased)",
			d.Outcome, d.Remaining, want, held)
	}
}

// TestLeaseExpiry: a lease is forgotten after LeaseTTL and the next
// request goes to Redis again.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	l := newLimiter(t, client(t, r), Options{LeaseTTL: 200 * time.Millisecond, LeaseFraction: 1})
	req := &Request{APIID: "a", Rules: []Rule{leaseRule("k", 100, time.Second, 0)}}
	for i := 0; i < 20; i++ {
		if d := check(l, req); d.Outcome != Allowed {
			t.Fatalf("request %d: %v", i, d.Outcome)
		}
	}
	ls := leaseOf(l, "a", "k")
	if settled(t, ls) == 0 {
		t.Fatalf("no lease held")
	}
	testutil.WaitFor(t, 3*time.Second, func() error {
		if h := settled(t, ls); h != 0 {
			return fmt.Errorf("still holding %d", h)
		}
		return nil
	})
	calls := l.Stats().ScriptCalls
	if d := check(l, req); d.Outcome != Allowed {
		t.Fatalf("after expiry: %v", d.Outcome)
	}
	if l.Stats().ScriptCalls != calls+1 {
		t.Fatalf("script calls %d after expiry, want %d: the request did not go to Redis", l.Stats().ScriptCalls, calls+1)
	}
	// An idle lease is dropped from the node's table.
	testutil.WaitFor(t, 5*time.Second, func() error {
		if leaseOf(l, "a", "k") != nil {
			return fmt.Errorf("lease still tracked")
		}
		return nil
	})
}

// TestLeaseMixedAllOrNothing: lease rules decided locally next to exact
// rules and quotas decided in Redis; a refusal gives the leased request
// back.
func TestLeaseMixedAllOrNothing(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	l := newLimiter(t, client(t, r), Options{LeaseTTL: time.Hour, LeaseFraction: 1})
	tests := []struct {
		name   string
		req    Request
		reason string
	}{
		{"exact rule", Request{Rules: []Rule{rule("narrow", 2, time.Hour, 0)}}, ReasonRate},
		{"quota", Request{Quotas: []QuotaRule{quota("q", 2, time.Hour)}}, ReasonQuota},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := "api-" + strconv.Itoa(len(tc.name))
			wide := leaseRule("wide", 1000, time.Hour, 0)
			// Fill the node's lease first with lease-only requests.
			for i := 0; i < 8; i++ {
				if d := check(l, &Request{APIID: api, Rules: []Rule{wide}}); d.Outcome != Allowed {
					t.Fatalf("lease request %d: %v", i, d.Outcome)
				}
			}
			ls := leaseOf(l, api, "wide")
			held := settled(t, ls)
			if held < 3 {
				t.Fatalf("lease holds %d, want at least 3", held)
			}
			both := &Request{APIID: api, Rules: append([]Rule{wide}, tc.req.Rules...), Quotas: tc.req.Quotas}
			for i := 0; i < 2; i++ {
				if d := check(l, both); d.Outcome != Allowed {
					t.Fatalf("mixed %d: %+v", i, d)
				}
			}
			for i := 0; i < 5; i++ {
				if d := check(l, both); d.Outcome != Limited || d.Reason != tc.reason {
					t.Fatalf("refused %d: %v %q, want limited by %s", i, d.Outcome, d.Reason, tc.reason)
				}
			}
			// Redis counted what was spent (8 + 2) and what the node
			// holds, nothing for the refused requests. One more exact
			// decision on the counter reads what is left.
			held = settled(t, ls)
			d := check(l, &Request{APIID: api, Rules: []Rule{rule("wide", 1000, time.Hour, 0)}})
			if consumed := 1000 - d.Remaining - 1; d.Outcome != Allowed || consumed != 10+held {
				t.Fatalf("counter consumed %d, want %d spent + %d held (refusals consume nothing)", consumed, 10, held)
			}
		})
	}
}

// TestLeaseStoreDown: with Redis stopped a node spends what its leases
// hold; then a fail-closed API is unavailable and a fail-open one falls
// back.
func TestLeaseStoreDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		failOpen bool
	}{
		{"fail closed", false},
		{"fail open", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := testutil.StartRedis(t)
			l := newLimiter(t, client(t, r), Options{Timeout: 30 * time.Millisecond, StoreRetry: 50 * time.Millisecond,
				LeaseTTL: time.Hour, LeaseFraction: 1})
			req := &Request{APIID: "a", Rules: []Rule{leaseRule("k", 1000, time.Hour, 0)}, FailOpen: tc.failOpen}
			for i := 0; i < 10; i++ {
				if d := check(l, req); d.Outcome != Allowed || d.Fallback {
					t.Fatalf("request %d: %+v", i, d)
				}
			}
			held := settled(t, leaseOf(l, "a", "k"))
			if held == 0 {
				t.Fatalf("no lease held")
			}
			r.Stop()
			t.Cleanup(r.Start)
			for i := int64(0); i < held; i++ {
				if d := timedCheck(t, l, req); d.Outcome != Allowed || d.Fallback {
					t.Fatalf("held request %d of %d: %+v, want allowed from the lease", i, held, d)
				}
			}
			for i := 0; i < 3; i++ {
				d := timedCheck(t, l, req)
				switch {
				case tc.failOpen && (d.Outcome != Allowed || !d.Fallback):
					t.Fatalf("after the lease, request %d: %+v, want allowed by the fallback", i, d)
				case !tc.failOpen && d.Outcome != Unavailable:
					t.Fatalf("after the lease, request %d: %+v, want unavailable", i, d)
				}
			}
		})
	}
}

// TestLeaseHeaders: a decision from a lease reports what the node still
// holds, never more than the limit.
func TestLeaseHeaders(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	l := newLimiter(t, client(t, r), Options{LeaseTTL: time.Hour, LeaseFraction: 1})
	req := &Request{APIID: "a", Rules: []Rule{leaseRule("k", 50, time.Hour, 0)}}
	for i := 0; i < 6; i++ {
		check(l, req)
	}
	ls := leaseOf(l, "a", "k")
	held := settled(t, ls)
	if held < 2 {
		t.Fatalf("lease holds %d, want at least 2", held)
	}
	d := check(l, req)
	if d.Outcome != Allowed || !d.HasLimit || d.Policy != "k" || d.Limit != 50 || d.Window != time.Hour {
		t.Fatalf("lease decision: %+v", d)
	}
	if d.Remaining != held-1 {
		t.Fatalf("remaining %d, want what the node holds: %d", d.Remaining, held-1)
	}
	if d.Reset <= 0 || d.Reset > time.Hour {
		t.Fatalf("reset %v, want within the window", d.Reset)
	}
}
