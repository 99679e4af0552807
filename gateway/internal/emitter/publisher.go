// Package emitter buffers a gateway node's usage events and publishes them to
// JetStream in batches, so a request never waits on NATS.
//
// Emit encodes the event (pkg/usage.AppendJSON) into its API's batch in
// one of several shards, picked at random, and returns at once: a request
// takes one shard's lock and one shared counter, never a channel, and
// waits for no other goroutine. One goroutine (loop) takes the batches when
// one is full or FlushInterval has passed, joins an API's batches from
// different shards into one message where they fit, and publishes each to
// Options.Names.UsageSubject(api) with an asynchronous JetStream publish; a
// second goroutine (acker) waits for the acknowledgements in order. A batch is kept until JetStream acknowledges
// it and sent again, with the same Nats-Msg-Id, after a failure or a
// timeout, so JetStream's duplicate window drops a retry of a batch that did
// arrive. The buffer bound counts every event not yet acknowledged: while
// NATS is down the node keeps events up to Options.BufferSize, then drops
// new ones and counts them.
//
// Identifiers: the publisher draws a random boot id when it is created.
// Batch message ids are "<node>-<boot>-<batch seq>". An event emitted
// without an ID gets "<boot>-<event seq in base 36>": unique across nodes and
// restarts (64 random bits per boot) and free to make. An event without a
// Node gets the publisher's node.
package emitter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/usage"
)

// maxBatchBytes seals a batch before it nears NATS's default 1MB payload.
const maxBatchBytes = 512 << 10

// Publisher is a node's usage event buffer and publisher.
type Publisher struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	node string
	boot string
	opts Options
	log  zerolog.Logger
	m    *metrics

	shards  []shard
	batches sync.Pool     // *batch with an empty buffer
	idBlock atomic.Uint64 // event ids handed out to shards, in blocks
	kick    chan struct{} // a shard sealed a full batch
	held    atomic.Int64  // events emitted and not yet acknowledged
	closed  atomic.Bool
	results chan result
	acks    chan inflight

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	abort     chan struct{}
	done      chan struct{}
}

// batch is one NATS message: events of one API.
type batch struct {
	api     string
	subject string
	id      string
	data    []byte
	n       int
	sent    time.Time // last publish attempt
}

type inflight struct {
	b *batch
	f jetstream.PubAckFuture
}

type result struct {
	b   *batch
	err error
}

// New returns a publisher for node over nc. Call Start to begin publishing.
func New(nc *nats.Conn, node string, opts Options, log zerolog.Logger, reg prometheus.Registerer) (*Publisher, error) {
	if nc == nil {
		return nil, errors.New("usage: nats connection is required")
	}
	if node == "" {
		return nil, errors.New("usage: node id is required")
	}
	if err := opts.Validate().Err(); err != nil {
		return nil, fmt.Errorf("usage options: %w", err)
	}
	opts = opts.WithDefaults()
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(opts.MaxInFlight+1),
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("usage: jetstream: %w", err)
	}
	var rb [8]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return nil, fmt.Errorf("usage: boot id: %w", err)
	}
	p := &Publisher{
		nc: nc, js: js, node: node, boot: hex.EncodeToString(rb[:]), opts: opts,
		log:     log.With().Str("component", "gateway.usage").Logger(),
		shards:  newShards(),
		kick:    make(chan struct{}, 1),
		results: make(chan result, opts.MaxInFlight),
		acks:    make(chan inflight, opts.MaxInFlight),
		stop:    make(chan struct{}),
		abort:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	if p.m, err = newMetrics(reg, func() float64 { return float64(p.held.Load()) }); err != nil {
		return nil, fmt.Errorf("usage metrics: %w", err)
	}
	return p, nil
}

// Emit encodes *e into the buffer. It never blocks: when the buffer is full
// (or the publisher is shut down) it drops the event, counts it and returns
// false. An empty e.ID or e.Node is filled in before publishing.
func (p *Publisher) Emit(e *usage.Event) bool {
	if !p.closed.Load() {
		if p.held.Add(1) <= int64(p.opts.BufferSize) && p.add(p.pick(), e) {
			return true
		}
		p.held.Add(-1)
	}
	p.m.dropped.Inc()
	return false
}

// Start creates the usage stream when it is absent (retried later if NATS
// is not reachable yet) and starts publishing. It does not fail when NATS is down.
func (p *Publisher) Start(ctx context.Context) error {
	p.startOnce.Do(func() {
		ok := p.ensureStream(ctx)
		go p.acker()
		go p.loop(ok)
	})
	return nil
}

// Shutdown stops accepting events and publishes what is buffered until
// every batch is acknowledged or ctx ends; events still held then are
// counted as dropped.
func (p *Publisher) Shutdown(ctx context.Context) error {
	p.closed.Store(true)
	p.startOnce.Do(func() { close(p.done) }) // never started: nothing to flush
	p.stopOnce.Do(func() { close(p.stop) })
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		close(p.abort)
		<-p.done
		return fmt.Errorf("usage: flush: %w", ctx.Err())
	}
}

func (p *Publisher) ensureStream(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	// Created with the defaults when absent; an existing stream's settings
	// belong to the analytics workers and are never changed here.
	if _, err := bus.CreateUsageStream(ctx, p.js, p.opts.Names, bus.StreamOptions{}); err != nil {
		p.log.Warn().Err(err).Msg("usage stream not ensured yet; retrying in the background")
		return false
	}
	return true
}

// acker waits for acknowledgements in publish order and reports them.
func (p *Publisher) acker() {
	for in := range p.acks {
		select {
		case <-in.f.Ok():
			p.results <- result{b: in.b}
		case err := <-in.f.Err():
			p.results <- result{b: in.b, err: err}
		}
	}
}

// batchID returns the next batch's message id.
func (p *Publisher) batchID(seq uint64) string {
	return p.node + "-" + p.boot + "-" + strconv.FormatUint(seq, 10)
}

// unsafeString views b as a string without copying; b must not change while
// the string is used.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
