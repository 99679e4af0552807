package worker

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/pkg/bus"
	tu "github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/usage"
)

const benchPerMsg = 500

func benchWorker(b *testing.B, nc *nats.Conn, st *aggregates.Store) *Worker {
	w, err := New(zerolog.Nop(), nc, st, Options{
		Durable: "bench", AckWait: 30 * time.Second, MaxAckPending: 2000, FetchBatch: 200,
		FetchWait: 100 * time.Millisecond, Grace: 10 * time.Second, CloseInterval: time.Second,
	}, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	return w
}

func benchMsg(api string, seq, n int, at time.Time) *nats.Msg {
	var data []byte
	for j := 0; j < n; j++ {
		i := seq*n + j
		ev := usage.Event{ID: fmt.Sprintf("bench-%s-%d", api, i), Time: at.UnixNano(), Node: "n1", API: api,
			KeyHash: fmt.Sprintf("%064x", i%50), Method: "GET", Path: "/p", Endpoint: fmt.Sprintf("/e%d", i%5),
			Status: []int{200, 200, 200, 201, 404, 429, 500}[i%7], Latency: int64(200 + i%20000), BytesIn: 10, BytesOut: 300}
		data = usage.AppendJSON(data, &ev)
	}
	m := nats.NewMsg(bus.Names{}.UsageSubject(api))
	m.Data = data
	m.Header.Set(usage.HeaderMsgID, fmt.Sprintf("%s-%d", api, seq))
	return m
}

// BenchmarkAggregate measures the events per second one worker takes from
// JetStream into Redis (fetch, decode, pre-sum, one script per API, ack).
// b.N is the number of events; run with -benchtime=400000x.
func BenchmarkAggregate(b *testing.B) {
	rd, ns := tu.StartRedis(b), tu.StartNATS(b)
	nc := ns.Conn(b)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := bus.CreateUsageStream(ctx, js, bus.Names{}, bus.StreamOptions{}); err != nil {
		b.Fatal(err)
	}
	msgs := (b.N + benchPerMsg - 1) / benchPerMsg
	now := time.Now()
	for i := 0; i < msgs; i++ {
		if _, err := js.PublishMsgAsync(benchMsg(fmt.Sprintf("api%d", i%4), i, benchPerMsg, now)); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	st := aggregates.New(rd.Client(b), time.Hour, 24*time.Hour)
	w := benchWorker(b, nc, st)
	b.ReportAllocs()
	b.ResetTimer()
	if err := w.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for {
		info, err := w.cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(msgs*benchPerMsg)/b.Elapsed().Seconds(), "events/s")
	_ = w.Shutdown(ctx)
}

// BenchmarkVisibleLag measures the time from publishing a batch of 100
// events to its counts being readable from Redis (the open minute the
// query API serves); it reports p50 and p99.
func BenchmarkVisibleLag(b *testing.B) {
	rd, ns := tu.StartRedis(b), tu.StartNATS(b)
	nc := ns.Conn(b)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	rdb := rd.Client(b)
	st := aggregates.New(rdb, time.Hour, 24*time.Hour)
	w := benchWorker(b, nc, st)
	if err := w.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.Shutdown(ctx) }()
	lags := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := js.PublishMsg(ctx, benchMsg("lag", i, 100, start)); err != nil {
			b.Fatal(err)
		}
		for {
			tot, _, err := st.Totals(ctx, "lag")
			if err == nil && tot[0] >= int64(100*(i+1)) {
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		lags = append(lags, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99_ms")
}
