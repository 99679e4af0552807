package limit

import (
	"fmt"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// bound is far above Options.Timeout: it only proves Check does not hang.
const bound = 2 * time.Second

func timedCheck(t *testing.T, l *Limiter, req *Request) Decision {
	t.Helper()
	start := time.Now()
	d := check(l, req)
	if el := time.Since(start); el > bound {
		t.Fatalf("check took %v while the store was unreachable", el)
	}
	return d
}

func TestStoreDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cut  func(*testutil.Redis)
		mend func(*testutil.Redis)
		// A call that timed out against a paused Redis still runs when it
		// resumes: it counts against the limit (never for it).
		minLeft int64
	}{
		{"stopped", (*testutil.Redis).Stop, (*testutil.Redis).Start, 1},
		{"paused", (*testutil.Redis).Pause, (*testutil.Redis).Resume, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := testutil.StartRedis(t)
			l := newLimiter(t, client(t, r), Options{Timeout: 30 * time.Millisecond, StoreRetry: 50 * time.Millisecond})
			open := &Request{APIID: "a", Rules: []Rule{rule("k", 3, time.Hour, 0)}, FailOpen: true}
			closed := &Request{APIID: "b", Rules: []Rule{rule("k", 3, time.Hour, 0)}}
			if d := check(l, open); d.Outcome != Allowed || d.Fallback {
				t.Fatalf("before the cut: %+v", d)
			}
			tc.cut(r)
			t.Cleanup(func() { r.Resume() })

			// Fail open: served by the fallback, which applies the same rule.
			allowed := 0
			for i := 0; i < 6; i++ {
				d := timedCheck(t, l, open)
				if !d.Fallback {
					t.Fatalf("open request %d: not decided by the fallback: %+v", i, d)
				}
				if d.Outcome == Allowed {
					allowed++
				}
			}
			if allowed != 3 {
				t.Fatalf("fallback allowed %d of 6, want the rule's 3", allowed)
			}
			// Fail closed: unavailable, with a retry-after.
			for i := 0; i < 3; i++ {
				d := timedCheck(t, l, closed)
				if d.Outcome != Unavailable || d.RetryAfter <= 0 || d.Fallback {
					t.Fatalf("closed request %d: %+v, want unavailable", i, d)
				}
			}
			if n := promtest.ToFloat64(l.m.storeErrors); n < 1 {
				t.Fatalf("store errors metric %v, want at least 1", n)
			}
			if n := promtest.ToFloat64(l.m.decisions.WithLabelValues(open.APIID, "allowed", "none", "fallback")); n != 3 {
				t.Fatalf("fallback allowed metric %v, want 3", n)
			}

			tc.mend(r)
			testutil.WaitFor(t, 5*time.Second, func() error {
				d := timedCheck(t, l, closed)
				if d.Outcome == Unavailable || d.Fallback {
					return fmt.Errorf("not recovered: %v fallback=%v", d.Outcome, d.Fallback)
				}
				return nil
			})
			// Redis kept its count from before the cut (1 of 3 used).
			d := timedCheck(t, l, open)
			if d.Outcome != Allowed || d.Fallback || d.Remaining > 1 || d.Remaining < tc.minLeft {
				t.Fatalf("after recovery: %v fallback=%v remaining %d, want allowed by the store with %d-1 left",
					d.Outcome, d.Fallback, d.Remaining, tc.minLeft)
			}
		})
	}
}

func TestFallbackShare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		share float64
		rate  int64
		quota int64
		want  int
	}{
		{1, 10, 100, 10},
		{0.5, 10, 100, 5},
		{0.5, 100, 4, 2},
		{0.01, 10, 100, 1}, // never below one request
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.share, tc.rate, tc.quota), func(t *testing.T) {
			t.Parallel()
			f := newFallback(tc.share, 100)
			req := &Request{APIID: "a", Rules: []Rule{rule("r", tc.rate, time.Hour, 0)},
				Quotas: []QuotaRule{quota("q", tc.quota, time.Hour)}, FailOpen: true}
			now := time.Now().UnixMicro()
			allowed := 0
			for i := 0; i < 200; i++ {
				var d Decision
				f.decide(req, &d, now)
				if d.Outcome == Allowed {
					allowed++
				}
			}
			if allowed != tc.want {
				t.Fatalf("allowed %d, want %d", allowed, tc.want)
			}
		})
	}
}
