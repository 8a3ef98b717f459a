package extproc

import (
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// The hand-encoded metadata must decode to the Struct protobuf would have
// encoded, and a reused writer must not leak one reply's fields into the
// next.
func TestMetadataWriter_DecodesAsStruct(t *testing.T) {
	var p replies
	for range 2 {
		p.begin()
		p.md.str("key_id", "bench")
		p.md.str("response_model", "")
		p.md.num("input_tokens", 420)
		p.md.num("cost", 0.000123)
		p.md.num("zero", 0)
		p.md.boolean("usage_estimated", true)
		p.md.boolean("off", false)
		b, err := proto.Marshal(p.responseBody(p.common()))
		if err != nil {
			t.Fatal(err)
		}
		var got extprocv3.ProcessingResponse
		if err := proto.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		fields := map[string]*structpb.Value{
			"key_id":          structpb.NewStringValue("bench"),
			"response_model":  structpb.NewStringValue(""),
			"input_tokens":    structpb.NewNumberValue(420),
			"cost":            structpb.NewNumberValue(0.000123),
			"zero":            structpb.NewNumberValue(0),
			"usage_estimated": structpb.NewBoolValue(true),
			"off":             structpb.NewBoolValue(false),
		}
		want := &structpb.Struct{Fields: map[string]*structpb.Value{
			metadataNamespace: structpb.NewStructValue(&structpb.Struct{Fields: fields}),
		}}
		if !proto.Equal(want, got.GetDynamicMetadata()) {
			t.Fatalf("metadata = %v, want %v", got.GetDynamicMetadata(), want)
		}
		if len(got.ProtoReflect().GetUnknown()) != 0 {
			t.Errorf("unknown fields left after decoding: %x", got.ProtoReflect().GetUnknown())
		}
	}
	// A reply without metadata carries none.
	p.begin()
	if resp := p.responseBody(p.common()); resp.GetDynamicMetadata() != nil || len(resp.ProtoReflect().GetUnknown()) != 0 {
		t.Errorf("metadata on a reply that wrote none: %v", resp)
	}
}
