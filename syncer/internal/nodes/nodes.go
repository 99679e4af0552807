// Package nodes tracks gateway nodes from their heartbeats on
// sluice.nodes.<node-id>.
//
// Every syncer instance subscribes to every heartbeat (plain NATS fan-out),
// so all instances hold the same view without sharing state: a node is
// live when its last heartbeat is younger than the TTL. A syncer that has
// just started knows every live node after one heartbeat interval.
package nodes

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/bus"
)

// Node is what the syncer knows about one gateway node.
type Node struct {
	ID            string    `json:"id"`
	Address       string    `json:"address"`
	Version       string    `json:"version"`
	ConfigVersion int64     `json:"config_version"`
	StartedAt     time.Time `json:"started_at"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	Live          bool      `json:"live"`
}

// Registry holds the last heartbeat of every node.
type Registry struct {
	nc  *nats.Conn
	ttl time.Duration
	now func() time.Time
	log zerolog.Logger

	live prometheus.GaugeFunc

	mu    sync.Mutex
	nodes map[string]*Node
	sub   *nats.Subscription
}

// New returns a registry counting a node live for ttl after a heartbeat. It
// registers the sluice_nodes_live gauge on reg.
func New(nc *nats.Conn, ttl time.Duration, log zerolog.Logger, reg prometheus.Registerer) (*Registry, error) {
	r := &Registry{nc: nc, ttl: ttl, now: time.Now, nodes: map[string]*Node{},
		log: log.With().Str("component", "syncer.nodes").Logger()}
	r.live = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_nodes_live", Help: "Gateway nodes with a heartbeat within the node TTL.",
	}, func() float64 {
		n := 0
		for _, nd := range r.List() {
			if nd.Live {
				n++
			}
		}
		return float64(n)
	})
	if err := reg.Register(r.live); err != nil {
		return nil, fmt.Errorf("nodes: metrics: %w", err)
	}
	return r, nil
}

// Start subscribes to heartbeats.
func (r *Registry) Start(context.Context) error {
	sub, err := r.nc.Subscribe(bus.NodesWildcard, func(m *nats.Msg) {
		hb, err := bus.DecodeHeartbeat(m.Data)
		if err != nil {
			r.log.Debug().Err(err).Str("subject", m.Subject).Msg("ignoring bad heartbeat")
			return
		}
		r.Observe(hb)
	})
	if err != nil {
		return fmt.Errorf("nodes: subscribe: %w", err)
	}
	r.mu.Lock()
	r.sub = sub
	r.mu.Unlock()
	return nil
}

// Shutdown unsubscribes.
func (r *Registry) Shutdown(context.Context) error {
	r.mu.Lock()
	sub := r.sub
	r.sub = nil
	r.mu.Unlock()
	if sub != nil {
		return sub.Unsubscribe()
	}
	return nil
}

// Observe records a heartbeat, received now.
func (r *Registry) Observe(hb bus.Heartbeat) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[hb.ID] = &Node{ID: hb.ID, Address: hb.Address, Version: hb.Version,
		ConfigVersion: hb.ConfigVersion, StartedAt: hb.StartedAt, LastHeartbeat: now}
	// Forget nodes silent for much longer than the TTL, so the map is bounded
	// by the nodes of the recent past.
	for id, n := range r.nodes {
		if now.Sub(n.LastHeartbeat) > 100*r.ttl {
			delete(r.nodes, id)
		}
	}
}

// List returns every known node sorted by id, with Live computed now.
func (r *Registry) List() []Node {
	now := r.now()
	r.mu.Lock()
	out := make([]Node, 0, len(r.nodes))
	for _, n := range r.nodes {
		c := *n
		c.Live = now.Sub(c.LastHeartbeat) <= r.ttl
		out = append(out, c)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Status is the convergence of the live nodes on a config version.
type Status struct {
	ConfigVersion  int64 `json:"config_version"`
	NodesLive      int   `json:"nodes_live"`
	NodesConverged int   `json:"nodes_converged"`
	Converged      bool  `json:"converged"`
}

// Status reports how many live nodes have applied version (or later).
func (r *Registry) Status(version int64) Status {
	s := Status{ConfigVersion: version}
	for _, n := range r.List() {
		if !n.Live {
			continue
		}
		s.NodesLive++
		if n.ConfigVersion >= version {
			s.NodesConverged++
		}
	}
	s.Converged = s.NodesConverged == s.NodesLive
	return s
}
