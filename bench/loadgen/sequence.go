package loadgen

import (
	"context"
	"errors"
	"io"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Names from the wiring contract (docs/design.md).
const (
	// AttributesKey is where Envoy puts request_attributes results.
	AttributesKey = "envoy.filters.http.ext_proc"
	// DeploymentAttribute is the upstream filter's one request attribute.
	DeploymentAttribute = "xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"
	// Namespace is the dynamic metadata namespace both filters receive and forward.
	Namespace = "tollgate"
)

// Phases name the message a failure happened on, "<filter>.<message>".
const (
	PhaseRouterRequestHeaders   = "router.request_headers"
	PhaseRouterRequestBody      = "router.request_body"
	PhaseUpstreamRequestHeaders = "upstream.request_headers"
	PhaseUpstreamRequestBody    = "upstream.request_body"
	PhaseUpstreamClose          = "upstream.close"
	PhaseRouterResponseHeaders  = "router.response_headers"
	PhaseRouterResponseBody     = "router.response_body"
	PhaseRouterClose            = "router.close"
)

const (
	phaseOpen        = ".open"
	defaultAuthority = "localhost:10000"
	defaultPath      = "/v1/chat/completions"
	contentTypeJSON  = "application/json"
	contentTypeSSE   = "text/event-stream"
	// Envoy accepts one override_message_timeout per message state.
	maxTimeoutOverridesPerPhase = 1
)

// Failure kinds.
const (
	// FailImmediate: the server answered with immediate_response (a local
	// reply in Envoy); Status holds its HTTP status.
	FailImmediate = "immediate_response"
	// FailUnexpected: the reply's oneof is not the one the message needs.
	FailUnexpected = "unexpected_reply"
	// FailGRPC: the stream failed with a gRPC error (Detail is the code).
	FailGRPC = "grpc_error"
	// FailEOF: the server ended the stream before the sequence was done;
	// Envoy would carry on without ext_proc, which is never intended here.
	FailEOF = "early_eof"
	// FailExtra: a reply arrived after the last message was answered.
	FailExtra = "extra_reply"
	// FailMutation: a header mutation Envoy rejects with a 500.
	FailMutation = "invalid_mutation"
	// FailMode: a mode_override this generator (or Envoy) cannot follow.
	FailMode = "unsupported_mode"
)

// Failure is why one request did not complete cleanly.
type Failure struct {
	Kind   string // one of the Fail* constants
	Phase  string // one of the Phase* constants
	Detail string // the reply kind received, the gRPC code, ...
	Status int    // HTTP status of an immediate_response, else 0
}

func (f *Failure) Error() string {
	s := f.Kind + " at " + f.Phase
	if f.Status != 0 {
		s += " status=" + strconv.Itoa(f.Status)
	}
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

// Key is the failure's bucket in a report: kind, phase and detail, all from
// bounded sets, so reports never grow with the number of requests.
func (f *Failure) Key() string {
	k := f.Kind + " " + f.Phase
	if f.Status != 0 {
		k += " status=" + strconv.Itoa(f.Status)
	}
	if f.Detail != "" {
		k += " " + f.Detail
	}
	return k
}

// Sequence describes one HTTP request as Envoy carries it through the
// router-level filter and the upstream filter. It is read-only once in use
// and safe to share between goroutines.
type Sequence struct {
	// RequestBody is the client's request body, sent whole (BUFFERED).
	RequestBody []byte
	// ResponseBody is the upstream's body for a non-stream response.
	ResponseBody []byte
	// StreamEvents, when non-empty, makes the response a stream: one
	// response_body chunk per event when the server switches the body to
	// STREAMED, their concatenation when it leaves it BUFFERED.
	StreamEvents [][]byte
	// ResponseContentType is the upstream's content-type; empty means
	// application/json, or text/event-stream for a stream.
	ResponseContentType string
	// Deployment is the upstream host's tollgate.deployment metadata value.
	Deployment string
	// APIKey goes in "authorization: Bearer <key>"; empty sends no header.
	APIKey string
	// Authority is :authority; empty means localhost:10000.
	Authority string
	// Path is :path; empty means /v1/chat/completions.
	Path string
	// Attempts is the number of upstream attempts per request, each on its
	// own upstream stream; 0 means 1.
	Attempts int
	// RouterForwardsMetadata plays a router-level filter configured with
	// forwarding_namespaces: every router message after the request body
	// carries the merged tollgate namespace. False plays envoy/envoy.yaml:
	// the answering deployment arrives once as a response attribute and the
	// attempt count as x-envoy-attempt-count (include_attempt_count_in_response).
	RouterForwardsMetadata bool
}

// Streaming reports whether the response is a stream.
func (s *Sequence) Streaming() bool { return len(s.StreamEvents) > 0 }

func (s *Sequence) attempts() int { return max(s.Attempts, 1) }

func (s *Sequence) contentType() string {
	switch {
	case s.ResponseContentType != "":
		return s.ResponseContentType
	case s.Streaming():
		return contentTypeSSE
	}
	return contentTypeJSON
}

// bufferedResponse is the whole response body as Envoy would buffer it.
func (s *Sequence) bufferedResponse() []byte {
	if !s.Streaming() {
		return s.ResponseBody
	}
	var n int
	for _, ev := range s.StreamEvents {
		n += len(ev)
	}
	b := make([]byte, 0, n)
	for _, ev := range s.StreamEvents {
		b = append(b, ev...)
	}
	return b
}

// chunks is the response body as STREAMED data callbacks: one per event.
func (s *Sequence) chunks() [][]byte {
	if s.Streaming() {
		return s.StreamEvents
	}
	return [][]byte{s.ResponseBody}
}

func (s *Sequence) requestHeaders(requestID string) headerMap {
	authority, path := s.Authority, s.Path
	if authority == "" {
		authority = defaultAuthority
	}
	if path == "" {
		path = defaultPath
	}
	h := headerMap{
		{":authority", authority},
		{":path", path},
		{":method", "POST"},
		{":scheme", "http"},
		{"content-type", contentTypeJSON},
		{"content-length", strconv.Itoa(len(s.RequestBody))},
		{"x-request-id", requestID},
	}
	if s.APIKey != "" {
		h = append(h, header{"authorization", "Bearer " + s.APIKey})
	}
	return h
}

func (s *Sequence) responseHeaders() headerMap {
	h := headerMap{
		{":status", "200"},
		{"content-type", s.contentType()},
	}
	if !s.RouterForwardsMetadata {
		h = append(h, header{"x-envoy-attempt-count", strconv.Itoa(s.attempts())})
	}
	if !s.Streaming() {
		h = append(h, header{"content-length", strconv.Itoa(len(s.ResponseBody))})
	}
	return h
}

// hooks lets the open-streams mode stop a request part-way.
type hooks struct {
	// opened, when set, is called once the router stream has been driven
	// through response_headers (and the first chunk when STREAMED); the
	// request then blocks until hold is closed or ctx ends, and returns nil.
	opened func()
	hold   <-chan struct{}
}

// exchange is one request's state; it belongs to one goroutine.
type exchange struct {
	seq     *Sequence
	meta    *structpb.Struct // the merged tollgate namespace of the request's StreamInfo
	md      *corev3.Metadata // forwards meta; built once, meta is filled in place
	headers headerMap        // request headers as the router-level filter left them
	upBody  []byte           // body every attempt gets: the router's, after its mutations
}

// Do plays one request: router-level request phase, every upstream attempt,
// then the router-level response phase. A nil error means every reply had
// the expected kind; otherwise the error is a *Failure.
func (s *Sequence) Do(ctx context.Context, client extprocv3.ExternalProcessorClient, requestID string) error {
	return s.do(ctx, client, requestID, hooks{})
}

func (s *Sequence) do(ctx context.Context, client extprocv3.ExternalProcessorClient, requestID string, hk hooks) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // releases both streams whatever path returns

	meta := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	x := &exchange{
		seq:     s,
		meta:    meta,
		md:      &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{Namespace: meta}},
		headers: s.requestHeaders(requestID),
		upBody:  s.RequestBody,
	}
	router, err := client.Process(ctx)
	if err != nil {
		return grpcFailure(PhaseRouterRequestHeaders, err)
	}
	m := routerModes()
	if err := x.routerRequest(router, &m); err != nil {
		return err
	}
	for attempt := 1; attempt <= s.attempts(); attempt++ {
		if err := x.upstreamAttempt(ctx, client, attempt); err != nil {
			return err
		}
	}
	return x.routerResponse(ctx, router, &m, hk)
}

// modes is the router-level filter's effective processing mode.
type modes struct {
	requestBody, responseBody filterv3.ProcessingMode_BodySendMode
	responseHeaders           filterv3.ProcessingMode_HeaderSendMode
}

func routerModes() modes {
	return modes{
		requestBody:     filterv3.ProcessingMode_BUFFERED,
		responseBody:    filterv3.ProcessingMode_BUFFERED,
		responseHeaders: filterv3.ProcessingMode_SEND,
	}
}

// override applies a mode_override as Envoy does on a headers reply: header
// modes DEFAULT mean unchanged, body modes are taken literally.
func (m *modes) override(o *filterv3.ProcessingMode) {
	if o == nil {
		return
	}
	m.requestBody = o.GetRequestBodyMode()
	m.responseBody = o.GetResponseBodyMode()
	if hm := o.GetResponseHeaderMode(); hm != filterv3.ProcessingMode_DEFAULT {
		m.responseHeaders = hm
	}
}

func (x *exchange) metadataContext() *corev3.Metadata {
	if len(x.meta.Fields) == 0 {
		return nil
	}
	return x.md
}

// routerMetadata is the metadata context of a router-level response
// message: only when the router-level filter forwards the namespace.
func (x *exchange) routerMetadata() *corev3.Metadata {
	if !x.seq.RouterForwardsMetadata {
		return nil
	}
	return x.metadataContext()
}

// absorb merges the reply's tollgate namespace per key (last writer wins),
// like StreamInfo::setDynamicMetadata; other namespaces are not in
// receiving_namespaces, so Envoy drops them.
func (x *exchange) absorb(resp *extprocv3.ProcessingResponse) {
	ns := resp.GetDynamicMetadata().GetFields()[Namespace].GetStructValue()
	for k, v := range ns.GetFields() {
		x.meta.Fields[k] = v
	}
}

func (x *exchange) routerRequest(router extprocv3.ExternalProcessor_ProcessClient, m *modes) error {
	req := &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: x.headers.proto(),
		}},
		ProtocolConfig: &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  filterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: filterv3.ProcessingMode_BUFFERED,
		},
	}
	resp, err := roundTrip(router, req, PhaseRouterRequestHeaders)
	if err != nil {
		return err
	}
	x.absorb(resp)
	m.override(resp.GetModeOverride())
	common := resp.GetRequestHeaders().GetResponse()
	if err := x.mutateRequestHeaders(common.GetHeaderMutation(), PhaseRouterRequestHeaders); err != nil {
		return err
	}
	if common.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
		// No more body messages for this direction; the replacement (or the
		// original) body flows on to the upstream.
		x.mutateUpstreamBody(common.GetBodyMutation())
		return nil
	}
	switch m.requestBody {
	case filterv3.ProcessingMode_NONE:
		return nil
	case filterv3.ProcessingMode_FULL_DUPLEX_STREAMED, filterv3.ProcessingMode_GRPC:
		return &Failure{Kind: FailMode, Phase: PhaseRouterRequestHeaders, Detail: "request_body_mode=" + m.requestBody.String()}
	}
	// BUFFERED, and STREAMED/BUFFERED_PARTIAL with a body that arrived whole
	// before the headers reply, all go as one chunk.
	req = &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
			Body: x.seq.RequestBody, EndOfStream: true,
		}},
		MetadataContext: x.metadataContext(),
	}
	resp, err = roundTrip(router, req, PhaseRouterRequestBody)
	if err != nil {
		return err
	}
	x.absorb(resp)
	common = resp.GetRequestBody().GetResponse()
	x.mutateUpstreamBody(common.GetBodyMutation())
	// BUFFERED still holds the headers, so a body reply may mutate them.
	return x.mutateRequestHeaders(common.GetHeaderMutation(), PhaseRouterRequestBody)
}

func (x *exchange) mutateRequestHeaders(mut *extprocv3.HeaderMutation, phase string) error {
	var ok bool
	if x.headers, ok = x.headers.apply(mut); !ok {
		return &Failure{Kind: FailMutation, Phase: phase, Detail: "value and raw_value both set"}
	}
	return nil
}

func (x *exchange) mutateUpstreamBody(bm *extprocv3.BodyMutation) {
	switch mut := bm.GetMutation().(type) {
	case *extprocv3.BodyMutation_Body:
		x.upBody = mut.Body
	case *extprocv3.BodyMutation_ClearBody:
		if mut.ClearBody {
			x.upBody = nil
		}
	}
}

// upstreamAttempt plays one attempt on its own stream, as Envoy opens one
// upstream filter chain per try. Header mutations carry over to the next
// attempt (they share the header map); the body is the router's copy.
func (x *exchange) upstreamAttempt(ctx context.Context, client extprocv3.ExternalProcessorClient, attempt int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	up, err := client.Process(ctx)
	if err != nil {
		return grpcFailure(PhaseUpstreamRequestHeaders+phaseOpen, err)
	}
	x.headers = x.headers.set("x-envoy-attempt-count", strconv.Itoa(attempt))
	req := &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: x.headers.proto(),
		}},
		Attributes: map[string]*structpb.Struct{AttributesKey: {Fields: map[string]*structpb.Value{
			DeploymentAttribute: structpb.NewStringValue(x.seq.Deployment),
		}}},
		MetadataContext: x.metadataContext(),
		ProtocolConfig: &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  filterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: filterv3.ProcessingMode_NONE,
		},
	}
	resp, err := roundTrip(up, req, PhaseUpstreamRequestHeaders)
	if err != nil {
		return err
	}
	// allow_mode_override is false upstream, so mode_override is ignored.
	x.absorb(resp)
	common := resp.GetRequestHeaders().GetResponse()
	if err := x.mutateRequestHeaders(common.GetHeaderMutation(), PhaseUpstreamRequestHeaders); err != nil {
		return err
	}
	if common.GetStatus() != extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
		req = &extprocv3.ProcessingRequest{
			Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
				Body: x.upBody, EndOfStream: true,
			}},
			MetadataContext: x.metadataContext(),
		}
		resp, err = roundTrip(up, req, PhaseUpstreamRequestBody)
		if err != nil {
			return err
		}
		x.absorb(resp)
		if err := x.mutateRequestHeaders(resp.GetRequestBody().GetResponse().GetHeaderMutation(), PhaseUpstreamRequestBody); err != nil {
			return err
		}
	}
	// Response phases are SKIP/NONE upstream: the filter needs nothing more.
	return closeStream(up, PhaseUpstreamClose)
}

func (x *exchange) routerResponse(ctx context.Context, router extprocv3.ExternalProcessor_ProcessClient, m *modes, hk hooks) error {
	if m.responseHeaders != filterv3.ProcessingMode_SKIP {
		req := &extprocv3.ProcessingRequest{
			Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
				Headers: x.seq.responseHeaders().proto(),
			}},
			MetadataContext: x.routerMetadata(),
		}
		if !x.seq.RouterForwardsMetadata {
			// response_attributes, evaluated once on the final attempt's host.
			req.Attributes = map[string]*structpb.Struct{AttributesKey: {Fields: map[string]*structpb.Value{
				DeploymentAttribute: structpb.NewStringValue(x.seq.Deployment),
			}}}
		}
		resp, err := roundTrip(router, req, PhaseRouterResponseHeaders)
		if err != nil {
			return err
		}
		x.absorb(resp)
		m.override(resp.GetModeOverride())
		if resp.GetResponseHeaders().GetResponse().GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
			m.responseBody = filterv3.ProcessingMode_NONE
		}
	}
	switch m.responseBody {
	case filterv3.ProcessingMode_NONE:
		if hk.opened != nil {
			return holdOpen(ctx, hk)
		}
	case filterv3.ProcessingMode_STREAMED:
		if err := x.streamed(ctx, router, hk); err != nil {
			return err
		}
	case filterv3.ProcessingMode_BUFFERED, filterv3.ProcessingMode_BUFFERED_PARTIAL:
		if hk.opened != nil {
			// Envoy buffers until end of stream, so a held stream sends nothing.
			return holdOpen(ctx, hk)
		}
		req := &extprocv3.ProcessingRequest{
			Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
				Body: x.seq.bufferedResponse(), EndOfStream: true,
			}},
			MetadataContext: x.routerMetadata(),
		}
		resp, err := roundTrip(router, req, PhaseRouterResponseBody)
		if err != nil {
			return err
		}
		x.absorb(resp)
	default:
		return &Failure{Kind: FailMode, Phase: PhaseRouterResponseHeaders, Detail: "response_body_mode=" + m.responseBody.String()}
	}
	return closeStream(router, PhaseRouterClose)
}

func holdOpen(ctx context.Context, hk hooks) error {
	hk.opened()
	select {
	case <-hk.hold:
	case <-ctx.Done():
	}
	return nil
}

// streamed sends one chunk per event without waiting for replies, as Envoy
// does in STREAMED mode, while a second goroutine collects one reply per
// chunk in order.
func (x *exchange) streamed(ctx context.Context, router extprocv3.ExternalProcessor_ProcessClient, hk hooks) error {
	chunks := x.seq.chunks()
	body := func(i int) *extprocv3.ProcessingRequest {
		return &extprocv3.ProcessingRequest{
			Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
				Body: chunks[i], EndOfStream: i == len(chunks)-1,
			}},
			MetadataContext: x.routerMetadata(),
		}
	}
	if hk.opened != nil {
		resp, err := roundTrip(router, body(0), PhaseRouterResponseBody)
		if err != nil {
			return err
		}
		x.absorb(resp)
		return holdOpen(ctx, hk)
	}

	// The receiver must not touch x: replies' metadata is merged after it ends.
	type result struct {
		replies []*extprocv3.ProcessingResponse
		err     error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.replies = make([]*extprocv3.ProcessingResponse, 0, len(chunks))
		for range chunks {
			resp, err := recvReply(router, kindResponseBody, PhaseRouterResponseBody)
			if err != nil {
				r.err = err
				break
			}
			r.replies = append(r.replies, resp)
		}
		done <- r
	}()
	for i := range chunks {
		if err := router.Send(body(i)); err != nil {
			// The receiver sees why the stream broke; its error wins.
			break
		}
	}
	r := <-done
	for _, resp := range r.replies {
		x.absorb(resp)
	}
	return r.err
}

// Reply kinds, named as the proto oneof fields.
const (
	kindRequestHeaders  = "request_headers"
	kindRequestBody     = "request_body"
	kindResponseHeaders = "response_headers"
	kindResponseBody    = "response_body"
)

func requestKind(req *extprocv3.ProcessingRequest) string {
	switch req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return kindRequestHeaders
	case *extprocv3.ProcessingRequest_RequestBody:
		return kindRequestBody
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return kindResponseHeaders
	case *extprocv3.ProcessingRequest_ResponseBody:
		return kindResponseBody
	}
	return "unknown"
}

func replyKind(resp *extprocv3.ProcessingResponse) string {
	switch resp.Response.(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return kindRequestHeaders
	case *extprocv3.ProcessingResponse_RequestBody:
		return kindRequestBody
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return kindResponseHeaders
	case *extprocv3.ProcessingResponse_ResponseBody:
		return kindResponseBody
	case *extprocv3.ProcessingResponse_RequestTrailers:
		return "request_trailers"
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		return "response_trailers"
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return "immediate_response"
	case *extprocv3.ProcessingResponse_StreamedImmediateResponse:
		return "streamed_immediate_response"
	}
	return "empty"
}

func roundTrip(stream extprocv3.ExternalProcessor_ProcessClient, req *extprocv3.ProcessingRequest, phase string) (*extprocv3.ProcessingResponse, error) {
	if err := stream.Send(req); err != nil {
		if errors.Is(err, io.EOF) {
			// The server ended the stream; Recv tells with which status.
			_, err = stream.Recv()
		}
		return nil, grpcFailure(phase, err)
	}
	return recvReply(stream, requestKind(req), phase)
}

// recvReply reads the reply to a message of kind want. A reply carrying only
// override_message_timeout extends Envoy's timer and the real one follows.
func recvReply(stream extprocv3.ExternalProcessor_ProcessClient, want, phase string) (*extprocv3.ProcessingResponse, error) {
	for overrides := 0; ; overrides++ {
		resp, err := stream.Recv()
		if err != nil {
			return nil, grpcFailure(phase, err)
		}
		if resp.GetOverrideMessageTimeout() != nil && overrides < maxTimeoutOverridesPerPhase {
			continue
		}
		switch got := replyKind(resp); got {
		case want:
			return resp, nil
		case "immediate_response":
			return nil, &Failure{Kind: FailImmediate, Phase: phase, Status: immediateStatus(resp.GetImmediateResponse())}
		default:
			return nil, &Failure{Kind: FailUnexpected, Phase: phase, Detail: "got " + got}
		}
	}
}

// immediateStatus is the HTTP status Envoy would send: missing or < 200 is 200.
func immediateStatus(ir *extprocv3.ImmediateResponse) int {
	if c := int(ir.GetStatus().GetCode()); c >= 200 {
		return c
	}
	return 200
}

func grpcFailure(phase string, err error) error {
	if errors.Is(err, io.EOF) {
		return &Failure{Kind: FailEOF, Phase: phase}
	}
	return &Failure{Kind: FailGRPC, Phase: phase, Detail: status.Code(err).String()}
}

// closeStream half-closes and waits for the server to end the stream, so a
// server that keeps talking, or fails late, is counted.
func closeStream(stream extprocv3.ExternalProcessor_ProcessClient, phase string) error {
	if err := stream.CloseSend(); err != nil {
		return grpcFailure(phase, err)
	}
	resp, err := stream.Recv()
	switch {
	case err == nil:
		return &Failure{Kind: FailExtra, Phase: phase, Detail: "got " + replyKind(resp)}
	case errors.Is(err, io.EOF), status.Code(err) == codes.Canceled:
		return nil
	}
	return grpcFailure(phase, err)
}
