package limit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// settleUnit is a rule's T in microseconds in the settlement tests: whole,
// so a TAT moved by whole units stays an exact integer.
const settleUnit = int64(time.Second / time.Microsecond)

// reservingRule is a rule counting units at one per settleUnit, with a
// burst no test exhausts, reserving 100 per request.
func reservingRule(key string) Rule {
	r := rule(key, 1000, 1000*time.Second, 10_000_000)
	r.Cost, r.Reserve = 100, true
	return r
}

// reservingQuota is a quota no test exhausts, reserving 100 per request.
func reservingQuota(key string) QuotaRule {
	q := quota(key, 1_000_000_000, time.Hour)
	q.Cost, q.Reserve = 100, true
	return q
}

// TestConcurrentSettlementsSumExactly: three nodes decide and settle at
// once (3 nodes x 2 APIs x 5 keys x 2 workers, 40 requests each), every
// request reserving 100 units of a rule and a quota of its API, of its
// key's own (scope key) and of its org, and settling at a cost from 0 (a
// failed request) to 259 (more than reserved). Every counter in Redis then
// equals exactly what its requests settled at: each quota's count the sum
// of the costs, each rule's TAT its start plus the sum of the costs' worth.
// A settlement lost or applied twice shows as a difference. On one Redis
// every settlement goes in one script call; on Redis Cluster in one per
// slot (the key's, the org's and the API's on three primaries).
func TestConcurrentSettlementsSumExactly(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"single", "cluster"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			b := newOrgBackend(t, backend)
			lay := store.Layout{}
			ctx := context.Background()

			// counters and what they must end at: each rule's TAT starts
			// well ahead of now, so it only moves by what is settled
			type counter struct {
				key  string
				rule bool
				sum  int64
			}
			var mu sync.Mutex
			counters := map[string]*counter{}
			now, err := b.rdb.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			start := now.Add(time.Hour).UnixMicro()
			add := func(key string, rule bool) {
				counters[key] = &counter{key: key, rule: rule}
				if rule {
					if err := b.rdb.Set(ctx, key, start, 0).Err(); err != nil {
						t.Fatal(err)
					}
				}
			}
			add(lay.OrgCounterPrefix(b.org)+"o:"+b.org, true)
			add(lay.OrgCounterPrefix(b.org)+"q:o:"+b.org, false)
			for _, api := range b.apis {
				add(lay.CounterPrefix(api)+"units", true)
				add(lay.CounterPrefix(api)+"q:units", false)
			}
			for _, k := range b.keys {
				add(lay.KeyCounterPrefix(k)+"k:"+k, true)
				add(lay.KeyCounterPrefix(k)+"q:k:"+k, false)
			}
			request := func(api, key string) *Request {
				kr, kq := reservingRule("k:"+key), reservingQuota("q:k:"+key)
				kr.KeyScope, kq.KeyScope = key, key
				or, oq := reservingRule("o:"+b.org), reservingQuota("q:o:"+b.org)
				or.OrgScope, oq.OrgScope = b.org, b.org
				return &Request{APIID: api, Rules: []Rule{reservingRule("units"), kr, or},
					Quotas: []QuotaRule{reservingQuota("q:units"), kq, oq}}
			}

			const workers, each = 2, 40
			var wg sync.WaitGroup
			for n, l := range b.ls {
				for _, api := range b.apis {
					for _, key := range b.keys {
						for w := 0; w < workers; w++ {
							wg.Add(1)
							go func(l *Limiter, api, key string, seed int) {
								defer wg.Done()
								req := request(api, key)
								var d Decision
								for i := 0; i < each; i++ {
									l.Check(ctx, req, &d)
									if d.Outcome != Allowed || d.Fallback {
										t.Errorf("decision %v %s fallback=%v", d.Outcome, d.Reason, d.Fallback)
										return
									}
									actual := int64((seed*31 + i*17) % 260)
									for j := range req.Rules {
										req.Rules[j].Actual = actual
									}
									for j := range req.Quotas {
										req.Quotas[j].Actual = actual
									}
									l.Settle(req, &d)
									mu.Lock()
									for _, r := range req.Rules {
										counters[counterName(lay, api, r.KeyScope, r.OrgScope, r.Key)].sum += actual
									}
									for _, q := range req.Quotas {
										counters[counterName(lay, api, q.KeyScope, q.OrgScope, q.Key)].sum += actual
									}
									mu.Unlock()
								}
							}(l, api, key, n*1000+len(key)*w+int(key[0])+len(api)*7+w)
						}
					}
				}
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			for _, c := range counters {
				got := b.counter(t, c.key)
				want := c.sum
				if c.rule {
					want = start + c.sum*settleUnit
				}
				if got != want {
					t.Errorf("%s: %d, want %d (off by %d units)", c.key, got, want, (got-want)/max(1, map[bool]int64{true: settleUnit, false: 1}[c.rule]))
				}
			}
			s := b.ls[0].Stats()
			t.Logf("node 0: %d settlements, %d adjust calls", s.Settles, s.AdjustCalls)
		})
	}
}

// counterName is the Redis key of a counter of api, or of a key's or an
// org's own.
func counterName(lay store.Layout, api, keyScope, orgScope, key string) string {
	switch {
	case orgScope != "":
		return lay.OrgCounterPrefix(orgScope) + key
	case keyScope != "":
		return lay.KeyCounterPrefix(keyScope) + key
	}
	return lay.CounterPrefix(api) + key
}

// TestShutdownFlushesSettlements: settlements queued or in flight when
// the limiter shuts down (Redis paused under them) are applied before
// Shutdown returns.
func TestShutdownFlushesSettlements(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := New(rdb, Options{Timeout: 20 * time.Second}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 20
	reqs := make([]*Request, n)
	ds := make([]Decision, n)
	for i := range reqs {
		reqs[i] = &Request{APIID: "a", Quotas: []QuotaRule{reservingQuota("q")}}
		if l.Check(context.Background(), reqs[i], &ds[i]); ds[i].Outcome != Allowed || ds[i].Fallback {
			t.Fatalf("decision %d: %+v", i, ds[i])
		}
		reqs[i].Quotas[0].Actual = 7
	}
	r.Pause()
	t.Cleanup(r.Resume)
	for i := range reqs {
		go l.Settle(reqs[i], &ds[i])
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if p := l.adj.pend.Load(); p != n {
			return fmt.Errorf("%d settlements pending", p)
		}
		return nil
	})
	pendingAtReturn := make(chan int64, 1)
	go func() {
		if err := l.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		pendingAtReturn <- l.adj.pend.Load()
	}()
	testutil.WaitFor(t, 5*time.Second, func() error {
		select {
		case <-l.stop:
			return nil
		default:
			return errors.New("shutdown not started")
		}
	})
	r.Resume()
	if p := <-pendingAtReturn; p != 0 {
		t.Fatalf("Shutdown returned with %d settlements pending", p)
	}
	if got, err := rdb.Get(context.Background(), store.Layout{}.CounterPrefix("a")+"q").Int64(); err != nil || got != 7*n {
		t.Fatalf("quota counts %d (%v) after %d settlements at 7, want %d", got, err, n, 7*n)
	}
}
