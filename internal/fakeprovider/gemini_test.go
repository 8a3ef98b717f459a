package fakeprovider_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"google.golang.org/genai"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// bearerTransport adds the OAuth token a Vertex client would get from its
// credentials.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// geminiClient returns a genai client for the fake: the Gemini API with
// testKey, or Vertex AI with testKey as its bearer token.
func geminiClient(t *testing.T, srv *fakeprovider.Server, vertex bool, headers http.Header) *genai.Client {
	t.Helper()
	cfg := &genai.ClientConfig{HTTPOptions: genai.HTTPOptions{BaseURL: srv.URL(), Headers: headers}}
	if vertex {
		cfg.Backend, cfg.Project, cfg.Location = genai.BackendVertexAI, "proj-1", "us-central1"
		cfg.HTTPClient = &http.Client{Transport: bearerTransport{testKey}}
	} else {
		cfg.Backend, cfg.APIKey = genai.BackendGeminiAPI, testKey
	}
	c, err := genai.NewClient(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var backends = []struct {
	name   string
	vertex bool
	path   string
}{
	{"gemini_api", false, "/v1beta/models/gemini-x:"},
	{"vertex_ai", true, "/v1beta1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-x:"},
}

var gmWeather = &genai.Tool{FunctionDeclarations: []*genai.FunctionDeclaration{{
	Name: "get_weather",
	Parameters: &genai.Schema{Type: genai.TypeObject,
		Properties: map[string]*genai.Schema{"city": {Type: genai.TypeString}}},
}}}

type gmUsageWant struct{ prompt, candidates, cached, thoughts int32 }

func gmUsage(r *genai.GenerateContentResponse) gmUsageWant {
	u := r.UsageMetadata
	return gmUsageWant{u.PromptTokenCount, u.CandidatesTokenCount, u.CachedContentTokenCount, u.ThoughtsTokenCount}
}

func TestGemini_GenerateContent(t *testing.T) {
	tests := []struct {
		name      string
		contents  []*genai.Content
		config    *genai.GenerateContentConfig
		headers   http.Header
		wantText  string
		wantCall  string
		wantArgs  string
		wantStop  genai.FinishReason
		wantUsage gmUsageWant
	}{
		{
			name:      "echo",
			contents:  genai.Text("hello big world"),
			wantText:  "echo: hello big world",
			wantStop:  genai.FinishReasonStop,
			wantUsage: gmUsageWant{prompt: 3, candidates: 4},
		},
		{
			name: "system and function round trip count",
			contents: []*genai.Content{
				genai.NewContentFromText("weather please", genai.RoleUser),
				genai.NewContentFromParts([]*genai.Part{genai.NewPartFromFunctionCall("get_weather", map[string]any{"city": "Paris"})}, genai.RoleModel),
				genai.NewContentFromParts([]*genai.Part{
					genai.NewPartFromFunctionResponse("get_weather", map[string]any{"sky": "sunny and warm"}),
					genai.NewPartFromText("thanks"),
				}, genai.RoleUser),
			},
			config: &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText("be brief", genai.RoleUser),
				Tools: []*genai.Tool{gmWeather}},
			wantText: "echo: thanks",
			wantStop: genai.FinishReasonStop,
			// be brief (2) + weather please (2) + {"city":"Paris"} (1) +
			// {"sky":"sunny and warm"} (3) + thanks (1)
			wantUsage: gmUsageWant{prompt: 9, candidates: 2},
		},
		{
			name:      "cache and thoughts headers",
			contents:  genai.Text("a b c d e f"),
			headers:   http.Header{fakeprovider.HeaderCachedTokens: {"2"}, fakeprovider.HeaderReasoningTokens: {"4"}},
			wantText:  "echo: a b c d e f",
			wantStop:  genai.FinishReasonStop,
			wantUsage: gmUsageWant{prompt: 6, cached: 2, candidates: 7, thoughts: 4},
		},
		{
			name:      "max output tokens truncates",
			contents:  genai.Text("x y z"),
			config:    &genai.GenerateContentConfig{MaxOutputTokens: 2},
			wantText:  "echo: x",
			wantStop:  genai.FinishReasonMaxTokens,
			wantUsage: gmUsageWant{prompt: 3, candidates: 2},
		},
		{
			name:     "function calling mode ANY",
			contents: genai.Text("in Paris"),
			config: &genai.GenerateContentConfig{Tools: []*genai.Tool{gmWeather},
				ToolConfig: &genai.ToolConfig{FunctionCallingConfig: &genai.FunctionCallingConfig{
					Mode: genai.FunctionCallingConfigModeAny, AllowedFunctionNames: []string{"get_weather"}}}},
			wantCall:  "get_weather",
			wantArgs:  `{"text":"in Paris"}`,
			wantStop:  genai.FinishReasonStop,
			wantUsage: gmUsageWant{prompt: 2, candidates: 2},
		},
		{
			name:      "scripted safety stop",
			contents:  genai.Text("something bad"),
			headers:   http.Header{fakeprovider.HeaderGeminiFinishReason: {"SAFETY"}},
			wantStop:  genai.FinishReasonSafety,
			wantUsage: gmUsageWant{prompt: 2, candidates: 3},
		},
	}
	for _, b := range backends {
		for _, tt := range tests {
			t.Run(b.name+"/"+tt.name, func(t *testing.T) {
				srv := fakeprovider.Start(t, fakeprovider.Gemini, fakeprovider.WithAPIKey(testKey))
				client := geminiClient(t, srv, b.vertex, tt.headers)
				resp, err := client.Models.GenerateContent(t.Context(), "gemini-x", tt.contents, tt.config)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(resp.ResponseID, "resp-") || resp.ModelVersion != "gemini-x" || len(resp.Candidates) != 1 {
					t.Fatalf("envelope = %+v", resp)
				}
				checkGeminiCandidate(t, resp.Candidates[0], tt.wantText, tt.wantCall, tt.wantArgs, tt.wantStop)
				if got := gmUsage(resp); got != tt.wantUsage {
					t.Errorf("usage = %+v, want %+v", got, tt.wantUsage)
				}
				recs := srv.Requests()
				if len(recs) != 1 || recs[0].Status != http.StatusOK || recs[0].Path != b.path+"generateContent" {
					t.Errorf("records = %+v", recs)
				}
			})
		}
	}
}

func checkGeminiCandidate(t *testing.T, c *genai.Candidate, text, call, args string, stop genai.FinishReason) {
	t.Helper()
	var gotText, gotCall, gotArgs string
	if c.Content != nil {
		if c.Content.Role != genai.RoleModel {
			t.Errorf("role = %q", c.Content.Role)
		}
		for _, p := range c.Content.Parts {
			gotText += p.Text
			if p.FunctionCall != nil {
				a, _ := json.Marshal(p.FunctionCall.Args)
				gotCall, gotArgs = p.FunctionCall.Name, string(a)
			}
		}
	}
	if gotText != text || gotCall != call || gotArgs != args || c.FinishReason != stop {
		t.Errorf("candidate = text %q call %q %s stop %q, want %q %q %s %q", gotText, gotCall, gotArgs, c.FinishReason, text, call, args, stop)
	}
}

func TestGemini_Stream(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Gemini, fakeprovider.WithAPIKey(testKey))
			client := geminiClient(t, srv, b.vertex, nil)
			var text strings.Builder
			var last *genai.GenerateContentResponse
			events := 0
			for resp, err := range client.Models.GenerateContentStream(t.Context(), "gemini-x", genai.Text("one two three four"), nil) {
				if err != nil {
					t.Fatal(err)
				}
				events++
				text.WriteString(resp.Text())
				if resp.UsageMetadata.PromptTokenCount != 4 {
					t.Errorf("event %d prompt tokens = %d", events, resp.UsageMetadata.PromptTokenCount)
				}
				last = resp
			}
			if text.String() != "echo: one two three four" || events != 3 {
				t.Errorf("text %q in %d events", text.String(), events)
			}
			if last.Candidates[0].FinishReason != genai.FinishReasonStop || last.UsageMetadata.CandidatesTokenCount != 5 {
				t.Errorf("last event = %+v %+v", last.Candidates[0], last.UsageMetadata)
			}
			if p := srv.Requests()[0].Path; p != b.path+"streamGenerateContent" {
				t.Errorf("path = %q", p)
			}
		})
	}
}

func TestGemini_PromptBlocked(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Gemini)
	client := geminiClient(t, srv, false, http.Header{fakeprovider.HeaderGeminiBlock: {"PROHIBITED_CONTENT"}})
	resp, err := client.Models.GenerateContent(t.Context(), "gemini-x", genai.Text("bad words"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Candidates) != 0 || resp.PromptFeedback == nil || resp.PromptFeedback.BlockReason != genai.BlockedReasonProhibitedContent ||
		resp.UsageMetadata.PromptTokenCount != 2 || resp.UsageMetadata.CandidatesTokenCount != 0 {
		t.Errorf("response = %+v %+v", resp, resp.UsageMetadata)
	}
}

// postGemini sends a raw body to the fake, for wire checks and for bodies
// the SDK would not send.
func postGemini(t *testing.T, srv *fakeprovider.Server, path, body string, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
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
	return resp.StatusCode, b
}

func TestGemini_StreamWire(t *testing.T) {
	const body = `{"contents":[{"role":"user","parts":[{"text":"one two"}]}]}`
	srv := fakeprovider.Start(t, fakeprovider.Gemini)
	t.Run("array without alt=sse", func(t *testing.T) {
		code, b := postGemini(t, srv, "/v1beta/models/m:streamGenerateContent", body, nil)
		var items []genai.GenerateContentResponse
		if err := json.Unmarshal(b, &items); code != 200 || err != nil || len(items) != 2 || items[1].Candidates[0].FinishReason != genai.FinishReasonStop {
			t.Errorf("%d %v %s", code, err, b)
		}
	})
	t.Run("error after the first event", func(t *testing.T) {
		code, b := postGemini(t, srv, "/v1beta/models/m:streamGenerateContent?alt=sse", body, http.Header{fakeprovider.HeaderGeminiStreamError: {"503"}})
		var data []string
		for _, line := range strings.Split(string(b), "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data = append(data, d)
			}
		}
		if code != 200 || len(data) != 2 || gjson.Get(data[1], "error.status").String() != "UNAVAILABLE" || gjson.Get(data[1], "error.code").Int() != 503 {
			t.Errorf("%d %s", code, b)
		}
	})
}

func TestGemini_Errors(t *testing.T) {
	const studio = "/v1beta/models/gemini-x:generateContent"
	const vertex = "/v1/projects/p/locations/l/publishers/google/models/gemini-x:generateContent"
	keyed := http.Header{"X-Goog-Api-Key": {testKey}}
	ok := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	withTools := func(params string) string {
		return `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"name":"f","parameters":` + params + `}]}]}`
	}
	call := `{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]}`
	resp := `{"role":"user","parts":[{"functionResponse":{"name":"f","response":{"ok":true}}}]}`
	user := `{"role":"user","parts":[{"text":"hi"}]}`
	tests := []struct {
		name       string
		path, body string
		header     http.Header
		srvOpts    []fakeprovider.Option
		step       *fakeprovider.Step
		wantCode   int
		wantStatus string
		wantMsg    string
	}{
		{name: "valid", path: studio, body: ok, header: keyed, wantCode: 200},
		{name: "skip signature accepted", path: studio, header: keyed, wantCode: 200,
			body: `{"contents":[` + user + `,{"role":"model","parts":[{"functionCall":{"name":"f","args":{}},"thoughtSignature":"skip_thought_signature_validator"}]},` + resp + `]}`},
		{name: "missing key", path: studio, body: ok, wantCode: 403, wantStatus: "PERMISSION_DENIED", wantMsg: "unregistered callers"},
		{name: "wrong key", path: studio, body: ok, header: http.Header{"X-Goog-Api-Key": {"nope"}}, wantCode: 400, wantStatus: "INVALID_ARGUMENT", wantMsg: "API key not valid"},
		{name: "Vertex without bearer", path: vertex, body: ok, header: keyed, wantCode: 401, wantStatus: "UNAUTHENTICATED", wantMsg: "OAuth 2 access token"},
		{name: "Vertex with bearer", path: vertex, body: ok, header: http.Header{"Authorization": {"Bearer " + testKey}}, wantCode: 200},
		{name: "unknown path", path: "/v1beta/models/gemini-x:countTokens", body: ok, header: keyed, wantCode: 404, wantStatus: "NOT_FOUND"},
		{name: "not JSON", path: studio, body: `{`, header: keyed, wantCode: 400, wantMsg: "Invalid JSON payload"},
		{name: "unknown field", path: studio, body: `{"contents":[` + user + `],"messages":[]}`, header: keyed, wantCode: 400, wantMsg: `Unknown name "messages"`},
		{name: "no contents", path: studio, body: `{"contents":[]}`, header: keyed, wantCode: 400, wantMsg: "contents is not specified"},
		{name: "bad role", path: studio, body: `{"contents":[{"role":"assistant","parts":[{"text":"hi"}]}]}`, header: keyed, wantCode: 400, wantMsg: "valid role: user, model"},
		{name: "no alternation", path: studio, body: `{"contents":[` + user + `,` + user + `]}`, header: keyed, wantCode: 400, wantMsg: "alternate between user and model"},
		{name: "empty parts", path: studio, body: `{"contents":[{"role":"user","parts":[]}]}`, header: keyed, wantCode: 400, wantMsg: "must not be empty"},
		{name: "empty text", path: studio, body: `{"contents":[{"role":"user","parts":[{"text":""}]}]}`, header: keyed, wantCode: 400, wantMsg: "empty text parameter"},
		{name: "two data fields", path: studio, body: `{"contents":[{"role":"user","parts":[{"text":"a","inlineData":{"mimeType":"image/png","data":"AA=="}}]}]}`, header: keyed, wantCode: 400, wantMsg: "oneof field 'data'"},
		{name: "unknown part field", path: studio, body: `{"contents":[{"role":"user","parts":[{"image_url":"x"}]}]}`, header: keyed, wantCode: 400, wantMsg: `Unknown name "image_url"`},
		{name: "bad base64", path: studio, body: `{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"%%%"}}]}]}`, header: keyed, wantCode: 400, wantMsg: "inline_data"},
		{name: "bad signature", path: studio, body: `{"contents":[{"role":"user","parts":[{"text":"a","thoughtSignature":"%%"}]}]}`, header: keyed, wantCode: 400, wantMsg: "Base64 decoding failed"},
		{name: "response without call", path: studio, body: `{"contents":[` + user + `,{"role":"model","parts":[{"text":"x"}]},` + resp + `]}`, header: keyed, wantCode: 400, wantMsg: "immediately after a function call turn"},
		{name: "call without response", path: studio, body: `{"contents":[` + user + `,` + call + `,` + user + `]}`, header: keyed, wantCode: 400, wantMsg: "immediately before a function response turn"},
		{name: "response count mismatch", path: studio, body: `{"contents":[` + user + `,{"role":"model","parts":[{"functionCall":{"name":"f"}},{"functionCall":{"name":"f"}}]},` + resp + `]}`, header: keyed, wantCode: 400, wantMsg: "number of function response parts"},
		{name: "response not an object", path: studio, body: `{"contents":[` + user + `,` + call + `,{"role":"user","parts":[{"functionResponse":{"name":"f","response":"ok"}}]}]}`, header: keyed, wantCode: 400, wantMsg: "function_response.response"},
		{name: "additionalProperties", path: studio, body: withTools(`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`), header: keyed, wantCode: 400, wantMsg: `Unknown name "additionalProperties"`},
		{name: "$ref", path: studio, body: withTools(`{"type":"object","properties":{"a":{"$ref":"#/$defs/A"}}}`), header: keyed, wantCode: 400, wantMsg: `Unknown name "$ref"`},
		{name: "empty properties", path: studio, body: withTools(`{"type":"object","properties":{}}`), header: keyed, wantCode: 400, wantMsg: "should be non-empty for OBJECT type"},
		{name: "array without items", path: studio, body: withTools(`{"type":"object","properties":{"a":{"type":"array"}}}`), header: keyed, wantCode: 400, wantMsg: "items: missing field"},
		{name: "enum on integer", path: studio, body: withTools(`{"type":"object","properties":{"a":{"type":"integer","enum":["1"]}}}`), header: keyed, wantCode: 400, wantMsg: "only allowed for STRING type"},
		{name: "required unknown property", path: studio, body: withTools(`{"type":"object","properties":{"a":{"type":"string"}},"required":["b"]}`), header: keyed, wantCode: 400, wantMsg: "property is not defined"},
		{name: "unknown generation config", path: studio, body: `{"contents":[` + user + `],"generationConfig":{"max_tokens":5}}`, header: keyed, wantCode: 400, wantMsg: `Unknown name "max_tokens"`},
		{name: "ANY without tools", path: studio, body: `{"contents":[` + user + `],"toolConfig":{"functionCallingConfig":{"mode":"ANY"}}}`, header: keyed, wantCode: 400, wantMsg: "no function declarations"},
		{name: "context window", path: studio, body: `{"contents":[{"role":"user","parts":[{"text":"a b c"}]}]}`, header: keyed, srvOpts: []fakeprovider.Option{fakeprovider.WithContextWindow(2)},
			wantCode: 400, wantStatus: "INVALID_ARGUMENT", wantMsg: "The input token count (3) exceeds the maximum number of tokens allowed (2)."},
		{name: "unknown model", path: studio, body: ok, header: keyed, srvOpts: []fakeprovider.Option{fakeprovider.WithModels("gemini-y")}, wantCode: 404, wantStatus: "NOT_FOUND", wantMsg: "models/gemini-x is not found for API version v1beta"},
		{name: "unknown Vertex model", path: vertex, body: ok, header: http.Header{"Authorization": {"Bearer " + testKey}}, srvOpts: []fakeprovider.Option{fakeprovider.WithModels("gemini-y")},
			wantCode: 404, wantStatus: "NOT_FOUND", wantMsg: "Publisher Model `projects/p/locations/l/publishers/google/models/gemini-x` was not found"},
		{name: "scripted 429", path: studio, body: ok, header: keyed, step: &fakeprovider.Step{Status: 429}, wantCode: 429, wantStatus: "RESOURCE_EXHAUSTED", wantMsg: "Resource has been exhausted"},
		{name: "scripted 503 by header", path: studio, body: ok, header: http.Header{fakeprovider.HeaderStatus: {"503"}}, wantCode: 503, wantStatus: "UNAVAILABLE", wantMsg: "overloaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Gemini, append([]fakeprovider.Option{fakeprovider.WithAPIKey(testKey)}, tt.srvOpts...)...)
			if tt.step != nil {
				srv.Enqueue(*tt.step)
			}
			code, b := postGemini(t, srv, tt.path, tt.body, tt.header)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tt.wantCode, b)
			}
			if code == 200 {
				return
			}
			e := gjson.GetBytes(b, "error")
			if e.Get("code").Int() != int64(code) || tt.wantStatus != "" && e.Get("status").String() != tt.wantStatus ||
				!strings.Contains(e.Get("message").String(), tt.wantMsg) {
				t.Errorf("error = %s, want %s containing %q", b, tt.wantStatus, tt.wantMsg)
			}
		})
	}
}

// TestGemini_SDKError checks that the genai SDK reads the fake's errors.
func TestGemini_SDKError(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Gemini, fakeprovider.WithAPIKey(testKey))
	srv.Enqueue(fakeprovider.Step{Status: 429})
	_, err := geminiClient(t, srv, false, nil).Models.GenerateContent(t.Context(), "gemini-x", genai.Text("hi"), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 429 || apiErr.Status != "RESOURCE_EXHAUSTED" {
		t.Errorf("err = %#v", err)
	}
}

// TestGemini_ThroughTranslator sends requests translated by the gateway's
// Gemini translator, for AI Studio and Vertex AI, and translates the
// answers back: the fake and the translator agree on the wire format.
func TestGemini_ThroughTranslator(t *testing.T) {
	targets := []struct {
		name   string
		target transform.Target
		auth   transform.Header
	}{
		{"gemini_api", transform.Target{Model: "gemini-x", APIKey: testKey}, transform.Header{}},
		{"vertex_ai", transform.Target{Model: "gemini-x", Project: "p", Region: "l"}, transform.Header{Key: "authorization", Value: "Bearer " + testKey}},
	}
	fixtures, err := filepath.Glob(filepath.Join("..", "..", "pkg", "transform", "testdata", "gemini", "*.request.json"))
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("fixtures: %v", err)
	}
	for _, tg := range targets {
		for _, path := range fixtures {
			name := strings.TrimSuffix(filepath.Base(path), ".request.json")
			t.Run(tg.name+"/"+name, func(t *testing.T) {
				body := readTestFile(t, path)
				req, err := transform.NewOpenAIToGeminiRequest(tg.target).RequestBody(body)
				if err != nil {
					t.Fatal(err)
				}
				h := http.Header{}
				for _, kv := range append(req.SetHeaders, tg.auth) {
					if kv.Key != "" {
						h.Set(kv.Key, kv.Value)
					}
				}
				srv := fakeprovider.Start(t, fakeprovider.Gemini, fakeprovider.WithAPIKey(testKey))
				code, out := postGemini(t, srv, req.Path, string(req.Body), h)
				if code != 200 {
					t.Fatalf("fake rejected the translation: %d %s\n%s", code, out, req.Body)
				}
				rt := transform.NewOpenAIToGeminiResponse(transform.ResponseOptions{Stream: req.Stream, IncludeUsage: true})
				if !req.Stream {
					res, err := rt.ResponseBody(out)
					if err != nil || res.Usage.InputTokens == 0 || !json.Valid(res.Body) {
						t.Errorf("response %+v %v", res, err)
					}
					return
				}
				res, err := rt.StreamChunk(out, true)
				if err != nil || !res.Done || res.Usage.OutputTokens == 0 || !bytes.HasSuffix(res.Body, []byte("data: [DONE]\n\n")) {
					t.Errorf("stream %+v %v\n%s", res, err, res.Body)
				}
			})
		}
	}
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
