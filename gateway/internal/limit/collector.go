package limit

import (
	"context"
	_ "embed"
	"fmt"
	"sync"
	"time"
)

//go:embed check.lua
var checkScript string

// argsScript decodes the packed numeric arguments of check.lua and
// adjust.lua; it is prepended to both.
//
//go:embed args.lua
var argsScript string

// Exact decisions, batched. Check queues a decision on its API's collector
// (a key's or an org's own for the parts of a split decision, split.go);
// the caller that finds one of Options.Pipelines free takes what is queued
// (up to Options.MaxBatch) as a batch and sends it as one check.lua call
// (group.go builds its arguments and reads its answer). When it is done
// and more are queued, it hands the next batch to the first of their
// callers, so no goroutine is started per batch and none sits idle. A
// batch that fails decides each of its requests without Redis (outage.go).

// collector queues the decisions of one API.
type collector struct {
	api      string
	mu       sync.Mutex
	queue    []*call
	inflight int
	returns  []quotaReturn // unspent quota leases to give back with the next batch

	leases  sync.Map // rule key -> *lease (lease-mode rules only)
	qleases sync.Map // quota key -> *qlease (quotas of lease-mode requests)
}

// call is one waiting Check.
type call struct {
	req  *Request
	d    *Decision
	done chan struct{} // one signal: decided, or (next != nil) lead next
	next *batch

	refill  bool         // a background lease refill, not a request
	carrier bool         // no decision: carries the collector's quota returns
	sent    []sentRule   // the rules sent to Redis, in order
	local   []localRule  // lease rules decided from this node's leases
	sentQ   []sentQuota  // the quotas sent to Redis, in order
	localQ  []localQuota // lease quotas decided from this node's leases
}

// sentRule is a rule sent to Redis: req.Rules[idx], asking for a lease of
// up to want requests when ls is not nil.
type sentRule struct {
	idx  int
	want int64
	ls   *lease
}

// localRule is a lease rule req.Rules[idx] that took the request with
// deadline dl from ls; rem and reset are for headers.
type localRule struct {
	idx   int
	ls    *lease
	dl    int64
	rem   int64
	reset time.Duration
}

func (l *Limiter) putCall(cl *call) {
	cl.req, cl.d, cl.refill, cl.carrier = nil, nil, false, false
	clear(cl.sent)
	clear(cl.local)
	clear(cl.sentQ)
	clear(cl.localQ)
	cl.sent, cl.local, cl.sentQ, cl.localQ = cl.sent[:0], cl.local[:0], cl.sentQ[:0], cl.localQ[:0]
	l.calls.Put(cl)
}

// submit queues cl on c and returns once it is decided, sending the batch
// itself when a pipeline slot is free or when handed one.
func (l *Limiter) submit(c *collector, cl *call) {
	c.mu.Lock()
	c.queue = append(c.queue, cl)
	var b *batch
	if c.inflight < l.opts.Pipelines {
		c.inflight++
		b = l.take(c)
	}
	c.mu.Unlock()
	for {
		if b != nil {
			l.run(c, b)
		}
		<-cl.done
		if cl.next == nil {
			return
		}
		b, cl.next = cl.next, nil
	}
}

func (l *Limiter) collector(api string) *collector {
	if c, ok := l.collectors.Load(api); ok {
		return c.(*collector)
	}
	c, _ := l.collectors.LoadOrStore(api, &collector{api: api})
	return c.(*collector)
}

// take moves up to MaxBatch queued calls into a batch; c.mu is held.
func (l *Limiter) take(c *collector) *batch {
	n := min(len(c.queue), l.opts.MaxBatch)
	b := l.batches.Get().(*batch)
	b.calls = append(b.calls[:0], c.queue[:n]...)
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	b.returns = append(b.returns[:0], c.returns...)
	c.returns = c.returns[:0]
	return b
}

// run sends b, then hands the next queued batch to its first caller or
// frees the pipeline slot.
func (l *Limiter) run(c *collector, b *batch) {
	l.exec(b)
	b.reset()
	l.batches.Put(b)
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.inflight--
		c.mu.Unlock()
		return
	}
	nb := l.take(c)
	c.mu.Unlock()
	lead := nb.calls[0]
	lead.next = nb
	lead.done <- struct{}{}
}

// exec decides every call of b with one script call and signals each.
func (l *Limiter) exec(b *batch) {
	sent := time.Now().UnixNano()
	res, err := l.send(b)
	if err == nil {
		l.fillGroups(b, res, sent)
	}
	for _, cl := range b.calls {
		if err != nil && !cl.refill && !cl.carrier {
			l.giveBack(cl)
			l.decideWithoutStore(cl.req, cl.d)
		}
		cl.done <- struct{}{}
	}
}

// send makes b's script call, unless Redis is being skipped.
func (l *Limiter) send(b *batch) ([]int64, error) {
	if l.storeDown() {
		return nil, errStoreSkipped
	}
	want, decisions := l.encode(b)
	if len(b.keys) == 0 { // only carriers, whose returns left with an earlier batch
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	t := time.Now()
	res, err := l.script.Run(ctx, l.rdb, b.keys, b.args).Int64Slice()
	cancel()
	if l.observe != nil {
		l.observe(time.Since(t), err)
	}
	l.scriptCalls.Add(1)
	l.scriptDecisions.Add(uint64(decisions))
	l.scriptGroups.Add(uint64(len(b.groups)))
	l.m.scriptGroups.Add(float64(len(b.groups)))
	l.m.scriptCalls.Inc()
	l.m.batchDecisions.Add(float64(decisions))
	l.m.batchSize.Observe(float64(decisions))
	l.m.quotaReturns.Add(float64(len(b.returns)))
	if err == nil && len(res) != want {
		err = fmt.Errorf("limit script returned %d values, want %d", len(res), want)
	}
	if err != nil {
		l.storeError(err)
		return nil, err
	}
	l.storeOK()
	return res, nil
}
