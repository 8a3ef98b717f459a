package tracing_test

import (
	"context"
	"fmt"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tollgate-gw/tollgate/pkg/tracing"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// The calls an ext_proc stream makes for one request, phase by phase. In
// production main builds the tracer with New (nil when tracing is off) and
// calls Shutdown on exit.
func Example() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tracing.NewFromProvider(tp)
	start := time.Now()

	// Request headers: continue the client's trace; send the child
	// context upstream in this phase's header mutation.
	sp := tr.Start("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", start)
	upstream := sp.Traceparent()

	// Request body: the model group is resolved.
	sp.SetRequest(tracing.Request{Operation: "chat", ModelGroup: "gpt-4o", RequestID: "req-1", KeyID: "key-1"})

	// Stream finish: the answer and the outcome.
	sp.SetResponse(tracing.Response{Model: "gpt-4o-2024-08-06", Usage: transform.Usage{InputTokens: 12, OutputTokens: 30}})
	sp.End(start.Add(time.Second), tracing.Outcome{Status: 200})

	s := exp.GetSpans()[0]
	fmt.Println(s.Name, s.SpanKind)
	fmt.Println("parent:", s.Parent.SpanID())
	fmt.Println("upstream's parent is this span:", upstream[36:52] == s.SpanContext.SpanID().String())
	// Output:
	// chat gpt-4o client
	// parent: 00f067aa0ba902b7
	// upstream's parent is this span: true
}
