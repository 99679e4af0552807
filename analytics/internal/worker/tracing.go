package worker

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The worker's apply step is traced when Options.Tracing is on: one span
// "usage.apply" per fetched batch (decode, group by API, record, ack) with
// a child "usage.record" per Redis round of store.Apply. Off, nothing is
// made (traceStart returns a nil span).

func (w *Worker) traceStart(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !w.opts.Tracing.Enabled() {
		return ctx, nil
	}
	return w.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// traceEnd ends sp, failed when Redis did not take failed of the batches.
func traceEnd(sp trace.Span, failed int, attrs ...attribute.KeyValue) {
	if sp == nil {
		return
	}
	sp.SetAttributes(attrs...)
	sp.SetAttributes(attribute.Int("sluice.usage.failed_batches", failed))
	if failed > 0 {
		sp.SetStatus(codes.Error, "redis did not record every batch")
	}
	sp.End()
}
