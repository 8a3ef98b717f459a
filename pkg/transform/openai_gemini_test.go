package transform_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/genai"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

var (
	geminiTarget = transform.Target{Model: "gemini-2.5-flash", APIKey: "AIza-test"}
	vertexTarget = transform.Target{Model: "gemini-2.5-flash", Project: "proj-1", Region: "us-central1"}
)

// geminiWire is a generateContent request body in the genai SDK's types,
// which define the fields the API accepts.
type geminiWire struct {
	Contents          []*genai.Content        `json:"contents"`
	SystemInstruction *genai.Content          `json:"systemInstruction"`
	Tools             []*genai.Tool           `json:"tools"`
	ToolConfig        *genai.ToolConfig       `json:"toolConfig"`
	GenerationConfig  *genai.GenerationConfig `json:"generationConfig"`
	SafetySettings    []*genai.SafetySetting  `json:"safetySettings"`
}

// decodeGemini decodes a translated body strictly into the SDK's types.
// The skip signature is a literal string on the wire, which the API reads
// as URL-safe base64 but Go's decoder (standard alphabet) does not, so it
// is re-encoded first.
func decodeGemini(t testing.TB, body []byte) geminiWire {
	t.Helper()
	skip := `"thoughtSignature":"skip_thought_signature_validator"`
	body = bytes.ReplaceAll(body, []byte(skip),
		[]byte(`"thoughtSignature":"`+base64.StdEncoding.EncodeToString([]byte("skip"))+`"`))
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var w geminiWire
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("genai types reject the body: %v\n%s", err, body)
	}
	return w
}

func geminiRoles(w geminiWire) string {
	var r []string
	for _, c := range w.Contents {
		r = append(r, c.Role)
	}
	return strings.Join(r, ",")
}

func newGeminiRequest(t transform.Target) transform.RequestTranslator {
	return transform.NewOpenAIToGeminiRequest(t)
}

func newGeminiResponse(o transform.ResponseOptions) transform.ResponseTranslator {
	return transform.NewOpenAIToGeminiResponse(o)
}

// TestOpenAIToGemini_RequestBodyGolden translates every request fixture
// (vertex_* ones for Vertex AI), compares it with its golden file, checks
// that the genai types take it and that roles alternate, and that
// translating again gives the same bytes from an untouched input.
func TestOpenAIToGemini_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "gemini", "request") {
		t.Run(name, func(t *testing.T) {
			target := geminiTarget
			if strings.HasPrefix(name, "vertex_") {
				target = vertexTarget
			}
			in := readFile(t, filepath.Join("testdata", "gemini", name+".request.json"))
			pristine := bytes.Clone(in)
			tr := newGeminiRequest(target)
			res, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "gemini", name+".request.golden.json"), requestGolden(t, res))

			w := decodeGemini(t, res.Body)
			if len(w.Contents) == 0 || w.Contents[0].Role != "user" {
				t.Fatalf("contents = %s", geminiRoles(w))
			}
			for i, c := range w.Contents {
				if c.Role != "user" && c.Role != "model" || i > 0 && c.Role == w.Contents[i-1].Role || len(c.Parts) == 0 {
					t.Errorf("content %d: role %q after %s, %d parts", i, c.Role, geminiRoles(w), len(c.Parts))
				}
			}
			again, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Body, res.Body) {
				t.Error("second translation differs")
			}
			if !bytes.Equal(in, pristine) {
				t.Error("input body was modified")
			}
		})
	}
}

func translateGemini(t *testing.T, name string, target transform.Target) (transform.RequestResult, geminiWire) {
	t.Helper()
	in := readFile(t, filepath.Join("testdata", "gemini", name+".request.json"))
	res, err := newGeminiRequest(target).RequestBody(in)
	if err != nil {
		t.Fatal(err)
	}
	return res, decodeGemini(t, res.Body)
}

func partTexts(c *genai.Content) string {
	var s []string
	for _, p := range c.Parts {
		s = append(s, p.Text)
	}
	return strings.Join(s, "|")
}

func TestOpenAIToGemini_RequestBodyFields(t *testing.T) {
	t.Run("multi_turn", func(t *testing.T) {
		res, w := translateGemini(t, "multi_turn", geminiTarget)
		if res.Path != "/v1beta/models/gemini-2.5-flash:generateContent" || res.Stream {
			t.Errorf("path %q stream %v", res.Path, res.Stream)
		}
		if w.SystemInstruction == nil || partTexts(w.SystemInstruction) != "You are a terse assistant.|Answer in French." {
			t.Fatalf("systemInstruction = %+v", w.SystemInstruction)
		}
		if geminiRoles(w) != "user,model,user,model,user" {
			t.Errorf("roles = %s", geminiRoles(w))
		}
		if got := partTexts(w.Contents[2]); got != `And of Spain?|Quote it "exactly".|Merci — thanks!` {
			t.Errorf("merged user turn = %q", got)
		}
		if got := partTexts(w.Contents[3]); got != "Madrid." {
			t.Errorf("assistant parts = %q (refusal must be dropped)", got)
		}
		g := w.GenerationConfig
		if g == nil || g.MaxOutputTokens != 512 || *g.Temperature != 0.2 || *g.TopP != 0.9 || *g.TopK != 40 ||
			g.CandidateCount != 2 || *g.Seed != 42 || *g.PresencePenalty != 0.5 || *g.FrequencyPenalty != -0.25 {
			t.Fatalf("generationConfig = %+v", g)
		}
		if strings.Join(g.StopSequences, "|") != "END|STOP" {
			t.Errorf("stopSequences = %q, want empty dropped", g.StopSequences)
		}
	})
	// web_search_options is Google Search grounding; the thinking object
	// wins over reasoning_effort; the tagging parameters are not sent.
	t.Run("web_search", func(t *testing.T) {
		res, w := translateGemini(t, "web_search", geminiTarget)
		if len(w.Tools) != 2 || len(w.Tools[0].FunctionDeclarations) != 1 || w.Tools[1].GoogleSearch == nil {
			t.Fatalf("tools = %s", res.Body)
		}
		g := w.GenerationConfig
		if g == nil || g.ThinkingConfig == nil || *g.ThinkingConfig.ThinkingBudget != 3000 || !g.ThinkingConfig.IncludeThoughts {
			t.Errorf("generationConfig = %s", res.Body)
		}
		for _, k := range []string{"Lyon\"", "user-1234", "sid-", "store", "team", "serviceTier", "flex", "prompt_cache_key", "labels"} {
			if bytes.Contains(res.Body, []byte(k)) {
				t.Errorf("%s reached gemini: %s", k, res.Body)
			}
		}
	})
	t.Run("tools", func(t *testing.T) {
		_, w := translateGemini(t, "tools", geminiTarget)
		if len(w.Tools) != 2 || w.Tools[1].GoogleSearch == nil {
			t.Fatalf("tools = %+v", w.Tools)
		}
		decls := w.Tools[0].FunctionDeclarations
		if len(decls) != 3 || decls[0].Name != "get_weather" || decls[0].Description != "Current weather for a city." {
			t.Fatalf("declarations = %+v", decls)
		}
		p := decls[0].Parameters
		if p.Type != genai.TypeObject || strings.Join(p.Required, ",") != "city" {
			t.Errorf("parameters = %+v", p)
		}
		unit := p.Properties["unit"]
		if unit == nil || unit.Type != genai.TypeString || unit.Nullable == nil || !*unit.Nullable ||
			strings.Join(unit.Enum, ",") != "celsius,fahrenheit" || unit.Description != "Temperature unit" || unit.Default != nil {
			t.Errorf("unit = %+v", unit)
		}
		days := p.Properties["days"]
		if days.Type != genai.TypeInteger || !*days.Nullable || *days.Minimum != 1 || *days.Maximum != 14 || days.Format != "int32" {
			t.Errorf("days = %+v", days)
		}
		if tags := p.Properties["tags"]; tags.Items == nil || tags.Items.Format != "" || *tags.MaxItems != 5 {
			t.Errorf("tags = %+v", tags)
		}
		book := decls[1].Parameters
		party := book.Properties["party"]
		if party == nil || party.Type != genai.TypeObject || party.Properties["size"].Type != genai.TypeInteger ||
			party.Properties["size"].Enum != nil || strings.Join(party.Required, ",") != "size" {
			t.Errorf("party = %+v", party)
		}
		if notes := book.Properties["notes"]; notes.Type != genai.TypeObject || notes.Properties != nil {
			t.Errorf("notes = %+v", notes)
		}
		if kind := book.Properties["kind"]; kind.Type != genai.TypeString || strings.Join(kind.Enum, ",") != "dinner" {
			t.Errorf("kind = %+v", kind)
		}
		if slot := book.Properties["slot"]; len(slot.AnyOf) != 2 || slot.AnyOf[1].Type != genai.TypeInteger {
			t.Errorf("slot = %+v", slot)
		}
		if decls[2].Parameters != nil {
			t.Errorf("empty parameters sent: %+v", decls[2].Parameters)
		}
		fc := w.ToolConfig.FunctionCallingConfig
		if fc.Mode != genai.FunctionCallingConfigModeAny || strings.Join(fc.AllowedFunctionNames, ",") != "get_weather" {
			t.Errorf("functionCallingConfig = %+v", fc)
		}
	})
	t.Run("tool_results", func(t *testing.T) {
		_, w := translateGemini(t, "tool_results", geminiTarget)
		if geminiRoles(w) != "user,model,user,model,user" {
			t.Fatalf("roles = %s", geminiRoles(w))
		}
		calls := w.Contents[1].Parts
		if len(calls) != 2 || calls[0].FunctionCall.Name != "get_weather" || calls[0].FunctionCall.Args["city"] != "Paris" ||
			calls[1].FunctionCall.Args["city"] != "Tokyo" {
			t.Fatalf("call turn = %+v", calls)
		}
		if base64.StdEncoding.EncodeToString(calls[0].ThoughtSignature) != "CvABAdHtim8=" || calls[1].ThoughtSignature != nil {
			t.Errorf("signatures = %q %q", calls[0].ThoughtSignature, calls[1].ThoughtSignature)
		}
		results := w.Contents[2].Parts
		if len(results) != 2 || results[0].FunctionResponse.Name != "get_weather" || results[0].FunctionResponse.Response["temp"] != 21.0 {
			t.Fatalf("results = %+v", results)
		}
		if got := results[1].FunctionResponse.Response["content"]; got != "22°C\nsunny" {
			t.Errorf("wrapped result = %#v", got)
		}
		second := w.Contents[3].Parts
		if len(second) != 2 || second[0].Text == "" || second[1].FunctionCall.Name != "get_time" || len(second[1].FunctionCall.Args) != 0 ||
			string(second[1].ThoughtSignature) != "skip" {
			t.Errorf("second model turn = %+v", second)
		}
		last := w.Contents[4].Parts
		if len(last) != 2 || last[0].FunctionResponse.Name != "get_time" || last[0].FunctionResponse.Response["content"] != "noon" || last[1].Text != "Thanks!" {
			t.Errorf("last user turn = %+v", last)
		}
		if w.ToolConfig.FunctionCallingConfig.Mode != genai.FunctionCallingConfigModeAuto {
			t.Errorf("mode = %q", w.ToolConfig.FunctionCallingConfig.Mode)
		}
	})
	t.Run("images", func(t *testing.T) {
		_, w := translateGemini(t, "images", geminiTarget)
		p := w.Contents[0].Parts
		if len(p) != 6 {
			t.Fatalf("%d parts", len(p))
		}
		if p[1].InlineData == nil || p[1].InlineData.MIMEType != "image/png" || !bytes.HasPrefix(p[1].InlineData.Data, []byte("\x89PNG")) {
			t.Errorf("inline image = %+v", p[1].InlineData)
		}
		want := []genai.FileData{
			{MIMEType: "image/webp", FileURI: "https://example.com/cat.webp?size=large"},
			{MIMEType: "image/jpeg", FileURI: "https://example.com/photo"},
			{MIMEType: "application/pdf", FileURI: "gs://bucket/report.pdf"},
		}
		for i, fd := range want {
			if got := p[2+i].FileData; got == nil || *got != fd {
				t.Errorf("part %d fileData = %+v, want %+v", 2+i, got, fd)
			}
		}
		if p[5].InlineData == nil || p[5].InlineData.MIMEType != "audio/wav" {
			t.Errorf("audio = %+v", p[5].InlineData)
		}
		if g := w.GenerationConfig; g.ResponseMIMEType != "application/json" || g.ResponseSchema != nil || g.MaxOutputTokens != 300 {
			t.Errorf("generationConfig = %+v", g)
		}
	})
	t.Run("json_schema", func(t *testing.T) {
		_, w := translateGemini(t, "json_schema", geminiTarget)
		g := w.GenerationConfig
		s := g.ResponseSchema
		if g.ResponseMIMEType != "application/json" || s == nil || s.Type != genai.TypeObject ||
			strings.Join(s.PropertyOrdering, ",") != "name,age,email" || len(s.Required) != 3 {
			t.Fatalf("responseSchema = %+v", s)
		}
		if e := s.Properties["email"]; e.Type != genai.TypeString || !*e.Nullable || e.Format != "" {
			t.Errorf("email = %+v", e)
		}
		if tc := g.ThinkingConfig; tc == nil || *tc.ThinkingBudget != 1024 || !tc.IncludeThoughts {
			t.Errorf("thinkingConfig = %+v", tc)
		}
	})
	t.Run("stream", func(t *testing.T) {
		res, w := translateGemini(t, "stream", geminiTarget)
		if !res.Stream || res.Path != "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" {
			t.Errorf("stream %v path %q", res.Stream, res.Path)
		}
		if tc := w.GenerationConfig.ThinkingConfig; tc == nil || *tc.ThinkingBudget != 2048 || !tc.IncludeThoughts {
			t.Errorf("thinkingConfig = %+v", tc)
		}
	})
	t.Run("vertex_stream", func(t *testing.T) {
		res, w := translateGemini(t, "vertex_stream", vertexTarget)
		want := "/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
		if !res.Stream || res.Path != want {
			t.Errorf("stream %v path %q", res.Stream, res.Path)
		}
		if tc := w.GenerationConfig.ThinkingConfig; tc == nil || *tc.ThinkingBudget != 0 || tc.IncludeThoughts {
			t.Errorf("thinkingConfig = %+v", tc)
		}
	})
}

func TestOpenAIToGemini_RequestBodyTarget(t *testing.T) {
	body := []byte(`{"model":"client-model","messages":[{"role":"user","content":"hi"}]}`)
	stream := []byte(`{"model":"client-model","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	tests := []struct {
		name     string
		target   transform.Target
		body     []byte
		wantPath string
		wantKey  bool
	}{
		{"AI Studio defaults", transform.Target{}, body, "/v1beta/models/client-model:generateContent", false},
		{"AI Studio key and base path", transform.Target{Model: "models/gemini-2.5-pro", APIKey: "k", BasePath: "/gemini/v1beta"}, body,
			"/gemini/v1beta/models/gemini-2.5-pro:generateContent", true},
		{"AI Studio version", transform.Target{APIKey: "k", APIVersion: "v1"}, stream, "/v1/models/client-model:streamGenerateContent?alt=sse", true},
		{"model cannot escape the path", transform.Target{Model: "../x?y"}, body, "/v1beta/models/..%2Fx%3Fy:generateContent", false},
		{"Vertex", transform.Target{Model: "gemini-2.5-flash", APIKey: "ignored", Project: "p", Region: "europe-west4"}, body,
			"/v1/projects/p/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent", false},
		{"Vertex default region", transform.Target{Project: "p"}, body,
			"/v1/projects/p/locations/us-central1/publishers/google/models/client-model:generateContent", false},
		{"Vertex v1beta1 global", transform.Target{Project: "p", Region: "global", APIVersion: "v1beta1"}, stream,
			"/v1beta1/projects/p/locations/global/publishers/google/models/client-model:streamGenerateContent?alt=sse", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newGeminiRequest(tt.target).RequestBody(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.wantPath {
				t.Errorf("path = %q, want %q", res.Path, tt.wantPath)
			}
			hasKey := false
			for _, h := range res.SetHeaders {
				if h.Key == "x-goog-api-key" {
					hasKey = h.Value == tt.target.APIKey
				}
			}
			removed := strings.Join(res.RemoveHeaders, ",")
			if hasKey != tt.wantKey || strings.Contains(removed, "x-goog-api-key") == tt.wantKey {
				t.Errorf("set %v remove %v", res.SetHeaders, res.RemoveHeaders)
			}
			for _, h := range []string{"authorization", "x-api-key", "api-key", "anthropic-version"} {
				if !strings.Contains(removed, h) {
					t.Errorf("%s not removed: %v", h, res.RemoveHeaders)
				}
			}
		})
	}
}

func TestOpenAIToGemini_RequestBodyInvalid(t *testing.T) {
	const hi = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name      string
		body      string
		wantParam string
	}{
		{"malformed JSON", `{"messages":[`, ""},
		{"not an object", `[1,2]`, ""},
		{"messages missing", `{"model":"m"}`, "messages"},
		{"only system", `{"model":"m","messages":[{"role":"system","content":"x"}]}`, "messages"},
		{"only empty text", `{"model":"m","messages":[{"role":"user","content":""}]}`, "messages"},
		{"no model", `{` + hi + `}`, "model"},
		{"numeric content", `{"model":"m","messages":[{"role":"user","content":42}]}`, "messages[0].content"},
		{"unknown part", `{"model":"m","messages":[{"role":"user","content":[{"type":"video"}]}]}`, "messages[0].content[0]"},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"hi"}]}`, "messages[0].content[0]"},
		{"ftp image", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0]"},
		{"non-base64 data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "messages[0].content[0]"},
		{"audio without format", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA=="}}]}]}`, "messages[0].content[0]"},
		{"file without data", `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{}}]}]}`, "messages[0].content[0]"},
		{"bad tool arguments", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"tool call without name", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{}}]}]}`, "messages[1].tool_calls[0]"},
		{"orphan tool result", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"nope","content":"x"}]}`, "messages[1].tool_call_id"},
		{"tool image result", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"a","content":[{"type":"image_url","image_url":"https://x/y.png"}]}]}`, "messages[2].content[0]"},
		{"unknown role", `{"model":"m","messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
		{"logprobs", `{"model":"m","logprobs":true,` + hi + `}`, "logprobs"},
		{"logit_bias", `{"model":"m","logit_bias":{"1":2},` + hi + `}`, "logit_bias"},
		{"max_tokens zero", `{"model":"m","max_tokens":0,` + hi + `}`, "max_tokens"},
		{"n fractional", `{"model":"m","n":1.5,` + hi + `}`, "n"},
		{"seed string", `{"model":"m","seed":"7",` + hi + `}`, "seed"},
		{"temperature string", `{"model":"m","temperature":"hot",` + hi + `}`, "temperature"},
		{"stop number", `{"model":"m","stop":[1],` + hi + `}`, "stop"},
		{"bad tool_choice", `{"model":"m","tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"f"}}],` + hi + `}`, "tool_choice"},
		{"parallel_tool_calls false", `{"model":"m","parallel_tool_calls":false,"tools":[{"type":"function","function":{"name":"f"}}],` + hi + `}`, "parallel_tool_calls"},
		{"hosted OpenAI tool", `{"model":"m","tools":[{"type":"web_search"}],` + hi + `}`, "tools[0].type"},
		{"tool without name", `{"model":"m","tools":[{"type":"function","function":{}}],` + hi + `}`, "tools[0].function.name"},
		{"bad response_format", `{"model":"m","response_format":{"type":"yaml"},` + hi + `}`, "response_format"},
		{"schema not object", `{"model":"m","response_format":{"type":"json_schema","json_schema":{"schema":[]}},` + hi + `}`, "response_format.json_schema.schema"},
		{"bad reasoning_effort", `{"model":"m","reasoning_effort":"max",` + hi + `}`, "reasoning_effort"},
		{"bad thinking budget", `{"model":"m","thinking":{"type":"enabled"},` + hi + `}`, "thinking.budget_tokens"},
		{"thinking not an object", `{"model":"m","thinking":"on",` + hi + `}`, "thinking"},
		{"web_search_options not an object", `{"model":"m","web_search_options":"on",` + hi + `}`, "web_search_options"},
		{"image output", `{"model":"m","modalities":["text","image"],` + hi + `}`, "modalities"},
		{"verbosity", `{"model":"m","verbosity":"low",` + hi + `}`, "verbosity"},
		{"prediction", `{"model":"m","prediction":{"type":"content","content":"x"},` + hi + `}`, "prediction"},
		{"top_logprobs", `{"model":"m","top_logprobs":2,` + hi + `}`, "top_logprobs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newGeminiRequest(transform.Target{}).RequestBody([]byte(tt.body))
			if !errors.Is(err, transform.ErrInvalidRequest) {
				t.Fatalf("err = %v, body %s", err, res.Body)
			}
			var ie *transform.InvalidRequestError
			if !errors.As(err, &ie) || ie.Param != tt.wantParam || ie.Message == "" {
				t.Errorf("error = %#v, want param %q", ie, tt.wantParam)
			}
		})
	}
}

func TestOpenAIToGemini_RequestBodyOptions(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string
		notWant []string
	}{
		{"tool_choice none", `{"model":"m","tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"toolConfig":{"functionCallingConfig":{"mode":"NONE"}}`, `"functionDeclarations":[{"name":"f"}]`}, nil},
		{"tool_choice without tools is dropped", `{"model":"m","tool_choice":"required","messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`toolConfig`, `"tools"`}},
		{"no generationConfig when nothing is set", `{"model":"m","n":1,"messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`generationConfig`, `candidateCount`}},
		{"text response_format", `{"model":"m","response_format":{"type":"text"},"messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`responseMimeType`}},
		{"assistant first gets no user turn invented", `{"model":"m","messages":[{"role":"assistant","content":"Hello!"},{"role":"user","content":"hi"}]}`,
			[]string{`"contents":[{"role":"model","parts":[{"text":"Hello!"}]},{"role":"user","parts":[{"text":"hi"}]}]`}, nil},
		{"tool result object content kept", `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":{"x":1}}}]},{"role":"tool","tool_call_id":"t","content":" {\"ok\":true} "}]}`,
			[]string{`{"functionCall":{"name":"f","args":{"x":1}},"thoughtSignature":"skip_thought_signature_validator"}`, `{"functionResponse":{"name":"f","response":{"ok":true}}}`}, nil},
		{"tool result array string wrapped", `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"t","content":"[1,2]"},{"role":"tool","tool_call_id":"t","content":null}]}`,
			[]string{`"response":{"content":"[1,2]"}`, `"response":{"content":""}`}, nil},
		{"escaped slash in data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image\/png;base64,ab\/cd\/ef"}}]}]}`,
			[]string{`{"inlineData":{"mimeType":"image/png","data":"ab/cd/ef"}}`}, nil},
		{"image format overrides", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y","format":"image/heic"}}]}]}`,
			[]string{`{"fileData":{"mimeType":"image/heic","fileUri":"https://x/y"}}`}, nil},
		{"safety settings pass through", `{"model":"m","safety_settings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}]`}, nil},
		{"web search alone", `{"model":"m","web_search_options":{},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"tools":[{"googleSearch":{}}]`}, []string{`toolConfig`}},
		{"web search beside the client's own googleSearch", `{"model":"m","web_search_options":{},"tools":[{"googleSearch":{}},{"urlContext":{}}],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"tools":[{"googleSearch":{}},{"urlContext":{}}]`}, nil},
		{"thinking disabled", `{"model":"m","thinking":{"type":"disabled"},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"thinkingConfig":{"thinkingBudget":0}`}, []string{`includeThoughts`}},
		{"null fields ignored", `{"model":"m","temperature":null,"stop":null,"tools":null,"messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`temperature`, `stopSequences`, `tools`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newGeminiRequest(transform.Target{}).RequestBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			decodeGemini(t, res.Body)
			for _, w := range tt.want {
				if !bytes.Contains(res.Body, []byte(w)) {
					t.Errorf("body lacks %s:\n%s", w, res.Body)
				}
			}
			for _, w := range tt.notWant {
				if bytes.Contains(res.Body, []byte(w)) {
					t.Errorf("body has %s:\n%s", w, res.Body)
				}
			}
		})
	}
}

// TestOpenAIToGemini_ResponseBodyGolden translates every response
// fixture, after checking that the genai SDK reads the fixture itself,
// compares the result with its golden file and checks that the OpenAI SDK
// reads it.
func TestOpenAIToGemini_ResponseBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "gemini", "response") {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, filepath.Join("testdata", "gemini", name+".response.json"))
			var g genai.GenerateContentResponse
			if err := json.Unmarshal(in, &g); err != nil || g.ResponseID == "" || g.UsageMetadata == nil {
				t.Fatalf("fixture is not a GenerateContentResponse: %v %+v", err, g)
			}
			res, err := newGeminiResponse(transform.ResponseOptions{Created: created}).ResponseBody(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "gemini", name+".response.golden.json"), indentJSON(t, res.Body))
			var c openai.ChatCompletion
			if err := json.Unmarshal(res.Body, &c); err != nil {
				t.Fatal(err)
			}
			if c.Object != "chat.completion" || c.Created != created || c.ID != g.ResponseID || c.Model != g.ModelVersion ||
				len(c.Choices) != max(len(g.Candidates), 1) || c.Model != res.Model {
				t.Errorf("completion = %+v", c)
			}
		})
	}
}

func translateGeminiResponse(t *testing.T, name string) (transform.ResponseResult, openai.ChatCompletion) {
	t.Helper()
	in := readFile(t, filepath.Join("testdata", "gemini", name+".response.json"))
	res, err := newGeminiResponse(transform.ResponseOptions{Created: created}).ResponseBody(in)
	if err != nil {
		t.Fatal(err)
	}
	var c openai.ChatCompletion
	if err := json.Unmarshal(res.Body, &c); err != nil {
		t.Fatal(err)
	}
	return res, c
}

func TestOpenAIToGemini_ResponseBodyFields(t *testing.T) {
	tests := []struct {
		name       string
		content    string
		nullBody   bool
		finish     string
		usage      transform.Usage
		wantCalls  int
		wantChoice int
	}{
		{name: "text", content: "La capitale de l'Italie est \"Rome\".\nBonne journée !", finish: "stop",
			usage: transform.Usage{InputTokens: 4221, OutputTokens: 14, CachedInputTokens: 3000}, wantChoice: 1},
		{name: "tool_calls", content: "I'll check both cities.", finish: "tool_calls",
			usage: transform.Usage{InputTokens: 120, OutputTokens: 104, ReasoningTokens: 64}, wantCalls: 2, wantChoice: 1},
		{name: "thinking", content: "27 × 453 = 12,231.", finish: "stop",
			usage: transform.Usage{InputTokens: 12, OutputTokens: 159, ReasoningTokens: 150}, wantChoice: 1},
		{name: "max_tokens", content: "Once upon a", finish: "length", usage: transform.Usage{InputTokens: 5, OutputTokens: 3}, wantChoice: 1},
		{name: "safety", content: "", finish: "content_filter", usage: transform.Usage{InputTokens: 9}, wantChoice: 1},
		{name: "blocked", content: "", finish: "content_filter", usage: transform.Usage{InputTokens: 7}, wantChoice: 1},
		{name: "candidates", content: "Lisbon.", finish: "stop", usage: transform.Usage{InputTokens: 20, OutputTokens: 4}, wantChoice: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, c := translateGeminiResponse(t, tt.name)
			ch := c.Choices[0]
			if len(c.Choices) != tt.wantChoice || ch.Message.Content != tt.content || string(ch.FinishReason) != tt.finish ||
				len(ch.Message.ToolCalls) != tt.wantCalls || ch.Message.Role != "assistant" {
				t.Errorf("choices = %+v", c.Choices)
			}
			if res.Usage != tt.usage {
				t.Errorf("usage = %+v, want %+v", res.Usage, tt.usage)
			}
			if c.Usage.PromptTokens != tt.usage.InputTokens || c.Usage.CompletionTokens != tt.usage.OutputTokens ||
				c.Usage.TotalTokens != tt.usage.TotalTokens() || c.Usage.PromptTokensDetails.CachedTokens != tt.usage.CachedInputTokens ||
				c.Usage.CompletionTokensDetails.ReasoningTokens != tt.usage.ReasoningTokens {
				t.Errorf("usage body = %+v", c.Usage)
			}
		})
	}

	t.Run("tool call ids and arguments", func(t *testing.T) {
		res, c := translateGeminiResponse(t, "tool_calls")
		calls := c.Choices[0].Message.ToolCalls
		if calls[0].ID != "call_resp-tools-1_0" || calls[1].ID != "call_resp-tools-1_1" || calls[1].Type != "function" || calls[1].Function.Name != "get_weather" {
			t.Errorf("calls = %+v", calls)
		}
		if calls[1].Function.Arguments != `{"city":"Tokyo \"JP\"","nested":{"a":[1,2,{"b":null}]}}` {
			t.Errorf("arguments = %s", calls[1].Function.Arguments)
		}
		if sig := gjson.GetBytes(res.Body, "choices.0.message.tool_calls.0.extra_content.google.thought_signature").Str; sig != "CvABAdHtim8=" {
			t.Errorf("signature = %q", sig)
		}
	})
	t.Run("thinking reasoning_content", func(t *testing.T) {
		res, _ := translateGeminiResponse(t, "thinking")
		if got := gjson.GetBytes(res.Body, "choices.0.message.reasoning_content").Str; got != "27 * 453: 27*400=10800, 27*53=1431, total 12231." {
			t.Errorf("reasoning_content = %q", got)
		}
	})
	t.Run("second candidate", func(t *testing.T) {
		_, c := translateGeminiResponse(t, "candidates")
		if c.Choices[1].Index != 1 || c.Choices[1].Message.Content != "Lisbonne." {
			t.Errorf("choice 1 = %+v", c.Choices[1])
		}
	})
}

func TestOpenAIToGemini_ResponseBodyBad(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int // 0: malformed
	}{
		{"not JSON", `<html>`, 0},
		{"array", `[1]`, 0},
		{"no candidates", `{"usageMetadata":{}}`, 0},
		{"error in 2xx", `{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}`, 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newGeminiResponse(transform.ResponseOptions{}).ResponseBody([]byte(tt.body))
			var pe *transform.ProviderError
			switch {
			case tt.wantStatus == 0 && !errors.Is(err, transform.ErrMalformedResponse):
				t.Errorf("err = %v, want malformed", err)
			case tt.wantStatus != 0 && (!errors.As(err, &pe) || pe.Status != tt.wantStatus):
				t.Errorf("err = %v, want status %d", err, tt.wantStatus)
			}
		})
	}
}

// TestOpenAIToGemini_StreamChunkGolden replays every stream fixture with
// and without the usage chunk, as recorded, whole, byte by byte and split
// at every position, and expects the same output each time.
func TestOpenAIToGemini_StreamChunkGolden(t *testing.T) {
	for _, name := range fixtures(t, "gemini", "stream") {
		for _, includeUsage := range []bool{false, true} {
			golden := name + ".stream.golden.sse"
			if includeUsage {
				golden = name + ".stream.usage.golden.sse"
			}
			t.Run(golden, func(t *testing.T) {
				pieces := streamPieces(t, filepath.Join("testdata", "gemini", name+".stream.json"))
				opts := transform.ResponseOptions{Stream: true, IncludeUsage: includeUsage, Created: created}
				want, last := runStream(t, newGeminiResponse(opts), pieces)
				checkGolden(t, filepath.Join("testdata", "gemini", golden), want)
				checkChunks(t, want)

				whole := bytes.Join(pieces, nil)
				var bytewise [][]byte
				for i := range whole {
					bytewise = append(bytewise, whole[i:i+1])
				}
				replays := map[string][][][]byte{"whole": {{whole}}, "split": splitEverywhere(whole), "byte by byte": {bytewise}}
				for how, runs := range replays {
					for _, run := range runs {
						got, gotLast := runStream(t, newGeminiResponse(opts), run)
						if !bytes.Equal(got, want) || gotLast.Usage != last.Usage || gotLast.Done != last.Done {
							t.Fatalf("%s replay differs:\n got: %s\nwant: %s", how, got, want)
						}
					}
				}
			})
		}
	}
}

// geminiChunks translates a stream fixture and decodes its chunks with
// the OpenAI SDK, keeping the raw events for fields the SDK lacks.
func geminiChunks(t *testing.T, name string, includeUsage bool) ([]openai.ChatCompletionChunk, []string, transform.StreamResult) {
	t.Helper()
	pieces := streamPieces(t, filepath.Join("testdata", "gemini", name+".stream.json"))
	out, last := runStream(t, newGeminiResponse(transform.ResponseOptions{Stream: true, IncludeUsage: includeUsage, Created: created}), pieces)
	var chunks []openai.ChatCompletionChunk
	var raw []string
	for _, d := range sseDataLines(out) {
		if d == "[DONE]" || strings.HasPrefix(d, `{"error"`) {
			continue
		}
		var c openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
		raw = append(raw, d)
	}
	return chunks, raw, last
}

func TestOpenAIToGemini_StreamChunkFields(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		chunks, _, last := geminiChunks(t, "text", false)
		var content strings.Builder
		for _, c := range chunks {
			if len(c.Choices) == 0 {
				t.Fatal("usage chunk sent though the client did not ask")
			}
			content.WriteString(c.Choices[0].Delta.Content)
		}
		if chunks[0].Choices[0].Delta.Role != "assistant" || content.String() != "One, two, \"three\".\nDone ✓" {
			t.Errorf("role %q content %q", chunks[0].Choices[0].Delta.Role, content.String())
		}
		if f := chunks[len(chunks)-1].Choices[0].FinishReason; f != "stop" {
			t.Errorf("finish = %q", f)
		}
		want := transform.Usage{InputTokens: 8, OutputTokens: 9, CachedInputTokens: 4}
		if last.Usage != want || !last.Done || last.Model != "gemini-2.5-flash" || chunks[0].ID != "stream-text-1" {
			t.Errorf("usage %+v done %v model %q id %q", last.Usage, last.Done, last.Model, chunks[0].ID)
		}
	})
	t.Run("usage chunk", func(t *testing.T) {
		chunks, _, _ := geminiChunks(t, "thinking", true)
		u := chunks[len(chunks)-1]
		if len(u.Choices) != 0 || u.Usage.PromptTokens != 12 || u.Usage.CompletionTokens != 159 || u.Usage.CompletionTokensDetails.ReasoningTokens != 150 {
			t.Errorf("usage chunk = %+v", u.Usage)
		}
	})
	t.Run("tool_calls", func(t *testing.T) {
		chunks, raw, _ := geminiChunks(t, "tool_calls", false)
		type call struct {
			index          int64
			id, name, args string
		}
		var calls []call
		for _, c := range chunks {
			for _, tc := range c.Choices[0].Delta.ToolCalls {
				calls = append(calls, call{tc.Index, tc.ID, tc.Function.Name, tc.Function.Arguments})
			}
		}
		want := []call{{0, "call_stream-tools-1_0", "get_weather", `{"city":"Paris"}`}, {1, "call_stream-tools-1_1", "get_weather", `{"city":"Tokyo"}`}}
		if len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
			t.Errorf("calls = %+v", calls)
		}
		if f := chunks[len(chunks)-1].Choices[0].FinishReason; f != "tool_calls" {
			t.Errorf("finish = %q", f)
		}
		if sig := gjson.Get(raw[0], "choices.0.delta.tool_calls.0.extra_content.google.thought_signature").Str; sig != "CvABAdHtim8=" {
			t.Errorf("signature = %q in %s", sig, raw[0])
		}
	})
	t.Run("thinking", func(t *testing.T) {
		_, raw, _ := geminiChunks(t, "thinking", false)
		var reasoning, content strings.Builder
		for _, d := range raw {
			reasoning.WriteString(gjson.Get(d, "choices.0.delta.reasoning_content").Str)
			content.WriteString(gjson.Get(d, "choices.0.delta.content").Str)
		}
		if reasoning.String() != "27 * 453: 27*400=10800, 27*53=1431, total 12231." || content.String() != "27 × 453 = 12,231." {
			t.Errorf("reasoning %q content %q", reasoning.String(), content.String())
		}
	})
	t.Run("blocked", func(t *testing.T) {
		chunks, _, last := geminiChunks(t, "blocked", true)
		if len(chunks) != 3 || chunks[0].Choices[0].Delta.Role != "assistant" || chunks[1].Choices[0].FinishReason != "content_filter" ||
			chunks[2].Usage.PromptTokens != 6 || !last.Done {
			t.Errorf("chunks = %+v done %v", chunks, last.Done)
		}
	})
	t.Run("error", func(t *testing.T) {
		pieces := streamPieces(t, filepath.Join("testdata", "gemini", "error.stream.json"))
		out, last := runStream(t, newGeminiResponse(transform.ResponseOptions{Stream: true, Created: created}), pieces)
		lines := sseDataLines(out)
		if lines[len(lines)-1] != `{"error":{"message":"The model is overloaded. Please try again later.","type":"service_unavailable_error","param":null,"code":null}}` {
			t.Errorf("last event %s", lines[len(lines)-1])
		}
		if bytes.Contains(out, []byte("never sent")) || bytes.Contains(out, []byte("[DONE]")) || last.Done {
			t.Errorf("stream went on after the error: %s", out)
		}
		if last.Err == nil || last.Err.Status != 503 || last.Err.Type != transform.ErrorTypeOverloaded {
			t.Errorf("Err = %+v", last.Err)
		}
	})
	t.Run("cut before a finish reason", func(t *testing.T) {
		pieces := streamPieces(t, filepath.Join("testdata", "gemini", "text.stream.json"))
		out, last := runStream(t, newGeminiResponse(transform.ResponseOptions{Stream: true}), pieces[:1])
		if last.Done || bytes.Contains(out, []byte("[DONE]")) {
			t.Errorf("an unfinished stream ended normally: %s", out)
		}
	})
}

func TestOpenAIToGemini_StreamChunkMalformed(t *testing.T) {
	tr := newGeminiResponse(transform.ResponseOptions{Stream: true})
	res, err := tr.StreamChunk([]byte("data: {\"candidates\":[\r\n\r\n"), false)
	if !errors.Is(err, transform.ErrMalformedResponse) {
		t.Fatalf("err = %v", err)
	}
	lines := sseDataLines(res.Body)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `{"error":{`) || !json.Valid([]byte(lines[0])) {
		t.Errorf("body = %q", res.Body)
	}
	res, err = tr.StreamChunk([]byte(`data: {"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}]}`+"\r\n\r\n"), true)
	if err != nil || len(res.Body) != 0 {
		t.Errorf("input after the failure was translated: %q %v", res.Body, err)
	}
}

func TestOpenAIToGemini_ErrorBody(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantType   transform.ErrorType
		wantCode   string
		wantMsg    string
	}{
		{"invalid argument", 400, `{"error":{"code":400,"message":"Please use a valid role: user, model.","status":"INVALID_ARGUMENT"}}`, 400, transform.ErrorTypeInvalidRequest, "", "Please use a valid role: user, model."},
		{"token limit", 400, `{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`, 400, transform.ErrorTypeInvalidRequest, transform.CodeContextLengthExceeded, "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."},
		{"bad API key", 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`, 401, transform.ErrorTypeAuthentication, "", "API key not valid. Please pass a valid API key."},
		{"unauthenticated", 401, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`, 401, transform.ErrorTypeAuthentication, "", "Request had invalid authentication credentials."},
		{"permission denied", 403, `{"error":{"code":403,"message":"Permission denied on resource project p.","status":"PERMISSION_DENIED"}}`, 403, transform.ErrorTypePermission, "", "Permission denied on resource project p."},
		{"not found", 404, `{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}`, 404, transform.ErrorTypeNotFound, "", "models/gemini-9 is not found for API version v1beta"},
		{"resource exhausted", 429, `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`, 429, transform.ErrorTypeRateLimit, "", "Resource has been exhausted (e.g. check quota)."},
		{"internal", 500, `{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}`, 500, transform.ErrorTypeServer, "", "An internal error has occurred."},
		{"unavailable", 503, `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, 503, transform.ErrorTypeOverloaded, "", "The model is overloaded."},
		{"deadline", 504, `{"error":{"code":504,"message":"Deadline expired before operation could complete.","status":"DEADLINE_EXCEEDED"}}`, 504, transform.ErrorTypeServer, "", "Deadline expired before operation could complete."},
		{"Vertex array", 429, `[{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED"}}]`, 429, transform.ErrorTypeRateLimit, "", "Quota exceeded."},
		{"unknown status by code", 409, `{"error":{"code":409,"message":"Aborted.","status":"ABORTED"}}`, 409, transform.ErrorTypeInvalidRequest, "", "Aborted."},
		{"non-JSON", 502, `<html><body>502 Bad Gateway</body></html>`, 502, transform.ErrorTypeServer, "", "provider returned status 502 with an unreadable error body"},
		{"OpenAI-shaped from a proxy", 401, `{"error":"unauthorized"}`, 401, transform.ErrorTypeAuthentication, "", "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newGeminiResponse(transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body))
			want := transform.ProviderError{Status: tt.wantStatus, Type: tt.wantType, Code: tt.wantCode, Message: tt.wantMsg}
			if *got != want {
				t.Errorf("got %+v\nwant %+v", *got, want)
			}
		})
	}
}

func FuzzOpenAIToGemini_RequestBody(f *testing.F) {
	addFixtures(f, "gemini", "request")
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		for _, target := range []transform.Target{geminiTarget, vertexTarget} {
			tr := newGeminiRequest(target)
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
		}
	})
}

func FuzzOpenAIToGemini_ResponseBody(f *testing.F) {
	addFixtures(f, "gemini", "response")
	f.Fuzz(func(t *testing.T, body []byte) {
		tr := newGeminiResponse(transform.ResponseOptions{Created: created})
		res, err := tr.ResponseBody(body)
		if err == nil && !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		if e := tr.ErrorBody(400, body); e == nil || e.Status < 400 || e.Message == "" {
			t.Fatalf("ErrorBody(%q) = %+v", body, e)
		}
	})
}

func FuzzOpenAIToGemini_StreamChunk(f *testing.F) {
	addFixtures(f, "gemini", "stream")
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		opts := transform.ResponseOptions{Stream: true, IncludeUsage: cut%2 == 0, Created: created}
		got := translateSplit(newGeminiResponse(opts), stream, cut)
		for _, d := range sseDataLines(got) {
			if d != "[DONE]" && !json.Valid([]byte(d)) {
				t.Fatalf("invalid event %s from %q", d, stream)
			}
		}
		if whole := translateSplit(newGeminiResponse(opts), stream, len(stream)); !bytes.Equal(got, whole) {
			t.Fatalf("output depends on the cut:\n split: %q\n whole: %q", got, whole)
		}
	})
}

func BenchmarkOpenAIToGemini_RequestBody(b *testing.B) {
	for _, name := range []string{"chat_2k", "tool_results", "tools"} {
		body := readFile(b, filepath.Join("testdata", "gemini", name+".request.json"))
		b.Run(name, func(b *testing.B) {
			tr := newGeminiRequest(geminiTarget)
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

func BenchmarkOpenAIToGemini_ResponseBody(b *testing.B) {
	for _, name := range []string{"text", "tool_calls"} {
		body := readFile(b, filepath.Join("testdata", "gemini", name+".response.json"))
		b.Run(name, func(b *testing.B) {
			tr := newGeminiResponse(transform.ResponseOptions{Created: created})
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := tr.ResponseBody(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenAIToGemini_StreamChunk measures one SSE event per operation
// once the stream has started.
func BenchmarkOpenAIToGemini_StreamChunk(b *testing.B) {
	text := streamPieces(b, filepath.Join("testdata", "gemini", "text.stream.json"))
	tools := streamPieces(b, filepath.Join("testdata", "gemini", "tool_calls.stream.json"))
	events := map[string][]byte{
		"text":          text[0],
		"function_call": tools[0],
	}
	for name, ev := range events {
		b.Run(name, func(b *testing.B) {
			tr := newGeminiResponse(transform.ResponseOptions{Stream: true, Created: created})
			if _, err := tr.StreamChunk(ev, false); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(ev)))
			for b.Loop() {
				if _, err := tr.StreamChunk(ev, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
