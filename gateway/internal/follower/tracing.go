package follower

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicegw/sluice/pkg/store"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// maxTraced bounds the announced versions whose trace context a node keeps
// until it applies them.
const maxTraced = 256

// applyTracer traces the apply of each config version. A sync message
// carries the trace context of the admin call that made its version (NATS
// headers, W3C traceparent); the apply of that version is a consumer span,
// child of the syncer's announce span, so one trace shows the admin call
// and every node applying its change. A version applied without such a
// message (periodic check, catch-up after a gap) is a child of the span
// of the write itself, whose traceparent the changelog entry keeps
// (store.Version.TraceParent); a version written untraced gets a span of
// its own.
// Off (nil provider), nothing is kept and no span is made.
type applyTracer struct {
	tp     *tracing.Provider
	t      trace.Tracer
	node   string
	mu     sync.Mutex
	parent map[int64]trace.SpanContext // announced version -> its trace context
}

func newApplyTracer(tp *tracing.Provider, node string) *applyTracer {
	return &applyTracer{tp: tp, t: tp.Tracer("github.com/sluicegw/sluice/gateway/sync"), node: node,
		parent: map[int64]trace.SpanContext{}}
}

// announced keeps the trace context of the message announcing version v.
func (a *applyTracer) announced(m *nats.Msg, v int64) {
	if !a.tp.Enabled() {
		return
	}
	sc := trace.SpanContextFromContext(a.tp.ExtractMsg(context.Background(), m))
	if !sc.IsValid() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.parent) >= maxTraced {
		for k := range a.parent { // forget the oldest half, roughly: any will do
			delete(a.parent, k)
			if len(a.parent) < maxTraced/2 {
				break
			}
		}
	}
	a.parent[v] = sc
}

// start begins the span of applying v; end it with done.
func (a *applyTracer) start(ctx context.Context, v store.Version) (context.Context, trace.Span) {
	if !a.tp.Enabled() {
		return ctx, nil
	}
	a.mu.Lock()
	sc, ok := a.parent[v.Version]
	for k := range a.parent {
		if k <= v.Version {
			delete(a.parent, k)
		}
	}
	a.mu.Unlock()
	if !ok {
		// Applied without its message (catch-up, the periodic check): the
		// changelog entry names the admin call's span.
		sc = tracing.SpanContextOf(v.TraceParent)
		ok = sc.IsValid()
	}
	if ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return a.t.Start(ctx, "sync.apply", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.Int64("sluice.config.version", v.Version), attribute.Int("sluice.config.changes", len(v.Changes)),
		attribute.String("sluice.node.id", a.node)))
}

func (a *applyTracer) done(sp trace.Span, err error) {
	if sp == nil {
		return
	}
	if err != nil {
		sp.SetStatus(codes.Error, "apply failed")
	}
	sp.End()
}
