package server

import (
	"context"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluicegw/sluice/pkg/tracing"
)

// BenchmarkHandlerTracing is BenchmarkHandler's "key+limit+quota" path
// (API key, rate limit in Redis, local upstream) with tracing off, on
// (every request sampled: five spans through the SDK's batch processor,
// exported to nowhere), and on with nothing sampled (spans made, not
// recorded; trace context still propagated):
//
//	go test -run '^$' -bench HandlerTracing -benchmem ./internal/server/
func BenchmarkHandlerTracing(b *testing.B) {
	c, _ := tracedCluster(b)
	cases := []struct {
		name string
		tp   *tracing.Provider
	}{
		{"off", nil},
		{"on", tracing.FromSDK(sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter())))},
		{"on-unsampled", tracing.FromSDK(sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()),
			sdktrace.WithBatcher(tracetest.NewNoopExporter())))},
	}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}
	for _, tc := range cases {
		n := c.node(func(o *Options) { o.Tracing = tc.tp })
		b.Run(tc.name, func(b *testing.B) {
			b.Cleanup(func() { _ = tc.tp.Shutdown(context.Background()) })
			var req fasthttp.Request
			var ctx fasthttp.RequestCtx
			w := newWireRequest(wireGet("/keyed/x", "X-API-Key", secret))
			b.ReportAllocs()
			for b.Loop() {
				w.read(b, &req)
				ctx.Init(&req, remote, nil)
				n.srv.handle(&ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}
