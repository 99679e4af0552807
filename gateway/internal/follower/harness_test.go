package follower

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/gateway/internal/state"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// cluster is one Redis and one NATS shared by a writer (doing what the
// syncer does after an admin API write) and any number of nodes.
type cluster struct {
	t     testing.TB
	redis *testutil.Redis
	nats  *testutil.NATS
	store *store.Store
	nc    *nats.Conn
	// env is added to the environment of the binaries run (run).
	env []string
}

func newCluster(t testing.TB, changelogLen int64) *cluster {
	t.Helper()
	r := testutil.StartRedis(t)
	n := testutil.StartNATS(t)
	return &cluster{t: t, redis: r, nats: n, store: store.New(r.Client(t), changelogLen), nc: n.Conn(t)}
}

// write applies changes to the store and announces the version on NATS,
// as the syncer does; it returns the version.
func (c *cluster) write(changes ...store.Change) int64 {
	c.t.Helper()
	v := c.writeQuiet(changes...)
	c.announce(v)
	return v
}

// writeQuiet changes the store without announcing (a lost message).
func (c *cluster) writeQuiet(changes ...store.Change) int64 {
	c.t.Helper()
	v, err := c.store.Apply(context.Background(), changes...)
	if err != nil {
		c.t.Fatalf("apply: %v", err)
	}
	return v
}

func (c *cluster) announce(v int64) {
	c.t.Helper()
	vs, err := c.store.ChangesSince(context.Background(), v-1, 1)
	if err != nil || len(vs) != 1 {
		c.t.Fatalf("read back version %d: %v", v, err)
	}
	msg := bus.NewSyncMessage(vs[0])
	data, _ := json.Marshal(msg)
	if err := c.nc.Publish(bus.Names{}.SyncSubject(msg.Kind()), data); err != nil {
		c.t.Fatalf("publish: %v", err)
	}
}

// node is a gateway node's config side: the real state and a follower.
type node struct {
	state *state.State
	f     *Follower
	reg   *prometheus.Registry
	// keyHash names a key whose session a test cached; keySecret is the
	// key itself.
	keyHash, keySecret string
}

func (c *cluster) startNode(id string, opts Options) *node {
	c.t.Helper()
	return c.startNodeWith(id, opts, nil)
}

// startNodeWith starts a node whose follower drives wrap(state) (nil: the
// state itself).
func (c *cluster) startNodeWith(id string, opts Options, wrap func(*state.State) State) *node {
	c.t.Helper()
	st := store.New(c.redis.Client(c.t), 0)
	s, err := state.New(st, state.Options{MaxBody: 1 << 20, Auth: auth.Options{CacheSize: 1000, TTL: time.Hour,
		NegativeCacheSize: 1000, NegativeTTL: time.Hour, LookupTimeout: time.Second}}, zerolog.Nop())
	if err != nil {
		c.t.Fatal(err)
	}
	opts.NodeID = id
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 50 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	var driven State = s
	if wrap != nil {
		driven = wrap(s)
	}
	f, err := New(c.nats.Conn(c.t), st, driven, opts, zerolog.Nop(), reg)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = f.Shutdown(context.Background()) })
	return &node{state: s, f: f, reg: reg}
}

// converge waits until every node has applied the store's version.
func (c *cluster) converge(nodes ...*node) {
	c.t.Helper()
	testutil.WaitFor(c.t, 10*time.Second, func() error {
		want, err := c.store.Version(context.Background())
		if err != nil {
			return err
		}
		for i, n := range nodes {
			if got := n.state.Version(); got != want {
				return fmt.Errorf("node %d at version %d, store at %d", i, got, want)
			}
		}
		return nil
	})
}

func apiChange(id, listen string) store.Change {
	body, _ := json.Marshal(model.API{ID: id, ListenPath: listen, Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthAPIKey}})
	return store.Change{Kind: store.KindAPI, Op: store.OpPut, ID: id, Body: body}
}

func policyChange(id, api string, rate int64) store.Change {
	body, _ := json.Marshal(model.Policy{ID: id, Access: []model.AccessRight{{API: api}}, RateLimit: &model.Limit{Rate: rate, Per: model.Duration(time.Second)}})
	return store.Change{Kind: store.KindPolicy, Op: store.OpPut, ID: id, Body: body}
}

func keyChange(id, clear string, policies ...string) store.Change {
	k := model.Key{ID: id, Hash: model.HashKey([]byte(clear)), Policies: policies}
	body, _ := json.Marshal(k)
	return store.Change{Kind: store.KindKey, Op: store.OpPut, ID: id, Hash: k.Hash, Body: body}
}

func zerologNop() zerolog.Logger { return zerolog.Nop() }
