package limit

import "context"

// Decisions across slots. A rule or quota with KeyScope counts across
// every API the key calls, under the key's hash tag; one with OrgScope
// across all of an org's keys and APIs, under the org's. On a single Redis
// (or a primary with replicas) one script takes every counter, whatever
// its tag, so the decision stays atomic. On Redis Cluster the tags are in
// general on different slots, and one script cannot touch two: the
// decision is split in up to three parts taken in a fixed order, each
// atomic in its slot:
//
//  1. the key's counters (its own collector, one script on the key's slot),
//  2. the org's counters (the org's collector, on the org's slot),
//  3. the API's counters (the API's collector, as any request).
//
// The first part that refuses refuses the request; what the parts before
// it consumed is given back (adjust.lua: a rule's TAT moves back by its
// cost's worth, a quota's count down by its cost, only in the period it
// was counted in; adjust.lua).
//
// While a decision is between parts, or between a refusal and its refund,
// the earlier parts' counters hold one request more than will finally
// count: another request of the key (or the org) may be refused early,
// never admitted over, as nothing is ever admitted that every part did
// not allow. A refund that cannot be sent (Redis unreachable, timeout) is
// lost: those counters stay higher (refusing early until the rule refills
// or the quota renews).

// keyCollector and orgCollector name the collectors of a key's and an
// org's own counters; they cannot clash with an API id (no ':' in those).
const (
	keyCollector = "key:"
	orgCollector = "org:"
)

// The parts of a split decision, in the order they are taken.
const (
	partKey = iota
	partOrg
	partAPI
	nParts
)

// split is the parts of a decision and the later parts' Decision.
type split struct {
	parts [nParts]Request
	d     Decision
}

// partOf is the part of a decision a counter with these scopes belongs to.
func partOf(keyScope, orgScope string) int {
	switch {
	case keyScope != "":
		return partKey
	case orgScope != "":
		return partOrg
	}
	return partAPI
}

// needsSplit reports whether req must be split: on Redis Cluster, a request
// with counters under a key's or an org's hash tag.
func (l *Limiter) needsSplit(req *Request) bool {
	if !l.cluster || req.part {
		return false
	}
	for i := range req.Rules {
		if req.Rules[i].KeyScope != "" || req.Rules[i].OrgScope != "" {
			return true
		}
	}
	for i := range req.Quotas {
		if req.Quotas[i].scoped() {
			return true
		}
	}
	return false
}

// checkSplit decides req in parts, in the fixed order key, org, API (see
// above).
func (l *Limiter) checkSplit(ctx context.Context, req *Request, d *Decision) {
	sp, _ := l.splits.Get().(*split)
	if sp == nil {
		sp = &split{}
	}
	defer l.splits.Put(sp)
	for i := range sp.parts {
		p := &sp.parts[i]
		p.Rules, p.Quotas, p.FailOpen, p.part = p.Rules[:0], p.Quotas[:0], req.FailOpen, true
	}
	sp.parts[partAPI].APIID = req.APIID
	for _, r := range req.Rules {
		i := partOf(r.KeyScope, r.OrgScope)
		sp.parts[i].Rules = append(sp.parts[i].Rules, r)
		sp.name(i, r.KeyScope, r.OrgScope)
	}
	for _, q := range req.Quotas {
		i := partOf(q.KeyScope, q.OrgScope)
		sp.parts[i].Quotas = append(sp.parts[i].Quotas, q)
		sp.name(i, q.KeyScope, q.OrgScope)
	}
	var at [nParts]int64 // Redis time of each part allowed in Redis (0: none)
	first := true
	for i := range sp.parts {
		p := &sp.parts[i]
		if len(p.Rules) == 0 && len(p.Quotas) == 0 {
			continue
		}
		pd := d
		if !first {
			pd = &sp.d
		}
		l.Check(ctx, p, pd)
		if pd.Outcome != Allowed {
			for j := 0; j < i; j++ {
				if at[j] > 0 {
					l.refund(&sp.parts[j], j, at[j])
				}
			}
			if !first {
				*d = sp.d
			}
			return
		}
		at[i] = pd.at[partAPI] // (0 when the fallback limiter decided)
		if !first {
			d.merge(&sp.d)
		}
		first = false
	}
	d.at = at
}

// name sets the collector of part i from the scope of one of its limits.
func (sp *split) name(i int, keyScope, orgScope string) {
	switch i {
	case partKey:
		sp.parts[i].APIID = keyCollector + keyScope
	case partOrg:
		sp.parts[i].APIID = orgCollector + orgScope
	}
}

// merge adds what a later allowed part says to d, an allowed decision:
// shadow and fallback flags, and its most restrictive limit when it has
// fewer remaining.
func (d *Decision) merge(o *Decision) {
	d.ShadowLimited = d.ShadowLimited || o.ShadowLimited
	d.Fallback = d.Fallback || o.Fallback
	if o.HasLimit && (!d.HasLimit || o.Remaining < d.Remaining) {
		d.HasLimit, d.Policy, d.Limit, d.Window, d.Remaining, d.Reset =
			true, o.Policy, o.Limit, o.Window, o.Remaining, o.Reset
	}
}

// refund gives back what part i of a split decision, allowed at Redis
// time at (us), consumed: each enforced rule's and quota's cost (see
// adjust.lua).
func (l *Limiter) refund(req *Request, i int, at int64) {
	some := len(req.Quotas) > 0
	for j := range req.Rules {
		some = some || !req.Rules[j].Limit.Shadow
	}
	if !some {
		return // shadow rules only: what they counted stays
	}
	l.m.refunds.Inc()
	l.refunds.Add(1)
	_ = l.adjust(req, i, true, at)
}

// appendRefund adds to b the adjustments of c, a refund: each enforced
// rule of its part moves back by its cost's worth, each quota's count down
// by its cost (only in the period it was counted in).
func (l *Limiter) appendRefund(b *adjBatch, c *adjCall) {
	req := c.req
	for i := range req.Rules {
		r := &req.Rules[i]
		if r.Limit.Shadow || l.partOf(r.KeyScope, r.OrgScope) != c.part {
			continue // a shadow rule never refuses: what it counted stays
		}
		t, _ := ruleT(r)
		b.adjustment(l.adjKey(b, req.APIID, r.KeyScope, r.OrgScope, r.Key), adjRule, -t*float64(r.cost()), 0)
	}
	for i := range req.Quotas {
		q := &req.Quotas[i]
		if l.partOf(q.KeyScope, q.OrgScope) != c.part {
			continue
		}
		b.adjustment(l.adjKey(b, req.APIID, q.KeyScope, q.OrgScope, q.Key), adjQuota, float64(q.cost()), quotaBound(q, c.at))
	}
}

// partOf is the part of a decision a counter belongs to: on a
// single Redis every counter is the API part's, decided and adjusted in
// one call.
func (l *Limiter) partOf(keyScope, orgScope string) int {
	if !l.cluster {
		return partAPI
	}
	return partOf(keyScope, orgScope)
}
