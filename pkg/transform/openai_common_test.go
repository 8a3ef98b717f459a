package transform_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// newOpenAIFormatResponse returns the response translator of a provider
// that answers in OpenAI's format.
func newOpenAIFormatResponse(t testing.TB, p transform.Provider, o transform.ResponseOptions) transform.ResponseTranslator {
	t.Helper()
	tr, err := transform.NewResponseTranslator(transform.APIChatCompletions, p, o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestOpenAIUsage_ResponseBody checks that the cached and reasoning tokens
// Azure and the OpenAI-compatible providers report reach the metered usage:
// cached input is billed at a lower rate, so losing it overcharges.
func TestOpenAIUsage_ResponseBody(t *testing.T) {
	tests := []struct {
		name     string
		provider transform.Provider
		fixture  string
		want     transform.Usage
	}{
		{"azure o-series", transform.ProviderAzure, "azure/reasoning",
			transform.Usage{InputTokens: 2240, OutputTokens: 338, CachedInputTokens: 2048, ReasoningTokens: 320}},
		{"deepseek reasoner", "deepseek", "compat/deepseek_reasoner",
			transform.Usage{InputTokens: 1300, OutputTokens: 210, CachedInputTokens: 1280, ReasoningTokens: 198}},
		{"deepseek cache fields only", "deepseek", "compat/deepseek_cache_only",
			transform.Usage{InputTokens: 1034, OutputTokens: 3, CachedInputTokens: 1024}},
		{"xai reasoning", "xai", "compat/xai_reasoning",
			transform.Usage{InputTokens: 812, OutputTokens: 240, CachedInputTokens: 768, ReasoningTokens: 236}},
		{"groq cached", "groq", "compat/groq_cached",
			transform.Usage{InputTokens: 3000, OutputTokens: 2, CachedInputTokens: 2560}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", tt.fixture+".response.json"))
			// The fixture is what the OpenAI SDK reads.
			var c openai.ChatCompletion
			if err := json.Unmarshal(body, &c); err != nil || c.Usage.PromptTokens != tt.want.InputTokens {
				t.Fatalf("fixture: %v, usage %+v", err, c.Usage)
			}
			res, err := newOpenAIFormatResponse(t, tt.provider, transform.ResponseOptions{}).ResponseBody(body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Body != nil || res.Usage != tt.want || res.Model != c.Model {
				t.Errorf("usage %+v model %q, want %+v; body rewritten: %v", res.Usage, res.Model, tt.want, res.Body != nil)
			}
		})
	}
}

// TestOpenAIUsage_StreamChunk checks the same for streams, with the usage
// chunk kept or removed as the client asked, whole and split at every byte.
func TestOpenAIUsage_StreamChunk(t *testing.T) {
	tests := []struct {
		name     string
		provider transform.Provider
		fixture  string
		want     transform.Usage
	}{
		{"azure o-series", transform.ProviderAzure, "azure/reasoning",
			transform.Usage{InputTokens: 2240, OutputTokens: 338, CachedInputTokens: 2048, ReasoningTokens: 320}},
		{"openrouter reasoning", "openrouter", "compat/openrouter_reasoning",
			transform.Usage{InputTokens: 1500, OutputTokens: 130, CachedInputTokens: 1408, ReasoningTokens: 128}},
	}
	for _, tt := range tests {
		for _, include := range []bool{false, true} {
			name := tt.name + " without usage chunk"
			if include {
				name = tt.name + " with usage chunk"
			}
			t.Run(name, func(t *testing.T) {
				pieces := streamPieces(t, filepath.Join("testdata", tt.fixture+".stream.json"))
				whole := bytes.Join(pieces, nil)
				runs := append(splitEverywhere(whole), pieces)
				for _, run := range runs {
					tr := newOpenAIFormatResponse(t, tt.provider, transform.ResponseOptions{Stream: true, IncludeUsage: include})
					out, last := runStream(t, tr, run)
					if last.Usage != tt.want || !last.Done {
						t.Fatalf("usage %+v done %v, want %+v", last.Usage, last.Done, tt.want)
					}
					if got := bytes.Contains(out, []byte(`"reasoning_tokens"`)); got != include {
						t.Fatalf("usage chunk sent: %v, asked: %v\n%s", got, include, out)
					}
				}
			})
		}
	}
}

// TestProviderErrors_ErrorBody: the context-window and content-policy
// errors of Azure, Ollama and Cohere, in the shapes those providers send,
// get the codes routers and clients act on.
func TestProviderErrors_ErrorBody(t *testing.T) {
	const (
		ollamaPromptLonger = "the prompt is longer than the context length currently available to the model; shorten the prompt, adjust the context length in settings, or use a model with a longer context length"
		cohereBlockedInput = "blocked input: please adjust your prompt and try again, as it may be a potential violation of our Usage Guidelines (https://docs.cohere.ai/usage-guidelines/)."
		cohereBlockedOut   = "blocked output: please adjust your prompt and try again, as this generation may be a potential violation of our Usage Guidelines (https://docs.cohere.ai/usage-guidelines/)."
	)
	tests := []struct {
		name     string
		provider transform.Provider
		status   int
		body     string
		want     transform.ProviderError
	}{
		{"azure context window", transform.ProviderAzure, 400,
			`{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 192041 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Param: "messages", Code: transform.CodeContextLengthExceeded,
				Message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 192041 tokens. Please reduce the length of the messages."}},
		{"azure configured limit", transform.ProviderAzure, 400,
			`{"error":{"message":"Input tokens exceed the configured limit of 272000 tokens. Your messages resulted in 305127 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Param: "messages", Code: transform.CodeContextLengthExceeded,
				Message: "Input tokens exceed the configured limit of 272000 tokens. Your messages resulted in 305127 tokens. Please reduce the length of the messages."}},
		{"ollama input too long", transform.ProviderOllama, 400, `{"error":"the input length exceeds the context length"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: "the input length exceeds the context length"}},
		{"ollama no context shift", transform.ProviderOllama, 400, `{"error":"` + ollamaPromptLonger + `"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: ollamaPromptLonger}},
		{"ollama runner error object", transform.ProviderOllama, 400,
			`{"error":"{\"error\":{\"code\":400,\"message\":\"request (8889 tokens) exceeds the available context size (4096 tokens), try increasing it\",\"type\":\"exceed_context_size_error\",\"n_prompt_tokens\":8889,\"n_ctx\":4096}}"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded,
				Message: "request (8889 tokens) exceeds the available context size (4096 tokens), try increasing it"}},
		{"ollama other error", transform.ProviderOllama, 500, `{"error":"llama runner process has terminated: exit status 2"}`,
			transform.ProviderError{Status: 500, Type: transform.ErrorTypeServer, Message: "llama runner process has terminated: exit status 2"}},
		{"cohere blocked input", transform.ProviderCohere, 400, `{"id":"c1","message":"` + cohereBlockedInput + `"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContentPolicy, Message: cohereBlockedInput}},
		{"cohere blocked output", transform.ProviderCohere, 400, `{"message":"` + cohereBlockedOut + `"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContentPolicy, Message: cohereBlockedOut}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newOpenAIFormatResponse(t, tt.provider, transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body))
			if *got != tt.want {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}
