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

// orgBackend is three limiters (nodes) on one Redis or on a three-primary
// Redis Cluster, with two APIs, five key hashes and an org id; on the
// cluster the org's counters are on a primary no API's and no key's
// counters are on (the decision is split key → org → API).
type orgBackend struct {
	ls      []*Limiter
	rdb     redis.UniversalClient
	apis    []string
	keys    []string
	org     string
	cluster bool
}

func newOrgBackend(t *testing.T, backend string) *orgBackend {
	t.Helper()
	b := &orgBackend{}
	var clients []redis.UniversalClient
	lay := store.Layout{}
	switch backend {
	case "single":
		r := testutil.StartRedis(t)
		for i := 0; i < 4; i++ {
			rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: -1})
			t.Cleanup(func() { _ = rdb.Close() })
			clients = append(clients, rdb)
		}
		b.apis, b.org = []string{"a", "b"}, "acme"
		for i := 0; len(b.keys) < 5; i++ {
			b.keys = append(b.keys, model.HashKey([]byte(fmt.Sprintf("key-%d", i))))
		}
	default:
		c := testutil.StartRedisCluster(t)
		for i := 0; i < 4; i++ {
			clients = append(clients, c.Client(t))
		}
		b.cluster = true
		for i := 0; b.org == ""; i++ {
			b.org = fmt.Sprintf("org%d", i)
			on := c.NodeFor(t, lay.OrgCounterPrefix(b.org)+"q")
			for j := 0; len(b.apis) < 2 && j < 200; j++ {
				if id := fmt.Sprintf("api%d", j); c.NodeFor(t, lay.CounterPrefix(id)+"k") != on {
					b.apis = append(b.apis, id)
				}
			}
			for j := 0; len(b.keys) < 5 && j < 200; j++ {
				if h := model.HashKey([]byte(fmt.Sprintf("key-%d", j))); c.NodeFor(t, lay.KeyCounterPrefix(h)+"q") != on {
					b.keys = append(b.keys, h)
				}
			}
			t.Logf("org %s on %s", b.org, on)
		}
	}
	b.rdb = clients[3]
	for _, rdb := range clients[:3] {
		b.ls = append(b.ls, newLimiter(t, rdb, Options{Timeout: 2 * time.Second}))
	}
	return b
}

// request is one key's request on an API: the API's rule (never refuses
// unless apiRate is small), the key's own quota with scope key, and the
// org's rule and quota.
func (b *orgBackend) request(api, key string, apiRate int64, orgRule *Rule, orgQuota *QuotaRule) *Request {
	kq := quota("q:k:"+key, 1000000, time.Hour)
	kq.KeyScope = key
	req := &Request{APIID: api, Rules: []Rule{rule("api", apiRate, time.Hour, 0)}, Quotas: []QuotaRule{kq}}
	if orgRule != nil {
		req.Rules = append(req.Rules, *orgRule)
	}
	if orgQuota != nil {
		req.Quotas = append(req.Quotas, *orgQuota)
	}
	return req
}

func orgRule(org string, rate int64) *Rule {
	r := rule("o:"+org, rate, time.Hour, 0)
	r.OrgScope = org
	return &r
}

func orgQuota(org string, max int64) *QuotaRule {
	q := quota("q:o:"+org, max, time.Hour)
	q.OrgScope = org
	return &q
}

// hammer runs every (node, api, key) combination's requests at once,
// perWorker each, and returns how many were allowed.
func (b *orgBackend) hammer(t *testing.T, perWorker int, mk func(api, key string) *Request) int64 {
	t.Helper()
	var accepted, other atomic.Int64
	var wg sync.WaitGroup
	for _, l := range b.ls {
		for _, api := range b.apis {
			for _, key := range b.keys {
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
						}
					}
				}(l, mk(api, key))
			}
		}
	}
	wg.Wait()
	if other.Load() != 0 {
		t.Fatalf("%d decisions not taken by the store", other.Load())
	}
	return accepted.Load()
}

// counter reads a counter's value (0 when absent).
func (b *orgBackend) counter(t *testing.T, key string) int64 {
	t.Helper()
	n, err := b.rdb.Get(context.Background(), key).Int64()
	if err != nil && err != redis.Nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return n
}

// TestOrgLimitsAcrossKeysAndAPIs: an org of five keys calls two APIs
// from three nodes at once (3 x 2 x 5 workers); every decision also has
// the key's own scope-key quota and the API's rule, so on Redis Cluster
// it has a part on three slots, the org's on a primary of its own. The
// org's quota admits exactly its max in total, the org's rate limit
// exactly its burst. Then refusals: a request the org refuses leaves the
// keys' counters as they were, and one an API refuses after the key's and
// the org's parts allowed it gives both back (org quota 10 on a fresh org:
// 5 on an API admitting 5, then exactly 5 more elsewhere; the counters in
// Redis equal what was admitted).
func TestOrgLimitsAcrossKeysAndAPIs(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"single", "cluster"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			b := newOrgBackend(t, backend)
			lay := store.Layout{}

			// quota: 3 nodes x 2 APIs x 5 keys x 40 = 1200 decisions against 500
			oq := orgQuota(b.org, 500)
			if got := b.hammer(t, 40, func(api, key string) *Request { return b.request(api, key, 1000000, nil, oq) }); got != 500 {
				t.Fatalf("org quota 500: admitted %d across five keys, two APIs, three nodes", got)
			}
			if n := b.counter(t, lay.OrgCounterPrefix(b.org)+oq.Key); n != 500 {
				t.Fatalf("org quota counter %d after admitting 500", n)
			}
			var keysum int64
			for _, k := range b.keys {
				keysum += b.counter(t, lay.KeyCounterPrefix(k)+"q:k:"+k)
			}
			if keysum != 500 {
				t.Fatalf("keys' own quotas counted %d in total, want 500: a request the org refused consumed from them", keysum)
			}

			// rate: a second org, burst 300, no refill within the test
			org2 := b.org + "-r"
			if b.cluster {
				org2 = b.org // the org's slot is the one kept apart from keys and APIs
			}
			or := orgRule(org2, 300)
			if got := b.hammer(t, 20, func(api, key string) *Request { return b.request(api, key, 1000000, or, nil) }); got != 300 {
				t.Fatalf("org rate 300/h: admitted %d", got)
			}

			// an API refusing after the key's and the org's parts allowed
			oq3 := orgQuota(org2, 10) // a new counter of the same org slot
			oq3.Key = "q:o:" + org2 + ":refunds"
			tight := b.request("tight", b.keys[0], 5, nil, oq3)
			tight.Quotas[0].Key = "q:k:tight"
			n := 0
			for i := 0; i < 40; i++ {
				d := check(b.ls[i%3], tight)
				if d.Outcome == Allowed {
					n++
				} else if d.Outcome != Limited || d.Reason != ReasonRate {
					t.Fatalf("tight API: %v %s", d.Outcome, d.Reason)
				}
			}
			if n != 5 {
				t.Fatalf("tight API admitted %d, want 5", n)
			}
			if c := b.counter(t, lay.OrgCounterPrefix(org2)+oq3.Key); c != 5 {
				t.Fatalf("org quota counted %d after 5 admitted and 35 refused by the API, want 5", c)
			}
			if c := b.counter(t, lay.KeyCounterPrefix(b.keys[0])+"q:k:tight"); c != 5 {
				t.Fatalf("key quota counted %d after 5 admitted and 35 refused by the API, want 5", c)
			}
			n = 0
			for i := 0; i < 30; i++ {
				if check(b.ls[i%3], b.request(b.apis[i%2], b.keys[i%5], 1000000, nil, oq3)).Outcome == Allowed {
					n++
				}
			}
			if n != 5 {
				t.Fatalf("after 5 on the tight API the org quota admitted %d more, want 5 (refused requests must give back)", n)
			}
		})
	}
}

// TestQuotaUnitsReserveThenSettle: a quota counting units reserves 100
// per request and settles at the actual cost: less gives the rest back,
// more counts the excess, a failed request gives all back; on one Redis
// and on Redis Cluster with the quota an org's (another slot than the
// API's).
func TestQuotaUnitsReserveThenSettle(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"single", "cluster"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			b := newOrgBackend(t, backend)
			l := b.ls[0]
			q := orgQuota(b.org, 1000)
			q.Quota.Units = &model.Units{From: model.UnitsResponseHeader, Header: "X-Cost", Reserve: 100}
			q.Cost, q.Reserve = 100, true
			key := store.Layout{}.OrgCounterPrefix(b.org) + q.Key
			prev := int64(0)
			for _, step := range []struct {
				actual, want int64
			}{{30, 30}, {150, 180}, {SettleFailed, 180}, {100, 280}} {
				req := &Request{APIID: b.apis[0], Rules: []Rule{rule("api", 1000000, time.Hour, 0)}, Quotas: []QuotaRule{*q}}
				d := check(l, req)
				if d.Outcome != Allowed {
					t.Fatalf("refused: %v %s", d.Outcome, d.Reason)
				}
				if d.Policy != q.Name || d.Limit != 1000 || d.Remaining != 1000-prev-100 {
					t.Fatalf("reported %s %d remaining %d, want the quota in units: %s 1000 remaining %d", d.Policy, d.Limit, d.Remaining, q.Name, 1000-prev-100)
				}
				prev = step.want
				req.Quotas[0].Actual = step.actual
				l.Settle(req, &d)
				if got := b.counter(t, key); got != step.want {
					t.Fatalf("settled at %d: quota counts %d units, want %d", step.actual, got, step.want)
				}
			}
			// 720 left: seven reservations of 100 fit, the eighth is refused
			n := 0
			for i := 0; i < 10; i++ {
				if check(l, &Request{APIID: b.apis[0], Quotas: []QuotaRule{*q}}).Outcome == Allowed {
					n++
				}
			}
			if n != 7 {
				t.Fatalf("admitted %d reservations of 100 with 720 units left, want 7", n)
			}
		})
	}
}
