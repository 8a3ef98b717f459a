package tracing_test

import (
	"context"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tollgate-gw/tollgate/pkg/routing"
	"github.com/tollgate-gw/tollgate/pkg/tracing"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

const (
	clientTraceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID      = "00f067aa0ba902b7"
	sampledParent     = "00-" + clientTraceID + "-" + clientSpanID + "-01"
	unsampledParent   = "00-" + clientTraceID + "-" + clientSpanID + "-00"
	clientTracestate  = "vendor=abc,other=1"
	wantSpanName      = "chat claude"
	bedrockHost       = "bedrock-runtime.us-east-1.amazonaws.com"
	bedrockDeployment = "claude-bedrock-east"
)

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(1500 * time.Millisecond)

	bedrock = &routing.Deployment{
		ID: bedrockDeployment, ModelGroup: "claude", Provider: transform.ProviderBedrock,
		Model: "anthropic.claude-sonnet-4", BaseURL: "https://" + bedrockHost, Host: bedrockHost,
	}
	request = tracing.Request{Operation: "chat", ModelGroup: "claude", Stream: true, RequestID: "req-1", KeyID: "key-7"}
	// response has every optional fact set.
	response = tracing.Response{
		Deployment: bedrock, Attempts: 2, Model: "anthropic.claude-sonnet-4-20250514",
		FinishReasons: []string{"stop"},
		Usage: transform.Usage{InputTokens: 120, OutputTokens: 40, CachedInputTokens: 100,
			CacheCreationInputTokens: 20, ReasoningTokens: 10},
		UsageEstimated: true, Cost: 0.00123, Priced: true, TimeToFirstToken: 250 * time.Millisecond,
	}
	// wantAttrs are the attributes of a span given request, response and a
	// 200 outcome.
	wantAttrs = map[string]any{
		"gen_ai.operation.name":                    "chat",
		"gen_ai.request.model":                     "claude",
		"gen_ai.request.stream":                    true,
		"tollgate.request_id":                      "req-1",
		"tollgate.key_id":                          "key-7",
		"gen_ai.provider.name":                     "aws.bedrock",
		"tollgate.deployment":                      bedrockDeployment,
		"server.address":                           bedrockHost,
		"server.port":                              int64(443),
		"gen_ai.response.model":                    "anthropic.claude-sonnet-4-20250514",
		"tollgate.attempts":                        int64(2),
		"gen_ai.response.finish_reasons":           []string{"stop"},
		"gen_ai.usage.input_tokens":                int64(120),
		"gen_ai.usage.output_tokens":               int64(40),
		"gen_ai.usage.cache_read.input_tokens":     int64(100),
		"gen_ai.usage.cache_creation.input_tokens": int64(20),
		"gen_ai.usage.reasoning.output_tokens":     int64(10),
		"tollgate.usage_estimated":                 true,
		"tollgate.cost_usd":                        0.00123,
		"gen_ai.response.time_to_first_chunk":      0.25,
		"http.response.status_code":                int64(200),
	}
)

// newRecorded is a tracer whose spans are exported synchronously to an
// in-memory exporter.
func newRecorded(t *testing.T, sampler sdktrace.Sampler) (*tracing.Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sampler))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracing.NewFromProvider(tp), exp
}

func onlySpan(t *testing.T, exp *tracetest.InMemoryExporter) tracetest.SpanStub {
	t.Helper()
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("exported %d spans, want 1", len(spans))
	}
	return spans[0]
}

func attrMap(s tracetest.SpanStub) map[string]any {
	m := make(map[string]any, len(s.Attributes))
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

func diffAttrs(t *testing.T, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || !reflect.DeepEqual(g, w) {
			t.Errorf("attribute %s = %#v (present %v), want %#v", k, g, ok, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected attribute %s = %#v", k, g)
		}
	}
}

func TestSpan_Attributes(t *testing.T) {
	tr, exp := newRecorded(t, sdktrace.AlwaysSample())
	sp := tr.Start("", "", t0)
	sp.SetRequest(request)
	sp.SetResponse(tracing.Response{Deployment: bedrock, Usage: transform.Usage{InputTokens: 1, OutputTokens: 1}})
	sp.SetResponse(response) // later values win
	sp.End(t1, tracing.Outcome{Status: 200})

	s := onlySpan(t, exp)
	if s.Name != wantSpanName {
		t.Errorf("name = %q, want %q", s.Name, wantSpanName)
	}
	if s.SpanKind != trace.SpanKindClient {
		t.Errorf("kind = %v, want client", s.SpanKind)
	}
	if !s.StartTime.Equal(t0) || !s.EndTime.Equal(t1) {
		t.Errorf("times = %v..%v, want %v..%v", s.StartTime, s.EndTime, t0, t1)
	}
	if s.Status.Code != codes.Unset {
		t.Errorf("status = %v, want unset", s.Status)
	}
	if s.Parent.IsValid() {
		t.Errorf("parent = %v, want a root span", s.Parent)
	}
	if got := s.InstrumentationScope.Name; got != "github.com/tollgate-gw/tollgate/pkg/tracing" {
		t.Errorf("scope = %q", got)
	}
	diffAttrs(t, attrMap(s), wantAttrs)
}

func TestSpan_SetResponse(t *testing.T) {
	minimal := map[string]any{"gen_ai.usage.input_tokens": int64(0), "gen_ai.usage.output_tokens": int64(0)}
	tests := []struct {
		name string
		resp tracing.Response
		want map[string]any
	}{
		{name: "no deployment answered", resp: tracing.Response{}, want: minimal},
		{
			name: "deployment model when the response names none, port from the URL",
			resp: tracing.Response{Deployment: &routing.Deployment{ID: "local", Provider: transform.ProviderOllama,
				Model: "llama3", BaseURL: "http://ollama.internal:11434", Host: "ollama.internal"}},
			want: map[string]any{"gen_ai.provider.name": "ollama", "tollgate.deployment": "local",
				"server.address": "ollama.internal", "server.port": int64(11434), "gen_ai.response.model": "llama3"},
		},
		{
			name: "http default port",
			resp: tracing.Response{Deployment: &routing.Deployment{ID: "oai", Provider: transform.ProviderOpenAI,
				Model: "gpt-4o", BaseURL: "http://proxy.internal/v1", Host: "proxy.internal"}},
			want: map[string]any{"gen_ai.provider.name": "openai", "tollgate.deployment": "oai",
				"server.address": "proxy.internal", "server.port": int64(80), "gen_ai.response.model": "gpt-4o"},
		},
		{
			name: "azure",
			resp: tracing.Response{Deployment: &routing.Deployment{ID: "az", Provider: transform.ProviderAzure,
				Model: "gpt-4o", BaseURL: "https://x.openai.azure.com", Host: "x.openai.azure.com"}},
			want: map[string]any{"gen_ai.provider.name": "azure.ai.openai", "tollgate.deployment": "az",
				"server.address": "x.openai.azure.com", "server.port": int64(443), "gen_ai.response.model": "gpt-4o"},
		},
		{
			name: "unpriced cost is left out",
			resp: tracing.Response{Cost: 5},
			want: minimal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, exp := newRecorded(t, sdktrace.AlwaysSample())
			sp := tr.Start("", "", t0)
			sp.SetResponse(tt.resp)
			sp.End(t1, tracing.Outcome{})
			want := maps.Clone(minimal)
			maps.Copy(want, tt.want)
			diffAttrs(t, attrMap(onlySpan(t, exp)), want)
		})
	}
}

func TestSpan_End(t *testing.T) {
	tests := []struct {
		name        string
		outcome     tracing.Outcome
		wantErrType string // "" means success: no error.type, status unset
		wantStatus  int64  // 0 means no http.response.status_code
	}{
		{name: "success", outcome: tracing.Outcome{Status: 200}, wantStatus: 200},
		{name: "openai error type", outcome: tracing.Outcome{Status: 429, ErrorType: "rate_limit_error"},
			wantErrType: "rate_limit_error", wantStatus: 429},
		{name: "status without a type", outcome: tracing.Outcome{Status: 502}, wantErrType: "502", wantStatus: 502},
		{name: "stream cut after its headers", outcome: tracing.Outcome{Status: 200, Aborted: true},
			wantErrType: "aborted", wantStatus: 200},
		{name: "no response at all", outcome: tracing.Outcome{Aborted: true}, wantErrType: "aborted"},
		{name: "error type wins over aborted", outcome: tracing.Outcome{Status: 200, ErrorType: "server_error", Aborted: true},
			wantErrType: "server_error", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, exp := newRecorded(t, sdktrace.AlwaysSample())
			sp := tr.Start("", "", t0)
			sp.End(t1, tt.outcome)
			sp.End(t1.Add(time.Second), tracing.Outcome{Status: 201}) // ignored
			s := onlySpan(t, exp)
			got := attrMap(s)
			want := map[string]any{}
			if tt.wantStatus != 0 {
				want["http.response.status_code"] = tt.wantStatus
			}
			if tt.wantErrType != "" {
				want["error.type"] = tt.wantErrType
				if s.Status.Code != codes.Error || s.Status.Description != tt.wantErrType {
					t.Errorf("status = %+v, want Error %q", s.Status, tt.wantErrType)
				}
			} else if s.Status.Code != codes.Unset {
				t.Errorf("status = %+v, want unset", s.Status)
			}
			diffAttrs(t, got, want)
			if !s.EndTime.Equal(t1) {
				t.Errorf("end = %v, want %v", s.EndTime, t1)
			}
		})
	}
}

func TestSpan_SetRequest(t *testing.T) {
	tests := []struct {
		name     string
		req      *tracing.Request // nil: never called
		wantName string
	}{
		{name: "operation and model group", req: &tracing.Request{Operation: "text_completion", ModelGroup: "gpt-3.5-turbo-instruct"},
			wantName: "text_completion gpt-3.5-turbo-instruct"},
		{name: "rejected before the model was read", req: &tracing.Request{Operation: "chat"}, wantName: "chat"},
		{name: "rejected before the operation was known", wantName: "tollgate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, exp := newRecorded(t, sdktrace.AlwaysSample())
			sp := tr.Start("", "", t0)
			if tt.req != nil {
				sp.SetRequest(*tt.req)
			}
			sp.End(t1, tracing.Outcome{Status: 404})
			if got := onlySpan(t, exp).Name; got != tt.wantName {
				t.Errorf("name = %q, want %q", got, tt.wantName)
			}
		})
	}
}

func TestTracer_Start(t *testing.T) {
	tests := []struct {
		name                    string
		traceparent, tracestate string
		wantParent              bool
		wantTracestate          string
	}{
		{name: "continues the client's trace", traceparent: sampledParent, tracestate: clientTracestate,
			wantParent: true, wantTracestate: clientTracestate},
		{name: "no trace context", wantParent: false},
		{name: "malformed traceparent starts a new trace", traceparent: "00-xyz-00f067aa0ba902b7-01", tracestate: clientTracestate},
		{name: "all-zero trace id is invalid", traceparent: "00-00000000000000000000000000000000-" + clientSpanID + "-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, exp := newRecorded(t, sdktrace.AlwaysSample())
			sp := tr.Start(tt.traceparent, tt.tracestate, t0)
			tp, ts := sp.Traceparent(), sp.Tracestate()
			sp.End(t1, tracing.Outcome{Status: 200})
			s := onlySpan(t, exp)

			sc := s.SpanContext
			if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; tp != want {
				t.Errorf("Traceparent() = %q, want %q (this span as the upstream's parent)", tp, want)
			}
			if ts != tt.wantTracestate {
				t.Errorf("Tracestate() = %q, want %q", ts, tt.wantTracestate)
			}
			if !tt.wantParent {
				if s.Parent.IsValid() {
					t.Errorf("parent = %v, want none", s.Parent)
				}
				return
			}
			if got := s.Parent.TraceID().String(); got != clientTraceID {
				t.Errorf("parent trace = %s, want %s", got, clientTraceID)
			}
			if got := s.Parent.SpanID().String(); got != clientSpanID {
				t.Errorf("parent span = %s, want %s", got, clientSpanID)
			}
			if !s.Parent.IsRemote() || sc.TraceID() != s.Parent.TraceID() {
				t.Errorf("span %v is not a child of remote %v", sc, s.Parent)
			}
		})
	}
}

func TestSpan_Unsampled(t *testing.T) {
	tr, exp := newRecorded(t, sdktrace.ParentBased(sdktrace.AlwaysSample()))
	sp := tr.Start(unsampledParent, clientTracestate, t0)
	sp.SetRequest(request)
	sp.SetResponse(response)
	tp := sp.Traceparent()
	sp.End(t1, tracing.Outcome{Status: 200})
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("exported %d spans of an unsampled trace", n)
	}
	// The upstream still joins the client's trace, told not to sample.
	if !strings.HasPrefix(tp, "00-"+clientTraceID+"-") || !strings.HasSuffix(tp, "-00") || strings.Contains(tp, clientSpanID) {
		t.Errorf("Traceparent() = %q, want a new span in trace %s with flags 00", tp, clientTraceID)
	}
	if got := sp.Tracestate(); got != clientTracestate {
		t.Errorf("Tracestate() = %q, want %q", got, clientTracestate)
	}
}

func TestTracer_Disabled(t *testing.T) {
	var tr *tracing.Tracer
	sp := tr.Start(sampledParent, clientTracestate, t0)
	if sp != nil {
		t.Fatalf("Start on a nil tracer = %v, want nil", sp)
	}
	sp.SetRequest(request)
	sp.SetResponse(response)
	sp.End(t1, tracing.Outcome{Status: 500, ErrorType: "server_error"})
	if tp, ts := sp.Traceparent(), sp.Tracestate(); tp != "" || ts != "" {
		t.Errorf("nil span headers = %q, %q, want none", tp, ts)
	}
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	allocs := testing.AllocsPerRun(100, func() { serveRequest(tr, sampledParent) })
	if allocs != 0 {
		t.Errorf("disabled request allocates %v times, want 0", allocs)
	}
}

// serveRequest makes every call the server makes for one request.
func serveRequest(tr *tracing.Tracer, traceparent string) {
	sp := tr.Start(traceparent, clientTracestate, t0)
	_ = sp.Traceparent()
	_ = sp.Tracestate()
	sp.SetRequest(request)
	sp.SetResponse(response)
	sp.End(t1, tracing.Outcome{Status: 200})
}
