package extproc

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Field numbers of the messages a stream's replies hold, from
// envoy/service/ext_proc/v3 and envoy/config/core/v3.
const (
	respRequestHeaders    = 1 // ProcessingResponse oneof response
	respResponseHeaders   = 2
	respRequestBody       = 3
	respResponseBody      = 4
	respModeOverride      = 9
	replyCommon           = 1 // HeadersResponse.response, BodyResponse.response
	commonHeaderMutation  = 2
	commonBodyMutation    = 3
	commonClearRouteCache = 5
	mutationSetHeaders    = 1 // HeaderMutation.set_headers
	mutationRemove        = 2 // HeaderMutation.remove_headers
	optionHeader          = 1 // HeaderValueOption.header
	bodyMutationBody      = 1 // BodyMutation oneof mutation, body
)

// streamedModeWire is streamedResponseMode encoded, the only mode override
// a reply carries.
var streamedModeWire = func() []byte {
	b, err := proto.Marshal(streamedResponseMode)
	if err != nil {
		panic(err)
	}
	return b
}()

// encodedReply is a reply already in wire format, held as the unknown
// fields of an empty message: protobuf copies those verbatim, so any gRPC
// codec sends it as the reply, and Codec copies them without protobuf.
type encodedReply struct{ emptypb.Empty }

// wire returns the reply built in p already encoded, for Send: protobuf
// sizes and encodes the nested reply messages through reflection, a large
// part of the server's CPU per request, while the stream knows exactly
// what it set. false when the reply holds something encodeReply does not
// write; it is then sent as it is.
func (p *replies) wire() (proto.Message, bool) {
	b, ok := encodeReply(p.enc[:0], &p.resp)
	if !ok {
		return nil, false
	}
	p.enc = b
	p.encoded.ProtoReflect().SetUnknown(protoreflect.RawFields(b))
	return &p.encoded, true
}

// encodeReply appends resp in wire format, as proto.Marshal would encode it
// up to field order. It covers what replies sets: one headers or body
// response whose CommonResponse holds header and body mutations and the
// route cache flag, the streamed mode override, and metadata already in
// resp's unknown fields.
func encodeReply(b []byte, resp *extprocv3.ProcessingResponse) ([]byte, bool) {
	var kind protowire.Number
	var common *extprocv3.CommonResponse
	switch r := resp.Response.(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		kind, common = respRequestHeaders, r.RequestHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		kind, common = respResponseHeaders, r.ResponseHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_RequestBody:
		kind, common = respRequestBody, r.RequestBody.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseBody:
		kind, common = respResponseBody, r.ResponseBody.GetResponse()
	default:
		return b, false
	}
	// The other fields of this version's ProcessingResponse must be unset
	// (deprecated ones are never set; TestEncodeReply_KnowsEveryField
	// notices new ones).
	if resp.DynamicMetadata != nil || resp.TypedDynamicMetadata != nil || resp.OverrideMessageTimeout != nil ||
		resp.RequestDrainRequests || resp.RequestDrainResponses || resp.ServerWindowUpdate != nil ||
		(resp.ModeOverride != nil && resp.ModeOverride != streamedResponseMode) {
		return b, false
	}
	inner := 0
	if common != nil {
		n, ok := commonSize(common)
		if !ok {
			return b, false
		}
		inner = protowire.SizeTag(replyCommon) + protowire.SizeBytes(n)
	}
	b = protowire.AppendTag(b, kind, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	if common != nil {
		b = appendCommon(b, common)
	}
	if resp.ModeOverride != nil {
		b = protowire.AppendTag(b, respModeOverride, protowire.BytesType)
		b = protowire.AppendBytes(b, streamedModeWire)
	}
	return append(b, resp.ProtoReflect().GetUnknown()...), true
}

// commonSize is c's encoded size; false when c holds a field encodeReply
// does not write.
func commonSize(c *extprocv3.CommonResponse) (int, bool) {
	if c.Status != 0 || c.Trailers != nil {
		return 0, false
	}
	n := 0
	if hm := c.HeaderMutation; hm != nil {
		m, ok := mutationSize(hm)
		if !ok {
			return 0, false
		}
		n += protowire.SizeTag(commonHeaderMutation) + protowire.SizeBytes(m)
	}
	if bm := c.BodyMutation; bm != nil {
		body, ok := bm.Mutation.(*extprocv3.BodyMutation_Body)
		if !ok {
			return 0, false
		}
		n += protowire.SizeTag(commonBodyMutation) + protowire.SizeBytes(bodyMutationSize(body.Body))
	}
	if c.ClearRouteCache {
		n += protowire.SizeTag(commonClearRouteCache) + 1
	}
	return n, true
}

func appendCommon(b []byte, c *extprocv3.CommonResponse) []byte {
	n, _ := commonSize(c)
	b = protowire.AppendTag(b, replyCommon, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	if hm := c.HeaderMutation; hm != nil {
		m, _ := mutationSize(hm)
		b = protowire.AppendTag(b, commonHeaderMutation, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(m))
		b = appendMutation(b, hm)
	}
	if bm := c.BodyMutation; bm != nil {
		// A oneof member is encoded even when empty: an empty body
		// replaces the chunk with nothing.
		body := bm.Mutation.(*extprocv3.BodyMutation_Body).Body
		b = protowire.AppendTag(b, commonBodyMutation, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(bodyMutationSize(body)))
		b = protowire.AppendTag(b, bodyMutationBody, protowire.BytesType)
		b = protowire.AppendBytes(b, body)
	}
	if c.ClearRouteCache {
		b = protowire.AppendTag(b, commonClearRouteCache, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

func bodyMutationSize(body []byte) int {
	return protowire.SizeTag(bodyMutationBody) + protowire.SizeBytes(len(body))
}

// mutationSize is hm's encoded size; false when a header option sets more
// than the header (the deprecated append flag is never set).
func mutationSize(hm *extprocv3.HeaderMutation) (int, bool) {
	n := 0
	for _, o := range hm.SetHeaders {
		if o.AppendAction != 0 || o.KeepEmptyValue {
			return 0, false
		}
		n += protowire.SizeTag(mutationSetHeaders) + protowire.SizeBytes(optionSize(o))
	}
	for _, k := range hm.RemoveHeaders {
		n += protowire.SizeTag(mutationRemove) + protowire.SizeBytes(len(k))
	}
	return n, true
}

func optionSize(o *corev3.HeaderValueOption) int {
	if o.Header == nil {
		return 0
	}
	return protowire.SizeTag(optionHeader) + protowire.SizeBytes(headerValueSize(o.Header))
}

// headerValueSize is the encoded size of a HeaderValue; proto3 leaves empty
// fields out.
func headerValueSize(h *corev3.HeaderValue) int {
	n := 0
	if h.Key != "" {
		n += protowire.SizeTag(headerKey) + protowire.SizeBytes(len(h.Key))
	}
	if h.Value != "" {
		n += protowire.SizeTag(headerValueStr) + protowire.SizeBytes(len(h.Value))
	}
	if len(h.RawValue) > 0 {
		n += protowire.SizeTag(headerRawValue) + protowire.SizeBytes(len(h.RawValue))
	}
	return n
}

func appendMutation(b []byte, hm *extprocv3.HeaderMutation) []byte {
	for _, o := range hm.SetHeaders {
		b = protowire.AppendTag(b, mutationSetHeaders, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(optionSize(o)))
		if h := o.Header; h != nil {
			b = protowire.AppendTag(b, optionHeader, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(headerValueSize(h)))
			if h.Key != "" {
				b = protowire.AppendTag(b, headerKey, protowire.BytesType)
				b = protowire.AppendString(b, h.Key)
			}
			if h.Value != "" {
				b = protowire.AppendTag(b, headerValueStr, protowire.BytesType)
				b = protowire.AppendString(b, h.Value)
			}
			if len(h.RawValue) > 0 {
				b = protowire.AppendTag(b, headerRawValue, protowire.BytesType)
				b = protowire.AppendBytes(b, h.RawValue)
			}
		}
	}
	for _, k := range hm.RemoveHeaders {
		b = protowire.AppendTag(b, mutationRemove, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	return b
}
