// Package sync keeps a gateway node's configuration in step with the store
// and tells the syncer how far it got.
//
// The Follower applies config versions to the node's state strictly in
// order. Versions arrive on NATS (sluice.sync.>) as the syncer writes them;
// the changelog in Redis (store.ChangesSince) is the authority whenever NATS
// is not enough:
//
//   - message for applied+1: applied directly (state.Apply);
//   - message at or below applied: ignored (duplicate or old);
//   - message past applied+1 (a gap), a NATS reconnect, start-up, or the
//     periodic check finding store.Version ahead: catch up from the
//     changelog, in order;
//   - the changelog trimmed past applied (store.ErrChangelogGap), or the
//     store's version behind applied (the store was reset): full reload.
//
// One goroutine does all of it, so Apply and Reload never race each other
// here. Staleness is bounded by the check interval plus one catch-up even
// if NATS delivers nothing. Heartbeats go out on sluice.nodes.<node-id>
// every heartbeat interval and soon after each newly applied version.
// docs/sync.md describes the protocol.
package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	stdsync "sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/store"
)

// State is what the follower drives: the node's config state
// (internal/state implements it).
type State interface {
	// Version is the applied config version.
	Version() int64
	// Reload loads the full snapshot.
	Reload(ctx context.Context) error
	// Apply applies the version after Version.
	Apply(ctx context.Context, v store.Version) error
	// Revoke forgets the cached sessions a version changes, without the
	// store, before it can be applied.
	Revoke(v store.Version)
}

// Options configure a Follower.
type Options struct {
	// NodeID names the node in heartbeats and their subject.
	NodeID string
	// Address is the node's traffic address, shown by the syncer.
	Address string
	// BuildVersion is the Sluice version of the binary (default: from the
	// Go build information).
	BuildVersion string
	// CheckInterval is the period of the store version check (default 5s).
	CheckInterval time.Duration
	// HeartbeatInterval is the period of heartbeats (default 2s).
	HeartbeatInterval time.Duration
	// CatchUpBatch is how many versions one changelog read returns (default 500).
	CatchUpBatch int64
	// Timeout bounds each Redis operation (default 5s).
	Timeout time.Duration
}

func (o *Options) defaults() {
	if o.BuildVersion == "" {
		o.BuildVersion = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			o.BuildVersion = bi.Main.Version
		}
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
	// queueLen bounds messages waiting for the apply loop; when full, a
	// message is dropped and a catch-up requested instead.
	queueLen = 1024
	// reconnectPoll is how often the loop looks for a NATS reconnect.
	reconnectPoll = 100 * time.Millisecond
	// retryDelay is the pause before retrying a failed apply or catch-up.
	retryDelay = 250 * time.Millisecond
	// minHeartbeatGap spaces heartbeats sent after applying versions.
	minHeartbeatGap = 100 * time.Millisecond
	// maxCatchUpRounds bounds one catch-up (reload, then changelog reads).
	maxCatchUpRounds = 64
)

// Follower follows config changes for one node.
type Follower struct {
	nc      *nats.Conn
	store   *store.Store
	state   State
	opts    Options
	log     zerolog.Logger
	started time.Time
	m       metrics

	queue  chan store.Version
	kick   chan struct{} // catch-up requested
	beat   chan struct{} // heartbeat requested
	mu     stdsync.Mutex
	sub    *nats.Subscription
	cancel context.CancelFunc
	wg     stdsync.WaitGroup
}

type metrics struct {
	applied, catchups, reloads, errors prometheus.Counter
}

// New returns a Follower of st (the store) driving state, on nc.
func New(nc *nats.Conn, st *store.Store, state State, opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Follower, error) {
	opts.defaults()
	if opts.NodeID == "" || strings.ContainsAny(opts.NodeID, ".*> \t\r\n") {
		return nil, fmt.Errorf("sync: node id %q must be non-empty without '.', '*', '>' or spaces (it is a NATS subject token)", opts.NodeID)
	}
	f := &Follower{nc: nc, store: st, state: state, opts: opts,
		log:   log.With().Str("component", "gateway.sync").Logger(),
		queue: make(chan store.Version, queueLen), kick: make(chan struct{}, 1), beat: make(chan struct{}, 1)}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	f.m = metrics{
		applied:  counter("sluice_sync_applied_total", "Config versions applied one by one (from NATS or the changelog)."),
		catchups: counter("sluice_sync_catchups_total", "Catch-ups from the changelog (gap, reconnect, start, periodic check)."),
		reloads:  counter("sluice_sync_reloads_total", "Full snapshot reloads (changelog trimmed past the applied version, or store reset)."),
		errors:   counter("sluice_sync_errors_total", "Failed applies, catch-ups and reloads (retried)."),
	}
	for _, c := range []prometheus.Collector{f.m.applied, f.m.catchups, f.m.reloads, f.m.errors} {
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
	sub, err := f.nc.Subscribe(bus.SyncWildcard, f.onMessage)
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

// onMessage runs on the NATS delivery goroutine: decode and hand over,
// never block.
func (f *Follower) onMessage(m *nats.Msg) {
	msg, err := bus.DecodeSyncMessage(m.Data)
	if err != nil {
		f.log.Warn().Err(err).Str("subject", m.Subject).Msg("ignoring bad sync message")
		f.requestCatchUp()
		return
	}
	select {
	case f.queue <- msg.StoreVersion():
	default:
		f.requestCatchUp()
	}
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
		case v := <-f.queue:
			ok = f.handle(ctx, v)
		case <-f.kick:
			ok = f.catchUp(ctx, "gap")
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

// handle applies a version announced on NATS, or catches up on a gap. It
// returns false when a retry is needed.
func (f *Follower) handle(ctx context.Context, v store.Version) bool {
	applied := f.state.Version()
	switch {
	case v.Version <= applied:
		return true
	case v.Version > applied+1:
		f.state.Revoke(v) // at once, even if the catch-up cannot read the store
		return f.catchUp(ctx, "gap")
	}
	return f.apply(ctx, v)
}

func (f *Follower) apply(ctx context.Context, v store.Version) bool {
	actx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	if err := f.state.Apply(actx, v); err != nil {
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
// reloading the full snapshot when the changelog does not reach back.
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
		err = f.nc.Publish(bus.NodeSubject(f.opts.NodeID), data)
	}
	if err != nil {
		f.log.Debug().Err(err).Msg("heartbeat not sent")
	}
}
