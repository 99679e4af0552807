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

// EnsureUsageStream creates the usage stream, or updates its limits when it
// exists. Gateways and analytics workers both call it, so either may start
// first.
func EnsureUsageStream(ctx context.Context, js jetstream.JetStream, o StreamOptions) (jetstream.Stream, error) {
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
	if o.MaxBytes == 0 {
		cfg.MaxBytes = -1
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil && errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, UsageStream)
	}
	if err != nil {
		return nil, fmt.Errorf("usage stream %s: %w", UsageStream, err)
	}
	return s, nil
}
