package follower

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicegw/sluice/gateway/internal/auth"
	"github.com/sluicegw/sluice/pkg/buildinfo"
	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// slow is a check interval long enough that the periodic check never runs
// in a test: convergence must come from messages, gaps or reconnects.
const slow = time.Hour

func TestThreeFollowersConverge(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	nodes := []*node{c.startNode("n1", Options{CheckInterval: slow}), c.startNode("n2", Options{CheckInterval: slow}), c.startNode("n3", Options{CheckInterval: slow})}
	c.converge(nodes...)
	for i := range 5 {
		c.write(apiChange(fmt.Sprintf("api%d", i), fmt.Sprintf("/api%d/", i)))
	}
	c.write(policyChange("gold", "api0", 10))
	c.converge(nodes...)
	for _, n := range nodes {
		snap := n.state.Snapshot()
		if len(snap.APIs) != 5 || snap.Policy("gold") == nil || snap.Table.Match(nil, []byte("/api3/x")) == nil {
			t.Fatalf("snapshot at %d: %d apis", snap.Version, len(snap.APIs))
		}
		if got := promtest.ToFloat64(n.f.m.reloads); got != 0 {
			t.Fatalf("%v reloads, want none", got)
		}
	}
}

func TestRevokedKeyEvictedOnEveryNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	c.write(apiChange("a", "/a/"))
	c.write(policyChange("gold", "a", 10))
	c.write(keyChange("k1", "clear-key-0123456789", "gold"))
	nodes := []*node{c.startNode("n1", Options{CheckInterval: slow}), c.startNode("n2", Options{CheckInterval: slow}), c.startNode("n3", Options{CheckInterval: slow})}
	c.converge(nodes...)
	sum := auth.SumKey([]byte("clear-key-0123456789"))
	ctx := context.Background()
	for _, n := range nodes { // cache the session (TTL one hour)
		if _, err := n.state.Sessions().Lookup(ctx, sum); err != nil {
			t.Fatal(err)
		}
	}
	c.write(store.Change{Kind: store.KindKey, Op: store.OpDelete, ID: "k1"})
	c.converge(nodes...)
	for i, n := range nodes {
		if _, err := n.state.Sessions().Lookup(ctx, sum); !errors.Is(err, auth.ErrUnknownKey) {
			t.Fatalf("node %d: revoked key lookup = %v, want ErrUnknownKey", i, err)
		}
	}
}

func TestNATSRestartConvergesByCatchUp(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	nodes := []*node{c.startNode("n1", Options{CheckInterval: slow}), c.startNode("n2", Options{CheckInterval: slow}), c.startNode("n3", Options{CheckInterval: slow})}
	c.write(apiChange("a", "/a/"))
	c.converge(nodes...)
	c.nats.Stop()
	for i := range 5 { // the syncer's messages are lost while NATS is down
		c.writeQuiet(policyChange(fmt.Sprintf("p%d", i), "a", 10))
	}
	c.nats.Start()
	c.converge(nodes...)
	for _, n := range nodes {
		if promtest.ToFloat64(n.f.m.catchups) < 1 || n.state.Snapshot().Policy("p4") == nil {
			t.Fatal("converged without a catch-up")
		}
	}
}

func TestLateFollowerConverges(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	c.write(apiChange("a", "/a/"))
	for i := range 99 {
		c.write(policyChange(fmt.Sprintf("p%d", i%10), "a", int64(i+1)))
	}
	n := c.startNode("late", Options{CheckInterval: slow})
	c.converge(n)
	if got := n.state.Snapshot().Policy("p8").RateLimit.Rate; got != 99 {
		t.Fatalf("p8 rate %d, want 99", got)
	}
	if a, r := promtest.ToFloat64(n.f.m.applied), promtest.ToFloat64(n.f.m.reloads); a != 100 || r != 0 {
		t.Fatalf("applied %v reloads %v; want 100 from the changelog, no reload", a, r)
	}
}

func TestTrimmedChangelogReloads(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 10)
	n := c.startNode("n1", Options{CheckInterval: slow})
	c.write(apiChange("a", "/a/"))
	c.converge(n)
	for i := range 30 { // lost messages; the changelog keeps the last 10 only
		c.writeQuiet(policyChange(fmt.Sprintf("p%d", i), "a", 10))
	}
	c.write(apiChange("b", "/b/")) // the gap this reveals reaches past the changelog
	c.converge(n)
	if r := promtest.ToFloat64(n.f.m.reloads); r != 1 {
		t.Fatalf("%v reloads, want 1", r)
	}
	if s := n.state.Snapshot(); s.Policy("p29") == nil || s.API("b") == nil {
		t.Fatal("reload missed objects")
	}
}

func TestPeriodicCheckAloneConverges(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	nodes := []*node{c.startNode("n1", Options{CheckInterval: 50 * time.Millisecond}), c.startNode("n2", Options{CheckInterval: 50 * time.Millisecond})}
	c.converge(nodes...)
	c.nats.Stop() // and it stays down
	c.writeQuiet(apiChange("a", "/a/"))
	c.writeQuiet(policyChange("gold", "a", 5))
	c.converge(nodes...)
}

func TestDuplicateOldAndBogusMessagesIgnored(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	n := c.startNode("n1", Options{CheckInterval: slow})
	v := c.write(apiChange("a", "/a/"))
	c.converge(n)
	c.announce(v) // duplicate
	c.write(apiChange("b", "/b/"))
	c.announce(v) // old
	for _, bad := range []string{`{`, `{"version":0}`, `{"version":1000,"changes":[]}`} {
		if err := c.nc.Publish(bus.Names{}.SyncSubject("api"), []byte(bad)); err != nil {
			t.Fatal(err)
		}
	}
	c.write(apiChange("c", "/c/"))
	c.converge(n)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if m, a := promtest.ToFloat64(n.f.m.malformed), promtest.ToFloat64(n.f.m.ahead); m != 2 || a != 1 {
			return fmt.Errorf("%v malformed and %v ahead messages seen, want 2 and 1", m, a)
		}
		return nil
	})
	if got := n.state.Version(); got != 3 {
		t.Fatalf("version %d after a bogus future message, want 3", got)
	}
	if a := promtest.ToFloat64(n.f.m.applied); a != 3 {
		t.Fatalf("applied %v versions, want 3", a)
	}
}

func TestStoreResetReloads(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	n := c.startNode("n1", Options{CheckInterval: 50 * time.Millisecond})
	c.write(apiChange("a", "/a/"))
	c.write(apiChange("b", "/b/"))
	c.converge(n)
	if err := c.store.Client().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	c.writeQuiet(apiChange("z", "/z/")) // version 1 again
	testutil.WaitFor(t, 10*time.Second, func() error {
		if s := n.state.Snapshot(); s.Version != 1 || s.API("a") != nil || s.API("z") == nil {
			return fmt.Errorf("snapshot at version %d", s.Version)
		}
		return nil
	})
}

func TestHeartbeats(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	sub, err := c.nc.SubscribeSync(bus.Names{}.NodeSubject("hb1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	n := c.startNode("hb1", Options{CheckInterval: slow, Address: "127.0.0.1:8080", BuildVersion: "v1.2.3"})
	c.write(apiChange("a", "/a/"))
	c.converge(n)
	testutil.WaitFor(t, 5*time.Second, func() error {
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			return err
		}
		var hb bus.Heartbeat
		if err := json.Unmarshal(m.Data, &hb); err != nil {
			return err
		}
		if hb.ID != "hb1" || hb.Address != "127.0.0.1:8080" || hb.Version != "v1.2.3" || hb.StartedAt.IsZero() || hb.SentAt.IsZero() {
			t.Fatalf("heartbeat %+v", hb)
		}
		if hb.ConfigVersion != 1 {
			return fmt.Errorf("heartbeat at config version %d", hb.ConfigVersion)
		}
		return nil
	})
}

// TestHeartbeatVersionDefault: a node not told its version reports the
// binary's (pkg/buildinfo), so the syncer's node list shows mixed versions
// during a rollout.
func TestHeartbeatVersionDefault(t *testing.T) {
	t.Parallel()
	var o Options
	o.defaults()
	if want := buildinfo.Get().Version; o.BuildVersion != want || want == "" {
		t.Fatalf("build version %q, want buildinfo's %q", o.BuildVersion, want)
	}
}

func TestNewRejectsBadNodeID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "a.b", "a b", "*", ">"} {
		if _, err := New(nil, nil, nil, Options{NodeID: id}, zerologNop(), nil); err == nil {
			t.Errorf("node id %q accepted", id)
		}
	}
}

// With Redis down, a node hears a version it cannot apply (an API body to
// read) and then a key revocation: the revoked key's cached session is
// forgotten at once, before the store is back, and the snapshot is kept.
func TestRevocationHeardWhileStoreDown(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	c.write(apiChange("a", "/a/"))
	c.write(keyChange("k1", "clear-key-0123456789"))
	n := c.startNode("n1", Options{CheckInterval: slow})
	c.converge(n)
	sum := auth.SumKey([]byte("clear-key-0123456789"))
	ctx := context.Background()
	if _, err := n.state.Sessions().Lookup(ctx, sum); err != nil {
		t.Fatal(err)
	}
	from := n.state.Version()
	c.writeQuiet(apiChange("a", "/a2/"))
	c.writeQuiet(store.Change{Kind: store.KindKey, Op: store.OpDelete, ID: "k1"})
	vs, err := c.store.ChangesSince(ctx, from, 0)
	if err != nil || len(vs) != 2 {
		t.Fatalf("changes: %v %v", vs, err)
	}
	snap := n.state.Snapshot()
	c.redis.Stop()
	for _, v := range vs {
		msg := bus.NewSyncMessage(v)
		data, _ := json.Marshal(msg)
		if err := c.nc.Publish(bus.Names{}.SyncSubject(msg.Kind()), data); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n.state.Sessions().Len() != 0 {
			return errors.New("revoked key's session still cached")
		}
		return nil
	})
	if n.state.Snapshot() != snap || n.state.Version() != from {
		t.Fatalf("snapshot changed during the outage: version %d", n.state.Version())
	}
	c.redis.Start()
	c.converge(n)
}
