// Package tracing records one OpenTelemetry span per gateway request, with
// the GenAI semantic conventions' attributes, and exports it over OTLP/gRPC.
//
// Tracing is optional: a nil *Tracer and the nil *Span it starts are valid
// and every method on them does nothing, without allocating, so the request
// path calls them unconditionally.
//
// The span follows the GenAI inference span conventions: kind CLIENT (the
// gateway is the client of the provider that runs the model), name
// "{gen_ai.operation.name} {gen_ai.request.model}", and attribute keys from
// semconv v1.41.0. It continues the client's W3C trace context and is the
// parent of the upstream call.
package tracing

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.41.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/tollgate-gw/tollgate/pkg/routing"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// instrumentationName identifies this package as the spans' instrumentation
// scope.
const instrumentationName = "github.com/tollgate-gw/tollgate/pkg/tracing"

// startName is a span's name until SetRequest names the operation; spans
// that keep it are requests rejected before their operation was known.
const startName = "tollgate"

// Tollgate's own attributes, for facts the GenAI conventions have no key
// for.
const (
	attrRequestID      = attribute.Key("tollgate.request_id")
	attrKeyID          = attribute.Key("tollgate.key_id")
	attrDeployment     = attribute.Key("tollgate.deployment")
	attrAttempts       = attribute.Key("tollgate.attempts")
	attrCost           = attribute.Key("tollgate.cost_usd")
	attrUsageEstimated = attribute.Key("tollgate.usage_estimated")
)

// errorTypeAborted is error.type for a request the client or Envoy ended
// before its response was complete.
const errorTypeAborted = "aborted"

// Tracer starts request spans. It is safe for concurrent use. A nil
// *Tracer is tracing switched off.
type Tracer struct {
	tracer   trace.Tracer
	shutdown func(context.Context) error
}

// New builds a tracer that batches spans and exports them to cfg.Endpoint
// over OTLP/gRPC. It does not connect: an unreachable collector shows up as
// export errors (reported through OpenTelemetry's error handler), never as
// slower requests. The caller must call Shutdown to flush pending spans.
//
// Config fields are authoritative: the OTEL_EXPORTER_OTLP_* environment
// variables for endpoint, headers, transport security and timeout are
// overridden.
func New(ctx context.Context, cfg Config) (*Tracer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = DefaultServiceName
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	opts := []otlptracegrpc.Option{
		otlptracegrpc.WithEndpoint(cfg.Endpoint),
		otlptracegrpc.WithHeaders(cfg.Headers),
		otlptracegrpc.WithTimeout(cfg.Timeout),
	}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	} else {
		// Explicit, so OTEL_EXPORTER_OTLP_INSECURE cannot turn TLS off.
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(nil)))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: create otlp exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(cfg.ServiceName))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	t := NewFromProvider(tp)
	t.shutdown = tp.Shutdown
	return t, nil
}

// NewFromProvider builds a tracer on a provider the caller owns (and shuts
// down itself): one shared with other instrumentation, or a test's.
func NewFromProvider(tp trace.TracerProvider) *Tracer {
	return &Tracer{tracer: tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL))}
}

// Shutdown exports the spans still queued and stops the exporter; spans
// ended afterwards are dropped. ctx bounds the flush. It does nothing for
// a nil tracer or one from NewFromProvider.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Start begins the span of one request at start (when the request's
// headers reached the gateway). traceparent and tracestate are the
// request's W3C trace context headers; a valid traceparent makes the span
// its child, anything else starts a new trace. The result is nil when t is
// nil.
func (t *Tracer) Start(traceparent, tracestate string, start time.Time) *Span {
	if t == nil {
		return nil
	}
	ctx := context.Background()
	if traceparent != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, incoming{traceparent: traceparent, tracestate: tracestate})
	}
	_, sp := t.tracer.Start(ctx, startName, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start))
	if !sp.IsRecording() {
		return &Span{span: sp}
	}
	return &Span{span: sp, recording: true, attrs: make([]attribute.KeyValue, 0, maxAttrs)}
}

// incoming carries a request's trace context headers to the propagator.
type incoming struct{ traceparent, tracestate string }

func (c incoming) Get(key string) string {
	switch key {
	case "traceparent":
		return c.traceparent
	case "tracestate":
		return c.tracestate
	}
	return ""
}

// Set is never called: the carrier is only extracted from.
func (incoming) Set(string, string) {}

func (incoming) Keys() []string { return []string{"traceparent", "tracestate"} }

var _ propagation.TextMapCarrier = incoming{}

// Span is one request's span. It belongs to the request's stream and is
// not safe for concurrent use. A nil *Span, and a span the sampler
// dropped, ignore every call; a dropped span still propagates its trace
// context.
type Span struct {
	span      trace.Span
	recording bool
	// attrs are handed to the span in one call at End: the SDK grows its
	// attribute slice on every call, and nothing reads them before End.
	attrs []attribute.KeyValue
}

// maxAttrs is the most attributes a span gets from SetRequest, SetResponse
// and End.
const maxAttrs = 24

// Request is what the gateway knows once it has read the request body.
type Request struct {
	// Operation is gen_ai.operation.name ("chat", "text_completion").
	Operation string
	// ModelGroup is the model name the client asked for:
	// gen_ai.request.model. Empty leaves it unset.
	ModelGroup string
	// Stream is gen_ai.request.stream.
	Stream bool
	// RequestID is tollgate.request_id (Envoy's x-request-id).
	RequestID string
	// KeyID is tollgate.key_id, the virtual key's id (never the key).
	// Empty leaves it unset.
	KeyID string
}

// SetRequest names the span "{operation} {model group}" and records the
// request's attributes; a later call's values win.
func (s *Span) SetRequest(r Request) {
	if s == nil || !s.recording {
		return
	}
	name := r.Operation
	if r.ModelGroup != "" {
		name += " " + r.ModelGroup
	}
	if name != "" {
		s.span.SetName(name)
	}
	attrs := s.attrs
	if r.Operation != "" {
		attrs = append(attrs, semconv.GenAIOperationNameKey.String(r.Operation))
	}
	if r.ModelGroup != "" {
		attrs = append(attrs, semconv.GenAIRequestModel(r.ModelGroup))
	}
	attrs = append(attrs, semconv.GenAIRequestStream(r.Stream), attrRequestID.String(r.RequestID))
	if r.KeyID != "" {
		attrs = append(attrs, attrKeyID.String(r.KeyID))
	}
	s.attrs = attrs
}

// Response is what the gateway knows about the provider's answer.
type Response struct {
	// Deployment is the deployment that answered; it gives
	// gen_ai.provider.name, server.address and server.port. Nil when no
	// deployment answered.
	Deployment *routing.Deployment
	// Attempts is how many upstream attempts it took (Envoy's
	// x-envoy-attempt-count); zero leaves it unset.
	Attempts int64
	// Model is the model that answered, gen_ai.response.model; empty
	// means the deployment's model.
	Model string
	// FinishReasons are gen_ai.response.finish_reasons, in choice order;
	// nil leaves them unset.
	FinishReasons []string
	// Usage is recorded as gen_ai.usage.*: input tokens include cached
	// ones and output tokens include reasoning ones, as the conventions
	// ask.
	Usage transform.Usage
	// UsageEstimated marks usage counted by the tokenizer rather than
	// reported by the provider.
	UsageEstimated bool
	// Cost is tollgate.cost_usd, recorded only when Priced.
	Cost   float64
	Priced bool
	// TimeToFirstToken is gen_ai.response.time_to_first_chunk, from the
	// span's start; zero leaves it unset.
	TimeToFirstToken time.Duration
}

// SetResponse records the answer's attributes; a later call's values win
// (a stream's usage can be recorded when it ends).
func (s *Span) SetResponse(r Response) {
	if s == nil || !s.recording {
		return
	}
	attrs := s.attrs
	model := r.Model
	if d := r.Deployment; d != nil {
		attrs = append(attrs, semconv.GenAIProviderNameKey.String(providerName(d.Provider)), attrDeployment.String(d.ID))
		if host, port := serverOf(d); host != "" {
			attrs = append(attrs, semconv.ServerAddress(host))
			if port != 0 {
				attrs = append(attrs, semconv.ServerPort(port))
			}
		}
		if model == "" {
			model = d.Model
		}
	}
	if model != "" {
		attrs = append(attrs, semconv.GenAIResponseModel(model))
	}
	if r.Attempts > 0 {
		attrs = append(attrs, attrAttempts.Int64(r.Attempts))
	}
	if len(r.FinishReasons) > 0 {
		attrs = append(attrs, semconv.GenAIResponseFinishReasons(r.FinishReasons...))
	}
	u := r.Usage
	attrs = append(attrs,
		semconv.GenAIUsageInputTokensKey.Int64(u.InputTokens),
		semconv.GenAIUsageOutputTokensKey.Int64(u.OutputTokens))
	if u.CachedInputTokens > 0 {
		attrs = append(attrs, semconv.GenAIUsageCacheReadInputTokensKey.Int64(u.CachedInputTokens))
	}
	if u.CacheCreationInputTokens > 0 {
		attrs = append(attrs, semconv.GenAIUsageCacheCreationInputTokensKey.Int64(u.CacheCreationInputTokens))
	}
	if u.ReasoningTokens > 0 {
		attrs = append(attrs, semconv.GenAIUsageReasoningOutputTokensKey.Int64(u.ReasoningTokens))
	}
	if r.UsageEstimated {
		attrs = append(attrs, attrUsageEstimated.Bool(true))
	}
	if r.Priced {
		attrs = append(attrs, attrCost.Float64(r.Cost))
	}
	if r.TimeToFirstToken > 0 {
		attrs = append(attrs, semconv.GenAIResponseTimeToFirstChunk(r.TimeToFirstToken.Seconds()))
	}
	s.attrs = attrs
}

// serverOf is the provider's host and port: the host as Envoy sends it,
// the port from the base URL or its scheme's default.
func serverOf(d *routing.Deployment) (string, int) {
	u, err := url.Parse(d.BaseURL)
	if err != nil {
		return d.Host, 0
	}
	host := d.Host
	if host == "" {
		host = u.Hostname()
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return host, p
	}
	switch u.Scheme {
	case "https":
		return host, 443
	case "http":
		return host, 80
	}
	return host, 0
}

// providerName is the gen_ai.provider.name of a Tollgate provider: the
// conventions' well-known value where there is one, else Tollgate's name.
// Prometheus labels keep Tollgate's names.
func providerName(p transform.Provider) string {
	switch p {
	case transform.ProviderAzure:
		return semconv.GenAIProviderNameAzureAIOpenAI.Value.AsString()
	case transform.ProviderBedrock:
		return semconv.GenAIProviderNameAWSBedrock.Value.AsString()
	case transform.ProviderGemini:
		return semconv.GenAIProviderNameGCPGemini.Value.AsString()
	case transform.ProviderVertexAI:
		return semconv.GenAIProviderNameGCPVertexAI.Value.AsString()
	case transform.ProviderOllama:
		return "ollama"
	}
	return string(p)
}

// Traceparent is the W3C traceparent header that makes the upstream
// request a child of this span; "" for a nil span. Set it (with
// Tracestate) on the request to the provider, replacing the client's.
func (s *Span) Traceparent() string {
	if s == nil {
		return ""
	}
	sc := s.span.SpanContext()
	if !sc.IsValid() {
		return ""
	}
	// version-traceid-spanid-flags, 55 bytes.
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// Tracestate is the W3C tracestate header to send upstream with
// Traceparent: the client's, passed on; "" when there is none.
func (s *Span) Tracestate() string {
	if s == nil {
		return ""
	}
	return s.span.SpanContext().TraceState().String()
}

// Outcome is how the request ended.
type Outcome struct {
	// Status is the HTTP status answered (http.response.status_code); zero
	// when no response was sent.
	Status int
	// ErrorType is the OpenAI error type of a failed request; empty for
	// success or when unknown.
	ErrorType string
	// Aborted means the client or Envoy ended the request before its
	// response was complete.
	Aborted bool
}

// End ends the span at end. A failure — an error type, a status of 400 or
// more, or an aborted request — sets the span's status to Error and
// error.type to the error type, else the status code, else "aborted".
// Calls after End do nothing.
func (s *Span) End(end time.Time, o Outcome) {
	if s == nil {
		return
	}
	if s.recording {
		if o.Status != 0 {
			s.attrs = append(s.attrs, semconv.HTTPResponseStatusCode(o.Status))
		}
		errType := o.ErrorType
		if errType == "" && o.Status >= 400 {
			errType = strconv.Itoa(o.Status)
		}
		if errType == "" && o.Aborted {
			errType = errorTypeAborted
		}
		if errType != "" {
			s.attrs = append(s.attrs, semconv.ErrorTypeKey.String(errType))
			s.span.SetStatus(codes.Error, errType)
		}
		s.span.SetAttributes(s.attrs...)
		s.recording, s.attrs = false, nil
	}
	s.span.End(trace.WithTimestamp(end))
}
