// Package worker consumes usage batches from the shared JetStream consumer,
// records them in Redis exactly once, closes finished minutes into the
// rollup streams and republishes them on NATS.
//
// One fetched batch goes through: fetch -> group messages by API ->
// rollup.Build (decode and pre-sum in memory) -> aggregates.Apply (one script per
// API, one pipeline) -> ack. A message is acknowledged only after Redis
// recorded it; a redelivered or republished message finds its dedup record
// and adds nothing.
package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/analytics/internal/rollup"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// Options tune the worker.
type Options struct {
	// Names are the environment's stream and subjects (nats.namespace).
	Names bus.Names
	// Durable is the shared consumer (default Names.AnalyticsDurable()).
	Durable       string
	AckWait       time.Duration
	MaxAckPending int
	FetchBatch    int
	FetchWait     time.Duration
	// Stream is the usage stream's settings: the workers own them and
	// apply them at set-up (bus.ConfigureUsageStream).
	Stream        bus.StreamOptions
	Grace         time.Duration
	CloseInterval time.Duration
	// RedisTimeout bounds each Redis write.
	RedisTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// RetryInterval is the pause between set-up attempts while NATS or
	// Redis cannot be reached (default 1s).
	RetryInterval time.Duration
	// Tracing traces each batch's apply step (tracing.go); nil: off.
	Tracing *tracing.Provider
}

// Worker is one analytics worker.
type Worker struct {
	log   zerolog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
	store *aggregates.Store
	opts  Options
	m     *metrics
	// tracer makes the apply step's spans (tracing.go).
	tracer trace.Tracer

	stream jetstream.Stream
	cons   jetstream.Consumer

	// beforeAck, when set (tests), runs before acknowledging a fetched
	// batch; returning false leaves the batch unacknowledged.
	beforeAck func() bool

	ready  atomic.Bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a worker reading from nc and writing to st.
func New(log zerolog.Logger, nc *nats.Conn, st *aggregates.Store, opts Options, reg prometheus.Registerer) (*Worker, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RedisTimeout <= 0 {
		opts.RedisTimeout = 5 * time.Second
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = time.Second
	}
	if opts.Durable == "" {
		opts.Durable = opts.Names.AnalyticsDurable()
	}
	return &Worker{
		log: log.With().Str("component", "analytics.worker").Logger(),
		nc:  nc, js: js, store: st, opts: opts, m: newMetrics(reg),
		tracer: opts.Tracing.Tracer("github.com/sluicegw/sluice/analytics/worker"),
	}, nil
}

// Start sets up the stream, the shared consumer and the scripts, then
// consumes, closes minutes and measures lag until Shutdown. When NATS or
// Redis cannot be reached yet, Start returns nil all the same and the
// set-up is retried in the background every RetryInterval; Ready reports
// when it is done.
func (w *Worker) Start(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	err := w.setup(sctx)
	scancel()
	if err != nil {
		w.log.Warn().Err(err).Msg("usage consumer not set up yet; retrying in the background")
		w.wg.Add(1)
		go func() { defer w.wg.Done(); w.retrySetup(runCtx) }()
		return nil
	}
	w.run(runCtx)
	return nil
}

// Ready reports whether the worker is set up and consuming.
func (w *Worker) Ready() bool { return w.ready.Load() }

func (w *Worker) retrySetup(ctx context.Context) {
	for attempt := 2; ; attempt++ {
		sleep(ctx, w.opts.RetryInterval)
		if ctx.Err() != nil {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.setup(sctx)
		cancel()
		if err == nil {
			w.run(ctx)
			return
		}
		if attempt%20 == 0 {
			w.log.Warn().Err(err).Int("attempt", attempt).Msg("usage consumer not set up yet; retrying")
		}
	}
}

// setup creates the usage stream or brings it to Options.Stream (the
// workers own its settings), ensures the shared consumer and loads the
// scripts.
func (w *Worker) setup(ctx context.Context) error {
	s, err := bus.ConfigureUsageStream(ctx, w.js, w.opts.Names, w.opts.Stream)
	if err != nil {
		return err
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       w.opts.Durable,
		FilterSubject: w.opts.Names.UsageWildcard(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.opts.AckWait,
		MaxAckPending: w.opts.MaxAckPending,
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("usage consumer %s: %w", w.opts.Durable, err)
	}
	if err := w.store.Load(ctx); err != nil {
		return err
	}
	w.stream, w.cons = s, cons
	return nil
}

// run starts the loops of a set-up worker.
func (w *Worker) run(ctx context.Context) {
	w.wg.Add(3)
	go func() { defer w.wg.Done(); w.consume(ctx) }()
	go func() { defer w.wg.Done(); w.every(ctx, w.opts.CloseInterval, w.closeMinutes) }()
	go func() { defer w.wg.Done(); w.every(ctx, time.Second, w.measureLag) }()
	w.ready.Store(true)
	w.log.Info().Str("durable", w.opts.Durable).Msg("consuming usage events")
}

// Shutdown stops fetching, finishes the batch in hand and returns.
func (w *Worker) Shutdown(ctx context.Context) error {
	if w.cancel == nil {
		return nil
	}
	w.cancel()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("worker shutdown: %w", ctx.Err())
	}
}

func (w *Worker) every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

func (w *Worker) consume(ctx context.Context) {
	var lastWarn time.Time
	for ctx.Err() == nil {
		msgs, err := w.fetch()
		if err != nil {
			if time.Since(lastWarn) > 10*time.Second {
				w.log.Warn().Err(err).Msg("fetch usage events")
				lastWarn = time.Now()
			}
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		if len(msgs) > 0 && !w.process(ctx, msgs) {
			sleep(ctx, 200*time.Millisecond)
		}
	}
}

// fetch takes what is available at once; when nothing is, it waits up to
// FetchWait for one message and then takes what came with it.
func (w *Worker) fetch() ([]jetstream.Msg, error) {
	msgs, err := collect(w.cons.FetchNoWait(w.opts.FetchBatch))
	if err != nil || len(msgs) > 0 {
		return msgs, err
	}
	msgs, err = collect(w.cons.Fetch(1, jetstream.FetchMaxWait(w.opts.FetchWait)))
	if err != nil || len(msgs) == 0 || w.opts.FetchBatch == 1 {
		return msgs, err
	}
	more, err := collect(w.cons.FetchNoWait(w.opts.FetchBatch - 1))
	if err != nil {
		return msgs, nil
	}
	return append(msgs, more...), nil
}

func collect(b jetstream.MessageBatch, err error) ([]jetstream.Msg, error) {
	if err != nil {
		return nil, err
	}
	var out []jetstream.Msg
	for m := range b.Messages() {
		out = append(out, m)
	}
	if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		return out, err
	}
	return out, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// process records one fetched batch and acknowledges what Redis has. It
// returns false when Redis failed (the unrecorded messages are redelivered).
func (w *Worker) process(ctx context.Context, msgs []jetstream.Msg) bool {
	start := time.Now()
	ctx, span := w.traceStart(ctx, "usage.apply", attribute.Int("messaging.batch.message_count", len(msgs)))
	data := make([][]byte, len(msgs))
	byAPI := map[string][]int{}
	var order []string
	for i, m := range msgs {
		data[i] = m.Data()
		api := strings.TrimPrefix(m.Subject(), w.opts.Names.UsagePrefix())
		if _, ok := byAPI[api]; !ok {
			order = append(order, api)
		}
		byAPI[api] = append(byAPI[api], i)
	}
	batches := make([]*rollup.APIBatch, 0, len(order))
	for _, api := range order {
		b := rollup.Build(api, data, byAPI[api])
		for j, i := range b.Bad {
			w.m.malformed.Inc()
			w.log.Warn().Err(b.BadErrs[j]).Str("subject", msgs[i].Subject()).Msg("malformed usage batch terminated")
			_ = msgs[i].Term()
		}
		w.m.duplicates.Add(float64(b.Repeated))
		batches = append(batches, b)
	}
	failed := w.record(ctx, data, batches)
	traceEnd(span, len(failed), attribute.Int("sluice.usage.apis", len(batches)))
	w.m.apply.Observe(time.Since(start).Seconds())
	for _, b := range failed {
		for _, i := range b.Msgs {
			_ = msgs[i].NakWithDelay(time.Second)
		}
	}
	if w.beforeAck != nil && !w.beforeAck() {
		return len(failed) == 0
	}
	for _, b := range batches {
		if b == nil {
			continue
		}
		for _, i := range append(b.Msgs, b.Done...) {
			_ = msgs[i].Ack()
			w.m.batches.Inc()
		}
	}
	return len(failed) == 0
}

// record applies the batches, rebuilding those that held messages already
// recorded. On return, batches[i] is nil for a batch Redis did not take
// (returned in failed); the others list in Msgs and Done every message that
// is now recorded.
func (w *Worker) record(ctx context.Context, data [][]byte, batches []*rollup.APIBatch) (failed []*rollup.APIBatch) {
	pending := batches
	for round := 0; len(pending) > 0 && round < 8; round++ {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.RedisTimeout)
		rctx, span := w.traceStart(rctx, "usage.record", attribute.Int("sluice.usage.round", round), attribute.Int("sluice.usage.apis", len(pending)))
		res := w.store.Apply(rctx, pending, w.opts.Now())
		cancel()
		roundFailed := 0
		for _, r := range res {
			if r.Err != nil {
				roundFailed++
			}
		}
		traceEnd(span, roundFailed)
		var retry []*rollup.APIBatch
		for i, r := range res {
			b := pending[i]
			switch {
			case r.Err != nil:
				w.m.redisErrs.Inc()
				w.log.Warn().Err(r.Err).Str("api", b.API).Msg("record usage batch")
				failed = append(failed, b)
				drop(batches, b)
			case len(r.Dups) > 0:
				nb := w.rebuild(data, b, r.Dups)
				replace(batches, b, nb)
				if len(nb.IDs) > 0 {
					retry = append(retry, nb)
				}
			default:
				w.m.events.Add(float64(b.Events))
				w.m.late.Add(float64(r.Late))
			}
		}
		pending = retry
	}
	for _, b := range pending { // still racing another worker: let it come back
		failed = append(failed, b)
		drop(batches, b)
	}
	return failed
}

// rebuild returns b without the duplicate messages, which it lists in Done
// so that they are acknowledged with the rest.
func (w *Worker) rebuild(data [][]byte, b *rollup.APIBatch, dups []int) *rollup.APIBatch {
	var keep []int
	done := append([]int(nil), b.Done...)
	for p, i := range b.Msgs {
		if containsInt(dups, p) {
			done = append(done, i)
		} else {
			keep = append(keep, i)
		}
	}
	nb := rollup.Build(b.API, data, keep)
	nb.Done = append(done, nb.Done...)
	w.m.duplicates.Add(float64(b.Events - nb.Events - nb.Repeated))
	return nb
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func drop(batches []*rollup.APIBatch, b *rollup.APIBatch) {
	for i := range batches {
		if batches[i] == b {
			batches[i] = nil
		}
	}
}

func replace(batches []*rollup.APIBatch, old, nb *rollup.APIBatch) {
	for i := range batches {
		if batches[i] == old {
			batches[i] = nb
		}
	}
}
