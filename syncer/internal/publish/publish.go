// Package publish announces config versions on NATS after the syncer has
// written them to Redis: one JSON message (bus.SyncMessage) per version on
// <ns>.sync.<kind> (bus.Names).
//
// Publishing is best effort by design. Redis already holds the version and
// its changelog entry; a message lost here (NATS down, syncer crash between
// the write and the publish) is recovered by the nodes' catch-up on the
// next message, on reconnect, or at their periodic version check.
package publish

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// Publisher sends config versions to the nodes.
type Publisher struct {
	nc        *nats.Conn
	tracing   *tracing.Provider
	tracer    trace.Tracer
	names     bus.Names
	log       zerolog.Logger
	published prometheus.Counter
	errors    prometheus.Counter
}

// New returns a Publisher over nc, registering its metrics on reg. With
// tracing on (tp not nil), each announcement is a producer span whose
// context the message carries in its NATS headers (traceparent).
func New(nc *nats.Conn, names bus.Names, log zerolog.Logger, reg prometheus.Registerer, tp *tracing.Provider) (*Publisher, error) {
	p := &Publisher{
		nc:      nc,
		tracing: tp,
		tracer:  tp.Tracer("github.com/sluicegw/sluice/syncer/publish"),
		names:   names,
		log:     log.With().Str("component", "syncer.publish").Logger(),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_sync_published_total", Help: "Config versions announced on NATS.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_sync_publish_errors_total", Help: "Config versions that could not be announced on NATS (nodes catch up from the changelog).",
		}),
	}
	for _, c := range []prometheus.Collector{p.published, p.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("publish: metrics: %w", err)
		}
	}
	return p, nil
}

// Announce reads version v back from the changelog (so the message says
// exactly what the store recorded, hashes included) and publishes it.
func (p *Publisher) Announce(ctx context.Context, st *store.Store, v int64) {
	vs, err := st.ChangesSince(ctx, v-1, 1)
	if err != nil || len(vs) == 0 || vs[0].Version != v {
		p.errors.Inc()
		p.log.Warn().Err(err).Int64("version", v).Msg("read back config version failed; nodes will catch up from the changelog")
		return
	}
	p.Publish(ctx, vs[0])
}

// Publish announces v. While NATS is disconnected the client buffers the
// message and sends it on reconnect; an error is logged and counted, never
// returned to the admin API caller, whose write has already succeeded.
// With tracing on, the message carries ctx's trace context: the nodes'
// apply spans continue it.
func (p *Publisher) Publish(ctx context.Context, v store.Version) {
	msg := bus.NewSyncMessage(v)
	data, err := json.Marshal(msg)
	if max := p.nc.MaxPayload(); err == nil && max > 0 && int64(len(data)) > max {
		// Too large for one message (thousands of changes): announce the
		// version alone; nodes read the changes from the changelog anyway.
		msg.Changes, msg.Truncated = []bus.SyncChange{}, true
		data, err = json.Marshal(msg)
	}
	if err == nil {
		err = p.send(ctx, p.names.SyncSubject(msg.Kind()), data, v)
	}
	if err != nil {
		p.errors.Inc()
		p.log.Warn().Err(err).Int64("version", v.Version).Msg("announce config version failed; nodes will catch up from the changelog")
		return
	}
	p.published.Inc()
}

// send publishes data on subject, inside a producer span when tracing is on.
func (p *Publisher) send(ctx context.Context, subject string, data []byte, v store.Version) error {
	if !p.tracing.Enabled() {
		return p.nc.Publish(subject, data)
	}
	ctx, sp := p.tracer.Start(ctx, "sync.announce", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", subject),
		attribute.Int64("sluice.config.version", v.Version), attribute.Int("sluice.config.changes", len(v.Changes))))
	defer sp.End()
	m := &nats.Msg{Subject: subject, Data: data}
	p.tracing.InjectMsg(ctx, m)
	err := p.nc.PublishMsg(m)
	if err != nil {
		sp.SetStatus(codes.Error, "publish failed")
	}
	return err
}
