package tracing

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// A write's traceparent, stored and read back, names the write's span;
// without a span there is nothing to store.
func TestTraceParentRoundTrip(t *testing.T) {
	t.Parallel()
	if got := TraceParent(context.Background()); got != "" {
		t.Fatalf("traceparent of a context without a span: %q", got)
	}
	ctx, span := sdktrace.NewTracerProvider().Tracer("t").Start(context.Background(), "write")
	defer span.End()
	tp := TraceParent(ctx)
	sc := SpanContextOf(tp)
	if !sc.IsValid() || sc.TraceID() != span.SpanContext().TraceID() || sc.SpanID() != span.SpanContext().SpanID() || !sc.IsRemote() {
		t.Fatalf("%q read back as %+v, want the span %+v", tp, sc, span.SpanContext())
	}
}

// What is read back from Redis is not trusted: anything that is not a
// valid W3C traceparent gives no span context.
func TestSpanContextOfRefusesMalformed(t *testing.T) {
	t.Parallel()
	for _, tp := range []string{
		"",
		"garbage",
		"00-00000000000000000000000000000000-eee19b7ec3c1b174-01", // zero trace id
		"00-5b8efff798038103d269b633813fc60c-0000000000000000-01", // zero span id
		"ff-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01", // forbidden version
		"00-5B8EFFF798038103D269B633813FC60C-EEE19B7EC3C1B174-01", // upper case
		"00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01-" + strings.Repeat("x", 4096),
		"00-5b8efff798038103d269b633813fc6-eee19b7ec3c1b174-01", // short trace id
	} {
		if sc := SpanContextOf(tp); sc.IsValid() {
			t.Errorf("%.60q gave a span context %+v", tp, sc)
		}
	}
}
