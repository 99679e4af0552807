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

// Settle settles the reservations of req, decided allowed by d, each at
// its rule's or quota's Actual units (SettleFailed: given back), and
// returns once they are applied in Redis or failed. Concurrent settlements
// share script calls: one per batch and slot (the API's, a key's own, an
// org's; adjust.go). A part of the decision Redis did not take (the
// fallback limiter decided it) settles nothing. A call that fails leaves
// the reservation consumed (refusing early, never over) and an excess
// uncounted; it is not sent again.
func (l *Limiter) Settle(req *Request, d *Decision) {
	if d.Outcome != Allowed || d.at == ([nParts]int64{}) {
		return
	}
	l.settles.Add(1)
	var parts [nParts]bool
	for i := range req.Rules {
		if r := &req.Rules[i]; r.settles() {
			parts[l.partOf(r.KeyScope, r.OrgScope)] = true
		}
	}
	for i := range req.Quotas {
		if q := &req.Quotas[i]; q.settles() {
			parts[l.partOf(q.KeyScope, q.OrgScope)] = true
		}
	}
	for p, ok := range parts {
		if ok && d.at[p] != 0 {
			_ = l.adjust(req, p, false, d.at[p])
		}
	}
}

// partOf is the part of a decision a counter belongs to (split.go): on a
// single Redis every counter is the API part's, decided and adjusted in
// one call.
func (l *Limiter) partOf(keyScope, orgScope string) int {
	if !l.cluster {
		return partAPI
	}
	return partOf(keyScope, orgScope)
}
