package nodes

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/testutil"
)

func TestLivenessAndConvergence(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	r, err := New(nil, bus.Names{}, 6*time.Second, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	r.Observe(bus.Heartbeat{ID: "b", ConfigVersion: 5})
	r.Observe(bus.Heartbeat{ID: "a", ConfigVersion: 4})
	if s := r.Status(5); s.NodesLive != 2 || s.NodesConverged != 1 || s.Converged {
		t.Fatalf("status %+v", s)
	}
	now = now.Add(5 * time.Second)
	r.Observe(bus.Heartbeat{ID: "b", ConfigVersion: 5})
	now = now.Add(2 * time.Second) // a: 7s old, past the TTL
	list := r.List()
	if len(list) != 2 || list[0].ID != "a" || list[0].Live || !list[1].Live {
		t.Fatalf("list %+v", list)
	}
	if s := r.Status(5); s.NodesLive != 1 || !s.Converged {
		t.Fatalf("status %+v", s)
	}
	if n := promtest.ToFloat64(r.live); n != 1 {
		t.Fatalf("sluice_nodes_live %v", n)
	}
	now = now.Add(time.Hour) // long gone nodes are forgotten on the next heartbeat
	r.Observe(bus.Heartbeat{ID: "c"})
	if list := r.List(); len(list) != 1 || list[0].ID != "c" {
		t.Fatalf("list %+v", list)
	}
}

func newTestRegistry(t *testing.T, max int) (*Registry, *time.Time) {
	t.Helper()
	r, err := New(nil, bus.Names{}, 6*time.Second, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	r.max = max
	return r, &now
}

func heartbeat(id string, cv int64) []byte {
	b, _ := json.Marshal(bus.Heartbeat{ID: id, Address: "127.0.0.1:8080", Version: "v1", ConfigVersion: cv})
	return b
}

func TestBadHeartbeatsDroppedAndCounted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, subject, data, reason string
	}{
		{"not JSON", "sluice.nodes.a", `{`, "malformed"},
		{"no id", "sluice.nodes.a", `{"address":"x"}`, "malformed"},
		{"id with a wildcard", "sluice.nodes.>", `{"id":">"}`, "malformed"},
		{"id too long", "sluice.nodes.x", `{"id":"` + strings.Repeat("x", bus.MaxNodeIDLen+1) + `"}`, "malformed"},
		{"address too long", "sluice.nodes.a", `{"id":"a","address":"` + strings.Repeat("x", bus.MaxAddressLen+1) + `"}`, "malformed"},
		{"negative config version", "sluice.nodes.a", `{"id":"a","config_version":-5}`, "malformed"},
		{"oversized", "sluice.nodes.a", `{"id":"a","x":"` + strings.Repeat("x", bus.MaxHeartbeatBytes) + `"}`, "malformed"},
		{"another node's subject", "sluice.nodes.b", `{"id":"a"}`, "subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newTestRegistry(t, MaxNodes)
			r.Receive(tt.subject, []byte(tt.data))
			if n := len(r.List()); n != 0 {
				t.Fatalf("%d nodes listed after a dropped heartbeat", n)
			}
			if got := promtest.ToFloat64(r.dropped.WithLabelValues(tt.reason)); got != 1 {
				t.Fatalf("dropped{reason=%q} = %v, want 1", tt.reason, got)
			}
		})
	}
}

func TestRegistryBoundedAndStaleNodesExpire(t *testing.T) {
	t.Parallel()
	r, now := newTestRegistry(t, 3)
	for _, id := range []string{"a", "b", "c"} {
		r.Receive(bus.Names{}.NodeSubject(id), heartbeat(id, 1))
		*now = now.Add(time.Second)
	}
	r.Receive(bus.Names{}.NodeSubject("d"), heartbeat("d", 1)) // full of live nodes
	if got := promtest.ToFloat64(r.dropped.WithLabelValues("full")); got != 1 {
		t.Fatalf("dropped{full} = %v, want 1", got)
	}
	r.Receive(bus.Names{}.NodeSubject("a"), heartbeat("a", 2)) // known nodes still update
	if l := r.List(); len(l) != 3 || l[0].ConfigVersion != 2 {
		t.Fatalf("list %+v", l)
	}
	*now = now.Add(6500 * time.Millisecond) // b is no longer live: d replaces it
	r.Receive(bus.Names{}.NodeSubject("d"), heartbeat("d", 1))
	if l := r.List(); len(l) != 3 || l[0].ID != "a" || l[1].ID != "c" || l[2].ID != "d" {
		t.Fatalf("list %+v, want a, c, d", l)
	}
	*now = now.Add(ForgetAfter*6*time.Second + time.Second) // silent nodes are forgotten without new heartbeats
	if l := r.List(); len(l) != 0 {
		t.Fatalf("list %+v after every node fell silent, want none", l)
	}
}

// TestHeartbeatsOverNATS: the registry follows heartbeats on a real NATS
// server and drops the ones sent on another node's subject.
func TestHeartbeatsOverNATS(t *testing.T) {
	t.Parallel()
	n := testutil.StartNATS(t)
	r, err := New(n.Conn(t), bus.Names{}, 6*time.Second, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	pub := n.Conn(t)
	for _, m := range []struct{ subject, id string }{{"sluice.nodes.gw-1", "gw-1"}, {"sluice.nodes.gw-2", "gw-1"}} {
		if err := pub.Publish(m.subject, heartbeat(m.id, 3)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if l, d := r.List(), promtest.ToFloat64(r.dropped.WithLabelValues("subject")); len(l) != 1 || l[0].ID != "gw-1" || d != 1 {
			return fmt.Errorf("list %+v, %v dropped", l, d)
		}
		return nil
	})
}
