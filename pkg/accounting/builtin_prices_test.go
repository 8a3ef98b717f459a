package accounting_test

import (
	"os"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// TestBuiltin_ProvidersPriced checks that a representative deployment of
// each provider with built-in prices is priced, and that a fixed usage costs
// exactly what builtin_prices.json says (README.md cites each figure).
//
// The usage is the same for every row: 1,000,000 input tokens of which
// 200,000 were cache reads and 100,000 cache writes, and 500,000 output
// tokens of which 100,000 were reasoning. Per-million rates then read off
// directly: cost = 0.7*in + 0.2*cached + 0.1*write + 0.4*out + 0.1*reasoning
// (each rate in USD per million tokens, a missing cache or reasoning rate
// falling back to the input or output rate).
func TestBuiltin_ProvidersPriced(t *testing.T) {
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{})
	if err != nil {
		t.Fatal(err)
	}
	u := transform.Usage{
		InputTokens:              1_000_000,
		CachedInputTokens:        200_000,
		CacheCreationInputTokens: 100_000,
		OutputTokens:             500_000,
		ReasoningTokens:          100_000,
	}
	// cost computes the expected figure from per-million rates.
	cost := func(in, cached, write, out, reasoning float64) float64 {
		return (0.7*in + 0.2*cached + 0.1*write + 0.4*out + 0.1*reasoning)
	}
	tests := []struct {
		name, provider, model string
		want                  float64
		window                int64
	}{
		// Gemini API: thinking tokens at the output rate, cache reads at 10%.
		{"gemini 2.5 pro", "gemini", "gemini-2.5-pro", cost(1.25, 0.125, 1.25, 10, 10), 1048576},
		{"gemini 2.5 flash", "gemini", "gemini-2.5-flash", cost(0.30, 0.03, 0.30, 2.50, 2.50), 1048576},
		{"gemini 2.5 flash-lite", "gemini", "gemini-2.5-flash-lite", cost(0.10, 0.01, 0.10, 0.40, 0.40), 1048576},
		{"gemini 2.0 flash pinned", "gemini", "gemini-2.0-flash-001", cost(0.10, 0.025, 0.10, 0.40, 0.40), 1048576},
		{"vertex 2.5 pro", "vertex_ai", "gemini-2.5-pro", cost(1.25, 0.125, 1.25, 10, 10), 1048576},
		{"vertex 2.5 flash-lite", "vertex_ai", "gemini-2.5-flash-lite", cost(0.10, 0.01, 0.10, 0.40, 0.40), 1048576},
		// Bedrock model ids, in-region and through cross-region profiles.
		{"bedrock sonnet 4", "bedrock", "anthropic.claude-sonnet-4-20250514-v1:0", cost(3, 0.30, 3.75, 15, 15), 1000000},
		{"bedrock sonnet 4 us profile", "bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", cost(3, 0.30, 3.75, 15, 15), 1000000},
		{"bedrock sonnet 4.5", "bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", cost(3, 0.30, 3.75, 15, 15), 200000},
		{"bedrock sonnet 4.5 global profile", "bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", cost(3, 0.30, 3.75, 15, 15), 200000},
		{"bedrock sonnet 4.5 eu profile +10%", "bedrock", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", cost(3.3, 0.33, 4.125, 16.5, 16.5), 200000},
		{"bedrock sonnet 4.6 us profile +10%", "bedrock", "us.anthropic.claude-sonnet-4-6", cost(3.3, 0.33, 4.125, 16.5, 16.5), 1000000},
		{"bedrock haiku 3.5", "bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", cost(0.80, 0.08, 1, 4, 4), 200000},
		{"bedrock haiku 4.5", "bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0", cost(1, 0.10, 1.25, 5, 5), 200000},
		{"bedrock opus 4.1 eu profile", "bedrock", "eu.anthropic.claude-opus-4-1-20250805-v1:0", cost(15, 1.5, 18.75, 75, 75), 200000},
		{"bedrock opus 4.7 jp profile", "bedrock", "jp.anthropic.claude-opus-4-7", cost(5.5, 0.55, 6.875, 27.5, 27.5), 1000000},
		{"bedrock nova pro", "bedrock", "amazon.nova-pro-v1:0", cost(0.80, 0.80, 0.80, 3.20, 3.20), 300000},
		{"bedrock nova lite eu profile", "bedrock", "eu.amazon.nova-lite-v1:0", cost(0.078, 0.078, 0.078, 0.312, 0.312), 300000},
		{"bedrock nova micro us profile", "bedrock", "us.amazon.nova-micro-v1:0", cost(0.035, 0.035, 0.035, 0.14, 0.14), 128000},
		{"bedrock titan embed v2", "bedrock", "amazon.titan-embed-text-v2:0", 1_000_000 * 2e-8, 8192},
		// Azure: a deployment named like the model falls back to OpenAI's entry.
		{"azure gpt-4o dated", "azure", "gpt-4o-2024-08-06", cost(2.5, 1.25, 2.5, 10, 10), 128000},
		{"cohere command-a", "cohere", "command-a-03-2025", cost(2.5, 2.5, 2.5, 10, 10), 0},
		{"cohere command-r", "cohere", "command-r-08-2024", cost(0.15, 0.15, 0.15, 0.60, 0.60), 0},
		{"cohere embed v4", "cohere", "embed-v4.0", 1_000_000 * 1.2e-7, 0},
		{"mistral large", "mistral", "mistral-large-2411", cost(2, 2, 2, 6, 6), 0},
		{"mistral small alias", "mistral", "mistral-small-latest", cost(0.10, 0.10, 0.10, 0.30, 0.30), 0},
		{"deepseek chat", "deepseek", "deepseek-chat", cost(0.28, 0.028, 0.28, 0.42, 0.42), 131072},
		{"deepseek reasoner", "deepseek", "deepseek-reasoner", cost(0.28, 0.028, 0.28, 0.42, 0.42), 131072},
		{"xai grok-3 latest", "xai", "grok-3-latest", cost(3, 0.75, 3, 15, 15), 131072},
		{"xai grok-3-mini", "xai", "grok-3-mini", cost(0.30, 0.075, 0.30, 0.50, 0.50), 131072},
		{"deepinfra llama 3.3", "deepinfra", "meta-llama/Llama-3.3-70B-Instruct-Turbo", cost(0.13, 0.13, 0.13, 0.39, 0.39), 131072},
		{"deepinfra deepseek v3.1", "deepinfra", "deepseek-ai/DeepSeek-V3.1", cost(0.27, 0.216, 0.27, 1, 1), 163840},
		{"fireworks deepseek v3p1", "fireworks_ai", "accounts/fireworks/models/deepseek-v3p1", cost(0.56, 0.56, 0.56, 1.68, 1.68), 128000},
		{"fireworks gpt-oss-120b cached", "fireworks_ai", "accounts/fireworks/models/gpt-oss-120b", cost(0.15, 0.015, 0.15, 0.60, 0.60), 131072},
		// Groq names its models as the response does, some with an org prefix.
		{"groq llama 3.3 70b", "groq", "llama-3.3-70b-versatile", cost(0.59, 0.59, 0.59, 0.79, 0.79), 128000},
		{"groq gpt-oss-120b cached", "groq", "openai/gpt-oss-120b", cost(0.15, 0.075, 0.15, 0.60, 0.60), 131072},
		{"groq llama 4 scout", "groq", "meta-llama/llama-4-scout-17b-16e-instruct", cost(0.11, 0.11, 0.11, 0.34, 0.34), 131072},
		{"together llama 3.3 70b turbo", "together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", cost(0.88, 0.88, 0.88, 0.88, 0.88), 0},
		{"together deepseek v3.1", "together_ai", "deepseek-ai/DeepSeek-V3.1", cost(0.60, 0.60, 0.60, 1.70, 1.70), 128000},
		{"cerebras gpt-oss-120b", "cerebras", "gpt-oss-120b", cost(0.35, 0.35, 0.35, 0.75, 0.75), 131072},
		{"cerebras qwen 3 32b", "cerebras", "qwen-3-32b", cost(0.40, 0.40, 0.40, 0.80, 0.80), 128000},
		// Perplexity: token rates only; the per-request search fee is not billed.
		// Sonar models add the search fee of the default (low) context size.
		{"perplexity sonar", "perplexity", "sonar", cost(1, 1, 1, 1, 1) + 0.005, 128000},
		{"perplexity sonar pro", "perplexity", "sonar-pro", cost(3, 3, 3, 15, 15) + 0.006, 200000},
		{"perplexity sonar reasoning pro", "perplexity", "sonar-reasoning-pro", cost(2, 2, 2, 8, 8) + 0.006, 128000},
		{"perplexity deep research reasoning rate", "perplexity", "sonar-deep-research", cost(2, 2, 2, 8, 3), 128000},
		{"mistral large 3 alias", "mistral", "mistral-large-latest", cost(0.50, 0.50, 0.50, 1.50, 1.50), 262144},
		{"mistral medium alias", "mistral", "mistral-medium-latest", cost(1.5, 1.5, 1.5, 7.5, 7.5), 262144},
		{"mistral codestral 25.08", "mistral", "codestral-2508", cost(0.30, 0.30, 0.30, 0.90, 0.90), 256000},
		{"cohere command r7b", "cohere", "command-r7b-12-2024", cost(0.0375, 0.0375, 0.0375, 0.15, 0.15), 128000},
		// Vertex AI: Gemini at Vertex's rates, Claude by Vertex model id.
		{"vertex 2.5 flash", "vertex_ai", "gemini-2.5-flash", cost(0.30, 0.03, 0.30, 2.50, 2.50), 1048576},
		{"vertex 2.0 flash pinned", "vertex_ai", "gemini-2.0-flash-001", cost(0.15, 0.0375, 0.15, 0.60, 0.60), 1048576},
		{"vertex 2.0 flash-lite", "vertex_ai", "gemini-2.0-flash-lite", cost(0.075, 0.01875, 0.075, 0.30, 0.30), 1048576},
		{"vertex claude sonnet 4.5 @version", "vertex_ai", "claude-sonnet-4-5@20250929", cost(3, 0.30, 3.75, 15, 15), 200000},
		{"vertex claude opus 4.6 @default", "vertex_ai", "claude-opus-4-6@default", cost(5, 0.50, 6.25, 25, 25), 1000000},
		{"vertex claude haiku 4.5 dated", "vertex_ai", "claude-haiku-4-5-20251001", cost(1, 0.10, 1.25, 5, 5), 200000},
		{"bedrock sonnet 4.5 us profile +10%", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", cost(3.3, 0.33, 4.125, 16.5, 16.5), 200000},
		{"bedrock haiku 4.5 us profile +10%", "bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0", cost(1.1, 0.11, 1.375, 5.5, 5.5), 200000},
		{"bedrock opus 4.5 us profile +10%", "bedrock", "us.anthropic.claude-opus-4-5-20251101-v1:0", cost(5.5, 0.55, 6.875, 27.5, 27.5), 200000},
		{"bedrock llama 3.3 us profile", "bedrock", "us.meta.llama3-3-70b-instruct-v1:0", cost(0.72, 0.72, 0.72, 0.72, 0.72), 128000},
		// Embeddings: input tokens only, so the fixed usage costs 1M × the rate.
		{"openai embedding 3 small", "openai", "text-embedding-3-small", 1_000_000 * 2e-8, 8191},
		{"openai embedding ada", "openai", "text-embedding-ada-002", 1_000_000 * 1e-7, 8191},
		{"azure embedding 3 large falls back to openai", "azure", "text-embedding-3-large", 1_000_000 * 1.3e-7, 8191},
		{"gemini embedding 001", "gemini", "gemini-embedding-001", 1_000_000 * 1.5e-7, 2048},
		{"vertex gemini embedding 001", "vertex_ai", "gemini-embedding-001", 1_000_000 * 1.5e-7, 2048},
		{"vertex text embedding 005", "vertex_ai", "text-embedding-005", 1_000_000 * 1e-7, 2048},
		{"bedrock cohere embed english v3", "bedrock", "cohere.embed-english-v3", 1_000_000 * 1e-7, 512},
		{"bedrock cohere embed v4", "bedrock", "cohere.embed-v4:0", 1_000_000 * 1.2e-7, 128000},
		{"mistral embed", "mistral", "mistral-embed", 1_000_000 * 1e-7, 8192},
		{"together bge base", "together_ai", "BAAI/bge-base-en-v1.5", 1_000_000 * 8e-9, 512},
	}
	// Anthropic's web search: $10 per 1,000 searches on top of the tokens.
	searched := transform.Usage{InputTokens: 1000, OutputTokens: 100, WebSearches: 2}
	if got, _ := table.Cost("d1", "anthropic", "claude-sonnet-4-5", searched); !approx(got, 1000*3e-6+100*15e-6+0.02) {
		t.Errorf("claude-sonnet-4-5 with 2 searches = %v", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, priced := table.Cost("d1", tt.provider, tt.model, u)
			if !priced || !approx(got, tt.want) {
				t.Errorf("Cost = %v, %v; want %v, true", got, priced, tt.want)
			}
			window, ok := table.ContextWindow("d1", tt.provider, tt.model)
			if ok != (tt.window > 0) || window != tt.window {
				t.Errorf("ContextWindow = %d, %v; want %d", window, ok, tt.window)
			}
		})
	}
}

// TestBuiltin_ProviderScoped checks that provider-prefixed entries price only
// their own provider: a self-hosted deployment that serves a model under a
// hosted provider's name stays unpriced unless its config gives a price.
func TestBuiltin_ProviderScoped(t *testing.T) {
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{
		Deployments: []accounting.DeploymentPrice{{
			Deployment: "vllm-priced", Provider: "hosted_vllm", Model: "deepseek-chat",
			Override: accounting.PriceOverride{InputPerToken: ptr(1e-7), OutputPerToken: ptr(2e-7)},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	u := transform.Usage{InputTokens: 1000, OutputTokens: 500}
	for _, c := range []struct{ provider, model string }{
		{"hosted_vllm", "deepseek-chat"},
		{"ollama_chat", "gemini-2.5-flash"},
		{"ollama_chat", "llama3.1"},
		{"openrouter", "grok-3"},
		{"gemini", "deepseek-chat"},
		{"hosted_vllm", "llama-3.3-70b-versatile"},
		{"ollama_chat", "gpt-oss-120b"},
		{"openrouter", "sonar"},
		{"hosted_vllm", "gemini-embedding-001"},
		{"openai", "mistral-embed"},
	} {
		if cost, priced := table.Cost("d1", c.provider, c.model, u); priced || cost != 0 {
			t.Errorf("%s/%s: Cost = %v, %v; want unpriced", c.provider, c.model, cost, priced)
		}
	}
	if cost, priced := table.Cost("vllm-priced", "hosted_vllm", "deepseek-chat", u); !priced || !approx(cost, 1000*1e-7+500*2e-7) {
		t.Errorf("per-deployment price: Cost = %v, %v", cost, priced)
	}
}

func TestPriceTable_LookupRegionAndVersion(t *testing.T) {
	file := []byte(`{
		"bedrock/anthropic.claude-x-v1:0": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
		"bedrock/us.anthropic.claude-x-v1:0": {"input_cost_per_token": 1.1e-6, "output_cost_per_token": 2.2e-6},
		"claude-y": {"input_cost_per_token": 3e-6, "output_cost_per_token": 4e-6},
		"vertex_ai/claude-z": {"input_cost_per_token": 5e-6, "output_cost_per_token": 6e-6}
	}`)
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{File: file})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		provider, model string
		wantIn          float64
		wantOK          bool
	}{
		{"bedrock", "anthropic.claude-x-v1:0", 1e-6, true},
		{"bedrock", "us.anthropic.claude-x-v1:0", 1.1e-6, true}, // the profile's own entry wins
		{"bedrock", "eu.anthropic.claude-x-v1:0", 1e-6, true},
		{"bedrock", "apac.anthropic.claude-x-v1:0", 1e-6, true},
		{"bedrock", "us-gov.anthropic.claude-x-v1:0", 1e-6, true},
		{"bedrock", "global.anthropic.claude-x-v1:0", 1e-6, true},
		{"bedrock", "xx.anthropic.claude-x-v1:0", 0, false},
		{"bedrock", "us.", 0, false},
		{"anthropic", "eu.claude-y-20250101", 3e-6, true}, // region and date together
		{"anthropic", "eu.claude-y-latest", 3e-6, true},
		{"anthropic", "eu.eu.claude-y", 0, false}, // one prefix only
		// Vertex AI versions follow an "@".
		{"vertex_ai", "claude-z@20250929", 5e-6, true},
		{"vertex_ai", "claude-z@default", 5e-6, true},
		{"vertex_ai", "claude-y@20250101", 3e-6, true}, // the unprefixed entry, as for any provider
		{"vertex_ai", "@20250929", 0, false},
		{"vertex_ai", "claude-q@20250929", 0, false},
	}
	for _, tt := range tests {
		mi, ok := table.Lookup(tt.provider, tt.model)
		if ok != tt.wantOK || mi.Price.InputPerToken != tt.wantIn {
			t.Errorf("Lookup(%q, %q) = %v, %v; want input %v, %v", tt.provider, tt.model, mi.Price.InputPerToken, ok, tt.wantIn, tt.wantOK)
		}
	}
}

// TestBuiltin_Strict re-parses the embedded file on its own and checks every
// entry: it must load, carry a chat or embedding mode, be priced in USD per
// token (not per million, the commonest slip), be reachable by Lookup under
// a provider Tollgate routes to, and keep the rates in a plausible order.
func TestBuiltin_Strict(t *testing.T) {
	data, err := os.ReadFile("builtin_prices.json")
	if err != nil {
		t.Fatal(err)
	}
	models, err := accounting.ParsePriceFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(models) < 180 {
		t.Errorf("built-in table has %d entries; want at least 180", len(models))
	}
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{})
	if err != nil {
		t.Fatal(err)
	}
	providers := map[string]bool{}
	for _, p := range []transform.Provider{transform.ProviderOpenAI, transform.ProviderAnthropic, transform.ProviderAzure,
		transform.ProviderBedrock, transform.ProviderGemini, transform.ProviderVertexAI, transform.ProviderCohere, transform.ProviderOllama} {
		providers[string(p)] = true
	}
	for _, p := range transform.CompatProviders() {
		providers[p] = true
	}
	// perToken is the plausible range of a per-token rate: $0.001 to $1,000
	// per million tokens.
	perToken := func(v float64) bool { return v >= 1e-9 && v <= 1e-3 }
	for name, mi := range models {
		p := mi.Price
		if !mi.Priced || mi.Provider == "" || (mi.Mode != "chat" && mi.Mode != "embedding") {
			t.Errorf("%s: incomplete entry %+v", name, mi)
			continue
		}
		if !perToken(p.InputPerToken) {
			t.Errorf("%s: input rate %g is not a per-token USD rate", name, p.InputPerToken)
		}
		switch mi.Mode {
		case "chat":
			if !perToken(p.OutputPerToken) {
				t.Errorf("%s: output rate %g is not a per-token USD rate", name, p.OutputPerToken)
			}
		case "embedding":
			if p.OutputPerToken != 0 || p.ReasoningPerToken != 0 {
				t.Errorf("%s: embedding entry with an output rate", name)
			}
		}
		for field, v := range map[string]float64{"cache read": p.CachedInputPerToken, "cache write": p.CacheWritePerToken, "reasoning": p.ReasoningPerToken} {
			if v != 0 && !perToken(v) {
				t.Errorf("%s: %s rate %g is not a per-token USD rate", name, field, v)
			}
		}
		if p.CachedInputPerToken > p.InputPerToken {
			t.Errorf("%s: cache reads (%g) cost more than input (%g)", name, p.CachedInputPerToken, p.InputPerToken)
		}
		if p.CacheWritePerToken != 0 && p.CacheWritePerToken < p.InputPerToken {
			t.Errorf("%s: cache writes (%g) cost less than input (%g)", name, p.CacheWritePerToken, p.InputPerToken)
		}
		// Only search models carry a per-request fee, and it is cents, not
		// dollars.
		if p.PerRequest != 0 && (!strings.HasPrefix(name, "perplexity/") || p.PerRequest > 0.05) {
			t.Errorf("%s: per-request fee %g", name, p.PerRequest)
		}
		// Anthropic is the provider that reports its web searches.
		if p.PerWebSearch != 0 && (!strings.HasPrefix(name, "claude-") || p.PerWebSearch > 0.05) {
			t.Errorf("%s: web search fee %g", name, p.PerWebSearch)
		}
		if mi.MaxInputTokens < 0 || mi.MaxOutputTokens < 0 {
			t.Errorf("%s: negative limits", name)
		}

		// The entry must be what Lookup finds for its provider, and the
		// prefix must be the provider's name in config and in the entry.
		provider, model, prefixed := strings.Cut(name, "/")
		if !prefixed {
			provider, model = mi.Provider, name
			if provider != "openai" && provider != "anthropic" {
				t.Errorf("%s: only OpenAI and Anthropic entries are unprefixed, this one is %s's", name, provider)
			}
		} else if provider != mi.Provider {
			t.Errorf("%s: prefix %q but litellm_provider %q", name, provider, mi.Provider)
		}
		if !providers[provider] {
			t.Errorf("%s: %q is not a provider Tollgate routes to", name, provider)
		}
		if got, ok := table.Lookup(provider, model); !ok || got != mi {
			t.Errorf("Lookup(%q, %q) = %+v, %v; want the entry %+v", provider, model, got, ok, mi)
		}
	}
}
