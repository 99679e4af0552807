package publish

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/pkg/bus"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/testutil"
)

// TestPublishLargeVersion: a version whose changes do not fit in one NATS
// message (a declarative apply of 12,000 keys) is still announced, its
// version alone and truncated set; a small one carries its changes.
func TestPublishLargeVersion(t *testing.T) {
	t.Parallel()
	n := testutil.StartNATS(t)
	nc := n.Conn(t)
	names := bus.NewNames("")
	p, err := New(nc, names, zerolog.Nop(), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := n.Conn(t)
	sub, err := sc.SubscribeSync(names.SyncSubject(">"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Flush(); err != nil {
		t.Fatal(err)
	}
	large := store.Version{Version: 7}
	for i := range 12000 {
		large.Changes = append(large.Changes, store.Entry{Kind: store.KindKey, Op: store.OpPut, ID: fmt.Sprintf("k%d", i),
			Hash: model.HashKey(fmt.Appendf(nil, "a%d", i)), OldHash: model.HashKey(fmt.Appendf(nil, "b%d", i))})
	}
	small := store.Version{Version: 8, Changes: large.Changes[:2]}
	p.Publish(context.Background(), large)
	p.Publish(context.Background(), small)
	for _, want := range []struct {
		version   int64
		changes   int
		truncated bool
	}{{7, 0, true}, {8, 2, false}} {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("version %d not announced: %v", want.version, err)
		}
		got, err := bus.DecodeSyncMessage(m.Data)
		if err != nil || got.Version != want.version || len(got.Changes) != want.changes || got.Truncated != want.truncated {
			t.Errorf("announced %d: version %d, %d changes, truncated %v (%v)", want.version, got.Version, len(got.Changes), got.Truncated, err)
		}
	}
}
