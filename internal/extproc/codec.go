package extproc

import (
	"bytes"
	"math"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Codec is the gRPC codec for the ext_proc server (grpc.ForceServerCodecV2).
// It encodes as grpc-go's proto codec does, copying replies the streams
// encoded themselves without protobuf. It decodes the headers and
// bodies, attributes and metadata of a ProcessingRequest itself:
// protobuf's generic decoder makes three allocations per header and more
// per Struct field, through reflection, and decoding was the largest part
// of the server's CPU per request; here a header map costs a few
// allocations however many headers it holds, and a Struct one per field
// besides. Every other field, and any
// message this decoder does not expect, goes to protobuf, so the result is
// always what proto.Unmarshal gives.
func Codec() encoding.CodecV2 { return codec{} }

type codec struct{}

// protoCodec is grpc-go's own proto codec, which Codec wraps.
var protoCodec = encoding.GetCodecV2(protoenc.Name)

func (codec) Name() string { return protoCodec.Name() }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	e, ok := v.(*encodedReply)
	if !ok {
		return protoCodec.Marshal(v)
	}
	// gRPC writes the buffer after Send returns, so the reply is copied,
	// into a pooled buffer when it is large, as grpc-go's codec does.
	b := e.ProtoReflect().GetUnknown()
	if mem.IsBelowBufferPoolingThreshold(len(b)) {
		return mem.BufferSlice{mem.SliceBuffer(bytes.Clone(b))}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(len(b))
	copy(*buf, b)
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

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

// Field numbers decoded here, from envoy/service/ext_proc/v3,
// envoy/config/core/v3 and google/protobuf/struct.proto.
const (
	reqRequestHeaders   = 2 // ProcessingRequest oneof request, first member
	reqResponseHeaders  = 3
	reqRequestBody      = 4
	reqResponseBody     = 5
	reqResponseTrailers = 7 // the oneof's last member
	reqMetadataContext  = 8
	reqAttributes       = 9
	headersHeaders      = 1 // HttpHeaders.headers
	headersEndOfStream  = 3 // HttpHeaders.end_of_stream
	bodyBody            = 1 // HttpBody.body
	bodyEndOfStream     = 2 // HttpBody.end_of_stream
	headerMapHeaders    = 1 // HeaderMap.headers
	headerKey           = 1 // HeaderValue.key
	headerValueStr      = 2 // HeaderValue.value
	headerRawValue      = 3 // HeaderValue.raw_value
	filterMetadata      = 1 // Metadata.filter_metadata
	valueNull           = 1 // Value.null_value; the other kinds are above
	valueList           = 6 // Value.list_value
)

// maxStructDepth bounds the nesting of Structs decoded here; deeper ones go
// to protobuf, which applies its own recursion limit.
const maxStructDepth = 32

// decodeRequest decodes the request oneof's headers and body members, the
// attributes and the metadata context, and merges every other field in
// with protobuf. It reports false, leaving req to be reset, for anything it
// does not handle: malformed input, a second oneof member, trailers, or a
// field it does not know inside the messages it decodes.
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
		v, _ := protowire.ConsumeBytes(val)
		switch {
		case num >= reqRequestHeaders && num <= reqResponseTrailers:
			if oneof || typ != protowire.BytesType || !decodeOneof(num, v, req) {
				return false
			}
			oneof = true
		case num == reqMetadataContext && typ == protowire.BytesType && req.MetadataContext == nil:
			md, ok := decodeMetadata(v)
			if !ok {
				return false
			}
			req.MetadataContext = md
		case num == reqAttributes && typ == protowire.BytesType:
			if req.Attributes == nil {
				req.Attributes = make(map[string]*structpb.Struct, 1)
			}
			c := newCopies(v)
			if !decodeStructEntry(&c, v, req.Attributes, 0) {
				return false
			}
		default:
			// The rest (and a repeated metadata context, which merges):
			// protobuf merges a field's encoding into the message as if it
			// were decoded in place.
			if (proto.UnmarshalOptions{Merge: true}).Unmarshal(field, req) != nil {
				return false
			}
		}
	}
	return true
}

// decodeOneof sets req's request to the headers or body field num holds.
// A oneof member and its messages are allocated together, one allocation
// instead of three.
func decodeOneof(num protowire.Number, v []byte, req *extprocv3.ProcessingRequest) bool {
	switch num {
	case reqRequestHeaders, reqResponseHeaders:
		a := new(struct {
			req  extprocv3.ProcessingRequest_RequestHeaders
			resp extprocv3.ProcessingRequest_ResponseHeaders
			h    extprocv3.HttpHeaders
			hm   corev3.HeaderMap
		})
		if !decodeHeaders(v, &a.h, &a.hm) {
			return false
		}
		if num == reqRequestHeaders {
			a.req.RequestHeaders = &a.h
			req.Request = &a.req
		} else {
			a.resp.ResponseHeaders = &a.h
			req.Request = &a.resp
		}
	case reqRequestBody, reqResponseBody:
		a := new(struct {
			req  extprocv3.ProcessingRequest_RequestBody
			resp extprocv3.ProcessingRequest_ResponseBody
			body extprocv3.HttpBody
		})
		if !decodeBody(v, &a.body) {
			return false
		}
		if num == reqRequestBody {
			a.req.RequestBody = &a.body
			req.Request = &a.req
		} else {
			a.resp.ResponseBody = &a.body
			req.Request = &a.resp
		}
	default:
		// Trailers are rare; protobuf decodes them.
		return false
	}
	return true
}

// copies gives the strings and bytes decoded from one encoded message as
// slices of one copy of it, instead of one allocation each. The copy for
// bytes is kept apart from the one for strings, which must never change.
type copies struct {
	src  []byte // the encoding the decoded slices come from
	strs string
	raw  []byte
}

func newCopies(src []byte) copies {
	return copies{src: src, strs: unsafe.String(unsafe.SliceData(bytes.Clone(src)), len(src))}
}

// offset is where v, a slice of c.src, starts in it.
func (c *copies) offset(v []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(v))) - uintptr(unsafe.Pointer(unsafe.SliceData(c.src))))
}

// str is a proto3 string field's value; false when it is not UTF-8, which
// protobuf rejects.
func (c *copies) str(v []byte) (string, bool) {
	if len(v) == 0 {
		return "", true
	}
	if !utf8.Valid(v) {
		return "", false
	}
	off := c.offset(v)
	return c.strs[off : off+len(v)], true
}

// bytes is a proto3 bytes field's value, capped so that an append cannot
// reach a neighbour; empty is nil, as protobuf decodes it.
func (c *copies) bytes(v []byte) []byte {
	if len(v) == 0 {
		return nil
	}
	if c.raw == nil {
		c.raw = bytes.Clone(c.src)
	}
	off := c.offset(v)
	return c.raw[off : off+len(v) : off+len(v)]
}

// fields calls f with each field of b; false when b is malformed or f
// returns false.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return false
		}
		v := b[n : n+m]
		if typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(v)
		}
		if !f(num, typ, v) {
			return false
		}
		b = b[n+m:]
	}
	return true
}

// count is how many fields of b are number num of type bytes; -1 when
// another field is present or b is malformed.
func count(b []byte, num protowire.Number) int {
	n := 0
	if !fields(b, func(fn protowire.Number, typ protowire.Type, _ []byte) bool {
		n++
		return fn == num && typ == protowire.BytesType
	}) {
		return -1
	}
	return n
}

// decodeHeaders decodes b into h, with its header map in hm.
func decodeHeaders(b []byte, h *extprocv3.HttpHeaders, hm *corev3.HeaderMap) bool {
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		switch {
		case num == headersHeaders && typ == protowire.BytesType && h.Headers == nil:
			h.Headers = hm
			return decodeHeaderMap(v, hm)
		case num == headersEndOfStream && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			h.EndOfStream = protowire.DecodeBool(x)
			return true
		}
		return false
	})
}

// decodeHeaderMap decodes all headers into one slab of HeaderValues.
func decodeHeaderMap(b []byte, hm *corev3.HeaderMap) bool {
	n := count(b, headerMapHeaders)
	if n < 0 {
		return false
	}
	c := newCopies(b)
	vals := make([]corev3.HeaderValue, n)
	hm.Headers = make([]*corev3.HeaderValue, n)
	i := 0
	return fields(b, func(_ protowire.Number, _ protowire.Type, v []byte) bool {
		hv := &vals[i]
		hm.Headers[i] = hv
		i++
		return fields(v, func(num protowire.Number, typ protowire.Type, v []byte) bool {
			if typ != protowire.BytesType {
				return false
			}
			var ok bool
			switch num {
			case headerKey:
				hv.Key, ok = c.str(v)
			case headerValueStr:
				hv.Value, ok = c.str(v)
			case headerRawValue:
				hv.RawValue, ok = c.bytes(v), true
			}
			return ok
		})
	})
}

func decodeBody(b []byte, body *extprocv3.HttpBody) bool {
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		switch {
		case num == bodyBody && typ == protowire.BytesType:
			// Last one wins and empty is nil, as protobuf decodes bytes.
			body.Body = nil
			if len(v) > 0 {
				body.Body = bytes.Clone(v)
			}
			return true
		case num == bodyEndOfStream && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			body.EndOfStream = protowire.DecodeBool(x)
			return true
		}
		return false
	})
}

func decodeMetadata(b []byte) (*corev3.Metadata, bool) {
	md := new(corev3.Metadata)
	c := newCopies(b)
	return md, fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num != filterMetadata || typ != protowire.BytesType {
			return false
		}
		if md.FilterMetadata == nil {
			md.FilterMetadata = make(map[string]*structpb.Struct, 1)
		}
		return decodeStructEntry(&c, v, md.FilterMetadata, 0)
	})
}

// decodeStructEntry decodes one map<string, Struct> entry into m: a later
// entry for a key replaces an earlier one, and a missing value is an empty
// Struct, as protobuf decodes maps.
func decodeStructEntry(c *copies, b []byte, m map[string]*structpb.Struct, depth int) bool {
	var key string
	var val *structpb.Struct
	ok := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if typ != protowire.BytesType {
			return false
		}
		var ok bool
		switch {
		case num == mapKey:
			key, ok = c.str(v)
		case num == mapValue && val == nil:
			val, ok = decodeStruct(c, v, depth+1)
		}
		return ok
	})
	if !ok {
		return false
	}
	if val == nil {
		val = new(structpb.Struct)
	}
	m[key] = val
	return true
}

// decodeStruct decodes a Struct with its Values in one slab.
func decodeStruct(c *copies, b []byte, depth int) (*structpb.Struct, bool) {
	n := count(b, structFields)
	if n < 0 || depth > maxStructDepth {
		return nil, false
	}
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value, n)}
	vals := make([]structpb.Value, n)
	i := 0
	return s, fields(b, func(_ protowire.Number, _ protowire.Type, entry []byte) bool {
		var key string
		val := &vals[i]
		i++
		seen := false
		ok := fields(entry, func(num protowire.Number, typ protowire.Type, v []byte) bool {
			if typ != protowire.BytesType {
				return false
			}
			var ok bool
			switch {
			case num == mapKey:
				key, ok = c.str(v)
			case num == mapValue && !seen:
				seen, ok = true, decodeValue(c, v, val, depth)
			}
			return ok
		})
		s.Fields[key] = val
		return ok
	})
}

// decodeValue decodes a Value holding one kind; lists, and a Value naming
// more than one kind (protobuf keeps the last or merges), go to protobuf.
func decodeValue(c *copies, b []byte, val *structpb.Value, depth int) bool {
	return fields(b, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if val.Kind != nil {
			return false
		}
		switch {
		case num == valueNull && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			val.Kind = &structpb.Value_NullValue{NullValue: structpb.NullValue(int32(x))}
		case num == valueNumber && typ == protowire.Fixed64Type:
			x, _ := protowire.ConsumeFixed64(v)
			val.Kind = &structpb.Value_NumberValue{NumberValue: math.Float64frombits(x)}
		case num == valueString && typ == protowire.BytesType:
			s, ok := c.str(v)
			if !ok {
				return false
			}
			val.Kind = &structpb.Value_StringValue{StringValue: s}
		case num == valueBool && typ == protowire.VarintType:
			x, _ := protowire.ConsumeVarint(v)
			val.Kind = &structpb.Value_BoolValue{BoolValue: protowire.DecodeBool(x)}
		case num == valueStruct && typ == protowire.BytesType:
			s, ok := decodeStruct(c, v, depth+1)
			if !ok {
				return false
			}
			val.Kind = &structpb.Value_StructValue{StructValue: s}
		default:
			return false
		}
		return true
	})
}
