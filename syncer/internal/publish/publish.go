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

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/store"
)

// Publisher sends config versions to the nodes.
type Publisher struct {
	nc        *nats.Conn
	names     bus.Names
	log       zerolog.Logger
	published prometheus.Counter
	errors    prometheus.Counter
}

// New returns a Publisher over nc, registering its metrics on reg.
func New(nc *nats.Conn, names bus.Names, log zerolog.Logger, reg prometheus.Registerer) (*Publisher, error) {
	p := &Publisher{
		nc:    nc,
		names: names,
		log:   log.With().Str("component", "syncer.publish").Logger(),
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
	p.Publish(vs[0])
}

// Publish announces v. While NATS is disconnected the client buffers the
// message and sends it on reconnect; an error is logged and counted, never
// returned to the admin API caller, whose write has already succeeded.
func (p *Publisher) Publish(v store.Version) {
	msg := bus.NewSyncMessage(v)
	data, err := json.Marshal(msg)
	if max := p.nc.MaxPayload(); err == nil && max > 0 && int64(len(data)) > max {
		// Too large for one message (thousands of changes): announce the
		// version alone; nodes read the changes from the changelog anyway.
		msg.Changes, msg.Truncated = []bus.SyncChange{}, true
		data, err = json.Marshal(msg)
	}
	if err == nil {
		err = p.nc.Publish(p.names.SyncSubject(msg.Kind()), data)
	}
	if err != nil {
		p.errors.Inc()
		p.log.Warn().Err(err).Int64("version", v.Version).Msg("announce config version failed; nodes will catch up from the changelog")
		return
	}
	p.published.Inc()
}
