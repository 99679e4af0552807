package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/pkg/bus"
	tu "github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/tracing"
	"github.com/sluicegw/sluice/pkg/usage"
)

// TestTracingApplyStep: with tracing on, each fetched batch is a
// usage.apply span counting its messages, with a usage.record child per
// Redis round, on real NATS JetStream and Redis.
func TestTracingApplyStep(t *testing.T) {
	t.Parallel()
	rd, ns := tu.StartRedis(t), tu.StartNATS(t)
	nc := ns.Conn(t)
	exp := tracetest.NewInMemoryExporter()
	w, err := New(zerolog.Nop(), nc, aggregates.New(rd.Client(t), time.Hour, 24*time.Hour), Options{
		Durable: "d", AckWait: 5 * time.Second, MaxAckPending: 100, FetchBatch: 10,
		FetchWait: 50 * time.Millisecond, Grace: time.Second, CloseInterval: time.Hour,
		Tracing: tracing.FromSDK(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))),
	}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
	js, _ := jetstream.New(nc)
	const msgs = 3
	for i := 0; i < msgs; i++ {
		ev := usage.Event{ID: fmt.Sprintf("e%d", i), Time: time.Now().UnixNano(), Status: 200}
		m := nats.NewMsg(bus.Names{}.UsageSubject("a1"))
		m.Data = usage.AppendJSON(nil, &ev)
		m.Header.Set(usage.HeaderMsgID, fmt.Sprintf("m%d", i))
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	tu.WaitFor(t, 15*time.Second, func() error {
		counted := 0
		applies := map[string]bool{}
		for _, s := range exp.GetSpans() {
			if s.Name != "usage.apply" {
				continue
			}
			applies[s.SpanContext.SpanID().String()] = true
			for _, a := range s.Attributes {
				if a.Key == "messaging.batch.message_count" {
					counted += int(a.Value.AsInt64())
				}
			}
		}
		if counted != msgs {
			return fmt.Errorf("apply spans count %d messages, want %d", counted, msgs)
		}
		for _, s := range exp.GetSpans() {
			if s.Name == "usage.record" && applies[s.Parent.SpanID().String()] {
				return nil
			}
		}
		return fmt.Errorf("no usage.record span under an apply span")
	})
}
