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

	"github.com/sluicegw/sluice/pkg/testutil"
)

// benchCheck decides requests from 32×GOMAXPROCS goroutines against a real
// Redis, each goroutine deciding the Request newReq returns for it, and
// reports Redis's CPU per decision and script calls per decision.
func benchCheck(b *testing.B, newReq func() *Request) {
	r := testutil.StartRedis(b)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), PoolSize: 16})
	b.Cleanup(func() { _ = c.Close() })
	l := newLimiter(b, c, Options{Timeout: time.Second})
	b.SetParallelism(32)
	b.ReportAllocs()
	cpu0 := scriptUsec(b, c)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := newReq()
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
	b.ReportMetric(float64(s.ScriptCalls)/float64(b.N), "calls/decision")
}

// BenchmarkCheck: a key rule, an API rule and a quota per request, keys
// spread over 1000 identities, so no two decisions of a batch are alike.
func BenchmarkCheck(b *testing.B) {
	var id atomic.Int64
	benchCheck(b, func() *Request {
		key := "k:" + strconv.FormatInt(id.Add(1)%1000, 10)
		return &Request{APIID: "bench", FailOpen: true,
			Rules:  []Rule{rule(key, 1_000_000_000, time.Hour, 0), rule("api", 1_000_000_000, time.Hour, 0)},
			Quotas: []QuotaRule{quota(key+":q", 1_000_000_000, time.Hour)},
		}
	})
}

// BenchmarkCheckHotKey: the same request from every goroutine, one identity
// (a hot key), so decisions of a batch are grouped.
func BenchmarkCheckHotKey(b *testing.B) {
	benchCheck(b, func() *Request {
		return &Request{APIID: "bench", FailOpen: true,
			Rules:  []Rule{rule("k:hot", 1_000_000_000, time.Hour, 0), rule("api", 1_000_000_000, time.Hour, 0)},
			Quotas: []QuotaRule{quota("k:hot:q", 1_000_000_000, time.Hour)},
		}
	})
}

// BenchmarkCheckLease: one hot lease-mode rule (an API-wide limit far above
// the load).
func BenchmarkCheckLease(b *testing.B) {
	benchCheck(b, func() *Request {
		return &Request{APIID: "bench", FailOpen: true, Rules: []Rule{leaseRule("api", 1_000_000_000, time.Hour, 0)}}
	})
}

// BenchmarkCheckLeaseQuota is BenchmarkCheckLease with a quota on the
// request too: the quota follows the lease rule into lease mode.
func BenchmarkCheckLeaseQuota(b *testing.B) {
	benchCheck(b, func() *Request {
		return &Request{APIID: "bench", FailOpen: true, Rules: []Rule{leaseRule("k:hot", 1_000_000_000, time.Hour, 0)},
			Quotas: []QuotaRule{quota("k:hot:q", 1_000_000_000, time.Hour)}}
	})
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

// BenchmarkLeasePace decides one request at a time on a lease rule and
// reports script calls per decision: a lease saves calls only while the
// node spends a grant within its slots (docs/limits.md, lease trade-offs).
//
//	go test -run '^$' -bench LeasePace -benchtime 1000x ./internal/limit/
func BenchmarkLeasePace(b *testing.B) {
	for _, tc := range []struct {
		name string
		per  time.Duration
	}{
		{"1e6-per-hour", time.Hour},
		{"1e6-per-second", time.Second},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := testutil.StartRedis(b)
			l := newLimiter(b, client(b, r), Options{Timeout: time.Second})
			req := &Request{APIID: "a", Rules: []Rule{leaseRule("k", 1_000_000, tc.per, 0)}}
			var d Decision
			for b.Loop() {
				l.Check(context.Background(), req, &d)
				if d.Outcome != Allowed {
					b.Fatalf("decision %+v", d)
				}
			}
			s := l.Stats()
			b.ReportMetric(float64(s.ScriptCalls)/float64(b.N), "calls/decision")
			b.ReportMetric(float64(s.LeaseDecisions)/float64(b.N), "leased/decision")
		})
	}
}

// BenchmarkSettle is the cost path of gateway-cost: a key's rule counting
// units reserves 10 per request (with a request quota beside it), and
// settles at 5 once the response is in, from 32×GOMAXPROCS goroutines
// against a real Redis. "reserve" decides only; "settle" decides and
// settles, so the difference between the two is what settling costs
// (allocations included). hot is one key (gateway-cost's), spread 1000.
// It reports script calls per request (decisions' and settlements'
// together) and per settlement.
//
//	go test -run '^$' -bench Settle -benchtime 20000x -count 3 ./internal/limit/
func BenchmarkSettle(b *testing.B) {
	for _, tc := range []struct {
		name   string
		spread bool
		settle bool
	}{{"hot/reserve", false, false}, {"hot/settle", false, true}, {"spread/reserve", true, false}, {"spread/settle", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			r := testutil.StartRedis(b)
			c := redis.NewClient(&redis.Options{Addr: r.Addr(), PoolSize: 16})
			b.Cleanup(func() { _ = c.Close() })
			l := newLimiter(b, c, Options{Timeout: time.Second})
			var id atomic.Int64
			b.SetParallelism(32)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				key := "p:bench-cost:k:hot"
				if tc.spread {
					key = "p:bench-cost:k:" + strconv.FormatInt(id.Add(1)%1000, 10)
				}
				r := rule(key, 1_000_000_000, time.Hour, 0)
				r.Cost, r.Reserve = 10, true
				req := &Request{APIID: "bench-cost", FailOpen: true, Rules: []Rule{r},
					Quotas: []QuotaRule{quota("q:"+key, 1_000_000_000, time.Hour)}}
				var d Decision
				for pb.Next() {
					req.Rules[0].Actual = 0
					l.Check(context.Background(), req, &d)
					if d.Outcome != Allowed || d.Fallback {
						b.Errorf("decision %v fallback=%v", d.Outcome, d.Fallback)
						return
					}
					if tc.settle {
						req.Rules[0].Actual = 5
						l.Settle(req, &d)
					}
				}
			})
			b.StopTimer()
			s := l.Stats()
			b.ReportMetric(float64(s.ScriptCalls+s.AdjustCalls)/float64(b.N), "calls/request")
			if s.Settles > 0 {
				b.ReportMetric(float64(s.AdjustCalls)/float64(s.Settles), "calls/settlement")
			}
		})
	}
}
