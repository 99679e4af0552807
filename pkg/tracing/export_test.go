package tracing

import (
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// The export tests set OTEL_* variables with t.Setenv, as an operator
// would, so they cannot run in parallel with other tests of this package.

// TestOTLPHTTPExport runs the real OTLP/HTTP exporter against a receiver on
// 127.0.0.1 named by OTEL_EXPORTER_OTLP_ENDPOINT, and reads the protobuf
// export request it gets: the span, its trace id, and the resource
// (OTEL_SERVICE_NAME overriding the service's own name).
func TestOTLPHTTPExport(t *testing.T) {
	got := make(chan *coltracepb.ExportTraceServiceRequest, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("export request %s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body = zr
		}
		data, err := io.ReadAll(body)
		if err != nil {
			t.Error(err)
			return
		}
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(data, req); err != nil {
			t.Errorf("export body is no ExportTraceServiceRequest: %v", err)
			return
		}
		got <- req
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "gateway-eu")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	exportAndCheck(t, got)
}

// TestOTLPGRPCExport is the same with OTEL_EXPORTER_OTLP_PROTOCOL=grpc,
// against a gRPC trace service on 127.0.0.1.
func TestOTLPGRPCExport(t *testing.T) {
	got := make(chan *coltracepb.ExportTraceServiceRequest, 8)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, &traceService{got: got})
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String())
	t.Setenv("OTEL_SERVICE_NAME", "gateway-eu")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	exportAndCheck(t, got)
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	got chan *coltracepb.ExportTraceServiceRequest
}

func (s *traceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.got <- req
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func exportAndCheck(t *testing.T, got chan *coltracepb.ExportTraceServiceRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := New(ctx, Config{Enabled: true}, Identity{Service: "sluice-gateway", Version: "1.2.3", Instance: "node-a"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled() {
		t.Fatal("tracing.enabled, yet the provider is off")
	}
	_, sp := p.Tracer("sluice/test").Start(ctx, "admin PUT /v1/apis/{id}", trace.WithAttributes(attribute.String("sluice.api.id", "orders")))
	want := sp.SpanContext().TraceID()
	sp.End()
	if err := p.Shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}
	var req *coltracepb.ExportTraceServiceRequest
	select {
	case req = <-got:
	case <-ctx.Done():
		t.Fatal("no export request reached the receiver")
	}
	if len(req.ResourceSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans[0].Spans) != 1 {
		t.Fatalf("export request holds %v, want one span", req)
	}
	rs := req.ResourceSpans[0]
	res := attrs(rs.Resource.Attributes)
	for k, v := range map[string]string{"service.name": "gateway-eu", "service.version": "1.2.3", "service.instance.id": "node-a", "deployment.environment.name": "test"} {
		if res[k] != v {
			t.Errorf("resource %s = %q, want %q (all: %v)", k, res[k], v, res)
		}
	}
	span := rs.ScopeSpans[0].Spans[0]
	if rs.ScopeSpans[0].Scope.Name != "sluice/test" || span.Name != "admin PUT /v1/apis/{id}" {
		t.Errorf("scope %q span %q", rs.ScopeSpans[0].Scope.Name, span.Name)
	}
	if trace.TraceID(span.TraceId) != want {
		t.Errorf("exported trace id %x, want %s", span.TraceId, want)
	}
	if a := attrs(span.Attributes); a["sluice.api.id"] != "orders" {
		t.Errorf("span attributes %v", a)
	}
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.GetStringValue()
	}
	return m
}

// TestOffAndDisabled: tracing.enabled false is a nil provider whatever the
// variables say, and so is OTEL_SDK_DISABLED=true with tracing on; a nil
// provider answers off, a no-op tracer and an empty shutdown.
func TestOffAndDisabled(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	ctx := context.Background()
	p, err := New(ctx, Config{}, Identity{Service: "x"}, zerolog.Nop())
	if err != nil || p != nil {
		t.Fatalf("off: %v %v", p, err)
	}
	t.Setenv("OTEL_SDK_DISABLED", "true")
	if p, err = New(ctx, Config{Enabled: true}, Identity{Service: "x"}, zerolog.Nop()); err != nil || p != nil {
		t.Fatalf("OTEL_SDK_DISABLED: %v %v", p, err)
	}
	if p.Enabled() || p.Propagator() != nil || p.Shutdown(ctx) != nil {
		t.Fatal("a nil provider is not off")
	}
	if _, sp := p.Tracer("t").Start(ctx, "x"); sp.SpanContext().IsValid() || sp.IsRecording() {
		t.Fatal("the off tracer made a real span")
	}
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	if _, err = New(ctx, Config{Enabled: true}, Identity{Service: "x"}, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_EXPORTER") {
		t.Fatalf("bad exporter: %v", err)
	}
}
