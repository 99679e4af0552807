package tracing

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
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
