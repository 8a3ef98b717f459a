package accounting_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// approx compares costs to 1e-12 relative: prices are binary floats, so
// "exact" figures are exact to the last few ulps, not bit for bit.
func approx(got, want float64) bool {
	return math.Abs(got-want) <= 1e-12*math.Max(1, math.Abs(want))
}

func ptr(v float64) *float64 { return &v }

func TestPrice_Cost(t *testing.T) {
	p := accounting.Price{
		InputPerToken:       2e-6,
		OutputPerToken:      8e-6,
		CachedInputPerToken: 5e-7,
		CacheWritePerToken:  2.5e-6,
		ReasoningPerToken:   1e-5,
	}
	tests := []struct {
		name  string
		price accounting.Price
		usage transform.Usage
		want  float64
	}{
		{"zero usage", p, transform.Usage{}, 0},
		{"plain input and output", p, transform.Usage{InputTokens: 1000, OutputTokens: 100}, 1000*2e-6 + 100*8e-6},
		{"cached tokens at the cached rate only", p,
			transform.Usage{InputTokens: 1000, CachedInputTokens: 600, OutputTokens: 10},
			400*2e-6 + 600*5e-7 + 10*8e-6},
		{"cache writes at the write rate only", p,
			transform.Usage{InputTokens: 1000, CacheCreationInputTokens: 300, CachedInputTokens: 200},
			500*2e-6 + 300*2.5e-6 + 200*5e-7},
		{"reasoning at the reasoning rate", p,
			transform.Usage{OutputTokens: 500, ReasoningTokens: 400},
			100*8e-6 + 400*1e-5},
		{"no cached rate falls back to input", accounting.Price{InputPerToken: 1e-6, OutputPerToken: 2e-6},
			transform.Usage{InputTokens: 100, CachedInputTokens: 50, CacheCreationInputTokens: 10},
			100 * 1e-6},
		{"no reasoning rate falls back to output", accounting.Price{InputPerToken: 1e-6, OutputPerToken: 2e-6},
			transform.Usage{OutputTokens: 100, ReasoningTokens: 60},
			100 * 2e-6},
		{"per request fee", accounting.Price{InputPerToken: 1e-6, PerRequest: 0.01},
			transform.Usage{InputTokens: 10}, 10*1e-6 + 0.01},
		{"web searches", accounting.Price{InputPerToken: 1e-6, PerWebSearch: 0.01},
			transform.Usage{InputTokens: 10, WebSearches: 3}, 10*1e-6 + 0.03},
		{"no searches, no search fee", accounting.Price{InputPerToken: 1e-6, PerWebSearch: 0.01},
			transform.Usage{InputTokens: 10}, 10 * 1e-6},
		{"cache counts above input never go negative", p,
			transform.Usage{InputTokens: 10, CachedInputTokens: 50},
			50 * 5e-7},
		{"reasoning above output never goes negative", p,
			transform.Usage{OutputTokens: 10, ReasoningTokens: 20},
			20 * 1e-5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.price.Cost(tt.usage); !approx(got, tt.want) {
				t.Errorf("Cost = %.15g, want %.15g", got, tt.want)
			}
		})
	}
}

// fixtureUsage reads a provider response from testdata/usage through the
// response translator, so prices are checked against usage exactly as the
// gateway will see it.
func fixtureUsage(t *testing.T, provider transform.Provider, name string) (transform.Usage, string) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "usage", name))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.NewResponseTranslator(transform.APIChatCompletions, provider, transform.ResponseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tr.ResponseBody(body)
	if err != nil {
		t.Fatalf("translate %s: %v", name, err)
	}
	return res.Usage, res.Model
}

func TestPriceTable_CostFixtures(t *testing.T) {
	builtin, err := accounting.NewPriceTable(accounting.PriceTableConfig{})
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join("testdata", "prices", "litellm.json"))
	if err != nil {
		t.Fatal(err)
	}
	withFile, err := accounting.NewPriceTable(accounting.PriceTableConfig{File: file})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		table    *accounting.PriceTable
		provider transform.Provider
		fixture  string
		want     float64
	}{
		// o4-mini: 800 plain input × $1.10/M + 1200 cached × $0.275/M +
		// 1500 output (1000 reasoning, billed at the output rate) × $4.40/M.
		{"openai o4-mini cached and reasoning", builtin, transform.ProviderOpenAI,
			"openai_cached_reasoning.response.json", 800*1.1e-6 + 1200*2.75e-7 + 1500*4.4e-6},
		// gpt-4o-2024-08-06 → gpt-4o: 600 × $2.50/M + 400 × $1.25/M + 200 × $10/M.
		{"openai gpt-4o dated, cached", builtin, transform.ProviderOpenAI,
			"openai_cached.response.json", 0.004},
		// claude-sonnet-4-5: 21 × $3/M + 1200 writes × $3.75/M +
		// 3000 reads × $0.30/M + 14 × $15/M.
		{"anthropic sonnet 4.5 cache read and creation", builtin, transform.ProviderAnthropic,
			"anthropic_cache.response.json", 0.005673},
		// claude-opus-4-1: 500 × $15/M + 10000 reads × $1.50/M + 1000 × $75/M.
		{"anthropic opus 4.1 cache read", builtin, transform.ProviderAnthropic,
			"anthropic_opus.response.json", 0.0975},
		// The file's anthropic/claude-sonnet-4-5 wins over the built-in entry.
		{"file prefixed entry wins", withFile, transform.ProviderAnthropic,
			"anthropic_cache.response.json", 21*2e-6 + 1200*2.5e-6 + 3000*2e-7 + 14*1e-5},
		// The file's gpt-4o has no cached rate: cached tokens at the input rate.
		{"file replaces built-in entry", withFile, transform.ProviderOpenAI,
			"openai_cached.response.json", 1000*3e-6 + 200*1.2e-5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, model := fixtureUsage(t, tt.provider, tt.fixture)
			got, priced := tt.table.Cost("", string(tt.provider), model, u)
			if !priced {
				t.Fatalf("Cost(%s) unpriced", model)
			}
			if !approx(got, tt.want) {
				t.Errorf("Cost(%s, %+v) = %.15g, want %.15g", model, u, got, tt.want)
			}
		})
	}
}

func TestPriceTable_Lookup(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("testdata", "prices", "litellm.json"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{File: file})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		provider   string
		model      string
		wantFound  bool
		wantPriced bool
		wantInput  float64
	}{
		{"exact", "openai", "gpt-4.1-mini", true, true, 4e-7},
		{"dated with dashes", "openai", "gpt-4.1-mini-2025-04-14", true, true, 4e-7},
		{"dated entry listed exactly wins", "openai", "gpt-4o-2024-05-13", true, true, 5e-6},
		{"anthropic compact date", "", "claude-haiku-4-5-20251001", true, true, 1e-6},
		{"anthropic latest alias", "anthropic", "claude-3-5-haiku-latest", true, true, 8e-7},
		{"provider prefix tried first", "anthropic", "claude-sonnet-4-5", true, true, 2e-6},
		{"bare entry for another provider", "openai", "claude-sonnet-4-5", true, true, 3e-6},
		{"file model", "openai", "my-llama-70b", true, true, 5.9e-7},
		{"limits only is found but unpriced", "openai", "limits-only", true, false, 0},
		{"unknown model", "openai", "gpt-99", false, false, 0},
		{"date-like suffix too short", "openai", "gpt-4o-2024", false, false, 0},
		{"empty", "", "", false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mi, found := table.Lookup(tt.provider, tt.model)
			if found != tt.wantFound || mi.Priced != tt.wantPriced {
				t.Fatalf("Lookup(%q, %q) found=%v priced=%v, want %v %v", tt.provider, tt.model, found, mi.Priced, tt.wantFound, tt.wantPriced)
			}
			if mi.Price.InputPerToken != tt.wantInput {
				t.Errorf("input rate = %g, want %g", mi.Price.InputPerToken, tt.wantInput)
			}
		})
	}
}

func TestPriceTable_ContextWindow(t *testing.T) {
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{
		Deployments: []accounting.DeploymentPrice{
			{Deployment: "small", Provider: "openai", Model: "gpt-4o", Override: accounting.PriceOverride{MaxInputTokens: 8000}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                      string
		deployment, provider, mdl string
		want                      int64
		wantOK                    bool
	}{
		{"gpt-4o", "", "openai", "gpt-4o", 128000, true},
		{"gpt-4.1 dated", "", "openai", "gpt-4.1-2025-04-14", 1047576, true},
		{"claude", "", "anthropic", "claude-opus-4-5-20251101", 200000, true},
		{"deployment override", "small", "openai", "gpt-4o", 8000, true},
		{"unknown", "", "openai", "nope", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := table.ContextWindow(tt.deployment, tt.provider, tt.mdl)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ContextWindow = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestPriceTable_Overrides(t *testing.T) {
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{
		Deployments: []accounting.DeploymentPrice{
			// Negotiated rate: input and output replaced, cache rate kept.
			{Deployment: "azure-eu", Provider: "openai", Model: "gpt-4o",
				Override: accounting.PriceOverride{InputPerToken: ptr(2e-6), OutputPerToken: ptr(8e-6)}},
			// Self-hosted, unknown to the table: the override prices it.
			{Deployment: "vllm", Provider: "openai", Model: "llama-3-8b",
				Override: accounting.PriceOverride{InputPerToken: ptr(1e-7), OutputPerToken: ptr(2e-7), PerRequest: ptr(0.001)}},
			// Free, explicitly.
			{Deployment: "free", Provider: "openai", Model: "gpt-4o",
				Override: accounting.PriceOverride{InputPerToken: ptr(0), OutputPerToken: ptr(0), CachedInputPerToken: ptr(0)}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	u := transform.Usage{InputTokens: 1000, CachedInputTokens: 400, OutputTokens: 100}
	tests := []struct {
		name       string
		deployment string
		model      string
		want       float64
		wantPriced bool
	}{
		{"override wins, cached rate kept", "azure-eu", "gpt-4o", 600*2e-6 + 400*1.25e-6 + 100*8e-6, true},
		{"other deployment uses the table", "openai-us", "gpt-4o", 600*2.5e-6 + 400*1.25e-6 + 100*1e-5, true},
		{"override prices an unknown model", "vllm", "llama-3-8b", 1000*1e-7 + 100*2e-7 + 0.001, true},
		{"free deployment", "free", "gpt-4o", 0, true},
		{"unpriced model", "other", "llama-3-8b", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, priced := table.Cost(tt.deployment, "openai", tt.model, u)
			if priced != tt.wantPriced || !approx(got, tt.want) {
				t.Errorf("Cost = %.15g, %v; want %.15g, %v", got, priced, tt.want, tt.wantPriced)
			}
		})
	}
}

func TestNewPriceTable_Errors(t *testing.T) {
	tests := []struct {
		name     string
		config   accounting.PriceTableConfig
		wantErrs []string
	}{
		{"negative price", accounting.PriceTableConfig{File: []byte(`{"m1": {"input_cost_per_token": -1e-6}}`)},
			[]string{`model "m1"`, "input_cost_per_token", "negative"}},
		{"string price", accounting.PriceTableConfig{File: []byte(`{"m2": {"output_cost_per_token": "0.00001"}}`)},
			[]string{`model "m2"`, "output_cost_per_token", "want a number"}},
		{"bool cache price", accounting.PriceTableConfig{File: []byte(`{"m3": {"cache_read_input_token_cost": true}}`)},
			[]string{`model "m3"`, "cache_read_input_token_cost"}},
		{"huge exponent", accounting.PriceTableConfig{File: []byte(`{"m4": {"input_cost_per_token": 1e999}}`)},
			[]string{`model "m4"`, "finite"}},
		{"negative request fee", accounting.PriceTableConfig{File: []byte(`{"m8": {"input_cost_per_request": -0.01}}`)},
			[]string{`model "m8"`, "input_cost_per_request", "negative"}},
		{"search fee not a number", accounting.PriceTableConfig{File: []byte(`{"m9": {"search_context_cost_per_query": {"search_context_size_low": "1c"}}}`)},
			[]string{`model "m9"`, "search_context_cost_per_query.search_context_size_low", "want a number"}},
		{"negative context window", accounting.PriceTableConfig{File: []byte(`{"m5": {"max_input_tokens": -5}}`)},
			[]string{`model "m5"`, "max_input_tokens"}},
		{"provider not a string", accounting.PriceTableConfig{File: []byte(`{"m6": {"litellm_provider": 3}}`)},
			[]string{`model "m6"`, "litellm_provider"}},
		{"entry not an object", accounting.PriceTableConfig{File: []byte(`{"m7": 0.1}`)},
			[]string{`model "m7"`, "object"}},
		{"every bad entry reported", accounting.PriceTableConfig{File: []byte(`{"a": {"input_cost_per_token": -1}, "b": {"input_cost_per_token": "x"}}`)},
			[]string{`model "a"`, `model "b"`}},
		{"malformed JSON", accounting.PriceTableConfig{File: []byte(`{"m": {"input_cost_per_token": 1e-6}`)},
			[]string{"malformed JSON"}},
		{"top level array", accounting.PriceTableConfig{File: []byte(`[1, 2]`)},
			[]string{"top level must be an object"}},
		{"empty file", accounting.PriceTableConfig{File: []byte{}},
			[]string{"malformed JSON"}},
		{"negative override", accounting.PriceTableConfig{Deployments: []accounting.DeploymentPrice{
			{Deployment: "d1", Provider: "openai", Model: "gpt-4o", Override: accounting.PriceOverride{OutputPerToken: ptr(-1)}}}},
			[]string{`deployment "d1"`, "output_cost_per_token"}},
		{"NaN override", accounting.PriceTableConfig{Deployments: []accounting.DeploymentPrice{
			{Deployment: "d2", Override: accounting.PriceOverride{InputPerToken: ptr(math.NaN())}}}},
			[]string{`deployment "d2"`, "input_cost_per_token", "finite"}},
		{"override without id", accounting.PriceTableConfig{Deployments: []accounting.DeploymentPrice{{Model: "gpt-4o"}}},
			[]string{"empty deployment id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := accounting.NewPriceTable(tt.config)
			if err == nil {
				t.Fatal("NewPriceTable succeeded, want an error")
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestParsePriceFile(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("testdata", "prices", "litellm.json"))
	if err != nil {
		t.Fatal(err)
	}
	models, err := accounting.ParsePriceFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := models["sample_spec"]; ok {
		t.Error("sample_spec was loaded as a model")
	}
	want := map[string]accounting.ModelInfo{
		"my-llama-70b": {Price: accounting.Price{InputPerToken: 5.9e-7, OutputPerToken: 7.9e-7}, Priced: true,
			MaxInputTokens: 131072, MaxOutputTokens: 8192, Provider: "openai", Mode: "chat"},
		"thinker": {Price: accounting.Price{InputPerToken: 1e-6, OutputPerToken: 2e-6, ReasoningPerToken: 4e-6}, Priced: true,
			Provider: "openai", Mode: "chat"},
		"limits-only": {MaxInputTokens: 4096, Provider: "openai", Mode: "chat"},
		"flat-fee": {Price: accounting.Price{InputPerToken: 1e-6, PerRequest: 0.002, PerWebSearch: 0.005}, Priced: true,
			Provider: "openai", Mode: "chat"},
		"searcher": {Price: accounting.Price{InputPerToken: 1e-6, PerWebSearch: 0.005}, Priced: true,
			Provider: "anthropic", Mode: "chat"},
	}
	if len(models) != 7 {
		t.Errorf("loaded %d models, want 7", len(models))
	}
	for name, w := range want {
		if got := models[name]; got != w {
			t.Errorf("%s = %+v, want %+v", name, got, w)
		}
	}
}

// The built-in table must load and price every model it lists; a broken
// embedded file would otherwise only show at start-up.
func TestNewPriceTable_Builtin(t *testing.T) {
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{
		"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o1", "o3", "o3-mini", "o4-mini",
		"gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5.1",
		"claude-opus-4-5", "claude-opus-4-1", "claude-opus-4-20250514", "claude-sonnet-4-5", "claude-sonnet-4-20250514",
		"claude-3-7-sonnet-20250219", "claude-3-5-sonnet-20241022", "claude-haiku-4-5", "claude-3-5-haiku-20241022",
	} {
		mi, ok := table.Lookup("", m)
		if !ok || !mi.Priced || mi.Price.InputPerToken <= 0 || mi.Price.OutputPerToken <= mi.Price.InputPerToken ||
			mi.Price.CachedInputPerToken <= 0 || mi.Price.CachedInputPerToken >= mi.Price.InputPerToken || mi.MaxInputTokens <= 0 {
			t.Errorf("%s: implausible entry %+v (found %v)", m, mi, ok)
		}
	}
}

func FuzzParsePriceFile(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "prices", "litellm.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"m": {"input_cost_per_token": -1}}`))
	f.Add([]byte(`{"m": {"input_cost_per_token": "1"}}`))
	f.Add([]byte(`{"a/b": {"max_input_tokens": 1e30}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		models, err := accounting.ParsePriceFile(data)
		if err != nil {
			return
		}
		for name, mi := range models {
			for _, v := range []float64{mi.Price.InputPerToken, mi.Price.OutputPerToken, mi.Price.CachedInputPerToken,
				mi.Price.CacheWritePerToken, mi.Price.ReasoningPerToken} {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%q: accepted invalid price %v", name, v)
				}
			}
			if mi.MaxInputTokens < 0 || mi.MaxOutputTokens < 0 {
				t.Fatalf("%q: accepted negative limit", name)
			}
		}
		if _, err := accounting.NewPriceTable(accounting.PriceTableConfig{File: data}); err != nil {
			t.Fatalf("file parsed but table failed: %v", err)
		}
	})
}

func BenchmarkPrice_Cost(b *testing.B) {
	p := accounting.Price{InputPerToken: 2.5e-6, OutputPerToken: 1e-5, CachedInputPerToken: 1.25e-6}
	u := transform.Usage{InputTokens: 2000, CachedInputTokens: 1200, OutputTokens: 500, ReasoningTokens: 100}
	b.ReportAllocs()
	var sum float64
	for b.Loop() {
		sum += p.Cost(u)
	}
	if sum <= 0 {
		b.Fatal("no cost")
	}
}

func BenchmarkPriceTable_Cost(b *testing.B) {
	table, err := accounting.NewPriceTable(accounting.PriceTableConfig{})
	if err != nil {
		b.Fatal(err)
	}
	u := transform.Usage{InputTokens: 2000, CachedInputTokens: 1200, OutputTokens: 500}
	for _, bc := range []struct{ name, model string }{
		{"Exact", "gpt-4o"},
		{"Dated", "claude-sonnet-4-5-20250929"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := table.Cost("d1", "anthropic", bc.model, u); !ok {
					b.Fatal("unpriced")
				}
			}
		})
	}
}
