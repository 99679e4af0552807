package tracing

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// InjectMsg writes the trace context of ctx into m's NATS headers
// (traceparent, tracestate), so a subscriber's span can continue the
// publisher's trace. It does nothing when tracing is off or ctx carries no
// span.
func (p *Provider) InjectMsg(ctx context.Context, m *nats.Msg) {
	if p == nil {
		return
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	p.prop.Inject(ctx, propagation.HeaderCarrier(http.Header(m.Header)))
}

// ExtractMsg returns ctx carrying the remote span context m's headers hold
// (ctx unchanged when they hold none, or tracing is off).
func (p *Provider) ExtractMsg(ctx context.Context, m *nats.Msg) context.Context {
	if p == nil || m.Header == nil {
		return ctx
	}
	return p.prop.Extract(ctx, propagation.HeaderCarrier(http.Header(m.Header)))
}

// TraceParent returns the W3C traceparent of the span ctx carries, "" when
// it carries none: what a write stores beside itself, so whoever applies
// it later, without the message that announced it, can still join its
// trace. It needs no provider: the span context is ctx's.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"]
}

// SpanContextOf parses a stored traceparent; a malformed one (the value
// came from outside this process) gives an invalid span context.
func SpanContextOf(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	return trace.SpanContextFromContext(ctx)
}
