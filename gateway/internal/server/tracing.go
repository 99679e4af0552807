package server

import (
	"context"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicegw/sluice/gateway/internal/proxy"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// The request path's tracing (docs/operations.md, "Tracing"). A request
// is one server span, continuing the client's W3C trace context when it
// sends one, with a child span per stage: route, authenticate, limit (the
// limiter's decision, its Redis round trip included) and upstream (a
// client span whose context the upstream receives in traceparent).
//
// Off (Options.Tracing nil), every helper here returns at its first line:
// no span, no context, no header read or written, no allocation
// (TestTracingOffAllocatesNothing). A client's traceparent then reaches the
// upstream unchanged, as any other header.
//
// Attributes carry bounded values only: the API id, the route's listen
// path or endpoint pattern, the method (standard ones, else _OTHER), the
// status, the error code, the key id. Never a key, a token or the raw path.

// Span names of the request path's stages.
const (
	spanRoute        = "route"
	spanAuthenticate = "authenticate"
	spanLimit        = "limit"
	spanUpstream     = "upstream"
)

// tracerName is the instrumentation scope of the gateway's spans.
const tracerName = "github.com/sluicegw/sluice/gateway"

// tracer is the server's tracing: on is false when off, and then nothing
// else is used.
type tracer struct {
	on   bool
	t    trace.Tracer
	prop propagation.TextMapPropagator
}

func newTracer(p *tracing.Provider) tracer {
	return tracer{on: p.Enabled(), t: p.Tracer(tracerName), prop: propagation.TraceContext{}}
}

// requestTrace is a request's open spans, zero when tracing is off.
type requestTrace struct {
	ctx      context.Context // carries the server span
	span     trace.Span      // the server span
	upstream trace.Span      // the upstream span while it is open
}

// traceRequest starts the request's server span, continuing the trace
// context of the client's traceparent when it holds a valid one.
func (s *Server) traceRequest(ctx *fasthttp.RequestCtx, x *exchange) {
	if !s.tracer.on {
		return
	}
	parent := s.tracer.prop.Extract(s.base, requestCarrier{&ctx.Request.Header})
	method := spanMethod(ctx.Method())
	scheme := "http"
	if ctx.IsTLS() {
		scheme = "https"
	}
	x.trace.ctx, x.trace.span = s.tracer.t.Start(parent, method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", method), attribute.String("url.scheme", scheme)))
}

// traced runs one stage of the request path, inside a child span of the
// request's span when tracing is on.
func (s *Server) traced(ctx *fasthttp.RequestCtx, x *exchange, name string, stage func(*fasthttp.RequestCtx, *exchange) *Error) *Error {
	if x.trace.span == nil {
		return stage(ctx, x)
	}
	_, sp := s.tracer.t.Start(x.trace.ctx, name)
	err := stage(ctx, x)
	switch name {
	case spanRoute:
		if x.api != nil {
			sp.SetAttributes(attribute.String("sluice.api.id", x.api.ID), attribute.String("http.route", routePattern(x)))
			x.trace.span.SetName(spanMethod(ctx.Method()) + " " + routePattern(x))
		}
	case spanAuthenticate:
		sp.SetAttributes(attribute.String("sluice.auth.mode", x.api.Auth.Mode))
		if x.sess != nil && x.sess.KeyID != "" {
			sp.SetAttributes(attribute.String("sluice.key.id", x.sess.KeyID))
		}
	case spanLimit:
		sp.SetAttributes(attribute.String("sluice.limit.outcome", x.dec.Outcome.String()),
			attribute.Int("sluice.limit.rules", len(x.lreq.Rules)+len(x.lreq.Quotas)),
			attribute.Bool("sluice.limit.fallback", x.dec.Fallback))
		if x.dec.Reason != "" {
			sp.SetAttributes(attribute.String("sluice.limit.reason", x.dec.Reason))
		}
	}
	endWith(sp, err)
	return err
}

// traceUpstream starts the upstream span and writes its context into the
// request the upstream receives (traceparent, and tracestate when the
// client's trace has one). Any traceparent or tracestate the client sent
// is replaced: the upstream's parent is the gateway's span. It runs after
// the hop-by-hop strip, so no Connection option removes the headers.
func (s *Server) traceUpstream(ctx *fasthttp.RequestCtx, x *exchange) {
	if x.trace.span == nil {
		return
	}
	uctx, sp := s.tracer.t.Start(x.trace.ctx, spanUpstream, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("sluice.api.id", x.api.ID)))
	x.trace.upstream = sp
	h := &ctx.Request.Header
	h.Del("traceparent")
	h.Del("tracestate")
	s.tracer.prop.Inject(uctx, requestCarrier{h})
}

// traceUpstreamDone ends the upstream span once the upstream answered (or
// failed: err, classified as in the upstream metrics).
func (x *exchange) traceUpstreamDone(status int, err error) {
	sp := x.trace.upstream
	if sp == nil {
		return
	}
	x.trace.upstream = nil
	if err != nil {
		sp.SetAttributes(attribute.String("error.type", proxy.Cause(err)))
		sp.SetStatus(codes.Error, proxy.Cause(err))
	} else {
		sp.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			sp.SetStatus(codes.Error, "")
		}
	}
	sp.End()
}

// traceEnd ends the request's spans with its outcome; record calls it once
// per request (when a streamed response ends, for those).
func (s *Server) traceEnd(x *exchange, status int) {
	sp := x.trace.span
	if sp == nil {
		return
	}
	x.traceUpstreamDone(status, nil)
	sp.SetAttributes(attribute.Int("http.response.status_code", status), attribute.String("sluice.request_id", string(x.rid)))
	if x.api != nil {
		sp.SetAttributes(attribute.String("sluice.api.id", x.api.ID), attribute.String("http.route", routePattern(x)))
	}
	if x.err != nil {
		sp.SetAttributes(attribute.String("sluice.error.code", x.err.Code))
	}
	if x.limited != "" {
		sp.SetAttributes(attribute.String("sluice.limited", x.limited))
	}
	if status >= 500 {
		sp.SetStatus(codes.Error, "")
	}
	sp.End()
	x.trace = requestTrace{}
}

// endWith ends a stage span; a stage that answered the request sets its
// error code, and an error status when the gateway or a dependency failed
// (5xx); a refusal (4xx) is the stage doing its job.
func endWith(sp trace.Span, err *Error) {
	if err != nil {
		sp.SetAttributes(attribute.String("sluice.error.code", err.Code))
		if err.Status >= 500 {
			sp.SetStatus(codes.Error, err.Code)
		}
	}
	sp.End()
}

// routePattern is the matched endpoint's pattern, or the API's listen path.
func routePattern(x *exchange) string {
	if x.endpoint != nil {
		return x.endpoint.Pattern.String()
	}
	if x.route.Prefix == "" {
		return "/"
	}
	return x.route.Prefix
}

// spanMethod is the method for span names and attributes: a standard one,
// or _OTHER (a client's made-up method is no bounded value).
func spanMethod(m []byte) string {
	for _, s := range methods {
		if s == string(m) {
			return s
		}
	}
	return "_OTHER"
}

// requestCarrier reads and writes trace context headers of a fasthttp
// request (propagation.TextMapCarrier).
type requestCarrier struct{ h *fasthttp.RequestHeader }

func (c requestCarrier) Get(key string) string { return string(c.h.Peek(key)) }

func (c requestCarrier) Set(key, value string) { c.h.Set(key, value) }

func (c requestCarrier) Keys() []string {
	var keys []string
	for k := range c.h.All() {
		keys = append(keys, string(k))
	}
	return keys
}
