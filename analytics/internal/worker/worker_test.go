package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/pkg/bus"
	tu "github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

// TestRecordedButNotAcked loses the acks of the first fetched batches after
// Redis recorded them: JetStream redelivers them and the dedup records keep
// the totals exact.
func TestRecordedButNotAcked(t *testing.T) {
	t.Parallel()
	rd, ns := tu.StartRedis(t), tu.StartNATS(t)
	nc := ns.Conn(t)
	rdb := rd.Client(t)
	st := aggregates.New(rdb, time.Hour, 24*time.Hour)
	w, err := New(zerolog.Nop(), nc, st, Options{
		Durable: "d", AckWait: 500 * time.Millisecond, MaxAckPending: 100, FetchBatch: 3,
		FetchWait: 50 * time.Millisecond, Grace: time.Second, CloseInterval: time.Hour,
	}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int32
	w.beforeAck = func() bool { return dropped.Add(1) > 2 }
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
	js, _ := jetstream.New(nc)
	const msgs, per = 10, 7
	for i := 0; i < msgs; i++ {
		var data []byte
		for j := 0; j < per; j++ {
			ev := usage.Event{ID: fmt.Sprintf("e%d-%d", i, j), Time: time.Now().UnixNano(), Status: 200}
			data = usage.AppendJSON(data, &ev)
		}
		m := nats.NewMsg(bus.Names{}.UsageSubject("a1"))
		m.Data = data
		m.Header.Set(usage.HeaderMsgID, fmt.Sprintf("m%d", i))
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	tu.WaitFor(t, 15*time.Second, func() error {
		if d := testutil.ToFloat64(w.m.duplicates); d == 0 {
			return fmt.Errorf("no duplicate seen yet")
		}
		info, err := w.cons.Info(context.Background())
		if err != nil || info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("consumer not drained: %v", err)
		}
		return nil
	})
	tot, _, err := st.Totals(context.Background(), "a1")
	if err != nil {
		t.Fatal(err)
	}
	if tot[0] != msgs*per {
		t.Fatalf("total = %d, want %d", tot[0], msgs*per)
	}
	if got := testutil.ToFloat64(w.m.events); got != msgs*per {
		t.Fatalf("events metric = %v, want %d", got, msgs*per)
	}
}
