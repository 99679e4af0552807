// Package tracing is the OpenTelemetry tracing of every Sluice service: the
// tracing: section of its configuration (one switch, tracing.enabled or
// SLUICE_TRACING_ENABLED, off by default) and the TracerProvider built
// from the standard OTEL_* environment variables when it is on.
//
// Off, a service gets a nil *Provider: its methods answer "off", and the
// code that traces checks Enabled before it touches a span, so tracing off
// costs a request a nil check and no allocation.
//
// On, spans go to an OTLP exporter (http/protobuf by default, or grpc)
// through the SDK's batch span processor, so a request never waits on the
// collector. Trace context travels as W3C traceparent/tracestate
// (propagation.TraceContext): in HTTP headers and in NATS message headers.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sluicegw/sluice/pkg/validation"
)

// Config is the tracing: section of every service's configuration. What
// to export where, and how much to sample, is said by the standard OTEL_*
// variables (see Settings).
type Config struct {
	// Enabled turns tracing on (default false). OTEL_SDK_DISABLED=true
	// turns it off again.
	Enabled bool `yaml:"enabled"`
}

// Validate checks, when tracing is on, the OTEL_* variables the service
// reads, so --check-config reports a misspelt sampler or protocol.
func (c Config) Validate() validation.Errors {
	if !c.Enabled {
		return nil
	}
	_, errs := ReadSettings(os.Getenv)
	return errs
}

// Identity names the service in the spans' resource. OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES override it.
type Identity struct {
	Service  string // service.name, e.g. "sluice-gateway"
	Version  string // service.version
	Instance string // service.instance.id (the node id), optional
}

// Provider is a service's tracer provider. A nil *Provider is tracing
// off: Enabled is false, Tracer is a no-op tracer, Shutdown does nothing.
type Provider struct {
	tp   trace.TracerProvider
	sdk  *sdktrace.TracerProvider // nil when tp is not ours to shut down
	prop propagation.TextMapPropagator
}

// New returns the provider cfg asks for: nil (off) unless cfg.Enabled and
// OTEL_SDK_DISABLED is not true; otherwise an SDK provider exporting as the
// OTEL_* variables say. Export failures are logged on log (at most one
// line a minute; the spans are dropped, the service goes on).
func New(ctx context.Context, cfg Config, id Identity, log zerolog.Logger) (*Provider, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	set, errs := ReadSettings(os.Getenv)
	if len(errs) > 0 {
		return nil, fmt.Errorf("tracing: %w", errs)
	}
	if set.Disabled {
		return nil, nil
	}
	res, err := newResource(ctx, id)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(set.Sampler)}
	if set.Exporter == ExporterOTLP {
		exp, err := newExporter(ctx, set.Protocol)
		if err != nil {
			return nil, fmt.Errorf("tracing: otlp exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	setErrorHandler(log)
	return FromSDK(sdktrace.NewTracerProvider(opts...)), nil
}

// FromSDK wraps an SDK provider built elsewhere (a test's, with an
// in-memory exporter); Shutdown shuts it down.
func FromSDK(tp *sdktrace.TracerProvider) *Provider {
	return &Provider{tp: tp, sdk: tp, prop: propagation.TraceContext{}}
}

func newResource(ctx context.Context, id Identity) (*resource.Resource, error) {
	own := []attribute.KeyValue{semconv.ServiceName(id.Service)}
	if id.Version != "" {
		own = append(own, semconv.ServiceVersion(id.Version))
	}
	if id.Instance != "" {
		own = append(own, semconv.ServiceInstanceID(id.Instance))
	}
	// Later options win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the service's own names.
	res, err := resource.New(ctx, resource.WithSchemaURL(semconv.SchemaURL), resource.WithTelemetrySDK(),
		resource.WithAttributes(own...), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}

func newExporter(ctx context.Context, protocol string) (sdktrace.SpanExporter, error) {
	if protocol == ProtocolGRPC {
		return otlptracegrpc.New(ctx)
	}
	return otlptracehttp.New(ctx)
}

// Enabled reports whether tracing is on.
func (p *Provider) Enabled() bool { return p != nil }

// Tracer returns the named tracer (a no-op one when off).
func (p *Provider) Tracer(name string) trace.Tracer {
	if p == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return p.tp.Tracer(name)
}

// Propagator is the W3C trace context propagator (traceparent,
// tracestate); nil when off.
func (p *Provider) Propagator() propagation.TextMapPropagator {
	if p == nil {
		return nil
	}
	return p.prop
}

// Shutdown exports the spans still buffered and stops the exporter, until
// ctx ends.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// Close is Shutdown within five seconds, for a service's exit: a failure
// is logged, the exit goes on.
func (p *Provider) Close(log zerolog.Logger) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		log.Warn().Err(err).Msg("spans not exported at exit")
	}
}

// setErrorHandler sends the SDK's errors (failed exports) to the
// service's log.
func setErrorHandler(log zerolog.Logger) {
	l := log.With().Str("component", "tracing").Logger().Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		l.Warn().Err(err).Msg("tracing: spans not exported")
	}))
}
