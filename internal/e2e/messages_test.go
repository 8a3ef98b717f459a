package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// TestMessages_AnthropicSDK: Anthropic's official SDK, as Claude Code uses
// the Messages API, served by the Anthropic deployment (pass-through) and
// by the OpenAI one (translated both ways).
func TestMessages_AnthropicSDK(t *testing.T) {
	s := startStack(t)
	client := anthropic.NewClient(anthropicopt.WithBaseURL(s.sim.URL()), anthropicopt.WithAPIKey(demoKey), anthropicopt.WithMaxRetries(0))
	for _, model := range []string{"claude-sonnet", "gpt-4o"} {
		params := anthropic.MessageNewParams{
			Model:     anthropic.Model(model),
			MaxTokens: 100,
			System:    []anthropic.TextBlockParam{{Text: "be brief"}},
			Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello from claude code"))},
		}
		t.Run(model+"/non-stream", func(t *testing.T) {
			msg, err := client.Messages.New(t.Context(), params)
			if err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) != 1 || msg.Content[0].Text != "echo: hello from claude code" || msg.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("message = %+v", msg)
			}
			if msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens != 5 {
				t.Errorf("usage = %+v", msg.Usage)
			}
		})
		t.Run(model+"/stream", func(t *testing.T) {
			stream := client.Messages.NewStreaming(t.Context(), params)
			var msg anthropic.Message
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) != 1 || msg.Content[0].Text != "echo: hello from claude code" || msg.Usage.OutputTokens != 5 {
				t.Errorf("accumulated = %+v", msg)
			}
		})
	}
	t.Run("error in Anthropic's shape", func(t *testing.T) {
		_, err := client.Messages.New(t.Context(), anthropic.MessageNewParams{Model: "no-such-model", MaxTokens: 10,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))}})
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestMessages_ToolsThroughChain: Claude Code's tool loop through the
// Messages API to providers reached by translation: a tool definition, the
// provider's tool call coming back as tool_use, and the tool_result
// follow-up reaching the provider in its own format, non-stream and stream.
func TestMessages_ToolsThroughChain(t *testing.T) {
	fakes := map[string]*fakeprovider.Server{
		"openai":  fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey("k-openai")),
		"azure":   fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey("k-azure")),
		"bedrock": fakeprovider.Start(t, fakeprovider.Bedrock, fakeprovider.WithAPIKey("aws-secret")),
		"gemini":  fakeprovider.Start(t, fakeprovider.Gemini, fakeprovider.WithAPIKey("k-gemini")),
		"cohere":  fakeprovider.Start(t, fakeprovider.Cohere, fakeprovider.WithAPIKey("k-cohere")),
		"ollama":  fakeprovider.Start(t, fakeprovider.Ollama),
		"vertex":  fakeprovider.Start(t, fakeprovider.Gemini, fakeprovider.WithAPIKey("vertex-token")),
		// Claude on Vertex: the chain goes Anthropic → chat → Anthropic.
		"vertex-claude": fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey("vertex-token")),
	}
	vertexToken := func(rt *config.Runtime) {
		for _, id := range []string{"d-vertex", "d-vertex-claude"} {
			d, _ := rt.Routes.Deployment(id)
			d.Credentials = staticToken("vertex-token")
		}
	}
	cfg := fmt.Sprintf(`
model_list:
  - {model_name: t-openai, litellm_params: {model: openai/gpt-4o, api_base: "%s/v1", api_key: k-openai}}
  - {model_name: t-azure, litellm_params: {model: azure/my-gpt4o, api_base: "%s", api_key: k-azure}}
  - {model_name: t-bedrock, litellm_params: {model: bedrock/anthropic.claude-3-5-haiku-20241022-v1:0, api_base: "%s", aws_region_name: us-east-1, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: aws-secret}}
  - {model_name: t-gemini, litellm_params: {model: gemini/gemini-2.5-flash, api_base: "%s", api_key: k-gemini}}
  - {model_name: t-cohere, litellm_params: {model: cohere/command-r-plus, api_base: "%s", api_key: k-cohere}}
  - {model_name: t-ollama, litellm_params: {model: ollama_chat/llama3.1, api_base: "%s"}}
  - {model_name: t-vertex, litellm_params: {model: vertex_ai/gemini-2.5-pro, api_base: "%s", vertex_project: proj-1, vertex_credentials: '%s'}, model_info: {id: d-vertex}}
  - {model_name: t-vertex-claude, litellm_params: {model: vertex_ai/claude-sonnet-4-5@20250929, api_base: "%s", vertex_project: proj-1, vertex_location: us-east5, vertex_credentials: '%s'}, model_info: {id: d-vertex-claude}}
keys: [{id: demo, key: sk-tollgate-demo}]
`, fakes["openai"].URL(), fakes["azure"].URL(), fakes["bedrock"].URL(), fakes["gemini"].URL(), fakes["cohere"].URL(), fakes["ollama"].URL(),
		fakes["vertex"].URL(), vertexUser, fakes["vertex-claude"].URL(), vertexUser)
	// The OpenAI-compatible family, each by prefix, on one OpenAI-format
	// fake; their results are placed as OpenAI's are.
	compat := fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey("k-compat"))
	for _, name := range transform.CompatProviders() {
		fakes[name] = compat
		cfg = strings.Replace(cfg, "keys:", fmt.Sprintf("  - {model_name: t-%s, litellm_params: {model: %s/some-model, api_base: \"%s/v1\", api_key: k-compat}}\nkeys:", name, name, compat.URL()), 1)
	}
	s := startConfigStack(t, cfg, vertexToken)

	weather := anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name:        "get_weather",
		Description: anthropic.String("Current weather in a city"),
		InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"city": map[string]any{"type": "string"}},
			Required:   []string{"city"},
		},
	}}
	question := anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Paris?"))
	for _, name := range append([]string{"openai", "azure", "bedrock", "gemini", "vertex", "vertex-claude", "cohere", "ollama"}, transform.CompatProviders()...) {
		fake := fakes[name]
		for _, stream := range []bool{false, true} {
			send := func(t *testing.T, msgs []anthropic.MessageParam) anthropic.Message {
				t.Helper()
				p := anthropic.MessageNewParams{Model: anthropic.Model("t-" + name), MaxTokens: 200, Tools: []anthropic.ToolUnionParam{weather}, Messages: msgs}
				if !stream {
					msg, err := s.anthropic.Messages.New(t.Context(), p)
					if err != nil {
						t.Fatal(err)
					}
					return *msg
				}
				st := s.anthropic.Messages.NewStreaming(t.Context(), p)
				var msg anthropic.Message
				for st.Next() {
					if err := msg.Accumulate(st.Current()); err != nil {
						t.Fatal(err)
					}
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
				return msg
			}
			t.Run(fmt.Sprintf("%s/stream=%v", name, stream), func(t *testing.T) {
				// Two calls in one turn, as Claude Code issues parallel
				// tool calls.
				fake.Enqueue(fakeprovider.Step{Reply: fakeprovider.Reply{Text: "Let me check.", ToolCalls: []fakeprovider.ToolCall{
					{Name: "get_weather", Arguments: `{"city":"Paris"}`}, {Name: "get_weather", Arguments: `{"city":"Rome"}`}}}})
				call := send(t, []anthropic.MessageParam{question})
				if call.StopReason != anthropic.StopReasonToolUse || len(call.Content) != 3 || call.Content[0].Text != "Let me check." {
					t.Fatalf("tool call message %+v", call)
				}
				// The provider's id and model, not placeholders (Azure
				// streams a chunk without either first).
				if call.ID == "" || call.ID == "msg_tollgate" || call.Model == "" {
					t.Errorf("id %q model %q", call.ID, call.Model)
				}
				var results []anthropic.ContentBlockParamUnion
				for i, city := range []string{"Paris", "Rome"} {
					use := call.Content[1+i]
					if use.Type != "tool_use" || use.Name != "get_weather" || use.ID == "" || gjson.GetBytes(use.Input, "city").Str != city {
						t.Fatalf("tool_use block %d: %+v input %s", i, use, use.Input)
					}
					results = append(results, anthropic.NewToolResultBlock(use.ID, "sunny in "+city, false))
				}
				// Claude Code sends failed calls as content blocks marked
				// is_error.
				results[1] = anthropic.ContentBlockParamUnion{OfToolResult: &anthropic.ToolResultBlockParam{ToolUseID: call.Content[2].ID,
					IsError: anthropic.Bool(true), Content: []anthropic.ToolResultBlockParamContentUnion{{OfText: &anthropic.TextBlockParam{Text: "no station in Rome"}}}}}
				if call.Content[1].ID == call.Content[2].ID {
					t.Errorf("both calls have id %s", call.Content[1].ID)
				}
				// The definition reached the provider.
				if body := lastBody(t, fake); !strings.Contains(body, "get_weather") || !strings.Contains(body, "Current weather in a city") {
					t.Errorf("tool definition missing upstream: %s", body)
				}

				answer := send(t, []anthropic.MessageParam{question, call.ToParam(), anthropic.NewUserMessage(results...)})
				if answer.StopReason != anthropic.StopReasonEndTurn || len(answer.Content) != 1 || answer.Content[0].Text == "" {
					t.Errorf("answer %+v", answer)
				}
				// Input tokens count the question, the call's text and
				// arguments and both results: all of it reached the provider.
				// Mistral's translator drops stream_options (Mistral reports
				// usage unasked), and the fake reports it only when asked.
				if answer.Usage.InputTokens != 16 && (name != "mistral" || !stream) {
					t.Errorf("input tokens %d, want 16", answer.Usage.InputTokens)
				}
				// Each result answers its call, in the provider's terms.
				w, ok := resultPaths[name]
				if !ok {
					w = resultPaths["openai"]
				}
				body := lastBody(t, fake)
				for i, want := range []string{"sunny in Paris", "Error: no station in Rome"} {
					link := call.Content[1+i].ID
					if w.byName {
						link = "get_weather"
					}
					if got := gjson.Get(body, fmt.Sprintf(w.link, w.first+i)).Str; got != link {
						t.Errorf("result %d links to %q, want %q", i, got, link)
					}
					if got := gjson.Get(body, fmt.Sprintf(w.content, w.first+i)).Str; got != want {
						t.Errorf("result %d content %q, want %q", i, got, want)
					}
				}
			})
		}
	}
}

// TestMessages_BedrockRenamedTool: a tool name Converse rejects is renamed
// on the way to Bedrock, and the call the model makes with the new name
// reaches the Messages client under the name it declared.
func TestMessages_BedrockRenamedTool(t *testing.T) {
	fake := fakeprovider.Start(t, fakeprovider.Bedrock, fakeprovider.WithAPIKey("aws-secret"))
	s := startConfigStack(t, fmt.Sprintf(`
model_list:
  - {model_name: t-bedrock, litellm_params: {model: bedrock/anthropic.claude-3-5-haiku-20241022-v1:0, api_base: "%s", aws_region_name: us-east-1, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: aws-secret}}
keys: [{id: demo, key: sk-tollgate-demo}]
`, fake.URL()))
	tool := anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{Name: "weather.get", InputSchema: anthropic.ToolInputSchemaParam{
		Properties: map[string]any{"city": map[string]any{"type": "string"}}}}}
	p := anthropic.MessageNewParams{Model: "t-bedrock", MaxTokens: 100, Tools: []anthropic.ToolUnionParam{tool},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Paris?"))}}
	// The model calls the tool by the name Bedrock was given.
	step := fakeprovider.Step{Reply: fakeprovider.Reply{ToolCalls: []fakeprovider.ToolCall{{Name: "weather_get", Arguments: `{"city":"Paris"}`}}}}

	fake.Enqueue(step)
	msg, err := s.anthropic.Messages.New(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if gjson.Get(lastBody(t, fake), "toolConfig.tools.0.toolSpec.name").Str != "weather_get" {
		t.Fatalf("bedrock was given %s", lastBody(t, fake))
	}
	if len(msg.Content) != 1 || msg.Content[0].Name != "weather.get" {
		t.Errorf("non-stream content %+v", msg.Content)
	}

	fake.Enqueue(step)
	stream := s.anthropic.Messages.NewStreaming(t.Context(), p)
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Content) != 1 || acc.Content[0].Name != "weather.get" {
		t.Errorf("streamed content %+v", acc.Content)
	}
}

// resultPaths locate, in a provider's request, the tool results of the
// last turn: %d is first+i for the i-th result.
var resultPaths = map[string]struct {
	link, content string
	first         int
	// byName: the provider links results to calls by tool name, not id.
	byName bool
}{
	// One tool message per result, after the question and the call.
	"openai": {link: "messages.%d.tool_call_id", content: "messages.%d.content", first: 2},
	"azure":  {link: "messages.%d.tool_call_id", content: "messages.%d.content", first: 2},
	"cohere": {link: "messages.%d.tool_call_id", content: "messages.%d.content", first: 2},
	"ollama": {link: "messages.%d.tool_name", content: "messages.%d.content", first: 2, byName: true},
	// One user turn holding every result.
	"bedrock": {link: "messages.2.content.%d.toolResult.toolUseId", content: "messages.2.content.%d.toolResult.content.0.text"},
	"gemini":  {link: "contents.2.parts.%d.functionResponse.name", content: "contents.2.parts.%d.functionResponse.response.content", byName: true},
	"vertex":  {link: "contents.2.parts.%d.functionResponse.name", content: "contents.2.parts.%d.functionResponse.response.content", byName: true},
	// Anthropic's own format again: one user turn of tool_result blocks.
	"vertex-claude": {link: "messages.2.content.%d.tool_use_id", content: "messages.2.content.%d.content"},
}
