package fakeprovider_test

import (
	"cmp"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
)

func anthropicClient(srv *fakeprovider.Server, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{
		option.WithBaseURL(srv.URL()), option.WithAPIKey(testKey), option.WithMaxRetries(0),
	}, opts...)...)
}

func anUser(text string) anthropic.MessageParam {
	return anthropic.NewUserMessage(anthropic.NewTextBlock(text))
}

var anWeatherTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name: "get_weather", InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{}},
}}

type anUsageWant struct{ in, out, cacheRead, cacheWrite int64 }

func TestAnthropic_Messages(t *testing.T) {
	tests := []struct {
		name      string
		params    anthropic.MessageNewParams
		opts      []option.RequestOption
		wantText  string
		wantTool  string
		wantInput string
		wantStop  anthropic.StopReason
		wantUsage anUsageWant
	}{
		{
			name:      "echo",
			params:    anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 100, Messages: []anthropic.MessageParam{anUser("hello big world")}},
			wantText:  "echo: hello big world",
			wantStop:  anthropic.StopReasonEndTurn,
			wantUsage: anUsageWant{in: 3, out: 4},
		},
		{
			name: "system and tool round trip count",
			params: anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 100,
				System: []anthropic.TextBlockParam{{Text: "be brief"}},
				Tools:  []anthropic.ToolUnionParam{anWeatherTool},
				Messages: []anthropic.MessageParam{
					anUser("weather please"),
					anthropic.NewAssistantMessage(anthropic.NewToolUseBlock("toolu_1", map[string]string{"city": "Paris"}, "get_weather")),
					anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_1", "sunny and warm", false), anthropic.NewTextBlock("thanks")),
				}},
			wantText: "echo: thanks",
			wantStop: anthropic.StopReasonEndTurn,
			// be brief (2) + weather please (2) + {"city":"Paris"} (1) +
			// sunny and warm (3) + thanks (1)
			wantUsage: anUsageWant{in: 9, out: 2},
		},
		{
			name:   "cache headers",
			params: anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 100, Messages: []anthropic.MessageParam{anUser("a b c d e f")}},
			opts: []option.RequestOption{
				option.WithHeader(fakeprovider.HeaderCachedTokens, "2"),
				option.WithHeader(fakeprovider.HeaderCacheWriteTokens, "3"),
				option.WithHeader(fakeprovider.HeaderReasoningTokens, "4"),
			},
			wantText:  "echo: a b c d e f",
			wantStop:  anthropic.StopReasonEndTurn,
			wantUsage: anUsageWant{in: 1, cacheRead: 2, cacheWrite: 3, out: 7 + 4},
		},
		{
			name:      "max_tokens truncates",
			params:    anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 2, Messages: []anthropic.MessageParam{anUser("x y z")}},
			wantText:  "echo: x",
			wantStop:  anthropic.StopReasonMaxTokens,
			wantUsage: anUsageWant{in: 3, out: 2},
		},
		{
			name: "tool_choice any",
			params: anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 100, Messages: []anthropic.MessageParam{anUser("in Paris")},
				Tools: []anthropic.ToolUnionParam{anWeatherTool}, ToolChoice: anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}}},
			wantTool:  "get_weather",
			wantInput: `{"text":"in Paris"}`,
			wantStop:  anthropic.StopReasonToolUse,
			wantUsage: anUsageWant{in: 2, out: 2},
		},
		{
			name: "tool_choice tool",
			params: anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 100, Messages: []anthropic.MessageParam{anUser("in Paris")},
				Tools: []anthropic.ToolUnionParam{anWeatherTool}, ToolChoice: anthropic.ToolChoiceParamOfTool("get_weather")},
			wantTool:  "get_weather",
			wantInput: `{"text":"in Paris"}`,
			wantStop:  anthropic.StopReasonToolUse,
			wantUsage: anUsageWant{in: 2, out: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey(testKey))
			client := anthropicClient(srv)
			resp, err := client.Messages.New(t.Context(), tt.params, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(resp.ID, "msg_") || resp.Model != tt.params.Model || resp.Role != "assistant" {
				t.Errorf("envelope = %q %q %q", resp.ID, resp.Model, resp.Role)
			}
			checkAnthropicMessage(t, resp, tt.wantText, tt.wantTool, tt.wantInput, tt.wantStop, tt.wantUsage)
			recs := srv.Requests()
			if len(recs) != 1 || recs[0].Status != http.StatusOK || recs[0].Header.Get("X-Api-Key") != testKey {
				t.Errorf("records = %+v", recs)
			}
		})
	}
}

func checkAnthropicMessage(t *testing.T, m *anthropic.Message, text, tool, input string, stop anthropic.StopReason, u anUsageWant) {
	t.Helper()
	var gotText, gotTool, gotInput string
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			gotText += b.Text
		case "tool_use":
			if !strings.HasPrefix(b.ID, "toolu_") {
				t.Errorf("tool_use id = %q", b.ID)
			}
			gotTool, gotInput = b.Name, string(b.Input)
		}
	}
	if gotText != text || gotTool != tool || gotInput != input || m.StopReason != stop {
		t.Errorf("message = text %q tool %q input %s stop %q, want %q %q %s %q", gotText, gotTool, gotInput, m.StopReason, text, tool, input, stop)
	}
	got := anUsageWant{m.Usage.InputTokens, m.Usage.OutputTokens, m.Usage.CacheReadInputTokens, m.Usage.CacheCreationInputTokens}
	if got != u {
		t.Errorf("usage = %+v, want %+v", got, u)
	}
}

func TestAnthropic_Stream(t *testing.T) {
	tests := []struct {
		name       string
		params     anthropic.MessageNewParams
		wantText   string
		wantTool   string
		wantInput  string
		wantStop   anthropic.StopReason
		wantUsage  anUsageWant
		wantEvents []string
	}{
		{
			name:      "text",
			params:    anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 100, Messages: []anthropic.MessageParam{anUser("hello world")}},
			wantText:  "echo: hello world",
			wantStop:  anthropic.StopReasonEndTurn,
			wantUsage: anUsageWant{in: 2, out: 3},
			wantEvents: []string{"message_start", "content_block_start",
				"content_block_delta", "content_block_delta", "content_block_delta",
				"content_block_stop", "message_delta", "message_stop"},
		},
		{
			name: "tool use",
			params: anthropic.MessageNewParams{Model: "claude-x", MaxTokens: 100, Messages: []anthropic.MessageParam{anUser("in Paris")},
				Tools: []anthropic.ToolUnionParam{anWeatherTool}, ToolChoice: anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}}},
			wantTool:  "get_weather",
			wantInput: `{"text":"in Paris"}`,
			wantStop:  anthropic.StopReasonToolUse,
			wantUsage: anUsageWant{in: 2, out: 2},
			wantEvents: []string{"message_start", "content_block_start",
				"content_block_delta", "content_block_delta", "content_block_delta",
				"content_block_stop", "message_delta", "message_stop"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey(testKey))
			client := anthropicClient(srv)
			stream := client.Messages.NewStreaming(t.Context(), tt.params)
			var acc anthropic.Message
			// The SDK drops ping events; TestServer_StreamWire sees them.
			var events []string
			for stream.Next() {
				ev := stream.Current()
				events = append(events, ev.Type)
				if err := acc.Accumulate(ev); err != nil {
					t.Fatal(err)
				}
				if ev.Type == "message_start" && ev.Message.Usage.InputTokens != tt.wantUsage.in {
					t.Errorf("message_start input_tokens = %d", ev.Message.Usage.InputTokens)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if strings.Join(events, ",") != strings.Join(tt.wantEvents, ",") {
				t.Errorf("events = %v, want %v", events, tt.wantEvents)
			}
			checkAnthropicMessage(t, &acc, tt.wantText, tt.wantTool, tt.wantInput, tt.wantStop, tt.wantUsage)
		})
	}
}

func TestAnthropic_Errors(t *testing.T) {
	const ok = `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name     string
		body     string
		headers  map[string]string
		srvOpts  []fakeprovider.Option
		wantCode int
		wantType anthropic.ErrorType
		wantErr  string
	}{
		{name: "invalid json", body: `{"model"`, wantErr: "valid JSON object"},
		{name: "unknown field", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}],"n":2}`, wantErr: "n: Extra inputs are not permitted"},
		{name: "missing model", body: `{"max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`, wantErr: "model: Field required"},
		{name: "missing max_tokens", body: `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, wantErr: "max_tokens: Field required"},
		{name: "max_tokens not an integer", body: `{"model":"m","max_tokens":"ten","messages":[{"role":"user","content":"hi"}]}`, wantErr: "max_tokens: Input should be a valid integer"},
		{name: "max_tokens zero", body: `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, wantErr: "greater than or equal to 1"},
		{name: "missing messages", body: `{"model":"m","max_tokens":1}`, wantErr: "messages: Field required"},
		{name: "empty messages", body: `{"model":"m","max_tokens":1,"messages":[]}`, wantErr: "at least one message is required"},
		{name: "first message not user", body: `{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":"hi"}]}`, wantErr: `first message must use the "user" role`},
		{name: "roles do not alternate", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`, wantErr: `multiple "user" roles in a row`},
		{name: "system role in messages", body: `{"model":"m","max_tokens":1,"messages":[{"role":"system","content":"a"}]}`, wantErr: "top-level `system` parameter"},
		{name: "invalid role", body: `{"model":"m","max_tokens":1,"messages":[{"role":"bot","content":"a"}]}`, wantErr: "messages.0.role: Input should be 'user' or 'assistant'"},
		{name: "unknown message field", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a","name":"x"}]}`, wantErr: "messages.0.name: Extra inputs are not permitted"},
		{name: "empty content", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":""}]}`, wantErr: "non-empty content"},
		{name: "empty text block", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, wantErr: "text content blocks must be non-empty"},
		{name: "unknown block type", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"video"}]}]}`, wantErr: "messages.0.content.0: Input tag 'video'"},
		{name: "tool_result in assistant turn", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"}]}]}`, wantErr: "tool_result blocks are only allowed in user messages"},
		{name: "tool_result without tool_use", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"}]}]}`, wantErr: "unexpected `tool_use_id` found in `tool_result` blocks: t1"},
		{name: "tool_use without tool_result", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":"b"}]}`, wantErr: "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: t1"},
		{name: "system not text", body: `{"model":"m","max_tokens":1,"system":[{"type":"image"}],"messages":[{"role":"user","content":"a"}]}`, wantErr: "system.0"},
		{name: "tool_choice names unknown tool", body: `{"model":"m","max_tokens":1,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"g"},"messages":[{"role":"user","content":"a"}]}`, wantErr: "tool_choice.name"},
		{name: "missing key", body: ok, headers: map[string]string{"X-Api-Key": ""}, wantCode: 401, wantType: "authentication_error", wantErr: "x-api-key header is required"},
		{name: "wrong key", body: ok, headers: map[string]string{"X-Api-Key": "nope"}, wantCode: 401, wantType: "authentication_error", wantErr: "invalid x-api-key"},
		{name: "missing version", body: ok, headers: map[string]string{"Anthropic-Version": ""}, wantErr: "anthropic-version: header is required"},
		{name: "prompt too long", body: `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"a b c"}]}`, srvOpts: []fakeprovider.Option{fakeprovider.WithContextWindow(2)}, wantErr: "prompt is too long: 3 tokens > 2 maximum"},
		{name: "unknown model", body: ok, srvOpts: []fakeprovider.Option{fakeprovider.WithModels("claude-y")}, wantCode: 404, wantType: "not_found_error", wantErr: "model: claude-x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Anthropic, append([]fakeprovider.Option{fakeprovider.WithAPIKey(testKey)}, tt.srvOpts...)...)
			opts := []option.RequestOption{option.WithRequestBody("application/json", []byte(tt.body))}
			for k, v := range tt.headers {
				if v == "" {
					opts = append(opts, option.WithHeaderDel(k))
				} else {
					opts = append(opts, option.WithHeader(k, v))
				}
			}
			client := anthropicClient(srv)
			_, err := client.Messages.New(t.Context(), anthropic.MessageNewParams{}, opts...)
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *anthropic.Error", err)
			}
			wantCode := max(tt.wantCode, 400)
			wantType := cmp.Or(tt.wantType, "invalid_request_error")
			msg := gjson.Get(apiErr.RawJSON(), "error.message").String()
			if apiErr.StatusCode != wantCode || apiErr.Type() != wantType || !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error = %d %q %s, want %d %q containing %q", apiErr.StatusCode, apiErr.Type(), apiErr.RawJSON(), wantCode, wantType, tt.wantErr)
			}
			if !strings.HasPrefix(apiErr.RawJSON(), `{"type":"error","error":{"type":`) {
				t.Errorf("error shape = %s", apiErr.RawJSON())
			}
		})
	}
}
