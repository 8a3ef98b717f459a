package extproc

import (
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tollgate-gw/tollgate/pkg/tracing"
)

// TestRouter_TracesEachRequest: one span per request, continuing the
// client's trace, named after the model group, with the GenAI usage, and a
// traceparent passed on so the provider call joins the trace.
func TestRouter_TracesEachRequest(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	c := startServerWith(t, Options{Tracer: tracing.NewFromProvider(tp)})

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	hdrs := append([]string{"traceparent", parent}, chatHeaders...)
	out := exchange(t, c, reqHeaders(false, hdrs...), reqBody(chatBody),
		respHeadersFromAttempt("openai-1", 1, ":status", "200", "content-type", "application/json"),
		respBody(okResponse, true))
	set, _ := headers(out[0].GetRequestHeaders().GetResponse().GetHeaderMutation())
	if tp := set["traceparent"]; !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || tp == parent {
		t.Errorf("traceparent to the provider = %q, want a child in the client's trace", tp)
	}

	var spans tracetest.SpanStubs
	for deadline := time.Now().Add(5 * time.Second); len(spans) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		spans = exp.GetSpans()
	}
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Name != "chat gpt-4o" || s.Parent.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("span %q parent %v", s.Name, s.Parent)
	}
	attrs := map[string]string{}
	for _, a := range s.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	for k, want := range map[string]string{"gen_ai.usage.input_tokens": "1000", "gen_ai.usage.output_tokens": "100",
		"gen_ai.request.model": "gpt-4o", "tollgate.deployment": "openai-1", "http.response.status_code": "200"} {
		if attrs[k] != want {
			t.Errorf("%s = %q, want %q (all: %v)", k, attrs[k], want, attrs)
		}
	}
}
