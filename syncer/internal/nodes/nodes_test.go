package nodes

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/bus"
)

func TestLivenessAndConvergence(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	r, err := New(nil, 6*time.Second, zerolog.Nop(), reg)
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
