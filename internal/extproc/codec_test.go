package extproc

import (
	"bytes"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// codecSeeds are messages the codec must decode as protobuf does: what
// Envoy sends both filters, which it decodes itself (fast), and shapes it
// leaves to protobuf (slow).
func codecSeeds(t testing.TB) (fast, slow [][]byte) {
	up := upstreamHeaders("openai-1", append(chatHeaders, "x-envoy-attempt-count", "2")...)
	up.ProtocolConfig = &extprocv3.ProtocolConfiguration{RequestBodyMode: filterv3.ProcessingMode_BUFFERED}
	upBody := reqBody(chatBody)
	upBody.MetadataContext = up.MetadataContext
	valueOnly := reqHeaders(true)
	valueOnly.GetRequestHeaders().Headers.Headers = []*corev3.HeaderValue{{Key: ":path", Value: "/v1/models"}, {Key: "empty", RawValue: []byte{}}}
	encode := func(msgs ...*extprocv3.ProcessingRequest) [][]byte {
		var out [][]byte
		for _, m := range msgs {
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	fast = encode(reqHeaders(false, chatHeaders...), reqHeaders(true), reqBody(chatBody), reqBody(""), up, upBody,
		respHeadersFromAttempt("anthropic-1", 3, ":status", "200", "content-type", "text/event-stream"),
		respBody(benchOpenAIResponse, true), respBody("", false), valueOnly, &extprocv3.ProcessingRequest{ObservabilityMode: true},
		&extprocv3.ProcessingRequest{})
	// Every kind of Value but lists, nested, in both Struct maps.
	kinds, err := structpb.NewStruct(map[string]any{"s": "x", "n": 1.5, "b": true, "null": nil, "empty": "",
		"nested": map[string]any{"deeper": map[string]any{"k": "v"}, "z": 0.0}})
	if err != nil {
		t.Fatal(err)
	}
	all := respHeadersFromAttempt("openai-1", 1, ":status", "200")
	all.Attributes["other"] = kinds
	all.Attributes[""] = &structpb.Struct{}
	all.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"a": kinds, "b": {}}}
	fast = append(fast, encode(all)...)
	// The same attribute and metadata namespace twice: the later replaces
	// the earlier, whole.
	twice := encode(&extprocv3.ProcessingRequest{Attributes: map[string]*structpb.Struct{"k": kinds},
		MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"a": kinds}}},
		&extprocv3.ProcessingRequest{Attributes: map[string]*structpb.Struct{"k": {}},
			MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"a": {}}}})
	fast = append(fast, append(twice[0], twice[1]...))
	// A field this version does not know is kept as protobuf keeps it.
	b := fast[2]
	fast = append(fast, protowire.AppendBytes(protowire.AppendTag(bytes.Clone(b), 99, protowire.BytesType), []byte("future")))

	slow = encode(
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{Trailers: headerMap("grpc-status", "0")}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte("x"), EndOfStreamWithoutMessage: true}}})
	// Invalid UTF-8 in a key (protobuf refuses to encode it), two oneof
	// members, and a header map sent in two parts, which protobuf merges.
	bad, _ := proto.Marshal(reqHeaders(false, "kXey", "v"))
	slow = append(slow, bytes.Replace(bad, []byte("kXey"), []byte("k\xffey"), 1))
	slow = append(slow, append(bytes.Clone(fast[2]), fast[7]...))
	list, _ := structpb.NewStruct(map[string]any{"l": []any{"x", 1.0}})
	withList := reqBody("x")
	withList.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"a": list}}
	slow = append(slow, encode(withList)...)
	h1, _ := proto.Marshal(reqHeaders(false, "a", "1"))
	h2, _ := proto.Marshal(reqHeaders(true, "b", "2"))
	slow = append(slow, append(h1, h2...))
	return fast, slow
}

func TestCodec_DecodesAsProtobuf(t *testing.T) {
	fast, slow := codecSeeds(t)
	for i, b := range append(fast, slow...) {
		var m extprocv3.ProcessingRequest
		if ok := decodeRequest(b, &m); ok != (i < len(fast)) {
			t.Errorf("seed %d: decoded without protobuf: %v", i, ok)
		}
		checkDecode(t, b)
	}
}

func FuzzCodec_DecodesAsProtobuf(f *testing.F) {
	fast, slow := codecSeeds(f)
	for _, b := range append(fast, slow...) {
		f.Add(b)
	}
	f.Fuzz(checkDecode)
}

// checkDecode compares the codec's decoding of b with protobuf's, including
// what proto.Equal does not see: nil against empty bytes, which the filters
// read differently (raw_value against value).
func checkDecode(t *testing.T, b []byte) {
	var want, got extprocv3.ProcessingRequest
	werr := proto.Unmarshal(b, &want)
	gerr := unmarshalRequest(b, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("error %v, protobuf's %v", gerr, werr)
	}
	if werr != nil {
		return
	}
	if !proto.Equal(&want, &got) {
		t.Fatalf("decoded %v, protobuf %v", &got, &want)
	}
	if !bytes.Equal(want.ProtoReflect().GetUnknown(), got.ProtoReflect().GetUnknown()) {
		t.Fatalf("unknown fields %x, protobuf's %x", got.ProtoReflect().GetUnknown(), want.ProtoReflect().GetUnknown())
	}
	wh := append(want.GetRequestHeaders().GetHeaders().GetHeaders(), want.GetResponseHeaders().GetHeaders().GetHeaders()...)
	gh := append(got.GetRequestHeaders().GetHeaders().GetHeaders(), got.GetResponseHeaders().GetHeaders().GetHeaders()...)
	for i := range wh {
		if (wh[i].RawValue == nil) != (gh[i].RawValue == nil) {
			t.Fatalf("header %d raw_value nil: %v, protobuf's %v", i, gh[i].RawValue == nil, wh[i].RawValue == nil)
		}
	}
	for _, p := range [][2]*extprocv3.HttpBody{{want.GetRequestBody(), got.GetRequestBody()}, {want.GetResponseBody(), got.GetResponseBody()}} {
		if (p[0].GetBody() == nil) != (p[1].GetBody() == nil) {
			t.Fatalf("body nil: %v, protobuf's %v", p[1].GetBody() == nil, p[0].GetBody() == nil)
		}
	}
	// The message must own its memory: grpc-go reuses the buffer.
	for i := range b {
		b[i] = 0
	}
	if !proto.Equal(&want, &got) {
		t.Fatalf("decoded message changed with its input buffer")
	}
}
