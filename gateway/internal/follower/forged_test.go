package follower

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// A party that may publish on sluice.sync.> can send any message. A node
// must apply exactly what the changelog in Redis holds whatever the
// messages say: these tests forge, replay and reorder them.

// publishRaw sends a message as anyone with publish rights could.
func (c *cluster) publishRaw(msg bus.SyncMessage) {
	c.t.Helper()
	data, _ := json.Marshal(msg)
	if err := c.nc.Publish(bus.Names{}.SyncSubject(msg.Kind()), data); err != nil {
		c.t.Fatalf("publish: %v", err)
	}
}

// waitCount waits until counter c reaches want.
func waitCount(t *testing.T, c prometheus.Counter, want float64, what string) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if got := promtest.ToFloat64(c); got != want {
			return fmt.Errorf("%s: %v, want %v", what, got, want)
		}
		return nil
	})
}

func keylessAPI(id, listen string, mode string) store.Change {
	body, _ := json.Marshal(model.API{ID: id, ListenPath: listen, Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: mode}})
	return store.Change{Kind: store.KindAPI, Op: store.OpPut, ID: id, Body: body}
}

func TestForgedMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, c *cluster, n *node)
	}{
		{"forged next version with no changes does not hide the real one", func(t *testing.T, c *cluster, n *node) {
			// The attack: announce version 2 before it exists, then the
			// real version 2 switches the API from keyless to api_key.
			// Messages from one connection arrive in order: the forged one
			// first.
			c.publishRaw(bus.SyncMessage{Version: 2})
			c.write(keylessAPI("a", "/a/", model.AuthAPIKey))
			c.converge(n)
			if mode := n.state.Snapshot().API("a").Auth.Mode; mode != model.AuthAPIKey {
				t.Fatalf("auth mode %q after the real write, want %q", mode, model.AuthAPIKey)
			}
		}},
		{"forged content is never applied", func(t *testing.T, c *cluster, n *node) {
			// Version 2 exists in Redis (another API), but the message
			// claims it deleted API a and changed key k.
			c.writeQuiet(keylessAPI("b", "/b/", model.AuthKeyless))
			c.publishRaw(bus.SyncMessage{Version: 2, Changes: []bus.SyncChange{
				{Kind: store.KindAPI, Op: store.OpDelete, ID: "a"},
				{Kind: store.KindKey, Op: store.OpDelete, ID: "k", Hash: n.keyHash, OldHash: n.keyHash},
			}})
			c.converge(n)
			snap := n.state.Snapshot()
			if snap.API("a") == nil || snap.API("b") == nil {
				t.Fatalf("after version 2: api a %v, api b %v; want both", snap.API("a") != nil, snap.API("b") != nil)
			}
			// A message may evict a cached session (so a revocation heard
			// while Redis is down applies at once), which costs a re-read
			// from the store: the key the message claims deleted still works.
			if _, err := n.state.Sessions().Lookup(context.Background(), auth.SumKey([]byte(n.keySecret))); err != nil {
				t.Fatalf("key after a forged deletion: %v, want its session", err)
			}
		}},
		{"forged far-future version is ignored and changes nothing", func(t *testing.T, c *cluster, n *node) {
			c.publishRaw(bus.SyncMessage{Version: 1 << 62, Changes: []bus.SyncChange{{Kind: store.KindAPI, Op: store.OpDelete, ID: "a"}}})
			waitCount(t, n.f.m.ahead, 1, "messages ahead of the store")
			for i := range 3 {
				c.write(keylessAPI(fmt.Sprintf("x%d", i), fmt.Sprintf("/x%d/", i), model.AuthKeyless))
			}
			c.converge(n)
			if snap := n.state.Snapshot(); snap.Version != 4 || snap.API("a") == nil || snap.API("x2") == nil {
				t.Fatalf("snapshot at %d", snap.Version)
			}
		}},
		{"replayed old messages are no-ops", func(t *testing.T, c *cluster, n *node) {
			v2 := c.write(keylessAPI("a", "/a/", model.AuthAPIKey))
			c.converge(n)
			applied := promtest.ToFloat64(n.f.m.applied)
			for range 5 {
				c.announce(1)
				c.announce(v2)
			}
			waitCount(t, n.f.m.stale, 10, "stale messages")
			if a := promtest.ToFloat64(n.f.m.applied); a != applied {
				t.Fatalf("applied %v versions after replays, want %v", a, applied)
			}
			if mode := n.state.Snapshot().API("a").Auth.Mode; mode != model.AuthAPIKey {
				t.Fatalf("auth mode %q after replays, want %q", mode, model.AuthAPIKey)
			}
		}},
		{"out of order messages apply the changelog in order", func(t *testing.T, c *cluster, n *node) {
			v2 := c.writeQuiet(keylessAPI("a", "/a/", model.AuthAPIKey))
			v3 := c.writeQuiet(keylessAPI("a", "/a2/", model.AuthAPIKey))
			c.announce(v3)
			c.announce(v2)
			c.converge(n)
			if a := promtest.ToFloat64(n.f.m.applied); a != 3 {
				t.Fatalf("applied %v versions, want 3 (each once, in order)", a)
			}
			if lp := n.state.Snapshot().API("a").ListenPath; lp != "/a2/" {
				t.Fatalf("listen path %q, want the one of version 3", lp)
			}
		}},
		{"forged messages while real ones flow", func(t *testing.T, c *cluster, n *node) {
			for i := range 20 {
				c.publishRaw(bus.SyncMessage{Version: int64(i + 2)}) // always one ahead
				c.write(keylessAPI(fmt.Sprintf("y%d", i), fmt.Sprintf("/y%d/", i), model.AuthKeyless))
			}
			c.converge(n)
			if snap := n.state.Snapshot(); len(snap.APIs) != 21 {
				t.Fatalf("%d APIs at version %d, want 21", len(snap.APIs), snap.Version)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 0)
			c.writeQuiet(keylessAPI("a", "/a/", model.AuthKeyless)) // version 1
			n := c.startNode("n1", Options{CheckInterval: slow})
			c.converge(n)
			// A key with a cached session, to see forged evictions.
			secret := "forged-test-key-0123456789"
			k := &model.Key{ID: "k", Hash: model.HashKey([]byte(secret))}
			if _, err := c.store.Client().HSet(context.Background(), store.Layout{}.Keys(), k.Hash, mustJSON(k)).Result(); err != nil {
				t.Fatal(err)
			}
			if _, err := n.state.Sessions().Lookup(context.Background(), auth.SumKey([]byte(secret))); err != nil {
				t.Fatal(err)
			}
			n.keyHash, n.keySecret = k.Hash, secret
			tt.run(t, c, n)
			// The periodic check would see nothing to repair: the store and
			// the node agree on the version and on what it holds.
			if v, _ := c.store.Version(context.Background()); v != n.state.Version() {
				t.Fatalf("node at %d, store at %d", n.state.Version(), v)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
