// Package nodes tracks gateway nodes from their heartbeats on
// <ns>.nodes.<node-id> (bus.Names).
//
// Every syncer instance subscribes to every heartbeat (plain NATS fan-out),
// so all instances hold the same view without sharing state: a node is
// live when its last heartbeat is younger than the TTL. A syncer that has
// just started knows every live node after one heartbeat interval.
//
// Heartbeats are trusted only as far as NATS permissions go: any party that
// may publish on <ns>.nodes.> can announce a node. What such a party can
// do to the registry is bounded: a heartbeat must be well formed, within
// bus's field bounds and on its own node's subject, or it is dropped and
// counted; the registry holds at most MaxNodes nodes; a node silent for
// ForgetAfter TTLs is forgotten.
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

const (
	// MaxNodes bounds the nodes the registry holds. A heartbeat from a new
	// node when it is full replaces the node heard from least recently if
	// that one is no longer live; otherwise it is dropped.
	MaxNodes = 4096
	// ForgetAfter is how many TTLs a silent node stays listed (not live).
	ForgetAfter = 100
	// pruneEvery spaces the sweeps for forgotten nodes.
	pruneEvery = time.Second
	// warnEvery spaces the warnings about dropped heartbeats.
	warnEvery = 10 * time.Second
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
	nc      *nats.Conn
	names   bus.Names
	ttl     time.Duration
	max     int
	now     func() time.Time
	log     zerolog.Logger
	dropLog zerolog.Logger // sampled

	live    prometheus.GaugeFunc
	dropped *prometheus.CounterVec

	mu        sync.Mutex
	nodes     map[string]*Node
	lastPrune time.Time
	// fullUntil: while the registry is full, no node can be evicted before
	// this time (its least recent heartbeat plus the TTL).
	fullUntil time.Time
	sub       *nats.Subscription
}

// New returns a registry counting a node live for ttl after a heartbeat. It
// registers the sluice_nodes_live gauge and the
// sluice_nodes_heartbeats_dropped_total counter on reg.
func New(nc *nats.Conn, names bus.Names, ttl time.Duration, log zerolog.Logger, reg prometheus.Registerer) (*Registry, error) {
	r := &Registry{nc: nc, names: names, ttl: ttl, max: MaxNodes, now: time.Now, nodes: map[string]*Node{},
		log: log.With().Str("component", "syncer.nodes").Logger()}
	r.dropLog = r.log.Sample(&zerolog.BurstSampler{Burst: 1, Period: warnEvery})
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
	r.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_nodes_heartbeats_dropped_total",
		Help: "Heartbeats dropped: malformed (bad JSON or a field out of bounds), subject (id not the subject's node), full (registry at its node limit).",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{r.live, r.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("nodes: metrics: %w", err)
		}
	}
	return r, nil
}

// Start subscribes to heartbeats.
func (r *Registry) Start(context.Context) error {
	sub, err := r.nc.Subscribe(r.names.NodesWildcard(), func(m *nats.Msg) { r.Receive(m.Subject, m.Data) })
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

// Receive checks a heartbeat message received on subject and records it,
// or drops and counts it.
func (r *Registry) Receive(subject string, data []byte) {
	hb, err := bus.DecodeHeartbeat(data)
	if err != nil {
		r.drop("malformed", subject, err)
		return
	}
	if subject != r.names.NodeSubject(hb.ID) {
		r.drop("subject", subject, fmt.Errorf("heartbeat of node %q on another node's subject", hb.ID))
		return
	}
	if !r.Observe(hb) {
		r.drop("full", subject, fmt.Errorf("registry holds %d live nodes, its limit", r.max))
	}
}

func (r *Registry) drop(reason, subject string, err error) {
	r.dropped.WithLabelValues(reason).Inc()
	r.dropLog.Warn().Err(err).Str("subject", subject).Str("reason", reason).Msg("heartbeat dropped")
}

// Observe records a heartbeat, received now. It returns false when the
// node is new and the registry is full of live nodes.
func (r *Registry) Observe(hb bus.Heartbeat) bool {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(now)
	if _, known := r.nodes[hb.ID]; !known && len(r.nodes) >= r.max && !r.evictOne(now) {
		return false
	}
	r.nodes[hb.ID] = &Node{ID: hb.ID, Address: hb.Address, Version: hb.Version,
		ConfigVersion: hb.ConfigVersion, StartedAt: hb.StartedAt, LastHeartbeat: now}
	return true
}

// prune forgets nodes silent for ForgetAfter TTLs, at most once per
// pruneEvery; callers hold mu.
func (r *Registry) prune(now time.Time) {
	if now.Sub(r.lastPrune) < pruneEvery {
		return
	}
	r.lastPrune = now
	for id, n := range r.nodes {
		if now.Sub(n.LastHeartbeat) > ForgetAfter*r.ttl {
			delete(r.nodes, id)
		}
	}
}

// evictOne removes the node heard from least recently if it is no longer
// live; callers hold mu.
func (r *Registry) evictOne(now time.Time) bool {
	if now.Before(r.fullUntil) {
		return false
	}
	var oldest *Node
	for _, n := range r.nodes {
		if oldest == nil || n.LastHeartbeat.Before(oldest.LastHeartbeat) {
			oldest = n
		}
	}
	if oldest == nil || now.Sub(oldest.LastHeartbeat) <= r.ttl {
		if oldest != nil {
			r.fullUntil = oldest.LastHeartbeat.Add(r.ttl)
		}
		return false
	}
	delete(r.nodes, oldest.ID)
	return true
}

// List returns every known node sorted by id, with Live computed now.
func (r *Registry) List() []Node {
	now := r.now()
	r.mu.Lock()
	r.prune(now)
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
