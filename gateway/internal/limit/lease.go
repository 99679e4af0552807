package limit

import (
	"math"
	"sync"
	"time"
)

// lease is what one node holds of one lease-mode rule: requests Redis
// granted it ahead of time (check.lua consumed them there), to spend
// locally.
//
// Each granted request keeps the GCRA slot Redis gave it: the j-th request
// of a grant made at Redis time now with TAT tat0 was counted as arriving
// when the TAT was tat0+(j-1)T. Spent no later than that, it is exactly the
// request Redis counted, so spending it keeps the rule's GCRA guarantee; a
// request whose slot has passed is dropped unspent (it stays consumed:
// dropping only ever refuses early). Deadlines are taken on the local clock
// from the moment the script call was sent, which is before Redis read its
// clock, so they are never later than the true ones. The whole lease is
// also forgotten LeaseTTL after its last grant.
type lease struct {
	mu   sync.Mutex
	rule Rule // the rule it was granted for (its limit must match)
	t    int64

	segs    [4]leaseSeg // held requests, earliest deadlines first
	nseg    int
	expires int64 // local Unix ns: everything held is forgotten after
	full    int64 // local Unix ns: when the rule's burst is whole again, as of the last grant
	empty   int64 // local Unix ns: Redis had nothing to grant until then; refuse locally

	want      int64 // requests to ask for next (adaptive)
	last      int64 // size of the last grant
	wasted    bool  // requests dropped unspent since the last grant
	refilling bool  // a background refill is queued or in flight
}

// leaseSeg is n requests with deadlines first, first+t, first+2t, ...
type leaseSeg struct {
	n     int64
	first int64
}

func newLease(r Rule) *lease {
	return &lease{rule: r, t: period(r), want: 1}
}

// period is T, the time one request takes from the allowance, in ns.
func period(r Rule) int64 {
	return max(r.Limit.Per.D().Nanoseconds()/max(r.Limit.Rate, 1), 1)
}

// sameLimit reports whether the lease was granted under r's limit.
func (ls *lease) sameLimit(r *Rule) bool {
	a, b := &ls.rule.Limit, &r.Limit
	return a.Rate == b.Rate && a.Per == b.Per && a.EffectiveBurst() == b.EffectiveBurst()
}

// forget drops everything held; l.mu is held.
func (ls *lease) forget() {
	for i := 0; i < ls.nseg; i++ {
		if ls.segs[i].n > 0 {
			ls.wasted = true
		}
	}
	ls.nseg = 0
}

// prune drops requests whose deadline passed; ls.mu is held.
func (ls *lease) prune(now int64) {
	if now > ls.expires {
		ls.forget()
		return
	}
	drop := 0
	for drop < ls.nseg {
		s := &ls.segs[drop]
		if now > s.first {
			skip := (now - s.first + ls.t - 1) / ls.t
			if skip > 0 {
				ls.wasted = true
			}
			s.n -= skip
			s.first += skip * ls.t
		}
		if s.n > 0 {
			break
		}
		drop++
	}
	if drop > 0 {
		copy(ls.segs[:], ls.segs[drop:ls.nseg])
		ls.nseg -= drop
	}
}

// take spends one held request at now; it returns the request's deadline
// (for give) or false when nothing is held. ls.mu is held.
func (ls *lease) take(now int64) (int64, bool) {
	ls.prune(now)
	if ls.nseg == 0 {
		return 0, false
	}
	s := &ls.segs[0]
	dl := s.first
	s.n--
	s.first += ls.t
	if s.n == 0 {
		copy(ls.segs[:], ls.segs[1:ls.nseg])
		ls.nseg--
	}
	return dl, true
}

// give puts back a request taken with deadline dl whose decision was
// refused. ls.mu is held.
func (ls *lease) give(dl int64) {
	if ls.nseg > 0 && ls.segs[0].first-ls.t == dl {
		ls.segs[0].n++
		ls.segs[0].first = dl
		return
	}
	if ls.nseg == len(ls.segs) {
		return // no room: forgetting it only refuses early
	}
	copy(ls.segs[1:], ls.segs[:ls.nseg])
	ls.segs[0] = leaseSeg{n: 1, first: dl}
	ls.nseg++
}

// held is the number of requests held (some may pass their deadline
// before they are spent). ls.mu is held.
func (ls *lease) held() int64 {
	var n int64
	for i := 0; i < ls.nseg; i++ {
		n += ls.segs[i].n
	}
	return n
}

// add records a grant of n requests: the first one's deadline is first;
// sent is when the script call was sent, reset the time from it until the
// burst is whole again. It adapts the next ask: double while everything
// granted gets spent, halve when requests were dropped unspent. ls.mu is
// held.
func (ls *lease) add(n, first, sent int64, reset time.Duration, ttl time.Duration, cap int64) {
	if ls.wasted {
		ls.want = max(ls.want/2, 1)
	} else {
		ls.want = min(ls.want*2, cap)
	}
	ls.wasted = false
	ls.last = n
	ls.expires = sent + int64(ttl)
	ls.full = sent + int64(reset)
	if n <= 0 {
		return
	}
	if ls.nseg == len(ls.segs) {
		copy(ls.segs[:], ls.segs[1:])
		ls.nseg--
	}
	ls.segs[ls.nseg] = leaseSeg{n: n, first: first}
	ls.nseg++
}

// low reports whether what is held has fallen to the low-water mark (half
// the last grant) so a refill should start. ls.mu is held.
func (ls *lease) low() bool {
	return !ls.refilling && ls.held()*2 <= ls.last
}

// leaseCap is the most one lease of r may grant: LeaseMax, and what r
// refills in LeaseTTL (at least 1).
func (l *Limiter) leaseCap(r *Rule) int64 {
	perTTL := float64(r.Limit.Rate) * float64(l.opts.LeaseTTL) / float64(r.Limit.Per.D())
	return max(min(l.opts.LeaseMax, int64(math.Min(perTTL, math.MaxInt32))), 1)
}

// lease returns the node's lease of rule r of API c, made on first use or
// when r's limit changed.
func (c *collector) lease(r *Rule) *lease {
	if v, ok := c.leases.Load(r.Key); ok {
		ls := v.(*lease)
		if ls.sameLimit(r) { // ls.rule never changes: no lock needed
			return ls
		}
		// The limit changed: what was granted under the old one is
		// forgotten (it stays consumed in Redis).
		nl := newLease(*r)
		c.leases.Store(r.Key, nl)
		return nl
	}
	v, _ := c.leases.LoadOrStore(r.Key, newLease(*r))
	return v.(*lease)
}

// sweepLeases forgets leases that hold nothing and expired before now.
func (c *collector) sweepLeases(now int64) {
	c.leases.Range(func(k, v any) bool {
		ls := v.(*lease)
		ls.mu.Lock()
		idle := now > ls.expires && !ls.refilling
		ls.mu.Unlock()
		if idle {
			c.leases.CompareAndDelete(k, v)
		}
		return true
	})
}
