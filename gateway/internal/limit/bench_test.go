package limit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// BenchmarkCheck decides requests from parallel goroutines against a real
// Redis: a key rule, an API rule and a quota per request, keys spread over
// 1000 identities. It reports the mean decisions per script call.
func BenchmarkCheck(b *testing.B) {
	r := testutil.StartRedis(b)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), PoolSize: 16})
	b.Cleanup(func() { _ = c.Close() })
	l := newLimiter(b, c, Options{Timeout: time.Second})
	var id atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := id.Add(1)
		key := "k:" + strconv.FormatInt(n%1000, 10)
		req := &Request{APIID: "bench", FailOpen: true,
			Rules: []Rule{
				rule(key, 1_000_000_000, time.Hour, 0),
				rule("api", 1_000_000_000, time.Hour, 0),
			},
			Quotas: []QuotaRule{quota(key+":q", 1_000_000_000, time.Hour)},
		}
		var d Decision
		for pb.Next() {
			l.Check(context.Background(), req, &d)
			if d.Outcome != Allowed || d.Fallback {
				b.Errorf("decision %v fallback=%v", d.Outcome, d.Fallback)
				return
			}
		}
	})
	b.StopTimer()
	s := l.Stats()
	if s.ScriptCalls > 0 {
		b.ReportMetric(float64(s.ScriptDecisions)/float64(s.ScriptCalls), "decisions/call")
		b.ReportMetric(float64(s.ScriptCalls)/float64(s.ScriptDecisions), "calls/decision")
	}
}

// BenchmarkCheckLease decides requests from parallel goroutines against a
// real Redis on one hot lease-mode rule (an API-wide limit far above the
// load). It reports script calls per decision.
func BenchmarkCheckLease(b *testing.B) {
	r := testutil.StartRedis(b)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), PoolSize: 16})
	b.Cleanup(func() { _ = c.Close() })
	l := newLimiter(b, c, Options{Timeout: time.Second})
	lr := rule("api", 1_000_000_000, time.Hour, 0)
	lr.Limit.Mode = model.LimitLease
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := &Request{APIID: "bench", FailOpen: true, Rules: []Rule{lr}}
		var d Decision
		for pb.Next() {
			l.Check(context.Background(), req, &d)
			if d.Outcome != Allowed || d.Fallback {
				b.Errorf("decision %v fallback=%v", d.Outcome, d.Fallback)
				return
			}
		}
	})
	b.StopTimer()
	s := l.Stats()
	b.ReportMetric(float64(s.ScriptCalls)/float64(b.N), "calls/decision")
}

// BenchmarkCheckNoLimits is the cost of a request without limits.
func BenchmarkCheckNoLimits(b *testing.B) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	b.Cleanup(func() { _ = c.Close() })
	l, err := New(c, Options{}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	req := &Request{APIID: "a"}
	var d Decision
	b.ReportAllocs()
	for b.Loop() {
		l.Check(context.Background(), req, &d)
	}
}
