package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

var anthropicTarget = transform.Target{
	Model:  "claude-sonnet-4-5",
	APIKey: "sk-ant-test",
}

func newAnthropicRequest(t testing.TB, target transform.Target) transform.RequestTranslator {
	t.Helper()
	tr, err := transform.NewRequestTranslator(transform.APIChatCompletions, transform.ProviderAnthropic, target)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newAnthropicResponse(t testing.TB, opts transform.ResponseOptions) transform.ResponseTranslator {
	t.Helper()
	tr, err := transform.NewResponseTranslator(transform.APIChatCompletions, transform.ProviderAnthropic, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestOpenAIToAnthropic_RequestBodyGolden translates every request fixture,
// compares it with its golden file, checks that the Anthropic SDK accepts
// it, and that translating again gives the same bytes from an untouched
// input.
func TestOpenAIToAnthropic_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "anthropic", "request") {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, filepath.Join("testdata", "anthropic", name+".request.json"))
			pristine := bytes.Clone(in)
			tr := newAnthropicRequest(t, anthropicTarget)
			res, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "anthropic", name+".request.golden.json"), requestGolden(t, res))

			var params anthropic.MessageNewParams
			if err := json.Unmarshal(res.Body, &params); err != nil {
				t.Fatalf("anthropic SDK rejects the body: %v", err)
			}
			if params.Model != "claude-sonnet-4-5" || params.MaxTokens <= 0 || len(params.Messages) == 0 {
				t.Errorf("model %q, max_tokens %d, %d messages", params.Model, params.MaxTokens, len(params.Messages))
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

// translateAnthropic translates a fixture and decodes it with the SDK.
func translateAnthropic(t *testing.T, name string) (transform.RequestResult, anthropic.MessageNewParams) {
	t.Helper()
	in := readFile(t, filepath.Join("testdata", "anthropic", name+".request.json"))
	res, err := newAnthropicRequest(t, anthropicTarget).RequestBody(in)
	if err != nil {
		t.Fatal(err)
	}
	var p anthropic.MessageNewParams
	if err := json.Unmarshal(res.Body, &p); err != nil {
		t.Fatal(err)
	}
	return res, p
}

func roles(p anthropic.MessageNewParams) string {
	var r []string
	for _, m := range p.Messages {
		r = append(r, string(m.Role))
	}
	return strings.Join(r, ",")
}

func TestOpenAIToAnthropic_RequestBodyFields(t *testing.T) {
	t.Run("system_developer", func(t *testing.T) {
		res, p := translateAnthropic(t, "system_developer")
		if res.Path != "/v1/messages" || res.Stream {
			t.Errorf("path %q stream %v", res.Path, res.Stream)
		}
		if len(p.System) != 2 || p.System[0].Text != "You are a terse assistant." || p.System[1].Text != "Answer in French." {
			t.Fatalf("system = %+v", p.System)
		}
		if p.System[1].CacheControl.Type != "ephemeral" {
			t.Error("developer cache_control lost")
		}
		if roles(p) != "user" {
			t.Errorf("roles = %s", roles(p))
		}
		if p.MaxTokens != 4096 {
			t.Errorf("default max_tokens = %d", p.MaxTokens)
		}
		if p.Temperature.Value != 0.2 || p.TopP.Value != 0.9 || p.TopK.Value != 40 {
			t.Errorf("temperature %v top_p %v top_k %v", p.Temperature, p.TopP, p.TopK)
		}
		if len(p.StopSequences) != 1 || p.StopSequences[0] != "\n\nHuman:" {
			t.Errorf("stop_sequences = %q", p.StopSequences)
		}
	})
	// web_search_options becomes the server web search tool; the
	// parameters that only tag the request are not sent, but
	// safety_identifier is the user id Anthropic asks for.
	t.Run("web_search", func(t *testing.T) {
		res, p := translateAnthropic(t, "web_search")
		if len(p.Tools) != 2 || p.Tools[0].OfTool == nil || p.Tools[0].OfTool.Name != "get_weather" {
			t.Fatalf("tools = %s", res.Body)
		}
		ws := p.Tools[1].OfWebSearchTool20250305
		if ws == nil {
			t.Fatalf("no web search tool: %s", res.Body)
		}
		loc := ws.UserLocation
		if ws.MaxUses.Value != 10 || loc.City.Value != "Lyon" || loc.Region.Value != "Auvergne-Rhône-Alpes" ||
			loc.Country.Value != "FR" || loc.Timezone.Value != "Europe/Paris" {
			t.Errorf("web search tool = %+v", ws)
		}
		if p.ToolChoice.OfAuto == nil {
			t.Errorf("tool_choice = %+v, want auto", p.ToolChoice)
		}
		if p.Metadata.UserID.Value != "sid-9f86d081" {
			t.Errorf("metadata.user_id = %q, want the safety_identifier", p.Metadata.UserID.Value)
		}
		for _, k := range []string{"store", "service_tier", "prompt_cache_key", "modalities", "team"} {
			if bytes.Contains(res.Body, []byte(k)) {
				t.Errorf("%s reached anthropic: %s", k, res.Body)
			}
		}
	})
	t.Run("multi_turn", func(t *testing.T) {
		_, p := translateAnthropic(t, "multi_turn")
		if roles(p) != "user,assistant,user,assistant,user" {
			t.Errorf("roles = %s", roles(p))
		}
		if n := len(p.Messages[2].Content); n != 2 {
			t.Errorf("third message has %d blocks, want 2", n)
		}
		if got := p.Messages[4].Content[0].OfText.Text; got != `Thanks "friend" — anything else?` {
			t.Errorf("text = %q", got)
		}
		if p.MaxTokens != 512 {
			t.Errorf("max_tokens = %d, want max_completion_tokens 512", p.MaxTokens)
		}
		if strings.Join(p.StopSequences, "|") != "END|STOP" {
			t.Errorf("stop_sequences = %q, want whitespace-only dropped", p.StopSequences)
		}
		if p.Metadata.UserID.Value != "user-1234" {
			t.Errorf("metadata = %+v", p.Metadata)
		}
	})
	t.Run("tools", func(t *testing.T) {
		_, p := translateAnthropic(t, "tools")
		if len(p.Tools) != 2 {
			t.Fatalf("%d tools", len(p.Tools))
		}
		w := p.Tools[0].OfTool
		if w == nil || w.Name != "get_weather" || w.Description.Value != "Current weather for a city." {
			t.Fatalf("tool 0 = %+v", w)
		}
		if len(w.InputSchema.Required) != 1 || w.InputSchema.Required[0] != "city" || w.InputSchema.Properties == nil {
			t.Errorf("input_schema = %+v", w.InputSchema)
		}
		tm := p.Tools[1].OfTool
		if tm == nil || tm.Name != "get_time" || tm.CacheControl.Type != "ephemeral" {
			t.Fatalf("tool 1 = %+v", tm)
		}
		if props, ok := tm.InputSchema.Properties.(map[string]any); !ok || len(props) != 0 {
			t.Errorf("missing parameters gave properties %#v", tm.InputSchema.Properties)
		}
		tc := p.ToolChoice.OfTool
		if tc == nil || tc.Name != "get_weather" || !tc.DisableParallelToolUse.Value {
			t.Errorf("tool_choice = %+v", p.ToolChoice)
		}
	})
	t.Run("tool_choice_required", func(t *testing.T) {
		_, p := translateAnthropic(t, "tool_choice_required")
		if p.ToolChoice.OfAny == nil {
			t.Errorf("tool_choice = %+v, want any", p.ToolChoice)
		}
	})
	t.Run("tool_results", func(t *testing.T) {
		_, p := translateAnthropic(t, "tool_results")
		if roles(p) != "user,assistant,user" {
			t.Fatalf("roles = %s", roles(p))
		}
		calls := p.Messages[1].Content
		if len(calls) != 2 || calls[0].OfToolUse == nil || calls[0].OfToolUse.ID != "toolu_01A" || calls[1].OfToolUse.Name != "get_weather" {
			t.Fatalf("assistant blocks = %+v", calls)
		}
		if in, ok := calls[0].OfToolUse.Input.(map[string]any); !ok || in["city"] != "Paris" {
			t.Errorf("tool_use input = %#v", calls[0].OfToolUse.Input)
		}
		results := p.Messages[2].Content
		if len(results) != 3 || results[0].OfToolResult == nil || results[0].OfToolResult.ToolUseID != "toolu_01A" ||
			results[1].OfToolResult == nil || results[1].OfToolResult.ToolUseID != "toolu_01B" || results[2].OfText == nil {
			t.Fatalf("user blocks = %+v", results)
		}
		if c := results[1].OfToolResult.Content; len(c) != 1 || c[0].OfText == nil || c[0].OfText.Text != "22°C, sunny" {
			t.Errorf("tool_result content = %+v", c)
		}
		if p.ToolChoice.OfAuto == nil {
			t.Errorf("tool_choice = %+v, want auto", p.ToolChoice)
		}
	})
	t.Run("images", func(t *testing.T) {
		_, p := translateAnthropic(t, "images")
		blocks := p.Messages[0].Content
		if len(blocks) != 3 || blocks[1].OfImage == nil || blocks[2].OfImage == nil {
			t.Fatalf("blocks = %+v", blocks)
		}
		b64 := blocks[1].OfImage.Source.OfBase64
		if b64 == nil || b64.MediaType != "image/png" || !strings.HasPrefix(b64.Data, "iVBORw0KGgo") {
			t.Errorf("base64 source = %+v", blocks[1].OfImage.Source)
		}
		url := blocks[2].OfImage.Source.OfURL
		if url == nil || url.URL != "https://example.com/cat.jpg" || blocks[2].OfImage.CacheControl.Type != "ephemeral" {
			t.Errorf("url image = %+v", blocks[2].OfImage)
		}
		if len(p.System) != 1 || p.System[0].CacheControl.Type != "ephemeral" {
			t.Errorf("system = %+v", p.System)
		}
		if p.MaxTokens != 300 {
			t.Errorf("max_tokens = %d", p.MaxTokens)
		}
	})
	t.Run("json_schema", func(t *testing.T) {
		_, p := translateAnthropic(t, "json_schema")
		if len(p.Tools) != 1 || p.Tools[0].OfTool == nil || p.Tools[0].OfTool.Name != "json_tool_call" {
			t.Fatalf("tools = %+v", p.Tools)
		}
		if req := p.Tools[0].OfTool.InputSchema.Required; len(req) != 2 {
			t.Errorf("schema required = %v", req)
		}
		if tc := p.ToolChoice.OfTool; tc == nil || tc.Name != "json_tool_call" {
			t.Errorf("tool_choice = %+v", p.ToolChoice)
		}
	})
	t.Run("stream", func(t *testing.T) {
		res, p := translateAnthropic(t, "stream")
		if !res.Stream || !bytes.Contains(res.Body, []byte(`"stream":true`)) || p.Model != "claude-sonnet-4-5" {
			t.Errorf("stream %v body %s", res.Stream, res.Body)
		}
	})
}

func TestOpenAIToAnthropic_RequestBodyTarget(t *testing.T) {
	body := []byte(`{"model":"client-model","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}`)
	tests := []struct {
		name       string
		target     transform.Target
		wantPath   string
		wantModel  string
		wantMax    string
		wantKey    bool
		wantChoice string
	}{
		{"defaults", transform.Target{}, "/v1/messages", `"model":"client-model"`, `"max_tokens":4096`, false, `"tool_choice":{"type":"auto","disable_parallel_tool_use":true}`},
		{"deployment", transform.Target{Model: "claude-x", BasePath: "/anthropic", APIKey: "k", DefaultMaxTokens: 1000}, "/anthropic/v1/messages", `"model":"claude-x"`, `"max_tokens":1000`, true, `"disable_parallel_tool_use":true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newAnthropicRequest(t, tt.target).RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.wantPath {
				t.Errorf("path = %q", res.Path)
			}
			for _, want := range []string{tt.wantModel, tt.wantMax, tt.wantChoice} {
				if !bytes.Contains(res.Body, []byte(want)) {
					t.Errorf("body lacks %s: %s", want, res.Body)
				}
			}
			hasKey := false
			for _, h := range res.SetHeaders {
				if h.Key == "x-api-key" {
					hasKey = h.Value == tt.target.APIKey
				}
			}
			removed := strings.Join(res.RemoveHeaders, ",")
			if hasKey != tt.wantKey || strings.Contains(removed, "x-api-key") == tt.wantKey || !strings.Contains(removed, "authorization") {
				t.Errorf("set %v remove %v", res.SetHeaders, res.RemoveHeaders)
			}
		})
	}
}

func TestOpenAIToAnthropic_RequestBodyInvalid(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantParam string
	}{
		{"malformed JSON", `{"messages":[`, ""},
		{"not an object", `[1,2]`, ""},
		{"messages missing", `{"model":"m"}`, "messages"},
		{"messages not array", `{"model":"m","messages":"hi"}`, "messages"},
		{"only system", `{"model":"m","messages":[{"role":"system","content":"x"}]}`, "messages"},
		{"no model", `{"messages":[{"role":"user","content":"hi"}]}`, "model"},
		{"bad reasoning_effort", `{"model":"m","reasoning_effort":"max","messages":[{"role":"user","content":"hi"}]}`, "reasoning_effort"},
		{"numeric content", `{"model":"m","messages":[{"role":"user","content":42}]}`, "messages[0].content"},
		{"object content", `{"model":"m","messages":[{"role":"user","content":{"text":"hi"}}]}`, "messages[0].content"},
		{"audio part", `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`, "messages[0].content[0]"},
		{"non-string text", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]}`, "messages[0].content[0]"},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"hi"}]}`, "messages[0].content[0]"},
		{"bad image url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0]"},
		{"non-base64 data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "messages[0].content[0]"},
		{"bad tool arguments", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{not json"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"array tool arguments", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"tool call without id", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}]}`, "messages[1].tool_calls[0]"},
		{"tool message without id", `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
		{"unknown role", `{"model":"m","messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
		{"n > 1", `{"model":"m","n":2,"messages":[{"role":"user","content":"hi"}]}`, "n"},
		{"logprobs", `{"model":"m","logprobs":true,"messages":[{"role":"user","content":"hi"}]}`, "logprobs"},
		{"top_logprobs", `{"model":"m","top_logprobs":3,"messages":[{"role":"user","content":"hi"}]}`, "top_logprobs"},
		{"logit_bias", `{"model":"m","logit_bias":{"50256":-100},"messages":[{"role":"user","content":"hi"}]}`, "logit_bias"},
		{"presence_penalty", `{"model":"m","presence_penalty":0.5,"messages":[{"role":"user","content":"hi"}]}`, "presence_penalty"},
		{"seed", `{"model":"m","seed":7,"messages":[{"role":"user","content":"hi"}]}`, "seed"},
		{"max_tokens zero", `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, "max_tokens"},
		{"max_tokens string", `{"model":"m","max_completion_tokens":"9","messages":[{"role":"user","content":"hi"}]}`, "max_completion_tokens"},
		{"temperature string", `{"model":"m","temperature":"hot","messages":[{"role":"user","content":"hi"}]}`, "temperature"},
		{"fractional top_k", `{"model":"m","top_k":2.5,"messages":[{"role":"user","content":"hi"}]}`, "top_k"},
		{"stop number", `{"model":"m","stop":[1],"messages":[{"role":"user","content":"hi"}]}`, "stop"},
		{"bad tool_choice", `{"model":"m","tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`, "tool_choice"},
		{"hosted tool", `{"model":"m","tools":[{"type":"web_search"}],"messages":[{"role":"user","content":"hi"}]}`, "tools[0].type"},
		{"tool without name", `{"model":"m","tools":[{"type":"function","function":{}}],"messages":[{"role":"user","content":"hi"}]}`, "tools[0].function.name"},
		{"reserved tool name", `{"model":"m","tools":[{"type":"function","function":{"name":"json_tool_call"}}],"messages":[{"role":"user","content":"hi"}]}`, "tools[0].function.name"},
		{"bad response_format", `{"model":"m","response_format":{"type":"yaml"},"messages":[{"role":"user","content":"hi"}]}`, "response_format"},
		{"prediction", `{"model":"m","prediction":{"type":"content","content":"x"},"messages":[{"role":"user","content":"hi"}]}`, "prediction"},
		{"verbosity", `{"model":"m","verbosity":"low","messages":[{"role":"user","content":"hi"}]}`, "verbosity"},
		{"audio output", `{"model":"m","modalities":["text","audio"],"messages":[{"role":"user","content":"hi"}]}`, "modalities"},
		{"web_search_options not an object", `{"model":"m","web_search_options":true,"messages":[{"role":"user","content":"hi"}]}`, "web_search_options"},
		{"bad search_context_size", `{"model":"m","web_search_options":{"search_context_size":"huge"},"messages":[{"role":"user","content":"hi"}]}`, "web_search_options.search_context_size"},
		{"exact user_location", `{"model":"m","web_search_options":{"user_location":{"type":"exact","approximate":{"city":"Lyon"}}},"messages":[{"role":"user","content":"hi"}]}`, "web_search_options.user_location"},
		{"numeric city", `{"model":"m","web_search_options":{"user_location":{"type":"approximate","approximate":{"city":7}}},"messages":[{"role":"user","content":"hi"}]}`, "web_search_options.user_location.approximate.city"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newAnthropicRequest(t, transform.Target{}).RequestBody([]byte(tt.body))
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

func TestOpenAIToAnthropic_RequestBodyOptions(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string
		notWant []string
	}{
		{"tool_choice none", `{"model":"m","tool_choice":"none","parallel_tool_calls":false,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"tool_choice":{"type":"none"}`}, nil},
		{"top_k", `{"model":"m","top_k":40,"top_p":0.9,"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"top_p":0.9,"top_k":40`}, nil},
		{"parallel_tool_calls true is Anthropic's default", `{"model":"m","parallel_tool_calls":true,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"tool_choice":{"type":"auto"}`}, []string{`disable_parallel_tool_use`}},
		{"tool_choice without tools is dropped", `{"model":"m","tool_choice":"required","messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`tool_choice`, `"tools"`}},
		{"json_object", `{"model":"m","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`{"name":"json_tool_call","input_schema":{"type":"object","additionalProperties":true,"properties":{}}}`, `"tool_choice":{"type":"tool","name":"json_tool_call"}`}, nil},
		{"json mode with thinking is not forced", `{"model":"m","thinking":{"type":"enabled","budget_tokens":2048},"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"tool_choice":{"type":"auto"}`, `"thinking":{"type":"enabled","budget_tokens":2048}`}, nil},
		{"reasoning_effort becomes thinking", `{"model":"m","reasoning_effort":"medium","messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"max_tokens":4096`, `"thinking":{"type":"enabled","budget_tokens":2048}`}, nil},
		{"reasoning_effort high leaves room for the answer", `{"model":"m","reasoning_effort":"high","messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"max_tokens":8192`, `"budget_tokens":4096`}, nil},
		{"reasoning_effort budget fits max_tokens", `{"model":"m","reasoning_effort":"high","max_completion_tokens":3000,"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"max_tokens":3000`, `"budget_tokens":2999`}, nil},
		{"reasoning_effort with too few max_tokens", `{"model":"m","reasoning_effort":"low","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"max_tokens":500`}, []string{`thinking`}},
		{"reasoning_effort minimal takes Anthropic's minimum budget", `{"model":"m","reasoning_effort":"minimal","messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"budget_tokens":1024`}, nil},
		{"reasoning_effort none", `{"model":"m","reasoning_effort":"none","messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"max_tokens":4096`}, []string{`thinking`}},
		{"thinking wins over reasoning_effort", `{"model":"m","reasoning_effort":"high","thinking":{"type":"disabled"},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"thinking":{"type":"disabled"}`}, []string{`budget_tokens`}},
		{"json mode with reasoning_effort is not forced", `{"model":"m","reasoning_effort":"low","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"tool_choice":{"type":"auto"}`, `"budget_tokens":1024`}, nil},
		{"text response_format", `{"model":"m","response_format":{"type":"text"},"messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`json_tool_call`}},
		{"web search alone", `{"model":"m","web_search_options":{"search_context_size":"low"},"tool_choice":"required","messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":1}],"tool_choice":{"type":"any"}`}, nil},
		{"empty web_search_options searches without limits", `{"model":"m","web_search_options":{},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"tools":[{"type":"web_search_20250305","name":"web_search"}]`}, []string{`max_uses`, `user_location`}},
		{"json mode with web search is not forced", `{"model":"m","web_search_options":{"search_context_size":"medium"},"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`{"type":"web_search_20250305","name":"web_search","max_uses":5},{"name":"json_tool_call"`, `"tool_choice":{"type":"auto"}`}, nil},
		{"user when no safety_identifier", `{"model":"m","user":"u-1","safety_identifier":"a@b.com","messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"metadata":{"user_id":"u-1"}`}, nil},
		{"email user is not sent", `{"model":"m","user":"a@b.com","messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`metadata`}},
		{"phone user is not sent", `{"model":"m","user":"+1 (555) 010-9999","messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`metadata`}},
		{"consecutive users merge", `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
			[]string{`"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]`}, nil},
		{"empty assistant text with tool calls", `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":""}}]}]}`,
			[]string{`{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}`}, nil},
		{"pdf data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:application/pdf;base64,JVBERi0="}}]}]}`,
			[]string{`{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}`}, nil},
		{"escaped slash in data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image\/png;base64,ab\/c="}}]}]}`,
			[]string{`"media_type":"image/png","data":"ab/c="`}, nil},
		{"tool result image and empty content", `{"model":"m","messages":[{"role":"tool","tool_call_id":"t1","content":[{"type":"image_url","image_url":"https://x/y.png"}]},{"role":"tool","tool_call_id":"t2","content":[]}]}`,
			[]string{`{"type":"tool_result","tool_use_id":"t1","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]},{"type":"tool_result","tool_use_id":"t2"}`}, nil},
		{"null fields ignored", `{"model":"m","temperature":null,"stop":null,"tools":null,"messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`temperature`, `stop_sequences`, `tools`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newAnthropicRequest(t, transform.Target{}).RequestBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(res.Body) {
				t.Fatalf("invalid JSON: %s", res.Body)
			}
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

// TestOpenAIToAnthropic_ResponseBodyGolden translates every response
// fixture, compares it with its golden file and checks that the OpenAI SDK
// reads it.
func TestOpenAIToAnthropic_ResponseBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "anthropic", "response") {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, filepath.Join("testdata", "anthropic", name+".response.json"))
			res, err := newAnthropicResponse(t, transform.ResponseOptions{Created: created}).ResponseBody(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "anthropic", name+".response.golden.json"), indentJSON(t, res.Body))
			var c openai.ChatCompletion
			if err := json.Unmarshal(res.Body, &c); err != nil {
				t.Fatal(err)
			}
			if c.Object != "chat.completion" || c.Created != created || len(c.Choices) != 1 || c.Model != res.Model {
				t.Errorf("completion = %+v", c)
			}
		})
	}
}

func translateResponse(t *testing.T, name string) (transform.ResponseResult, openai.ChatCompletion) {
	t.Helper()
	in := readFile(t, filepath.Join("testdata", "anthropic", name+".response.json"))
	res, err := newAnthropicResponse(t, transform.ResponseOptions{Created: created}).ResponseBody(in)
	if err != nil {
		t.Fatal(err)
	}
	var c openai.ChatCompletion
	if err := json.Unmarshal(res.Body, &c); err != nil {
		t.Fatal(err)
	}
	return res, c
}

func TestOpenAIToAnthropic_ResponseBodyFields(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		res, c := translateResponse(t, "text")
		m := c.Choices[0].Message
		if m.Content != "La capitale de l'Italie est \"Rome\".\nBonne journée !" || c.Choices[0].FinishReason != "stop" || c.ID != "msg_01XFDUDYJgAACzvnptvVoYEL" {
			t.Errorf("content %q finish %q id %q", m.Content, c.Choices[0].FinishReason, c.ID)
		}
		if c.Usage.PromptTokens != 4221 || c.Usage.CompletionTokens != 14 || c.Usage.TotalTokens != 4235 ||
			c.Usage.PromptTokensDetails.CachedTokens != 3000 || c.Usage.PromptTokensDetails.CacheWriteTokens != 1200 {
			t.Errorf("usage = %+v", c.Usage)
		}
		want := transform.Usage{InputTokens: 4221, OutputTokens: 14, CachedInputTokens: 3000, CacheCreationInputTokens: 1200}
		if res.Usage != want || res.Model != "claude-sonnet-4-5-20250929" {
			t.Errorf("result usage %+v model %q", res.Usage, res.Model)
		}
	})
	// Searches are billed per search, so their count travels with the usage.
	t.Run("web_search", func(t *testing.T) {
		res, _ := translateResponse(t, "web_search")
		if res.Usage != (transform.Usage{InputTokens: 6039, OutputTokens: 931, WebSearches: 1}) {
			t.Errorf("usage = %+v", res.Usage)
		}
		_, last := streamChunks(t, "web_search", false)
		if last.Usage != (transform.Usage{InputTokens: 10682, OutputTokens: 510, WebSearches: 1}) {
			t.Errorf("stream usage = %+v", last.Usage)
		}
	})
	t.Run("tool_use", func(t *testing.T) {
		_, c := translateResponse(t, "tool_use")
		ch := c.Choices[0]
		if ch.FinishReason != "tool_calls" || ch.Message.Content != "I'll check both cities." || len(ch.Message.ToolCalls) != 2 {
			t.Fatalf("choice = %+v", ch)
		}
		tc := ch.Message.ToolCalls[1]
		if tc.ID != "toolu_01B19q90qw90lq917835lq9" || tc.Type != "function" || tc.Function.Name != "get_weather" {
			t.Errorf("tool call = %+v", tc)
		}
		if tc.Function.Arguments != `{"city":"Tokyo \"JP\"","nested":{"a":[1,2,{"b":null}]}}` {
			t.Errorf("arguments = %s", tc.Function.Arguments)
		}
	})
	t.Run("json_schema unwrapped", func(t *testing.T) {
		_, c := translateResponse(t, "json_schema")
		ch := c.Choices[0]
		if ch.Message.Content != `{"name":"Alice","age":30}` || ch.FinishReason != "stop" || len(ch.Message.ToolCalls) != 0 {
			t.Errorf("choice = %+v", ch)
		}
	})
	t.Run("thinking", func(t *testing.T) {
		res, c := translateResponse(t, "thinking")
		if c.Choices[0].Message.Content != "27 × 453 = 12,231." {
			t.Errorf("content = %q", c.Choices[0].Message.Content)
		}
		var raw struct {
			Choices []struct {
				Message struct {
					ReasoningContent string `json:"reasoning_content"`
				} `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(res.Body, &raw); err != nil || raw.Choices[0].Message.ReasoningContent != "27 * 453: 27*400=10800, 27*53=1431, total 12231." {
			t.Errorf("reasoning_content = %+v %v", raw, err)
		}
	})
	t.Run("max_tokens", func(t *testing.T) {
		_, c := translateResponse(t, "max_tokens")
		if c.Choices[0].FinishReason != "length" {
			t.Errorf("finish = %q", c.Choices[0].FinishReason)
		}
	})
	// Claude's safety classifier stops a reply with stop_reason refusal;
	// OpenAI clients know a filtered reply by content_filter, and keep the
	// text sent before it.
	t.Run("refusal", func(t *testing.T) {
		res, c := translateResponse(t, "refusal")
		if c.Choices[0].FinishReason != "content_filter" || c.Choices[0].Message.Content != "I can't help with" {
			t.Errorf("finish %q content %q", c.Choices[0].FinishReason, c.Choices[0].Message.Content)
		}
		if res.Usage != (transform.Usage{InputTokens: 31, OutputTokens: 6}) {
			t.Errorf("usage %+v", res.Usage)
		}
	})
}

func TestOpenAIToAnthropic_ResponseBodyBad(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int // 0: malformed
	}{
		{"not JSON", `<html>`, 0},
		{"not a message", `{"type":"completion"}`, 0},
		{"error in 2xx", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newAnthropicResponse(t, transform.ResponseOptions{}).ResponseBody([]byte(tt.body))
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

// TestOpenAIToAnthropic_StreamChunkGolden replays every stream fixture with
// and without the usage chunk, as recorded, whole, byte by byte and split
// at every position, and expects the same output each time.
func TestOpenAIToAnthropic_StreamChunkGolden(t *testing.T) {
	for _, name := range fixtures(t, "anthropic", "stream") {
		for _, includeUsage := range []bool{false, true} {
			golden := name + ".stream.golden.sse"
			if includeUsage {
				golden = name + ".stream.usage.golden.sse"
			}
			t.Run(golden, func(t *testing.T) {
				pieces := streamPieces(t, filepath.Join("testdata", "anthropic", name+".stream.json"))
				opts := transform.ResponseOptions{Stream: true, IncludeUsage: includeUsage, Created: created}
				want, last := runStream(t, newAnthropicResponse(t, opts), pieces)
				checkGolden(t, filepath.Join("testdata", "anthropic", golden), want)
				checkChunks(t, want)

				whole := bytes.Join(pieces, nil)
				replays := map[string][][][]byte{"whole": {{whole}}, "split": splitEverywhere(whole)}
				var bytewise [][]byte
				for i := range whole {
					bytewise = append(bytewise, whole[i:i+1])
				}
				replays["byte by byte"] = [][][]byte{bytewise}
				for how, runs := range replays {
					for _, run := range runs {
						got, gotLast := runStream(t, newAnthropicResponse(t, opts), run)
						if !bytes.Equal(got, want) || gotLast.Usage != last.Usage || gotLast.Done != last.Done {
							t.Fatalf("%s replay differs:\n got: %s\nwant: %s", how, got, want)
						}
					}
				}
			})
		}
	}
}

// checkChunks checks that every event of a translated stream is a chunk
// the OpenAI SDK reads (or an error event), and that [DONE] ends it.
func checkChunks(t *testing.T, stream []byte) {
	t.Helper()
	lines := sseDataLines(stream)
	for i, d := range lines {
		if d == "[DONE]" {
			if i != len(lines)-1 {
				t.Errorf("[DONE] is not last")
			}
			continue
		}
		if strings.HasPrefix(d, `{"error"`) {
			if !json.Valid([]byte(d)) {
				t.Errorf("invalid error event %s", d)
			}
			continue
		}
		var c openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			t.Fatalf("chunk %s: %v", d, err)
		}
		if c.Object != "chat.completion.chunk" || c.Created != created || c.ID == "" || c.Model == "" {
			t.Errorf("chunk header %s", d)
		}
	}
}

// streamChunks translates a stream fixture and decodes its chunks.
func streamChunks(t *testing.T, name string, includeUsage bool) ([]openai.ChatCompletionChunk, transform.StreamResult) {
	t.Helper()
	pieces := streamPieces(t, filepath.Join("testdata", "anthropic", name+".stream.json"))
	out, last := runStream(t, newAnthropicResponse(t, transform.ResponseOptions{Stream: true, IncludeUsage: includeUsage, Created: created}), pieces)
	var chunks []openai.ChatCompletionChunk
	for _, d := range sseDataLines(out) {
		if d == "[DONE]" || strings.HasPrefix(d, `{"error"`) {
			continue
		}
		var c openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
	}
	return chunks, last
}

func TestOpenAIToAnthropic_StreamChunkFields(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		chunks, last := streamChunks(t, "text", false)
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
		want := transform.Usage{InputTokens: 145, OutputTokens: 15, CachedInputTokens: 100, CacheCreationInputTokens: 20}
		if last.Usage != want || !last.Done || last.Model != "claude-sonnet-4-5-20250929" {
			t.Errorf("usage %+v done %v model %q", last.Usage, last.Done, last.Model)
		}
	})
	t.Run("text with usage chunk", func(t *testing.T) {
		chunks, _ := streamChunks(t, "text", true)
		u := chunks[len(chunks)-1]
		if len(u.Choices) != 0 || u.Usage.PromptTokens != 145 || u.Usage.CompletionTokens != 15 || u.Usage.PromptTokensDetails.CachedTokens != 100 {
			t.Errorf("usage chunk = %+v", u)
		}
	})
	t.Run("tool_use", func(t *testing.T) {
		chunks, _ := streamChunks(t, "tool_use", false)
		type call struct{ id, name, args string }
		var calls []call
		for _, c := range chunks {
			for _, tc := range c.Choices[0].Delta.ToolCalls {
				for int(tc.Index) >= len(calls) {
					calls = append(calls, call{})
				}
				cl := &calls[tc.Index]
				if tc.ID != "" {
					cl.id, cl.name = tc.ID, tc.Function.Name
				}
				cl.args += tc.Function.Arguments
			}
		}
		want := []call{{"toolu_01Paris", "get_weather", `{"city": "Paris"}`}, {"toolu_01Tokyo", "get_weather", `{"city":"Tokyo"}`}}
		if len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
			t.Errorf("calls = %+v", calls)
		}
		if f := chunks[len(chunks)-1].Choices[0].FinishReason; f != "tool_calls" {
			t.Errorf("finish = %q", f)
		}
	})
	t.Run("json_schema unwrapped", func(t *testing.T) {
		chunks, _ := streamChunks(t, "json_schema", false)
		var content strings.Builder
		for _, c := range chunks {
			if len(c.Choices[0].Delta.ToolCalls) > 0 {
				t.Fatal("json tool call leaked")
			}
			content.WriteString(c.Choices[0].Delta.Content)
		}
		if content.String() != `{"name": "Alice", "age": 30}` || chunks[len(chunks)-1].Choices[0].FinishReason != "stop" {
			t.Errorf("content %q", content.String())
		}
	})
	t.Run("thinking", func(t *testing.T) {
		pieces := streamPieces(t, filepath.Join("testdata", "anthropic", "thinking.stream.json"))
		out, _ := runStream(t, newAnthropicResponse(t, transform.ResponseOptions{Stream: true, Created: created}), pieces)
		var reasoning, content strings.Builder
		for _, d := range sseDataLines(out) {
			var c struct {
				Choices []struct {
					Delta struct {
						Content          string `json:"content"`
						ReasoningContent string `json:"reasoning_content"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if d != "[DONE]" && json.Unmarshal([]byte(d), &c) == nil && len(c.Choices) > 0 {
				reasoning.WriteString(c.Choices[0].Delta.ReasoningContent)
				content.WriteString(c.Choices[0].Delta.Content)
			}
		}
		if reasoning.String() != "27 * 453: 27*400=10800, 27*53=1431, total 12231." || content.String() != "27 × 453 = 12,231." {
			t.Errorf("reasoning %q content %q", reasoning.String(), content.String())
		}
	})
	t.Run("refusal", func(t *testing.T) {
		chunks, last := streamChunks(t, "refusal", false)
		var content strings.Builder
		finish := ""
		for _, c := range chunks {
			content.WriteString(c.Choices[0].Delta.Content)
			finish += c.Choices[0].FinishReason
		}
		if finish != "content_filter" || content.String() != "I can't help with" {
			t.Errorf("finish %q content %q", finish, content.String())
		}
		if !last.Done || last.Usage != (transform.Usage{InputTokens: 31, OutputTokens: 6}) {
			t.Errorf("done %v usage %+v", last.Done, last.Usage)
		}
	})
	t.Run("error", func(t *testing.T) {
		pieces := streamPieces(t, filepath.Join("testdata", "anthropic", "error.stream.json"))
		out, last := runStream(t, newAnthropicResponse(t, transform.ResponseOptions{Stream: true, Created: created}), pieces)
		lines := sseDataLines(out)
		if lines[len(lines)-1] != `{"error":{"message":"Overloaded","type":"service_unavailable_error","param":null,"code":null}}` {
			t.Errorf("last event %s", lines[len(lines)-1])
		}
		if bytes.Contains(out, []byte("never sent")) || bytes.Contains(out, []byte("[DONE]")) || last.Done {
			t.Errorf("stream went on after the error: %s", out)
		}
		if last.Err == nil || last.Err.Status != 503 || last.Err.Type != transform.ErrorTypeOverloaded {
			t.Errorf("Err = %+v", last.Err)
		}
	})
}

func TestOpenAIToAnthropic_StreamChunkMalformed(t *testing.T) {
	tr := newAnthropicResponse(t, transform.ResponseOptions{Stream: true})
	res, err := tr.StreamChunk([]byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\n\n"), false)
	if !errors.Is(err, transform.ErrMalformedResponse) {
		t.Fatalf("err = %v", err)
	}
	lines := sseDataLines(res.Body)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `{"error":{`) || !json.Valid([]byte(lines[0])) {
		t.Errorf("body = %q", res.Body)
	}
	res, err = tr.StreamChunk([]byte("data: {\"type\":\"message_stop\"}\n\n"), true)
	if err != nil || len(res.Body) != 0 {
		t.Errorf("input after the failure was translated: %q %v", res.Body, err)
	}
}

func TestOpenAIToAnthropic_ErrorBody(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantType   transform.ErrorType
		wantCode   string
		wantMsg    string
	}{
		{"invalid request", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}`, 400, transform.ErrorTypeInvalidRequest, "", "messages: roles must alternate"},
		{"prompt too long", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}`, 400, transform.ErrorTypeInvalidRequest, transform.CodeContextLengthExceeded, "prompt is too long: 210000 tokens > 200000 maximum"},
		{"authentication", 401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, 401, transform.ErrorTypeAuthentication, "", "invalid x-api-key"},
		{"permission", 403, `{"type":"error","error":{"type":"permission_error","message":"no access"}}`, 403, transform.ErrorTypePermission, "", "no access"},
		{"not found", 404, `{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}`, 404, transform.ErrorTypeNotFound, "", "model: claude-x"},
		{"too large", 413, `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`, 413, transform.ErrorTypeInvalidRequest, "", "Request exceeds the maximum allowed number of bytes."},
		{"rate limit", 429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, 429, transform.ErrorTypeRateLimit, "", "Number of request tokens has exceeded your per-minute rate limit"},
		{"api error", 500, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, 500, transform.ErrorTypeServer, "", "Internal server error"},
		{"overloaded 529", 529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, 503, transform.ErrorTypeOverloaded, "", "Overloaded"},
		{"unknown type by status", 418, `{"type":"error","error":{"type":"teapot_error","message":"short and stout"}}`, 418, transform.ErrorTypeInvalidRequest, "", "short and stout"},
		{"non-JSON", 502, `<html><body>502 Bad Gateway</body></html>`, 502, transform.ErrorTypeServer, "", "provider returned status 502 with an unreadable error body"},
		{"non-JSON 529", 529, `overloaded`, 503, transform.ErrorTypeOverloaded, "", "provider returned status 529 with an unreadable error body"},
		{"OpenAI-shaped from a proxy", 401, `{"error":"unauthorized"}`, 401, transform.ErrorTypeAuthentication, "", "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newAnthropicResponse(t, transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body))
			want := transform.ProviderError{Status: tt.wantStatus, Type: tt.wantType, Code: tt.wantCode, Message: tt.wantMsg}
			if *got != want {
				t.Errorf("got %+v\nwant %+v", *got, want)
			}
		})
	}
}

func BenchmarkOpenAIToAnthropic_RequestBody(b *testing.B) {
	for _, name := range []string{"chat_2k", "tool_results", "images"} {
		body := readFile(b, filepath.Join("testdata", "anthropic", name+".request.json"))
		b.Run(name, func(b *testing.B) {
			tr := newAnthropicRequest(b, anthropicTarget)
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

func BenchmarkOpenAIToAnthropic_ResponseBody(b *testing.B) {
	for _, name := range []string{"text", "tool_use"} {
		body := readFile(b, filepath.Join("testdata", "anthropic", name+".response.json"))
		b.Run(name, func(b *testing.B) {
			tr := newAnthropicResponse(b, transform.ResponseOptions{Created: created})
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

// BenchmarkOpenAIToAnthropic_StreamChunk measures one SSE event per
// operation once the stream has started.
func BenchmarkOpenAIToAnthropic_StreamChunk(b *testing.B) {
	pieces := streamPieces(b, filepath.Join("testdata", "anthropic", "tool_use.stream.json"))
	events := map[string][]byte{
		"text_delta":       pieces[2],
		"input_json_delta": pieces[6],
	}
	for name, ev := range events {
		b.Run(name, func(b *testing.B) {
			tr := newAnthropicResponse(b, transform.ResponseOptions{Stream: true, Created: created})
			for _, p := range pieces[:5] {
				if _, err := tr.StreamChunk(p, false); err != nil {
					b.Fatal(err)
				}
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
