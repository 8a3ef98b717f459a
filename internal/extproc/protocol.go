package extproc

import (
	"math"
	"strconv"
	"time"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
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
// from slabs inside it and values from one byte arena, so a reply costs no
// allocation per header (this runs on every message).
type mutation struct {
	hm      extprocv3.HeaderMutation
	setPtrs [slab]*corev3.HeaderValueOption
	opts    [slab]corev3.HeaderValueOption
	vals    [slab]corev3.HeaderValue
	removed [slab]string
	arena   [256]byte
	raw     []byte
}

// slab is the most headers a reply sets or removes; more spill to the heap.
const slab = 10

func (m *mutation) reset() {
	m.hm.Reset()
	m.hm.SetHeaders, m.hm.RemoveHeaders = m.setPtrs[:0], m.removed[:0]
	m.raw = m.arena[:0]
}

func (m *mutation) set(key, value string) {
	start := len(m.raw)
	m.raw = append(m.raw, value...)
	m.add(key, start)
}

// setInt sets a header to a decimal number, formatted into the arena.
func (m *mutation) setInt(key string, n int64) {
	start := len(m.raw)
	m.raw = strconv.AppendInt(m.raw, n, 10)
	m.add(key, start)
}

// add sets key to the arena's bytes from start on. Earlier values keep
// pointing into the arena's old array when append moves it, which is safe:
// nothing writes there again in this reply.
func (m *mutation) add(key string, start int) {
	var o *corev3.HeaderValueOption
	var v *corev3.HeaderValue
	if n := len(m.hm.SetHeaders); n < slab {
		// Slab entries only ever get the fields written below, so writing
		// them resets an entry; Reset would also store the message state
		// atomically, twice per header.
		o, v = &m.opts[n], &m.vals[n]
	} else {
		o, v = new(corev3.HeaderValueOption), new(corev3.HeaderValue)
	}
	// Only raw_value is set: Envoy sets a header to "" when only value is
	// given (envoy #31555), and the unset append flag overwrites.
	v.Key, v.RawValue = key, m.raw[start:len(m.raw):len(m.raw)]
	o.Header = v
	m.hm.SetHeaders = append(m.hm.SetHeaders, o)
}

func (m *mutation) remove(keys ...string) {
	m.hm.RemoveHeaders = append(m.hm.RemoveHeaders, keys...)
}

func (m *mutation) setTranslated(hs []transform.Header) {
	for _, h := range hs {
		m.set(h.Key, h.Value)
	}
}

// result is the mutation to send: nil when it changes nothing.
func (m *mutation) result() *extprocv3.HeaderMutation {
	if len(m.hm.SetHeaders) == 0 && len(m.hm.RemoveHeaders) == 0 {
		return nil
	}
	return &m.hm
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
// the same oneof case. These allocate; the per-message path builds its
// replies in pooled objects instead.

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

// replies is one reply, built in objects that are reused: grpc-go
// marshals a reply inside Send and keeps nothing, so Process takes them
// from a pool for each message and puts them back once the reply is sent,
// and a reply costs no allocation. A reply is valid until then.
type replies struct {
	resp        extprocv3.ProcessingResponse
	reqHeaders  extprocv3.ProcessingResponse_RequestHeaders
	reqBody     extprocv3.ProcessingResponse_RequestBody
	respHeaders extprocv3.ProcessingResponse_ResponseHeaders
	respBody    extprocv3.ProcessingResponse_ResponseBody
	headers     extprocv3.HeadersResponse
	body        extprocv3.BodyResponse
	c           extprocv3.CommonResponse
	bodyMut     extprocv3.BodyMutation
	newBody     extprocv3.BodyMutation_Body
	mut         mutation
	md          metadataWriter
	// The reply encoded by wire, as the unknown fields of encoded.
	enc     []byte
	encoded encodedReply
}

// begin starts the next reply and returns its header mutation.
func (p *replies) begin() *mutation {
	p.resp.Reset()
	p.c.Reset()
	p.mut.reset()
	p.md.reset()
	return &p.mut
}

// replaceBody makes the reply replace the body with b.
func (p *replies) replaceBody(b []byte) {
	p.newBody.Body = b
	p.bodyMut.Mutation = &p.newBody
	p.c.BodyMutation = &p.bodyMut
}

// common is the reply's CommonResponse with its header mutation.
func (p *replies) common() *extprocv3.CommonResponse {
	p.c.HeaderMutation = p.mut.result()
	return &p.c
}

// finish completes the reply with its metadata, if any was written.
func (p *replies) finish() *extprocv3.ProcessingResponse {
	p.md.attach(&p.resp)
	return &p.resp
}

func (p *replies) requestHeaders(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	p.headers.Reset()
	p.headers.Response = c
	p.reqHeaders.RequestHeaders = &p.headers
	p.resp.Response = &p.reqHeaders
	return p.finish()
}

func (p *replies) requestBody(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	p.body.Reset()
	p.body.Response = c
	p.reqBody.RequestBody = &p.body
	p.resp.Response = &p.reqBody
	return p.finish()
}

func (p *replies) responseHeaders(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	p.headers.Reset()
	p.headers.Response = c
	p.respHeaders.ResponseHeaders = &p.headers
	p.resp.Response = &p.respHeaders
	return p.finish()
}

func (p *replies) responseBody(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	p.body.Reset()
	p.body.Response = c
	p.respBody.ResponseBody = &p.body
	p.resp.Response = &p.respBody
	return p.finish()
}

// metadataWriter encodes the tollgate namespace of a reply's
// dynamic_metadata in protobuf wire format. A Struct built per reply and
// marshalled through protobuf's map support cost more than the rest of the
// reply; these bytes go into the reply as unknown fields, which the
// marshaller copies verbatim, so Envoy decodes them as dynamic_metadata.
type metadataWriter struct {
	fields []byte // encoded Struct.fields entries of the namespace
	out    []byte
}

// Field numbers of google.protobuf.Struct, its map entries and Value, and
// of ProcessingResponse.dynamic_metadata.
const (
	structFields        = 1
	mapKey              = 1
	mapValue            = 2
	valueNumber         = 2
	valueString         = 3
	valueBool           = 4
	valueStruct         = 5
	respDynamicMetadata = 8
)

func (w *metadataWriter) reset() { w.fields = w.fields[:0] }

// appendEntryHead appends the start of a Struct.fields entry for key whose
// Value takes n bytes; the Value's bytes follow.
func appendEntryHead(b []byte, key string, n int) []byte {
	entry := protowire.SizeTag(mapKey) + protowire.SizeBytes(len(key)) + protowire.SizeTag(mapValue) + protowire.SizeBytes(n)
	b = protowire.AppendTag(b, structFields, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(entry))
	b = protowire.AppendTag(b, mapKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, mapValue, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

func (w *metadataWriter) str(key, v string) {
	w.fields = appendEntryHead(w.fields, key, protowire.SizeTag(valueString)+protowire.SizeBytes(len(v)))
	w.fields = protowire.AppendTag(w.fields, valueString, protowire.BytesType)
	w.fields = protowire.AppendString(w.fields, v)
}

func (w *metadataWriter) num(key string, v float64) {
	w.fields = appendEntryHead(w.fields, key, protowire.SizeTag(valueNumber)+protowire.SizeFixed64())
	w.fields = protowire.AppendTag(w.fields, valueNumber, protowire.Fixed64Type)
	w.fields = protowire.AppendFixed64(w.fields, math.Float64bits(v))
}

func (w *metadataWriter) boolean(key string, v bool) {
	w.fields = appendEntryHead(w.fields, key, protowire.SizeTag(valueBool)+protowire.SizeVarint(protowire.EncodeBool(v)))
	w.fields = protowire.AppendTag(w.fields, valueBool, protowire.VarintType)
	w.fields = protowire.AppendVarint(w.fields, protowire.EncodeBool(v))
}

// attach puts the namespace into resp as dynamic_metadata
// {"tollgate": {fields}}; nothing when no field was written.
func (w *metadataWriter) attach(resp *extprocv3.ProcessingResponse) {
	if len(w.fields) == 0 {
		return
	}
	// The outer Struct holds one entry, the namespace, whose Value is a
	// struct_value holding the fields.
	value := protowire.SizeTag(valueStruct) + protowire.SizeBytes(len(w.fields))
	outer := protowire.SizeTag(structFields) + protowire.SizeBytes(
		protowire.SizeTag(mapKey)+protowire.SizeBytes(len(metadataNamespace))+protowire.SizeTag(mapValue)+protowire.SizeBytes(value))
	b := protowire.AppendTag(w.out[:0], respDynamicMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(outer))
	b = appendEntryHead(b, metadataNamespace, value)
	b = protowire.AppendTag(b, valueStruct, protowire.BytesType)
	b = protowire.AppendBytes(b, w.fields)
	w.out = b
	resp.ProtoReflect().SetUnknown(protoreflect.RawFields(b))
}
