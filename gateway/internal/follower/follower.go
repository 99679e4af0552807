// Package follower keeps a gateway node's configuration in step with the store
// and tells the syncer how far it got.
//
// The changelog in Redis is the only thing a node applies. A message on
// <ns>.sync.> is a hint, nothing more: "the config may have changed, up
// to version N". It wakes the Follower, which reads the changelog entries
// after its applied version from Redis (store.ChangesSince) and applies
// exactly those, in order; the applied version is the last one Redis
// returned. Nothing a message says (its changes, its key hashes) is ever
// applied, so a forged, replayed or reordered message can cost at most one
// changelog read:
//
//   - message at or below the applied version: ignored (replay, old,
//     out of order), no Redis read;
//   - message past the applied version: catch up from the changelog; if the
//     store has no such version the message is ignored (counted, logged at
//     most once per interval);
//   - malformed message: ignored (counted);
//   - a NATS reconnect, start-up, or the periodic check finding
//     store.Version ahead: catch up from the changelog;
//   - the changelog trimmed past applied (store.ErrChangelogGap), or the
//     store's version behind applied (the store was reset): full reload.
//
// One goroutine does all of it, so Apply and Reload never race each other
// here. Hints are coalesced (the highest pending one is kept), so a flood of
// messages costs one changelog read at a time. Staleness is bounded by the
// check interval plus one catch-up even if NATS delivers nothing.
// Heartbeats go out on <ns>.nodes.<node-id> every heartbeat interval and
// soon after each newly applied version. docs/sync.md describes the
// protocol.
package follower

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/buildinfo"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// State is what the follower drives: the node's config state
// (internal/state implements it).
type State interface {
	// Version is the applied config version.
	Version() int64
	// Reload loads the full snapshot.
	Reload(ctx context.Context) error
	// Apply applies the version after Version. The follower passes only
	// versions read from the store's changelog.
	Apply(ctx context.Context, v store.Version) error
	// Revoke forgets the cached sessions a version changes, without the
	// store, before it can be applied. It is given what a sync message
	// names and must only evict, never apply.
	Revoke(v store.Version)
}

// Options configure a Follower.
type Options struct {
	// NodeID names the node in heartbeats and their subject.
	NodeID string
	// Address is the node's traffic address, shown by the syncer.
	Address string
	// BuildVersion is the Sluice version of the binary (default:
	// pkg/buildinfo, the version stamped at build time or the module's).
	BuildVersion string
	// CheckInterval is the period of the store version check (default 5s).
	CheckInterval time.Duration
	// HeartbeatInterval is the period of heartbeats (default 2s).
	HeartbeatInterval time.Duration
	// CatchUpBatch is how many versions one changelog read returns (default 500).
	CatchUpBatch int64
	// Timeout bounds each Redis operation (default 5s).
	Timeout time.Duration
	// Names are the environment's subjects (its nats.namespace; zero: the
	// default namespace).
	Names bus.Names
	// Tracing traces each applied version (tracing.go); nil: off.
	Tracing *tracing.Provider
}

func (o *Options) defaults() {
	if o.BuildVersion == "" {
		o.BuildVersion = buildinfo.Get().Version
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 5 * time.Second
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 2 * time.Second
	}
	if o.CatchUpBatch <= 0 {
		o.CatchUpBatch = 500
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
}

const (
	// reconnectPoll is how often the loop looks for a NATS reconnect.
	reconnectPoll = 100 * time.Millisecond
	// retryDelay is the pause before retrying a failed apply or catch-up.
	retryDelay = 250 * time.Millisecond
	// minHeartbeatGap spaces heartbeats sent after applying versions.
	minHeartbeatGap = 100 * time.Millisecond
	// maxCatchUpRounds bounds one catch-up (reload, then changelog reads);
	// a longer one continues on the next turn of the loop.
	maxCatchUpRounds = 64
	// warnEvery spaces the warnings about ignored sync messages.
	warnEvery = 10 * time.Second
)

// Follower follows config changes for one node.
type Follower struct {
	nc      *nats.Conn
	store   *store.Store
	state   State
	opts    Options
	log     zerolog.Logger
	hintLog zerolog.Logger // sampled: at most one line per warnEvery
	tracer  *applyTracer
	started time.Time
	m       metrics

	hint   atomic.Int64  // highest version announced and not yet looked up
	wake   chan struct{} // a hint is pending
	kick   chan struct{} // catch-up requested
	beat   chan struct{} // heartbeat requested
	mu     sync.Mutex
	sub    *nats.Subscription
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type metrics struct {
	applied, catchups, reloads, errors prometheus.Counter
	// ignored sync messages by reason: stale (at or below the applied
	// version), ahead (past the store's version), malformed.
	stale, ahead, malformed prometheus.Counter
}

// New returns a Follower of st (the store) driving state, on nc.
func New(nc *nats.Conn, st *store.Store, state State, opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Follower, error) {
	opts.defaults()
	if !bus.ValidNodeID(opts.NodeID) {
		return nil, fmt.Errorf("sync: node id %q must be 1 to %d printable characters without '.', '*', '>' or spaces (it is a NATS subject token)", opts.NodeID, bus.MaxNodeIDLen)
	}
	f := &Follower{nc: nc, store: st, state: state, opts: opts,
		log:  log.With().Str("component", "gateway.sync").Logger(),
		wake: make(chan struct{}, 1), kick: make(chan struct{}, 1), beat: make(chan struct{}, 1),
		tracer: newApplyTracer(opts.Tracing, opts.NodeID)}
	f.hintLog = f.log.Sample(&zerolog.BurstSampler{Burst: 1, Period: warnEvery})
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	f.m = metrics{
		applied:  counter("sluice_sync_applied_total", "Config versions applied one by one (from NATS or the changelog)."),
		catchups: counter("sluice_sync_catchups_total", "Catch-ups that applied versions from the changelog (sync message, reconnect, start, periodic check)."),
		reloads:  counter("sluice_sync_reloads_total", "Full snapshot reloads (changelog trimmed past the applied version, or store reset)."),
		errors:   counter("sluice_sync_errors_total", "Failed applies, catch-ups and reloads (retried)."),
	}
	ignored := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_sync_messages_ignored_total",
		Help: "Sync messages that changed nothing: stale (at or below the applied version), ahead (a version the store does not have), malformed."}, []string{"reason"})
	f.m.stale, f.m.ahead, f.m.malformed = ignored.WithLabelValues("stale"), ignored.WithLabelValues("ahead"), ignored.WithLabelValues("malformed")
	for _, c := range []prometheus.Collector{f.m.applied, f.m.catchups, f.m.reloads, f.m.errors, ignored} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("sync: metrics: %w", err)
		}
	}
	return f, nil
}

// Start subscribes to config changes and starts following: a catch-up runs
// at once, then messages, reconnects and the periodic check drive it. It
// does not wait for the catch-up.
func (f *Follower) Start(ctx context.Context) error {
	sub, err := f.nc.Subscribe(f.opts.Names.SyncWildcard(), f.onMessage)
	if err != nil {
		return fmt.Errorf("sync: subscribe: %w", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.mu.Lock()
	f.sub, f.cancel, f.started = sub, cancel, time.Now()
	f.mu.Unlock()
	f.wg.Add(2)
	go func() { defer f.wg.Done(); f.run(ctx) }()
	go func() { defer f.wg.Done(); f.heartbeats(ctx) }()
	return nil
}

// Shutdown stops following and waits for the loops until ctx ends.
func (f *Follower) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	sub, cancel := f.sub, f.cancel
	f.sub, f.cancel = nil, nil
	f.mu.Unlock()
	if sub == nil {
		return nil
	}
	_ = sub.Unsubscribe()
	cancel()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onMessage runs on the NATS delivery goroutine and never blocks. Only the
// message's version is read, as a hint: a version at or below the applied
// one is dropped here; a higher one is kept as the pending hint (the
// highest wins) and wakes the apply loop.
func (f *Follower) onMessage(m *nats.Msg) {
	v, err := bus.DecodeSyncHint(m.Data)
	if err != nil {
		f.m.malformed.Inc()
		f.hintLog.Warn().Err(err).Str("subject", m.Subject).Msg("ignoring malformed sync message")
		return
	}
	if v <= f.state.Version() {
		f.m.stale.Inc()
		return
	}
	f.evict(m.Data)
	f.tracer.announced(m, v)
	for {
		cur := f.hint.Load()
		if v <= cur || f.hint.CompareAndSwap(cur, v) {
			break
		}
	}
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// maxEvictChanges bounds the work a sync message can cause on the NATS
// delivery goroutine.
const maxEvictChanges = 256

// evict forgets at once the cached sessions a sync message names, so a
// revocation heard while the store cannot be read still applies. It only
// ever evicts (the next request re-reads the key from the store, the
// truth): a forged message can cost a re-read, never grant anything.
func (f *Follower) evict(data []byte) {
	msg, err := bus.DecodeSyncMessage(data)
	if err != nil || len(msg.Changes) == 0 || len(msg.Changes) > maxEvictChanges {
		return // nothing to evict, or too much to walk here: the catch-up will
	}
	v := store.Version{Version: msg.Version, Changes: make([]store.Entry, len(msg.Changes))}
	for i, c := range msg.Changes {
		v.Changes[i] = store.Entry{Kind: c.Kind, Op: c.Op, ID: c.ID, Hash: c.Hash, OldHash: c.OldHash}
	}
	f.state.Revoke(v)
}

func (f *Follower) requestCatchUp() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *Follower) requestHeartbeat() {
	select {
	case f.beat <- struct{}{}:
	default:
	}
}

// run is the apply loop: the only caller of Apply and Reload.
func (f *Follower) run(ctx context.Context) {
	check := time.NewTicker(f.opts.CheckInterval)
	defer check.Stop()
	recon := time.NewTicker(reconnectPoll)
	defer recon.Stop()
	retry := time.NewTimer(0) // the start-up catch-up
	defer retry.Stop()
	reconnects := f.nc.Stats().Reconnects
	for {
		ok := true
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
			ok = f.wakeUp(ctx)
		case <-f.kick:
			ok = f.catchUp(ctx, "continue")
		case <-retry.C:
			ok = f.catchUp(ctx, "start or retry")
		case <-check.C:
			ok = f.check(ctx)
		case <-recon.C:
			if n := f.nc.Stats().Reconnects; n != reconnects {
				reconnects = n
				ok = f.catchUp(ctx, "nats reconnect")
			}
		}
		if !ok {
			f.m.errors.Inc()
			retry.Reset(retryDelay)
		}
	}
}

// wakeUp follows the pending hint: when it is past the applied version,
// catch up from the changelog. What is applied is what the changelog
// holds; the hint decides only whether to look. A hint the store does not
// reach is ignored. It returns false when a retry is needed.
func (f *Follower) wakeUp(ctx context.Context) bool {
	h := f.hint.Swap(0)
	if h <= f.state.Version() { // an earlier catch-up went past it
		return true
	}
	if !f.catchUp(ctx, "sync message") {
		return false
	}
	if applied := f.state.Version(); applied < h && len(f.kick) == 0 {
		f.m.ahead.Inc()
		f.hintLog.Warn().Int64("announced", h).Int64("store", applied).
			Msg("ignoring sync message: it announces a version the store does not have")
	}
	return true
}

func (f *Follower) apply(ctx context.Context, v store.Version) bool {
	actx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	actx, span := f.tracer.start(actx, v)
	err := f.state.Apply(actx, v)
	f.tracer.done(span, err)
	if err != nil {
		f.log.Warn().Err(err).Int64("version", v.Version).Msg("apply config version failed; catching up")
		return false
	}
	f.m.applied.Inc()
	f.requestHeartbeat()
	return true
}

// check compares the store's version with the applied one.
func (f *Follower) check(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	cur, err := f.store.Version(cctx)
	cancel()
	if err != nil {
		f.log.Warn().Err(err).Msg("config version check failed")
		return false
	}
	switch applied := f.state.Version(); {
	case cur > applied:
		return f.catchUp(ctx, "periodic check")
	case cur < applied:
		f.log.Warn().Int64("store", cur).Int64("applied", applied).Msg("store version behind the applied one (store reset?): reloading")
		return f.reload(ctx)
	}
	return true
}

// catchUp applies every version after the applied one from the changelog,
// reloading the full snapshot when the changelog does not reach back. One
// call applies at most maxCatchUpRounds batches and then requests another.
func (f *Follower) catchUp(ctx context.Context, why string) bool {
	counted := false
	for round := 0; round < maxCatchUpRounds; round++ {
		applied := f.state.Version()
		rctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
		vs, err := f.store.ChangesSince(rctx, applied, f.opts.CatchUpBatch)
		cancel()
		if errors.Is(err, store.ErrChangelogGap) {
			if !f.reload(ctx) {
				return false
			}
			continue // then the versions written since the snapshot
		}
		if err != nil {
			f.log.Warn().Err(err).Str("reason", why).Msg("catch-up from the changelog failed")
			return false
		}
		if len(vs) > 0 && !counted {
			counted = true
			f.m.catchups.Inc()
			f.log.Debug().Str("reason", why).Int64("from", applied).Msg("catching up from the changelog")
		}
		for _, v := range vs {
			if !f.apply(ctx, v) {
				return false
			}
		}
		if int64(len(vs)) < f.opts.CatchUpBatch {
			return true
		}
	}
	f.requestCatchUp() // more to read: continue on the next turn of the loop
	return true
}

func (f *Follower) reload(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	if err := f.state.Reload(rctx); err != nil {
		f.log.Warn().Err(err).Msg("full config reload failed")
		return false
	}
	f.m.reloads.Inc()
	f.log.Info().Int64("version", f.state.Version()).Msg("full config reloaded")
	f.requestHeartbeat()
	return true
}

// heartbeats publishes the node's heartbeat every interval and soon after
// each newly applied version.
func (f *Follower) heartbeats(ctx context.Context) {
	t := time.NewTicker(f.opts.HeartbeatInterval)
	defer t.Stop()
	f.sendHeartbeat()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.beat:
			if wait := minHeartbeatGap - time.Since(last); wait > 0 {
				select { // space out heartbeats during bursts of changes
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		f.sendHeartbeat()
		last = time.Now()
	}
}

func (f *Follower) sendHeartbeat() {
	hb := bus.Heartbeat{ID: f.opts.NodeID, Address: f.opts.Address, Version: f.opts.BuildVersion,
		ConfigVersion: f.state.Version(), StartedAt: f.started, SentAt: time.Now()}
	data, err := json.Marshal(hb)
	if err == nil {
		err = f.nc.Publish(f.opts.Names.NodeSubject(f.opts.NodeID), data)
	}
	if err != nil {
		f.log.Debug().Err(err).Msg("heartbeat not sent")
	}
}
