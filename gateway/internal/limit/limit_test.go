package limit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func newLimiter(t testing.TB, rdb redis.UniversalClient, opts Options) *Limiter {
	t.Helper()
	l, err := New(rdb, opts, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("new limiter: %v", err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = l.Shutdown(context.Background()) })
	return l
}

// client returns a Redis client with the small timeouts a gateway uses.
func client(t testing.TB, r *testutil.Redis) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: r.Addr(), DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 50 * time.Millisecond, WriteTimeout: 50 * time.Millisecond,
		MaxRetries: -1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func rule(key string, rate int64, per time.Duration, burst int64) Rule {
	return Rule{Key: key, Name: key, Limit: model.Limit{Rate: rate, Per: model.Duration(per), Burst: burst}}
}

func quota(key string, max int64, renewal time.Duration) QuotaRule {
	return QuotaRule{Key: key, Name: key, Quota: model.Quota{Max: max, Renewal: model.Duration(renewal)}}
}

func check(l *Limiter, req *Request) Decision {
	var d Decision
	l.Check(context.Background(), req, &d)
	return d
}

func TestCounterPrefixMatchesStore(t *testing.T) {
	t.Parallel()
	var b batch
	b.keyIdx = map[string]int{}
	b.key("orders", "", "", "api")
	if want := (store.Layout{}).CounterPrefix("orders") + "api"; b.keys[0] != want {
		t.Fatalf("key %q, want %q", b.keys[0], want)
	}
}

func TestGCRABurstAndRefill(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	l := newLimiter(t, client(t, r), Options{})
	req := &Request{APIID: "a1", Rules: []Rule{rule("k", 10, 500*time.Millisecond, 0)}, FailOpen: true}
	for i := 0; i < 10; i++ {
		d := check(l, req)
		if d.Outcome != Allowed || d.Fallback {
			t.Fatalf("request %d: %v fallback=%v, want allowed from the store", i, d.Outcome, d.Fallback)
		}
		if d.Policy != "k" || d.Limit != 10 || d.Window != 500*time.Millisecond {
			t.Fatalf("request %d: limit %q %d/%v", i, d.Policy, d.Limit, d.Window)
		}
	}
	d := check(l, req)
	if d.Outcome != Limited || d.Reason != ReasonRate || d.RetryAfter <= 0 || d.Remaining != 0 {
		t.Fatalf("11th request: %+v, want limited by rate with a retry-after", d)
	}
	// One slot refills every 50ms; the burst refills after 500ms.
	testutil.WaitFor(t, 2*time.Second, func() error {
		if d := check(l, req); d.Outcome != Allowed {
			return fmt.Errorf("still %v", d.Outcome)
		}
		return nil
	})
	// Once the whole burst has refilled, the counter expires from Redis.
	rdb := r.Client(t)
	testutil.WaitFor(t, 2*time.Second, func() error {
		tat, err := rdb.Get(context.Background(), store.Layout{}.CounterPrefix("a1")+"k").Int64()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		return fmt.Errorf("counter still held: %d, %v", tat, err)
	})
	for i := 0; i < 10; i++ {
		if d := check(l, req); d.Outcome != Allowed {
			t.Fatalf("after refill, request %d: %v", i, d.Outcome)
		}
	}
}

func TestQuotaRenewal(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	l := newLimiter(t, client(t, r), Options{})
	req := &Request{APIID: "a1", Quotas: []QuotaRule{quota("q", 3, 300*time.Millisecond)}}
	for i := 0; i < 3; i++ {
		d := check(l, req)
		if d.Outcome != Allowed || d.Remaining != int64(2-i) {
			t.Fatalf("request %d: %v remaining %d, want allowed with %d left", i, d.Outcome, d.Remaining, 2-i)
		}
		if d.Reset <= 0 || d.Reset > 300*time.Millisecond {
			t.Fatalf("request %d: reset %v, want within the renewal", i, d.Reset)
		}
	}
	d := check(l, req)
	if d.Outcome != Limited || d.Reason != ReasonQuota || d.RetryAfter <= 0 {
		t.Fatalf("4th request: %+v, want limited by quota", d)
	}
	testutil.WaitFor(t, 2*time.Second, func() error {
		if d := check(l, req); d.Outcome != Allowed {
			return fmt.Errorf("quota not renewed: %v", d.Outcome)
		}
		return nil
	})
	d = check(l, req)
	if d.Outcome != Allowed || d.Remaining != 1 {
		t.Fatalf("after renewal: %v remaining %d, want a fresh period", d.Outcome, d.Remaining)
	}
}

func TestRefusedRequestConsumesNothing(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	l := newLimiter(t, client(t, r), Options{})
	wide := rule("wide", 100, time.Hour, 0)
	tests := []struct {
		name    string
		refuser Request
		reason  string
	}{
		{"rate", Request{Rules: []Rule{rule("narrow", 1, time.Hour, 0)}}, ReasonRate},
		{"quota", Request{Quotas: []QuotaRule{quota("q", 1, time.Hour)}}, ReasonQuota},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := "api-" + tc.name
			both := &Request{APIID: api, Rules: append([]Rule{wide}, tc.refuser.Rules...), Quotas: tc.refuser.Quotas}
			if d := check(l, both); d.Outcome != Allowed {
				t.Fatalf("first: %v", d.Outcome)
			}
			for i := 0; i < 5; i++ {
				if d := check(l, both); d.Outcome != Limited || d.Reason != tc.reason {
					t.Fatalf("refused %d: %v %q, want limited by %s", i, d.Outcome, d.Reason, tc.reason)
				}
			}
			d := check(l, &Request{APIID: api, Rules: []Rule{wide}})
			if d.Outcome != Allowed || d.Remaining != 98 {
				t.Fatalf("wide rule after refusals: %v remaining %d, want 98 (only 2 consumed)", d.Outcome, d.Remaining)
			}
		})
	}
}

func TestShadowRuleReportsButNeverRefuses(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	reg := prometheus.NewRegistry()
	l, err := New(client(t, r), Options{}, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	shadow := rule("shadow", 2, time.Hour, 0)
	shadow.Limit.Shadow = true
	req := &Request{APIID: "a1", Rules: []Rule{shadow, rule("real", 100, time.Hour, 0)}}
	for i := 0; i < 6; i++ {
		d := check(l, req)
		if d.Outcome != Allowed {
			t.Fatalf("request %d refused: %+v", i, d)
		}
		if want := i >= 2; d.ShadowLimited != want {
			t.Fatalf("request %d: shadow limited %v, want %v", i, d.ShadowLimited, want)
		}
		if d.Policy != "real" {
			t.Fatalf("request %d: reported policy %q, want the enforced one", i, d.Policy)
		}
	}
	if got := promtest.ToFloat64(l.m.shadow); got != 4 {
		t.Fatalf("shadow refusals metric %v, want 4", got)
	}
}

// TestExactAcrossNodes runs three limiters, each with its own Redis client,
// against one rule from many goroutines: exactly the limit is accepted.
// With every request the same (a hot key), batches carry groups of
// identical decisions, decided in closed form.
func TestExactAcrossNodes(t *testing.T) {
	t.Parallel()
	const limit, nodes, workers, perWorker = 150, 3, 16, 20
	tests := []struct {
		name string
		req  func(w int) *Request
		// want is how many are accepted.
		want    int64
		grouped bool
	}{
		{"distinct decisions", func(w int) *Request {
			return &Request{APIID: "shared", Rules: []Rule{
				rule("k:abc", limit, time.Hour, 0),
				rule("w:"+strconv.Itoa(w), 1000, time.Hour, 0),
			}}
		}, limit, false},
		{"hot key rule", func(int) *Request {
			return &Request{APIID: "shared", Rules: []Rule{rule("k:abc", limit, time.Hour, 0), rule("api", 1000, time.Hour, 0)}}
		}, limit, true},
		{"hot key quota", func(int) *Request {
			return &Request{APIID: "shared", Rules: []Rule{rule("k:abc", 1000, time.Hour, 0)},
				Quotas: []QuotaRule{quota("k:abc:q", limit-7, time.Hour)}}
		}, limit - 7, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := testutil.StartRedis(t)
			var ls []*Limiter
			for i := 0; i < nodes; i++ {
				c := redis.NewClient(&redis.Options{Addr: r.Addr()})
				t.Cleanup(func() { _ = c.Close() })
				ls = append(ls, newLimiter(t, c, Options{Timeout: 2 * time.Second}))
			}
			var accepted, limited, other atomic.Int64
			var wg sync.WaitGroup
			for n := 0; n < nodes; n++ {
				for w := 0; w < workers; w++ {
					wg.Add(1)
					go func(l *Limiter, req *Request) {
						defer wg.Done()
						var d Decision
						for i := 0; i < perWorker; i++ {
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
					}(ls[n], tc.req(w))
				}
			}
			wg.Wait()
			if other.Load() != 0 {
				t.Fatalf("%d decisions not taken by the store", other.Load())
			}
			if accepted.Load() != tc.want {
				t.Fatalf("accepted %d, want exactly %d (limited %d)", accepted.Load(), tc.want, limited.Load())
			}
			var s Stats
			for _, l := range ls {
				ns := l.Stats()
				s.ScriptCalls += ns.ScriptCalls
				s.ScriptDecisions += ns.ScriptDecisions
				s.ScriptGroups += ns.ScriptGroups
			}
			if s.ScriptDecisions != nodes*workers*perWorker {
				t.Fatalf("decisions %d, want %d", s.ScriptDecisions, nodes*workers*perWorker)
			}
			if s.ScriptCalls >= s.ScriptDecisions {
				t.Fatalf("script calls %d for %d decisions: no batching", s.ScriptCalls, s.ScriptDecisions)
			}
			if tc.grouped && s.ScriptGroups >= s.ScriptDecisions {
				t.Fatalf("%d groups for %d identical decisions: no grouping", s.ScriptGroups, s.ScriptDecisions)
			}
			t.Logf("%d decisions in %d script calls (%.1f per call), %d groups",
				s.ScriptDecisions, s.ScriptCalls, float64(s.ScriptDecisions)/float64(s.ScriptCalls), s.ScriptGroups)
		})
	}
}

func TestNoLimitsCostNothing(t *testing.T) {
	t.Parallel()
	// No server behind this address: a Redis call would fail.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	l, err := New(c, Options{}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	d := check(l, &Request{APIID: "a"})
	if d.Outcome != Allowed || d.HasLimit || d.Fallback || l.Stats().ScriptCalls != 0 {
		t.Fatalf("empty request: %+v, calls %d", d, l.Stats().ScriptCalls)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  Options
		field string
	}{
		{"defaults", Options{}, ""},
		{"negative timeout", Options{Timeout: -1}, "timeout"},
		{"huge batch", Options{MaxBatch: 5000}, "max_batch"},
		{"share above one", Options{FallbackShare: 1.5}, "fallback_share"},
		{"negative pipelines", Options{Pipelines: -1}, "pipelines"},
		{"lease fraction above one", Options{LeaseFraction: 2}, "lease_fraction"},
		{"negative lease ttl", Options{LeaseTTL: -time.Second}, "lease_ttl"},
		{"negative lease max", Options{LeaseMax: -1}, "lease_max"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := tc.opts.Validate()
			if tc.field == "" {
				if len(errs) != 0 {
					t.Fatalf("unexpected problems: %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tc.field {
				t.Fatalf("problems %v, want one at %s", errs, tc.field)
			}
		})
	}
}

// TestCounterExpiryCoversTAT: however the writes keep or move a rule
// counter's expiry, it never expires before its TAT (an early expiry would
// forget requests and allow more than the limit).
func TestCounterExpiryCoversTAT(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	// Generous timeouts: a decision the store did not make (timed out on a
	// loaded machine) writes no counter and proves nothing here.
	slow := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = slow.Close() })
	l := newLimiter(t, slow, Options{Timeout: 5 * time.Second})
	rdb := r.Client(t)
	ctx := context.Background()
	key := store.Layout{}.CounterPrefix("a") + "k"
	req := &Request{APIID: "a", Rules: []Rule{rule("k", 400, 2*time.Second, 0)}}
	allowed := 0
	for i := 0; i < 600; i++ {
		if check(l, req).Outcome == Allowed {
			allowed++
		}
		tat, err := rdb.Get(ctx, key).Int64()
		if err != nil {
			t.Fatalf("counter: %v", err)
		}
		exp, err := rdb.Do(ctx, "PEXPIRETIME", key).Int64()
		if err != nil {
			t.Fatalf("pexpiretime: %v", err)
		}
		if exp*1000 < tat {
			t.Fatalf("decision %d: counter expires at %d ms, before its TAT %d us", i, exp, tat)
		}
	}
	if allowed < 400 {
		t.Fatalf("allowed %d, want at least the burst", allowed)
	}
}
