package limit

import (
	"context"
	_ "embed"
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicegw/sluice/pkg/store"
)

// Adjustments. A settlement (Settle) and a refund (split.go) change
// counters after their decision was taken: adjust.lua moves a rule's TAT
// or a quota's count. They go to Redis in batches, the way decisions do
// (collector.go): each one queues on its slot's queue (on a single Redis one
// queue takes them all; on Redis Cluster there is one per hash slot of
// the counters it adjusts, store.Slot), and a caller that finds one of
// Options.Pipelines free sends what is queued (up to Options.MaxBatch) as
// one adjust.lua call. When it is done and more are queued, it hands the
// next batch to the first of their callers. Every caller waits for the
// call that carries its adjustments: when Settle returns they were
// applied or failed, so a client's next request sees its settlement.
//
// Exact: the script applies a batch's adjustments one after the other,
// atomically, as one call each would (concurrent adjustments have no
// order of their own). An adjustment is in exactly one batch, and a batch
// is sent once and never again: a call that timed out may still run in
// Redis later, and sending it twice could apply it twice. A batch that
// fails (Redis unreachable, a timeout) loses its adjustments, as a lone
// call did: a settlement's reservation stays counted (refusing early,
// never over) and its excess over the reservation goes uncounted; a
// refund's counters stay one request higher. The error makes decisions
// skip Redis for StoreRetry like any store error; adjustments are still
// sent meanwhile (there is no local way to take them).

//go:embed adjust.lua
var adjustScript string

// adjQueue queues the adjustments of one slot.
type adjQueue struct {
	mu       sync.Mutex
	queue    []*adjCall
	inflight int
}

// adjCall is one Settle's (or refund's) adjustments of one part of its
// decision (split.go): req's limits in part, at Redis time at (us).
type adjCall struct {
	req    *Request
	part   int
	refund bool // give back each limit's cost (else: settle each at Actual)
	at     int64
	err    error
	done   chan struct{} // one signal: applied or failed, or (next != nil) lead next
	next   *adjBatch
}

// adjBatch is one adjust.lua call's worth of adjustments.
type adjBatch struct {
	calls  []*adjCall
	keys   []string
	keyIdx map[string]int
	args   []byte // ARGV[1]: per adjustment key index, kind, n, bound
	kb     []byte
}

// adjustments is the limiter's state of adjustments.
type adjustments struct {
	// queues: one on a single Redis, one per hash slot on Redis Cluster
	// (each made on first use).
	queues  []atomic.Pointer[adjQueue]
	calls   sync.Pool    // *adjCall
	batches sync.Pool    // *adjBatch
	pend    atomic.Int64 // adjustments queued or in flight
}

func newAdjustments(cluster bool) *adjustments {
	a := &adjustments{queues: make([]atomic.Pointer[adjQueue], 1)}
	if cluster {
		a.queues = make([]atomic.Pointer[adjQueue], store.Slots)
	}
	a.calls.New = func() any { return &adjCall{done: make(chan struct{}, 1)} }
	a.batches.New = func() any { return &adjBatch{keyIdx: make(map[string]int)} }
	return a
}

// The kinds of adjustment, as adjust.lua reads them.
const (
	adjRule  = 0
	adjQuota = 1
)

// adjustQueue returns the queue of the counters of api, or of a key's or
// an org's own.
func (l *Limiter) adjustQueue(api, keyScope, orgScope string) *adjQueue {
	i := 0
	if l.cluster {
		var buf [128]byte
		i = store.Slot(l.opts.Layout.AppendScopedCounterKey(buf[:0], api, keyScope, orgScope, ""))
	}
	p := &l.adj.queues[i]
	if q := p.Load(); q != nil {
		return q
	}
	p.CompareAndSwap(nil, &adjQueue{})
	return p.Load()
}

// adjust queues the adjustments of part of req on their slot's queue and
// returns once they were applied, or failed (the error).
func (l *Limiter) adjust(req *Request, part int, refund bool, at int64) error {
	q := l.adjustQueue(l.partScope(req, part))
	c := l.adj.calls.Get().(*adjCall)
	c.req, c.part, c.refund, c.at, c.err = req, part, refund, at, nil
	l.adj.pend.Add(1)
	q.mu.Lock()
	q.queue = append(q.queue, c)
	var b *adjBatch
	if q.inflight < l.opts.Pipelines {
		q.inflight++
		b = l.takeAdjust(q)
	}
	q.mu.Unlock()
	for {
		if b != nil {
			l.runAdjust(q, b)
		}
		<-c.done
		if c.next == nil {
			break
		}
		b, c.next = c.next, nil
	}
	err := c.err
	c.req, c.err = nil, nil
	l.adj.calls.Put(c)
	l.adj.pend.Add(-1)
	return err
}

// partScope names the counters of part of req: the API's, or the key's
// or the org's its limits of that part count under.
func (l *Limiter) partScope(req *Request, part int) (api, keyScope, orgScope string) {
	for i := range req.Rules {
		if r := &req.Rules[i]; l.partOf(r.KeyScope, r.OrgScope) == part {
			return req.APIID, r.KeyScope, r.OrgScope
		}
	}
	for i := range req.Quotas {
		if q := &req.Quotas[i]; l.partOf(q.KeyScope, q.OrgScope) == part {
			return req.APIID, q.KeyScope, q.OrgScope
		}
	}
	return req.APIID, "", ""
}

// takeAdjust moves up to MaxBatch queued calls into a batch; q.mu is held.
func (l *Limiter) takeAdjust(q *adjQueue) *adjBatch {
	n := min(len(q.queue), l.opts.MaxBatch)
	b := l.adj.batches.Get().(*adjBatch)
	b.calls = append(b.calls[:0], q.queue[:n]...)
	rest := copy(q.queue, q.queue[n:])
	clear(q.queue[rest:])
	q.queue = q.queue[:rest]
	return b
}

// runAdjust sends b, signals its callers, then hands the next queued batch
// to its first caller or frees the pipeline slot.
func (l *Limiter) runAdjust(q *adjQueue, b *adjBatch) {
	err := l.sendAdjust(b)
	for _, c := range b.calls {
		c.err = err
		c.done <- struct{}{}
	}
	clear(b.calls)
	b.calls = b.calls[:0]
	l.adj.batches.Put(b)
	q.mu.Lock()
	if len(q.queue) == 0 {
		q.inflight--
		q.mu.Unlock()
		return
	}
	nb := l.takeAdjust(q)
	q.mu.Unlock()
	lead := nb.calls[0]
	lead.next = nb
	lead.done <- struct{}{}
}

// sendAdjust makes b's script call (none when nothing is to change).
func (l *Limiter) sendAdjust(b *adjBatch) error {
	settles, refunds := l.encodeAdjust(b)
	if len(b.args) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	err := l.adjustScript.Run(ctx, l.rdb, b.keys, b.args).Err()
	cancel()
	l.adjustCalls.Add(1)
	l.m.adjustCalls.Inc()
	if err != nil {
		l.storeError(err)
		l.m.settleErrors.Add(float64(settles))
		l.m.refundErrors.Add(float64(refunds))
	}
	return err
}

// encodeAdjust builds b's KEYS and ARGV (see adjust.lua) and returns how
// many settlements and refunds it carries.
func (l *Limiter) encodeAdjust(b *adjBatch) (settles, refunds int) {
	b.keys, b.args = b.keys[:0], b.args[:0]
	clear(b.keyIdx)
	for _, c := range b.calls {
		if c.refund {
			refunds++
			l.appendRefund(b, c) // split.go
		} else {
			settles++
			l.appendSettlement(b, c) // settle.go
		}
	}
	return settles, refunds
}

// quotaBound is the latest end of the period a quota counted a request in
// at Redis time at (us): at most renewal after it (Unix ms).
func quotaBound(q *QuotaRule, at int64) float64 {
	return float64(at/1000 + q.Quota.Renewal.D().Milliseconds())
}

// adjustment appends one adjustment to b's arguments.
func (b *adjBatch) adjustment(key, kind int, n, bound float64) {
	for _, v := range [4]float64{float64(key), float64(kind), n, bound} {
		b.args = binary.LittleEndian.AppendUint64(b.args, math.Float64bits(v))
	}
}

// adjKey returns the 1-based index in b.keys of a counter, adding it once.
func (l *Limiter) adjKey(b *adjBatch, api, keyScope, orgScope, key string) int {
	b.kb = l.opts.Layout.AppendScopedCounterKey(b.kb[:0], api, keyScope, orgScope, key)
	if i, ok := b.keyIdx[string(b.kb)]; ok {
		return i
	}
	s := string(b.kb)
	b.keys = append(b.keys, s)
	b.keyIdx[s] = len(b.keys)
	return len(b.keys)
}

// waitAdjustments returns once no adjustment is queued or in flight, or
// ctx is done.
func (l *Limiter) waitAdjustments(ctx context.Context) error {
	if l.adj.pend.Load() == 0 {
		return nil
	}
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for l.adj.pend.Load() != 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
