package transform

import (
	"fmt"
	"path"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// The legacy completions API (POST /v1/completions, "text_completion"
// objects) is still served by OpenAI and Azure OpenAI for a few models and
// by most self-hosted and OpenAI-compatible servers. The gateway forwards
// it as is, like chat completions: only the model and the stream usage
// option change, and for Azure the path and auth.

// NewCompletionsRequest returns the request translator for legacy
// completions to OpenAI (provider "" or "openai"), to Azure OpenAI
// ("azure"), or to a named OpenAI-compatible provider (see
// CompatProviders) that serves the API, whose model prefix and
// stream_options support apply as for chat; the others (mistral, groq,
// perplexity) get ErrUnsupported. The path is {BasePath}/completions
// ({BasePath}/beta/completions for deepseek) with bearer auth; for Azure
// it is {BasePath}/openai/deployments/{Model}/completions?api-version=...
// (or /openai/v1/completions) with the key in api-key, as for Azure chat
// (see NewOpenAIToAzureRequest).
func NewCompletionsRequest(provider string, t Target) (RequestTranslator, error) {
	switch provider {
	case "", string(ProviderOpenAI):
		return &completionsRequest{target: t}, nil
	case string(ProviderAzure):
		return &azureRequest{target: t, operation: "completions", body: &completionsRequest{target: t}}, nil
	}
	p, ok := compatLookup(provider)
	if !ok || p.completions == "" {
		return nil, fmt.Errorf("%w: completions to %q", ErrUnsupported, provider)
	}
	return &completionsRequest{target: t, compat: &p}, nil
}

// NewCompletionsResponse returns the response translator for legacy
// completions: the body and stream pass through, usage and model are read
// from them, and a usage-only chunk the client did not ask for is removed.
func NewCompletionsResponse(o ResponseOptions) ResponseTranslator {
	// The OpenAI reader depends only on usage, model and choices, which
	// text_completion objects share with chat completions.
	return &openAIToOpenAIResponse{opts: o}
}

// newCompletionsResponse returns the legacy completions response
// translator for provider p: Azure's classifies its content-filter errors,
// as for chat.
func newCompletionsResponse(p Provider, o ResponseOptions) (ResponseTranslator, error) {
	if p == ProviderAzure {
		return NewOpenAIToAzureResponse(o), nil
	}
	if c, ok := compatLookup(string(p)); (ok && c.completions != "") || p == ProviderOpenAI {
		return NewCompletionsResponse(o), nil
	}
	return nil, fmt.Errorf("%w: %s to %s", ErrUnsupported, APICompletions, p)
}

// completionsRequest forwards legacy completions requests.
type completionsRequest struct {
	target Target
	// compat is the OpenAI-compatible provider, nil for OpenAI.
	compat *compatProvider
}

var _ RequestTranslator = (*completionsRequest)(nil)

// RequestBody implements RequestTranslator.
func (t *completionsRequest) RequestBody(body []byte) (RequestResult, error) {
	if !gjson.ValidBytes(body) {
		return RequestResult{}, invalidf("", "request body is not valid JSON")
	}
	doc := gjson.Parse(stringView(body))
	if !doc.IsObject() {
		return RequestResult{}, invalidf("", "request body must be a JSON object")
	}
	switch p := doc.Get("prompt"); {
	case !p.Exists():
		return RequestResult{}, invalidf("prompt", "prompt is required")
	case p.Type != gjson.String && !p.IsArray():
		return RequestResult{}, invalidf("prompt", "prompt must be a string or an array")
	}
	target := t.target
	if t.compat != nil {
		target = compatTarget(*t.compat, target, body)
	}
	out, err := openAIPassThroughEdits(body, doc, &target)
	if err != nil {
		return RequestResult{}, err
	}
	set, remove := openAIAuthHeaders(&target)
	completions := "/completions"
	if t.compat != nil {
		completions = t.compat.completions
	}
	upstream := compatCompletionsPath(target.BasePath, completions)
	return RequestResult{
		Path:          upstream,
		Body:          out,
		Stream:        doc.Get("stream").Bool(),
		SetHeaders:    set,
		RemoveHeaders: remove,
	}, nil
}

// compatCompletionsPath joins a base path and a provider's completions
// path ("/completions" for OpenAI). A base that already ends in the path's
// directory is not repeated:
// DeepSeek's docs give https://api.deepseek.com/beta as the base URL for
// /beta/completions.
func compatCompletionsPath(base, completions string) string {
	if dir := path.Dir(completions); dir != "/" {
		base = strings.TrimSuffix(base, dir)
	}
	return base + completions
}

// openAIPassThroughEdits applies the only edits an OpenAI-format body
// needs: the deployment's model and, for streams, include_usage when
// ForceStreamUsage asks for it. It returns nil when the body needs neither,
// so pass-through costs no copy. sjson copies rather than editing in place,
// so body stays pristine for the next attempt.
//
// The chat pass-through (openai_openai.go) does the same inline; it can
// call this instead.
func openAIPassThroughEdits(body []byte, doc gjson.Result, t *Target) ([]byte, error) {
	var out []byte
	var err error
	if m := doc.Get("model"); t.Model != "" && (m.Type != gjson.String || m.Str != t.Model) {
		if out, err = sjson.SetBytes(body, "model", t.Model); err != nil {
			return nil, invalidf("model", "cannot set model: %v", err)
		}
	}
	if !t.ForceStreamUsage || !doc.Get("stream").Bool() || doc.Get("stream_options.include_usage").Bool() {
		return out, nil
	}
	src := body
	if out != nil {
		src = out
	}
	if so := doc.Get("stream_options"); so.Exists() && !so.IsObject() {
		// A non-object stream_options (null) cannot take a field.
		if src, err = sjson.SetRawBytes(src, "stream_options", []byte("{}")); err != nil {
			return nil, invalidf("stream_options", "cannot set stream_options: %v", err)
		}
	}
	if out, err = sjson.SetBytes(src, "stream_options.include_usage", true); err != nil {
		return nil, invalidf("stream_options", "cannot set stream_options: %v", err)
	}
	return out, nil
}

// openAIAuthHeaders are the headers of a request to an OpenAI-format
// provider: bearer auth when there is a key, and no credential another
// provider's attempt left behind.
func openAIAuthHeaders(t *Target) (set []Header, remove []string) {
	set = []Header{{Key: "content-type", Value: "application/json"}}
	remove = []string{"x-api-key", "api-key", "anthropic-version", "anthropic-beta"}
	if t.APIKey != "" {
		return append(set, Header{Key: "authorization", Value: "Bearer " + t.APIKey}), remove
	}
	return set, append(remove, "authorization")
}
