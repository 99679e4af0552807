package limit

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
)

// Grouping. Concurrent requests of one identity on one API (a hot key)
// queue identical decisions: the same counters under the same limits. A
// batch sends each set of identical decisions once, as a group with a
// count n, and check.lua decides the group in closed form, exactly as the
// n decisions one after the other (the first k allowed, the rest refused
// and consuming nothing). Its answer is a few numbers per group, from which
// fillDecision derives each decision's outcome, remaining, reset and
// retry-after as sequential evaluation gives them. Decisions of a batch are
// concurrent, so the order the script takes them in is any order they
// might have arrived in: groups keep the order of their first decision.
// A decision with a lease rule sent to Redis (or a lease refill) is a group
// of its own.

// batch is one script call's worth of decisions and its arguments.
type batch struct {
	calls   []*call
	groups  []group
	groupOf map[uint64]int // hash of a decision's arguments -> its group
	seed    maphash.Seed
	keys    []string
	keyIdx  map[string]int
	returns []quotaReturn
	args    []byte // ARGV[1]: little-endian doubles
	sigs    []byte // each group's decision arguments, back to back
	kb      []byte
	layout  store.Layout // names the counters
}

// group is n identical decisions: its calls, and its decision arguments
// b.sigs[from:to].
type group struct {
	calls    []*call
	from, to int
	limits   int // rules sent and quotas: the script answers 1+2*limits values
}

func newBatch(maxBatch int, l store.Layout) *batch {
	return &batch{calls: make([]*call, 0, maxBatch), groupOf: make(map[uint64]int), seed: maphash.MakeSeed(), keyIdx: make(map[string]int), layout: l}
}

// reset empties b for reuse, keeping its memory.
func (b *batch) reset() {
	clear(b.calls)
	b.calls = b.calls[:0]
	for i := range b.groups {
		clear(b.groups[i].calls)
		b.groups[i].calls = b.groups[i].calls[:0]
	}
	b.groups = b.groups[:0]
	b.returns = b.returns[:0]
}

// encode groups the calls of b and builds KEYS and ARGV (see check.lua);
// it returns how many values the script answers and how many decisions b
// holds.
func (l *Limiter) encode(b *batch) (want, decisions int) {
	b.keys, b.args, b.sigs = b.keys[:0], b.args[:0], b.sigs[:0]
	b.groups = b.groups[:0]
	clear(b.keyIdx)
	clear(b.groupOf)
	b.args = appendNum(b.args, int64(l.opts.LeaseFraction*1000))
	b.args = appendNum(b.args, int64(len(b.returns)))
	for _, r := range b.returns {
		b.args = appendNum(appendNum(appendNum(b.args, int64(b.key(r.api, "", "", r.key))), r.n), r.period)
	}
	for _, cl := range b.calls {
		if cl.carrier {
			continue
		}
		decisions++
		from := len(b.sigs)
		lone := l.appendDecision(b, cl)
		sig := b.sigs[from:]
		if !lone {
			h := maphash.Bytes(b.seed, sig)
			gi, ok := b.groupOf[h]
			if ok && bytes.Equal(b.sigs[b.groups[gi].from:b.groups[gi].to], sig) {
				b.sigs = b.sigs[:from]
				b.groups[gi].calls = append(b.groups[gi].calls, cl)
				continue
			}
			if !ok { // (a hash collision stays a group of its own)
				b.groupOf[h] = len(b.groups)
			}
		}
		b.addGroup(cl, from, len(b.sigs), len(cl.sent)+len(cl.sentQ))
	}
	b.args = appendNum(b.args, int64(len(b.groups)))
	want = 1
	for i := range b.groups {
		g := &b.groups[i]
		b.args = appendNum(b.args, int64(len(g.calls)))
		b.args = append(b.args, b.sigs[g.from:g.to]...)
		want += 1 + 2*g.limits
	}
	return want, decisions
}

// addGroup starts a group with cl, reusing the memory of an earlier one.
func (b *batch) addGroup(cl *call, from, to, limits int) {
	if len(b.groups) < cap(b.groups) {
		b.groups = b.groups[:len(b.groups)+1]
	} else {
		b.groups = append(b.groups, group{})
	}
	g := &b.groups[len(b.groups)-1]
	g.calls = append(g.calls[:0], cl)
	g.from, g.to, g.limits = from, to, limits
}

// appendDecision appends cl's decision arguments to b.sigs and reports
// whether cl must be a group of its own: it asks for a lease.
func (l *Limiter) appendDecision(b *batch, cl *call) bool {
	req := cl.req
	lone := cl.refill
	b.sig(int64(len(cl.sent)), int64(len(cl.sentQ)))
	for _, s := range cl.sent {
		r := &req.Rules[s.idx]
		shadow := int64(0)
		if r.Limit.Shadow {
			shadow = 1
		}
		lone = lone || s.ls != nil
		b.sig(int64(b.key(req.APIID, r.KeyScope, r.OrgScope, r.Key)), r.Limit.Per.D().Microseconds(),
			r.Limit.Rate, r.Limit.EffectiveBurst(), shadow, s.want, r.cost())
	}
	for _, s := range cl.sentQ {
		q := &req.Quotas[s.idx]
		lone = lone || s.ql != nil
		b.sig(int64(b.key(req.APIID, q.KeyScope, q.OrgScope, q.Key)), q.Quota.Max, q.Quota.Renewal.D().Milliseconds(), s.want, q.cost())
	}
	return lone
}

// sig appends integers to b.sigs.
func (b *batch) sig(vs ...int64) {
	for _, v := range vs {
		b.sigs = appendNum(b.sigs, v)
	}
}

// appendNum appends v as check.lua reads it: a little-endian double (exact
// up to 2^53).
func appendNum(b []byte, v int64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(v)))
}

// key returns the 1-based index in b.keys of the counter, adding it once:
// an API's counter, a key's own (scope, a key hash, set) or an org's
// (org set).
func (b *batch) key(api, scope, org, key string) int {
	b.kb = b.layout.AppendScopedCounterKey(b.kb[:0], api, scope, org, key)
	if i, ok := b.keyIdx[string(b.kb)]; ok {
		return i
	}
	s := string(b.kb)
	b.keys = append(b.keys, s)
	b.keyIdx[s] = len(b.keys)
	return len(b.keys)
}

// fillGroups decides every call of b from the script's answer res.
func (l *Limiter) fillGroups(b *batch, res []int64, sent int64) {
	now, off := res[0], 1
	for i := range b.groups {
		g := &b.groups[i]
		n := 1 + 2*g.limits
		for j, cl := range g.calls {
			if cl.d != nil {
				cl.d.at[partAPI] = now
			}
			l.fill(cl, res[off:off+n], int64(j), now, sent)
		}
		off += n
	}
}

// ruleT is a rule's T and tau in microseconds, as check.lua computes them.
func ruleT(r *Rule) (t, tau float64) {
	t = float64(r.Limit.Per.D().Microseconds()) / float64(r.Limit.Rate)
	return t, t * float64(r.Limit.EffectiveBurst())
}

// fill turns the script's answer for cl's group, r, into cl.d for the
// j-th decision of the group (0-based), and hands out the requests leased.
// now is Redis time (us); sent is when the script call was sent (local
// Unix ns).
//
// The group's first k decisions are allowed; a decision sees the counters
// after st = min(j, k) decisions were consumed. A limit that admits a
// requests at the group's start then admits a - st: it allows when a > st
// and leaves a-1-st; a rule's TAT is then the start TAT + st*T.
func (l *Limiter) fill(cl *call, r []int64, j, now, sent int64) {
	k, v := r[0], r[1:]
	if cl.refill {
		l.grant(cl, v, k, now, sent, 0)
		return
	}
	req, d := cl.req, cl.d
	st := min(j, k)
	best, bestRem, bestReset, retry := -1, int64(0), 0.0, 0.0
	consider := func(i int, rem int64, reset float64) {
		if best < 0 || rem < bestRem || (rem == bestRem && reset > bestReset) {
			best, bestRem, bestReset = i, rem, reset
		}
	}
	d.Outcome = Allowed
	if j >= k {
		d.Outcome, d.Reason = Limited, ReasonRate
	}
	for i, s := range cl.sent {
		rl := &req.Rules[s.idx]
		a, off := v[2*i], float64(v[2*i+1])
		t, tau := ruleT(rl)
		var ok bool
		var rem int64
		var reset, wait float64
		switch {
		case s.ls != nil: // a lease rule: a is its grant
			ok = a > 0
			rem, reset = a-1, off+float64(a)*t
		default: // a is the units available; each decision costs c
			c := rl.cost()
			ok = a/c > st
			rem, reset = a-(st+1)*c, off+float64((st+1)*c)*t
			if !ok {
				rem, reset = 0, off+float64(st*c)*t
				wait = reset + float64(c)*t - tau
			}
		}
		if !ok && s.ls != nil {
			rem, reset = 0, off+float64(st)*t
			wait = reset + t - tau
		}
		if rl.Limit.Shadow {
			if !ok {
				d.ShadowLimited = true
			}
			continue
		}
		retry = math.Max(retry, wait)
		consider(s.idx, rem, reset)
	}
	quotaRefused := false
	for i, s := range cl.sentQ {
		a, end := v[2*(len(cl.sent)+i)], v[2*(len(cl.sent)+i)+1]
		reset := float64(end*1000 - now)
		c := req.Quotas[s.idx].cost()
		ok, rem := a/c > st, a-(st+1)*c
		if s.ql != nil { // a lease quota: a is its grant
			ok, rem = a > 0, a-1
		}
		if !ok {
			rem, quotaRefused = 0, true
			retry = math.Max(retry, reset)
		}
		consider(len(req.Rules)+s.idx, rem, reset)
	}
	if d.Outcome == Limited {
		if quotaRefused {
			d.Reason = ReasonQuota
		}
		d.RetryAfter = time.Duration(math.Ceil(retry)) * time.Microsecond
	}
	d.setLimit(req, best, max(bestRem, 0), time.Duration(math.Ceil(bestReset))*time.Microsecond)
	if d.ShadowLimited {
		l.m.shadow.Inc()
	}
	l.grant(cl, v, k, now, sent, 1)
	if d.Outcome == Allowed {
		l.localLimit(cl)
	} else {
		l.giveBack(cl)
	}
	l.m.decided(sourceStore, cl.req.APIID, d)
}

// grant adds to each lease rule and quota sent what Redis granted (v: the
// script's values per limit; nothing is granted when the decision was
// refused, k = 0); used requests of each grant were spent by the decision
// itself (1, or 0 for a refill). A lease limit that had nothing to grant is
// refused locally until Redis said it would have (a quota: for LeaseTTL at
// most, as other nodes may give back what they did not spend).
func (l *Limiter) grant(cl *call, v []int64, k, now, sent, used int64) {
	for i, s := range cl.sent {
		ls := s.ls
		if ls == nil {
			continue
		}
		n, off := v[2*i], v[2*i+1]*int64(time.Microsecond)
		if n <= 0 {
			t, tau := ruleT(&cl.req.Rules[s.idx])
			wait := max(int64((float64(off)/1e3+t-tau)*1e3), int64(time.Microsecond))
			ls.mu.Lock()
			ls.empty = sent + wait
			ls.mu.Unlock()
			continue
		}
		if k <= 0 {
			continue
		}
		reset := time.Duration(off + n*ls.t)
		ls.mu.Lock()
		ls.add(n-used, sent+off+used*ls.t, sent, reset, l.opts.LeaseTTL, l.leaseCap(&ls.rule))
		ls.mu.Unlock()
		l.m.leaseGrants.Inc()
		l.m.leaseGranted.Add(float64(n))
	}
	for i, s := range cl.sentQ {
		ql := s.ql
		if ql == nil {
			continue
		}
		n, period := v[2*(len(cl.sent)+i)], v[2*(len(cl.sent)+i)+1]
		end := sent + (period*1000-now)*int64(time.Microsecond) // local, never later than Redis's
		if n <= 0 {
			ql.mu.Lock()
			ql.empty = min(end, sent+int64(l.opts.LeaseTTL))
			ql.mu.Unlock()
			continue
		}
		if k <= 0 {
			continue
		}
		ql.mu.Lock()
		ql.add(n-used, period, end, sent, l.opts.LeaseTTL, l.opts.LeaseMax)
		ql.mu.Unlock()
		l.m.leaseGrants.Inc()
		l.m.leaseGranted.Add(float64(n))
	}
}
