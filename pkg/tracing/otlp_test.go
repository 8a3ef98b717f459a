package tracing_test

import (
	"encoding/hex"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/tollgate-gw/tollgate/pkg/tracing"
)

func TestNew_ExportsOverOTLP(t *testing.T) {
	c := startCollector(t)
	tr, err := tracing.New(t.Context(), tracing.Config{
		Endpoint: c.addr, Insecure: true, Headers: map[string]string{"x-tenant": "acme"},
		ServiceName: "tollgate-test", SampleRatio: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	sp := tr.Start(sampledParent, clientTracestate, t0)
	sp.SetRequest(request)
	sp.SetResponse(response)
	sp.End(t1, tracing.Outcome{Status: 200})
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}

	spans, services, md := c.received()
	if len(spans) != 1 {
		t.Fatalf("collector got %d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.GetName() != wantSpanName || s.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("span %q kind %v, want %q client", s.GetName(), s.GetKind(), wantSpanName)
	}
	if s.GetStartTimeUnixNano() != uint64(t0.UnixNano()) || s.GetEndTimeUnixNano() != uint64(t1.UnixNano()) {
		t.Errorf("times = %d..%d, want %d..%d", s.GetStartTimeUnixNano(), s.GetEndTimeUnixNano(), t0.UnixNano(), t1.UnixNano())
	}
	if got := hex.EncodeToString(s.GetTraceId()); got != clientTraceID {
		t.Errorf("trace id = %s, want the client's %s", got, clientTraceID)
	}
	if got := hex.EncodeToString(s.GetParentSpanId()); got != clientSpanID {
		t.Errorf("parent span id = %s, want the client's %s", got, clientSpanID)
	}
	if s.GetTraceState() != clientTracestate {
		t.Errorf("trace state = %q, want %q", s.GetTraceState(), clientTracestate)
	}
	diffAttrs(t, otlpAttrs(s.GetAttributes()), wantAttrs)
	if services[0] != "tollgate-test" {
		t.Errorf("service.name = %q, want tollgate-test", services[0])
	}
	if got := md[0].Get("x-tenant"); len(got) != 1 || got[0] != "acme" {
		t.Errorf("x-tenant metadata = %v, want [acme]", got)
	}
}

func TestNew_Sampling(t *testing.T) {
	tests := []struct {
		name        string
		ratio       float64
		traceparent string
		wantSpans   int
	}{
		{name: "ratio 1 traces a root request", ratio: 1, wantSpans: 1},
		{name: "ratio 0 drops a root request", ratio: 0, wantSpans: 0},
		{name: "ratio 0 follows a sampled parent", ratio: 0, traceparent: sampledParent, wantSpans: 1},
		{name: "ratio 1 follows an unsampled parent", ratio: 1, traceparent: unsampledParent, wantSpans: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCollector(t)
			tr, err := tracing.New(t.Context(), tracing.Config{Endpoint: c.addr, Insecure: true, SampleRatio: tt.ratio})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				sp := tr.Start(tt.traceparent, "", t0)
				sp.SetRequest(request)
				sp.End(t1, tracing.Outcome{Status: 200})
			}
			if err := tr.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown = %v", err)
			}
			spans, _, _ := c.received()
			if want := 3 * tt.wantSpans; len(spans) != want {
				t.Errorf("collector got %d spans, want %d", len(spans), want)
			}
		})
	}
}

// The batch processor waits seconds before exporting; Shutdown must send
// what is queued at once, and later spans are dropped.
func TestTracer_Shutdown(t *testing.T) {
	c := startCollector(t)
	tr, err := tracing.New(t.Context(), tracing.Config{Endpoint: c.addr, Insecure: true, SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 25
	for range n {
		tr.Start("", "", t0).End(t1, tracing.Outcome{Status: 200})
	}
	if spans, _, _ := c.received(); len(spans) != 0 {
		t.Fatalf("collector got %d spans before Shutdown; the test needs them still queued", len(spans))
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	tr.Start("", "", t0).End(t1, tracing.Outcome{Status: 200})
	if spans, _, _ := c.received(); len(spans) != n {
		t.Errorf("collector got %d spans, want the %d ended before Shutdown", len(spans), n)
	}
}

// Insecure false must mean TLS even when the environment says otherwise:
// a plaintext collector then receives nothing.
func TestNew_TLSByDefault(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true")
	c := startCollector(t)
	tr, err := tracing.New(t.Context(), tracing.Config{Endpoint: c.addr, SampleRatio: 1, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tr.Start("", "", t0).End(t1, tracing.Outcome{Status: 200})
	_ = tr.Shutdown(t.Context()) // the failed export is the point
	if spans, _, _ := c.received(); len(spans) != 0 {
		t.Errorf("plaintext collector got %d spans over what should be TLS", len(spans))
	}
}

func TestNew_InvalidConfig(t *testing.T) {
	tr, err := tracing.New(t.Context(), tracing.Config{Endpoint: "collector:4317", SampleRatio: 2})
	if err == nil || tr != nil {
		t.Fatalf("New = %v, %v; want an error and no tracer", tr, err)
	}
}
