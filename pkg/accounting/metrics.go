package accounting

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// OtherValue replaces any label value outside its bounded set, so a client
// that sends a million model names adds one series, not a million.
const OtherValue = "other"

// errorTypeOther is OpenTelemetry's error.type for errors without a known
// class.
const errorTypeOther = "_OTHER"

// Token types of gen_ai_client_token_usage, as OpenTelemetry's GenAI
// conventions and Envoy AI Gateway name them.
const (
	TokenTypeInput              = "input"
	TokenTypeOutput             = "output"
	TokenTypeCachedInput        = "cached_input"
	TokenTypeCacheCreationInput = "cache_creation_input"
	TokenTypeReasoning          = "reasoning"
)

var tokenTypes = [...]string{TokenTypeInput, TokenTypeOutput, TokenTypeCachedInput, TokenTypeCacheCreationInput, TokenTypeReasoning}

// operations are gen_ai.operation.name values the gateway serves.
var operations = set("chat", "text_completion", "embeddings")

// knownErrorTypes are the OpenAI error types the gateway returns.
var knownErrorTypes = set(
	string(transform.ErrorTypeInvalidRequest), string(transform.ErrorTypeAuthentication),
	string(transform.ErrorTypePermission), string(transform.ErrorTypeNotFound),
	string(transform.ErrorTypeRateLimit), string(transform.ErrorTypeServer),
	string(transform.ErrorTypeOverloaded),
)

// Scopes of limit and budget rejections.
var limitScopes = set("key", "team", "user", "end_user", "model_group", "deployment", "global")

// Kinds of limit rejections.
var limitKinds = set("rpm", "tpm", "parallel")

// ExtProcFilter names the Envoy filter an ext_proc stream belongs to.
type ExtProcFilter uint8

// The two ext_proc filters.
const (
	FilterRouter ExtProcFilter = iota
	FilterUpstream
	numFilters
)

var filterNames = [numFilters]string{"router", "upstream"}

// ExtProcPhase is the ext_proc message being processed.
type ExtProcPhase uint8

// ext_proc message phases.
const (
	PhaseRequestHeaders ExtProcPhase = iota
	PhaseRequestBody
	PhaseRequestTrailers
	PhaseResponseHeaders
	PhaseResponseBody
	PhaseResponseTrailers
	numPhases
)

var phaseNames = [numPhases]string{
	"request_headers", "request_body", "request_trailers",
	"response_headers", "response_body", "response_trailers",
}

// Reasons spend records are dropped.
const (
	dropQueueFull = "queue_full"
	dropClosed    = "closed"
	dropShutdown  = "shutdown_timeout"
)

// LabelBounds lists the label values Metrics accepts; any other value is
// recorded as OtherValue. Build it from config (the model groups and their
// aliases, the deployment ids, the deployments' provider model names and
// providers) and pass it to SetBounds at every config load.
type LabelBounds struct {
	// ModelGroups are public model names, aliases included. A request
	// model is kept when it is a model group or a provider model.
	ModelGroups []string
	Deployments []string
	// Models are provider model names; a response model is kept when it,
	// or it without a version suffix, is listed.
	Models    []string
	Providers []string
}

type bounds struct {
	groups, deployments, models, providers map[string]struct{}
}

// RequestObservation is what the gateway learned about one finished
// request.
type RequestObservation struct {
	// Operation is the gen_ai.operation.name: "chat" for chat completions.
	Operation string
	// Provider is the wire format of the deployment that answered.
	Provider   string
	ModelGroup string
	Deployment string
	// RequestModel is the model the client asked for.
	RequestModel string
	// ResponseModel is the model the provider said answered.
	ResponseModel string
	// Status is the HTTP status returned to the client.
	Status int
	// ErrorType is the OpenAI error type of a failed request; empty on
	// success. Unknown types are recorded as "_OTHER".
	ErrorType string
	// Duration is the whole request, as the client saw it.
	Duration time.Duration
	// TimeToFirstToken is the time to the first streamed content; zero when
	// unknown or not streamed.
	TimeToFirstToken time.Duration
	Stream           bool
	Usage            transform.Usage
	// Estimated marks Usage as estimated by a tokenizer rather than
	// reported by the provider.
	Estimated bool
	// Cost is the request's cost in USD.
	Cost float64
	// Unpriced marks a request whose model has no known price: the price
	// table's Cost returned priced=false.
	Unpriced bool
}

type seriesKey struct {
	operation, provider, requestModel, responseModel string
	group, deployment, errorType, statusClass        string
}

// series holds the labelled children one kind of request updates, resolved
// once so that ObserveRequest does no label hashing.
type series struct {
	tokens    [len(tokenTypes)]prometheus.Observer
	duration  prometheus.Observer
	ttft      prometheus.Observer
	tpot      prometheus.Observer
	requests  prometheus.Counter
	spend     prometheus.Counter
	unpriced  prometheus.Counter
	estimated prometheus.Counter
}

// Metrics are the gateway's Prometheus metrics: OpenTelemetry GenAI
// histograms under their Prometheus names, and Tollgate's own metrics
// prefixed tollgate_. Every method is safe for concurrent use, and every
// method of a nil *Metrics does nothing, so components can run without
// metrics in tests.
type Metrics struct {
	tokenUsage        *prometheus.HistogramVec
	requestDuration   *prometheus.HistogramVec
	timeToFirstToken  *prometheus.HistogramVec
	timePerOutput     *prometheus.HistogramVec
	requests          *prometheus.CounterVec
	spend             *prometheus.CounterVec
	unpriced          *prometheus.CounterVec
	estimated         *prometheus.CounterVec
	limitRejections   *prometheus.CounterVec
	budgetRejections  *prometheus.CounterVec
	fallbacks         *prometheus.CounterVec
	deploymentHealthy *prometheus.GaugeVec
	extprocMessage    *prometheus.HistogramVec
	redisErrors       *prometheus.CounterVec
	spendQueue        prometheus.Gauge
	spendDropped      *prometheus.CounterVec
	spendWritten      prometheus.Counter

	messages [numFilters][numPhases]prometheus.Observer
	dropped  map[string]prometheus.Counter

	bounds atomic.Pointer[bounds]
	// cache is copied on write: reads are a load and a map lookup, and
	// writes are rare because label values are bounded.
	cache   atomic.Pointer[map[seriesKey]*series]
	cacheMu sync.Mutex
}

var genAILabels = []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model"}

func withLabels(base []string, extra ...string) []string {
	return append(append([]string(nil), base...), extra...)
}

// NewMetrics creates the metrics and registers them with reg. Until
// SetBounds is called every model, deployment and provider label is
// OtherValue.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tokenUsage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_client_token_usage",
			Help: "Tokens used per request, by token type (OpenTelemetry gen_ai.client.token.usage).",
			// OpenTelemetry's advised buckets for token counts.
			Buckets: []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864},
		}, withLabels(genAILabels, "gen_ai_token_type")),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_request_duration_seconds",
			Help:    "Request duration in seconds; error_type is empty on success (OpenTelemetry gen_ai.server.request.duration).",
			Buckets: []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92},
		}, withLabels(genAILabels, "error_type")),
		timeToFirstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_to_first_token_seconds",
			Help:    "Time to the first streamed token in seconds (OpenTelemetry gen_ai.server.time_to_first_token).",
			Buckets: []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10},
		}, genAILabels),
		timePerOutput: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_per_output_token_seconds",
			Help:    "Time per output token after the first, in seconds, for streams (OpenTelemetry gen_ai.server.time_per_output_token).",
			Buckets: []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5},
		}, genAILabels),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_requests_total",
			Help: "Requests answered, by model group, deployment, provider, HTTP status class and error type.",
		}, []string{"model_group", "deployment", "provider", "status_class", "error_type"}),
		spend: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_spend_usd_total",
			Help: "Cost of answered requests in USD.",
		}, []string{"model_group", "provider"}),
		unpriced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_unpriced_requests_total",
			Help: "Requests whose model has no known price and were recorded at cost 0.",
		}, []string{"model_group", "deployment", "provider"}),
		estimated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_estimated_usage_requests_total",
			Help: "Requests whose usage was estimated with a tokenizer because the provider reported none.",
		}, []string{"model_group", "deployment", "provider"}),
		limitRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_limit_rejections_total",
			Help: "Requests rejected by a rate or parallel-request limit, by scope and limit.",
		}, []string{"scope", "limit"}),
		budgetRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_budget_rejections_total",
			Help: "Requests rejected because a budget was spent, by scope.",
		}, []string{"scope"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_fallbacks_total",
			Help: "Requests answered by a fallback model group instead of the one asked for.",
		}, []string{"model_group", "fallback_model_group"}),
		deploymentHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_deployment_healthy",
			Help: "1 when a deployment is healthy, 0 when it is cooled down or ejected.",
		}, []string{"model_group", "deployment"}),
		extprocMessage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_extproc_message_duration_seconds",
			Help:    "Time to process one ext_proc message, by filter and phase.",
			Buckets: []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25},
		}, []string{"filter", "phase"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_redis_errors_total",
			Help: "Failed Redis operations, by operation.",
		}, []string{"operation"}),
		spendQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_spend_queue_records",
			Help: "Spend records waiting to be written.",
		}),
		spendDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_spend_records_dropped_total",
			Help: "Spend records lost, by reason (queue_full, closed, shutdown_timeout).",
		}, []string{"reason"}),
		spendWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_spend_records_written_total",
			Help: "Spend records written to the spend sink.",
		}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{
		m.tokenUsage, m.requestDuration, m.timeToFirstToken, m.timePerOutput,
		m.requests, m.spend, m.unpriced, m.estimated, m.limitRejections, m.budgetRejections,
		m.fallbacks, m.deploymentHealthy, m.extprocMessage, m.redisErrors,
		m.spendQueue, m.spendDropped, m.spendWritten,
	} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("register accounting metrics: %w", errors.Join(errs...))
	}
	for f := range numFilters {
		for p := range numPhases {
			m.messages[f][p] = m.extprocMessage.WithLabelValues(filterNames[f], phaseNames[p])
		}
	}
	m.dropped = map[string]prometheus.Counter{}
	for _, r := range []string{dropQueueFull, dropClosed, dropShutdown} {
		m.dropped[r] = m.spendDropped.WithLabelValues(r)
	}
	m.bounds.Store(&bounds{})
	m.cache.Store(&map[seriesKey]*series{})
	return m, nil
}

// SetBounds replaces the accepted label values (call it at every config
// load). Health gauges of deployments that left the config are removed.
func (m *Metrics) SetBounds(b LabelBounds) {
	if m == nil {
		return
	}
	next := &bounds{
		groups:      set(b.ModelGroups...),
		deployments: set(b.Deployments...),
		models:      set(b.Models...),
		providers:   set(b.Providers...),
	}
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	old := m.bounds.Swap(next)
	for d := range old.deployments {
		if _, ok := next.deployments[d]; !ok {
			m.deploymentHealthy.DeletePartialMatch(prometheus.Labels{"deployment": d})
		}
	}
	m.cache.Store(&map[seriesKey]*series{})
}

// ObserveRequest records one finished request: request count, duration,
// token usage, time to first token and per output token (streams), cost,
// and whether its price or usage was unknown. Call it once per request.
func (m *Metrics) ObserveRequest(o RequestObservation) {
	if m == nil {
		return
	}
	s := m.seriesFor(o)
	s.requests.Inc()
	s.duration.Observe(o.Duration.Seconds())
	if !o.Usage.IsZero() {
		s.tokens[0].Observe(float64(o.Usage.InputTokens))
		s.tokens[1].Observe(float64(o.Usage.OutputTokens))
		for i, v := range [...]int64{o.Usage.CachedInputTokens, o.Usage.CacheCreationInputTokens, o.Usage.ReasoningTokens} {
			if v > 0 {
				s.tokens[2+i].Observe(float64(v))
			}
		}
	}
	if o.Stream && o.TimeToFirstToken > 0 {
		s.ttft.Observe(o.TimeToFirstToken.Seconds())
		// OpenTelemetry's definition: time after the first token divided
		// by the tokens after the first.
		if out := o.Usage.OutputTokens; out > 1 && o.Duration > o.TimeToFirstToken {
			s.tpot.Observe((o.Duration - o.TimeToFirstToken).Seconds() / float64(out-1))
		}
	}
	if o.Cost > 0 {
		s.spend.Add(o.Cost)
	}
	if o.Unpriced {
		s.unpriced.Inc()
	}
	if o.Estimated {
		s.estimated.Inc()
	}
}

func (m *Metrics) seriesFor(o RequestObservation) *series {
	b := m.bounds.Load()
	errType := ""
	if o.ErrorType != "" || o.Status >= 400 {
		errType = pick(knownErrorTypes, o.ErrorType, errorTypeOther)
	}
	k := seriesKey{
		operation:     pick(operations, o.Operation, OtherValue),
		provider:      pick(b.providers, o.Provider, OtherValue),
		requestModel:  b.requestModel(o.RequestModel),
		responseModel: b.responseModel(o.ResponseModel),
		group:         pick(b.groups, o.ModelGroup, OtherValue),
		deployment:    pick(b.deployments, o.Deployment, OtherValue),
		errorType:     errType,
		statusClass:   statusClass(o.Status),
	}
	if s, ok := (*m.cache.Load())[k]; ok {
		return s
	}
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	cur := *m.cache.Load()
	if s, ok := cur[k]; ok {
		return s
	}
	s := m.newSeries(k)
	next := make(map[seriesKey]*series, len(cur)+1)
	for kk, v := range cur {
		next[kk] = v
	}
	next[k] = s
	m.cache.Store(&next)
	return s
}

func (m *Metrics) newSeries(k seriesKey) *series {
	gen := []string{k.operation, k.provider, k.requestModel, k.responseModel}
	s := &series{
		duration:  m.requestDuration.WithLabelValues(append(gen, k.errorType)...),
		ttft:      m.timeToFirstToken.WithLabelValues(gen...),
		tpot:      m.timePerOutput.WithLabelValues(gen...),
		requests:  m.requests.WithLabelValues(k.group, k.deployment, k.provider, k.statusClass, k.errorType),
		spend:     m.spend.WithLabelValues(k.group, k.provider),
		unpriced:  m.unpriced.WithLabelValues(k.group, k.deployment, k.provider),
		estimated: m.estimated.WithLabelValues(k.group, k.deployment, k.provider),
	}
	for i, tt := range tokenTypes {
		s.tokens[i] = m.tokenUsage.WithLabelValues(append(gen[:4:4], tt)...)
	}
	return s
}

func (b *bounds) requestModel(model string) string {
	if _, ok := b.groups[model]; ok {
		return model
	}
	return pick(b.models, model, OtherValue)
}

func (b *bounds) responseModel(model string) string {
	if _, ok := b.models[model]; ok {
		return model
	}
	if base, ok := stripVersion(model); ok {
		if _, ok := b.models[base]; ok {
			return base
		}
	}
	return OtherValue
}

// LimitRejected counts a request rejected by a limit. scope is one of key,
// team, user, end_user, model_group, deployment, global; limit is one of
// rpm, tpm, parallel. Other values are counted as OtherValue.
func (m *Metrics) LimitRejected(scope, limit string) {
	if m == nil {
		return
	}
	m.limitRejections.WithLabelValues(pick(limitScopes, scope, OtherValue), pick(limitKinds, limit, OtherValue)).Inc()
}

// BudgetRejected counts a request rejected because the budget of scope
// (as for LimitRejected) is spent.
func (m *Metrics) BudgetRejected(scope string) {
	if m == nil {
		return
	}
	m.budgetRejections.WithLabelValues(pick(limitScopes, scope, OtherValue)).Inc()
}

// FallbackTaken counts a request of modelGroup answered by fallbackGroup.
func (m *Metrics) FallbackTaken(modelGroup, fallbackGroup string) {
	if m == nil {
		return
	}
	b := m.bounds.Load()
	m.fallbacks.WithLabelValues(pick(b.groups, modelGroup, OtherValue), pick(b.groups, fallbackGroup, OtherValue)).Inc()
}

// SetDeploymentHealth records whether a deployment is healthy. Unknown
// deployments are ignored rather than folded into OtherValue: one gauge
// cannot hold the health of several deployments.
func (m *Metrics) SetDeploymentHealth(modelGroup, deployment string, healthy bool) {
	if m == nil {
		return
	}
	b := m.bounds.Load()
	if _, ok := b.deployments[deployment]; !ok {
		return
	}
	v := 0.0
	if healthy {
		v = 1
	}
	m.deploymentHealthy.WithLabelValues(pick(b.groups, modelGroup, OtherValue), deployment).Set(v)
}

// ObserveExtProcMessage records the time spent on one ext_proc message.
// Values outside the defined filters and phases are ignored.
func (m *Metrics) ObserveExtProcMessage(f ExtProcFilter, p ExtProcPhase, d time.Duration) {
	if m == nil || f >= numFilters || p >= numPhases {
		return
	}
	m.messages[f][p].Observe(d.Seconds())
}

// RedisError counts a failed Redis operation. op must be a constant of the
// calling code (for example "spend_write"), never data from a request.
func (m *Metrics) RedisError(op string) {
	if m == nil {
		return
	}
	m.redisErrors.WithLabelValues(op).Inc()
}

func (m *Metrics) setSpendQueue(n int) {
	if m == nil {
		return
	}
	m.spendQueue.Set(float64(n))
}

func (m *Metrics) spendDrop(reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.dropped[reason].Add(float64(n))
}

func (m *Metrics) spendWrote(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.spendWritten.Add(float64(n))
}

func statusClass(status int) string {
	switch status / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return OtherValue
}

func set(values ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(values))
	for _, v := range values {
		m[v] = struct{}{}
	}
	return m
}

// pick returns v when it is in allowed, else fallback.
func pick(allowed map[string]struct{}, v, fallback string) string {
	if _, ok := allowed[v]; ok {
		return v
	}
	return fallback
}
