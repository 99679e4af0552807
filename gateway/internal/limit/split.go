package limit

import (
	"context"
	_ "embed"
)

// Decisions across two slots. A rule or quota with KeyScope counts across
// every API the key calls, under the key's hash tag, not the API's. On a
// single Redis (or a primary with replicas) one script takes every
// counter, whatever its tag, so the decision stays atomic. On Redis
// Cluster the two tags are in general on different slots, and one script
// cannot touch both: the decision is split in two parts taken in a fixed
// order, each atomic in its slot:
//
//  1. the key's counters (its own collector, one script on the key's slot):
//     refused → the request is refused, nothing consumed anywhere;
//  2. the API's counters (the API's collector, as any request):
//     refused → the request is refused, and what part 1 consumed is given
//     back (refund.lua: a rule's TAT moves back by T, a quota's count down
//     by 1, only in the period it was counted in; adjust.lua).
//
// While a decision is between 1 and 2, or between 2 and its refund, the
// key's counters hold one request more than will finally count: another
// request of the key may be refused early, never admitted over, as nothing
// is ever admitted that both parts did not allow. A refund that cannot be
// sent (Redis unreachable, timeout) is lost: the key's counters stay one
// higher (refusing early until the rule refills or the quota renews).

//go:embed adjust.lua
var adjustScript string

// keyCollector names the collector of a key's own counters; it cannot
// clash with an API id (no ':' in those).
const keyCollector = "key:"

// split is the two parts of a decision and the second part's Decision.
type split struct {
	key, api Request
	d        Decision
}

// needsSplit reports whether req must be split: on Redis Cluster, a request
// with counters under a key's hash tag.
func (l *Limiter) needsSplit(req *Request) bool {
	if !l.cluster || req.part {
		return false
	}
	for i := range req.Rules {
		if req.Rules[i].KeyScope != "" {
			return true
		}
	}
	for i := range req.Quotas {
		if req.Quotas[i].KeyScope != "" {
			return true
		}
	}
	return false
}

// checkSplit decides req in two parts, key's slot first (see above).
func (l *Limiter) checkSplit(ctx context.Context, req *Request, d *Decision) {
	sp, _ := l.splits.Get().(*split)
	if sp == nil {
		sp = &split{}
	}
	defer l.splits.Put(sp)
	sp.key.Rules, sp.key.Quotas = sp.key.Rules[:0], sp.key.Quotas[:0]
	sp.api.Rules, sp.api.Quotas = sp.api.Rules[:0], sp.api.Quotas[:0]
	scope := ""
	for _, r := range req.Rules {
		if r.KeyScope != "" {
			scope = r.KeyScope
			sp.key.Rules = append(sp.key.Rules, r)
		} else {
			sp.api.Rules = append(sp.api.Rules, r)
		}
	}
	for _, q := range req.Quotas {
		if q.KeyScope != "" {
			scope = q.KeyScope
			sp.key.Quotas = append(sp.key.Quotas, q)
		} else {
			sp.api.Quotas = append(sp.api.Quotas, q)
		}
	}
	sp.key.APIID, sp.key.FailOpen, sp.key.part = keyCollector+scope, req.FailOpen, true
	sp.api.APIID, sp.api.FailOpen, sp.api.part = req.APIID, req.FailOpen, true
	l.Check(ctx, &sp.key, d)
	if d.Outcome != Allowed || (len(sp.api.Rules) == 0 && len(sp.api.Quotas) == 0) {
		return
	}
	l.Check(ctx, &sp.api, &sp.d)
	if sp.d.Outcome != Allowed {
		if !d.Fallback && d.at > 0 {
			l.refund(&sp.key, d.at)
		}
		*d = sp.d
		return
	}
	d.ShadowLimited = d.ShadowLimited || sp.d.ShadowLimited
	d.Fallback = d.Fallback || sp.d.Fallback
	if sp.d.HasLimit && (!d.HasLimit || sp.d.Remaining < d.Remaining) {
		d.HasLimit, d.Policy, d.Limit, d.Window, d.Remaining, d.Reset =
			true, sp.d.Policy, sp.d.Limit, sp.d.Window, sp.d.Remaining, sp.d.Reset
	}
}

// refund gives back what an allowed part consumed at Redis time at (us):
// one request of each enforced rule and quota (see refund.lua).
func (l *Limiter) refund(req *Request, at int64) {
	keys := make([]string, 0, len(req.Rules)+len(req.Quotas))
	args := make([]any, 0, 2*cap(keys))
	for _, r := range req.Rules {
		if r.Limit.Shadow {
			continue // a shadow rule never refuses: what it counted stays
		}
		keys = append(keys, l.opts.Layout.KeyCounterPrefix(r.KeyScope)+r.Key)
		t, _ := ruleT(&r)
		args = append(args, "r", -t*float64(r.cost()), 0)
	}
	for _, q := range req.Quotas {
		keys = append(keys, l.opts.Layout.KeyCounterPrefix(q.KeyScope)+q.Key)
		args = append(args, "q", q.cost(), at/1000+q.Quota.Renewal.D().Milliseconds())
	}
	if len(keys) == 0 {
		return
	}
	l.m.refunds.Inc()
	l.refunds.Add(1)
	if err := l.adjust(keys, args); err != nil {
		l.m.refundErrors.Inc()
	}
}

// adjust runs adjust.lua on keys of one slot.
func (l *Limiter) adjust(keys []string, args []any) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	err := l.adjustScript.Run(ctx, l.rdb, keys, args...).Err()
	l.adjustCalls.Add(1)
	if err != nil {
		l.storeError(err)
	}
	return err
}
