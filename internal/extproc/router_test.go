package extproc

import (
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/openai/openai-go/v3"
)

var chatHeaders = []string{":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json",
	"authorization", "Bearer sk-all", "x-request-id", "req-1"}

const chatBody = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`

func TestRouter_RequestPhases(t *testing.T) {
	c := startServer(t)
	hdrs := append([]string{"x-tollgate-pool", "spoofed", "x-api-key", "sk-leak"}, chatHeaders...)
	out := exchange(t, c, reqHeaders(false, hdrs...), reqBody(chatBody))
	if len(out) != 2 {
		t.Fatalf("got %d replies", len(out))
	}

	hr := out[0].GetRequestHeaders()
	if hr == nil {
		t.Fatalf("reply to request_headers = %v", out[0])
	}
	set, removed := headers(hr.GetResponse().GetHeaderMutation())
	for _, h := range []string{"authorization", "x-api-key", "api-key", "x-tollgate-pool"} {
		if !removed[h] {
			t.Errorf("client header %s not removed", h)
		}
	}
	if set[headerRequestID] != "req-1" {
		t.Errorf("request id = %q, want Envoy's x-request-id", set[headerRequestID])
	}

	br := out[1].GetRequestBody()
	if br == nil {
		t.Fatalf("reply to request_body = %v", out[1])
	}
	if !br.GetResponse().GetClearRouteCache() {
		t.Error("clear_route_cache not set")
	}
	set, _ = headers(br.GetResponse().GetHeaderMutation())
	if set[headerPool] != "tollgate_pool_gpt-4o" {
		t.Errorf("pool header = %q", set[headerPool])
	}
	if br.GetResponse().GetBodyMutation() != nil {
		t.Error("router level must not change the request body")
	}
	md := out[1].GetDynamicMetadata().GetFields()[metadataNamespace].GetStructValue().AsMap()
	want := map[string]any{"key_id": "all", "model_group": "gpt-4o", "api": "chat_completions"}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("metadata %s = %v, want %v", k, md[k], v)
		}
	}
}

func TestRouter_AliasResolvesToGroupPool(t *testing.T) {
	c := startServer(t)
	out := exchange(t, c, reqHeaders(false, chatHeaders...), reqBody(`{"model":"gpt4","messages":[]}`))
	set, _ := headers(out[1].GetRequestBody().GetResponse().GetHeaderMutation())
	if set[headerPool] != "tollgate_pool_gpt-4o" {
		t.Errorf("pool = %q", set[headerPool])
	}
}

func TestRouter_KeyHeaders(t *testing.T) {
	c := startServer(t)
	for _, tc := range []struct{ name, header, value string }{
		{"bearer", "authorization", "Bearer sk-all"},
		{"bearer lowercase", "authorization", "bearer sk-all"},
		{"anthropic style", "x-api-key", "sk-all"},
		{"azure style", "api-key", "sk-all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := exchange(t, c, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", tc.header, tc.value))
			if out[0].GetRequestHeaders() == nil {
				t.Fatalf("rejected: %s", out[0].GetImmediateResponse().GetBody())
			}
		})
	}
}

// TestRouter_Errors covers every request error the gateway answers itself:
// status, OpenAI error shape, and content type.
func TestRouter_Errors(t *testing.T) {
	c := startServer(t)
	withKey := func(key string, kv ...string) *extprocv3.ProcessingRequest {
		return reqHeaders(false, append([]string{":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer " + key}, kv...)...)
	}
	for _, tc := range []struct {
		name   string
		msgs   []*extprocv3.ProcessingRequest
		status int
		typ    string
		code   string
		param  string
	}{
		{"missing key", []*extprocv3.ProcessingRequest{reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions")}, 401, "authentication_error", "missing_api_key", ""},
		{"unknown key", []*extprocv3.ProcessingRequest{withKey("sk-nope")}, 401, "authentication_error", "invalid_api_key", ""},
		{"not a bearer token", []*extprocv3.ProcessingRequest{reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Basic abc")}, 401, "authentication_error", "missing_api_key", ""},
		{"unknown path", []*extprocv3.ProcessingRequest{reqHeaders(false, ":method", "POST", ":path", "/v1/images/generations", "authorization", "Bearer sk-all")}, 404, "invalid_request_error", "unknown_url", ""},
		{"wrong method", []*extprocv3.ProcessingRequest{reqHeaders(true, ":method", "GET", ":path", "/v1/chat/completions?x=1", "authorization", "Bearer sk-all")}, 405, "invalid_request_error", "method_not_allowed", ""},
		{"no body", []*extprocv3.ProcessingRequest{reqHeaders(true, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-all")}, 400, "invalid_request_error", "missing_body", ""},
		{"malformed json", []*extprocv3.ProcessingRequest{withKey("sk-all"), reqBody(`{"model":"gpt-4o",`)}, 400, "invalid_request_error", "invalid_json", ""},
		{"json but not an object", []*extprocv3.ProcessingRequest{withKey("sk-all"), reqBody(`["gpt-4o"]`)}, 400, "invalid_request_error", "invalid_json", ""},
		{"missing model", []*extprocv3.ProcessingRequest{withKey("sk-all"), reqBody(`{"messages":[]}`)}, 400, "invalid_request_error", "missing_model", "model"},
		{"non-string model", []*extprocv3.ProcessingRequest{withKey("sk-all"), reqBody(`{"model":4,"messages":[]}`)}, 400, "invalid_request_error", "invalid_model", "model"},
		{"missing messages", []*extprocv3.ProcessingRequest{withKey("sk-all"), reqBody(`{"model":"gpt-4o"}`)}, 400, "invalid_request_error", "invalid_messages", "messages"},
		{"messages not an array", []*extprocv3.ProcessingRequest{withKey("sk-all"), reqBody(`{"model":"gpt-4o","messages":"hi"}`)}, 400, "invalid_request_error", "invalid_messages", "messages"},
		{"non-bool stream", []*extprocv3.ProcessingRequest{withKey("sk-all"), reqBody(`{"model":"gpt-4o","messages":[],"stream":"yes"}`)}, 400, "invalid_request_error", "invalid_stream", "stream"},
		{"unknown model", []*extprocv3.ProcessingRequest{withKey("sk-all"), reqBody(`{"model":"gpt-9","messages":[]}`)}, 404, "invalid_request_error", "model_not_found", "model"},
		{"model not allowed for key", []*extprocv3.ProcessingRequest{withKey("sk-claude"), reqBody(chatBody)}, 403, "permission_error", "model_not_allowed", "model"},
		{"body too large", []*extprocv3.ProcessingRequest{withKey("sk-all"), reqBody(`{"model":"gpt-4o","messages":[],"pad":"` + strings.Repeat("x", 5000) + `"}`)}, 413, "invalid_request_error", "request_too_large", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := exchange(t, c, tc.msgs...)
			imm := out[len(out)-1].GetImmediateResponse()
			if imm == nil {
				t.Fatalf("no immediate response; last reply %v", out[len(out)-1])
			}
			if got := int(imm.GetStatus().GetCode()); got != tc.status {
				t.Errorf("status = %d, want %d", got, tc.status)
			}
			if set, _ := headers(imm.GetHeaders()); set["content-type"] != "application/json" {
				t.Errorf("content-type = %q", set["content-type"])
			}
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(imm.GetBody(), &e); err != nil {
				t.Fatalf("body %s: %v", imm.GetBody(), err)
			}
			if e.Error.Type != tc.typ || e.Error.Message == "" || e.Error.Code == nil || *e.Error.Code != tc.code {
				t.Errorf("error = %s", imm.GetBody())
			}
			if (tc.param == "") != (e.Error.Param == nil) || (e.Error.Param != nil && *e.Error.Param != tc.param) {
				t.Errorf("param in %s, want %q", imm.GetBody(), tc.param)
			}
			if strings.Contains(string(imm.GetBody()), "sk-") {
				t.Errorf("error body leaks a key: %s", imm.GetBody())
			}
		})
	}
}

func TestRouter_Models(t *testing.T) {
	c := startServer(t)
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"sk-all", []string{"claude", "gpt-4o"}},
		{"sk-claude", []string{"claude"}},
	} {
		out := exchange(t, c, reqHeaders(true, ":method", "GET", ":path", "/v1/models", "authorization", "Bearer "+tc.key))
		imm := out[0].GetImmediateResponse()
		if imm.GetStatus().GetCode() != 200 {
			t.Fatalf("status %v body %s", imm.GetStatus(), imm.GetBody())
		}
		var page struct {
			Object string         `json:"object"`
			Data   []openai.Model `json:"data"`
		}
		if err := json.Unmarshal(imm.GetBody(), &page); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		if page.Object != "list" || strings.Join(ids, ",") != strings.Join(tc.want, ",") {
			t.Errorf("key %s: models %v", tc.key, ids)
		}
	}
}

func TestRouter_OpenAIPassThroughResponse(t *testing.T) {
	c := startServer(t)
	const body = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":4}}}`
	out := exchange(t, c,
		reqHeaders(false, chatHeaders...), reqBody(chatBody),
		respHeadersFromAttempt("openai-1", 2, ":status", "200", "content-type", "application/json"),
		respBody(body, true))
	rh := out[2].GetResponseHeaders()
	set, _ := headers(rh.GetResponse().GetHeaderMutation())
	if set[headerDeployment] != "openai-1" || set[headerModelGroup] != "gpt-4o" || set[headerAttempts] != "2" || set[headerRequestID] != "req-1" {
		t.Errorf("response headers = %v", set)
	}
	if out[2].GetModeOverride() != nil {
		t.Error("a JSON response must stay BUFFERED")
	}
	rb := out[3].GetResponseBody()
	if rb.GetResponse().GetBodyMutation() != nil {
		t.Error("pass-through response body was rewritten")
	}
	md := out[3].GetDynamicMetadata().GetFields()[metadataNamespace].GetStructValue().AsMap()
	if md["input_tokens"] != 9.0 || md["output_tokens"] != 2.0 || md["cached_input_tokens"] != 4.0 {
		t.Errorf("usage metadata = %v", md)
	}
}

func TestRouter_AnthropicResponseTranslated(t *testing.T) {
	c := startServer(t)
	const body = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":3,"cache_read_input_tokens":5,"cache_creation_input_tokens":0}}`
	out := exchange(t, c,
		reqHeaders(false, chatHeaders...), reqBody(chatBody),
		respHeadersFromAttempt("anthropic-1", 1, ":status", "200", "content-type", "application/json", "content-length", "300"),
		respBody(body, true))
	rb := out[3].GetResponseBody().GetResponse()
	newBody := rb.GetBodyMutation().GetBody()
	var cc openai.ChatCompletion
	if err := json.Unmarshal(newBody, &cc); err != nil {
		t.Fatalf("%s: %v", newBody, err)
	}
	if cc.Object != "chat.completion" || cc.Choices[0].Message.Content != "hello" || cc.Choices[0].FinishReason != "stop" {
		t.Errorf("translated = %s", newBody)
	}
	if cc.Usage.PromptTokens != 15 || cc.Usage.CompletionTokens != 3 || cc.Usage.PromptTokensDetails.CachedTokens != 5 {
		t.Errorf("usage = %+v", cc.Usage)
	}
	set, _ := headers(rb.GetHeaderMutation())
	if set["content-length"] != itoa(len(newBody)) || set["content-type"] != "application/json" {
		t.Errorf("length/type not fixed: %v (body %d bytes)", set, len(newBody))
	}
}

func TestRouter_AnthropicErrorTranslated(t *testing.T) {
	c := startServer(t)
	out := exchange(t, c,
		reqHeaders(false, chatHeaders...), reqBody(chatBody),
		respHeadersFromAttempt("anthropic-1", 1, ":status", "529", "content-type", "application/json"),
		respBody(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, true))
	rb := out[3].GetResponseBody().GetResponse()
	set, _ := headers(rb.GetHeaderMutation())
	if set[":status"] != "503" {
		t.Errorf(":status = %q, want 503", set[":status"])
	}
	var e struct {
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(rb.GetBodyMutation().GetBody(), &e); err != nil || e.Error.Message != "Overloaded" {
		t.Errorf("error body %s (%v)", rb.GetBodyMutation().GetBody(), err)
	}
}

func TestRouter_EnvoyLocalReplyGetsOpenAIShape(t *testing.T) {
	c := startServer(t)
	out := exchange(t, c,
		reqHeaders(false, chatHeaders...), reqBody(chatBody),
		respHeaders(":status", "503", "content-type", "text/plain"),
		respBody("no healthy upstream", true))
	rb := out[3].GetResponseBody().GetResponse()
	var e struct {
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(rb.GetBodyMutation().GetBody(), &e); err != nil {
		t.Fatal(err)
	}
	if e.Error.Message != "no healthy upstream" || e.Error.Type != "service_unavailable_error" {
		t.Errorf("error = %+v", e.Error)
	}
}

func TestRouter_GatewayErrorFromUpstreamFilterPassesOn(t *testing.T) {
	c := startServer(t)
	const body = `{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"invalid_request"}}`
	out := exchange(t, c,
		reqHeaders(false, chatHeaders...), reqBody(chatBody),
		respHeadersFromAttempt("anthropic-1", 1, ":status", "400", headerErrorSource, "gateway"),
		respBody(body, true))
	_, removed := headers(out[2].GetResponseHeaders().GetResponse().GetHeaderMutation())
	if !removed[headerErrorSource] {
		t.Error("internal marker header not removed")
	}
	if out[3].GetResponseBody().GetResponse().GetBodyMutation() != nil {
		t.Error("gateway's own error was rewritten")
	}
}

func TestRouter_StreamSwitchesToStreamedAndTranslates(t *testing.T) {
	c := startServer(t)
	stream, err := c.Process(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	send := func(m *extprocv3.ProcessingRequest) {
		t.Helper()
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() *extprocv3.ProcessingResponse {
		t.Helper()
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	send(reqHeaders(false, chatHeaders...))
	recv()
	send(reqBody(`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`))
	recv()
	send(respHeadersFromAttempt("anthropic-1", 1, ":status", "200", "content-type", "text/event-stream; charset=utf-8"))
	rh := recv()
	mo := rh.GetModeOverride()
	if mo.GetResponseBodyMode() != filterv3.ProcessingMode_STREAMED || mo.GetRequestBodyMode() != filterv3.ProcessingMode_BUFFERED {
		t.Fatalf("mode_override = %v", mo)
	}
	// STREAMED bodies are pipelined: Envoy sends chunks without waiting.
	events := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel",
		"lo\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":4}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	}
	for i, e := range events {
		send(respBody(e, i == len(events)-1))
	}
	var sse strings.Builder
	var last *extprocv3.ProcessingResponse
	for range events {
		last = recv()
		rb := last.GetResponseBody()
		if rb == nil {
			t.Fatalf("reply %v", last)
		}
		sse.Write(rb.GetResponse().GetBodyMutation().GetBody())
	}
	stream.CloseSend()

	var text strings.Builder
	var finish string
	var usage openai.CompletionUsage
	for _, line := range strings.Split(sse.String(), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var chunk openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatalf("chunk %s: %v", data, err)
		}
		for _, ch := range chunk.Choices {
			text.WriteString(ch.Delta.Content)
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
		if chunk.Usage.TotalTokens > 0 {
			usage = chunk.Usage
		}
	}
	if text.String() != "Hello" || finish != "stop" || !strings.HasSuffix(sse.String(), "data: [DONE]\n\n") {
		t.Errorf("stream = %q", sse.String())
	}
	if usage.PromptTokens != 7 || usage.CompletionTokens != 4 {
		t.Errorf("usage chunk = %+v", usage)
	}
	md := last.GetDynamicMetadata().GetFields()[metadataNamespace].GetStructValue().AsMap()
	if md["output_tokens"] != 4.0 {
		t.Errorf("usage metadata = %v", md)
	}
}

func TestRouter_TrailersAnsweredInKind(t *testing.T) {
	c := startServer(t)
	out := exchange(t, c, reqHeaders(false, chatHeaders...), &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{}}})
	if out[1].GetRequestTrailers() == nil {
		t.Errorf("reply to trailers = %v", out[1])
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestRouter_BodiesLoggedOnlyWhenSwitchedOn(t *testing.T) {
	for _, on := range []bool{false, true} {
		var logs syncLog
		c := startServerWith(t, Options{LogBodies: on, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		exchange(t, c, reqHeaders(false, chatHeaders...), reqBody(`{"model":"gpt-4o","messages":[{"role":"user","content":"secret plans"}]}`))
		if got := strings.Contains(logs.String(), "secret plans"); got != on {
			t.Errorf("log_bodies %v: body in logs = %v", on, got)
		}
		if strings.Contains(logs.String(), "sk-all") {
			t.Error("the key is in the logs")
		}
	}
}

// syncLog collects log output written from the server's goroutines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRouter_MessagesErrorsInAnthropicShape: clients of /v1/messages get
// Anthropic's error body, whatever rejected the request.
func TestRouter_MessagesErrorsInAnthropicShape(t *testing.T) {
	c := startServer(t)
	msgHeaders := func(key string) *extprocv3.ProcessingRequest {
		return reqHeaders(false, ":method", "POST", ":path", "/v1/messages", "x-api-key", key, "anthropic-version", "2023-06-01")
	}
	for _, tc := range []struct {
		name   string
		msgs   []*extprocv3.ProcessingRequest
		status int
		typ    string
	}{
		{"unknown key", []*extprocv3.ProcessingRequest{msgHeaders("sk-nope")}, 401, "authentication_error"},
		{"missing max_tokens", []*extprocv3.ProcessingRequest{msgHeaders("sk-all"), reqBody(`{"model":"claude","messages":[{"role":"user","content":"hi"}]}`)}, 400, "invalid_request_error"},
		{"fractional max_tokens", []*extprocv3.ProcessingRequest{msgHeaders("sk-all"), reqBody(`{"model":"claude","max_tokens":1.5,"messages":[]}`)}, 400, "invalid_request_error"},
		{"unknown model", []*extprocv3.ProcessingRequest{msgHeaders("sk-all"), reqBody(`{"model":"nope","max_tokens":10,"messages":[]}`)}, 404, "not_found_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := exchange(t, c, tc.msgs...)
			imm := out[len(out)-1].GetImmediateResponse()
			if int(imm.GetStatus().GetCode()) != tc.status {
				t.Fatalf("status %v, body %s", imm.GetStatus(), imm.GetBody())
			}
			var e struct {
				Type  string
				Error struct{ Type, Message string }
			}
			if err := json.Unmarshal(imm.GetBody(), &e); err != nil || e.Type != "error" || e.Error.Type != tc.typ || e.Error.Message == "" {
				t.Errorf("body %s (%v)", imm.GetBody(), err)
			}
		})
	}
	// A valid request is routed like a chat request.
	out := exchange(t, c, msgHeaders("sk-all"), reqBody(`{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`))
	set, _ := headers(out[1].GetRequestBody().GetResponse().GetHeaderMutation())
	if set[headerPool] != "tollgate_pool_claude" {
		t.Errorf("pool = %q", set[headerPool])
	}
}

func TestIsStreamContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream; charset=utf-8":   true,
		"application/vnd.amazon.eventstream": true,
		"application/x-ndjson":               true,
		"application/json":                   false,
		"":                                   false,
	} {
		if got := isStreamContentType(ct); got != want {
			t.Errorf("isStreamContentType(%q) = %v", ct, got)
		}
	}
}
