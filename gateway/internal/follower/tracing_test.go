package follower

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// TestTracingAdminWriteToNodeApply follows a config change from the admin
// call to the nodes: a real sluice-syncer with tracing on (spans made and
// propagated, none exported) takes a write whose request carries a
// traceparent; each node's apply span of the new version is in that trace,
// child of the syncer's announce span (remote parent, from the NATS
// message headers).
func TestTracingAdminWriteToNodeApply(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	c.env = []string{"SLUICE_TRACING_ENABLED=true", "OTEL_TRACES_EXPORTER=none"}
	s := c.startSyncer()
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.FromSDK(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	a := c.startNode("traced-a", Options{Tracing: tp})
	b := c.startNode("traced-b", Options{Tracing: tp})
	c.converge(a, b)

	const clientTID = "5b8efff798038103d269b633813fc60c"
	req, err := http.NewRequestWithContext(context.Background(), "POST", s.url+"/v1/apis",
		strings.NewReader(`{"id":"traced","listen_path":"/traced/","upstream":{"targets":["http://127.0.0.1:1"]},"auth":{"mode":"api_key"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("traceparent", "00-"+clientTID+"-eee19b7ec3c1b174-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("admin write: %d", res.StatusCode)
	}
	version := res.Header.Get("Sluice-Config-Version")
	want, _ := trace.TraceIDFromHex(clientTID)
	testutil.WaitFor(t, 10*time.Second, func() error {
		nodes := map[string]bool{}
		for _, sp := range exp.GetSpans() {
			if sp.Name != "sync.apply" || sp.SpanContext.TraceID() != want {
				continue
			}
			attrs := map[string]string{}
			for _, kv := range sp.Attributes {
				attrs[string(kv.Key)] = kv.Value.String()
			}
			if attrs["sluice.config.version"] != version || !sp.Parent.IsRemote() || sp.SpanKind != trace.SpanKindConsumer {
				t.Fatalf("apply span %v parent %+v kind %v, want version %s under a remote parent", attrs, sp.Parent, sp.SpanKind, version)
			}
			if sp.Parent.SpanID().String() == "eee19b7ec3c1b174" {
				t.Fatal("apply span's parent is the admin client's span: the syncer's spans are missing")
			}
			nodes[attrs["sluice.node.id"]] = true
		}
		if !nodes["traced-a"] || !nodes["traced-b"] {
			return fmt.Errorf("apply spans in the admin call's trace from nodes %v, want traced-a and traced-b", nodes)
		}
		return nil
	})
}

// TestTracingCatchUpJoinsTheWrite: a version a node applies without its
// NATS message (lost; found by the periodic version check) is still a
// child of the write's span: the changelog entry keeps the writer's
// traceparent (a malformed one is refused by tracing.SpanContextOf,
// TestSpanContextOfRefusesMalformed).
func TestTracingCatchUpJoinsTheWrite(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 0)
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.FromSDK(sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)))
	n := c.startNode("catch-up", Options{Tracing: tp, CheckInterval: 50 * time.Millisecond})
	c.converge(n)

	writer := sdktrace.NewTracerProvider()
	ctx, span := writer.Tracer("admin").Start(context.Background(), "admin call")
	v, err := c.store.ApplyAs(ctx, "test", apiChange("late", "/late/"))
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	applied := func(version int64) (found bool, sp tracetest.SpanStub) {
		for _, s := range exp.GetSpans() {
			for _, kv := range s.Attributes {
				if kv.Key == "sluice.config.version" && kv.Value.AsInt64() == version && s.Name == "sync.apply" {
					return true, s
				}
			}
		}
		return false, tracetest.SpanStub{}
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if ok, _ := applied(v); !ok {
			return fmt.Errorf("version %d not applied yet", v)
		}
		return nil
	})
	_, sp := applied(v)
	if sp.SpanContext.TraceID() != span.SpanContext().TraceID() || sp.Parent.SpanID() != span.SpanContext().SpanID() || !sp.Parent.IsRemote() {
		t.Fatalf("catch-up apply span in trace %s under %s, want trace %s under the write's span %s",
			sp.SpanContext.TraceID(), sp.Parent.SpanID(), span.SpanContext().TraceID(), span.SpanContext().SpanID())
	}

}
