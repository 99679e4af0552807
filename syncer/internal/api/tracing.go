package api

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceCall starts the server span of an admin call, continuing the
// caller's W3C trace context; the request it returns carries the span, so
// the announcement of a change it makes (publish.Publisher) is its child
// and the nodes' apply spans follow. Off (no Options.Tracing): r as it
// is, no span. The span is named by the route's pattern
// ("PUT /v1/apis/{id}"), never by the raw path.
func (s *Server) traceCall(r *http.Request, rt route, label string) (*http.Request, trace.Span) {
	tp := s.opts.Tracing
	if !tp.Enabled() {
		return r, nil
	}
	ctx := tp.Propagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	attrs := []attribute.KeyValue{attribute.String("http.route", rt.path)}
	if rt.method != "" {
		attrs = append(attrs, attribute.String("http.request.method", rt.method))
	}
	ctx, sp := tp.Tracer("github.com/sluicegw/sluice/syncer/api").Start(ctx, label,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return r.WithContext(ctx), sp
}

// endCall ends an admin call's span with its status code.
func endCall(sp trace.Span, code int) {
	if sp == nil {
		return
	}
	sp.SetAttributes(attribute.Int("http.response.status_code", code))
	if code >= 500 {
		sp.SetStatus(codes.Error, "")
	}
	sp.End()
}
