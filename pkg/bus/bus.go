// Package bus names the NATS subjects and the JetStream stream Sluice uses.
// They are a public contract: docs/usage-events.md and docs/sync.md describe
// them for subscribers.
package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Subjects.
const (
	// UsagePrefix + api id carries batches of usage events (JetStream).
	UsagePrefix = "sluice.usage."
	// UsageWildcard matches every API's usage subject.
	UsageWildcard = "sluice.usage.>"
	// SyncPrefix + kind ("api", "policy", "key") announces a config change.
	SyncPrefix = "sluice.sync."
	// SyncWildcard matches every sync subject.
	SyncWildcard = "sluice.sync.>"
	// NodesPrefix + node id carries gateway heartbeats.
	NodesPrefix = "sluice.nodes."
	// NodesWildcard matches every node's heartbeats.
	NodesWildcard = "sluice.nodes.>"
	// RollupPrefix + api id carries per-minute rollups from analytics.
	RollupPrefix = "sluice.rollup."
)

// UsageStream is the JetStream stream holding usage events.
const UsageStream = "SLUICE_USAGE"

// UsageSubject returns the usage subject of an API.
func UsageSubject(apiID string) string { return UsagePrefix + apiID }

// StreamOptions size the usage stream.
type StreamOptions struct {
	MaxAge      time.Duration // how long events are kept (default 24h)
	MaxBytes    int64         // 0: unbounded
	Replicas    int           // default 1
	DedupWindow time.Duration // duplicate publish window (default 2m)
}

// Config returns the stream configuration of o, defaults filled in.
func (o StreamOptions) Config() jetstream.StreamConfig {
	if o.MaxAge <= 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = 2 * time.Minute
	}
	cfg := jetstream.StreamConfig{
		Name:       UsageStream,
		Subjects:   []string{UsageWildcard},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     o.MaxAge,
		MaxBytes:   o.MaxBytes,
		Replicas:   o.Replicas,
		Duplicates: o.DedupWindow,
	}
	if o.MaxBytes <= 0 {
		cfg.MaxBytes = -1
	}
	return cfg
}

// The usage stream has one owner: the analytics workers (their
// usage_stream settings). ConfigureUsageStream is theirs: it creates the
// stream or brings an existing one to their settings. Everyone else
// (gateways publishing events, tools) calls CreateUsageStream, which creates
// the stream with the given settings only when it does not exist and never
// changes one that does, so a gateway starting or reconnecting leaves the
// owner's retention, size, replicas and duplicate window alone.

// ConfigureUsageStream creates the usage stream with o, or updates an
// existing one to o. Only the stream's owner calls it.
func ConfigureUsageStream(ctx context.Context, js jetstream.JetStream, o StreamOptions) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, o.Config())
	if err != nil {
		return nil, fmt.Errorf("usage stream %s: %w", UsageStream, err)
	}
	return s, nil
}

// CreateUsageStream returns the usage stream, creating it with o when it
// does not exist yet; an existing stream is left as it is.
func CreateUsageStream(ctx context.Context, js jetstream.JetStream, o StreamOptions) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, UsageStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, o.Config())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile
			s, err = js.Stream(ctx, UsageStream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("usage stream %s: %w", UsageStream, err)
	}
	return s, nil
}
