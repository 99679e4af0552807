package limit

import (
	"sync"
	"time"
)

// Quota leases. A request whose rules are all lease rules takes its quotas
// from this node's quota leases too (a quota has no mode of its own: it
// follows the request's rate limits). A quota lease is a slice of the
// remaining quota that Redis counted at once (count += g, never past max)
// for this node to spend. What the node did not spend it gives back when
// the lease expires (LeaseTTL after its last grant) or is replaced (the
// quota's max or renewal changed, or the node shuts down): the script takes
// it off the count, never below zero, and only in the period it was granted
// in (named by the counter's expiry), so a return never lends a new period
// what an old one counted. The total granted never exceeds max; a node
// that crashes loses what it held until the period ends (refusing early,
// never over).

// qlease is what one node holds of one quota.
type qlease struct {
	mu    sync.Mutex
	quota QuotaRule // the quota it was granted for (its max and renewal must match)

	held    int64
	period  int64 // the period held requests belong to: its end, Unix ms of Redis time
	end     int64 // local Unix ns: the period ends (no later than Redis's end); held is void after
	expires int64 // local Unix ns: held is given back after
	empty   int64 // local Unix ns: Redis had nothing to grant; refuse locally until then

	want      int64 // requests to ask for next (adaptive)
	last      int64 // size of the last grant
	wasted    bool  // requests given back since the last grant
	refilling bool
}

// sentQuota is a quota sent to Redis: req.Quotas[idx], asking for a lease
// of up to want requests when ql is not nil.
type sentQuota struct {
	idx  int
	want int64
	ql   *qlease
}

// localQuota is a lease quota req.Quotas[idx] that took the request from
// ql in period; rem and reset are for headers.
type localQuota struct {
	idx    int
	ql     *qlease
	period int64
	rem    int64
	reset  time.Duration
}

// quotaReturn is count requests of a quota lease given back, for the
// quota's period (its end, Unix ms).
type quotaReturn struct {
	api, key string
	n        int64
	period   int64
}

func newQlease(q QuotaRule) *qlease { return &qlease{quota: q, want: 1} }

func (ql *qlease) sameQuota(q *QuotaRule) bool {
	return ql.quota.Quota.Max == q.Quota.Max && ql.quota.Quota.Renewal == q.Quota.Renewal
}

// take spends one held request at now. It also reports what to give back
// (the lease expired unspent). ql.mu is held.
func (ql *qlease) take(now int64) (ok bool, ret quotaReturn) {
	if ql.held > 0 && now >= ql.end { // the period is over: the count is gone
		ql.held = 0
	}
	ret = ql.expire(now)
	if ql.held == 0 {
		return false, ret
	}
	ql.held--
	return true, ret
}

// expire hands back what is held once the lease expired. ql.mu is held.
func (ql *qlease) expire(now int64) quotaReturn {
	if ql.held == 0 || now <= ql.expires {
		return quotaReturn{}
	}
	return ql.giveAll()
}

// giveAll empties the lease into a return. ql.mu is held.
func (ql *qlease) giveAll() quotaReturn {
	r := quotaReturn{key: ql.quota.Key, n: ql.held, period: ql.period}
	ql.held = 0
	ql.wasted = r.n > 0 || ql.wasted
	return r
}

// add records a grant of n requests in period (ending at end, local ns).
// It adapts the next ask like a rule lease: double while everything
// granted gets spent, halve when some was given back. ql.mu is held.
func (ql *qlease) add(n, period, end, sent int64, ttl time.Duration, cap int64) {
	if ql.wasted {
		ql.want = max(ql.want/2, 1)
	} else {
		ql.want = min(ql.want*2, cap)
	}
	ql.wasted = false
	if period != ql.period {
		ql.held = 0 // an earlier period's requests: its count is gone
	}
	ql.held += max(n, 0)
	ql.last = n
	ql.period, ql.end, ql.expires = period, end, sent+int64(ttl)
}

// low reports whether a refill should start. ql.mu is held.
func (ql *qlease) low() bool {
	return !ql.refilling && ql.held*2 <= ql.last
}

// qlease returns the node's lease of quota q, made on first use or when
// q's max or renewal changed (what the old one held is given back).
func (l *Limiter) qlease(c *collector, q *QuotaRule) *qlease {
	if v, ok := c.qleases.Load(q.Key); ok {
		ql := v.(*qlease)
		if ql.sameQuota(q) { // ql.quota never changes: no lock needed
			return ql
		}
		nl := newQlease(*q)
		if c.qleases.CompareAndSwap(q.Key, ql, nl) {
			ql.mu.Lock()
			r := ql.giveAll()
			ql.mu.Unlock()
			l.giveBackQuota(c, r)
		}
		return l.qlease(c, q)
	}
	v, _ := c.qleases.LoadOrStore(q.Key, newQlease(*q))
	return v.(*qlease)
}

// giveBackQuota queues r to ride the API's next script call.
func (l *Limiter) giveBackQuota(c *collector, r quotaReturn) {
	if r.n <= 0 {
		return
	}
	r.api = c.api
	c.mu.Lock()
	c.returns = append(c.returns, r)
	c.mu.Unlock()
}

// sweepQuotaLeases gives back what expired leases hold and forgets idle
// ones; it reports whether returns are queued.
func (l *Limiter) sweepQuotaLeases(c *collector, now int64) bool {
	c.qleases.Range(func(k, v any) bool {
		ql := v.(*qlease)
		ql.mu.Lock()
		r := ql.expire(now)
		idle := ql.held == 0 && now > ql.expires && !ql.refilling
		ql.mu.Unlock()
		l.giveBackQuota(c, r)
		if idle {
			c.qleases.CompareAndDelete(k, v)
		}
		return true
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.returns) > 0
}

// flushReturns sends the API's queued returns (with whatever else is
// queued) and waits for the call.
func (l *Limiter) flushReturns(c *collector) {
	cl := l.calls.Get().(*call)
	cl.req, cl.d, cl.carrier = &Request{APIID: c.api}, new(Decision), true
	l.submit(c, cl)
	l.putCall(cl)
}

// returnAll gives back everything this node holds of quota leases.
func (l *Limiter) returnAll() {
	l.collectors.Range(func(_, v any) bool {
		c := v.(*collector)
		c.qleases.Range(func(_, v any) bool {
			ql := v.(*qlease)
			ql.mu.Lock()
			r := ql.giveAll()
			ql.mu.Unlock()
			l.giveBackQuota(c, r)
			return true
		})
		c.mu.Lock()
		n := len(c.returns)
		c.mu.Unlock()
		if n > 0 && !l.storeDown() {
			l.flushReturns(c)
		}
		return true
	})
}

// refillQuota asks Redis for a new lease of ql in the background, riding
// the API's batches like a request.
func (l *Limiter) refillQuota(c *collector, ql *qlease) {
	cl := l.calls.Get().(*call)
	cl.req = &Request{APIID: c.api, Quotas: []QuotaRule{ql.quota}}
	cl.d = new(Decision)
	cl.refill = true
	ql.mu.Lock()
	want := min(ql.want, l.opts.LeaseMax)
	ql.mu.Unlock()
	cl.sentQ = append(cl.sentQ, sentQuota{idx: 0, want: want, ql: ql})
	if !l.storeDown() {
		l.m.leaseRefills.Inc()
		l.submit(c, cl)
	}
	ql.mu.Lock()
	ql.refilling = false
	ql.mu.Unlock()
	l.putCall(cl)
	<-l.refills
}
