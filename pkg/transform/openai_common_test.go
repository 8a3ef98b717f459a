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
