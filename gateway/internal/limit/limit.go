// Package limit decides whether a request is within its rate limits and
// quotas, atomically across every gateway node, in Redis, and settles the
// costs known only after the response.
//
// This file is the package's surface: New, Start, Shutdown, Check, Settle,
// Forget (Options in options.go, the Request and Decision types in
// decision.go, their headers in headers.go, Stats and the Prometheus
// metrics in metrics.go). Each concern has a file of its own:
//
//   - collector.go: exact decisions, batched. Check queues each request on a
//     collector per API; a caller that finds one of Options.Pipelines free
//     sends what is queued (up to Options.MaxBatch decisions) as one
//     check.lua call, and hands the next batch to the first caller queued
//     when it is done: no goroutine per batch, none idle. The script runs
//     each decision in order, atomically, so batching changes the number of
//     round trips, not the result: no limit is exceeded across any number
//     of nodes, and a refused request consumes nothing.
//   - group.go: grouping. Identical decisions of a batch (a hot key's
//     concurrent requests) are sent once, as a group with a count, decided
//     in closed form exactly as that many decisions one after the other;
//     each request's outcome and headers are derived from a few numbers
//     per group. Binary arguments, one MGET, writes that keep expiries.
//   - lease.go, leasecheck.go: lease mode (model.LimitLease), per rule. A
//     node takes a lease of up to min(LeaseMax, rate*LeaseTTL/per,
//     LeaseFraction of what the rule allows now) requests from Redis, which
//     consumes them there at once (the GCRA TAT moves by g*T for a grant
//     of g), and spends them locally, each no later than the GCRA slot
//     Redis counted it in and within LeaseTTL. So the cluster never exceeds
//     the rule; a node may refuse early. Lease sizes adapt; a refill rides
//     the API's batches in the background. A request whose rules all hold
//     a lease costs no Redis call; one with exact rules too takes its lease
//     rules locally and sends the rest (all or nothing).
//   - quotalease.go: when every rule of a request is a lease rule, its
//     quotas are leased too: a slice of the remaining quota, counted in
//     Redis at once (never past max), spent locally, and what is not spent
//     given back (riding the next batch) in the period it was granted in.
//   - split.go: on Redis Cluster, a decision with a key's or an org's own
//     counters is split per slot, in the order key, org, API; a refused
//     part refunds the parts before it.
//   - settle.go: reserve-then-settle. A cost known only after the response
//     is reserved by the decision and settled by Settle.
//   - adjust.go: settlements and refunds, batched as decisions are: one
//     adjust.lua call per batch and hash slot; Settle returns once its
//     batch was applied, and Shutdown waits for those in flight.
//   - outage.go, fallback.go: when Redis fails or times out, the limiter
//     skips it for Options.StoreRetry and decides on its own: APIs that
//     fail open go to the per-node fallback limiter (Decision.Fallback),
//     APIs that fail closed get Unavailable; it recovers by itself. A call
//     that timed out may still run in Redis later: it then counts against
//     the limit, never for it, so limits still hold. What a node holds of
//     leases is still spent while Redis is down.
//
// See docs/limits.md for the algorithms, their guarantees and the tests
// that prove them.
package limit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Limiter decides requests against Redis. It is safe for concurrent use.
type Limiter struct {
	// observe is told the time and error of each script call (ObserveCalls).
	observe func(time.Duration, error)
	rdb     redis.UniversalClient
	opts    Options
	log     zerolog.Logger
	m       *metrics
	// cluster is true on Redis Cluster: a decision with a key's or an
	// org's own counters is split per slot (split.go), and adjustments go
	// per slot (adjust.go).
	cluster bool

	// exact decisions (collector.go, group.go)
	script     *redis.Script
	collectors sync.Map  // API id -> *collector
	calls      sync.Pool // *call
	batches    sync.Pool // *batch
	splits     sync.Pool // *split

	// settlements and refunds (adjust.go)
	adjustScript *redis.Script
	adj          *adjustments

	// refills bounds the lease refills running at once (a slot each): a
	// lease that finds none free keeps spending and, once empty, asks
	// Redis on the request path like any exact decision (leasecheck.go).
	refills chan struct{}

	// Redis unreachable (outage.go, fallback.go)
	fb           *fallback
	downUntil    atomic.Int64 // Unix ns: Redis is skipped until then
	failing      atomic.Bool
	errsSinceLog atomic.Int64
	lastLog      atomic.Int64

	// Stats (metrics.go)
	scriptCalls     atomic.Uint64
	scriptDecisions atomic.Uint64
	scriptGroups    atomic.Uint64
	leaseDecisions  atomic.Uint64
	refunds         atomic.Uint64
	adjustCalls     atomic.Uint64
	settles         atomic.Uint64

	stop chan struct{}
	wg   sync.WaitGroup
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
		script: redis.NewScript(argsScript + checkScript),
		fb:     newFallback(opts.FallbackShare, opts.FallbackMaxKeys),
		stop:   make(chan struct{}),

		refills:      make(chan struct{}, maxRefills),
		adjustScript: redis.NewScript(argsScript + adjustScript),
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
	switch l.takeLeases(c, cl) {
	case leasedAll:
		l.decideLocal(cl)
		return
	case leaseRefused:
		return
	}
	if l.storeDown() {
		l.giveBack(cl)
		l.decideWithoutStore(req, d)
		return
	}
	l.submit(c, cl)
}

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

// Forget releases what the limiter holds for api, deleted from the config:
// its queue and leases (the counters in Redis expire by themselves), its
// fallback counters and its metric series. A request of api still in
// flight completes; the next one starts afresh.
func (l *Limiter) Forget(api string) {
	l.collectors.Delete(api)
	l.fb.forget(api)
	l.m.forget(api)
}

// ObserveCalls sets f to be told the time and error of each script call;
// call it before Start.
func (l *Limiter) ObserveCalls(f func(time.Duration, error)) { l.observe = f }
