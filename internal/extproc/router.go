package extproc

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/policy"
	"github.com/tollgate-gw/tollgate/pkg/routing"
	"github.com/tollgate-gw/tollgate/pkg/tracing"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// headerErrorSource marks a local reply of Tollgate's upstream filter, whose
// body is already an OpenAI error, so the router-level filter passes it on.
const headerErrorSource = "x-tollgate-error-source"

// routerStream is the router-level filter's view of one request: gateway
// concerns on the way in (auth, model resolution, pool choice) and response
// translation and metering on the way out.
type routerStream struct {
	srv   *Server
	rt    *config.Runtime
	start time.Time

	requestID    string
	span         *tracing.Span
	key          *policy.Key
	admission    *policy.Admission
	api          transform.API
	endpoint     endpoint
	group        *routing.Group
	stream       bool
	includeUsage bool
	body         []byte // request body chunks when Envoy sends more than one

	status     int
	deployment *routing.Deployment
	attempts   int64
	passOn     bool // response is Tollgate's own error: forward untouched
	translator transform.ResponseTranslator
	streamed   bool
	respBody   []byte // buffered response chunks before end of stream
	usage      transform.Usage
	respModel  string
	complete   bool
	errorType  transform.ErrorType

	// replies holds the reply being built; Process hands it over per
	// message.
	replies *replies

	// Metering.
	reqBody    []byte // the client's body, kept (not copied) to estimate a prompt's tokens
	firstChunk time.Time
	delivered  deliveredText // streamed text, to estimate output a cut stream never reported
	metered    bool
	estimated  bool
	cost       float64
	priced     bool
}

func (r *routerStream) use(p *replies) { r.replies = p }

func (r *routerStream) handle(ctx context.Context, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	var resp *extprocv3.ProcessingResponse
	var err error
	switch m := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		resp, err = r.requestHeaders(ctx, m.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		resp, err = r.requestBody(ctx, m.RequestBody)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		resp = r.responseHeaders(req, m.ResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		resp = r.responseBody(ctx, m.ResponseBody)
	default:
		return replyInKind(req)
	}
	if err != nil {
		return r.reject(ctx, err)
	}
	return resp
}

// reject answers the request with an OpenAI error instead of forwarding it.
func (r *routerStream) reject(ctx context.Context, err error) *extprocv3.ProcessingResponse {
	e, known := classify(err)
	r.status, r.errorType, r.complete = e.Status, e.Type, true
	if !known {
		r.srv.log.LogAttrs(ctx, slog.LevelError, "request failed", slog.String("request_id", r.requestID), slog.Any("error", err))
	}
	return immediateError(r.api, e)
}

func (r *routerStream) requestHeaders(ctx context.Context, h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	hm := h.GetHeaders()
	r.requestID = headerValue(hm, headerEnvoyReqID)
	if r.requestID == "" {
		r.requestID = r.srv.opts.NewRequestID()
	}
	path, _, _ := strings.Cut(headerValue(hm, ":path"), "?")
	method := headerValue(hm, ":method")
	ep, ok := endpoints[path]
	if !ok {
		return nil, errUnknownPath(path)
	}
	r.api, r.endpoint = ep.api, ep
	if method != ep.method {
		return nil, errMethod(method, path, ep.method)
	}
	models := ep.api == ""
	if !models {
		r.span = r.srv.opts.Tracer.Start(headerValue(hm, "traceparent"), headerValue(hm, "tracestate"), r.start)
	}
	key, err := r.authenticate(ctx, clientKey(hm))
	if err != nil {
		return nil, err
	}
	r.key = key
	if models {
		r.status, r.complete = http.StatusOK, true
		return immediateJSON(http.StatusOK, modelList(r.rt.Routes, key)), nil
	}
	if h.GetEndOfStream() {
		return nil, badRequest("", "missing_body", "the request has no body; send a JSON request body")
	}
	// Credentials and gateway headers from the client are dropped before
	// anything else can read them.
	m := r.replies.begin()
	m.remove(clientCredentialHeaders...)
	for _, hv := range hm.GetHeaders() {
		if strings.HasPrefix(hv.GetKey(), headerPrefix) && hv.GetKey() != headerRequestID {
			m.remove(hv.GetKey())
		}
	}
	m.set(headerRequestID, r.requestID)
	// The provider call continues the gateway's trace.
	if tp := r.span.Traceparent(); tp != "" {
		m.set("traceparent", tp)
		if ts := r.span.Tracestate(); ts != "" {
			m.set("tracestate", ts)
		}
	}
	return r.replies.requestHeaders(r.replies.common()), nil
}

// authenticate checks the key with the server's authenticator (stored and
// cached keys), or the config's static keys when there is none.
func (r *routerStream) authenticate(ctx context.Context, secret string) (*policy.Key, error) {
	if a := r.srv.opts.Auth; a != nil {
		return a.Authenticate(ctx, secret)
	}
	return r.rt.Keys.Authenticate(secret)
}

// clientKey finds the API key the way OpenAI, Anthropic and Azure clients
// send it.
func clientKey(hm *corev3.HeaderMap) string {
	if auth := headerValue(hm, "authorization"); auth != "" {
		if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			return strings.TrimSpace(auth[7:])
		}
		return ""
	}
	if k := headerValue(hm, "x-api-key"); k != "" {
		return k
	}
	return headerValue(hm, "api-key")
}

func (r *routerStream) requestBody(ctx context.Context, b *extprocv3.HttpBody) (*extprocv3.ProcessingResponse, error) {
	body := b.GetBody()
	if !b.GetEndOfStream() || r.body != nil {
		// Envoy sends one message in BUFFERED mode; collect anything else
		// until the end so a misconfigured mode still works.
		r.body = append(r.body, body...)
		if !b.GetEndOfStream() {
			r.replies.begin()
			return r.replies.requestBody(nil), nil
		}
		body = r.body
	}
	if limit := r.rt.Server.MaxRequestBodyBytes; int64(len(body)) > limit {
		return nil, errBodyTooLarge(int64(len(body)), limit)
	}
	f, err := readRequestFields(body, r.endpoint)
	if err != nil {
		return nil, err
	}
	r.stream, r.includeUsage = f.stream, f.includeUsage
	r.reqBody = body
	r.logBody(ctx, "request body", body)

	group, err := r.rt.Routes.Resolve(f.model)
	if err != nil {
		return nil, err
	}
	if err := r.key.CheckModel(group.Name); err != nil {
		return nil, err
	}
	r.group = group
	if err := r.admit(ctx, len(body)); err != nil {
		return nil, err
	}
	m := r.replies.begin()
	m.set(headerPool, r.pool())
	c := r.replies.common()
	// The route was chosen before the pool header existed; clearing the
	// cache (together with a header mutation, or Envoy ignores it) makes
	// Envoy route on x-tollgate-pool.
	c.ClearRouteCache = true
	// Only what Envoy cannot log itself: the request id, the answering
	// host's metadata and attempt counts are Envoy's own fields.
	md := &r.replies.md
	md.str(mdKeyID, r.key.ID)
	md.str(mdModelGroup, group.Name)
	md.str(mdAPI, string(r.api))
	return r.replies.requestBody(c), nil
}

// requestFields are the request fields the router-level filter acts on.
type requestFields struct {
	model        string
	stream       bool
	includeUsage bool
}

// readRequestFields validates the body and reads its top-level fields in
// one pass. The body is viewed as a string without a copy (gjson.GetBytes
// would copy every result, the whole messages array included); the view
// lives only within this call, while the body is not modified.
func readRequestFields(body []byte, ep endpoint) (requestFields, error) {
	var f requestFields
	js := view(body)
	if !gjson.Valid(js) || !isJSONObject(js) {
		return f, badRequest("", "invalid_json", "the request body is not a valid JSON object")
	}
	var model, input, stream, streamOptions, maxTokens gjson.Result
	gjson.Parse(js).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			model = v
		case ep.input:
			input = v
		case "stream":
			stream = v
		case "stream_options":
			streamOptions = v
		case "max_tokens":
			maxTokens = v
		}
		return true
	})
	switch {
	case !model.Exists():
		return f, badRequest("model", "missing_model", "you must provide a model parameter")
	case model.Type != gjson.String:
		return f, badRequest("model", "invalid_model", "model must be a string")
	case !ep.validInput(input):
		if ep.inputArrayOnly {
			return f, badRequest(ep.input, "invalid_"+ep.input, "%s must be an array", ep.input)
		}
		return f, badRequest(ep.input, "invalid_"+ep.input, "%s must be a string or an array", ep.input)
	}
	if ep.requireMaxTokens && (maxTokens.Type != gjson.Number || maxTokens.Int() < 1 || float64(maxTokens.Int()) != maxTokens.Num) {
		return f, badRequest("max_tokens", "invalid_max_tokens", "max_tokens: a positive integer is required")
	}
	switch {
	case !stream.Exists(), stream.Type == gjson.Null:
	case stream.IsBool():
		f.stream = stream.Bool()
	default:
		return f, badRequest("stream", "invalid_stream", "stream must be a boolean")
	}
	// model.Str points into the body; the group name looked up with it is
	// the table's own string, so nothing keeps the view alive.
	f.model = model.Str
	f.includeUsage = f.stream && streamOptions.Get("include_usage").Bool()
	return f, nil
}

// admit checks and counts the request against its key's, team's and model
// group's limits and budgets and, in a group with hard-limited
// deployments, picks a deployment with capacity in the same step. The TPM
// check uses a cheap estimate (about four bytes a token); the real usage
// corrects it when the request ends.
func (r *routerStream) admit(ctx context.Context, bodySize int) error {
	lim := r.srv.opts.Limiter
	if lim == nil {
		return nil
	}
	adm, err := lim.Admit(ctx, policy.Request{Key: r.key, ModelGroup: r.group.Name,
		ModelGroupLimits: r.rt.GroupLimits[r.group.Name], EstimatedTokens: int64(bodySize / 4),
		Deployments: r.srv.avoided.filter(r.rt.DeploymentLimits[r.group.Name], r.srv.opts.Now)})
	var le *policy.LimitError
	var be *policy.BudgetError
	var de *policy.DeploymentsError
	switch {
	case errors.As(err, &le):
		r.srv.opts.Metrics.LimitRejected(string(le.Scope), limitMetricName(le.Limit))
	case errors.As(err, &de):
		r.srv.opts.Metrics.LimitRejected(string(policy.ScopeDeployment), limitMetricName(de.Binding().Limit))
	case errors.As(err, &be):
		r.srv.opts.Metrics.BudgetRejected(string(be.Scope))
	}
	r.admission = adm
	return err
}

// pool is the Envoy cluster the request goes to: the pinned pool of the
// deployment admission picked, else the group's pool.
func (r *routerStream) pool() string {
	if a := r.admission; a != nil && a.Deployment != "" {
		if d, err := r.rt.Routes.Deployment(a.Deployment); err == nil && d.PinnedPool != "" {
			return d.PinnedPool
		}
	}
	return r.group.Pool
}

// limitMetricName is the metric label of a limit kind.
func limitMetricName(k policy.LimitKind) string {
	switch k {
	case policy.LimitRPM:
		return "rpm"
	case policy.LimitTPM:
		return "tpm"
	}
	return "parallel"
}

func isJSONObject(js string) bool {
	js = strings.TrimLeft(js, " \t\r\n")
	return len(js) > 0 && js[0] == '{'
}

func (r *routerStream) responseHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	hm := h.GetHeaders()
	r.status = statusOf(hm)
	m := r.replies.begin()
	m.set(headerRequestID, r.requestID)
	if r.group != nil {
		m.set(headerModelGroup, r.group.Name)
	}
	if a := r.admission; a != nil {
		setRateHeaders(m, a.Rate)
	}
	if headerValue(hm, headerErrorSource) != "" {
		r.passOn = true
		m.remove(headerErrorSource)
	}
	if id := answeringDeployment(req); id != "" && !r.passOn {
		d, err := r.rt.Routes.Deployment(id)
		if err != nil {
			// Envoy's pool and this replica's config disagree (a config
			// push in flight); the body is passed on untranslated.
			r.srv.log.LogAttrs(context.Background(), slog.LevelWarn, "response from unknown deployment",
				slog.String("request_id", r.requestID), slog.String("deployment", id))
		} else {
			r.deployment = d
			r.attempts = attemptCount(hm)
			r.noteSkipped(d)
			if r.group != nil && d.ModelGroup != r.group.Name {
				r.srv.opts.Metrics.FallbackTaken(r.group.Name, d.ModelGroup)
			}
			// What this replica last saw of the deployment; Envoy's own
			// outlier ejection shows in Envoy's stats.
			r.srv.opts.Metrics.SetDeploymentHealth(d.ModelGroup, d.ID, r.status < 500 && r.status != http.StatusTooManyRequests)
			m.set(headerDeployment, d.ID)
			if r.attempts > 0 {
				m.setInt(headerAttempts, r.attempts)
			}
			r.translator, err = transform.NewResponseTranslator(r.api, d.Provider, transform.ResponseOptions{
				Stream: r.stream, IncludeUsage: r.includeUsage, Created: r.start.Unix(),
				Model: d.Model, ID: "chatcmpl-" + r.requestID, Request: r.reqBody,
			})
			if err != nil {
				r.srv.log.LogAttrs(context.Background(), slog.LevelError, "no response translator",
					slog.String("request_id", r.requestID), slog.Any("error", err))
			}
		}
	}
	if h.GetEndOfStream() {
		r.complete = true
	} else if r.translator != nil && isSuccess(r.status) && isStreamContentType(headerValue(hm, headerContentType)) {
		// Events must reach the client as they come: switch this response
		// to STREAMED. Envoy strips content-length itself.
		r.streamed = true
		m.set(headerContentType, "text/event-stream")
	}
	resp := r.replies.responseHeaders(r.replies.common())
	if r.streamed {
		resp.ModeOverride = streamedResponseMode
	}
	return resp
}

// noteSkipped notices a pinned request answered on its first attempt by
// another deployment than the pinned one: Envoy had no healthy host at the
// pinned pool's priority 0, so admission avoids that deployment for a
// while (docs/design.md, D5).
func (r *routerStream) noteSkipped(answered *routing.Deployment) {
	a := r.admission
	if a == nil || a.Deployment == "" || a.Deployment == answered.ID || r.attempts != 1 {
		return
	}
	if r.srv.avoided.skip(a.Deployment, r.srv.opts.Now()) {
		r.srv.log.LogAttrs(context.Background(), slog.LevelWarn, "envoy skipped a pinned deployment; admission avoids it for a while",
			slog.String("deployment", a.Deployment), slog.String("answered_by", answered.ID), slog.Duration("for", avoidFor))
	}
}

func isSuccess(status int) bool { return status >= 200 && status < 300 }

// isStreamContentType recognises the streaming wire formats providers
// answer with: SSE, Bedrock's binary event stream, Ollama's NDJSON.
func isStreamContentType(ct string) bool {
	for _, t := range [...]string{"text/event-stream", "application/vnd.amazon.eventstream", "application/x-ndjson"} {
		if strings.Contains(ct, t) {
			return true
		}
	}
	return false
}

// setRateHeaders reports the tightest limit that applied, as OpenAI does;
// limits that did not apply are left out.
func setRateHeaders(m *mutation, rate policy.RateInfo) {
	if rate.LimitRequests > 0 {
		m.setInt("x-ratelimit-limit-requests", rate.LimitRequests)
		m.setInt("x-ratelimit-remaining-requests", rate.RemainingRequests)
	}
	if rate.LimitTokens > 0 {
		m.setInt("x-ratelimit-limit-tokens", rate.LimitTokens)
		m.setInt("x-ratelimit-remaining-tokens", rate.RemainingTokens)
	}
}

// answeringDeployment is the deployment of the attempt whose response this
// is: Envoy evaluates the response attribute once, on the response_headers
// message, against the final attempt's host.
func answeringDeployment(req *extprocv3.ProcessingRequest) string {
	return req.GetAttributes()[attributesKey].GetFields()[deploymentAttribute].GetStringValue()
}

// attemptCount reads Envoy's x-envoy-attempt-count response header
// (include_attempt_count_in_response); 0 when absent.
func attemptCount(hm *corev3.HeaderMap) int64 {
	n, _ := strconv.ParseInt(headerValue(hm, headerAttemptCnt), 10, 64)
	return n
}

func (r *routerStream) responseBody(ctx context.Context, b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	if r.streamed {
		return r.streamChunk(ctx, b)
	}
	body := b.GetBody()
	if !b.GetEndOfStream() || r.respBody != nil {
		r.respBody = append(r.respBody, body...)
		if !b.GetEndOfStream() {
			r.replies.begin()
			return r.replies.responseBody(nil)
		}
		body = r.respBody
	}
	r.complete = true
	r.logBody(ctx, "response body", body)
	out, status := r.translateBuffered(ctx, body)
	m := r.replies.begin()
	if out != nil {
		// Headers are still held in BUFFERED mode, so the length and type
		// can be fixed in this reply; a stale content-length fails with 500.
		m.setInt(headerContentLen, int64(len(out)))
		m.set(headerContentType, "application/json")
		r.replies.replaceBody(out)
	}
	if status != r.status {
		m.setInt(":status", int64(status))
		r.status = status
	}
	r.meter()
	if r.priced {
		m.set(headerResponseCost, strconv.FormatFloat(r.cost, 'f', -1, 64))
	}
	r.usageMetadata()
	return r.replies.responseBody(r.replies.common())
}

// translateBuffered returns the body to send instead of the provider's (nil
// to keep it) and the status to answer with.
func (r *routerStream) translateBuffered(ctx context.Context, body []byte) ([]byte, int) {
	switch {
	case r.passOn:
		return nil, r.status
	case r.translator == nil:
		// Not a provider's answer: an Envoy local reply (no healthy
		// upstream, timeout, route not found). Errors get OpenAI's shape.
		if r.status < 400 || isOpenAIError(body) {
			return nil, r.status
		}
		e := localReplyError(r.status, body)
		r.errorType = e.Type
		return encodeErrorFor(r.api, e), e.Status
	case !isSuccess(r.status):
		pe := r.translator.ErrorBody(r.status, body)
		r.errorType = pe.Type
		return encodeErrorFor(r.api, apiError{Status: pe.Status, Type: pe.Type, Code: pe.Code, Param: pe.Param, Message: pe.Message}), pe.Status
	}
	res, err := r.translator.ResponseBody(body)
	if err != nil {
		r.srv.log.LogAttrs(ctx, slog.LevelWarn, "untranslatable provider response",
			slog.String("request_id", r.requestID), slog.String("deployment", r.deployment.ID), slog.Any("error", err))
		e := apiError{Status: http.StatusBadGateway, Type: transform.ErrorTypeServer, Code: "bad_provider_response",
			Message: "the provider's response could not be read"}
		r.errorType = e.Type
		return encodeErrorFor(r.api, e), e.Status
	}
	r.usage, r.respModel = res.Usage, res.Model
	return res.Body, r.status
}

func (r *routerStream) streamChunk(ctx context.Context, b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	chunk := b.GetBody()
	res, err := r.translator.StreamChunk(chunk, b.GetEndOfStream())
	if err != nil {
		// Headers are gone: the only way to tell the client is an error
		// event in the stream.
		r.srv.log.LogAttrs(ctx, slog.LevelWarn, "untranslatable stream chunk",
			slog.String("request_id", r.requestID), slog.String("deployment", r.deployment.ID), slog.Any("error", err))
		e := apiError{Status: http.StatusBadGateway, Type: transform.ErrorTypeServer, Code: "bad_provider_response", Message: "the provider's stream could not be read"}
		r.errorType = e.Type
		res.Body = append(append([]byte("data: "), encodeErrorFor(r.api, e)...), "\n\n"...)
	}
	r.usage = res.Usage
	if res.Model != "" {
		r.respModel = res.Model
	}
	if len(res.Body) > 0 {
		if r.firstChunk.IsZero() {
			r.firstChunk = r.srv.opts.Now()
		}
		r.delivered.add(res.Body)
	}
	r.replies.begin()
	if !sameBytes(res.Body, chunk) {
		r.replies.replaceBody(res.Body)
	}
	if b.GetEndOfStream() {
		r.complete = true
		r.meter()
		r.usageMetadata()
	}
	return r.replies.responseBody(r.replies.common())
}

// sameBytes reports whether out is chunk itself, as pass-through
// translators return it, so no body mutation (and no copy) is needed.
func sameBytes(out, chunk []byte) bool {
	if len(out) != len(chunk) {
		return false
	}
	return len(out) == 0 || &out[0] == &chunk[0]
}

// usageMetadata exposes the request's outcome to Envoy access logs, in the
// reply being built.
func (r *routerStream) usageMetadata() {
	md := &r.replies.md
	md.num("input_tokens", float64(r.usage.InputTokens))
	md.num("output_tokens", float64(r.usage.OutputTokens))
	if r.usage.CachedInputTokens > 0 {
		md.num("cached_input_tokens", float64(r.usage.CachedInputTokens))
	}
	if r.usage.ReasoningTokens > 0 {
		md.num("reasoning_tokens", float64(r.usage.ReasoningTokens))
	}
	if r.respModel != "" {
		md.str("response_model", r.respModel)
	}
	if r.priced {
		md.num("cost", r.cost)
	}
	if r.estimated {
		md.boolean("usage_estimated", true)
	}
}

// meter settles the request's usage and cost once: the provider's usage,
// completed by estimates where the provider reported none (no usage in the
// response, or a stream cut before its usage arrived).
func (r *routerStream) meter() {
	if r.metered || r.deployment == nil {
		return
	}
	r.metered = true
	if isSuccess(r.status) {
		if r.usage.InputTokens == 0 && len(r.reqBody) > 0 {
			if n := estimatePromptTokens(r.api, r.reqBody); n > 0 {
				r.usage.InputTokens = n
				r.estimated = true
			}
		}
		if r.usage.OutputTokens == 0 && r.delivered.size > 0 {
			r.usage.OutputTokens = r.delivered.estimateTokens()
			r.estimated = true
		}
	}
	model := r.respModel
	if model == "" {
		model = r.deployment.Model
	}
	r.cost, r.priced = r.rt.Prices.Cost(r.deployment.ID, string(r.deployment.Provider), model, r.usage)
}

// estimatePromptTokens estimates the input of a request whose provider
// reported none, from the client's body in the API it was sent in.
func estimatePromptTokens(api transform.API, body []byte) int64 {
	switch api {
	case transform.APIChatCompletions, transform.APIMessages:
		return accounting.EstimatePromptTokens(body)
	case transform.APIEmbeddings:
		return accounting.EstimateInputTokens(body, "input")
	case transform.APICompletions:
		return accounting.EstimateInputTokens(body, "prompt")
	}
	return 0
}

func (r *routerStream) finish(ctx context.Context) {
	if r.requestID == "" || r.api == "" {
		return
	}
	r.meter()
	r.trace()
	// The parallel slot is released and the budget charged however the
	// request ended (the stream's context may be gone already), before the
	// spend record makes the request visible as finished.
	o := policy.Outcome{Tokens: r.usage.TotalTokens(), Cost: r.cost}
	if r.deployment != nil {
		o.Deployment = r.deployment.ID
	}
	r.admission.Done(context.WithoutCancel(ctx), o)
	r.account()
	if !r.srv.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", r.requestID),
		slog.Int("status", r.status),
		slog.Duration("duration", r.srv.opts.Now().Sub(r.start)),
		slog.Bool("stream", r.stream),
		slog.Int64("input_tokens", r.usage.InputTokens),
		slog.Int64("output_tokens", r.usage.OutputTokens),
	}
	if r.key != nil {
		attrs = append(attrs, slog.String("key_id", r.key.ID))
	}
	if r.group != nil {
		attrs = append(attrs, slog.String("model_group", r.group.Name))
	}
	if r.deployment != nil {
		attrs = append(attrs, slog.String("deployment", r.deployment.ID), slog.String("provider", string(r.deployment.Provider)))
	}
	if r.errorType != "" {
		attrs = append(attrs, slog.String("error_type", string(r.errorType)))
	}
	if !r.complete {
		// The client went away, or Envoy gave up, before the response
		// ended; usage counts what was delivered.
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	r.srv.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}

// trace completes and ends the request's span.
func (r *routerStream) trace() {
	if r.span == nil {
		return
	}
	req := tracing.Request{Operation: operationName(r.api), Stream: r.stream, RequestID: r.requestID}
	if r.group != nil {
		req.ModelGroup = r.group.Name
	}
	if r.key != nil {
		req.KeyID = r.key.ID
	}
	r.span.SetRequest(req)
	resp := tracing.Response{Deployment: r.deployment, Attempts: r.attempts, Model: r.respModel, Usage: r.usage,
		UsageEstimated: r.estimated, Cost: r.cost, Priced: r.priced}
	if !r.firstChunk.IsZero() {
		resp.TimeToFirstToken = r.firstChunk.Sub(r.start)
	}
	r.span.SetResponse(resp)
	status := r.status
	if !r.complete && status == 0 {
		status = 499
	}
	r.span.End(r.srv.opts.Now(), tracing.Outcome{Status: status, ErrorType: string(r.errorType), Aborted: !r.complete})
}

// account records the finished request: one spend record and the metrics.
func (r *routerStream) account() {
	now := r.srv.opts.Now()
	rec := accounting.Record{
		Time: r.start, RequestID: r.requestID, Usage: r.usage, Cost: r.cost, Estimated: r.estimated,
		Latency: now.Sub(r.start), Status: r.status, ErrorType: string(r.errorType), Stream: r.stream,
	}
	if !r.complete && r.status == 0 {
		// Envoy or the client gave up before any response: 499 is the
		// conventional "client closed request".
		rec.Status = 499
	}
	if r.key != nil {
		rec.KeyID = r.key.ID
		if r.key.Team != nil {
			rec.Team = r.key.Team.ID
		}
	}
	if r.group != nil {
		rec.ModelGroup = r.group.Name
	}
	if d := r.deployment; d != nil {
		rec.Deployment, rec.Provider, rec.Model = d.ID, string(d.Provider), d.Model
		rec.Unpriced = !r.priced
	}
	if r.respModel != "" {
		rec.Model = r.respModel
	}
	if !r.firstChunk.IsZero() {
		rec.TimeToFirstToken = r.firstChunk.Sub(r.start)
	}
	if r.srv.opts.Spend != nil {
		r.srv.opts.Spend.Record(rec)
	}
	r.srv.opts.Metrics.ObserveRequest(accounting.RequestObservation{
		Operation: operationName(r.api), Provider: rec.Provider, ModelGroup: rec.ModelGroup, Deployment: rec.Deployment,
		RequestModel: rec.ModelGroup, ResponseModel: rec.Model, Status: rec.Status, ErrorType: rec.ErrorType,
		Duration: rec.Latency, TimeToFirstToken: rec.TimeToFirstToken, Stream: r.stream, Usage: r.usage,
		Estimated: r.estimated, Cost: r.cost, Unpriced: rec.Unpriced,
	})
}

// operationName is the OpenTelemetry gen_ai.operation.name of an API.
func operationName(api transform.API) string {
	switch api {
	case transform.APICompletions:
		return "text_completion"
	case transform.APIEmbeddings:
		return "embeddings"
	}
	return "chat"
}

// maxLoggedBody bounds a logged body.
const maxLoggedBody = 64 << 10

// logBody logs a body at debug level when server.log_bodies is on; bodies
// hold user content, so this is off by default.
func (r *routerStream) logBody(ctx context.Context, msg string, body []byte) {
	if !r.srv.opts.LogBodies || !r.srv.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	r.srv.log.LogAttrs(ctx, slog.LevelDebug, msg, slog.String("request_id", r.requestID),
		slog.String("body", string(body[:min(len(body), maxLoggedBody)])), slog.Int("size", len(body)))
}

// isOpenAIError reports whether body is already {"error":{...}}.
func isOpenAIError(body []byte) bool {
	return gjson.GetBytes(body, "error").IsObject()
}

// modelList answers /v1/models with the groups the key may call, in
// OpenAI's list shape.
func modelList(t *routing.Table, key *policy.Key) []byte {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, g := range t.GroupNames() {
		if key.Allows(g) {
			list.Data = append(list.Data, model{ID: g, Object: "model", OwnedBy: "tollgate"})
		}
	}
	out, _ := json.Marshal(list)
	return out
}
