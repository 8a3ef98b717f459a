package extproc

import (
	"bytes"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Codec is the gRPC codec for the ext_proc server (grpc.ForceServerCodecV2).
// It encodes as grpc-go's proto codec does. It decodes the headers and
// bodies of a ProcessingRequest itself: protobuf's generic decoder makes
// three allocations per header, and decoding was the largest part of the
// server's CPU per request; here a header map costs five allocations
// however many headers it holds. Every other field, and any message this
// decoder does not expect, goes to protobuf, so the result is always what
// proto.Unmarshal gives.
func Codec() encoding.CodecV2 { return codec{} }

type codec struct{}

// protoCodec is grpc-go's own proto codec, which Codec wraps.
var protoCodec = encoding.GetCodecV2(protoenc.Name)

func (codec) Name() string { return protoCodec.Name() }

func (codec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*extprocv3.ProcessingRequest)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return unmarshalRequest(buf.ReadOnlyData(), req)
}

// unmarshalRequest decodes b into req, which must be empty. The decoded
// message shares no memory with b.
func unmarshalRequest(b []byte, req *extprocv3.ProcessingRequest) error {
	if decodeRequest(b, req) {
		return nil
	}
	req.Reset()
	return proto.Unmarshal(b, req)
}

// Field numbers decoded here, from envoy/service/ext_proc/v3 and
// envoy/config/core/v3.
const (
	reqRequestHeaders   = 2 // ProcessingRequest oneof request, first member
	reqResponseTrailers = 7 // its last member
	reqResponseHeaders  = 3
	reqRequestBody      = 4
	reqResponseBody     = 5
	headersHeaders      = 1 // HttpHeaders.headers
	headersEndOfStream  = 3 // HttpHeaders.end_of_stream
	bodyBody            = 1 // HttpBody.body
	bodyEndOfStream     = 2 // HttpBody.end_of_stream
	headerMapHeaders    = 1 // HeaderMap.headers
	headerKey           = 1 // HeaderValue.key
	headerValueStr      = 2 // HeaderValue.value
	headerRawValue      = 3 // HeaderValue.raw_value
)

// decodeRequest decodes the request oneof's headers and body members and
// merges every other field in with protobuf. It reports false, leaving req
// to be reset, for anything it does not handle: malformed input, a second
// oneof member, trailers, or a field it does not know in a headers or body
// message.
func decodeRequest(b []byte, req *extprocv3.ProcessingRequest) bool {
	oneof := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return false
		}
		field, val := b[:n+m], b[n:n+m]
		b = b[n+m:]
		if num < reqRequestHeaders || num > reqResponseTrailers {
			// Attributes, metadata and the rest: protobuf merges a field's
			// encoding into the message as if it were decoded in place.
			if (proto.UnmarshalOptions{Merge: true}).Unmarshal(field, req) != nil {
				return false
			}
			continue
		}
		if oneof || typ != protowire.BytesType {
			return false
		}
		oneof = true
		v, _ := protowire.ConsumeBytes(val)
		switch num {
		case reqRequestHeaders, reqResponseHeaders:
			h, ok := decodeHeaders(v)
			if !ok {
				return false
			}
			if num == reqRequestHeaders {
				req.Request = &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: h}
			} else {
				req.Request = &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: h}
			}
		case reqRequestBody, reqResponseBody:
			body, ok := decodeBody(v)
			if !ok {
				return false
			}
			if num == reqRequestBody {
				req.Request = &extprocv3.ProcessingRequest_RequestBody{RequestBody: body}
			} else {
				req.Request = &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: body}
			}
		default:
			// Trailers are rare; protobuf decodes them.
			return false
		}
	}
	return true
}

func decodeHeaders(b []byte) (*extprocv3.HttpHeaders, bool) {
	h := new(extprocv3.HttpHeaders)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case num == headersHeaders && typ == protowire.BytesType && h.Headers == nil:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
			var ok bool
			if h.Headers, ok = decodeHeaderMap(v); !ok {
				return nil, false
			}
		case num == headersEndOfStream && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
			h.EndOfStream = protowire.DecodeBool(v)
		default:
			return nil, false
		}
	}
	return h, true
}

// decodeHeaderMap decodes all headers into one slab of HeaderValues. Keys
// and values are substrings of one copy of b and raw values slices of
// another, capped so that an append cannot reach a neighbour.
func decodeHeaderMap(b []byte) (*corev3.HeaderMap, bool) {
	count := 0
	for rest := b; len(rest) > 0; count++ {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 || num != headerMapHeaders || typ != protowire.BytesType {
			return nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return nil, false
		}
		rest = rest[n+m:]
	}
	raw := bytes.Clone(b)
	strs := unsafe.String(unsafe.SliceData(bytes.Clone(b)), len(b))
	vals := make([]corev3.HeaderValue, count)
	hm := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, count)}
	off := 0 // offset in b of the field being decoded
	for i := range vals {
		_, _, n := protowire.ConsumeTag(b[off:])
		v, m := protowire.ConsumeBytes(b[off+n:])
		start := off + n + m - len(v)
		if !decodeHeaderValue(v, start, raw, strs, &vals[i]) {
			return nil, false
		}
		hm.Headers[i] = &vals[i]
		off += n + m
	}
	return hm, true
}

// decodeHeaderValue decodes the HeaderValue at b, which starts at offset
// base of the copies raw and strs.
func decodeHeaderValue(b []byte, base int, raw []byte, strs string, hv *corev3.HeaderValue) bool {
	off := 0
	for off < len(b) {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		v, m := protowire.ConsumeBytes(b[off+n:])
		if m < 0 {
			return false
		}
		lo := base + off + n + m - len(v)
		hi := lo + len(v)
		off += n + m
		switch num {
		case headerKey, headerValueStr:
			// proto3 strings must be UTF-8; protobuf reports the error.
			if !utf8.Valid(v) {
				return false
			}
			if num == headerKey {
				hv.Key = strs[lo:hi]
			} else {
				hv.Value = strs[lo:hi]
			}
		case headerRawValue:
			// As protobuf decodes proto3 bytes: empty is nil.
			hv.RawValue = nil
			if len(v) > 0 {
				hv.RawValue = raw[lo:hi:hi]
			}
		default:
			return false
		}
	}
	return true
}

func decodeBody(b []byte) (*extprocv3.HttpBody, bool) {
	body := new(extprocv3.HttpBody)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case num == bodyBody && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
			// Last one wins and empty is nil, as protobuf decodes bytes.
			body.Body = nil
			if len(v) > 0 {
				body.Body = bytes.Clone(v)
			}
		case num == bodyEndOfStream && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
			body.EndOfStream = protowire.DecodeBool(v)
		default:
			return nil, false
		}
	}
	return body, true
}
