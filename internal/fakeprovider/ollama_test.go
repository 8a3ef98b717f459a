package fakeprovider_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func TestOllama_Chat(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		header     http.Header
		wantText   string
		wantTool   string
		wantReason string
		wantIn     int64
		wantOut    int64
	}{
		{"echo", `{"model":"llama3.2","stream":false,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello big world"}]}`, nil,
			"echo: hello big world", "", "stop", 5, 4},
		{"tool round trip", `{"model":"llama3.2","stream":false,"messages":[
			{"role":"user","content":"weather please"},
			{"role":"assistant","content":"","tool_calls":[{"function":{"name":"w","arguments":{"city":"Paris"}}}]},
			{"role":"tool","content":"sunny and warm","tool_name":"w"},
			{"role":"user","content":"thanks","images":["iVBORw0KGgo="]}]}`, nil,
			"echo: thanks", "", "stop", 7, 2},
		{"scripted tool call", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"in Paris"}],"tools":[{"type":"function","function":{"name":"get_weather"}}]}`,
			http.Header{fakeprovider.HeaderToolCall: {"get_weather"}}, "", "get_weather", "stop", 2, 2},
		{"num_predict", `{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x y z"}],"options":{"num_predict":2,"temperature":0}}`, nil,
			"echo: x", "", "length", 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Ollama)
			code, body, hdr := sendRaw(t, srv, "/api/chat", tt.body, tt.header)
			if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d %s: %s", code, hdr.Get("Content-Type"), body)
			}
			doc := gjson.ParseBytes(body)
			if doc.Get("message.content").Str != tt.wantText || doc.Get("message.tool_calls.0.function.name").Str != tt.wantTool ||
				doc.Get("done_reason").Str != tt.wantReason || !doc.Get("done").Bool() {
				t.Errorf("body %s", body)
			}
			if tt.wantTool != "" && !doc.Get("message.tool_calls.0.function.arguments").IsObject() {
				t.Errorf("arguments are not an object: %s", body)
			}
			if doc.Get("prompt_eval_count").Int() != tt.wantIn || doc.Get("eval_count").Int() != tt.wantOut {
				t.Errorf("counts %s", body)
			}
		})
	}
}

func TestOllama_Stream(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Ollama)
	// Ollama streams when stream is left out.
	code, body, hdr := sendRaw(t, srv, "/api/chat", `{"model":"llama3.2","messages":[{"role":"user","content":"one two"}]}`,
		http.Header{fakeprovider.HeaderToolCall: {"lookup"}, fakeprovider.HeaderReply: {"a b c"}})
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d %s", code, hdr.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	var text string
	for i, l := range lines {
		d := gjson.Parse(l)
		if !gjson.Valid(l) || d.Get("model").Str != "llama3.2" || d.Get("done").Bool() != (i == len(lines)-1) {
			t.Errorf("line %d %s", i, l)
		}
		text += d.Get("message.content").Str
	}
	last := gjson.Parse(lines[len(lines)-1])
	calls := gjson.Parse(lines[len(lines)-2]).Get("message.tool_calls.0.function")
	if text != "a b c" || len(lines) != 5 || calls.Get("name").Str != "lookup" || calls.Get("arguments.text").Str != "one two" ||
		last.Get("done_reason").Str != "stop" || last.Get("eval_count").Int() != 5 || last.Get("prompt_eval_count").Int() != 2 {
		t.Errorf("stream %s", body)
	}
}

func TestOllama_Errors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		header   http.Header
		opts     []fakeprovider.Option
		wantCode int
		wantMsg  string
	}{
		{"no model", `{"messages":[]}`, nil, nil, 400, "model is required"},
		{"openai parts", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`, nil, nil, 400,
			"json: cannot unmarshal an array into Go struct field Message.messages.content of type string"},
		{"string arguments", `{"model":"m","messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}]}`, nil, nil, 400,
			"json: cannot unmarshal messages[0].tool_calls[0]: function.arguments must be an object"},
		{"data url image", `{"model":"m","messages":[{"role":"user","content":"x","images":["data:image/png;base64,AA=="]}]}`, nil, nil, 400,
			"messages[0].images[0]: images must be base64 without a data: prefix"},
		{"tool_choice", `{"model":"m","messages":[],"tool_choice":"auto"}`, nil, nil, 400, `json: unknown field "tool_choice"`},
		{"openai option name", `{"model":"m","messages":[],"options":{"max_tokens":3}}`, nil, nil, 400, "invalid option provided: max_tokens"},
		{"bad format", `{"model":"m","messages":[],"format":"yaml"}`, nil, nil, 400, `invalid format: "yaml"; expected "json" or a valid JSON Schema`},
		{"model not pulled", `{"model":"llama9","messages":[]}`, nil, []fakeprovider.Option{fakeprovider.WithModels("llama3.2")}, 404, `model "llama9" not found, try pulling it first`},
		{"key required", `{"model":"m","messages":[]}`, nil, []fakeprovider.Option{fakeprovider.WithAPIKey(testKey)}, 401, "unauthorized"},
		{"context window", `{"model":"m","messages":[{"role":"user","content":"a b c d"}]}`, nil, []fakeprovider.Option{fakeprovider.WithContextWindow(3)}, 400,
			"the input length exceeds the context length"},
		{"scripted 500", `{}`, http.Header{fakeprovider.HeaderStatus: {"500"}}, nil, 500, "llama runner process has terminated: exit status 2"},
		{"route", ``, nil, nil, 404, "404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Ollama, tt.opts...)
			path := "/api/chat"
			if tt.name == "route" {
				path = "/api/generate"
			}
			code, body, _ := sendRaw(t, srv, path, tt.body, tt.header)
			if code != tt.wantCode || gjson.GetBytes(body, "error").Str != tt.wantMsg {
				t.Errorf("got %d %s", code, body)
			}
			pe := transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{}).ErrorBody(code, body)
			if pe.Status != tt.wantCode || pe.Message != tt.wantMsg {
				t.Errorf("translated %+v", pe)
			}
		})
	}
}

func TestOllama_ThroughTranslator(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Ollama)
	throughTranslator(t, "ollama", srv, transform.NewOpenAIToOllamaRequest(transform.Target{}).RequestBody, transform.NewOpenAIToOllamaResponse)
}
