package publish

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/store/storetest"
	tu "github.com/sluicegw/sluice/pkg/testutil"
)

// TestAnnounceSendsWhatTheStoreRecorded writes an API to a real Redis,
// announces its version through a real NATS in a namespace, and receives
// on the namespace's subject exactly the changelog entry, counted.
func TestAnnounceSendsWhatTheStoreRecorded(t *testing.T) {
	t.Parallel()
	r := tu.StartRedis(t)
	n := tu.StartNATS(t)
	names := bus.NewNames("staging")
	st := store.NewIn(store.NewLayout("staging"), r.Client(t), 0)
	sub := n.Conn(t)
	msgs := make(chan *nats.Msg, 4)
	if _, err := sub.ChanSubscribe(names.SyncWildcard(), msgs); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := New(n.Conn(t), names, zerolog.Nop(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := storetest.PutAPI(ctx, st, &model.API{ID: "orders", ListenPath: "/orders", Auth: model.Auth{Mode: model.AuthKeyless},
		Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	p.Announce(ctx, st, v)
	select {
	case m := <-msgs:
		var got bus.SyncMessage
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatal(err)
		}
		if m.Subject != "staging.sync."+store.KindAPI || got.Version != v || len(got.Changes) != 1 || got.Changes[0].ID != "orders" {
			t.Fatalf("received %s %+v, want version %d of API orders on staging.sync.%s", m.Subject, got, v, store.KindAPI)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no announcement received")
	}
	if got := testutil.ToFloat64(p.published); got != 1 {
		t.Fatalf("sluice_sync_published_total = %v, want 1", got)
	}
	// A version the changelog does not hold is not announced: counted as
	// an error, nothing sent.
	p.Announce(ctx, st, v+10)
	if got := testutil.ToFloat64(p.errors); got != 1 {
		t.Fatalf("sluice_sync_publish_errors_total = %v, want 1", got)
	}
	// The next message is the one published after it: nothing was sent
	// for v+10 (NATS keeps one publisher's order).
	p.Publish(ctx, store.Version{Version: v + 20})
	select {
	case m := <-msgs:
		var got bus.SyncMessage
		if err := json.Unmarshal(m.Data, &got); err != nil || got.Version != v+20 {
			t.Fatalf("received %s (%v), want the marker version %d: a version the store does not hold was announced", m.Data, err, v+20)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("marker not received")
	}
}

// A closed connection: Publish counts the error and returns, never panics.
func TestPublishOnClosedConnectionCounts(t *testing.T) {
	t.Parallel()
	n := tu.StartNATS(t)
	nc := n.Conn(t)
	p, err := New(nc, bus.Names{}, zerolog.Nop(), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	p.Publish(context.Background(), store.Version{Version: 3})
	if got := testutil.ToFloat64(p.errors); got != 1 {
		t.Fatalf("errors = %v, want 1", got)
	}
}
