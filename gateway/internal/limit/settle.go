package limit

import ()

// Reserve-then-settle. A rule whose cost is known only after the response
// (Rule.Reserve) is decided with a reservation as its cost: the request is
// admitted only if the rule can cover the reservation, which is consumed
// at once. Settle then moves the rule's TAT by (actual - reserved) units:
// back when the request used less (giving the rest back), forward when it
// used more (the excess is counted unconditionally: the request was
// already served). So the units admitted in excess of a rule are at most
// the sum of the excesses of the requests in flight, and none when the
// reservation bounds every cost. A request that failed settles at 0,
// giving the whole reservation back. A reservation is a GCRA debit: if a
// node dies before settling, it expires as the allowance refills (within
// the rule's period), with no record to clean up.

// A quota whose cost is known only after the response (QuotaRule.Reserve)
// works the same way with counts: the reservation is counted at once;
// Settle lowers the count by what was not used (never below zero) or
// raises it by the excess, only while the period the request was counted
// in runs. Unlike a rule, a quota's reservation does not expire with a
// dying node: it stays counted until the period renews (refusing early,
// never over).

// SettleFailed is the actual cost of a request that never reached its
// upstream or got no answer: its reservations are given back whole.
const SettleFailed = 0

// Settle settles the reservations of req, decided allowed by d, each at
// its rule's or quota's Actual units (SettleFailed: given back). One
// script call per slot (the API's, a key's own, an org's); a call that
// fails leaves the reservation consumed (refusing early, never over).
func (l *Limiter) Settle(req *Request, d *Decision) {
	if d.Outcome != Allowed || d.Fallback {
		return
	}
	var st settlement
	for i := range req.Rules {
		r := &req.Rules[i]
		if !r.Reserve || r.Actual == r.cost() {
			continue
		}
		t, _ := ruleT(r)
		delta := float64(max(r.Actual, 0)-r.cost()) * t
		st.add(l.partOf(r.KeyScope, r.OrgScope), l.counterKey(req.APIID, r.KeyScope, r.OrgScope, r.Key), "r", delta, 0)
	}
	for i := range req.Quotas {
		q := &req.Quotas[i]
		if !q.Reserve || q.Actual == q.cost() || d.at == 0 {
			continue
		}
		// adjust.lua lowers a quota's count by n: what was not used, or
		// (negative) raises it by the excess.
		n := q.cost() - max(q.Actual, 0)
		st.add(l.partOf(q.KeyScope, q.OrgScope), l.counterKey(req.APIID, q.KeyScope, q.OrgScope, q.Key),
			"q", n, d.at/1000+q.Quota.Renewal.D().Milliseconds())
	}
	l.settles.Add(1)
	for i := range st.keys {
		if len(st.keys[i]) > 0 {
			_ = l.adjust(st.keys[i], st.args[i])
		}
	}
}

// settlement is the adjustments of one request, by slot.
type settlement struct {
	keys [nParts][]string
	args [nParts][]any
}

func (st *settlement) add(part int, key string, args ...any) {
	st.keys[part] = append(st.keys[part], key)
	st.args[part] = append(st.args[part], args...)
}

// partOf is the slot a counter's adjustment goes to: on a single Redis
// every counter goes in one call.
func (l *Limiter) partOf(keyScope, orgScope string) int {
	if !l.cluster {
		return partAPI
	}
	return partOf(keyScope, orgScope)
}
