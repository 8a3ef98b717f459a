package tracing_test

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tollgate-gw/tollgate/pkg/tracing"
)

// BenchmarkSpan_Request costs every call the server makes for one request.
// Enabled spans go through the batch processor New uses, to an exporter
// that discards them.
func BenchmarkSpan_Request(b *testing.B) {
	batched := func(s sdktrace.Sampler) *tracing.Tracer {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(s))
		b.Cleanup(func() { _ = tp.Shutdown(b.Context()) })
		return tracing.NewFromProvider(tp)
	}
	for _, bc := range []struct {
		name        string
		tracer      *tracing.Tracer
		traceparent string
	}{
		{name: "disabled", tracer: nil, traceparent: sampledParent},
		{name: "unsampled", tracer: batched(sdktrace.ParentBased(sdktrace.NeverSample()))},
		{name: "sampled", tracer: batched(sdktrace.AlwaysSample())},
		{name: "sampled_with_parent", tracer: batched(sdktrace.ParentBased(sdktrace.NeverSample())), traceparent: sampledParent},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				serveRequest(bc.tracer, bc.traceparent)
			}
		})
	}
}
