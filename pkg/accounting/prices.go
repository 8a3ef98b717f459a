package accounting

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// builtinPrices is Tollgate's own price table, in LiteLLM's
// model_prices_and_context_window.json format so that one loader reads both
// it and a user's file.
//
// List prices (USD, standard tier, no batch or long-context surcharges) as
// published on 2026-11-05 by OpenAI at developers.openai.com/api/docs/pricing
// and by Anthropic at platform.claude.com/docs/en/about-claude/pricing (cache
// writes at the 5-minute rate, Anthropic's default). Context windows follow
// the providers' model pages; LiteLLM's MIT-licensed price map
// (Copyright (c) 2023 Berri AI) was used to cross-check values. Dated model
// names fall back to these undated entries (see PriceTable.Lookup).
//
// OpenAI's embedding models are unprefixed too; entries for the other
// providers (Gemini, Vertex AI, Bedrock, Cohere, Mistral, DeepSeek, xAI,
// DeepInfra, Fireworks, Groq, Together AI, Cerebras, Perplexity) are
// provider-prefixed. Their sources, dates and the models left out are listed
// in README.md beside this file.
//
//go:embed builtin_prices.json
var builtinPrices []byte

// Price is what a model costs, in USD.
//
// Zero means "no separate rate" for the cache and reasoning rates: cached and
// cache-creation input tokens are then billed at InputPerToken, and
// reasoning tokens at OutputPerToken, as the providers bill them when they
// publish no separate rate.
type Price struct {
	// InputPerToken is the rate for input tokens that are neither cache
	// reads nor cache writes.
	InputPerToken float64
	// OutputPerToken is the rate for output tokens.
	OutputPerToken float64
	// CachedInputPerToken is the rate for input tokens read from the
	// provider's prompt cache.
	CachedInputPerToken float64
	// CacheWritePerToken is the rate for input tokens written to the
	// provider's prompt cache (Anthropic's cache_creation_input_tokens).
	CacheWritePerToken float64
	// ReasoningPerToken is the rate for reasoning tokens.
	ReasoningPerToken float64
	// PerRequest is a flat fee added to every priced request.
	PerRequest float64
	// PerWebSearch is the fee for each server-side web search the provider
	// reports (Usage.WebSearches).
	PerWebSearch float64
}

// Cost is the price of one request's usage. Usage counts input in OpenAI's
// terms (InputTokens includes cached and cache-creation tokens, OutputTokens
// includes reasoning tokens), so the special tokens are taken out of the
// plain counts before they are billed at their own rates: billing them twice
// is the overcharge LiteLLM users reported for Anthropic cache tokens.
func (p Price) Cost(u transform.Usage) float64 {
	cached := max(u.CachedInputTokens, 0)
	written := max(u.CacheCreationInputTokens, 0)
	plainIn := max(u.InputTokens-cached-written, 0)
	reasoning := max(u.ReasoningTokens, 0)
	plainOut := max(u.OutputTokens-reasoning, 0)

	cachedRate := p.CachedInputPerToken
	if cachedRate == 0 {
		cachedRate = p.InputPerToken
	}
	writeRate := p.CacheWritePerToken
	if writeRate == 0 {
		writeRate = p.InputPerToken
	}
	reasoningRate := p.ReasoningPerToken
	if reasoningRate == 0 {
		reasoningRate = p.OutputPerToken
	}
	return float64(plainIn)*p.InputPerToken +
		float64(cached)*cachedRate +
		float64(written)*writeRate +
		float64(plainOut)*p.OutputPerToken +
		float64(reasoning)*reasoningRate +
		p.PerRequest +
		float64(max(u.WebSearches, 0))*p.PerWebSearch
}

// ModelInfo is one entry of the price table.
type ModelInfo struct {
	Price Price
	// Priced reports whether the entry sets any price. An entry with only
	// limits (or no entry at all) costs 0 and counts as unpriced.
	Priced bool
	// MaxInputTokens is the context window; 0 when unknown.
	MaxInputTokens int64
	// MaxOutputTokens is the largest completion; 0 when unknown.
	MaxOutputTokens int64
	// Provider is LiteLLM's litellm_provider of the entry.
	Provider string
	// Mode is LiteLLM's mode (chat, embedding, ...).
	Mode string
}

// PriceOverride replaces parts of a deployment's price-table entry. Nil
// fields keep the table's value, so a deployment that sets only input and
// output rates keeps the model's cache and reasoning rates; a pointer to 0
// makes that part free.
type PriceOverride struct {
	InputPerToken       *float64
	OutputPerToken      *float64
	CachedInputPerToken *float64
	CacheWritePerToken  *float64
	ReasoningPerToken   *float64
	PerRequest          *float64
	// MaxInputTokens replaces the context window when positive.
	MaxInputTokens int64
}

// DeploymentPrice prices one deployment: the table entry of its provider and
// model, with Override applied.
type DeploymentPrice struct {
	// Deployment is the deployment id.
	Deployment string
	// Provider and Model name the table entry the override starts from.
	Provider string
	Model    string
	Override PriceOverride
}

// PriceTableConfig is what a PriceTable is built from.
type PriceTableConfig struct {
	// File is the content of a price file in LiteLLM's
	// model_prices_and_context_window.json format. Its entries are added to
	// the built-in table and replace built-in entries with the same name.
	// Nil uses the built-in table alone.
	File []byte
	// Deployments are per-deployment prices; they win over both tables.
	Deployments []DeploymentPrice
}

// PriceTable maps models and deployments to prices and context windows. It
// is immutable once built: lookups take no locks, do no I/O and do not
// allocate, so one table is shared by every request (behind an
// atomic.Pointer when config reloads).
type PriceTable struct {
	// byName holds every entry under its full name ("gpt-4o",
	// "anthropic/claude-sonnet-4-5").
	byName map[string]ModelInfo
	// byProvider holds provider-prefixed entries by prefix, then by the
	// rest of the name, so that (provider, model) lookups need no string
	// concatenation.
	byProvider  map[string]map[string]ModelInfo
	deployments map[string]ModelInfo
}

// NewPriceTable builds a table from the built-in prices, an optional user
// file and per-deployment overrides. Every problem is reported, each naming
// its model or deployment and field.
func NewPriceTable(c PriceTableConfig) (*PriceTable, error) {
	entries, err := ParsePriceFile(builtinPrices)
	if err != nil {
		return nil, fmt.Errorf("built-in prices: %w", err)
	}
	if c.File != nil {
		user, err := ParsePriceFile(c.File)
		if err != nil {
			return nil, err
		}
		for name, mi := range user {
			entries[name] = mi
		}
	}
	t := &PriceTable{
		byName:      entries,
		byProvider:  make(map[string]map[string]ModelInfo),
		deployments: make(map[string]ModelInfo, len(c.Deployments)),
	}
	for name, mi := range entries {
		if prefix, rest, ok := strings.Cut(name, "/"); ok && prefix != "" && rest != "" {
			m := t.byProvider[prefix]
			if m == nil {
				m = make(map[string]ModelInfo)
				t.byProvider[prefix] = m
			}
			m[rest] = mi
		}
	}
	var errs []error
	for _, d := range c.Deployments {
		mi, err := t.applyOverride(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.deployments[d.Deployment] = mi
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func (t *PriceTable) applyOverride(d DeploymentPrice) (ModelInfo, error) {
	if d.Deployment == "" {
		return ModelInfo{}, errors.New("deployment price: empty deployment id")
	}
	mi, _ := t.Lookup(d.Provider, d.Model)
	o := d.Override
	fields := []struct {
		name string
		v    *float64
		dst  *float64
	}{
		{"input_cost_per_token", o.InputPerToken, &mi.Price.InputPerToken},
		{"output_cost_per_token", o.OutputPerToken, &mi.Price.OutputPerToken},
		{"cache_read_input_token_cost", o.CachedInputPerToken, &mi.Price.CachedInputPerToken},
		{"cache_creation_input_token_cost", o.CacheWritePerToken, &mi.Price.CacheWritePerToken},
		{"output_cost_per_reasoning_token", o.ReasoningPerToken, &mi.Price.ReasoningPerToken},
		{"input_cost_per_request", o.PerRequest, &mi.Price.PerRequest},
	}
	var errs []error
	for _, f := range fields {
		if f.v == nil {
			continue
		}
		if err := checkPrice(*f.v); err != nil {
			errs = append(errs, fmt.Errorf("deployment %q: %s: %w", d.Deployment, f.name, err))
			continue
		}
		*f.dst = *f.v
		mi.Priced = true
	}
	if o.MaxInputTokens > 0 {
		mi.MaxInputTokens = o.MaxInputTokens
	}
	return mi, errors.Join(errs...)
}

// Lookup finds the entry for a provider's model. It tries
// "provider/model", then "model", and when neither exists the same two
// without a version suffix ("-2024-08-06", "-20250929", "-latest", or
// Vertex AI's "@20250929" and "@default"), so gpt-4o-2024-08-06 is priced
// as gpt-4o and claude-sonnet-4-5@20250929 as claude-sonnet-4-5 unless the
// table lists them. The
// second result reports whether any entry was found; ModelInfo.Priced tells
// whether it holds a price.
//
// A Bedrock cross-region inference profile ("us.anthropic.claude-...",
// also eu., apac., au., jp., ca., us-gov. and global.) that has no entry of
// its own falls back to its base model id, as LiteLLM does, so
// "us.anthropic.claude-sonnet-4-20250514-v1:0" is priced as
// "anthropic.claude-sonnet-4-20250514-v1:0". The profile's own entry wins
// when the table has one: geographic profiles of newer models cost more
// than the base model (see README.md).
func (t *PriceTable) Lookup(provider, model string) (ModelInfo, bool) {
	if mi, ok := t.lookupName(provider, model); ok {
		return mi, true
	}
	if base, ok := stripRegion(model); ok {
		return t.lookupName(provider, base)
	}
	return ModelInfo{}, false
}

// lookupName tries the model as named, then without its version suffix.
func (t *PriceTable) lookupName(provider, model string) (ModelInfo, bool) {
	if mi, ok := t.find(provider, model); ok {
		return mi, true
	}
	if base, ok := stripVersion(model); ok {
		return t.find(provider, base)
	}
	return ModelInfo{}, false
}

// regionPrefixes are the prefixes of Bedrock's cross-region inference
// profile ids.
var regionPrefixes = [...]string{"us.", "eu.", "apac.", "au.", "jp.", "ca.", "us-gov.", "global."}

// stripRegion removes one cross-region inference profile prefix.
func stripRegion(model string) (string, bool) {
	for _, p := range regionPrefixes {
		if base, ok := strings.CutPrefix(model, p); ok && base != "" {
			return base, true
		}
	}
	return "", false
}

func (t *PriceTable) find(provider, model string) (ModelInfo, bool) {
	if provider != "" {
		if mi, ok := t.byProvider[provider][model]; ok {
			return mi, true
		}
	}
	mi, ok := t.byName[model]
	return mi, ok
}

// ForDeployment is the entry of a deployment: its override when config gave
// one, else Lookup(provider, model).
func (t *PriceTable) ForDeployment(deployment, provider, model string) (ModelInfo, bool) {
	if mi, ok := t.deployments[deployment]; ok {
		return mi, true
	}
	return t.Lookup(provider, model)
}

// Cost prices one request of a deployment. priced is false when no price is
// known: the cost is then 0, and callers should count the request as
// unpriced (Metrics does) rather than let it pass silently.
func (t *PriceTable) Cost(deployment, provider, model string, u transform.Usage) (cost float64, priced bool) {
	mi, ok := t.ForDeployment(deployment, provider, model)
	if !ok || !mi.Priced {
		return 0, false
	}
	return mi.Price.Cost(u), true
}

// ContextWindow is the most input tokens a deployment's model accepts, for
// pre-call checks; ok is false when the table does not know.
func (t *PriceTable) ContextWindow(deployment, provider, model string) (tokens int64, ok bool) {
	mi, found := t.ForDeployment(deployment, provider, model)
	if !found || mi.MaxInputTokens <= 0 {
		return 0, false
	}
	return mi.MaxInputTokens, true
}

// stripVersion removes one trailing "-latest", "-YYYYMMDD", "-YYYY-MM-DD"
// or "@version" (Vertex AI's model versions: "claude-sonnet-4-5@20250929",
// "claude-opus-4-6@default").
func stripVersion(model string) (string, bool) {
	if i := strings.LastIndexByte(model, '@'); i > 0 {
		return model[:i], true
	}
	if base, ok := strings.CutSuffix(model, "-latest"); ok && base != "" {
		return base, true
	}
	if n := len(model); n > 9 && model[n-9] == '-' && isDigits(model[n-8:]) {
		return model[:n-9], true
	}
	if n := len(model); n > 11 && model[n-11] == '-' && model[n-6] == '-' && model[n-3] == '-' &&
		isDigits(model[n-10:n-6]) && isDigits(model[n-5:n-3]) && isDigits(model[n-2:]) {
		return model[:n-11], true
	}
	return "", false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// maxPriceFileErrors bounds the errors reported for one file, so a wrong
// file gives a readable message rather than thousands of lines.
const maxPriceFileErrors = 20

// ParsePriceFile reads a price file in LiteLLM's
// model_prices_and_context_window.json format: an object keyed by model
// name (possibly provider-prefixed, "anthropic/claude-..."). It reads
// input_cost_per_token, output_cost_per_token, cache_read_input_token_cost,
// cache_creation_input_token_cost, output_cost_per_reasoning_token,
// max_input_tokens, max_output_tokens, litellm_provider and mode; it skips
// the "sample_spec" entry and ignores other fields. Prices that are negative
// or not numbers are errors naming the model and field; null counts as
// absent.
func ParsePriceFile(data []byte) (map[string]ModelInfo, error) {
	if !gjson.ValidBytes(data) {
		return nil, errors.New("price file: malformed JSON")
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return nil, errors.New("price file: top level must be an object keyed by model name")
	}
	models := make(map[string]ModelInfo)
	var errs []error
	dropped := 0
	root.ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		if name == "sample_spec" {
			return true
		}
		mi, err := parseEntry(name, v)
		if err != nil {
			if len(errs) < maxPriceFileErrors {
				errs = append(errs, err)
			} else {
				dropped++
			}
			return true
		}
		models[name] = mi
		return true
	})
	if dropped > 0 {
		errs = append(errs, fmt.Errorf("%d more errors", dropped))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("price file: %w", errors.Join(errs...))
	}
	return models, nil
}

func parseEntry(name string, v gjson.Result) (ModelInfo, error) {
	if name == "" {
		return ModelInfo{}, errors.New("empty model name")
	}
	if !v.IsObject() {
		return ModelInfo{}, fmt.Errorf("model %q: entry must be an object", name)
	}
	var mi ModelInfo
	var errs []error
	price := func(field string, dst *float64) {
		f := v.Get(field)
		if !f.Exists() || f.Type == gjson.Null {
			return
		}
		if f.Type != gjson.Number {
			errs = append(errs, fmt.Errorf("model %q: %s: want a number, got %s", name, field, f.Raw))
			return
		}
		if err := checkPrice(f.Num); err != nil {
			errs = append(errs, fmt.Errorf("model %q: %s: %w", name, field, err))
			return
		}
		*dst = f.Num
		mi.Priced = true
	}
	price("input_cost_per_token", &mi.Price.InputPerToken)
	price("output_cost_per_token", &mi.Price.OutputPerToken)
	price("cache_read_input_token_cost", &mi.Price.CachedInputPerToken)
	price("cache_creation_input_token_cost", &mi.Price.CacheWritePerToken)
	price("output_cost_per_reasoning_token", &mi.Price.ReasoningPerToken)
	price("input_cost_per_request", &mi.Price.PerRequest)
	// LiteLLM prices a web search by the search context size the request
	// asks for; only Anthropic reports its searches, at one price for every
	// size, so the low tier (also the default size) is the fee.
	price("search_context_cost_per_query.search_context_size_low", &mi.Price.PerWebSearch)

	limit := func(field string, dst *int64) {
		f := v.Get(field)
		if !f.Exists() || f.Type == gjson.Null {
			return
		}
		if f.Type != gjson.Number || f.Num < 0 || f.Num > math.MaxInt64/2 {
			errs = append(errs, fmt.Errorf("model %q: %s: want a non-negative number, got %s", name, field, f.Raw))
			return
		}
		*dst = int64(f.Num)
	}
	limit("max_input_tokens", &mi.MaxInputTokens)
	limit("max_output_tokens", &mi.MaxOutputTokens)

	text := func(field string, dst *string) {
		f := v.Get(field)
		if !f.Exists() || f.Type == gjson.Null {
			return
		}
		if f.Type != gjson.String {
			errs = append(errs, fmt.Errorf("model %q: %s: want a string, got %s", name, field, f.Raw))
			return
		}
		*dst = f.Str
	}
	text("litellm_provider", &mi.Provider)
	text("mode", &mi.Mode)
	return mi, errors.Join(errs...)
}

func checkPrice(v float64) error {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("want a finite number, got %v", v)
	case v < 0:
		return fmt.Errorf("must not be negative, got %v", v)
	}
	return nil
}
