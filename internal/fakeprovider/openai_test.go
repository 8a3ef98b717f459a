package fakeprovider_test

import (
	"cmp"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
)

const testKey = "sk-test-0123456789"

func openAIClient(srv *fakeprovider.Server, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(srv.URL() + "/v1"), option.WithAPIKey(testKey), option.WithMaxRetries(0),
	}, opts...)...)
}

func userMsg(text string) []openai.ChatCompletionMessageParamUnion {
	return []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)}
}

var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:       "get_weather",
	Parameters: shared.FunctionParameters{"type": "object"},
})

func TestOpenAI_Chat(t *testing.T) {
	tests := []struct {
		name       string
		params     openai.ChatCompletionNewParams
		opts       []option.RequestOption
		srvOpts    []fakeprovider.Option
		wantText   string
		wantTool   string
		wantArgs   string
		wantFinish string
		wantUsage  openai.CompletionUsage
		wantChoice int
	}{
		{
			name:       "echo",
			params:     openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("hello big world")},
			wantText:   "echo: hello big world",
			wantFinish: "stop",
			wantUsage:  usage(3, 4, 0, 0),
		},
		{
			name: "multi turn counts every message and replies to the last user turn",
			params: openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{
				openai.SystemMessage("be brief"),
				openai.UserMessage("one two"),
				openai.AssistantMessage("three"),
				openai.UserMessage("four"),
			}},
			wantText:   "echo: four",
			wantFinish: "stop",
			wantUsage:  usage(6, 2, 0, 0),
		},
		{
			name:       "configured reply",
			params:     openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("hi")},
			srvOpts:    []fakeprovider.Option{fakeprovider.WithReply("fixed answer here")},
			wantText:   "fixed answer here",
			wantFinish: "stop",
			wantUsage:  usage(1, 3, 0, 0),
		},
		{
			name:   "header usage controls",
			params: openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("a b c d e")},
			opts: []option.RequestOption{
				option.WithHeader(fakeprovider.HeaderCachedTokens, "3"),
				option.WithHeader(fakeprovider.HeaderReasoningTokens, "7"),
				option.WithHeader(fakeprovider.HeaderReply, "done"),
			},
			wantText:   "done",
			wantFinish: "stop",
			wantUsage:  usage(5, 8, 3, 7),
		},
		{
			name: "max_completion_tokens truncates",
			params: openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("x y z"),
				MaxCompletionTokens: openai.Int(2)},
			wantText:   "echo: x",
			wantFinish: "length",
			wantUsage:  usage(3, 2, 0, 0),
		},
		{
			name: "n choices",
			params: openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("hi"),
				N: openai.Int(2)},
			wantText:   "echo: hi",
			wantFinish: "stop",
			wantUsage:  usage(1, 4, 0, 0),
			wantChoice: 2,
		},
		{
			name: "tool_choice required calls the first tool",
			params: openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("in Paris"),
				Tools:      []openai.ChatCompletionToolUnionParam{weatherTool},
				ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}},
			wantTool:   "get_weather",
			wantArgs:   `{"text":"in Paris"}`,
			wantFinish: "tool_calls",
			wantUsage:  usage(2, 2, 0, 0),
		},
		{
			name: "named tool_choice finishes with stop as OpenAI does",
			params: openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("in Paris"),
				Tools:      []openai.ChatCompletionToolUnionParam{weatherTool},
				ToolChoice: openai.ToolChoiceOptionFunctionToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"})},
			wantTool:   "get_weather",
			wantArgs:   `{"text":"in Paris"}`,
			wantFinish: "stop",
			wantUsage:  usage(2, 2, 0, 0),
		},
		{
			name:       "tool call by header",
			params:     openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("go"), Tools: []openai.ChatCompletionToolUnionParam{weatherTool}},
			opts:       []option.RequestOption{option.WithHeader(fakeprovider.HeaderToolCall, "get_weather")},
			wantTool:   "get_weather",
			wantArgs:   `{"text":"go"}`,
			wantFinish: "tool_calls",
			wantUsage:  usage(1, 1, 0, 0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.OpenAI, append([]fakeprovider.Option{fakeprovider.WithAPIKey(testKey)}, tt.srvOpts...)...)
			client := openAIClient(srv)
			resp, err := client.Chat.Completions.New(t.Context(), tt.params, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(resp.ID, "chatcmpl-") || resp.Object != "chat.completion" || resp.Model != tt.params.Model {
				t.Errorf("envelope = %q %q %q", resp.ID, resp.Object, resp.Model)
			}
			if want := max(tt.wantChoice, 1); len(resp.Choices) != want {
				t.Fatalf("choices = %d, want %d", len(resp.Choices), want)
			}
			for i, ch := range resp.Choices {
				if ch.Index != int64(i) || ch.Message.Content != tt.wantText || ch.FinishReason != tt.wantFinish {
					t.Errorf("choice %d = %d %q %q, want %q %q", i, ch.Index, ch.Message.Content, ch.FinishReason, tt.wantText, tt.wantFinish)
				}
				checkToolCall(t, ch.Message.ToolCalls, tt.wantTool, tt.wantArgs)
			}
			checkUsage(t, resp.Usage, tt.wantUsage)
			recs := srv.Requests()
			if len(recs) != 1 || recs[0].Status != http.StatusOK || recs[0].Path != "/v1/chat/completions" || recs[0].Method != http.MethodPost {
				t.Errorf("records = %+v", recs)
			}
			if got := recs[0].Header.Get("Authorization"); got != "Bearer "+testKey {
				t.Errorf("recorded authorization = %q", got)
			}
		})
	}
}

func usage(prompt, completion, cached, reasoning int64) openai.CompletionUsage {
	var u openai.CompletionUsage
	u.PromptTokens, u.CompletionTokens, u.TotalTokens = prompt, completion, prompt+completion
	u.PromptTokensDetails.CachedTokens = cached
	u.CompletionTokensDetails.ReasoningTokens = reasoning
	return u
}

func checkUsage(t *testing.T, got, want openai.CompletionUsage) {
	t.Helper()
	if got.PromptTokens != want.PromptTokens || got.CompletionTokens != want.CompletionTokens ||
		got.TotalTokens != want.TotalTokens ||
		got.PromptTokensDetails.CachedTokens != want.PromptTokensDetails.CachedTokens ||
		got.CompletionTokensDetails.ReasoningTokens != want.CompletionTokensDetails.ReasoningTokens {
		t.Errorf("usage = %d/%d/%d cached %d reasoning %d, want %d/%d/%d cached %d reasoning %d",
			got.PromptTokens, got.CompletionTokens, got.TotalTokens, got.PromptTokensDetails.CachedTokens, got.CompletionTokensDetails.ReasoningTokens,
			want.PromptTokens, want.CompletionTokens, want.TotalTokens, want.PromptTokensDetails.CachedTokens, want.CompletionTokensDetails.ReasoningTokens)
	}
}

func checkToolCall(t *testing.T, calls []openai.ChatCompletionMessageToolCallUnion, name, args string) {
	t.Helper()
	if name == "" {
		if len(calls) != 0 {
			t.Errorf("unexpected tool calls %+v", calls)
		}
		return
	}
	if len(calls) != 1 {
		t.Fatalf("tool calls = %d, want 1", len(calls))
	}
	c := calls[0]
	if !strings.HasPrefix(c.ID, "call_") || c.Type != "function" || c.Function.Name != name || c.Function.Arguments != args {
		t.Errorf("tool call = %q %q %q %q, want %q %q", c.ID, c.Type, c.Function.Name, c.Function.Arguments, name, args)
	}
}

func TestOpenAI_Stream(t *testing.T) {
	tests := []struct {
		name         string
		params       openai.ChatCompletionNewParams
		wantText     string
		wantTool     string
		wantArgs     string
		wantFinish   string
		wantUsage    *openai.CompletionUsage
		wantContents int
	}{
		{
			name:         "without usage",
			params:       openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("hello  big world")},
			wantText:     "echo: hello  big world",
			wantFinish:   "stop",
			wantContents: 4,
		},
		{
			name: "include_usage adds a final usage chunk",
			params: openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("hello big world"),
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}},
			wantText:     "echo: hello big world",
			wantFinish:   "stop",
			wantUsage:    ptr(usage(3, 4, 0, 0)),
			wantContents: 4,
		},
		{
			name: "include_usage false",
			params: openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("hi"),
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(false)}},
			wantText:     "echo: hi",
			wantFinish:   "stop",
			wantContents: 2,
		},
		{
			name: "tool call arguments arrive in pieces",
			params: openai.ChatCompletionNewParams{Model: "gpt-4o", Messages: userMsg("weather in Paris please"),
				Tools:         []openai.ChatCompletionToolUnionParam{weatherTool},
				ToolChoice:    openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}},
			wantTool:   "get_weather",
			wantArgs:   `{"text":"weather in Paris please"}`,
			wantFinish: "tool_calls",
			wantUsage:  ptr(usage(4, 4, 0, 0)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey(testKey))
			client := openAIClient(srv)
			stream := client.Chat.Completions.NewStreaming(t.Context(), tt.params)
			var acc openai.ChatCompletionAccumulator
			contents, usageChunks, argChunks := 0, 0, 0
			for stream.Next() {
				ch := stream.Current()
				acc.AddChunk(ch)
				if ch.Object != "chat.completion.chunk" {
					t.Errorf("object = %q", ch.Object)
				}
				if len(ch.Choices) == 0 {
					usageChunks++
					continue
				}
				if ch.JSON.Usage.Valid() {
					t.Error("usage on a content chunk")
				}
				if ch.Choices[0].Delta.Content != "" {
					contents++
				}
				if len(ch.Choices[0].Delta.ToolCalls) > 0 {
					argChunks++
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if contents != tt.wantContents {
				t.Errorf("content chunks = %d, want %d", contents, tt.wantContents)
			}
			if tt.wantTool != "" && argChunks < 3 {
				t.Errorf("tool call chunks = %d, want several", argChunks)
			}
			msg := acc.Choices[0]
			if msg.Message.Content != tt.wantText || msg.FinishReason != tt.wantFinish {
				t.Errorf("accumulated = %q %q, want %q %q", msg.Message.Content, msg.FinishReason, tt.wantText, tt.wantFinish)
			}
			checkToolCall(t, msg.Message.ToolCalls, tt.wantTool, tt.wantArgs)
			wantUsageChunks := 0
			if tt.wantUsage != nil {
				wantUsageChunks = 1
				checkUsage(t, acc.Usage, *tt.wantUsage)
			}
			if usageChunks != wantUsageChunks {
				t.Errorf("usage chunks = %d, want %d", usageChunks, wantUsageChunks)
			}
		})
	}
}

func TestOpenAI_Errors(t *testing.T) {
	const ok = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name      string
		body      string
		key       string
		srvOpts   []fakeprovider.Option
		wantCode  int
		wantParam string
		wantErr   string
		wantType  string
	}{
		{name: "invalid json", body: `{"model":`, wantCode: 400, wantErr: "could not parse the JSON body"},
		{name: "not an object", body: `[1]`, wantCode: 400, wantErr: "could not parse the JSON body"},
		{name: "unknown field", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokenz":3}`, wantCode: 400, wantErr: "Unrecognized request argument supplied: max_tokenz"},
		{name: "missing model", body: `{"messages":[{"role":"user","content":"hi"}]}`, wantCode: 400, wantErr: "you must provide a model parameter"},
		{name: "model not a string", body: `{"model":4,"messages":[{"role":"user","content":"hi"}]}`, wantCode: 400, wantParam: "model", wantErr: "expected a string, but got an integer"},
		{name: "missing messages", body: `{"model":"m"}`, wantCode: 400, wantParam: "messages", wantErr: "Missing required parameter: 'messages'"},
		{name: "messages not an array", body: `{"model":"m","messages":"hi"}`, wantCode: 400, wantParam: "messages", wantErr: "expected an array of objects, but got a string"},
		{name: "empty messages", body: `{"model":"m","messages":[]}`, wantCode: 400, wantParam: "messages", wantErr: "empty array"},
		{name: "invalid role", body: `{"model":"m","messages":[{"role":"bot","content":"hi"}]}`, wantCode: 400, wantParam: "messages[0].role", wantErr: "Invalid value: 'bot'"},
		{name: "missing role", body: `{"model":"m","messages":[{"content":"hi"}]}`, wantCode: 400, wantParam: "messages[0].role", wantErr: "Missing required parameter"},
		{name: "unknown message field", body: `{"model":"m","messages":[{"role":"user","content":"hi","tool_call_id":"x"}]}`, wantCode: 400, wantErr: "('tool_call_id' was unexpected)"},
		{name: "missing content", body: `{"model":"m","messages":[{"role":"user"}]}`, wantCode: 400, wantParam: "messages[0].content", wantErr: "Missing required parameter"},
		{name: "content wrong type", body: `{"model":"m","messages":[{"role":"user","content":5}]}`, wantCode: 400, wantParam: "messages[0].content", wantErr: "but got an integer instead"},
		{name: "invalid part type", body: `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, wantCode: 400, wantParam: "messages[0].content[0].type", wantErr: "Supported values are: 'text'"},
		{name: "text part without text", body: `{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}`, wantCode: 400, wantParam: "messages[0].content[0].text"},
		{name: "stream not a boolean", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":"yes"}`, wantCode: 400, wantParam: "stream"},
		{name: "stream_options without stream", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`, wantCode: 400, wantParam: "stream_options"},
		{name: "tool message without tool_calls", body: `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"c1","content":"r"}]}`, wantCode: 400, wantParam: "messages.[1].role", wantErr: "must be a response to a preceeding message with 'tool_calls'"},
		{name: "tool message without tool_call_id", body: `{"model":"m","messages":[{"role":"tool","content":"r"}]}`, wantCode: 400, wantParam: "messages[0].tool_call_id"},
		{name: "unanswered tool call", body: `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"user","content":"x"}]}`, wantCode: 400, wantParam: "messages", wantErr: "did not have response messages: c1"},
		{name: "tool_choice without tools", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"required"}`, wantCode: 400, wantParam: "tool_choice"},
		{name: "tool without name", body: `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{}}]}`, wantCode: 400, wantParam: "tools[0].function.name"},
		{name: "wrong key", body: ok, key: "sk-wrong-key-123", wantCode: 401, wantErr: "Incorrect API key provided: sk-*****-123", wantType: "invalid_request_error"},
		{name: "context window", body: `{"model":"m","messages":[{"role":"user","content":"a b c d"}]}`, srvOpts: []fakeprovider.Option{fakeprovider.WithContextWindow(3)}, wantCode: 400, wantParam: "messages", wantErr: "maximum context length is 3 tokens. However, your messages resulted in 4 tokens"},
		{name: "unknown model", body: ok, srvOpts: []fakeprovider.Option{fakeprovider.WithModels("gpt-4.1")}, wantCode: 404, wantErr: "The model `gpt-4o` does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.OpenAI, append([]fakeprovider.Option{fakeprovider.WithAPIKey(testKey)}, tt.srvOpts...)...)
			opts := []option.RequestOption{option.WithRequestBody("application/json", []byte(tt.body))}
			if tt.key != "" {
				opts = append(opts, option.WithAPIKey(tt.key))
			}
			client := openAIClient(srv)
			_, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{}, opts...)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *openai.Error", err)
			}
			wantType := cmp.Or(tt.wantType, "invalid_request_error")
			if apiErr.StatusCode != tt.wantCode || apiErr.Type != wantType || apiErr.Param != tt.wantParam || !strings.Contains(apiErr.Message, tt.wantErr) {
				t.Errorf("error = %d %q param %q %q, want %d %q param %q containing %q",
					apiErr.StatusCode, apiErr.Type, apiErr.Param, apiErr.Message, tt.wantCode, wantType, tt.wantParam, tt.wantErr)
			}
			if !apiErr.JSON.Code.Valid() && apiErr.JSON.Code.Raw() != "null" {
				t.Errorf("code field missing: %s", apiErr.RawJSON())
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
