// Package bus names the NATS subjects and the JetStream stream Sluice uses
// (Names, one per namespace).
// They are a public contract: docs/usage-events.md and docs/sync.md describe
// them for subscribers.
package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicegw/sluice/pkg/store"
)

// DefaultNamespace is the namespace of an environment that names none.
const DefaultNamespace = store.DefaultNamespace

// Names are the subjects and the stream of one environment, all starting
// with its namespace NS (validation.Namespace), so several environments
// share one NATS account without seeing each other. The zero Names is
// DefaultNamespace's. Build one per service from its nats.namespace and
// pass it down.
//
// With namespace ns:
//
//	<ns>.usage.<api>   batches of usage events (JetStream, stream UsageStream)
//	<ns>.sync.<kind>   config changes ("api", "policy", "key")
//	<ns>.nodes.<node>  gateway heartbeats
//	<ns>.rollup.<api>  per-minute rollups from analytics
type Names struct{ NS string }

// NewNames returns the names of namespace ns ("" is DefaultNamespace).
func NewNames(ns string) Names { return Names{NS: ns} }

// Namespace returns the namespace the subjects start with.
func (n Names) Namespace() string {
	if n.NS == "" {
		return DefaultNamespace
	}
	return n.NS
}

// UsagePrefix + api id is an API's usage subject.
func (n Names) UsagePrefix() string { return n.Namespace() + ".usage." }

// UsageSubject returns the usage subject of an API.
func (n Names) UsageSubject(apiID string) string { return n.UsagePrefix() + apiID }

// UsageWildcard matches every API's usage subject.
func (n Names) UsageWildcard() string { return n.Namespace() + ".usage.>" }

// SyncSubject returns the subject a change of kind ("api", "policy", "key")
// is announced on.
func (n Names) SyncSubject(kind string) string { return n.Namespace() + ".sync." + kind }

// SyncWildcard matches every sync subject.
func (n Names) SyncWildcard() string { return n.Namespace() + ".sync.>" }

// NodesPrefix + node id is a node's heartbeat subject.
func (n Names) NodesPrefix() string { return n.Namespace() + ".nodes." }

// NodeSubject returns the heartbeat subject of a gateway node.
func (n Names) NodeSubject(nodeID string) string { return n.NodesPrefix() + nodeID }

// NodesWildcard matches every node's heartbeats.
func (n Names) NodesWildcard() string { return n.Namespace() + ".nodes.>" }

// RollupSubject returns the subject of an API's per-minute rollups.
func (n Names) RollupSubject(apiID string) string { return n.Namespace() + ".rollup." + apiID }

// RollupWildcard matches every API's rollups.
func (n Names) RollupWildcard() string { return n.Namespace() + ".rollup.>" }

// UsageStream is the JetStream stream holding the usage events:
// "<NS>_USAGE", SLUICE_USAGE for the default namespace.
func (n Names) UsageStream() string {
	return strings.ToUpper(n.Namespace()) + "_USAGE"
}

// AnalyticsDurable is the default name of the consumer the analytics
// workers share: "<ns>-analytics".
func (n Names) AnalyticsDurable() string { return n.Namespace() + "-analytics" }

// StreamOptions size the usage stream.
type StreamOptions struct {
	MaxAge      time.Duration // how long events are kept (default 24h)
	MaxBytes    int64         // 0: unbounded
	Replicas    int           // default 1
	DedupWindow time.Duration // duplicate publish window (default 2m)
}

// Config returns the stream configuration of o for the environment n,
// defaults filled in.
func (o StreamOptions) Config(n Names) jetstream.StreamConfig {
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
		Name:       n.UsageStream(),
		Subjects:   []string{n.UsageWildcard()},
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
func ConfigureUsageStream(ctx context.Context, js jetstream.JetStream, n Names, o StreamOptions) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, o.Config(n))
	if err != nil {
		return nil, fmt.Errorf("usage stream %s: %w", n.UsageStream(), err)
	}
	return s, nil
}

// CreateUsageStream returns the usage stream, creating it with o when it
// does not exist yet; an existing stream is left as it is.
func CreateUsageStream(ctx context.Context, js jetstream.JetStream, n Names, o StreamOptions) (jetstream.Stream, error) {
	name := n.UsageStream()
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, o.Config(n))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile
			s, err = js.Stream(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("usage stream %s: %w", name, err)
	}
	return s, nil
}
