package limit

import (
	"math"
	"sync"
	"time"
)

// fallback is the per-node limiter used while Redis is unreachable and an
// API fails open. It applies the same rules with the same algorithms (GCRA
// for rates, renewing counters for quotas) in memory, each scaled by
// Options.FallbackShare, and the same all-or-nothing consumption. Its
// counters start empty: a node that falls back allows up to a full share of
// every limit, whatever Redis had counted.
type fallback struct {
	share   float64
	maxKeys int

	mu sync.Mutex
	// counters maps API id + "\x00" + counter key to a TAT (rules, Unix
	// microseconds) or to a quota count and its period end.
	counters map[string]*fbCounter
}

type fbCounter struct {
	v   float64 // TAT (rules) or count (quotas)
	end int64   // quotas: period end, Unix microseconds; rules: when the entry is stale
}

func newFallback(share float64, maxKeys int) *fallback {
	return &fallback{share: share, maxKeys: maxKeys, counters: make(map[string]*fbCounter)}
}

// fbEval is one limit's evaluation before consumption.
type fbEval struct {
	c   *fbCounter
	v   float64
	end int64
	ok  bool
}

// decide fills d for req at now (Unix microseconds).
func (f *fallback) decide(req *Request, d *Decision, now int64) {
	var evals [16]fbEval
	n := len(req.Rules) + len(req.Quotas)
	ev := evals[:0]
	if n > len(evals) {
		ev = make([]fbEval, 0, n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	allowed, reason := true, ""
	best, bestRem, bestReset, retry := -1, int64(0), int64(0), int64(0)
	consider := func(i int, rem, reset int64) {
		if best < 0 || rem < bestRem || (rem == bestRem && reset > bestReset) {
			best, bestRem, bestReset = i, rem, reset
		}
	}
	fnow := float64(now)
	for i := range req.Rules {
		r := &req.Rules[i]
		rate := math.Max(float64(r.Limit.Rate)*f.share, 1e-9)
		burst := math.Max(math.Floor(float64(r.Limit.EffectiveBurst())*f.share), 1)
		T := float64(r.Limit.Per.D().Microseconds()) / rate
		c := f.counter(req.APIID, r.Key)
		tat := fnow
		if c != nil && c.v > tat {
			tat = c.v
		}
		newTAT := tat + T
		allowAt := newTAT - T*burst
		e := fbEval{c: c, v: newTAT, end: int64(math.Ceil(newTAT)), ok: fnow >= allowAt}
		ev = append(ev, e)
		var rem, reset, wait int64
		if e.ok {
			rem, reset = int64((fnow-allowAt)/T), int64(newTAT-fnow)
		} else {
			reset, wait = int64(tat-fnow), int64(math.Ceil(allowAt-fnow))
			if r.Limit.Shadow {
				d.ShadowLimited = true
			} else {
				allowed, reason = false, ReasonRate
			}
		}
		if !r.Limit.Shadow {
			retry = max(retry, wait)
			consider(i, rem, reset)
		}
	}
	for j := range req.Quotas {
		q := &req.Quotas[j]
		limit := int64(math.Max(math.Floor(float64(q.Quota.Max)*f.share), 1))
		c := f.counter(req.APIID, q.Key)
		count, end := 0.0, now+q.Quota.Renewal.D().Microseconds()
		if c != nil && c.end > now {
			count, end = c.v, c.end
		}
		e := fbEval{c: c, v: count + 1, end: end, ok: count+1 <= float64(limit)}
		ev = append(ev, e)
		rem := limit - int64(count) - 1
		if !e.ok {
			allowed, reason, rem = false, ReasonQuota, 0
			retry = max(retry, end-now)
		}
		consider(len(req.Rules)+j, rem, end-now)
	}
	if allowed {
		retry = 0
		for i := range ev {
			if !ev[i].ok {
				continue
			}
			var key string
			if i < len(req.Rules) {
				key = req.Rules[i].Key
			} else {
				key = req.Quotas[i-len(req.Rules)].Key
			}
			f.store(req.APIID, key, ev[i].c, ev[i].v, ev[i].end)
		}
		d.Outcome = Allowed
	} else {
		d.Outcome, d.Reason = Limited, reason
	}
	d.Fallback = true
	d.RetryAfter = time.Duration(retry) * time.Microsecond
	d.setLimit(req, best, bestRem, time.Duration(bestReset)*time.Microsecond)
	if d.HasLimit && d.Remaining > bestRem {
		d.Remaining = bestRem
	}
}

func (f *fallback) counter(api, key string) *fbCounter {
	return f.counters[api+"\x00"+key]
}

func (f *fallback) store(api, key string, c *fbCounter, v float64, end int64) {
	if c != nil {
		c.v, c.end = v, end
		return
	}
	if len(f.counters) >= f.maxKeys {
		return // full: this identity goes untracked until a sweep frees room
	}
	f.counters[api+"\x00"+key] = &fbCounter{v: v, end: end}
}

// sweep drops counters that no longer hold anything back at now.
func (f *fallback) sweep(now int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, c := range f.counters {
		if c.end <= now {
			delete(f.counters, k)
		}
	}
}
