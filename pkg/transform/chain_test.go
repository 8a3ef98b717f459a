package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func TestChain_Unsupported(t *testing.T) {
	if _, err := transform.NewRequestTranslator(transform.APIMessages, "nope", transform.Target{}); !errors.Is(err, transform.ErrUnsupported) {
		t.Errorf("request: err = %v", err)
	}
	if _, err := transform.NewResponseTranslator(transform.APIMessages, "nope", transform.ResponseOptions{}); !errors.Is(err, transform.ErrUnsupported) {
		t.Errorf("response: err = %v", err)
	}
}

func TestChain_MessagesAnthropicRequest(t *testing.T) {
	body := readFile(t, messagesPath("claude_code", "request"))
	tests := []struct {
		name      string
		target    transform.Target
		wantPath  string
		wantModel string // "" when the body is forwarded unchanged
		wantKey   bool
	}{
		{"same model, no copy", transform.Target{Model: "claude-sonnet-4-5-20250929", APIKey: "k"}, "/v1/messages", "", true},
		{"client model kept", transform.Target{}, "/v1/messages", "", false},
		{"renamed model", transform.Target{Model: "claude-opus-4-1", BasePath: "/anthropic", APIKey: "k"}, "/anthropic/v1/messages", "claude-opus-4-1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pristine := bytes.Clone(body)
			res, err := newMessagesRequest(t, transform.ProviderAnthropic, tt.target).RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.wantPath || !res.Stream {
				t.Errorf("path %q stream %v", res.Path, res.Stream)
			}
			switch {
			case tt.wantModel == "" && res.Body != nil:
				t.Errorf("body copied: %s", res.Body)
			case tt.wantModel != "":
				var got, want map[string]any
				if err := json.Unmarshal(res.Body, &got); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(body, &want); err != nil {
					t.Fatal(err)
				}
				want["model"] = tt.wantModel
				if !reflect.DeepEqual(got, want) {
					t.Errorf("more than the model changed:\n%s", res.Body)
				}
			}
			if !bytes.Equal(body, pristine) {
				t.Error("input body was modified")
			}
			headers := map[string]string{}
			for _, h := range res.SetHeaders {
				headers[h.Key] = h.Value
			}
			if key, ok := headers["x-api-key"]; headers["anthropic-version"] != "2023-06-01" || ok != tt.wantKey || ok && key != tt.target.APIKey {
				t.Errorf("set headers %v", res.SetHeaders)
			}
			if !slices.Contains(res.RemoveHeaders, "authorization") || slices.Contains(res.RemoveHeaders, "x-api-key") == tt.wantKey ||
				slices.Contains(res.RemoveHeaders, "anthropic-beta") {
				t.Errorf("remove headers %v", res.RemoveHeaders)
			}
		})
	}
	if _, err := newMessagesRequest(t, transform.ProviderAnthropic, transform.Target{}).RequestBody([]byte(`[1]`)); !errors.Is(err, transform.ErrInvalidRequest) {
		t.Errorf("non-object body: err = %v", err)
	}
}

func TestChain_MessagesAnthropicResponse(t *testing.T) {
	tr := newMessagesResponse(t, transform.ProviderAnthropic, transform.ResponseOptions{})
	res, err := tr.ResponseBody(readFile(t, filepath.Join("testdata", "anthropic", "text.response.json")))
	if err != nil {
		t.Fatal(err)
	}
	want := transform.Usage{InputTokens: 4221, OutputTokens: 14, CachedInputTokens: 3000, CacheCreationInputTokens: 1200}
	if res.Body != nil || res.Usage != want || res.Model != "claude-sonnet-4-5-20250929" {
		t.Errorf("result = %+v", res)
	}
	_, err = tr.ResponseBody([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	var pe *transform.ProviderError
	if !errors.As(err, &pe) || pe.Status != 503 {
		t.Errorf("error in 2xx: err = %v", err)
	}
	for _, bad := range []string{`<html>`, `{"type":"completion"}`} {
		if _, err := tr.ResponseBody([]byte(bad)); !errors.Is(err, transform.ErrMalformedResponse) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	e := tr.ErrorBody(529, []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	if got := string(transform.EncodeAnthropicError(e)); e.Status != 503 || got != `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}` {
		t.Errorf("status %d body %s", e.Status, got)
	}
}

// TestChain_MessagesAnthropicStreamZeroCopy replays every Anthropic stream
// fixture through the pass-through, as recorded and split at every
// position: each piece comes back as itself (the same memory, no copy),
// and usage, model, end and errors are read all the same.
func TestChain_MessagesAnthropicStreamZeroCopy(t *testing.T) {
	for _, name := range fixtures(t, "anthropic", "stream") {
		t.Run(name, func(t *testing.T) {
			pieces := streamPieces(t, filepath.Join("testdata", "anthropic", name+".stream.json"))
			whole := bytes.Join(pieces, nil)
			var want transform.StreamResult
			for i, run := range append([][][]byte{pieces}, splitEverywhere(whole)...) {
				tr := newMessagesResponse(t, transform.ProviderAnthropic, transform.ResponseOptions{Stream: true})
				var last transform.StreamResult
				for j, p := range run {
					res, err := tr.StreamChunk(p, j == len(run)-1)
					if err != nil {
						t.Fatal(err)
					}
					if len(res.Body) != len(p) || len(p) > 0 && &res.Body[0] != &p[0] {
						t.Fatalf("piece %d of run %d was copied or changed", j, i)
					}
					last = res
				}
				if i == 0 {
					want = last
				} else if last.Usage != want.Usage || last.Done != want.Done || last.Model != want.Model || !reflect.DeepEqual(last.Err, want.Err) {
					t.Fatalf("split run %d: %+v, want %+v", i, last, want)
				}
			}
			if want.Usage.InputTokens == 0 || want.Model != "claude-sonnet-4-5-20250929" {
				t.Errorf("usage %+v model %q", want.Usage, want.Model)
			}
			if name == "error" {
				if want.Err == nil || want.Err.Type != transform.ErrorTypeOverloaded || want.Done {
					t.Errorf("error stream: %+v", want)
				}
			} else if want.Err != nil || want.Done != bytes.Contains(whole, []byte(`"message_stop"`)) {
				t.Errorf("err %v done %v", want.Err, want.Done)
			}
		})
	}
	t.Run("usage", func(t *testing.T) {
		pieces := streamPieces(t, filepath.Join("testdata", "anthropic", "text.stream.json"))
		_, last := runStream(t, newMessagesResponse(t, transform.ProviderAnthropic, transform.ResponseOptions{Stream: true}), pieces)
		want := transform.Usage{InputTokens: 145, OutputTokens: 15, CachedInputTokens: 100, CacheCreationInputTokens: 20}
		if last.Usage != want || !last.Done {
			t.Errorf("usage %+v done %v", last.Usage, last.Done)
		}
	})
}

func BenchmarkChain_MessagesAnthropicStreamChunk(b *testing.B) {
	pieces := streamPieces(b, filepath.Join("testdata", "anthropic", "tool_use.stream.json"))
	tr := newMessagesResponse(b, transform.ProviderAnthropic, transform.ResponseOptions{Stream: true})
	for _, p := range pieces[:5] {
		if _, err := tr.StreamChunk(p, false); err != nil {
			b.Fatal(err)
		}
	}
	ev := pieces[6]
	b.ReportAllocs()
	b.SetBytes(int64(len(ev)))
	for b.Loop() {
		if _, err := tr.StreamChunk(ev, false); err != nil {
			b.Fatal(err)
		}
	}
}

// viaChat returns the Messages API translators that reach Anthropic
// through chat completions, for round trips.
func viaChat(t testing.TB, o transform.ResponseOptions) (transform.RequestTranslator, transform.ResponseTranslator) {
	t.Helper()
	req, resp, err := transform.NewMessagesViaChat(transform.ProviderAnthropic, transform.Target{APIKey: "k"}, o)
	if err != nil {
		t.Fatal(err)
	}
	return req, resp
}

// TestChain_MessagesRoundTripRequest sends Anthropic requests through chat
// completions and back to Anthropic's format, and expects the subset chat
// can carry to come back unchanged: system text and cache breakpoints,
// text, tool calls and results, tools, tool_choice and the sampling
// fields.
func TestChain_MessagesRoundTripRequest(t *testing.T) {
	for _, name := range []string{"claude_code", "options", "chat_2k"} {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, messagesPath(name, "request"))
			req, _ := viaChat(t, transform.ResponseOptions{})
			res, err := req.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != "/v1/messages" || slices.Contains(res.RemoveHeaders, "anthropic-version") || !slices.Contains(res.RemoveHeaders, "anthropic-beta") {
				t.Errorf("path %q set %v remove %v", res.Path, res.SetHeaders, res.RemoveHeaders)
			}
			var orig, back anthropic.MessageNewParams
			if err := json.Unmarshal(in, &orig); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(res.Body, &back); err != nil {
				t.Fatalf("%v: %s", err, res.Body)
			}
			if back.Model != orig.Model || back.MaxTokens != orig.MaxTokens || back.Temperature != orig.Temperature || back.TopP != orig.TopP ||
				!slices.Equal(back.StopSequences, orig.StopSequences) || back.Metadata.UserID != orig.Metadata.UserID {
				t.Errorf("fields: got %s", res.Body)
			}
			if got, want := systemText(back.System), systemText(orig.System); got != want {
				t.Errorf("system %q, want %q", got, want)
			}
			if got, want := cacheBreakpoints(t, res.Body), cacheBreakpoints(t, in); got != want {
				t.Errorf("%d cache breakpoints, want %d", got, want)
			}
			if got, want := conversation(back.Messages), conversation(orig.Messages); !reflect.DeepEqual(got, want) {
				t.Errorf("conversation:\n got %q\nwant %q", got, want)
			}
			if len(back.Tools) != len(orig.Tools) {
				t.Fatalf("%d tools, want %d", len(back.Tools), len(orig.Tools))
			}
			for i := range orig.Tools {
				o, b := orig.Tools[i].OfTool, back.Tools[i].OfTool
				if b.Name != o.Name || b.Description != o.Description || !reflect.DeepEqual(b.InputSchema.Properties, o.InputSchema.Properties) ||
					!slices.Equal(b.InputSchema.Required, o.InputSchema.Required) {
					t.Errorf("tool %d = %+v, want %+v", i, b, o)
				}
			}
			if got, want := toolChoice(back.ToolChoice), toolChoice(orig.ToolChoice); got != want {
				t.Errorf("tool_choice %s, want %s", got, want)
			}
		})
	}
}

func systemText(blocks []anthropic.TextBlockParam) string {
	var s []string
	for _, b := range blocks {
		s = append(s, b.Text)
	}
	return strings.Join(s, "\n\n")
}

// cacheBreakpoints counts cache_control objects anywhere in a body.
func cacheBreakpoints(t *testing.T, body []byte) int {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	var count func(any) int
	count = func(v any) int {
		n := 0
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "cache_control" {
					n++
				}
				n += count(x)
			}
		case []any:
			for _, x := range v {
				n += count(x)
			}
		}
		return n
	}
	return count(v)
}

// conversation renders messages as the turns chat can carry: consecutive
// text joined per turn, tool calls, tool results (is_error as the text
// prefix chat gives it) and images. Thinking is left out: chat providers
// get none. Chat tool messages carry only text, so images of tool results
// are rendered where chat puts them: after the results, before the rest of
// the user turn.
func conversation(msgs []anthropic.MessageParam) []string {
	var out []string
	for _, m := range msgs {
		var text []string
		resultImages := 0
		flush := func() {
			for ; resultImages > 0; resultImages-- {
				out = append(out, "image")
			}
			if len(text) > 0 {
				out = append(out, string(m.Role)+": "+strings.Join(text, ""))
				text = nil
			}
		}
		for _, b := range m.Content {
			switch {
			case b.OfText != nil:
				if resultImages > 0 {
					flush()
				}
				text = append(text, b.OfText.Text)
			case b.OfToolUse != nil:
				flush()
				in, _ := json.Marshal(b.OfToolUse.Input)
				out = append(out, "tool_use "+b.OfToolUse.ID+" "+b.OfToolUse.Name+" "+string(in))
			case b.OfToolResult != nil:
				r := "tool_result " + b.OfToolResult.ToolUseID + ": "
				if b.OfToolResult.IsError.Value {
					r += "Error: "
				}
				for _, c := range b.OfToolResult.Content {
					if c.OfText != nil {
						r += c.OfText.Text
					}
					if c.OfImage != nil {
						resultImages++
					}
				}
				out = append(out, r)
			case b.OfImage != nil:
				flush()
				out = append(out, "image")
			}
		}
		flush()
	}
	return out
}

func toolChoice(tc anthropic.ToolChoiceUnionParam) string {
	b, _ := json.Marshal(tc)
	return string(b)
}

// messageSummary is what a message says, independent of how its content is
// split into blocks and of the thinking signature, which chat cannot carry.
type messageSummary struct {
	Text, Thinking string
	Tools          []string
	Stop           anthropic.StopReason
	Input, Output  int64
	Read, Write    int64
}

func summarize(m anthropic.Message) messageSummary {
	s := messageSummary{
		Stop:  m.StopReason,
		Input: m.Usage.InputTokens, Output: m.Usage.OutputTokens,
		Read: m.Usage.CacheReadInputTokens, Write: m.Usage.CacheCreationInputTokens,
	}
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			s.Text += b.Text
		case "thinking":
			s.Thinking += b.Thinking
		case "tool_use":
			var in any
			if err := json.Unmarshal(b.Input, &in); err != nil {
				in = string(b.Input)
			}
			norm, _ := json.Marshal(in)
			s.Tools = append(s.Tools, b.ID+" "+b.Name+" "+string(norm))
		}
	}
	return s
}

// TestChain_MessagesRoundTripResponse translates Anthropic messages into
// chat completions and back, and expects the same message.
func TestChain_MessagesRoundTripResponse(t *testing.T) {
	for _, name := range []string{"text", "tool_use", "thinking", "max_tokens"} {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, filepath.Join("testdata", "anthropic", name+".response.json"))
			_, resp := viaChat(t, transform.ResponseOptions{})
			res, err := resp.ResponseBody(in)
			if err != nil {
				t.Fatal(err)
			}
			var orig, back anthropic.Message
			if err := json.Unmarshal(in, &orig); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(res.Body, &back); err != nil {
				t.Fatal(err)
			}
			if back.ID != orig.ID || back.Model != orig.Model {
				t.Errorf("id %q model %q", back.ID, back.Model)
			}
			if got, want := summarize(back), summarize(orig); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestChain_MessagesRoundTripStream replays Anthropic streams through chat
// chunks and back, whole and split at every position, and expects the
// message the SDK accumulates from the original.
func TestChain_MessagesRoundTripStream(t *testing.T) {
	for _, name := range []string{"text", "tool_use", "thinking", "error"} {
		t.Run(name, func(t *testing.T) {
			pieces := streamPieces(t, filepath.Join("testdata", "anthropic", name+".stream.json"))
			whole := bytes.Join(pieces, nil)
			orig, origErr := accumulateLoose(t, whole)
			opts := transform.ResponseOptions{Stream: true}
			_, resp := viaChat(t, opts)
			want, last := runStream(t, resp, pieces)
			back, backErr := accumulate(t, want)
			got, exp := summarize(back), summarize(orig)
			if origErr != nil {
				// Chat streams report usage only at their end, which a
				// failed stream never reaches.
				exp.Input, exp.Output = 0, 0
			}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, exp)
			}
			if (backErr == nil) != (origErr == nil) || backErr != nil && (backErr.Error.Type != origErr.Error.Type || backErr.Error.Message != origErr.Error.Message) {
				t.Errorf("error %+v, want %+v", backErr, origErr)
			}
			if origErr != nil && (last.Err == nil || last.Err.Status != 503) {
				t.Errorf("Err = %+v", last.Err)
			}
			if wantUsage := origUsage(orig); last.Usage != wantUsage && origErr == nil {
				t.Errorf("usage %+v, want %+v", last.Usage, wantUsage)
			}
			for _, run := range splitEverywhere(whole) {
				_, resp := viaChat(t, opts)
				if got, _ := runStream(t, resp, run); !bytes.Equal(got, want) {
					t.Fatalf("split replay differs:\n got: %s\nwant: %s", got, want)
				}
			}
		})
	}
}

func origUsage(m anthropic.Message) transform.Usage {
	u := m.Usage
	return transform.Usage{
		InputTokens:              u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		OutputTokens:             u.OutputTokens,
		CachedInputTokens:        u.CacheReadInputTokens,
		CacheCreationInputTokens: u.CacheCreationInputTokens,
	}
}

// accumulateLoose accumulates a stream from Anthropic itself, which may
// carry pings and content after an error.
func accumulateLoose(t *testing.T, stream []byte) (anthropic.Message, *anthropic.ErrorResponse) {
	t.Helper()
	var m anthropic.Message
	for _, ev := range parseSSE(t, stream) {
		if ev.name == "error" {
			var e anthropic.ErrorResponse
			if err := json.Unmarshal(ev.data, &e); err != nil {
				t.Fatal(err)
			}
			return m, &e
		}
		var u anthropic.MessageStreamEventUnion
		if err := json.Unmarshal(ev.data, &u); err != nil {
			t.Fatal(err)
		}
		if err := m.Accumulate(u); err != nil {
			t.Fatal(err)
		}
	}
	return m, nil
}

// TestChain_MessagesUnsupportedParam checks that a Messages request asking
// for what the chat provider cannot do is refused, naming the chat
// parameter, or goes on without it under drop_params.
func TestChain_MessagesUnsupportedParam(t *testing.T) {
	const tools = `"tools":[{"name":"lookup","input_schema":{"type":"object"}}]`
	tests := []struct {
		name     string
		provider transform.Provider
		body     string
		param    string
	}{
		{"one tool call at a time on gemini", transform.ProviderGemini,
			`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],` + tools + `,"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`,
			"parallel_tool_calls"},
		{"forced tool on ollama", transform.ProviderOllama,
			`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],` + tools + `,"tool_choice":{"type":"any"}}`,
			"tool_choice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newMessagesRequest(t, tt.provider, transform.Target{}).RequestBody([]byte(tt.body))
			var ie *transform.InvalidRequestError
			if !errors.As(err, &ie) || ie.Param != tt.param {
				t.Fatalf("err = %v, want a refusal of %s", err, tt.param)
			}
			res, err := newMessagesRequest(t, tt.provider, transform.Target{DropParams: true}).RequestBody([]byte(tt.body))
			if err != nil || !bytes.Contains(res.Body, []byte("lookup")) {
				t.Errorf("with drop_params: err = %v, body %s", err, res.Body)
			}
		})
	}
}

// TestChain_MessagesProviderContext: what a provider's response lacks and
// its chat translator recovers from the options (Bedrock's and Cohere's
// model, Bedrock's id, the client's names of tools Bedrock renamed) also
// reaches Messages clients.
func TestChain_MessagesProviderContext(t *testing.T) {
	request := `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"weather?"}],` +
		`"tools":[{"name":"weather.get","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]}`
	tests := []struct {
		name     string
		provider transform.Provider
		body     string
		wantID   string
		wantTool string
	}{
		{"bedrock", transform.ProviderBedrock,
			`{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"weather_get","input":{"city":"Paris"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":5,"outputTokens":3,"totalTokens":8}}`,
			"msg_req1", "weather.get"},
		{"cohere", transform.ProviderCohere,
			`{"id":"co1","message":{"role":"assistant","content":[{"type":"text","text":"hi"}]},"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":1,"output_tokens":1},"tokens":{"input_tokens":1,"output_tokens":1}}}`,
			"msg_co1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newMessagesResponse(t, tt.provider, transform.ResponseOptions{Model: "the-model", ID: "chatcmpl-req1", Request: []byte(request)})
			res, err := tr.ResponseBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			var m anthropic.Message
			if err := json.Unmarshal(res.Body, &m); err != nil {
				t.Fatalf("%s: %v", res.Body, err)
			}
			if m.Model != "the-model" || m.ID != tt.wantID {
				t.Errorf("id %q model %q", m.ID, m.Model)
			}
			if tt.wantTool != "" && (len(m.Content) != 1 || m.Content[0].Name != tt.wantTool) {
				t.Errorf("content %s", res.Body)
			}
		})
	}
}

// TestChain_MessagesThinking: a Messages thinking object reaches Cohere
// and Ollama as the chain carries it to every chat provider, as a
// reasoning_effort level, which Cohere turns into a thinking budget and
// Ollama into think.
func TestChain_MessagesThinking(t *testing.T) {
	const head = `{"model":"m","max_tokens":20000,"messages":[{"role":"user","content":"why?"}],`
	tests := []struct {
		name     string
		provider transform.Provider
		target   transform.Target
		body     string
		path     string
		want     string
	}{
		{"cohere think hard", transform.ProviderCohere, transform.Target{},
			head + `"thinking":{"type":"enabled","budget_tokens":10000}}`, "thinking", `{"type":"enabled","token_budget":2048}`},
		{"cohere ultrathink", transform.ProviderCohere, transform.Target{},
			head + `"thinking":{"type":"enabled","budget_tokens":31999}}`, "thinking", `{"type":"enabled","token_budget":4096}`},
		{"ollama", transform.ProviderOllama, transform.Target{Model: "qwen3:8b"},
			head + `"thinking":{"type":"enabled","budget_tokens":4000}}`, "think", `true`},
		{"ollama gpt-oss", transform.ProviderOllama, transform.Target{Model: "gpt-oss:20b"},
			head + `"thinking":{"type":"enabled","budget_tokens":10000}}`, "think", `"medium"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newMessagesRequest(t, tt.provider, tt.target).RequestBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(res.Body, tt.path).Raw; got != tt.want {
				t.Errorf("%s = %s, want %s in %s", tt.path, got, tt.want, res.Body)
			}
		})
	}
}
