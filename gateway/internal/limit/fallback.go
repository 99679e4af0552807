package limit

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// fallback is the per-node limiter used while Redis is unreachable and an
// API fails open. It applies the same rules with the same algorithms (GCRA
// for rates, renewing counters for quotas) in memory, each scaled by
// Options.FallbackShare, and the same all-or-nothing consumption. Its
// counters start empty: a node that falls back allows up to a full share of
// every limit, whatever Redis had counted.
//
// Counters live in shards chosen by API id: every counter of one decision
// belongs to its API, so a decision takes one shard's lock, and APIs on
// other shards are decided meanwhile.
type fallback struct {
	share   float64
	maxKeys int64
	keys    atomic.Int64 // counters held across all shards
	seed    maphash.Seed
	shards  [fbShards]fbShard
}

// fbShards is the number of fallback shards.
const fbShards = 16

type fbShard struct {
	mu sync.Mutex
	// counters maps an API's counter key to a TAT (rules, Unix
	// microseconds) or to a quota count and its period end.
	counters map[fbKey]*fbCounter
}

type fbKey struct{ api, key string }

type fbCounter struct {
	v   float64 // TAT (rules) or count (quotas)
	end int64   // quotas: period end, Unix microseconds; rules: when the entry is stale
}

func newFallback(share float64, maxKeys int) *fallback {
	f := &fallback{share: share, maxKeys: int64(maxKeys), seed: maphash.MakeSeed()}
	for i := range f.shards {
		f.shards[i].counters = make(map[fbKey]*fbCounter)
	}
	return f
}

func (f *fallback) shard(api string) *fbShard {
	return &f.shards[maphash.String(f.seed, api)%fbShards]
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
	sh := f.shard(req.APIID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
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
		c := sh.counters[fbKey{req.APIID, r.Key}]
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
		c := sh.counters[fbKey{req.APIID, q.Key}]
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
			f.store(sh, fbKey{req.APIID, key}, ev[i].c, ev[i].v, ev[i].end)
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

// store records a counter's new value; sh is locked.
func (f *fallback) store(sh *fbShard, k fbKey, c *fbCounter, v float64, end int64) {
	if c != nil {
		c.v, c.end = v, end
		return
	}
	if f.keys.Load() >= f.maxKeys {
		return // full: this identity goes untracked until a sweep frees room
	}
	f.keys.Add(1)
	sh.counters[k] = &fbCounter{v: v, end: end}
}

// sweep drops counters that no longer hold anything back at now.
func (f *fallback) sweep(now int64) {
	for i := range f.shards {
		sh := &f.shards[i]
		sh.mu.Lock()
		for k, c := range sh.counters {
			if c.end <= now {
				delete(sh.counters, k)
				f.keys.Add(-1)
			}
		}
		sh.mu.Unlock()
	}
}

// forget drops the counters of api (deleted from the config).
func (f *fallback) forget(api string) {
	sh := f.shard(api)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for k := range sh.counters {
		if k.api == api {
			delete(sh.counters, k)
			f.keys.Add(-1)
		}
	}
}
