package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func TestOllama_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "ollama", "request") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "ollama", name+".request.json"))
			pristine := bytes.Clone(body)
			tr := transform.NewOpenAIToOllamaRequest(transform.Target{})
			res, err := tr.RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "ollama", name+".request.golden.json"), requestGolden(t, res))
			again, _ := tr.RequestBody(body)
			if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(body, pristine) {
				t.Error("translation is not repeatable over an untouched body")
			}
		})
	}
}

func TestOllama_RequestBodyFields(t *testing.T) {
	tests := []struct {
		name   string
		target transform.Target
		body   string
		want   string
	}{
		{"minimal sends stream false", transform.Target{}, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}`},
		{"target model", transform.Target{Model: "llama3.2:1b"}, `{"model":"g","messages":[],"stream":true}`,
			`{"model":"llama3.2:1b","messages":[],"stream":true}`},
		{"tool_choice auto offers the tools", transform.Target{}, `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto"}`,
			`{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"stream":false}`},
		{"tool_choice none offers no tools", transform.Target{}, `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"r"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}`,
			`{"model":"m","messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]},{"role":"tool","content":"r","tool_name":"f"}],"stream":false}`},
		{"parallel_tool_calls true is what Ollama does", transform.Target{}, `{"model":"m","messages":[],"parallel_tool_calls":true}`,
			`{"model":"m","messages":[],"stream":false}`},
		{"null content", transform.Target{}, `{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"x","function":{"name":"f","arguments":""}}]}]}`,
			`{"model":"m","messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]}],"stream":false}`},
		{"tool result without call", transform.Target{}, `{"model":"m","messages":[{"role":"tool","tool_call_id":"zz","content":"r"}]}`,
			`{"model":"m","messages":[{"role":"tool","content":"r"}],"stream":false}`},
		{"stop array", transform.Target{}, `{"model":"m","messages":[],"stop":["a","b"],"max_completion_tokens":3}`,
			`{"model":"m","messages":[],"options":{"num_predict":3,"stop":["a","b"]},"stream":false}`},
		{"sampling options", transform.Target{}, `{"model":"m","messages":[],"temperature":0.5,"top_p":0.9,"top_k":40,"seed":7,"frequency_penalty":1.1,"presence_penalty":0.2}`,
			`{"model":"m","messages":[],"options":{"temperature":0.5,"top_p":0.9,"top_k":40,"seed":7,"repeat_penalty":1.1,"presence_penalty":0.2},"stream":false}`},
		{"json mode", transform.Target{}, `{"model":"m","messages":[],"response_format":{"type":"json_object"}}`,
			`{"model":"m","messages":[],"format":"json","stream":false}`},
		{"think bool", transform.Target{}, `{"model":"qwen3","messages":[],"reasoning_effort":"low"}`,
			`{"model":"qwen3","messages":[],"think":true,"stream":false}`},
		{"think level for the deployment's gpt-oss", transform.Target{Model: "gpt-oss:20b"}, `{"model":"reasoner","messages":[],"reasoning_effort":"high"}`,
			`{"model":"gpt-oss:20b","messages":[],"think":"high","stream":false}`},
		{"think bool for the deployment's model", transform.Target{Model: "qwen3:8b"}, `{"model":"gpt-oss-group","messages":[],"reasoning_effort":"high"}`,
			`{"model":"qwen3:8b","messages":[],"think":true,"stream":false}`},
		{"think off", transform.Target{}, `{"model":"qwen3","messages":[],"reasoning_effort":"none"}`,
			`{"model":"qwen3","messages":[],"think":false,"stream":false}`},
		{"thinking object", transform.Target{}, `{"model":"qwen3","messages":[],"thinking":{"type":"enabled","budget_tokens":2000}}`,
			`{"model":"qwen3","messages":[],"think":true,"stream":false}`},
		{"thinking budget picks the gpt-oss level", transform.Target{Model: "gpt-oss:120b"}, `{"model":"m","messages":[],"thinking":{"type":"enabled","budget_tokens":31999}}`,
			`{"model":"gpt-oss:120b","messages":[],"think":"high","stream":false}`},
		{"thinking disabled wins over reasoning_effort", transform.Target{}, `{"model":"qwen3","messages":[],"reasoning_effort":"high","thinking":{"type":"disabled"}}`,
			`{"model":"qwen3","messages":[],"think":false,"stream":false}`},
		{"tags not sent", transform.Target{}, `{"model":"m","messages":[],"user":"u","safety_identifier":"s","store":true,"metadata":{"k":"v"},"service_tier":"flex","prompt_cache_key":"p","modalities":["text"]}`,
			`{"model":"m","messages":[],"stream":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := transform.NewOpenAIToOllamaRequest(tt.target).RequestBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Body) != tt.want {
				t.Errorf("body = %s\nwant   %s", res.Body, tt.want)
			}
		})
	}
}

func TestOllama_RequestBodyHeaders(t *testing.T) {
	body := []byte(`{"model":"m","messages":[]}`)
	res, _ := transform.NewOpenAIToOllamaRequest(transform.Target{}).RequestBody(body)
	if res.Path != "/api/chat" || len(res.SetHeaders) != 1 || !strings.Contains(strings.Join(res.RemoveHeaders, ","), "authorization") {
		t.Errorf("keyless %q %v %v", res.Path, res.SetHeaders, res.RemoveHeaders)
	}
	res, _ = transform.NewOpenAIToOllamaRequest(transform.Target{BasePath: "/ollama", APIKey: "k"}).RequestBody(body)
	if res.Path != "/ollama/api/chat" || res.SetHeaders[1] != (transform.Header{Key: "authorization", Value: "Bearer k"}) {
		t.Errorf("keyed %q %v", res.Path, res.SetHeaders)
	}
}

func TestOllama_RequestBodyInvalid(t *testing.T) {
	tests := []struct {
		name, body, wantParam string
	}{
		{"malformed", `{`, ""},
		{"not object", `"x"`, ""},
		{"no model", `{"messages":[]}`, "model"},
		{"no messages", `{"model":"m"}`, "messages"},
		{"bad role", `{"model":"m","messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
		{"web image", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "messages[0].content[0]"},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}`, "messages[0].content[0]"},
		{"bad arguments", `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[0].tool_calls[0].function.arguments"},
		{"n", `{"model":"m","messages":[],"n":3}`, "n"},
		{"effort", `{"model":"m","messages":[],"reasoning_effort":"max"}`, "reasoning_effort"},
		{"stop object", `{"model":"m","messages":[],"stop":{}}`, "stop"},
		{"tools object", `{"model":"m","messages":[],"tools":{}}`, "tools"},
		{"tool_choice required", `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}`, "tool_choice"},
		{"named tool_choice", `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`, "tool_choice"},
		{"bad tool_choice", `{"model":"m","messages":[],"tool_choice":"sometimes"}`, "tool_choice"},
		{"parallel_tool_calls false", `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}`, "parallel_tool_calls"},
		{"seed float", `{"model":"m","messages":[],"seed":1.5}`, "seed"},
		{"format", `{"model":"m","messages":[],"response_format":{"type":"xml"}}`, "response_format"},
		{"adaptive thinking", `{"model":"m","messages":[],"thinking":{"type":"adaptive"}}`, "thinking.type"},
		{"thinking without budget", `{"model":"m","messages":[],"thinking":{"type":"enabled","budget_tokens":0}}`, "thinking.budget_tokens"},
		{"web_search_options", `{"model":"m","messages":[],"web_search_options":{"search_context_size":"low"}}`, "web_search_options"},
		{"verbosity", `{"model":"m","messages":[],"verbosity":"medium"}`, "verbosity"},
		{"prediction", `{"model":"m","messages":[],"prediction":{"type":"content","content":"x"}}`, "prediction"},
		{"audio output", `{"model":"m","messages":[],"modalities":["audio","text"]}`, "modalities"},
		{"modalities not an array", `{"model":"m","messages":[],"modalities":"text"}`, "modalities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transform.NewOpenAIToOllamaRequest(transform.Target{}).RequestBody([]byte(tt.body))
			var ie *transform.InvalidRequestError
			if !errors.Is(err, transform.ErrInvalidRequest) || !errors.As(err, &ie) || ie.Param != tt.wantParam {
				t.Errorf("err = %v, want param %q", err, tt.wantParam)
			}
		})
	}
}

func TestOllama_ResponseBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "ollama", "response") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "ollama", name+".response.json"))
			res, err := transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{Created: created}).ResponseBody(body)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "ollama", name+".response.golden.json"), indentJSON(t, res.Body))
		})
	}
}

func TestOllama_ResponseBodyFields(t *testing.T) {
	tests := []struct {
		name       string
		wantText   string
		wantFinish string
		wantCalls  string
		wantModel  string
		wantUsage  transform.Usage
	}{
		{"text", `Hi "there", hi.`, "stop", "", "llama3.2", transform.Usage{InputTokens: 34, OutputTokens: 12}},
		{"tool_calls", "", "tool_calls", `call_0 get_current_weather {"format":"celsius","location":"Paris, FR"};call_1 get_time {};`, "llama3.2", transform.Usage{InputTokens: 122, OutputTokens: 33}},
		{"thinking", "Rayleigh", "length", "", "qwen3:8b", transform.Usage{InputTokens: 15, OutputTokens: 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "ollama", tt.name+".response.json"))
			res, err := transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{Created: created}).ResponseBody(body)
			if err != nil {
				t.Fatal(err)
			}
			var c openai.ChatCompletion
			if err := json.Unmarshal(res.Body, &c); err != nil {
				t.Fatal(err)
			}
			ch := c.Choices[0]
			calls := ""
			for _, tc := range ch.Message.ToolCalls {
				calls += tc.ID + " " + tc.Function.Name + " " + tc.Function.Arguments + ";"
			}
			if ch.Message.Content != tt.wantText || string(ch.FinishReason) != tt.wantFinish || calls != tt.wantCalls {
				t.Errorf("content %q finish %q calls %q", ch.Message.Content, ch.FinishReason, calls)
			}
			if c.Model != tt.wantModel || res.Model != tt.wantModel || c.Created != created || c.ID == "" {
				t.Errorf("envelope %q %q %d %q", c.Model, res.Model, c.Created, c.ID)
			}
			if res.Usage != tt.wantUsage || c.Usage.CompletionTokens != tt.wantUsage.OutputTokens {
				t.Errorf("usage %+v / %+v", res.Usage, c.Usage)
			}
		})
	}
}

func TestOllama_ResponseBodyBad(t *testing.T) {
	tr := transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{})
	for _, body := range []string{`nope`, `{"done":true}`} {
		if _, err := tr.ResponseBody([]byte(body)); !errors.Is(err, transform.ErrMalformedResponse) {
			t.Errorf("%s: %v", body, err)
		}
	}
	_, err := tr.ResponseBody([]byte(`{"error":"model is loading"}`))
	var pe *transform.ProviderError
	if !errors.As(err, &pe) || pe.Message != "model is loading" {
		t.Errorf("error in 2xx body: %v", err)
	}
}

func TestOllama_StreamChunkGolden(t *testing.T) {
	checkStreamGoldens(t, "ollama", transform.NewOpenAIToOllamaResponse)
}

func TestOllama_StreamChunkFields(t *testing.T) {
	opts := transform.ResponseOptions{Stream: true, IncludeUsage: true, Created: created}
	t.Run("text", func(t *testing.T) {
		chunks, last := decodeChunks(t, transform.NewOpenAIToOllamaResponse(opts), filepath.Join("testdata", "ollama", "text.stream.json"))
		var text strings.Builder
		for _, c := range chunks {
			if len(c.Choices) > 0 {
				text.WriteString(c.Choices[0].Delta.Content)
			}
		}
		fin := chunks[len(chunks)-2].Choices[0].FinishReason
		u := chunks[len(chunks)-1].Usage
		if text.String() != `The sky is "blue".` || fin != "stop" || u.PromptTokens != 26 || u.CompletionTokens != 282 {
			t.Errorf("text %q finish %q usage %+v", text.String(), fin, u)
		}
		if !last.Done || last.Model != "llama3.2" || last.Usage != (transform.Usage{InputTokens: 26, OutputTokens: 282}) {
			t.Errorf("last %+v", last)
		}
	})
	t.Run("tool calls", func(t *testing.T) {
		chunks, _ := decodeChunks(t, transform.NewOpenAIToOllamaResponse(opts), filepath.Join("testdata", "ollama", "tool_calls.stream.json"))
		calls := ""
		finish := ""
		for _, c := range chunks {
			if len(c.Choices) == 0 {
				continue
			}
			finish += c.Choices[0].FinishReason
			for _, tc := range c.Choices[0].Delta.ToolCalls {
				calls += tc.ID + " " + tc.Function.Name + " " + tc.Function.Arguments + ";"
				if tc.Index != int64(strings.Count(calls, ";")-1) {
					t.Errorf("index %d", tc.Index)
				}
			}
		}
		if calls != `call_0 get_weather {"city":"Paris"};call_1 get_time {"tz":"Europe/Paris"};` || finish != "tool_calls" {
			t.Errorf("calls %q finish %q", calls, finish)
		}
	})
	t.Run("error", func(t *testing.T) {
		_, last := decodeChunks(t, transform.NewOpenAIToOllamaResponse(opts), filepath.Join("testdata", "ollama", "error.stream.json"))
		if last.Err == nil || !strings.Contains(last.Err.Message, "unexpected EOF") || last.Done {
			t.Errorf("last %+v", last)
		}
	})
}

func TestOllama_StreamChunkMalformed(t *testing.T) {
	tr := transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{Stream: true})
	res, err := tr.StreamChunk([]byte("{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":false}\n<html>\n"), false)
	if !errors.Is(err, transform.ErrMalformedResponse) || !bytes.Contains(res.Body, []byte(`"content":"a"`)) || !bytes.Contains(res.Body, []byte(`{"error"`)) {
		t.Errorf("err %v body %s", err, res.Body)
	}
	res, _ = tr.StreamChunk([]byte("{\"done\":true}\n"), true)
	if len(res.Body) != 0 || res.Done {
		t.Errorf("input after the error was translated: %s", res.Body)
	}
	// A final line without a newline still counts.
	tr = transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{Stream: true})
	res, err = tr.StreamChunk([]byte(`{"model":"m","message":{"content":""},"done":true,"eval_count":2}`), true)
	if err != nil || !res.Done || res.Usage.OutputTokens != 2 {
		t.Errorf("unterminated final line: %+v %v", res, err)
	}
}

func TestOllama_ErrorBody(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   transform.ProviderError
	}{
		{"model not found", 404, `{"error":"model \"llama9\" not found, try pulling it first"}`,
			transform.ProviderError{Status: 404, Type: transform.ErrorTypeNotFound, Message: `model "llama9" not found, try pulling it first`}},
		{"bad request", 400, `{"error":"invalid options: foo"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Message: "invalid options: foo"}},
		{"server", 500, `{"error":"llama runner process has terminated: signal: killed"}`,
			transform.ProviderError{Status: 500, Type: transform.ErrorTypeServer, Message: "llama runner process has terminated: signal: killed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body)); *got != tt.want {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func FuzzOllama_RequestBody(f *testing.F) {
	addFixtures(f, "ollama", "request")
	addFixtures(f, "anthropic", "request")
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		tr := transform.NewOpenAIToOllamaRequest(transform.Target{Model: "llama"})
		res, err := tr.RequestBody(body)
		if err != nil {
			if !errors.Is(err, transform.ErrInvalidRequest) {
				t.Fatalf("error is not an invalid request: %v", err)
			}
			return
		}
		if !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		again, _ := tr.RequestBody(body)
		if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(body, pristine) {
			t.Fatal("translation is not repeatable over an untouched body")
		}
	})
}

func FuzzOllama_ResponseBody(f *testing.F) {
	addFixtures(f, "ollama", "response")
	f.Fuzz(func(t *testing.T, body []byte) {
		tr := transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{Created: created})
		res, err := tr.ResponseBody(body)
		if err == nil && !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		tr.ErrorBody(500, body)
	})
}

func FuzzOllama_StreamChunk(f *testing.F) {
	addFixtures(f, "ollama", "stream")
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		opts := transform.ResponseOptions{Stream: true, IncludeUsage: cut%2 == 0, Created: created}
		got := translateSplit(transform.NewOpenAIToOllamaResponse(opts), stream, cut)
		for _, d := range sseDataLines(got) {
			if d != "[DONE]" && !json.Valid([]byte(d)) {
				t.Fatalf("invalid event %s from %q", d, stream)
			}
		}
		if whole := translateSplit(transform.NewOpenAIToOllamaResponse(opts), stream, len(stream)); !bytes.Equal(got, whole) {
			t.Fatalf("output depends on the cut:\n split: %q\n whole: %q", got, whole)
		}
	})
}

func BenchmarkOllama_RequestBody(b *testing.B) {
	for _, path := range []string{filepath.Join("ollama", "tools.request.json"), filepath.Join("anthropic", "chat_2k.request.json")} {
		body := readFile(b, filepath.Join("testdata", path))
		b.Run(strings.TrimSuffix(filepath.Base(path), ".request.json"), func(b *testing.B) {
			tr := transform.NewOpenAIToOllamaRequest(transform.Target{})
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := tr.RequestBody(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOllama_ResponseBody(b *testing.B) {
	body := readFile(b, filepath.Join("testdata", "ollama", "tool_calls.response.json"))
	tr := transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{Created: created})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.ResponseBody(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOllama_StreamChunk measures one NDJSON content line per
// operation.
func BenchmarkOllama_StreamChunk(b *testing.B) {
	line := []byte(`{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":" sky"},"done":false}` + "\n")
	tr := transform.NewOpenAIToOllamaResponse(transform.ResponseOptions{Stream: true, Created: created})
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := tr.StreamChunk(line, false); err != nil {
			b.Fatal(err)
		}
	}
}
