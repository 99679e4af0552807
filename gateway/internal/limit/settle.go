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

// SettleFailed is the actual cost of a request that never reached its
// upstream or got no answer: its reservations are given back whole.
const SettleFailed = 0

// Settle settles the reservations of req, decided allowed by d, each at
// its rule's Actual units (SettleFailed: given back). One script call
// per slot (the API's, and a key's own); a call that fails leaves the
// reservation consumed (refusing early, never over).
func (l *Limiter) Settle(req *Request, d *Decision) {
	if d.Outcome != Allowed || d.Fallback {
		return
	}
	var keys, kkeys []string
	var args, kargs []any
	for i := range req.Rules {
		r := &req.Rules[i]
		if !r.Reserve || r.Actual == r.cost() {
			continue
		}
		t, _ := ruleT(r)
		delta := float64(max(r.Actual, 0)-r.cost()) * t
		if r.KeyScope != "" {
			kkeys = append(kkeys, l.opts.Layout.KeyCounterPrefix(r.KeyScope)+r.Key)
			kargs = append(kargs, "r", delta, 0)
			continue
		}
		keys = append(keys, l.opts.Layout.CounterPrefix(req.APIID)+r.Key)
		args = append(args, "r", delta, 0)
	}
	if !l.cluster {
		keys, args = append(keys, kkeys...), append(args, kargs...)
		kkeys = nil
	}
	l.settles.Add(1)
	for _, ka := range []struct {
		keys []string
		args []any
	}{{keys, args}, {kkeys, kargs}} {
		if len(ka.keys) > 0 {
			_ = l.adjust(ka.keys, ka.args)
		}
	}
}
