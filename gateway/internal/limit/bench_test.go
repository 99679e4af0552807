package limit

import (
	"context"
	"strconv"
	"strings"
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
	cpu0 := scriptUsec(b, c)
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
	reportRedisCPU(b, c, cpu0)
	s := l.Stats()
	if s.ScriptCalls > 0 {
		b.ReportMetric(float64(s.ScriptDecisions)/float64(s.ScriptCalls), "decisions/call")
		b.ReportMetric(float64(s.ScriptCalls)/float64(s.ScriptDecisions), "calls/decision")
	}
}

// BenchmarkCheckHotKey decides requests from parallel goroutines against
// a real Redis, all for one identity (a hot key): a key rule, an API rule
// and a quota per request, every decision the same.
func BenchmarkCheckHotKey(b *testing.B) {
	r := testutil.StartRedis(b)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), PoolSize: 16})
	b.Cleanup(func() { _ = c.Close() })
	l := newLimiter(b, c, Options{Timeout: time.Second})
	b.SetParallelism(32)
	b.ReportAllocs()
	cpu0 := scriptUsec(b, c)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := &Request{APIID: "bench", FailOpen: true,
			Rules: []Rule{
				rule("k:hot", 1_000_000_000, time.Hour, 0),
				rule("api", 1_000_000_000, time.Hour, 0),
			},
			Quotas: []QuotaRule{quota("k:hot:q", 1_000_000_000, time.Hour)},
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
	reportRedisCPU(b, c, cpu0)
	s := l.Stats()
	if s.ScriptCalls > 0 {
		b.ReportMetric(float64(s.ScriptDecisions)/float64(s.ScriptCalls), "decisions/call")
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
	cpu0 := scriptUsec(b, c)
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
	reportRedisCPU(b, c, cpu0)
	s := l.Stats()
	b.ReportMetric(float64(s.ScriptCalls)/float64(b.N), "calls/decision")
}

// BenchmarkCheckLeaseQuota is BenchmarkCheckLease with a quota on the
// request too: the quota follows the lease rule into lease mode.
func BenchmarkCheckLeaseQuota(b *testing.B) {
	r := testutil.StartRedis(b)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), PoolSize: 16})
	b.Cleanup(func() { _ = c.Close() })
	l := newLimiter(b, c, Options{Timeout: time.Second})
	lr := rule("k:hot", 1_000_000_000, time.Hour, 0)
	lr.Limit.Mode = model.LimitLease
	b.SetParallelism(32)
	b.ReportAllocs()
	cpu0 := scriptUsec(b, c)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := &Request{APIID: "bench", FailOpen: true, Rules: []Rule{lr},
			Quotas: []QuotaRule{quota("k:hot:q", 1_000_000_000, time.Hour)}}
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
	reportRedisCPU(b, c, cpu0)
	b.ReportMetric(float64(l.Stats().ScriptCalls)/float64(b.N), "calls/decision")
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

// scriptUsec is the CPU time Redis spent in script calls so far (INFO
// commandstats: EVALSHA and EVAL), in microseconds.
func scriptUsec(b *testing.B, c *redis.Client) int64 {
	b.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatalf("info commandstats: %v", err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
			continue
		}
		for _, f := range strings.Split(strings.TrimSpace(line[strings.IndexByte(line, ':')+1:]), ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				total += n
			}
		}
	}
	return total
}

// reportRedisCPU reports Redis's own CPU time in scripts per decision
// since since (from scriptUsec): the cost the limit puts on Redis.
func reportRedisCPU(b *testing.B, c *redis.Client, since int64) {
	b.Helper()
	b.ReportMetric(float64(scriptUsec(b, c)-since)/float64(b.N), "redis-us/decision")
}
