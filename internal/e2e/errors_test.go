package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// TestProviderErrors_EndToEnd: context-window and content-policy errors of
// Azure, Ollama and Cohere, answered by the fakes in each provider's real
// error shape, reach OpenAI SDK clients as OpenAI errors with the code a
// router or client acts on, stream and non-stream, and Anthropic SDK
// clients with the same status and message.
func TestProviderErrors_EndToEnd(t *testing.T) {
	const (
		azureFiltered      = `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":false,"severity":"safe"},"violence":{"filtered":true,"severity":"medium"}}}}}`
		azureConfigured    = `{"error":{"message":"Input tokens exceed the configured limit of 272000 tokens. Your messages resulted in 305127 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`
		ollamaPromptLonger = `{"error":"the prompt is longer than the context length currently available to the model; shorten the prompt, adjust the context length in settings, or use a model with a longer context length"}`
		ollamaRunner       = `{"error":"{\"error\":{\"code\":400,\"message\":\"request (8889 tokens) exceeds the available context size (4096 tokens), try increasing it\",\"type\":\"exceed_context_size_error\",\"n_prompt_tokens\":8889,\"n_ctx\":4096}}"}`
		cohereBlockedIn    = "blocked input: please adjust your prompt and try again, as it may be a potential violation of our Usage Guidelines (https://docs.cohere.ai/usage-guidelines/)."
		cohereBlockedOut   = "blocked output: please adjust your prompt and try again, as this generation may be a potential violation of our Usage Guidelines (https://docs.cohere.ai/usage-guidelines/)."
		// Compat providers' context-window bodies (docs/providers.md [x8]).
		xaiPromptLength  = `{"code":"Client specified an invalid argument","error":"This model's maximum prompt length is 131072 but the request contains 136973 tokens."}`
		togetherInputs   = "{\"error\":{\"message\":\"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4097. Given: 80125 `inputs` tokens and 4096 `max_new_tokens`\",\"type\":\"invalid_request_error\",\"param\":\"max_tokens\",\"code\":null}}"
		cerebrasLength   = `{"message":"Please reduce the length of the messages or completion. Current length is 42328 while limit is 40000","type":"invalid_request_error","param":"messages","code":null}`
		vllmDecoderLimit = `{"error":{"message":"The decoder prompt (length 2136) is longer than the maximum model length of 2048."}}`
	)
	fakes := map[string]*fakeprovider.Server{
		// Windows of 5 tokens: the long prompt below does not fit.
		"azure-window":  fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey("k-azure"), fakeprovider.WithContextWindow(5)),
		"azure":         fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey("k-azure")),
		"ollama-window": fakeprovider.Start(t, fakeprovider.Ollama, fakeprovider.WithContextWindow(5)),
		"ollama":        fakeprovider.Start(t, fakeprovider.Ollama),
		"cohere":        fakeprovider.Start(t, fakeprovider.Cohere, fakeprovider.WithAPIKey("k-cohere")),
	}
	compat := []string{"xai", "together_ai", "cerebras", "hosted_vllm"}
	compatFake := fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey("k-compat"))
	cfg := fmt.Sprintf(`
model_list:
  - {model_name: e-azure-window, litellm_params: {model: azure/gpt4o, api_base: "%s", api_key: k-azure}}
  - {model_name: e-azure, litellm_params: {model: azure/gpt4o, api_base: "%s", api_key: k-azure}}
  - {model_name: e-ollama-window, litellm_params: {model: ollama_chat/llama3.1, api_base: "%s"}}
  - {model_name: e-ollama, litellm_params: {model: ollama_chat/llama3.1, api_base: "%s"}}
  - {model_name: e-cohere, litellm_params: {model: cohere/command-r-plus, api_base: "%s", api_key: k-cohere}}
keys: [{id: demo, key: sk-tollgate-demo}]
`, fakes["azure-window"].URL(), fakes["azure"].URL(), fakes["ollama-window"].URL(), fakes["ollama"].URL(), fakes["cohere"].URL())
	for _, name := range compat {
		fakes[name] = compatFake
		cfg = strings.Replace(cfg, "keys:", fmt.Sprintf("  - {model_name: e-%s, litellm_params: {model: %s/some-model, api_base: \"%s/v1\", api_key: k-compat}}\nkeys:", name, name, compatFake.URL()), 1)
	}
	s := startConfigStack(t, cfg)

	const long = "this prompt is far too long for the window"
	tests := []struct {
		name, fake string
		// step is the fake's scripted answer; nil lets the fake's
		// context window refuse the long prompt.
		step      *fakeprovider.Step
		wantCode  string
		wantParam string
		wantMsg   string
	}{
		{"azure context window", "azure-window", nil, transform.CodeContextLengthExceeded, "messages", "maximum context length is 5 tokens"},
		{"azure configured limit", "azure", &fakeprovider.Step{Status: 400, Body: []byte(azureConfigured)}, transform.CodeContextLengthExceeded, "messages", "configured limit of 272000 tokens"},
		{"azure content filter", "azure", &fakeprovider.Step{Status: 400, Body: []byte(azureFiltered)}, transform.CodeContentPolicy, "prompt", "content management policy"},
		{"ollama context window", "ollama-window", nil, transform.CodeContextLengthExceeded, "", "the input length exceeds the context length"},
		{"ollama without context shift", "ollama", &fakeprovider.Step{Status: 400, Body: []byte(ollamaPromptLonger)}, transform.CodeContextLengthExceeded, "", "longer than the context length"},
		{"ollama runner error", "ollama", &fakeprovider.Step{Status: 400, Body: []byte(ollamaRunner)}, transform.CodeContextLengthExceeded, "",
			"request (8889 tokens) exceeds the available context size (4096 tokens), try increasing it"},
		{"cohere blocked input", "cohere", &fakeprovider.Step{Status: 400, ErrorMessage: cohereBlockedIn}, transform.CodeContentPolicy, "", cohereBlockedIn},
		{"cohere blocked output", "cohere", &fakeprovider.Step{Status: 400, ErrorMessage: cohereBlockedOut}, transform.CodeContentPolicy, "", cohereBlockedOut},
		{"xai context window", "xai", &fakeprovider.Step{Status: 400, Body: []byte(xaiPromptLength)}, transform.CodeContextLengthExceeded, "", "maximum prompt length is 131072"},
		{"together_ai context window", "together_ai", &fakeprovider.Step{Status: 400, Body: []byte(togetherInputs)}, transform.CodeContextLengthExceeded, "max_tokens", "must be <= 4097"},
		{"cerebras context window", "cerebras", &fakeprovider.Step{Status: 400, Body: []byte(cerebrasLength)}, transform.CodeContextLengthExceeded, "", "limit is 40000"},
		{"hosted_vllm context window", "hosted_vllm", &fakeprovider.Step{Status: 400, Body: []byte(vllmDecoderLimit)}, transform.CodeContextLengthExceeded, "", "maximum model length of 2048"},
	}
	for _, tt := range tests {
		group := "e-" + tt.fake
		fake := fakes[tt.fake]
		script := func() {
			if tt.step != nil {
				fake.Enqueue(*tt.step)
			}
		}
		check := func(t *testing.T, err error) {
			t.Helper()
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v", err)
			}
			if apiErr.StatusCode != 400 || apiErr.Type != string(transform.ErrorTypeInvalidRequest) || apiErr.Code != tt.wantCode ||
				apiErr.Param != tt.wantParam || !strings.Contains(apiErr.Message, tt.wantMsg) {
				t.Errorf("status %d type %q code %q param %q message %q", apiErr.StatusCode, apiErr.Type, apiErr.Code, apiErr.Param, apiErr.Message)
			}
		}
		params := userMessage(long)
		params.Model = group
		t.Run(tt.name+"/non-stream", func(t *testing.T) {
			script()
			_, err := s.client.Chat.Completions.New(t.Context(), params)
			check(t, err)
		})
		t.Run(tt.name+"/stream", func(t *testing.T) {
			script()
			stream := s.client.Chat.Completions.NewStreaming(t.Context(), params)
			for stream.Next() {
				t.Errorf("chunk %s", stream.Current().RawJSON())
			}
			check(t, stream.Err())
		})
		t.Run(tt.name+"/messages", func(t *testing.T) {
			script()
			_, err := s.anthropic.Messages.New(t.Context(), anthropic.MessageNewParams{Model: anthropic.Model(group), MaxTokens: 100,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(long))}})
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Error(), "invalid_request_error") ||
				!strings.Contains(apiErr.Error(), tt.wantMsg) {
				t.Errorf("err = %v", err)
			}
			// Claude Code compacts its conversation on Anthropic's wording.
			if tt.wantCode == transform.CodeContextLengthExceeded && !strings.Contains(apiErr.Error(), `"prompt is too long`) {
				t.Errorf("context-window error not in Anthropic's wording: %v", err)
			}
		})
	}
	// Every request reached its provider: the errors are the providers'.
	for name, f := range fakes {
		for _, r := range f.Requests() {
			if r.Status != 400 {
				t.Errorf("%s answered %d to %s", name, r.Status, r.Path)
			}
		}
	}
}
