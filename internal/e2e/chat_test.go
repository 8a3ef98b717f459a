package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
)

func TestChat_NonStream(t *testing.T) {
	s := startStack(t)
	for _, tc := range []struct {
		model, deployment string
		provider          *fakeprovider.Server
		wantPath          string
	}{
		{"gpt-4o", "openai-gpt-4o", s.openai, "/v1/chat/completions"},
		{"claude-sonnet", "anthropic-claude-sonnet", s.anthropic, "/v1/messages"},
	} {
		t.Run(tc.model, func(t *testing.T) {
			var resp *http.Response
			params := userMessage("hello there gateway")
			params.Model = tc.model
			cc, err := s.client.Chat.Completions.New(t.Context(), params, option.WithResponseInto(&resp))
			if err != nil {
				t.Fatal(err)
			}
			if got := cc.Choices[0].Message.Content; got != "echo: hello there gateway" {
				t.Errorf("content = %q", got)
			}
			if cc.Choices[0].FinishReason != "stop" || cc.Object != "chat.completion" {
				t.Errorf("finish %q object %q", cc.Choices[0].FinishReason, cc.Object)
			}
			// The fake counts words: 3 in, 4 out.
			if cc.Usage.PromptTokens != 3 || cc.Usage.CompletionTokens != 4 || cc.Usage.TotalTokens != 7 {
				t.Errorf("usage = %+v", cc.Usage)
			}
			if got := resp.Header.Get("x-tollgate-deployment"); got != tc.deployment {
				t.Errorf("x-tollgate-deployment = %q", got)
			}
			if got := resp.Header.Get("x-tollgate-model-group"); got != tc.model {
				t.Errorf("x-tollgate-model-group = %q", got)
			}
			rec := tc.provider.Requests()[len(tc.provider.Requests())-1]
			if rec.Path != tc.wantPath {
				t.Errorf("provider path = %q", rec.Path)
			}
			if rec.Header.Get("x-tollgate-pool") != "" || strings.Contains(rec.Header.Get("authorization"), demoKey) {
				t.Error("gateway headers or the client's key reached the provider")
			}
		})
	}
}

func TestChat_Stream(t *testing.T) {
	s := startStack(t)
	for _, model := range []string{"gpt-4o", "claude-sonnet"} {
		for _, includeUsage := range []bool{true, false} {
			name := model + "/no-usage"
			if includeUsage {
				name = model + "/include-usage"
			}
			t.Run(name, func(t *testing.T) {
				params := userMessage("stream me please")
				params.Model = model
				if includeUsage {
					params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: param.NewOpt(true)}
				}
				stream := s.client.Chat.Completions.NewStreaming(t.Context(), params)
				var acc openai.ChatCompletionAccumulator
				usageChunks := 0
				for stream.Next() {
					chunk := stream.Current()
					acc.AddChunk(chunk)
					if len(chunk.Choices) == 0 && chunk.Usage.TotalTokens > 0 {
						usageChunks++
					}
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if got := acc.Choices[0].Message.Content; got != "echo: stream me please" {
					t.Errorf("content = %q", got)
				}
				if acc.Choices[0].FinishReason != "stop" {
					t.Errorf("finish = %q", acc.Choices[0].FinishReason)
				}
				// The gateway asks OpenAI for usage on every stream (to meter
				// it); the client sees the usage chunk only if it asked.
				want := 0
				if includeUsage {
					want = 1
				}
				if usageChunks != want {
					t.Errorf("usage chunks = %d, want %d", usageChunks, want)
				}
				if includeUsage && (acc.Usage.PromptTokens != 3 || acc.Usage.CompletionTokens != 4) {
					t.Errorf("usage = %+v", acc.Usage)
				}
				if model == "gpt-4o" && !gjson.Get(lastBody(t, s.openai), "stream_options.include_usage").Bool() {
					t.Error("the OpenAI stream was not asked for usage")
				}
			})
		}
	}
}

func TestChat_ToolCalls(t *testing.T) {
	s := startStack(t)
	for _, model := range []string{"gpt-4o", "claude-sonnet"} {
		t.Run(model, func(t *testing.T) {
			params := userMessage("weather in Paris")
			params.Model = model
			params.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
				Name:       "get_weather",
				Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}},
			})}
			params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: param.NewOpt("required")}
			cc, err := s.client.Chat.Completions.New(t.Context(), params)
			if err != nil {
				t.Fatal(err)
			}
			calls := cc.Choices[0].Message.ToolCalls
			if len(calls) != 1 || calls[0].Function.Name != "get_weather" || calls[0].ID == "" {
				t.Fatalf("tool calls = %+v", calls)
			}
			if got := gjson.Get(calls[0].Function.Arguments, "text").String(); got != "weather in Paris" {
				t.Errorf("arguments = %s", calls[0].Function.Arguments)
			}
			if cc.Choices[0].FinishReason != "tool_calls" {
				t.Errorf("finish = %q", cc.Choices[0].FinishReason)
			}

			// The tool result goes back in a second turn.
			params.Messages = append(params.Messages, cc.Choices[0].Message.ToParam(), openai.ToolMessage("sunny", calls[0].ID))
			params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: param.NewOpt("auto")}
			if _, err := s.client.Chat.Completions.New(t.Context(), params); err != nil {
				t.Fatalf("tool result turn: %v", err)
			}
		})
	}
}

// TestChat_Errors sends each request error of the gateway and checks the
// SDK sees it as a typed error with the right status.
func TestChat_Errors(t *testing.T) {
	s := startStack(t)
	for _, tc := range []struct {
		name   string
		model  string
		key    string
		status int
		code   string
	}{
		{"unknown key", "gpt-4o", "sk-wrong", 401, "invalid_api_key"},
		{"unknown model", "gpt-9", demoKey, 404, "model_not_found"},
		{"model not allowed for key", "gpt-4o", restrictedKey, 403, "model_not_allowed"},
		{"untranslatable parameter", "claude-sonnet", demoKey, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := userMessage("hi")
			params.Model = tc.model
			if tc.name == "untranslatable parameter" {
				params.N = param.NewOpt[int64](3)
			}
			_, err := s.client.Chat.Completions.New(t.Context(), params, option.WithAPIKey(tc.key))
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *openai.Error", err)
			}
			if apiErr.StatusCode != tc.status || (tc.code != "" && apiErr.Code != tc.code) || apiErr.Message == "" {
				t.Errorf("status %d code %q type %q message %q", apiErr.StatusCode, apiErr.Code, apiErr.Type, apiErr.Message)
			}
		})
	}
}

// TestChat_RawErrors covers the errors an SDK cannot produce: broken JSON,
// wrong methods and paths, oversized bodies.
func TestChat_RawErrors(t *testing.T) {
	s := startStack(t)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"malformed json", "POST", "/v1/chat/completions", `{"model":`, 400},
		{"missing model", "POST", "/v1/chat/completions", `{"messages":[]}`, 400},
		{"model not a string", "POST", "/v1/chat/completions", `{"model":1,"messages":[]}`, 400},
		{"wrong method", "GET", "/v1/chat/completions", "", 405},
		{"unknown path", "POST", "/v1/assistants", `{}`, 404},
		{"body too large", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[],"x":"` + strings.Repeat("a", 11<<20) + `"}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, s.sim.URL()+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+demoKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if !gjson.GetBytes(body, "error.message").Exists() || !gjson.GetBytes(body, "error.type").Exists() {
				t.Errorf("body is not an OpenAI error: %s", body)
			}
		})
	}
}

func TestModels_ListForKey(t *testing.T) {
	s := startStack(t)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.sim.URL()+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+demoKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ids := gjson.GetBytes(body, "data.#.id").String(); ids != `["claude-sonnet","gpt-4o"]` {
		t.Errorf("/v1/models = %s", body)
	}
	// The model listing goes through the SDK too.
	page, err := s.client.Models.List(t.Context())
	if err != nil || len(page.Data) != 2 {
		t.Fatalf("Models.List = %v, %v", page, err)
	}
}

// TestChat_FallbackToAnotherProvider: OpenAI fails with 500, Envoy retries
// on the pool's next priority (Anthropic), and the upstream filter
// translates the same client body for it.
func TestChat_FallbackToAnotherProvider(t *testing.T) {
	s := startStack(t)
	s.openai.Enqueue(fakeprovider.Step{Status: 500})
	var resp *http.Response
	params := userMessage("fall back please")
	params.Model = "gpt-4o"
	cc, err := s.client.Chat.Completions.New(t.Context(), params, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if cc.Choices[0].Message.Content != "echo: fall back please" {
		t.Errorf("content = %q", cc.Choices[0].Message.Content)
	}
	if got := resp.Header.Get("x-tollgate-deployment"); got != "anthropic-claude-sonnet" {
		t.Errorf("x-tollgate-deployment = %q", got)
	}
	if got := resp.Header.Get("x-tollgate-attempts"); got != "2" {
		t.Errorf("x-tollgate-attempts = %q", got)
	}
	if len(s.openai.Requests()) != 1 || len(s.anthropic.Requests()) != 1 {
		t.Errorf("requests: openai %d, anthropic %d", len(s.openai.Requests()), len(s.anthropic.Requests()))
	}
	body := scrapeRegistry(t, s)
	if !strings.Contains(body, `tollgate_fallbacks_total{fallback_model_group="claude-sonnet",model_group="gpt-4o"} 1`) {
		t.Error("fallback not counted")
	}
	if !strings.Contains(body, `tollgate_deployment_healthy{deployment="anthropic-claude-sonnet",model_group="claude-sonnet"} 1`) {
		t.Error("the deployment that answered is not reported healthy")
	}
}

func TestChat_ProviderErrorTranslated(t *testing.T) {
	s := startStack(t)
	s.anthropic.Enqueue(fakeprovider.Step{Status: 400, ErrorType: "invalid_request_error", ErrorMessage: "prompt is too long: 300000 tokens > 200000 maximum"})
	params := userMessage("hi")
	params.Model = "claude-sonnet"
	_, err := s.client.Chat.Completions.New(t.Context(), params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "context_length_exceeded" {
		t.Fatalf("err = %v", err)
	}
}

func TestChat_ProviderFailsMidStream(t *testing.T) {
	s := startStack(t)
	for _, tc := range []struct {
		model    string
		provider *fakeprovider.Server
	}{{"gpt-4o", s.openai}, {"claude-sonnet", s.anthropic}} {
		t.Run(tc.model, func(t *testing.T) {
			tc.provider.Enqueue(fakeprovider.Step{DropAfterEvents: 2})
			params := userMessage("one two three four five six")
			params.Model = tc.model
			stream := s.client.Chat.Completions.NewStreaming(t.Context(), params)
			for stream.Next() {
			}
			if stream.Err() == nil {
				t.Error("a stream cut by the provider ended without an error")
			}
			// The gateway keeps serving.
			if _, err := s.client.Chat.Completions.New(t.Context(), params); err != nil {
				t.Fatalf("next request: %v", err)
			}
		})
	}
}

func TestChat_ClientDisconnectMidStream(t *testing.T) {
	s := startStack(t)
	s.anthropic.Enqueue(fakeprovider.Step{EventDelay: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	params := userMessage("a b c d e f g h i j k l m n o p")
	params.Model = "claude-sonnet"
	stream := s.client.Chat.Completions.NewStreaming(ctx, params)
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	cancel()
	for stream.Next() {
	}
	// The router-level stream ends, and its log line says the request was
	// cut short.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.logs.String(), `"aborted":true`) {
		if time.Now().After(deadline) {
			t.Fatalf("no aborted request logged: %s", s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := s.client.Chat.Completions.New(t.Context(), params); err != nil {
		t.Fatalf("next request: %v", err)
	}
}

func TestChat_FailingDeploymentReportedUnhealthy(t *testing.T) {
	s := startStack(t)
	// Every attempt fails: the first try and Envoy's retries.
	s.anthropic.Enqueue(fakeprovider.Step{Status: 500}, fakeprovider.Step{Status: 500}, fakeprovider.Step{Status: 500})
	params := userMessage("hi")
	params.Model = "claude-sonnet"
	if _, err := s.client.Chat.Completions.New(t.Context(), params); err == nil {
		t.Fatal("no error from a failing provider")
	}
	if body := scrapeRegistry(t, s); !strings.Contains(body, `tollgate_deployment_healthy{deployment="anthropic-claude-sonnet",model_group="claude-sonnet"} 0`) {
		t.Error("failing deployment not reported unhealthy")
	}
}
