package extproc

import (
	"bytes"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestEncodeReply_KnowsEveryField fails when a go-control-plane upgrade
// adds fields to the messages encodeReply writes: it must then learn them,
// or refuse replies that set them.
func TestEncodeReply_KnowsEveryField(t *testing.T) {
	for _, tc := range []struct {
		m    proto.Message
		want []string
	}{
		{&extprocv3.ProcessingResponse{}, []string{"request_headers", "response_headers", "request_body", "response_body",
			"request_trailers", "response_trailers", "immediate_response", "streamed_immediate_response", "dynamic_metadata",
			"typed_dynamic_metadata", "mode_override", "request_drain", "request_drain_requests", "request_drain_responses",
			"override_message_timeout", "server_window_update"}},
		{&extprocv3.HeadersResponse{}, []string{"response"}},
		{&extprocv3.BodyResponse{}, []string{"response"}},
		{&extprocv3.CommonResponse{}, []string{"status", "header_mutation", "body_mutation", "trailers", "clear_route_cache"}},
		{&extprocv3.HeaderMutation{}, []string{"set_headers", "remove_headers"}},
		{&extprocv3.BodyMutation{}, []string{"body", "clear_body", "streamed_response"}},
		{&corev3.HeaderValueOption{}, []string{"header", "append", "append_action", "keep_empty_value"}},
		{&corev3.HeaderValue{}, []string{"key", "value", "raw_value"}},
	} {
		fields := tc.m.ProtoReflect().Descriptor().Fields()
		var got []string
		for i := range fields.Len() {
			got = append(got, string(fields.Get(i).Name()))
		}
		slices.Sort(got)
		slices.Sort(tc.want)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s fields = %v, encodeReply knows %v", tc.m.ProtoReflect().Descriptor().FullName(), got, tc.want)
		}
	}
}

// TestWire_EncodesAsProtobuf plays every kind of reply the filters build in
// their pooled objects and checks that the stream's own encoding decodes
// to what protobuf would have sent.
func TestWire_EncodesAsProtobuf(t *testing.T) {
	srv := New(testRuntime(t), Options{})
	rt := srv.runtime.Load()
	check := func(h handler, p *replies, req *extprocv3.ProcessingRequest) {
		t.Helper()
		resp := h.handle(t.Context(), req)
		if resp != &p.resp {
			t.Fatalf("reply not built in the stream's objects: %v", resp)
		}
		want := roundTrip(t, resp)
		m, ok := p.wire()
		if !ok {
			t.Fatalf("not encoded: %v", resp)
		}
		got := roundTrip(t, m)
		if !proto.Equal(want, got) {
			t.Fatalf("encoded as\n%v\nprotobuf\n%v", got, want)
		}
		// Codec sends the same bytes as any other codec would.
		data, err := Codec().Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := proto.Marshal(m); !bytes.Equal(data.Materialize(), b) {
			t.Fatalf("Codec sent %x, protobuf %x", data.Materialize(), b)
		}
		data.Free()
	}
	partial := func(r *extprocv3.ProcessingRequest) *extprocv3.ProcessingRequest {
		r.GetRequestBody().EndOfStream = false
		return r
	}

	// Buffered pass-through, with metadata, route cache and cost.
	r := &routerStream{srv: srv, rt: rt, replies: new(replies)}
	for _, m := range []*extprocv3.ProcessingRequest{reqHeaders(false, chatHeaders...), partial(reqBody(chatBody[:10])), reqBody(chatBody[10:]),
		respHeadersFromAttempt("openai-1", 1, ":status", "200", "content-type", "application/json"), respBody(benchOpenAIResponse, true)} {
		check(r, r.replies, m)
	}
	// A translated stream: mode override, replaced and held-back chunks,
	// usage metadata at the end.
	r = &routerStream{srv: srv, rt: rt, replies: new(replies)}
	for _, m := range []*extprocv3.ProcessingRequest{reqHeaders(false, chatHeaders...),
		reqBody(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`),
		respHeadersFromAttempt("anthropic-1", 2, ":status", "200", "content-type", "text/event-stream"),
		respBody("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n", false),
		respBody("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel", false),
		respBody("lo\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", true)} {
		check(r, r.replies, m)
	}
	// Both providers' attempts: headers without mutations, a partial body,
	// and a body reply with and without a new body.
	for _, d := range []string{"openai-1", "anthropic-1"} {
		u := &upstreamStream{srv: srv, rt: rt, deploymentID: d, replies: new(replies)}
		for _, m := range []*extprocv3.ProcessingRequest{upstreamHeaders(d, ":path", "/v1/chat/completions"), partial(reqBody(chatBody[:5])), reqBody(chatBody[5:])} {
			check(u, u.replies, m)
		}
	}
}

func roundTrip(t *testing.T, m proto.Message) *extprocv3.ProcessingResponse {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out extprocv3.ProcessingResponse
	if err := proto.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.ProtoReflect().GetUnknown()) != 0 {
		t.Fatalf("undecoded fields: %v", protoreflect.RawFields(out.ProtoReflect().GetUnknown()))
	}
	return &out
}
