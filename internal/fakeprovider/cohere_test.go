package fakeprovider_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// sendRaw posts body to the fake with the given headers and returns the
// status, body and headers of the answer.
func sendRaw(t *testing.T, srv *fakeprovider.Server, path, body string, header http.Header) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if header != nil {
		req.Header = header.Clone()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

func bearer(key string) http.Header { return http.Header{"Authorization": {"Bearer " + key}} }

// throughTranslator sends every request fixture of a provider, translated
// by the gateway's translator, to the fake and translates the answer back:
// the fake and the translators agree on the wire format.
func throughTranslator(t *testing.T, provider string, srv *fakeprovider.Server, req func([]byte) (transform.RequestResult, error), resp func(transform.ResponseOptions) transform.ResponseTranslator) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "pkg", "transform", "testdata", provider, "*.request.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("fixtures: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".request.json"), func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := req(body)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			for _, kv := range r.SetHeaders {
				h.Set(kv.Key, kv.Value)
			}
			code, out, _ := sendRaw(t, srv, r.Path, string(r.Body), h)
			if code != http.StatusOK {
				t.Fatalf("fake rejected the translation: %d %s\n%s", code, out, r.Body)
			}
			rt := resp(transform.ResponseOptions{Stream: r.Stream, IncludeUsage: true, Created: 1})
			if !r.Stream {
				res, err := rt.ResponseBody(out)
				if err != nil || res.Usage.InputTokens == 0 || !json.Valid(res.Body) {
					t.Errorf("response %s %+v %v", res.Body, res.Usage, err)
				}
				return
			}
			res, err := rt.StreamChunk(out, true)
			if err != nil || !res.Done || res.Usage.OutputTokens == 0 || !bytes.HasSuffix(res.Body, []byte("data: [DONE]\n\n")) {
				t.Errorf("stream %s %+v %v", res.Body, res, err)
			}
		})
	}
}

func TestCohere_Chat(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		header     http.Header
		wantText   string
		wantTool   string
		wantFinish string
		wantIn     int64
		wantOut    int64
	}{
		{"echo", `{"model":"command-a","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello big world"}]}`, nil,
			"echo: hello big world", "", "COMPLETE", 5, 4},
		{"parts and tool round trip", `{"model":"command-a","messages":[
			{"role":"user","content":[{"type":"text","text":"weather please"}]},
			{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"w","arguments":"{\"city\":\"Paris\"}"}}]},
			{"role":"tool","tool_call_id":"t1","content":[{"type":"text","text":"sunny and warm"}]},
			{"role":"user","content":"thanks"}]}`, nil,
			"echo: thanks", "", "COMPLETE", 7, 2},
		{"tool_choice REQUIRED", `{"model":"command-a","messages":[{"role":"user","content":"in Paris"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"tool_choice":"REQUIRED"}`, nil,
			"", "get_weather", "TOOL_CALL", 2, 2},
		{"max_tokens", `{"model":"command-a","messages":[{"role":"user","content":"x y z"}],"max_tokens":2}`, nil,
			"echo: x", "", "MAX_TOKENS", 3, 2},
		{"cached tokens", `{"model":"command-a","messages":[{"role":"user","content":"a b c d"}]}`, http.Header{fakeprovider.HeaderCachedTokens: {"3"}},
			"echo: a b c d", "", "COMPLETE", 4, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Cohere, fakeprovider.WithAPIKey(testKey))
			h := bearer(testKey)
			for k, v := range tt.header {
				h[k] = v
			}
			code, body, _ := sendRaw(t, srv, "/v2/chat", tt.body, h)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			doc := gjson.ParseBytes(body)
			text := doc.Get("message.content.0.text").Str
			tool := doc.Get("message.tool_calls.0.function.name").Str
			if text != tt.wantText || tool != tt.wantTool || doc.Get("finish_reason").Str != tt.wantFinish {
				t.Errorf("body %s", body)
			}
			if doc.Get("usage.tokens.input_tokens").Int() != tt.wantIn || doc.Get("usage.tokens.output_tokens").Int() != tt.wantOut ||
				doc.Get("usage.billed_units.input_tokens").Int() != tt.wantIn {
				t.Errorf("usage %s", doc.Get("usage").Raw)
			}
			if tool != "" && !gjson.Valid(doc.Get("message.tool_calls.0.function.arguments").Str) {
				t.Errorf("arguments %s", doc.Get("message.tool_calls.0.function.arguments").Raw)
			}
		})
	}
}

func TestCohere_Stream(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Cohere)
	h := http.Header{fakeprovider.HeaderToolCall: {"lookup"}, fakeprovider.HeaderReply: {"one two"}}
	code, body, hdr := sendRaw(t, srv, "/v2/chat", `{"model":"command-a","stream":true,"messages":[{"role":"user","content":"q"}],"tools":[{"type":"function","function":{"name":"lookup"}}]}`, h)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d %s", code, hdr.Get("Content-Type"))
	}
	var types []string
	var text, args string
	for _, ev := range strings.Split(strings.TrimSpace(string(body)), "\n\n") {
		name, data, ok := strings.Cut(ev, "\ndata: ")
		if !ok {
			if ev != "data: [DONE]" {
				t.Errorf("event %q", ev)
			}
			continue
		}
		d := gjson.Parse(data)
		if strings.TrimPrefix(name, "event: ") != d.Get("type").Str {
			t.Errorf("event name %q type %q", name, d.Get("type").Str)
		}
		types = append(types, d.Get("type").Str)
		text += d.Get("delta.message.content.text").Str
		args += d.Get("delta.message.tool_calls.function.arguments").Str
		if d.Get("type").Str == "message-end" && (d.Get("delta.finish_reason").Str != "TOOL_CALL" || d.Get("delta.usage.tokens.output_tokens").Int() != 3) {
			t.Errorf("message-end %s", data)
		}
	}
	got := strings.Join(types, ",")
	want := "message-start,content-start,content-delta,content-delta,content-end,tool-plan-delta,tool-plan-delta,tool-plan-delta,tool-plan-delta,tool-call-start,tool-call-delta,tool-call-delta,tool-call-end,message-end"
	if got != want || text != "one two" || args != `{"text":"q"}` {
		t.Errorf("events %s\ntext %q args %q", got, text, args)
	}
}

func TestCohere_Errors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		header   http.Header
		opts     []fakeprovider.Option
		wantCode int
		wantMsg  string
	}{
		{"no key", `{"model":"c","messages":[{"role":"user","content":"x"}]}`, http.Header{}, nil, 401, "no api key supplied"},
		{"wrong key", `{"model":"c","messages":[{"role":"user","content":"x"}]}`, bearer("nope"), nil, 401, "invalid api token"},
		{"unknown field", `{"model":"c","messages":[{"role":"user","content":"x"}],"top_p":1}`, nil, nil, 400, "invalid request: unknown field: parameter top_p is not a valid field"},
		{"openai tool_choice", `{"model":"c","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}`, nil, nil, 400, "invalid request: tool_choice must be one of REQUIRED, NONE"},
		{"strict in function", `{"model":"c","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","strict":true}}]}`, nil, nil, 400, "invalid request: tools[0].function: unknown field strict"},
		{"developer role", `{"model":"c","messages":[{"role":"developer","content":"x"}]}`, nil, nil, 400, "invalid request: messages[0].role must be one of user, assistant, system, tool"},
		{"name field", `{"model":"c","messages":[{"role":"user","content":"x","name":"bob"}]}`, nil, nil, 400, "invalid request: messages[0]: unknown field name"},
		{"v1 schema", `{"model":"c","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object","schema":{}}}`, nil, nil, 400, "invalid request: response_format.schema is not a valid field, use json_schema"},
		{"object arguments", `{"model":"c","messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":{}}}]}]}`, nil, nil, 400, "invalid request: messages[0].tool_calls[0].function.arguments must be a JSON string"},
		{"context", `{"model":"c","messages":[{"role":"user","content":"a b c d"}]}`, nil, []fakeprovider.Option{fakeprovider.WithContextWindow(2)}, 400, "too many tokens: size limit exceeded by 2 tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'."},
		{"model", `{"model":"c","messages":[{"role":"user","content":"x"}]}`, nil, []fakeprovider.Option{fakeprovider.WithModels("command-a")}, 404, "model 'c' not found, make sure the correct model ID was used and that you have access to the model."},
		{"scripted 429", `{}`, http.Header{fakeprovider.HeaderStatus: {"429"}}, nil, 429, "You are past the per minute request limit, please wait before sending another request."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if tt.header != nil && tt.header.Get(fakeprovider.HeaderStatus) == "" {
				opts = append(opts, fakeprovider.WithAPIKey(testKey))
			}
			srv := fakeprovider.Start(t, fakeprovider.Cohere, opts...)
			code, body, _ := sendRaw(t, srv, "/v2/chat", tt.body, tt.header)
			if code != tt.wantCode || gjson.GetBytes(body, "message").Str != tt.wantMsg {
				t.Errorf("got %d %s", code, body)
			}
			// The translator reads the fake's errors as Cohere's.
			pe := transform.NewOpenAIToCohereResponse(transform.ResponseOptions{}, "c").ErrorBody(code, body)
			if pe.Status != tt.wantCode || pe.Message != tt.wantMsg {
				t.Errorf("translated %+v", pe)
			}
		})
	}
}

func TestCohere_ThroughTranslator(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Cohere, fakeprovider.WithAPIKey(testKey))
	throughTranslator(t, "cohere", srv,
		transform.NewOpenAIToCohereRequest(transform.Target{APIKey: testKey}).RequestBody,
		func(o transform.ResponseOptions) transform.ResponseTranslator {
			return transform.NewOpenAIToCohereResponse(o, "command-a")
		})
}
