package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// messagesTarget is an OpenAI deployment serving Messages API clients.
var messagesTarget = transform.Target{Model: "gpt-4.1", BasePath: "/v1", APIKey: "sk-test"}

func newMessagesRequest(t testing.TB, p transform.Provider, target transform.Target) transform.RequestTranslator {
	t.Helper()
	tr, err := transform.NewRequestTranslator(transform.APIMessages, p, target)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newMessagesResponse(t testing.TB, p transform.Provider, opts transform.ResponseOptions) transform.ResponseTranslator {
	t.Helper()
	tr, err := transform.NewResponseTranslator(transform.APIMessages, p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func messagesPath(name, kind string) string {
	return filepath.Join("testdata", "messages", name+"."+kind+".json")
}

// TestAnthropicToOpenAI_RequestBodyGolden translates every request fixture
// for an OpenAI deployment, compares it with its golden file, checks that
// the OpenAI SDK reads it, and that translating again gives the same bytes
// from an untouched input.
func TestAnthropicToOpenAI_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "messages", "request") {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, messagesPath(name, "request"))
			pristine := bytes.Clone(in)
			tr := newMessagesRequest(t, transform.ProviderOpenAI, messagesTarget)
			res, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "messages", name+".request.golden.json"), requestGolden(t, res))

			var p openai.ChatCompletionNewParams
			if err := json.Unmarshal(res.Body, &p); err != nil {
				t.Fatalf("openai SDK rejects the body: %v", err)
			}
			if p.Model != "gpt-4.1" || len(p.Messages) == 0 || !p.MaxCompletionTokens.Valid() {
				t.Errorf("model %q, %d messages, max_completion_tokens %v", p.Model, len(p.Messages), p.MaxCompletionTokens)
			}
			if res.Path != "/v1/chat/completions" || bytes.Contains(res.Body, []byte("cache_control")) {
				t.Errorf("path %q; cache_control sent to OpenAI: %s", res.Path, res.Body)
			}
			removed := strings.Join(res.RemoveHeaders, ",")
			for _, h := range []string{"anthropic-version", "anthropic-beta", "x-api-key"} {
				if !strings.Contains(removed, h) {
					t.Errorf("%s not removed: %v", h, res.RemoveHeaders)
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

// translateMessages translates a request fixture for OpenAI and decodes
// it with the OpenAI SDK.
func translateMessages(t *testing.T, name string) (transform.RequestResult, openai.ChatCompletionNewParams) {
	t.Helper()
	res, err := newMessagesRequest(t, transform.ProviderOpenAI, messagesTarget).RequestBody(readFile(t, messagesPath(name, "request")))
	if err != nil {
		t.Fatal(err)
	}
	var p openai.ChatCompletionNewParams
	if err := json.Unmarshal(res.Body, &p); err != nil {
		t.Fatal(err)
	}
	return res, p
}

func chatRoles(p openai.ChatCompletionNewParams) string {
	var r []string
	for _, m := range p.Messages {
		r = append(r, *m.GetRole())
	}
	return strings.Join(r, ",")
}

func TestAnthropicToOpenAI_RequestBodyFields(t *testing.T) {
	t.Run("claude_code", func(t *testing.T) {
		res, p := translateMessages(t, "claude_code")
		if got := chatRoles(p); got != "system,user,assistant,tool,tool,user" {
			t.Fatalf("roles = %s", got)
		}
		if s := p.Messages[0].OfSystem.Content.OfString.Value; s != "You are Claude Code, Anthropic's official CLI for Claude.\n\nYou are an interactive CLI tool that helps users with software engineering tasks.\nIMPORTANT: \"Never\" guess URLs." {
			t.Errorf("system = %q", s)
		}
		if parts := p.Messages[1].OfUser.Content.OfArrayOfContentParts; len(parts) != 2 || parts[1].OfText.Text != "Why do the tests in pkg/transform fail? Look at the logo too." {
			t.Errorf("user parts = %+v", parts)
		}
		a := p.Messages[2].OfAssistant
		if a.Content.OfString.Value != "I'll run the tests and read the logo." || len(a.ToolCalls) != 2 {
			t.Fatalf("assistant = %+v", a)
		}
		bash := a.ToolCalls[0].OfFunction
		if bash.ID != "toolu_01Bash" || bash.Function.Name != "Bash" || bash.Function.Arguments != `{"command":"go test ./pkg/transform/ 2>&1 | tail -5","timeout":120000}` {
			t.Errorf("tool call = %+v", bash)
		}
		if bytes.Contains(res.Body, []byte("I should run the tests")) {
			t.Error("thinking from the history was sent")
		}
		t1, t2 := p.Messages[3].OfTool, p.Messages[4].OfTool
		if t1.ToolCallID != "toolu_01Bash" || !strings.HasPrefix(t1.Content.OfString.Value, "Error: --- FAIL: TestX") {
			t.Errorf("first tool message = %+v", t1)
		}
		if t2.ToolCallID != "toolu_01Read" || t2.Content.OfString.Value != "Read image (1x1)" {
			t.Errorf("second tool message = %+v", t2)
		}
		last := p.Messages[5].OfUser.Content.OfArrayOfContentParts
		if len(last) != 2 || last[0].OfImageURL == nil || !strings.HasPrefix(last[0].OfImageURL.ImageURL.URL, "data:image/png;base64,iVBORw0KGgo") ||
			last[1].OfText.Text != "Also check the README." {
			t.Errorf("user message after results = %+v", last)
		}
		if len(p.Tools) != 3 || p.Tools[2].OfFunction.Function.Name != "mcp__github__search_issues" {
			t.Fatalf("tools = %+v", p.Tools)
		}
		if req := p.Tools[0].OfFunction.Function.Parameters["required"]; fmt.Sprint(req) != "[command]" {
			t.Errorf("Bash parameters = %v", p.Tools[0].OfFunction.Function.Parameters)
		}
		if p.ToolChoice.OfAuto.Value != "auto" || p.ParallelToolCalls.Valid() {
			t.Errorf("tool_choice %+v parallel %v", p.ToolChoice, p.ParallelToolCalls)
		}
		if p.ReasoningEffort != "medium" || p.User.Value != "user_2f6c_account_9e1d_session_77a0" || p.MaxCompletionTokens.Value != 32000 {
			t.Errorf("reasoning_effort %q user %q max %v", p.ReasoningEffort, p.User.Value, p.MaxCompletionTokens)
		}
		if !res.Stream || !p.StreamOptions.IncludeUsage.Value {
			t.Errorf("stream %v stream_options %+v", res.Stream, p.StreamOptions)
		}
	})
	t.Run("images", func(t *testing.T) {
		_, p := translateMessages(t, "images")
		if chatRoles(p) != "system,user" || p.Messages[0].OfSystem.Content.OfString.Value != "Describe what you see." {
			t.Fatalf("roles = %s", chatRoles(p))
		}
		parts := p.Messages[1].OfUser.Content.OfArrayOfContentParts
		if len(parts) != 5 {
			t.Fatalf("%d parts", len(parts))
		}
		if u := parts[1].OfImageURL; u == nil || u.ImageURL.URL != "https://example.com/cat.jpg" {
			t.Errorf("url image = %+v", parts[1])
		}
		if f := parts[2].OfFile; f == nil || f.File.FileData.Value != "data:application/pdf;base64,JVBERi0xLjQKJcOkw7zDtsOf" || f.File.Filename.Value != "document.pdf" {
			t.Errorf("pdf = %+v", parts[2])
		}
		if tx := parts[3].OfText; tx == nil || tx.Text != `Plain notes: "quoted".` {
			t.Errorf("text document = %+v", parts[3])
		}
		if p.MaxCompletionTokens.Value != 1024 || p.ReasoningEffort != "" {
			t.Errorf("max %v effort %q", p.MaxCompletionTokens, p.ReasoningEffort)
		}
	})
	t.Run("options", func(t *testing.T) {
		res, p := translateMessages(t, "options")
		if chatRoles(p) != "system,user,assistant,user" || p.Messages[2].OfAssistant.Content.OfString.Value != "Blue" {
			t.Fatalf("roles = %s", chatRoles(p))
		}
		if p.Messages[0].OfSystem.Content.OfString.Value != "Be brief.\n\nAnswer in English." {
			t.Errorf("system = %+v", p.Messages[0].OfSystem.Content)
		}
		if strings.Join(p.Stop.OfStringArray, "|") != "\n\nHuman:|END" || p.Temperature.Value != 0.3 || p.TopP.Value != 0.9 {
			t.Errorf("stop %q temperature %v top_p %v", p.Stop.OfStringArray, p.Temperature, p.TopP)
		}
		if bytes.Contains(res.Body, []byte("top_k")) {
			t.Error("top_k sent")
		}
		// The SDK's union decoder cannot tell a named function from
		// allowed_tools, so the raw field is checked.
		if !bytes.Contains(res.Body, []byte(`"tool_choice":{"type":"function","function":{"name":"paint"}}`)) {
			t.Errorf("tool_choice in %s", res.Body)
		}
		if p.ParallelToolCalls.Value || !p.ParallelToolCalls.Valid() || !p.Tools[0].OfFunction.Function.Strict.Value {
			t.Errorf("parallel_tool_calls %v strict %v", p.ParallelToolCalls, p.Tools[0].OfFunction.Function.Strict)
		}
		if p.ReasoningEffort != "high" || res.Stream || p.StreamOptions.IncludeUsage.Valid() {
			t.Errorf("effort %q stream %v", p.ReasoningEffort, res.Stream)
		}
	})
}

func TestAnthropicToOpenAI_RequestBodyOptions(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name    string
		body    string
		want    []string
		notWant []string
	}{
		{"thinking low", `{"model":"m","max_tokens":9,"thinking":{"type":"enabled","budget_tokens":4000},` + msgs + `}`,
			[]string{`"reasoning_effort":"low"`}, nil},
		{"thinking high", `{"model":"m","max_tokens":9,"thinking":{"type":"enabled","budget_tokens":31999},` + msgs + `}`,
			[]string{`"reasoning_effort":"high"`}, nil},
		{"thinking disabled", `{"model":"m","max_tokens":9,"thinking":{"type":"disabled"},` + msgs + `}`,
			nil, []string{`reasoning_effort`}},
		{"adaptive thinking with effort", `{"model":"m","max_tokens":9,"thinking":{"type":"adaptive"},"output_config":{"effort":"low"},` + msgs + `}`,
			[]string{`"reasoning_effort":"low"`}, nil},
		{"structured output", `{"model":"m","max_tokens":9,"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}},` + msgs + `}`,
			[]string{`"response_format":{"type":"json_schema","json_schema":{"name":"output","schema":{"type":"object"}}}`}, nil},
		{"tool_choice any", `{"model":"m","max_tokens":9,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"},` + msgs + `}`,
			[]string{`"tool_choice":"required"`}, []string{`parallel_tool_calls`}},
		{"tool_choice none", `{"model":"m","max_tokens":9,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"},` + msgs + `}`,
			[]string{`"tool_choice":"none"`}, nil},
		{"tool_choice without tools is dropped", `{"model":"m","max_tokens":9,"tool_choice":{"type":"any","disable_parallel_tool_use":true},` + msgs + `}`,
			nil, []string{`tool_choice`, `parallel_tool_calls`, `"tools"`}},
		{"custom tool type", `{"model":"m","max_tokens":9,"tools":[{"type":"custom","name":"f","input_schema":{"type":"object"}}],` + msgs + `}`,
			[]string{`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]`}, nil},
		{"client model kept without a deployment model", `{"model":"client-model","max_tokens":9,` + msgs + `}`,
			[]string{`"model":"client-model"`}, nil},
		{"metadata without user_id", `{"model":"m","max_tokens":9,"metadata":{},` + msgs + `}`,
			nil, []string{`,"user":`}},
		{"empty text blocks skipped", `{"model":"m","max_tokens":9,"system":[{"type":"text","text":""}],"messages":[{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"x"}]}]}`,
			[]string{`"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]`}, []string{`"system"`}},
		{"assistant of only thinking is dropped", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"redacted_thinking","data":"x"}]},{"role":"user","content":"b"}]}`,
			[]string{`"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]`}, nil},
		{"tool_use without text", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{ "a" : [1, 2] }}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t"}]}]}`,
			[]string{`{"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":[1,2]}"}}]},{"role":"tool","tool_call_id":"t","content":""}`}, nil},
		{"tool result text blocks joined", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"l1"},{"type":"text","text":"l2"}]}]}]}`,
			[]string{`{"role":"tool","tool_call_id":"t","content":"l1\nl2"}`}, nil},
		{"consecutive user messages kept", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
			[]string{`"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]`}, nil},
		{"mcp_servers empty", `{"model":"m","max_tokens":9,"mcp_servers":[],` + msgs + `}`, nil, []string{`mcp`}},
		{"null fields ignored", `{"model":"m","max_tokens":9,"temperature":null,"stop_sequences":null,"tools":null,"system":null,` + msgs + `}`,
			nil, []string{`temperature`, `"stop"`, `tools`, `system`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newMessagesRequest(t, transform.ProviderOpenAI, transform.Target{}).RequestBody([]byte(tt.body))
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

func TestAnthropicToOpenAI_RequestBodyInvalid(t *testing.T) {
	const user = `{"role":"user","content":"hi"}`
	const toolUse = `{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]}`
	tests := []struct {
		name      string
		body      string
		wantParam string
		wantMsg   string
	}{
		{"malformed JSON", `{"messages":[`, "", "not valid JSON"},
		{"not an object", `[1]`, "", "JSON object"},
		{"no model", `{"max_tokens":9,"messages":[` + user + `]}`, "model", "model: Field required"},
		{"no max_tokens", `{"model":"m","messages":[` + user + `]}`, "max_tokens", "max_tokens: Field required"},
		{"zero max_tokens", `{"model":"m","max_tokens":0,"messages":[` + user + `]}`, "max_tokens", "greater than or equal to 1"},
		{"fractional max_tokens", `{"model":"m","max_tokens":1.5,"messages":[` + user + `]}`, "max_tokens", "valid integer"},
		{"string max_tokens", `{"model":"m","max_tokens":"9","messages":[` + user + `]}`, "max_tokens", "valid integer"},
		{"no messages", `{"model":"m","max_tokens":9}`, "messages", "messages: Field required"},
		{"empty messages", `{"model":"m","max_tokens":9,"messages":[]}`, "messages", "at least one message"},
		{"system role", `{"model":"m","max_tokens":9,"messages":[{"role":"system","content":"x"}]}`, "messages.0.role", "Input should be 'user' or 'assistant'"},
		{"numeric content", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":1}]}`, "messages.0.content", "valid string or list"},
		{"image in system", `{"model":"m","max_tokens":9,"system":[{"type":"image"}],"messages":[` + user + `]}`, "system.0", "text blocks"},
		{"tool_result without tool_use", `{"model":"m","max_tokens":9,"messages":[` + user + `,{"role":"assistant","content":"ok"},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_x","content":"r"}]}]}`,
			"messages.2.content.0", "unexpected `tool_use_id` found in `tool_result` blocks: toolu_x"},
		{"tool_use without tool_result", `{"model":"m","max_tokens":9,"messages":[` + user + `,` + toolUse + `,` + user + `]}`,
			"messages.1", "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"},
		{"tool_use at the end", `{"model":"m","max_tokens":9,"messages":[` + user + `,` + toolUse + `]}`, "messages.1", "toolu_1"},
		{"tool_use answered twice", `{"model":"m","max_tokens":9,"messages":[` + user + `,` + toolUse + `,{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1"},{"type":"tool_result","tool_use_id":"toolu_1"}]}]}`,
			"messages.2.content.1", "unexpected `tool_use_id`"},
		{"tool_use in user", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"f","input":{}}]}]}`, "messages.0.content.0", "not supported"},
		{"image in assistant", `{"model":"m","max_tokens":9,"messages":[` + user + `,{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}`, "messages.1.content.0", "not supported in assistant messages"},
		{"tool_use input not object", `{"model":"m","max_tokens":9,"messages":[` + user + `,{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":"x"}]}]}`, "messages.1.content.0", "object input"},
		{"file image source", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"file_1"}}]}]}`, "messages.0.content.0", "base64 or url"},
		{"url document", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/y.pdf"}}]}]}`, "messages.0.content.0", "only base64 PDF and plain text"},
		{"base64 non-PDF document", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"text/csv","data":"YQ=="}}]}]}`, "messages.0.content.0", "application/pdf"},
		{"search_result block", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"search_result"}]}]}`, "messages.0.content.0", "not supported"},
		{"tool_result with a document", `{"model":"m","max_tokens":9,"messages":[` + user + `,` + toolUse + `,{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"document"}]}]}]}`, "messages.2.content.0", "only text and image"},
		{"server tool", `{"model":"m","max_tokens":9,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[` + user + `]}`, "tools.0.type", "server tool"},
		{"tool without schema", `{"model":"m","max_tokens":9,"tools":[{"name":"f"}],"messages":[` + user + `]}`, "tools.0.input_schema", "input_schema"},
		{"tool without name", `{"model":"m","max_tokens":9,"tools":[{"input_schema":{}}],"messages":[` + user + `]}`, "tools.0.name", "Field required"},
		{"bad tool_choice", `{"model":"m","max_tokens":9,"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"sometimes"},"messages":[` + user + `]}`, "tool_choice.type", "'auto', 'any', 'tool' or 'none'"},
		{"tool_choice tool without name", `{"model":"m","max_tokens":9,"tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"tool"},"messages":[` + user + `]}`, "tool_choice.name", "Field required"},
		{"stop_sequences string", `{"model":"m","max_tokens":9,"stop_sequences":"END","messages":[` + user + `]}`, "stop_sequences", "valid list"},
		{"temperature string", `{"model":"m","max_tokens":9,"temperature":"hot","messages":[` + user + `]}`, "temperature", "valid number"},
		{"bad thinking type", `{"model":"m","max_tokens":9,"thinking":{"type":"sometimes"},"messages":[` + user + `]}`, "thinking.type", "'enabled', 'adaptive' or 'disabled'"},
		{"bad effort", `{"model":"m","max_tokens":9,"output_config":{"effort":"huge"},"messages":[` + user + `]}`, "output_config.effort", "'low'"},
		{"bad output format", `{"model":"m","max_tokens":9,"output_config":{"format":{"type":"yaml"}},"messages":[` + user + `]}`, "output_config.format", "json_schema"},
		{"mcp servers", `{"model":"m","max_tokens":9,"mcp_servers":[{"type":"url","url":"https://x","name":"x"}],"messages":[` + user + `]}`, "mcp_servers", "remote MCP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newMessagesRequest(t, transform.ProviderOpenAI, transform.Target{}).RequestBody([]byte(tt.body))
			if !errors.Is(err, transform.ErrInvalidRequest) {
				t.Fatalf("err = %v, body %s", err, res.Body)
			}
			var ie *transform.InvalidRequestError
			if !errors.As(err, &ie) || ie.Param != tt.wantParam || !strings.Contains(ie.Message, tt.wantMsg) {
				t.Errorf("error = %#v, want param %q and a message with %q", ie, tt.wantParam, tt.wantMsg)
			}
		})
	}
}

// TestAnthropicToOpenAI_ResponseBodyGolden translates every chat response
// fixture into a message, compares it with its golden file and checks that
// the Anthropic SDK reads it.
func TestAnthropicToOpenAI_ResponseBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "messages", "response") {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, messagesPath(name, "response"))
			res, err := newMessagesResponse(t, transform.ProviderOpenAI, transform.ResponseOptions{Created: created}).ResponseBody(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "messages", name+".response.golden.json"), indentJSON(t, res.Body))
			var m anthropic.Message
			if err := json.Unmarshal(res.Body, &m); err != nil {
				t.Fatal(err)
			}
			if m.Type != "message" || m.Role != "assistant" || !strings.HasPrefix(m.ID, "msg_") || string(m.Model) != res.Model {
				t.Errorf("message = %+v", m)
			}
		})
	}
}

func translateMessagesResponse(t *testing.T, name string) (transform.ResponseResult, anthropic.Message) {
	t.Helper()
	res, err := newMessagesResponse(t, transform.ProviderOpenAI, transform.ResponseOptions{}).ResponseBody(readFile(t, messagesPath(name, "response")))
	if err != nil {
		t.Fatal(err)
	}
	var m anthropic.Message
	if err := json.Unmarshal(res.Body, &m); err != nil {
		t.Fatal(err)
	}
	return res, m
}

func TestAnthropicToOpenAI_ResponseBodyFields(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		res, m := translateMessagesResponse(t, "text")
		if m.ID != "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT" || len(m.Content) != 1 || m.Content[0].Text != "Bonjour \"monde\" ✓\nFin." {
			t.Errorf("message = %+v", m)
		}
		if m.StopReason != anthropic.StopReasonEndTurn || m.StopSequence != "" {
			t.Errorf("stop %q %q", m.StopReason, m.StopSequence)
		}
		if m.Usage.InputTokens != 86 || m.Usage.CacheReadInputTokens != 1920 || m.Usage.CacheCreationInputTokens != 0 || m.Usage.OutputTokens != 12 {
			t.Errorf("usage = %+v", m.Usage)
		}
		want := transform.Usage{InputTokens: 2006, OutputTokens: 12, CachedInputTokens: 1920}
		if res.Usage != want || res.Model != "gpt-4.1-2025-04-14" {
			t.Errorf("result usage %+v model %q", res.Usage, res.Model)
		}
	})
	t.Run("tool_calls", func(t *testing.T) {
		res, m := translateMessagesResponse(t, "tool_calls")
		if len(m.Content) != 4 || m.Content[0].Type != "thinking" || m.Content[1].Type != "text" || m.Content[2].Type != "tool_use" || m.Content[3].Type != "tool_use" {
			t.Fatalf("content = %+v", m.Content)
		}
		if m.Content[0].Thinking != "Two files to read; do both at once." || m.Content[1].Text != "Reading both files." {
			t.Errorf("thinking %q text %q", m.Content[0].Thinking, m.Content[1].Text)
		}
		b := m.Content[3]
		if b.ID != "call_b2" || b.Name != "Read" || string(b.Input) != `{"file_path":"/repo/b \"q\".go","limit":20}` {
			t.Errorf("tool_use = %s %s %s", b.ID, b.Name, b.Input)
		}
		if m.StopReason != anthropic.StopReasonToolUse {
			t.Errorf("stop = %q", m.StopReason)
		}
		if m.Usage.InputTokens != 100 || m.Usage.CacheReadInputTokens != 100 || m.Usage.CacheCreationInputTokens != 300 {
			t.Errorf("usage = %+v", m.Usage)
		}
		if res.Usage.ReasoningTokens != 30 || res.Usage.CacheCreationInputTokens != 300 {
			t.Errorf("result usage = %+v", res.Usage)
		}
	})
	t.Run("length with cut arguments", func(t *testing.T) {
		_, m := translateMessagesResponse(t, "length")
		if m.StopReason != anthropic.StopReasonMaxTokens || len(m.Content) != 1 || string(m.Content[0].Input) != "{}" || m.Content[0].ID != "call_cut" {
			t.Errorf("message = %+v", m)
		}
	})
	t.Run("stop_sequence", func(t *testing.T) {
		_, m := translateMessagesResponse(t, "stop_sequence")
		if m.StopReason != anthropic.StopReasonStopSequence || m.StopSequence != "END" || m.ID != "msg_cmpl-vllm-1" {
			t.Errorf("stop %q %q id %q", m.StopReason, m.StopSequence, m.ID)
		}
	})
}

func TestAnthropicToOpenAI_ResponseBodyCases(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int // 0: malformed
		want       string
	}{
		{"not JSON", `<html>`, 0, ""},
		{"no choices", `{"id":"x"}`, 0, ""},
		{"error in 2xx", `{"error":{"message":"busy","type":"server_error"}}`, 500, ""},
		{"content filter", `{"id":"c","model":"m","choices":[{"message":{"content":null,"refusal":"I can't help."},"finish_reason":"content_filter"}]}`, 200,
			`"content":[{"type":"text","text":"I can't help."}],"stop_reason":"refusal"`},
		{"stop with tool calls", `{"id":"c","model":"m","choices":[{"message":{"tool_calls":[{"function":{"name":"f","arguments":""}}]},"finish_reason":"stop"}]}`, 200,
			`{"type":"tool_use","id":"toolu_tollgate_0","name":"f","input":{}}],"stop_reason":"tool_use"`},
		{"array arguments", `{"id":"c","model":"m","choices":[{"message":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"[1]"}}]},"finish_reason":"tool_calls"}]}`, 200,
			`"input":{}`},
		{"reasoning field", `{"id":"c","model":"m","choices":[{"message":{"reasoning":"hmm","content":"ok"},"finish_reason":"stop"}]}`, 200,
			`"content":[{"type":"thinking","thinking":"hmm","signature":""},{"type":"text","text":"ok"}]`},
		{"message id kept", `{"id":"msg_01abc","model":"m","choices":[{"message":{"content":"x"}}]}`, 200, `{"id":"msg_01abc",`},
		{"no id", `{"model":"m","choices":[{"message":{"content":"x"}}]}`, 200, `{"id":"msg_tollgate",`},
		{"no usage", `{"id":"c","choices":[{"message":{"content":"x"},"finish_reason":null}]}`, 200,
			`"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newMessagesResponse(t, transform.ProviderOpenAI, transform.ResponseOptions{}).ResponseBody([]byte(tt.body))
			var pe *transform.ProviderError
			switch {
			case tt.wantStatus == 0:
				if !errors.Is(err, transform.ErrMalformedResponse) {
					t.Errorf("err = %v, want malformed", err)
				}
			case tt.wantStatus != 200:
				if !errors.As(err, &pe) || pe.Status != tt.wantStatus {
					t.Errorf("err = %v, want status %d", err, tt.wantStatus)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				var m anthropic.Message
				if err := json.Unmarshal(res.Body, &m); err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(res.Body, []byte(tt.want)) {
					t.Errorf("body lacks %s:\n%s", tt.want, res.Body)
				}
			}
		})
	}
}

// sseEvent is one event of an Anthropic stream.
type sseEvent struct {
	name string
	data []byte
}

// parseSSE splits an Anthropic stream into events and fails on anything
// else.
func parseSSE(t testing.TB, stream []byte) []sseEvent {
	t.Helper()
	var evs []sseEvent
	for _, raw := range strings.SplitAfter(string(stream), "\n\n") {
		if raw == "" {
			continue
		}
		name, rest, ok := strings.Cut(raw, "\n")
		data, ok2 := strings.CutPrefix(rest, "data: ")
		if !ok || !ok2 || !strings.HasPrefix(name, "event: ") || !strings.HasSuffix(data, "\n\n") {
			t.Fatalf("not an SSE event: %q", raw)
		}
		evs = append(evs, sseEvent{strings.TrimPrefix(name, "event: "), []byte(strings.TrimSuffix(data, "\n\n"))})
	}
	return evs
}

// accumulate decodes every event with the Anthropic SDK, checks the block
// protocol (blocks start in order, one open at a time, no delta outside its
// block) and returns the message the SDK accumulates and the error event,
// if any.
func accumulate(t testing.TB, stream []byte) (anthropic.Message, *anthropic.ErrorResponse) {
	t.Helper()
	var m anthropic.Message
	open := -1
	started := 0
	for _, ev := range parseSSE(t, stream) {
		if ev.name == "error" {
			var e anthropic.ErrorResponse
			if err := json.Unmarshal(ev.data, &e); err != nil || e.Type != "error" || e.Error.Message == "" {
				t.Fatalf("error event %s: %v", ev.data, err)
			}
			return m, &e
		}
		var u anthropic.MessageStreamEventUnion
		if err := json.Unmarshal(ev.data, &u); err != nil {
			t.Fatalf("event %s: %v", ev.data, err)
		}
		if u.Type != ev.name {
			t.Fatalf("event %q carries type %q", ev.name, u.Type)
		}
		switch u.Type {
		case "content_block_start":
			if open != -1 || int(u.Index) != started {
				t.Fatalf("block %d starts while %d is open or out of order", u.Index, open)
			}
			open = int(u.Index)
			started++
		case "content_block_delta":
			if int(u.Index) != open {
				t.Fatalf("delta for block %d while %d is open", u.Index, open)
			}
		case "content_block_stop":
			if int(u.Index) != open {
				t.Fatalf("stop for block %d while %d is open", u.Index, open)
			}
			open = -1
		case "message_delta", "message_stop":
			if open != -1 {
				t.Fatalf("%s while block %d is open", u.Type, open)
			}
		}
		if err := m.Accumulate(u); err != nil {
			t.Fatalf("accumulate %s: %v", ev.data, err)
		}
	}
	return m, nil
}

// TestAnthropicToOpenAI_StreamChunkGolden replays every chat stream fixture
// through the messages chain for OpenAI as recorded, whole, byte by byte and
// split at every position, and expects the same output each time.
func TestAnthropicToOpenAI_StreamChunkGolden(t *testing.T) {
	for _, name := range fixtures(t, "messages", "stream") {
		t.Run(name, func(t *testing.T) {
			pieces := streamPieces(t, messagesPath(name, "stream"))
			opts := transform.ResponseOptions{Stream: true, Created: created}
			want, last := runStream(t, newMessagesResponse(t, transform.ProviderOpenAI, opts), pieces)
			checkGolden(t, filepath.Join("testdata", "messages", name+".stream.golden.sse"), want)
			accumulate(t, want)

			whole := bytes.Join(pieces, nil)
			replays := map[string][][][]byte{"whole": {{whole}}, "split": splitEverywhere(whole)}
			var bytewise [][]byte
			for i := range whole {
				bytewise = append(bytewise, whole[i:i+1])
			}
			replays["byte by byte"] = [][][]byte{bytewise}
			for how, runs := range replays {
				for _, run := range runs {
					got, gotLast := runStream(t, newMessagesResponse(t, transform.ProviderOpenAI, opts), run)
					if !bytes.Equal(got, want) || gotLast.Usage != last.Usage || gotLast.Done != last.Done || (gotLast.Err == nil) != (last.Err == nil) {
						t.Fatalf("%s replay differs:\n got: %s\nwant: %s", how, got, want)
					}
				}
			}
		})
	}
}

// streamMessage translates a stream fixture and accumulates it.
func streamMessage(t *testing.T, name string) (anthropic.Message, *anthropic.ErrorResponse, transform.StreamResult) {
	t.Helper()
	pieces := streamPieces(t, messagesPath(name, "stream"))
	out, last := runStream(t, newMessagesResponse(t, transform.ProviderOpenAI, transform.ResponseOptions{Stream: true}), pieces)
	m, e := accumulate(t, out)
	return m, e, last
}

func TestAnthropicToOpenAI_StreamChunkFields(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		m, e, last := streamMessage(t, "text")
		if e != nil || len(m.Content) != 1 || m.Content[0].Text != "One, two, \"three\".\nDone ✓" || m.StopReason != anthropic.StopReasonEndTurn {
			t.Fatalf("message = %+v, error %v", m, e)
		}
		if m.ID != "msg_Str1" || m.Model != "gpt-4.1-2025-04-14" {
			t.Errorf("id %q model %q", m.ID, m.Model)
		}
		if m.Usage.InputTokens != 45 || m.Usage.CacheReadInputTokens != 100 || m.Usage.OutputTokens != 15 {
			t.Errorf("usage = %+v", m.Usage)
		}
		want := transform.Usage{InputTokens: 145, OutputTokens: 15, CachedInputTokens: 100}
		if last.Usage != want || !last.Done || last.Model != "gpt-4.1-2025-04-14" || last.Err != nil {
			t.Errorf("result = %+v", last)
		}
	})
	t.Run("parallel tools streamed live", func(t *testing.T) {
		m, _, _ := streamMessage(t, "parallel_tools")
		if len(m.Content) != 3 || m.Content[0].Text != "Checking both." || m.StopReason != anthropic.StopReasonToolUse {
			t.Fatalf("message = %+v", m)
		}
		for i, want := range []struct{ id, input string }{{"call_paris", `{"city": "Paris"}`}, {"call_tokyo", `{"city":"Tokyo \"JP\""}`}} {
			b := m.Content[i+1]
			if b.Type != "tool_use" || b.ID != want.id || b.Name != "get_weather" || string(b.Input) != want.input {
				t.Errorf("block %d = %s %s %s", i+1, b.ID, b.Name, b.Input)
			}
		}
		// Each argument piece was forwarded as it came, not buffered.
		pieces := streamPieces(t, messagesPath("parallel_tools", "stream"))
		out, _ := runStream(t, newMessagesResponse(t, transform.ProviderOpenAI, transform.ResponseOptions{Stream: true}), pieces)
		if n := bytes.Count(out, []byte(`"type":"input_json_delta"`)); n != 4 {
			t.Errorf("%d input_json_delta events, want 4", n)
		}
	})
	t.Run("interleaved tools", func(t *testing.T) {
		m, _, _ := streamMessage(t, "interleaved_tools")
		if len(m.Content) != 2 || m.StopReason != anthropic.StopReasonToolUse {
			t.Fatalf("message = %+v", m)
		}
		if b := m.Content[0]; b.ID != "call_x" || b.Name != "Read" || string(b.Input) != `{"file_path":"/a.go"}` {
			t.Errorf("block 0 = %s %s %s", b.ID, b.Name, b.Input)
		}
		if b := m.Content[1]; b.ID != "call_y" || b.Name != "Bash" || string(b.Input) != `{"command":"ls"}` {
			t.Errorf("block 1 = %s %s %s", b.ID, b.Name, b.Input)
		}
	})
	t.Run("reasoning", func(t *testing.T) {
		m, _, last := streamMessage(t, "reasoning")
		if len(m.Content) != 2 || m.Content[0].Thinking != "27*453 = 12231." || m.Content[1].Text != "27 × 453 = 12,231." {
			t.Fatalf("content = %+v", m.Content)
		}
		if m.Usage.OutputTokens != 60 || m.Usage.InputTokens != 30 || !last.Done {
			t.Errorf("usage %+v done %v", m.Usage, last.Done)
		}
	})
	t.Run("azure prompt filter chunk first", func(t *testing.T) {
		pieces := streamPieces(t, filepath.Join("testdata", "azure", "usage.stream.json"))
		out, last := runStream(t, newMessagesResponse(t, transform.ProviderAzure, transform.ResponseOptions{Stream: true}), pieces)
		m, e := accumulate(t, out)
		if e != nil || len(m.Content) != 1 || m.Content[0].Text != "Hello" || m.StopReason != anthropic.StopReasonEndTurn {
			t.Fatalf("message = %+v, error %v", m, e)
		}
		// message_start names the answer's id and model, not the empty
		// ones of the filter chunk.
		start := parseSSE(t, out)[0]
		if start.name != "message_start" || gjson.GetBytes(start.data, "message.id").Str != "msg_AZ2" || gjson.GetBytes(start.data, "message.model").Str != "gpt-4o-2024-11-20" {
			t.Errorf("%s %s", start.name, start.data)
		}
		if m.Usage.InputTokens != 9 || m.Usage.OutputTokens != 1 || last.Model != "gpt-4o-2024-11-20" || !last.Done {
			t.Errorf("usage %+v result %+v", m.Usage, last)
		}
	})
	t.Run("error", func(t *testing.T) {
		m, e, last := streamMessage(t, "error")
		if e == nil || e.Error.Type != "api_error" || e.Error.Message != "The server had an error while processing your request." {
			t.Fatalf("error event = %+v", e)
		}
		if len(m.Content) != 1 || m.Content[0].Text != "Partial" {
			t.Errorf("content before the error = %+v", m.Content)
		}
		if last.Err == nil || last.Err.Type != transform.ErrorTypeServer || last.Done {
			t.Errorf("result = %+v", last)
		}
	})
}

func TestAnthropicToOpenAI_StreamChunkCases(t *testing.T) {
	chunk := func(delta string, finish string) string {
		return `data: {"id":"c1","model":"m","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + finish + `}]}` + "\n\n"
	}
	tests := []struct {
		name   string
		stream string
		check  func(t *testing.T, m anthropic.Message, out []byte, last transform.StreamResult)
	}{
		{"same index reused for a second call", chunk(`{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]}`, "null") +
			chunk(`{"tool_calls":[{"index":0,"id":"b","function":{"name":"g","arguments":"{\"x\":1}"}}]}`, `"tool_calls"`) + "data: [DONE]\n\n",
			func(t *testing.T, m anthropic.Message, _ []byte, _ transform.StreamResult) {
				if len(m.Content) != 2 || m.Content[0].ID != "a" || m.Content[1].ID != "b" || string(m.Content[1].Input) != `{"x":1}` {
					t.Errorf("content = %+v", m.Content)
				}
			}},
		{"id repeated on every delta", chunk(`{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{\"k\""}}]}`, "null") +
			chunk(`{"tool_calls":[{"index":0,"id":"a","function":{"arguments":":2}"}}]}`, `"tool_calls"`) + "data: [DONE]\n\n",
			func(t *testing.T, m anthropic.Message, _ []byte, _ transform.StreamResult) {
				if len(m.Content) != 1 || string(m.Content[0].Input) != `{"k":2}` {
					t.Errorf("content = %+v", m.Content)
				}
			}},
		{"call without id or name at first", chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}`, "null") +
			chunk(`{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"}"}}]}`, `"stop"`) + "data: [DONE]\n\n",
			func(t *testing.T, m anthropic.Message, _ []byte, _ transform.StreamResult) {
				if len(m.Content) != 1 || m.Content[0].ID != "toolu_tollgate_0" || m.Content[0].Name != "f" || string(m.Content[0].Input) != `{}` || m.StopReason != "tool_use" {
					t.Errorf("message = %+v", m)
				}
			}},
		{"text after a tool call", chunk(`{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]}`, "null") +
			chunk(`{"content":"done"}`, `"stop"`) + "data: [DONE]\n\n",
			func(t *testing.T, m anthropic.Message, _ []byte, _ transform.StreamResult) {
				if len(m.Content) != 2 || m.Content[1].Text != "done" {
					t.Errorf("content = %+v", m.Content)
				}
			}},
		{"no [DONE] after the finish", chunk(`{"content":"x"}`, `"length"`),
			func(t *testing.T, m anthropic.Message, _ []byte, last transform.StreamResult) {
				if m.StopReason != anthropic.StopReasonMaxTokens || !last.Done {
					t.Errorf("stop %q done %v", m.StopReason, last.Done)
				}
			}},
		{"cut before the finish", chunk(`{"content":"x"}`, "null"),
			func(t *testing.T, _ anthropic.Message, out []byte, last transform.StreamResult) {
				if last.Done || bytes.Contains(out, []byte("message_stop")) {
					t.Errorf("cut stream reported as ended: %s", out)
				}
			}},
		{"stop sequence named by the server", `data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop","stop_reason":"END"}]}` + "\n\ndata: [DONE]\n\n",
			func(t *testing.T, m anthropic.Message, _ []byte, _ transform.StreamResult) {
				if m.StopReason != anthropic.StopReasonStopSequence || m.StopSequence != "END" {
					t.Errorf("stop %q %q", m.StopReason, m.StopSequence)
				}
			}},
		{"empty stream", "data: [DONE]\n\n",
			func(t *testing.T, m anthropic.Message, _ []byte, last transform.StreamResult) {
				if len(m.Content) != 0 || m.StopReason != anthropic.StopReasonEndTurn || m.ID != "msg_tollgate" || !last.Done {
					t.Errorf("message = %+v", m)
				}
			}},
		{"comments and CRLF", ": keep-alive\r\n\r\n" + strings.ReplaceAll(chunk(`{"content":"x"}`, `"stop"`), "\n", "\r\n") + "data: [DONE]\r\n\r\n",
			func(t *testing.T, m anthropic.Message, _ []byte, _ transform.StreamResult) {
				if len(m.Content) != 1 || m.Content[0].Text != "x" {
					t.Errorf("content = %+v", m.Content)
				}
			}},
		{"input after the end is ignored", chunk(`{"content":"x"}`, `"stop"`) + "data: [DONE]\n\n" + chunk(`{"content":"late"}`, "null"),
			func(t *testing.T, _ anthropic.Message, out []byte, _ transform.StreamResult) {
				if bytes.Contains(out, []byte("late")) {
					t.Errorf("late input translated: %s", out)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newMessagesResponse(t, transform.ProviderOpenAI, transform.ResponseOptions{Stream: true})
			out, last := runStream(t, tr, [][]byte{[]byte(tt.stream)})
			m, _ := accumulate(t, out)
			tt.check(t, m, out, last)
		})
	}
}

func TestAnthropicToOpenAI_StreamChunkMalformed(t *testing.T) {
	tr := newMessagesResponse(t, transform.ProviderOpenAI, transform.ResponseOptions{Stream: true})
	res, err := tr.StreamChunk([]byte("data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":\n\n"), false)
	if !errors.Is(err, transform.ErrMalformedResponse) {
		t.Fatalf("err = %v", err)
	}
	evs := parseSSE(t, res.Body)
	if last := evs[len(evs)-1]; last.name != "error" || !bytes.Contains(last.data, []byte(`"type":"api_error"`)) {
		t.Errorf("last event %s %s", last.name, last.data)
	}
	if res.Err != nil {
		t.Errorf("unreadable stream reported as a provider error: %+v", res.Err)
	}
	res, err = tr.StreamChunk([]byte("data: [DONE]\n\n"), true)
	if err != nil || len(res.Body) != 0 || res.Done {
		t.Errorf("input after the failure was translated: %q %v", res.Body, err)
	}
}

func TestAnthropicToOpenAI_ErrorBody(t *testing.T) {
	tr := newMessagesResponse(t, transform.ProviderOpenAI, transform.ResponseOptions{})
	got := tr.ErrorBody(429, []byte(`{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`))
	if got.Status != 429 || got.Message != "Rate limit reached" {
		t.Fatalf("got %+v", got)
	}
	if body := string(transform.EncodeAnthropicError(got)); body != `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}` {
		t.Errorf("encoded %s", body)
	}
}

func TestEncodeAnthropicError(t *testing.T) {
	tests := []struct {
		name     string
		err      transform.ProviderError
		wantType string
	}{
		{"invalid request", transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest}, "invalid_request_error"},
		{"authentication", transform.ProviderError{Status: 401, Type: transform.ErrorTypeAuthentication}, "authentication_error"},
		{"billing", transform.ProviderError{Status: 402, Type: transform.ErrorTypePermission}, "billing_error"},
		{"permission", transform.ProviderError{Status: 403, Type: transform.ErrorTypePermission}, "permission_error"},
		{"not found", transform.ProviderError{Status: 404, Type: transform.ErrorTypeNotFound}, "not_found_error"},
		{"too large", transform.ProviderError{Status: 413, Type: transform.ErrorTypeInvalidRequest}, "request_too_large"},
		{"rate limit", transform.ProviderError{Status: 429, Type: transform.ErrorTypeRateLimit}, "rate_limit_error"},
		{"server", transform.ProviderError{Status: 500, Type: transform.ErrorTypeServer}, "api_error"},
		{"bad gateway", transform.ProviderError{Status: 502, Type: transform.ErrorTypeServer}, "api_error"},
		{"unavailable", transform.ProviderError{Status: 503, Type: transform.ErrorTypeOverloaded}, "overloaded_error"},
		{"529", transform.ProviderError{Status: 529, Type: "whatever"}, "overloaded_error"},
		{"timeout", transform.ProviderError{Status: 504, Type: transform.ErrorTypeServer}, "timeout_error"},
		{"overloaded type in a stream", transform.ProviderError{Status: 500, Type: transform.ErrorTypeOverloaded}, "overloaded_error"},
		{"unknown type by status 4xx", transform.ProviderError{Status: 422, Type: "validation"}, "invalid_request_error"},
		{"unknown type by status 401", transform.ProviderError{Status: 401, Type: "bad_key"}, "authentication_error"},
		{"unknown type by status 5xx", transform.ProviderError{Status: 500, Type: "oops"}, "api_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.err.Message = `bad "thing"` + "\n"
			body := transform.EncodeAnthropicError(&tt.err)
			var e anthropic.ErrorResponse
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if e.Type != "error" || e.Error.Type != tt.wantType || e.Error.Message != tt.err.Message {
				t.Errorf("got %s, want type %s", body, tt.wantType)
			}
		})
	}
}

// Context-window errors reach Messages clients in Anthropic's wording, which
// coding agents act on (they compact the conversation), with the provider's
// message kept.
func TestEncodeAnthropicError_ContextWindow(t *testing.T) {
	tests := []struct {
		name, message, want string
	}{
		{"openai counts",
			"This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. Please reduce the length of the messages.",
			"prompt is too long: 130512 tokens > 128000 maximum (This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. Please reduce the length of the messages.)"},
		{"llama.cpp counts",
			"request (9000 tokens) exceeds the available context size (8192 tokens), try increasing it",
			"prompt is too long: 9000 tokens > 8192 maximum (request (9000 tokens) exceeds the available context size (8192 tokens), try increasing it)"},
		{"no counts", "the input length exceeds the context length",
			"prompt is too long (the input length exceeds the context length)"},
		{"three counts are ambiguous",
			"maximum context length is 8192 tokens, you requested 9000 tokens (8000 tokens in the messages, 1000 in the completion)",
			"prompt is too long (maximum context length is 8192 tokens, you requested 9000 tokens (8000 tokens in the messages, 1000 in the completion))"},
		{"anthropic's own wording is kept", "prompt is too long: 210000 tokens > 200000 maximum",
			"prompt is too long: 210000 tokens > 200000 maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := transform.EncodeAnthropicError(&transform.ProviderError{Status: 400,
				Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: tt.message})
			var e anthropic.ErrorResponse
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if e.Error.Type != "invalid_request_error" || e.Error.Message != tt.want {
				t.Errorf("got %s\nwant message %q", body, tt.want)
			}
		})
	}
}

func FuzzAnthropicToOpenAI_RequestBody(f *testing.F) {
	addFixtures(f, "messages", "request")
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		for _, p := range []transform.Provider{transform.ProviderOpenAI, transform.ProviderAnthropic} {
			tr := newMessagesRequest(t, p, transform.Target{Model: "x", APIKey: "k"})
			res, err := tr.RequestBody(body)
			if err != nil {
				if !errors.Is(err, transform.ErrInvalidRequest) {
					t.Fatalf("error is not an invalid request: %v", err)
				}
				continue
			}
			if res.Body != nil && !json.Valid(res.Body) {
				t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
			}
			again, _ := tr.RequestBody(body)
			if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(body, pristine) {
				t.Fatal("translation is not repeatable over an untouched body")
			}
		}
	})
}

func FuzzAnthropicToOpenAI_ResponseBody(f *testing.F) {
	addFixtures(f, "messages", "response")
	f.Fuzz(func(t *testing.T, body []byte) {
		tr := newMessagesResponse(t, transform.ProviderOpenAI, transform.ResponseOptions{})
		res, err := tr.ResponseBody(body)
		if err == nil && !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		if e := tr.ErrorBody(400, body); !json.Valid(transform.EncodeAnthropicError(e)) {
			t.Fatalf("invalid error body for %q", body)
		}
	})
}

func FuzzAnthropicToOpenAI_StreamChunk(f *testing.F) {
	addFixtures(f, "messages", "stream")
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		opts := transform.ResponseOptions{Stream: true}
		got := translateSplit(newMessagesResponse(t, transform.ProviderOpenAI, opts), stream, cut)
		for _, ev := range parseSSE(t, got) {
			if !json.Valid(ev.data) {
				t.Fatalf("invalid event %s from %q", ev.data, stream)
			}
		}
		if whole := translateSplit(newMessagesResponse(t, transform.ProviderOpenAI, opts), stream, len(stream)); !bytes.Equal(got, whole) {
			t.Fatalf("output depends on the cut:\n split: %q\n whole: %q", got, whole)
		}
	})
}

func BenchmarkAnthropicToOpenAI_RequestBody(b *testing.B) {
	for _, name := range []string{"chat_2k", "claude_code", "images"} {
		body := readFile(b, messagesPath(name, "request"))
		b.Run(name, func(b *testing.B) {
			tr := newMessagesRequest(b, transform.ProviderOpenAI, messagesTarget)
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

func BenchmarkAnthropicToOpenAI_ResponseBody(b *testing.B) {
	for _, name := range []string{"text", "tool_calls"} {
		body := readFile(b, messagesPath(name, "response"))
		b.Run(name, func(b *testing.B) {
			tr := newMessagesResponse(b, transform.ProviderOpenAI, transform.ResponseOptions{})
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

// BenchmarkAnthropicToOpenAI_StreamChunk measures one chat chunk per
// operation through the whole messages chain for OpenAI, once the stream
// has started.
func BenchmarkAnthropicToOpenAI_StreamChunk(b *testing.B) {
	pieces := streamPieces(b, messagesPath("parallel_tools", "stream"))
	events := map[string][]byte{
		"text_delta":       pieces[1],
		"input_json_delta": pieces[3][:bytes.Index(pieces[3], []byte("\n\n"))+2],
	}
	for name, ev := range events {
		b.Run(name, func(b *testing.B) {
			tr := newMessagesResponse(b, transform.ProviderOpenAI, transform.ResponseOptions{Stream: true})
			for _, p := range pieces[:3] {
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
