package limit

import (
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

// takeLeases takes the request from this node's lease of every lease-mode
// rule that holds one, and lists in cl.sent the rules Redis must decide:
// exact rules, and lease rules whose lease is empty (asking for a new
// one). When every rule of the request is a lease rule, its quotas are
// leased too (quotalease.go), else they are listed in cl.sentQ. It reports
// leasedAll when the request is decided without Redis (every rule and
// quota took from a lease), and leaseRefused when it refused the request
// locally: a lease rule is empty and Redis said moments ago it had
// nothing to grant until later.
func (l *Limiter) takeLeases(c *collector, cl *call) leaseResult {
	req := cl.req
	var now int64
	allLease := len(req.Rules) > 0
	for i := range req.Rules {
		r := &req.Rules[i]
		if r.Limit.Mode != model.LimitLease {
			allLease = false
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
			l.refuseLocal(cl, i, ReasonRate, wait)
			return leaseRefused
		}
		if !ok {
			want := min(ls.want, l.leaseCap(r))
			ls.mu.Unlock()
			cl.sent = append(cl.sent, sentRule{idx: i, want: want, ls: ls})
			continue
		}
		lr := localRule{idx: i, ls: ls, dl: dl, rem: ls.held(), reset: time.Duration(max(ls.full-now, 0))}
		refill := ls.low() && !l.storeDown() && l.refillSlot()
		if refill {
			ls.refilling = true
		}
		ls.mu.Unlock()
		cl.local = append(cl.local, lr)
		if refill {
			go l.refill(c, req.APIID, ls)
		}
	}
	for i := range req.Quotas {
		if q := &req.Quotas[i]; !allLease || q.scoped() || q.Reserve || q.cost() != 1 {
			cl.sentQ = append(cl.sentQ, sentQuota{idx: i})
			continue
		}
		if !l.takeQuotaLease(c, cl, i, now) {
			return leaseRefused
		}
	}
	if len(cl.sent) == 0 && len(cl.sentQ) == 0 {
		return leasedAll
	}
	return leasedPartly
}

// takeQuotaLease takes req.Quotas[i] from this node's lease of it, or lists
// it in cl.sentQ asking for a new lease; it reports false when it refused
// the request locally (Redis said moments ago nothing was left).
func (l *Limiter) takeQuotaLease(c *collector, cl *call, i int, now int64) bool {
	q := &cl.req.Quotas[i]
	ql := l.qlease(c, q)
	ql.mu.Lock()
	ok, ret := ql.take(now)
	if !ok && now < ql.empty {
		wait := time.Duration(ql.empty - now)
		ql.mu.Unlock()
		l.giveBackQuota(c, ret)
		l.refuseLocal(cl, len(cl.req.Rules)+i, ReasonQuota, wait)
		return false
	}
	if !ok {
		want := min(ql.want, l.opts.LeaseMax)
		ql.mu.Unlock()
		l.giveBackQuota(c, ret)
		cl.sentQ = append(cl.sentQ, sentQuota{idx: i, want: want, ql: ql})
		return true
	}
	lq := localQuota{idx: i, ql: ql, period: ql.period, rem: ql.held, reset: time.Duration(max(ql.end-now, 0))}
	refill := ql.low() && !l.storeDown() && l.refillSlot()
	if refill {
		ql.refilling = true
	}
	ql.mu.Unlock()
	cl.localQ = append(cl.localQ, lq)
	if refill {
		go l.refillQuota(c, ql)
	}
	return true
}

type leaseResult uint8

const (
	leasedPartly leaseResult = iota // Redis decides the rest
	leasedAll
	leaseRefused
)

// refuseLocal refuses cl by its lease limit i (rules, then quotas), empty
// for wait, and gives back what other limits took.
func (l *Limiter) refuseLocal(cl *call, i int, reason string, wait time.Duration) {
	l.giveBack(cl)
	d := cl.d
	d.Outcome, d.Reason, d.RetryAfter = Limited, reason, wait
	d.setLimit(cl.req, i, 0, wait)
	l.leaseDecisions.Add(1)
	l.m.decided(sourceLease, cl.req.APIID, d)
}

// decideLocal allows a request every rule of which took from a lease.
func (l *Limiter) decideLocal(cl *call) {
	cl.d.Outcome = Allowed
	l.localLimit(cl)
	l.leaseDecisions.Add(1)
	l.m.decided(sourceLease, cl.req.APIID, cl.d)
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
	for i := range cl.localQ {
		lq := &cl.localQ[i]
		if !d.HasLimit || lq.rem < d.Remaining || (lq.rem == d.Remaining && lq.reset > d.Reset) {
			d.setLimit(cl.req, len(cl.req.Rules)+lq.idx, lq.rem, lq.reset)
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
	for i := range cl.localQ {
		lq := &cl.localQ[i]
		lq.ql.mu.Lock()
		if lq.ql.period == lq.period {
			lq.ql.held++
		}
		lq.ql.mu.Unlock()
	}
	clear(cl.localQ)
	cl.localQ = cl.localQ[:0]
}

// refill asks Redis for a new lease of ls in the background, riding the
// API's batches like a request; nothing waits on it. A store error leaves
// the lease as it was.
func (l *Limiter) refill(c *collector, api string, ls *lease) {
	cl := l.calls.Get().(*call)
	cl.req = &Request{APIID: api, Rules: []Rule{ls.rule}}
	cl.d = new(Decision)
	cl.refill = true
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
	<-l.refills
}

// maxRefills is the most lease refills running at once.
const maxRefills = 64

// refillSlot takes a refill slot, or reports false when all are in use.
func (l *Limiter) refillSlot() bool {
	select {
	case l.refills <- struct{}{}:
		return true
	default:
		return false
	}
}
