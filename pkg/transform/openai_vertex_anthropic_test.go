package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// The fixtures in testdata/vertex_anthropic are hand-written in the wire
// format Claude on Vertex AI uses, which is Anthropic's.

var vertexAnthropicTarget = transform.Target{
	Model:   "claude-sonnet-4-5@20250929",
	APIKey:  "must-not-be-sent",
	Project: "proj-1",
	Region:  "us-east5",
}

const vertexAnthropicModelPath = "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"

func newVertexAnthropicRequest(t testing.TB, target transform.Target) transform.RequestTranslator {
	t.Helper()
	tr, err := transform.NewRequestTranslator(transform.APIChatCompletions, transform.ProviderVertexAI, target)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newVertexAnthropicResponse(t testing.TB, opts transform.ResponseOptions) transform.ResponseTranslator {
	t.Helper()
	if opts.Model == "" {
		opts.Model = vertexAnthropicTarget.Model
	}
	tr, err := transform.NewResponseTranslator(transform.APIChatCompletions, transform.ProviderVertexAI, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// checkVertexAnthropicHeaders checks that no Anthropic or Gemini
// credential or version header is set, and that all of them are removed
// (Envoy hands each attempt the headers the previous attempt left).
func checkVertexAnthropicHeaders(t *testing.T, res transform.RequestResult) {
	t.Helper()
	for _, h := range res.SetHeaders {
		if h.Key != "content-type" {
			t.Errorf("sets header %s: %q", h.Key, h.Value)
		}
	}
	for _, h := range []string{"x-api-key", "anthropic-version", "x-goog-api-key", "api-key", "authorization"} {
		if !slices.Contains(res.RemoveHeaders, h) {
			t.Errorf("does not remove %s: %q", h, res.RemoveHeaders)
		}
	}
}

// TestOpenAIToVertexAnthropic_RequestBodyGolden translates every request
// fixture, compares it with its golden file, checks that the Anthropic SDK
// accepts the body but for the model, which only the path names, and that
// it is the Anthropic translator's body with model traded for
// anthropic_version.
func TestOpenAIToVertexAnthropic_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "vertex_anthropic", "request") {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, filepath.Join("testdata", "vertex_anthropic", name+".request.json"))
			pristine := bytes.Clone(in)
			tr := newVertexAnthropicRequest(t, vertexAnthropicTarget)
			res, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "vertex_anthropic", name+".request.golden.json"), requestGolden(t, res))

			var params anthropic.MessageNewParams
			if err := json.Unmarshal(res.Body, &params); err != nil {
				t.Fatalf("anthropic SDK rejects the body: %v", err)
			}
			if params.Model != "" || params.MaxTokens <= 0 || len(params.Messages) == 0 {
				t.Errorf("model %q, max_tokens %d, %d messages", params.Model, params.MaxTokens, len(params.Messages))
			}
			if v := gjson.GetBytes(res.Body, "anthropic_version"); v.Str != "vertex-2023-10-16" {
				t.Errorf("anthropic_version = %s", v.Raw)
			}
			if gjson.GetBytes(res.Body, "model").Exists() {
				t.Error("body names a model")
			}
			stream := gjson.GetBytes(in, "stream").Bool()
			wantPath := vertexAnthropicModelPath + ":rawPredict"
			if stream {
				wantPath = vertexAnthropicModelPath + ":streamRawPredict"
			}
			if res.Path != wantPath || res.Stream != stream || gjson.GetBytes(res.Body, "stream").Bool() != stream {
				t.Errorf("path %q stream %v, body stream %v", res.Path, res.Stream, gjson.GetBytes(res.Body, "stream").Bool())
			}
			checkVertexAnthropicHeaders(t, res)

			// Composition: the Anthropic translator's body, model traded
			// for anthropic_version.
			target := vertexAnthropicTarget
			target.Project = ""
			plain, err := newAnthropicRequest(t, target).RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := sjson.DeleteBytes(plain.Body, "model")
			want, _ = sjson.SetBytes(want, "anthropic_version", "vertex-2023-10-16")
			if !jsonEqual(t, res.Body, want) {
				t.Errorf("body differs from the Anthropic translator's:\n got: %s\nwant: %s", res.Body, want)
			}

			again, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Body, res.Body) || again.Path != res.Path {
				t.Error("second translation differs")
			}
			if !bytes.Equal(in, pristine) {
				t.Error("input body was modified")
			}
		})
	}
}

// jsonEqual reports whether two JSON documents hold the same values, key
// order aside.
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return reflect.DeepEqual(va, vb)
}

// TestOpenAIToVertexAnthropic_Body covers the body rewrite on every path:
// model first with room in the buffer or without, and any other layout.
func TestOpenAIToVertexAnthropic_Body(t *testing.T) {
	const version = `"anthropic_version":"vertex-2023-10-16"`
	tests := []struct {
		name, in, model, want string
		extraCap              int
	}{
		{"model first, in place", `{"model":"claude-a-very-long-model-name@1","max_tokens":5}`, "claude-a-very-long-model-name@1", `{` + version + `,"max_tokens":5}`, 0},
		{"model first, grown in place", `{"model":"c","max_tokens":5}`, "c", `{` + version + `,"max_tokens":5}`, 64},
		{"model first, no room", `{"model":"c","max_tokens":5}`, "c", `{` + version + `,"max_tokens":5}`, 0},
		{"escaped model", `{"model":"claude\u002fx","max_tokens":5}`, "claude/x", `{` + version + `,"max_tokens":5}`, 0},
		{"model later", `{"max_tokens":5,"model":"claude-b"}`, "claude-b", `{"max_tokens":5,` + version + `}`, 0},
		{"model alone", `{"model":"claude-c"}`, "claude-c", `{` + version + `}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, len(tt.in), len(tt.in)+tt.extraCap)
			copy(buf, tt.in)
			model, out, err := transform.VertexAnthropicBody(buf)
			if err != nil {
				t.Fatal(err)
			}
			if model != tt.model || !bytes.Equal(out, []byte(tt.want)) {
				t.Errorf("model %q body %s, want %q %s", model, out, tt.model, tt.want)
			}
		})
	}
	for _, in := range []string{`{"max_tokens":5}`, `{"model":1}`, `{"model":""}`} {
		if _, _, err := transform.VertexAnthropicBody([]byte(in)); !errors.Is(err, transform.ErrInvalidRequest) {
			t.Errorf("%s: err = %v", in, err)
		}
	}
}

func TestOpenAIToVertexAnthropic_RequestBodyFields(t *testing.T) {
	in := readFile(t, filepath.Join("testdata", "vertex_anthropic", "tools.request.json"))
	res, err := newVertexAnthropicRequest(t, vertexAnthropicTarget).RequestBody(in)
	if err != nil {
		t.Fatal(err)
	}
	var p anthropic.MessageNewParams
	if err := json.Unmarshal(res.Body, &p); err != nil {
		t.Fatal(err)
	}
	if roles(p) != "user,assistant,user" || p.MaxTokens != 1024 || len(p.Tools) != 1 || p.ToolChoice.OfAuto == nil {
		t.Fatalf("roles %s max_tokens %d tools %d tool_choice %+v", roles(p), p.MaxTokens, len(p.Tools), p.ToolChoice)
	}
	if img := p.Messages[0].Content[1].OfImage; img == nil || img.Source.OfBase64 == nil || img.Source.OfBase64.MediaType != "image/png" {
		t.Errorf("image block = %+v", p.Messages[0].Content[1])
	}
	if r := p.Messages[2].Content[0].OfToolResult; r == nil || r.ToolUseID != "toolu_vrtx_01A" {
		t.Errorf("tool_result = %+v", p.Messages[2].Content[0])
	}
}

func TestOpenAIToVertexAnthropic_RequestBodyTarget(t *testing.T) {
	body := []byte(`{"model":"client-model","messages":[{"role":"user","content":"hi"}]}`)
	stream := []byte(`{"model":"claude-3-5-haiku@20241022","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	tests := []struct {
		name   string
		target transform.Target
		body   []byte
		want   string
	}{
		{"default region and version", transform.Target{Model: "claude-opus-4-1@20250805", Project: "p"}, body,
			"/v1/projects/p/locations/us-central1/publishers/anthropic/models/claude-opus-4-1@20250805:rawPredict"},
		{"global v1beta1 with base path", transform.Target{Model: "claude-sonnet-4-5@20250929", Project: "my-proj", Region: "global", APIVersion: "v1beta1", BasePath: "/vertex"}, body,
			"/vertex/v1beta1/projects/my-proj/locations/global/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"},
		{"stream", transform.Target{Model: "claude-3-5-haiku@20241022", Project: "p", Region: "europe-west1"}, stream,
			"/v1/projects/p/locations/europe-west1/publishers/anthropic/models/claude-3-5-haiku@20241022:streamRawPredict"},
		{"escaped segments", transform.Target{Model: "claude-x/../../other?y", Project: "p/q", Region: "r#s"}, body,
			"/v1/projects/p%2Fq/locations/r%23s/publishers/anthropic/models/claude-x%2F..%2F..%2Fother%3Fy:rawPredict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newVertexAnthropicRequest(t, tt.target).RequestBody(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.want {
				t.Errorf("path %q\nwant %q", res.Path, tt.want)
			}
			checkVertexAnthropicHeaders(t, res)
		})
	}
	t.Run("client model when the target has none", func(t *testing.T) {
		res, err := transform.NewOpenAIToVertexAnthropicRequest(transform.Target{Project: "p"}).RequestBody(stream)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(res.Path, "/models/claude-3-5-haiku@20241022:streamRawPredict") || gjson.GetBytes(res.Body, "model").Exists() {
			t.Errorf("path %q body %s", res.Path, res.Body)
		}
	})
}

func TestOpenAIToVertexAnthropic_RequestBodyInvalid(t *testing.T) {
	tests := []struct{ name, body, param string }{
		{"not JSON", `{`, ""},
		{"no messages", `{"model":"m"}`, "messages"},
		{"n > 1", `{"messages":[{"role":"user","content":"hi"}],"n":2}`, "n"},
		{"penalty", `{"messages":[{"role":"user","content":"hi"}],"presence_penalty":1}`, "presence_penalty"},
		{"seed", `{"messages":[{"role":"user","content":"hi"}],"seed":7}`, "seed"},
		{"no model anywhere", `{"messages":[{"role":"user","content":"hi"}]}`, "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := vertexAnthropicTarget
			var tr transform.RequestTranslator = newVertexAnthropicRequest(t, target)
			if tt.param == "model" {
				target.Model = ""
				tr = transform.NewOpenAIToVertexAnthropicRequest(target)
			}
			_, err := tr.RequestBody([]byte(tt.body))
			var ie *transform.InvalidRequestError
			if !errors.As(err, &ie) || !errors.Is(err, transform.ErrInvalidRequest) {
				t.Fatalf("err = %v, want an invalid request", err)
			}
			if tt.param != "" && ie.Param != tt.param {
				t.Errorf("param %q, want %q", ie.Param, tt.param)
			}
		})
	}
}

// TestOpenAIToVertexAnthropic_Routing: only vertex_ai models named claude*
// take this translator; Gemini models on Vertex keep theirs.
func TestOpenAIToVertexAnthropic_Routing(t *testing.T) {
	body := []byte(`{"messages":[{"role":"user","content":"hi"}]}`)
	for _, tt := range []struct {
		provider transform.Provider
		model    string
		wantPath string
	}{
		{transform.ProviderVertexAI, "claude-sonnet-4-5@20250929", ":rawPredict"},
		{transform.ProviderVertexAI, "gemini-2.5-pro", "/publishers/google/models/gemini-2.5-pro:generateContent"},
		{transform.ProviderAnthropic, "claude-sonnet-4-5", "/v1/messages"},
	} {
		t.Run(string(tt.provider)+"/"+tt.model, func(t *testing.T) {
			tr, err := transform.NewRequestTranslator(transform.APIChatCompletions, tt.provider, transform.Target{Model: tt.model, Project: "p"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := tr.RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(res.Path, tt.wantPath) {
				t.Errorf("path %q, want suffix %q", res.Path, tt.wantPath)
			}
		})
	}
	anthropicBody := readFile(t, filepath.Join("testdata", "vertex_anthropic", "text.response.json"))
	if _, err := newVertexAnthropicResponse(t, transform.ResponseOptions{}).ResponseBody(anthropicBody); err != nil {
		t.Errorf("claude on vertex response: %v", err)
	}
	gemini, err := transform.NewResponseTranslator(transform.APIChatCompletions, transform.ProviderVertexAI, transform.ResponseOptions{Model: "gemini-2.5-pro"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gemini.ResponseBody(anthropicBody); err == nil {
		t.Error("the gemini response translator read an Anthropic message: routing by model is not in effect")
	}
}

// TestOpenAIToVertexAnthropic_Messages: /v1/messages reaches Claude on
// Vertex through chat completions (Anthropic → chat → Anthropic on
// Vertex), and its answer goes back the same way.
func TestOpenAIToVertexAnthropic_Messages(t *testing.T) {
	req := []byte(`{"model":"group","max_tokens":100,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],` +
		`"messages":[{"role":"user","content":"hello"}],"stream":true}`)
	rt, err := transform.NewRequestTranslator(transform.APIMessages, transform.ProviderVertexAI, vertexAnthropicTarget)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rt.RequestBody(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != vertexAnthropicModelPath+":streamRawPredict" || !res.Stream {
		t.Errorf("path %q stream %v", res.Path, res.Stream)
	}
	var p anthropic.MessageNewParams
	if err := json.Unmarshal(res.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Model != "" || gjson.GetBytes(res.Body, "anthropic_version").Str != "vertex-2023-10-16" || p.MaxTokens != 100 ||
		len(p.System) != 1 || p.System[0].CacheControl.Type != "ephemeral" || roles(p) != "user" {
		t.Errorf("body = %s", res.Body)
	}
	checkVertexAnthropicHeaders(t, res)
	if !slices.Contains(res.RemoveHeaders, "anthropic-beta") {
		t.Errorf("remove headers %q lack the client's anthropic-beta", res.RemoveHeaders)
	}

	opts := transform.ResponseOptions{Created: created, Model: vertexAnthropicTarget.Model}
	tr, err := transform.NewResponseTranslator(transform.APIMessages, transform.ProviderVertexAI, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tr.ResponseBody(readFile(t, filepath.Join("testdata", "vertex_anthropic", "tool_use.response.json")))
	if err != nil {
		t.Fatal(err)
	}
	var msg anthropic.Message
	if err := json.Unmarshal(out.Body, &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 2 || msg.Content[0].Text != "Let me check." || msg.Content[1].Name != "get_weather" ||
		msg.StopReason != "tool_use" || msg.Usage.OutputTokens != 41 || out.Usage.InputTokens != 310 {
		t.Errorf("message = %s usage %+v", out.Body, out.Usage)
	}

	opts.Stream = true
	tr, err = transform.NewResponseTranslator(transform.APIMessages, transform.ProviderVertexAI, opts)
	if err != nil {
		t.Fatal(err)
	}
	stream, last := runStream(t, tr, streamPieces(t, filepath.Join("testdata", "vertex_anthropic", "text.stream.json")))
	var acc anthropic.Message
	for _, d := range sseDataLines(stream) {
		var ev anthropic.MessageStreamEventUnion
		if err := json.Unmarshal([]byte(d), &ev); err != nil {
			t.Fatalf("event %s: %v", d, err)
		}
		if err := acc.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(acc.Content) != 1 || acc.Content[0].Text != "One, two, three." || acc.StopReason != "end_turn" || !last.Done ||
		last.Usage.InputTokens != 14 || last.Usage.OutputTokens != 9 {
		t.Errorf("streamed message %+v, last %+v", acc, last)
	}
}

func TestOpenAIToVertexAnthropic_ResponseBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "vertex_anthropic", "response") {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, filepath.Join("testdata", "vertex_anthropic", name+".response.json"))
			res, err := newVertexAnthropicResponse(t, transform.ResponseOptions{Created: created}).ResponseBody(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "vertex_anthropic", name+".response.golden.json"), indentJSON(t, res.Body))
			var c openai.ChatCompletion
			if err := json.Unmarshal(res.Body, &c); err != nil {
				t.Fatal(err)
			}
			if c.Object != "chat.completion" || c.Created != created || len(c.Choices) != 1 || c.Model != "claude-sonnet-4-5-20250929" {
				t.Errorf("completion = %+v", c)
			}
			switch name {
			case "text":
				want := transform.Usage{InputTokens: 31, OutputTokens: 4, CachedInputTokens: 12}
				if c.Choices[0].Message.Content != "Rome." || c.Choices[0].FinishReason != "stop" || res.Usage != want {
					t.Errorf("choice %+v usage %+v", c.Choices[0], res.Usage)
				}
			case "tool_use":
				ch := c.Choices[0]
				if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 || ch.Message.ToolCalls[0].Function.Arguments != `{"city":"Rome"}` {
					t.Errorf("choice %+v", ch)
				}
			}
		})
	}
}

// TestOpenAIToVertexAnthropic_StreamChunkGolden replays every stream
// fixture whole, as recorded and split at every position.
func TestOpenAIToVertexAnthropic_StreamChunkGolden(t *testing.T) {
	for _, name := range fixtures(t, "vertex_anthropic", "stream") {
		t.Run(name, func(t *testing.T) {
			pieces := streamPieces(t, filepath.Join("testdata", "vertex_anthropic", name+".stream.json"))
			opts := transform.ResponseOptions{Stream: true, IncludeUsage: true, Created: created}
			want, last := runStream(t, newVertexAnthropicResponse(t, opts), pieces)
			checkGolden(t, filepath.Join("testdata", "vertex_anthropic", name+".stream.golden.sse"), want)
			checkChunks(t, want)
			for _, run := range append(splitEverywhere(bytes.Join(pieces, nil)), [][]byte{bytes.Join(pieces, nil)}) {
				got, gotLast := runStream(t, newVertexAnthropicResponse(t, opts), run)
				if !bytes.Equal(got, want) || gotLast.Usage != last.Usage || gotLast.Done != last.Done {
					t.Fatalf("replay differs:\n got: %s\nwant: %s", got, want)
				}
			}
			switch name {
			case "text":
				if !last.Done || last.Err != nil || last.Usage != (transform.Usage{InputTokens: 14, OutputTokens: 9}) || last.Model != "claude-sonnet-4-5-20250929" {
					t.Errorf("last = %+v", last)
				}
			case "overloaded":
				if last.Err == nil || last.Err.Status != http.StatusServiceUnavailable || last.Err.Type != transform.ErrorTypeOverloaded {
					t.Errorf("last = %+v", last)
				}
			}
		})
	}
}

// TestOpenAIToVertexAnthropic_ErrorBody: errors from the model are
// Anthropic's; errors from Vertex itself (auth, quota) are Google's and
// are mapped by their status.
func TestOpenAIToVertexAnthropic_ErrorBody(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantType   transform.ErrorType
		wantCode   string
		wantMsg    string
	}{
		{"anthropic overloaded", 529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			503, transform.ErrorTypeOverloaded, "", "Overloaded"},
		{"anthropic context window", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}`,
			400, transform.ErrorTypeInvalidRequest, transform.CodeContextLengthExceeded, "prompt is too long: 210000 tokens > 200000 maximum"},
		{"google quota", 429, `{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model.","status":"RESOURCE_EXHAUSTED"}}`,
			429, transform.ErrorTypeRateLimit, "", "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model."},
		{"google auth", 401, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`,
			401, transform.ErrorTypeAuthentication, "", "Request had invalid authentication credentials."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newVertexAnthropicResponse(t, transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body))
			if e.Status != tt.wantStatus || e.Type != tt.wantType || e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Errorf("error = %+v", e)
			}
		})
	}
}

func FuzzOpenAIToVertexAnthropic_RequestBody(f *testing.F) {
	addFixtures(f, "vertex_anthropic", "request")
	addFixtures(f, "anthropic", "request")
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		tr := newVertexAnthropicRequest(t, transform.Target{Model: "claude-x@1", Project: "p", APIKey: "k"})
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
		if gjson.GetBytes(res.Body, "model").Exists() || gjson.GetBytes(res.Body, "anthropic_version").Str != "vertex-2023-10-16" {
			t.Fatalf("body %s", res.Body)
		}
		if !strings.HasPrefix(res.Path, "/v1/projects/p/locations/us-central1/publishers/anthropic/models/claude-x@1:") {
			t.Fatalf("path %q", res.Path)
		}
		for _, h := range res.SetHeaders {
			if h.Key != "content-type" {
				t.Fatalf("sets %s", h.Key)
			}
		}
		again, _ := tr.RequestBody(body)
		if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(body, pristine) {
			t.Fatal("translation is not repeatable over an untouched body")
		}
	})
}

func BenchmarkOpenAIToVertexAnthropic_RequestBody(b *testing.B) {
	for _, c := range []struct{ dir, name string }{{"anthropic", "chat_2k"}, {"vertex_anthropic", "tools"}} {
		body := readFile(b, filepath.Join("testdata", c.dir, c.name+".request.json"))
		b.Run(c.name, func(b *testing.B) {
			tr := newVertexAnthropicRequest(b, vertexAnthropicTarget)
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
