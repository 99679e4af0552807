// Package limit decides whether a request is within its rate limits and
// quotas, atomically across every gateway node, in Redis.
//
// Check queues each request on a collector per API. A collector sends what
// is queued (up to Options.MaxBatch decisions) as one script call (check.lua)
// while at most Options.Pipelines calls are in flight; a request that finds
// a free slot goes out at once, without waiting for company. The script runs
// each decision in order, atomically, so batching changes the number of
// round trips, not the result: no limit is exceeded across any number of
// nodes, and a refused request consumes nothing.
//
// Identical decisions of a batch (the same counters under the same limits:
// a hot key's concurrent requests) are sent once, as a group with a count,
// and the script decides a group in closed form, exactly as that many
// decisions one after the other; each request's outcome and headers are
// derived from a few numbers per group (group.go). The script's cost per
// call is kept low: binary arguments, one MGET, writes that keep expiries.
//
// The goroutine whose request opens a batch sends it; when it is done and
// more requests are queued, it hands the next batch to the goroutine of the
// first of them. No goroutine is started per batch and none sits idle.
//
// When Redis fails or times out, the limiter stops calling it for
// Options.StoreRetry and decides on its own: APIs that fail open go to a
// per-node in-memory limiter (Decision.Fallback), APIs that fail closed get
// Unavailable. The next call after that interval tries Redis again, so the
// limiter recovers by itself. A call that timed out may still run in Redis
// later (a Redis that hung and resumed): it then counts against the limit,
// never for it, so limits still hold.
//
// Lease mode (model.LimitLease), per rule: a node takes a lease of up to
// min(LeaseMax, rate*LeaseTTL/per, LeaseFraction of what the rule allows
// now) requests from Redis, which the script consumes there at once (it
// advances the GCRA TAT by g*T for a grant of g), and spends them locally,
// each no later than the GCRA slot Redis counted it in and within LeaseTTL
// (see lease). So the cluster never exceeds the rule; a node may refuse
// early (requests held by other nodes, or dropped unspent). Lease sizes
// double while spent and halve when requests go unspent; a refill starts in
// the background at half the last grant and rides the API's batches. A
// request whose rules are all lease rules with a lease held costs no Redis
// call; one with an empty lease asks for a new one with its decision; one
// with exact rules or quotas too takes its lease rules locally and sends the
// rest, and a refusal gives back what it took (all or nothing). When Redis
// said a lease rule had nothing to grant, the node refuses it locally until
// then. With Redis down, what a node holds is still spent (it was granted);
// after that, fail open falls back and fail closed is Unavailable. Headers
// of a lease rule report what this node holds (never more than the cluster
// has).
//
// Quota leases: when every rule of a request is a lease rule, its quotas
// are leased too (a quota has no mode of its own). A node takes a slice of
// the remaining quota, which Redis counts at once (never past max), spends
// it locally, and gives back what it did not spend when the lease expires
// or is replaced, or the node shuts down; a return lowers the count only in
// the period it was granted in (see quotalease.go). See docs/limits.md.
package limit

import (
	"context"
	_ "embed"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

//go:embed check.lua
var checkScript string

// Limiter decides requests against Redis. It is safe for concurrent use.
type Limiter struct {
	// observe is told the time and error of each script call (ObserveCalls).
	observe func(time.Duration, error)
	rdb     redis.UniversalClient
	opts    Options
	log     zerolog.Logger
	m       *metrics
	script  *redis.Script
	fb      *fallback

	// cluster is true on Redis Cluster: a decision with a key's own
	// counters is split per slot (split.go).
	cluster      bool
	splits       sync.Pool // *split
	adjustScript *redis.Script
	adj          *adjustments // settlements and refunds (adjust.go)

	collectors sync.Map // API id -> *collector
	calls      sync.Pool
	batches    sync.Pool

	downUntil    atomic.Int64 // Unix ns: Redis is skipped until then
	failing      atomic.Bool
	errsSinceLog atomic.Int64
	lastLog      atomic.Int64

	scriptCalls     atomic.Uint64
	scriptDecisions atomic.Uint64
	scriptGroups    atomic.Uint64
	leaseDecisions  atomic.Uint64
	refunds         atomic.Uint64
	adjustCalls     atomic.Uint64
	settles         atomic.Uint64

	// refills bounds the lease refills running at once (a slot each): a
	// lease that finds none full keeps spending and, once empty, asks
	// Redis on the request path like any exact decision.
	refills chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

// maxRefills is the most lease refills running at once.
const maxRefills = 64

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

// New returns a limiter deciding in rdb. Give rdb small timeouts of its own
// (ReadTimeout/WriteTimeout); each call is also bounded by Options.Timeout.
func New(rdb redis.UniversalClient, opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Limiter, error) {
	if rdb == nil {
		return nil, fmt.Errorf("limit: redis client is required")
	}
	if err := opts.Validate().Err(); err != nil {
		return nil, fmt.Errorf("limit options: %w", err)
	}
	opts = opts.WithDefaults()
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("limit metrics: %w", err)
	}
	l := &Limiter{
		rdb:    rdb,
		opts:   opts,
		log:    log.With().Str("component", "gateway.limit").Logger(),
		m:      m,
		script: redis.NewScript(checkScript),
		fb:     newFallback(opts.FallbackShare, opts.FallbackMaxKeys),
		stop:   make(chan struct{}),

		refills:      make(chan struct{}, maxRefills),
		adjustScript: redis.NewScript(adjustScript),
	}
	_, l.cluster = rdb.(*redis.ClusterClient)
	l.adj = newAdjustments(l.cluster)
	l.calls.New = func() any { return &call{done: make(chan struct{}, 1)} }
	l.batches.New = func() any { return newBatch(opts.MaxBatch, opts.Layout) }
	return l, nil
}

// Start loads the script into Redis (best effort: Redis may be down, and a
// script missing later is sent again) and starts sweeping the fallback
// limiter's stale counters.
func (l *Limiter) Start(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	if err := l.script.Load(lctx, l.rdb).Err(); err != nil {
		l.log.Warn().Err(err).Msg("limit script not loaded yet; it is sent with the first call")
	}
	cancel()
	l.wg.Add(1)
	go l.sweep()
	return nil
}

// Shutdown gives back what the node holds of quota leases (one script
// call per API, best effort), stops the background sweep and returns once
// every settlement queued or in flight is applied (or failed), or ctx is
// done. Checks and settlements still in flight complete; a later Settle
// is still sent.
func (l *Limiter) Shutdown(ctx context.Context) error {
	select {
	case <-l.stop:
		return l.waitAdjustments(ctx)
	default:
		close(l.stop)
	}
	l.returnAll()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.waitAdjustments(ctx)
}

func (l *Limiter) sweep() {
	defer l.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-t.C:
			l.fb.sweep(now.UnixMicro())
			l.collectors.Range(func(_, v any) bool {
				c := v.(*collector)
				c.sweepLeases(now.UnixNano())
				if l.sweepQuotaLeases(c, now.UnixNano()) && !l.storeDown() {
					l.flushReturns(c)
				}
				return true
			})
		}
	}
}

// Stats counts the script calls made and the decisions they carried.
type Stats struct {
	ScriptCalls     uint64
	ScriptDecisions uint64
	// ScriptGroups are the groups of identical decisions the calls sent
	// (each decided once, in closed form).
	ScriptGroups uint64
	// LeaseDecisions were taken from this node's leases, without Redis.
	LeaseDecisions uint64
	// Refunds gave back a key's counters after the API's part of a decision
	// split across slots refused (Redis Cluster, split.go).
	Refunds uint64
	// AdjustCalls are the script calls (adjust.lua) refunds and
	// settlements made, each carrying a batch of them.
	AdjustCalls uint64
	// Settles are the reservations settled (Settle).
	Settles uint64
}

// Stats returns the counts so far.
func (l *Limiter) Stats() Stats {
	return Stats{ScriptCalls: l.scriptCalls.Load(), ScriptDecisions: l.scriptDecisions.Load(),
		ScriptGroups: l.scriptGroups.Load(), LeaseDecisions: l.leaseDecisions.Load(), Refunds: l.refunds.Load(),
		AdjustCalls: l.adjustCalls.Load(), Settles: l.settles.Load()}
}

// Check decides req into d. A request without rules or quotas is allowed
// without calling Redis, and so is one whose rules are all in lease mode
// while this node holds a lease for each. Check returns within about twice
// Options.Timeout whatever Redis does; ctx is not needed for that bound and
// is unused.
func (l *Limiter) Check(_ context.Context, req *Request, d *Decision) {
	d.reset()
	if len(req.Rules) == 0 && len(req.Quotas) == 0 {
		return
	}
	if err := req.Validate(); err != nil {
		d.Outcome, d.Err, d.RetryAfter = Unavailable, err, time.Second
		l.m.decided(sourceStore, req.APIID, d)
		return
	}
	if l.needsSplit(req) {
		l.checkSplit(context.Background(), req, d)
		return
	}
	c := l.collector(req.APIID)
	cl := l.calls.Get().(*call)
	cl.req, cl.d = req, d
	defer l.putCall(cl)
	switch l.reserve(c, cl) {
	case reservedAll:
		l.decideLocal(cl)
		return
	case reserveRefused:
		return
	}
	if l.storeDown() {
		l.giveBack(cl)
		l.decideWithoutStore(req, d)
		return
	}
	l.submit(c, cl)
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

// Forget releases what the limiter holds for api, deleted from the config:
// its queue and leases (the counters in Redis expire by themselves), its
// fallback counters and its metric series. A request of api still in
// flight completes; the next one starts afresh.
func (l *Limiter) Forget(api string) {
	l.collectors.Delete(api)
	l.fb.forget(api)
	l.m.forget(api)
}

// refillSlot takes a refill slot, or reports false when all are in use.
func (l *Limiter) refillSlot() bool {
	select {
	case l.refills <- struct{}{}:
		return true
	default:
		return false
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

// ObserveCalls sets f to be told the time and error of each script call;
// call it before Start.
func (l *Limiter) ObserveCalls(f func(time.Duration, error)) { l.observe = f }

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

var errStoreSkipped = fmt.Errorf("limit store skipped after recent errors")

// decideWithoutStore decides while Redis is unreachable.
func (l *Limiter) decideWithoutStore(req *Request, d *Decision) {
	if !req.FailOpen {
		d.Outcome, d.RetryAfter = Unavailable, max(l.opts.StoreRetry, time.Second)
		l.m.decided(sourceStore, req.APIID, d)
		return
	}
	l.fb.decide(req, d, time.Now().UnixMicro())
	if d.ShadowLimited {
		l.m.shadow.Inc()
	}
	l.m.decided(sourceFallback, req.APIID, d)
}

func (l *Limiter) storeDown() bool {
	return time.Now().UnixNano() < l.downUntil.Load()
}

// storeError skips Redis for StoreRetry and logs at most once per
// LogInterval.
func (l *Limiter) storeError(err error) {
	l.m.storeErrors.Inc()
	now := time.Now().UnixNano()
	l.downUntil.Store(now + int64(l.opts.StoreRetry))
	l.failing.Store(true)
	n := l.errsSinceLog.Add(1)
	last := l.lastLog.Load()
	if now-last >= int64(l.opts.LogInterval) && l.lastLog.CompareAndSwap(last, now) {
		l.errsSinceLog.Add(-n)
		l.log.Warn().Err(err).Int64("errors", n).Dur("retry_in", l.opts.StoreRetry).
			Msg("limit store unreachable: deciding with the fallback limiter (fail open) or refusing (fail closed)")
	}
}

func (l *Limiter) storeOK() {
	if l.failing.Load() && l.failing.CompareAndSwap(true, false) {
		l.log.Info().Msg("limit store reachable again")
	}
}
