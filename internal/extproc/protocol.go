package extproc

import (
	"strconv"
	"time"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// Names shared with the Envoy config (docs/design.md, "Wiring contract").
const (
	// metadataNamespace is the dynamic metadata namespace both filters
	// receive and forward.
	metadataNamespace = "tollgate"
	// attributesKey is where Envoy puts request_attributes results.
	attributesKey = "envoy.filters.http.ext_proc"
	// deploymentAttribute is requested only by the upstream filter, so its
	// presence tells the two filters apart.
	deploymentAttribute = "xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"

	headerPool         = "x-tollgate-pool"
	headerRequestID    = "x-tollgate-request-id"
	headerDeployment   = "x-tollgate-deployment"
	headerModelGroup   = "x-tollgate-model-group"
	headerAttempts     = "x-tollgate-attempts"
	headerResponseCost = "x-tollgate-response-cost"
	headerPrefix       = "x-tollgate-"
	headerEnvoyReqID   = "x-request-id"
	headerAttemptCnt   = "x-envoy-attempt-count"
	headerContentLen   = "content-length"
	headerContentType  = "content-type"
)

// Metadata keys in the tollgate namespace.
const (
	mdKeyID      = "key_id"
	mdModelGroup = "model_group"
	mdAPI        = "api"
)

// clientCredentialHeaders are removed from every request at router level so
// a client's key never reaches a provider.
var clientCredentialHeaders = []string{"authorization", "x-api-key", "api-key"}

// headerValue returns the first value of a header; keys arrive lowercase.
func headerValue(hm *corev3.HeaderMap, key string) string {
	for _, h := range hm.GetHeaders() {
		if h.GetKey() == key {
			if rv := h.GetRawValue(); rv != nil {
				return string(rv)
			}
			return h.GetValue()
		}
	}
	return ""
}

// setHeader is a header mutation that overwrites. Only raw_value is set:
// Envoy sets a header to "" when only value is given (envoy #31555) and
// only the deprecated append flag counts, whose zero value overwrites.
func setHeader(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, RawValue: []byte(value)}}
}

// mutation collects header changes for one reply. Header structs come
// from small slabs and values from one byte arena, so a reply costs a few
// allocations rather than three per header (this runs on every message).
type mutation struct {
	hm   *extprocv3.HeaderMutation
	opts []corev3.HeaderValueOption
	vals []corev3.HeaderValue
	raw  []byte
}

// slab is the headers a reply usually sets; more spill to the heap.
const slab = 4

func (m *mutation) init() {
	if m.hm == nil {
		m.hm = &extprocv3.HeaderMutation{SetHeaders: make([]*corev3.HeaderValueOption, 0, slab)}
		m.opts = make([]corev3.HeaderValueOption, 0, slab)
		m.vals = make([]corev3.HeaderValue, 0, slab)
	}
}

func (m *mutation) set(key, value string) {
	m.init()
	var o *corev3.HeaderValueOption
	var v *corev3.HeaderValue
	if n := len(m.opts); n < cap(m.opts) {
		// Pointers into the slab stay valid: it is never grown.
		m.opts, m.vals = m.opts[:n+1], m.vals[:n+1]
		o, v = &m.opts[n], &m.vals[n]
	} else {
		o, v = new(corev3.HeaderValueOption), new(corev3.HeaderValue)
	}
	// Earlier values keep pointing into the arena's old array when append
	// moves it, which is safe: nothing writes there again.
	start := len(m.raw)
	m.raw = append(m.raw, value...)
	// Only raw_value is set: Envoy sets a header to "" when only value is
	// given (envoy #31555), and the unset append flag overwrites.
	v.Key, v.RawValue = key, m.raw[start:len(m.raw):len(m.raw)]
	o.Header = v
	m.hm.SetHeaders = append(m.hm.SetHeaders, o)
}

func (m *mutation) remove(keys ...string) {
	m.init()
	m.hm.RemoveHeaders = append(m.hm.RemoveHeaders, keys...)
}

func (m *mutation) setTranslated(hs []transform.Header) {
	for _, h := range hs {
		m.set(h.Key, h.Value)
	}
}

// immediateError is a local reply carrying an error in the API's shape.
func immediateError(api transform.API, e apiError) *extprocv3.ProcessingResponse {
	resp := immediateJSON(e.Status, encodeErrorFor(api, e))
	if e.RetryAfter > 0 {
		h := resp.GetImmediateResponse().Headers
		h.SetHeaders = append(h.SetHeaders, setHeader("retry-after", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10)))
	}
	return resp
}

func immediateJSON(status int, body []byte) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				setHeader(headerContentType, "application/json"),
			}},
			Body: body,
		},
	}}
}

// Replies of each kind. Envoy requires exactly one reply per message with
// the same oneof case.

func requestHeadersReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: c}}}
}

func requestBodyReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: c}}}
}

func responseHeadersReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: c}}}
}

func responseBodyReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: c}}}
}

// replyInKind answers a message the filter has no work for with an empty
// reply of the same kind.
func replyInKind(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return requestHeadersReply(nil)
	case *extprocv3.ProcessingRequest_RequestBody:
		return requestBodyReply(nil)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return responseHeadersReply(nil)
	case *extprocv3.ProcessingRequest_ResponseBody:
		return responseBodyReply(nil)
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
	}
	return nil
}

// streamedResponseMode switches the response body to STREAMED. Body modes
// in a mode_override are taken literally (omitted = NONE), so the request
// body mode is restated although the request is already done.
var streamedResponseMode = &filterv3.ProcessingMode{
	RequestHeaderMode:  filterv3.ProcessingMode_SEND,
	RequestBodyMode:    filterv3.ProcessingMode_BUFFERED,
	ResponseHeaderMode: filterv3.ProcessingMode_SEND,
	ResponseBodyMode:   filterv3.ProcessingMode_STREAMED,
}

// metadataFields returns the tollgate namespace of a message's metadata
// context.
func metadataFields(req *extprocv3.ProcessingRequest) map[string]*structpb.Value {
	return req.GetMetadataContext().GetFilterMetadata()[metadataNamespace].GetFields()
}

// deploymentOf reads the upstream filter's deployment attribute; ok is
// false on router-level streams, which never request it.
func deploymentOf(req *extprocv3.ProcessingRequest) (string, bool) {
	v, ok := req.GetAttributes()[attributesKey].GetFields()[deploymentAttribute]
	if !ok {
		return "", false
	}
	return v.GetStringValue(), true
}

// dynamicMetadata wraps fields into the tollgate namespace.
func dynamicMetadata(fields map[string]*structpb.Value) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		metadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: fields}),
	}}
}

func statusOf(hm *corev3.HeaderMap) int {
	s, err := strconv.Atoi(headerValue(hm, ":status"))
	if err != nil {
		return 0
	}
	return s
}

// view is a string over b's bytes, without a copy, for gjson reads on the
// hot path (gjson.GetBytes copies every result). The caller must not keep
// the string, or results pointing into it, past b's next modification.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// chunkReplies is one reusable reply for a stream's response chunks. grpc-go
// marshals a message inside Send and keeps nothing, and a stream handles one
// message at a time, so every chunk reuses the same objects instead of
// allocating five.
type chunkReplies struct {
	resp     extprocv3.ProcessingResponse
	kind     extprocv3.ProcessingResponse_ResponseBody
	body     extprocv3.BodyResponse
	common   extprocv3.CommonResponse
	mutation extprocv3.BodyMutation
	replace  extprocv3.BodyMutation_Body
}

// next is the reply to a chunk: replacing it with body when replace is set,
// else letting it through unchanged.
func (c *chunkReplies) next(body []byte, replace bool) *extprocv3.ProcessingResponse {
	c.common.BodyMutation = nil
	if replace {
		c.replace.Body = body
		c.mutation.Mutation = &c.replace
		c.common.BodyMutation = &c.mutation
	}
	c.body.Response = &c.common
	c.kind.ResponseBody = &c.body
	c.resp.Response = &c.kind
	c.resp.DynamicMetadata = nil
	return &c.resp
}
