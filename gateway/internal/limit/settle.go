package limit

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
// in runs (named by the Redis time its part of the decision was taken at).
// Unlike a rule, a quota's reservation does not expire with a dying node:
// it stays counted until the period renews (refusing early, never over).

// SettleFailed is the actual cost of a request that never reached its
// upstream or got no answer: its reservations are given back whole.
const SettleFailed = 0

// appendSettlement adds to b the adjustments of c, a settlement: each of
// its part's rules moves by (actual - reserved) units' worth, each quota's
// count by the same (adjust.lua lowers a quota's count by n: what was not
// used, or, negative, raises it by the excess).
func (l *Limiter) appendSettlement(b *adjBatch, c *adjCall) {
	req := c.req
	for i := range req.Rules {
		r := &req.Rules[i]
		if !r.settles() || l.partOf(r.KeyScope, r.OrgScope) != c.part {
			continue
		}
		t, _ := ruleT(r)
		n := float64(max(r.Actual, 0)-r.cost()) * t
		b.adjustment(l.adjKey(b, req.APIID, r.KeyScope, r.OrgScope, r.Key), adjRule, n, 0)
	}
	for i := range req.Quotas {
		q := &req.Quotas[i]
		if !q.settles() || l.partOf(q.KeyScope, q.OrgScope) != c.part {
			continue
		}
		n := q.cost() - max(q.Actual, 0)
		b.adjustment(l.adjKey(b, req.APIID, q.KeyScope, q.OrgScope, q.Key), adjQuota, float64(n), quotaBound(q, c.at))
	}
}
