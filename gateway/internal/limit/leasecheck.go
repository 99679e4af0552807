package limit

import (
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// reserve takes the request from this node's lease of every lease-mode
// rule that holds one, and lists in cl.sent the rules Redis must decide:
// exact rules, and lease rules whose lease is empty (asking for a new
// one). It reports reservedAll when the request is decided without Redis
// (every rule is a lease rule that held a request, and there is no quota),
// and reserveRefused when it refused the request locally: a lease rule is
// empty and Redis said moments ago it had nothing to grant until later.
func (l *Limiter) reserve(c *collector, cl *call) reserveResult {
	req := cl.req
	var now int64
	for i := range req.Rules {
		r := &req.Rules[i]
		if r.Limit.Mode != model.LimitLease {
			cl.sent = append(cl.sent, sentRule{idx: i})
			continue
		}
		if now == 0 {
			now = time.Now().UnixNano()
		}
		ls := c.lease(r)
		ls.mu.Lock()
		dl, ok := ls.take(now)
		if !ok && now < ls.empty && !r.Limit.Shadow {
			wait := time.Duration(ls.empty - now)
			ls.mu.Unlock()
			l.refuseLocal(cl, i, wait)
			return reserveRefused
		}
		if !ok {
			want := min(ls.want, l.leaseCap(r))
			ls.mu.Unlock()
			cl.sent = append(cl.sent, sentRule{idx: i, want: want, ls: ls})
			continue
		}
		lr := localRule{idx: i, ls: ls, dl: dl, rem: ls.held(), reset: time.Duration(max(ls.full-now, 0))}
		refill := ls.low() && !l.storeDown()
		if refill {
			ls.refilling = true
		}
		ls.mu.Unlock()
		cl.local = append(cl.local, lr)
		if refill {
			go l.refill(c, req.APIID, ls)
		}
	}
	if len(cl.sent) == 0 && len(req.Quotas) == 0 {
		return reservedAll
	}
	return reservePartly
}

type reserveResult uint8

const (
	reservePartly reserveResult = iota // Redis decides the rest
	reservedAll
	reserveRefused
)

// refuseLocal refuses cl by its lease rule i, empty for wait, and gives
// back what other rules took.
func (l *Limiter) refuseLocal(cl *call, i int, wait time.Duration) {
	l.giveBack(cl)
	d := cl.d
	d.Outcome, d.Reason, d.RetryAfter = Limited, ReasonRate, wait
	d.setLimit(cl.req, i, 0, wait)
	l.leaseDecisions.Add(1)
	l.m.decisions[sourceLease][Limited].Inc()
}

// decideLocal allows a request every rule of which took from a lease.
func (l *Limiter) decideLocal(cl *call) {
	cl.d.Outcome = Allowed
	l.localLimit(cl)
	l.leaseDecisions.Add(1)
	l.m.decisions[sourceLease][Allowed].Inc()
}

// localLimit reports a lease rule decided locally as the most restrictive
// limit when it has fewer requests left than the one reported so far.
// What it has left is what this node still holds of its lease: the node
// can serve that many more without asking Redis (before the lease
// expires), and it never counts what other nodes or Redis may still have,
// so it errs low.
func (l *Limiter) localLimit(cl *call) {
	d := cl.d
	for i := range cl.local {
		lr := &cl.local[i]
		if cl.req.Rules[lr.idx].Limit.Shadow {
			continue
		}
		if !d.HasLimit || lr.rem < d.Remaining || (lr.rem == d.Remaining && lr.reset > d.Reset) {
			d.setLimit(cl.req, lr.idx, lr.rem, lr.reset)
		}
	}
}

// giveBack returns to their leases the requests cl took from them, when
// its decision was refused or could not be taken.
func (l *Limiter) giveBack(cl *call) {
	for i := range cl.local {
		lr := &cl.local[i]
		lr.ls.mu.Lock()
		lr.ls.give(lr.dl)
		lr.ls.mu.Unlock()
	}
	clear(cl.local)
	cl.local = cl.local[:0]
}

// refill asks Redis for a new lease of ls in the background, riding the
// API's batches like a request; nothing waits on it. A store error leaves
// the lease as it was.
func (l *Limiter) refill(c *collector, api string, ls *lease) {
	cl := l.calls.Get().(*call)
	cl.req = &Request{APIID: api, Rules: []Rule{ls.rule}}
	cl.d = new(Decision)
	cl.prefetch = ls
	ls.mu.Lock()
	want := min(ls.want, l.leaseCap(&ls.rule))
	ls.mu.Unlock()
	cl.sent = append(cl.sent, sentRule{idx: 0, want: want, ls: ls})
	if !l.storeDown() {
		l.m.leaseRefills.Inc()
		l.submit(c, cl)
	}
	ls.mu.Lock()
	ls.refilling = false
	ls.mu.Unlock()
	l.putCall(cl)
}
