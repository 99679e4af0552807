package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicegw/sluice/gateway/internal/router"
	"github.com/sluicegw/sluice/gateway/internal/state"
	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/testutil"
	"github.com/sluicegw/sluice/pkg/tracing"
)

// tracedCluster is a Redis, an echo upstream and a key-authenticated,
// rate-limited API "keyed" on /keyed.
func tracedCluster(t testing.TB) (*cluster, string) {
	c := newCluster(t)
	up := echoUpstream(t).URL
	keyed := keyless("keyed", "/keyed", up)
	keyed.Auth.Mode = model.AuthAPIKey
	c.put(keyless("open", "/open", up), keyed, keyFor(secret, func(k *model.Key) {
		k.Access = []model.AccessRight{{API: "keyed"}}
		k.RateLimit = &model.Limit{Rate: 1 << 40, Per: model.Duration(time.Second)}
	}))
	return c, up
}

// withTracing gives a node a provider exporting to an in-memory exporter
// as each span ends.
func withTracing(exp *tracetest.InMemoryExporter) func(*Options) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	return func(o *Options) { o.Tracing = tracing.FromSDK(tp) }
}

// spansOf waits until the trace holds a finished server span (it ends just
// before the response is written) and returns the trace's spans by name.
func spansOf(t *testing.T, exp *tracetest.InMemoryExporter, tid trace.TraceID) map[string]tracetest.SpanStub {
	t.Helper()
	out := map[string]tracetest.SpanStub{}
	testutil.WaitFor(t, 5*time.Second, func() error {
		clear(out)
		server := false
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == tid {
				out[s.Name] = s
				server = server || s.SpanKind == trace.SpanKindServer
			}
		}
		if !server {
			return fmt.Errorf("no server span in trace %s yet", tid)
		}
		return nil
	})
	return out
}

// traceparentOf parses the traceparent an upstream received.
func traceparentOf(t *testing.T, e echoed) (trace.TraceID, trace.SpanID) {
	t.Helper()
	tp := e.Headers["Traceparent"]
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[0] != "00" {
		t.Fatalf("upstream received traceparent %q", tp)
	}
	tid, err1 := trace.TraceIDFromHex(parts[1])
	sid, err2 := trace.SpanIDFromHex(parts[2])
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("traceparent %q: %v", tp, err)
	}
	return tid, sid
}

// TestTracingSpanTree: a request through the gateway is a server span with
// a child span per stage (route, authenticate, limit, upstream), and the
// upstream receives a traceparent naming the trace and the upstream span.
// No attribute carries the key or the raw path.
func TestTracingSpanTree(t *testing.T) {
	t.Parallel()
	c, _ := tracedCluster(t)
	exp := tracetest.NewInMemoryExporter()
	n := c.node(withTracing(exp))
	r := do(t, "GET", n.url+"/keyed/orders/42?secret=1", "X-API-Key", secret)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	tid, parent := traceparentOf(t, r.echo)
	spans := spansOf(t, exp, tid)
	srv, ok := spans["GET /keyed"]
	if !ok || srv.SpanKind != trace.SpanKindServer || srv.Parent.IsValid() {
		t.Fatalf("server span: %+v (all: %v)", srv, names(spans))
	}
	for _, name := range []string{spanRoute, spanAuthenticate, spanLimit, spanUpstream} {
		s, ok := spans[name]
		if !ok {
			t.Fatalf("no %q span (all: %v)", name, names(spans))
		}
		if s.Parent.SpanID() != srv.SpanContext.SpanID() {
			t.Errorf("%s span's parent %s, want the server span %s", name, s.Parent.SpanID(), srv.SpanContext.SpanID())
		}
	}
	if up := spans[spanUpstream]; up.SpanContext.SpanID() != parent || up.SpanKind != trace.SpanKindClient {
		t.Errorf("upstream's traceparent parent id %s, want the upstream span %s", parent, up.SpanContext.SpanID())
	}
	want := map[string]map[string]string{
		"GET /keyed":     {"sluice.api.id": "keyed", "http.route": "/keyed", "http.request.method": "GET", "http.response.status_code": "200", "sluice.request_id": r.header.Get("X-Request-ID")},
		spanRoute:        {"sluice.api.id": "keyed", "http.route": "/keyed"},
		spanAuthenticate: {"sluice.auth.mode": "api_key", "sluice.key.id": "k-a-vali"},
		spanLimit:        {"sluice.limit.outcome": "allowed", "sluice.limit.rules": "1"},
		spanUpstream:     {"http.response.status_code": "200"},
	}
	for name, attrs := range want {
		got := attrMap(spans[name])
		for k, v := range attrs {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got[k], v)
			}
		}
	}
	for name, s := range spans {
		for k, v := range attrMap(s) {
			if strings.Contains(v, secret) || strings.Contains(v, "orders/42") {
				t.Errorf("%s: attribute %s = %q carries the key or the raw path", name, k, v)
			}
		}
	}
}

// TestTracingContinuesClientTrace: a client's valid traceparent is the
// server span's parent, and the upstream receives the same trace id, the
// gateway's upstream span as parent, and the client's tracestate.
func TestTracingContinuesClientTrace(t *testing.T) {
	t.Parallel()
	c, _ := tracedCluster(t)
	exp := tracetest.NewInMemoryExporter()
	n := c.node(withTracing(exp))
	const clientTID, clientSID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	r := do(t, "GET", n.url+"/open/x", "traceparent", "00-"+clientTID+"-"+clientSID+"-01", "tracestate", "vendor=abc")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	tid, parent := traceparentOf(t, r.echo)
	if tid.String() != clientTID {
		t.Fatalf("upstream trace id %s, want the client's %s", tid, clientTID)
	}
	if parent.String() == clientSID {
		t.Fatal("upstream's parent is the client's span: the gateway's spans are missing from the trace")
	}
	if ts := r.echo.Headers["Tracestate"]; ts != "vendor=abc" {
		t.Errorf("upstream tracestate %q", ts)
	}
	spans := spansOf(t, exp, tid)
	srv := spans["GET /open"]
	if srv.Parent.SpanID().String() != clientSID || !srv.Parent.IsRemote() {
		t.Fatalf("server span's parent %+v, want the client's span %s", srv.Parent, clientSID)
	}
	if spans[spanUpstream].SpanContext.SpanID() != parent {
		t.Fatal("upstream's parent is not the upstream span")
	}
	if _, ok := spans[spanLimit]; !ok {
		t.Fatalf("no limit span (all: %v)", names(spans))
	}
}

// TestTracingRefusedRequest: a request refused by a stage ends its spans
// with the refusal's code, and reaches no upstream (no upstream span).
func TestTracingRefusedRequest(t *testing.T) {
	t.Parallel()
	c, _ := tracedCluster(t)
	exp := tracetest.NewInMemoryExporter()
	n := c.node(withTracing(exp))
	const clientTID = "0af7651916cd43dd8448eb211c80319c"
	r := do(t, "GET", n.url+"/keyed/x", "traceparent", "00-"+clientTID+"-b7ad6b7169203331-01")
	if r.status != 401 {
		t.Fatalf("status %d", r.status)
	}
	tid, _ := trace.TraceIDFromHex(clientTID)
	spans := spansOf(t, exp, tid)
	if _, ok := spans[spanUpstream]; ok {
		t.Error("an upstream span for a refused request")
	}
	if _, ok := spans[spanLimit]; ok {
		t.Error("a limit span for a request refused before the limit")
	}
	if got := attrMap(spans[spanAuthenticate])["sluice.error.code"]; got != r.code || got == "" {
		t.Errorf("authenticate span error code %q, response %q", got, r.code)
	}
	if got := attrMap(spans["GET /keyed"])["http.response.status_code"]; got != "401" {
		t.Errorf("server span status %q", got)
	}
}

// TestTracingOffPassesThrough: with tracing off the gateway neither reads
// nor writes trace context: no traceparent is made for a request without
// one, and a client's reaches the upstream unchanged.
func TestTracingOffPassesThrough(t *testing.T) {
	t.Parallel()
	c, _ := tracedCluster(t)
	n := c.node()
	r := do(t, "GET", n.url+"/open/x")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if tp, ok := r.echo.Headers["Traceparent"]; ok {
		t.Fatalf("tracing off, yet the upstream received traceparent %q", tp)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r = do(t, "GET", n.url+"/open/x", "traceparent", tp, "tracestate", "vendor=abc")
	if r.echo.Headers["Traceparent"] != tp || r.echo.Headers["Tracestate"] != "vendor=abc" {
		t.Fatalf("tracing off: upstream received %q %q, want the client's unchanged", r.echo.Headers["Traceparent"], r.echo.Headers["Tracestate"])
	}
}

// TestTracingOffAllocatesNothing: with tracing off, the tracing helpers of
// the request path allocate nothing, even for a request carrying a
// traceparent (it is not read). Not parallel: AllocsPerRun refuses to run
// beside parallel tests.
func TestTracingOffAllocatesNothing(t *testing.T) {
	s := &Server{tracer: newTracer(nil), base: context.Background()}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx.Init(&ctx.Request, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
	x := &exchange{api: &state.API{API: &model.API{ID: "a"}}, route: &router.Route{Prefix: "/a"}}
	stage := func(*fasthttp.RequestCtx, *exchange) *Error { return nil }
	allocs := testing.AllocsPerRun(100, func() {
		s.traceRequest(&ctx, x)
		_ = s.traced(&ctx, x, spanRoute, stage)
		s.traceUpstream(&ctx, x)
		x.traceUpstreamDone(200, nil)
		s.traceEnd(x, 200)
	})
	if allocs != 0 {
		t.Fatalf("tracing off: %v allocations per request", allocs)
	}
	if x.trace != (requestTrace{}) {
		t.Fatal("tracing off, yet the request holds spans")
	}
}

func names(spans map[string]tracetest.SpanStub) []string {
	var out []string
	for n := range spans {
		out = append(out, n)
	}
	return out
}

func attrMap(s tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes {
		m[string(a.Key)] = a.Value.String()
	}
	return m
}

// TestTracingHostileTraceparent: a malformed, oversized or all-zero client
// traceparent is not continued; the request is served in a trace of the
// gateway's own, and the upstream receives the gateway's well-formed
// traceparent, never the client's bytes.
func TestTracingHostileTraceparent(t *testing.T) {
	t.Parallel()
	c, _ := tracedCluster(t)
	exp := tracetest.NewInMemoryExporter()
	n := c.node(withTracing(exp))
	for _, tp := range []string{
		"garbage",
		"00-00000000000000000000000000000000-0000000000000000-01", // all-zero ids
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",    // no flags
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
		"00-" + strings.Repeat("z", 32) + "-00f067aa0ba902b7-01",  // not hex
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" + strings.Repeat("-x", 200),
	} {
		r := do(t, "GET", n.url+"/open/x", "traceparent", tp)
		if r.status != 200 {
			t.Fatalf("traceparent %q: status %d: %s", tp, r.status, r.body)
		}
		if got := r.echo.Headers["Traceparent"]; got == tp {
			t.Fatalf("the client's traceparent %q reached the upstream as it was", tp)
		}
		tid, _ := traceparentOf(t, r.echo) // well-formed, or the test fails
		if tid.String() == "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Fatalf("traceparent %q was continued", tp)
		}
	}
}
