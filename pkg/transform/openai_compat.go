package transform

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// OpenAI-compatible providers speak OpenAI's chat completions format but
// each differs in a few parameters. They share the OpenAI pass-through, so a
// body that needs none of a provider's quirks is still forwarded without a
// copy; a quirk edits the body with sjson only when the body has the field.

// CompatOptions tune the translation for an OpenAI-compatible provider.
type CompatOptions struct {
	// DropParams removes parameters the provider rejects instead of
	// refusing the request (LiteLLM's drop_params). False refuses them with
	// an *InvalidRequestError naming the parameter.
	DropParams bool
}

// compatProvider is how one OpenAI-compatible provider differs from OpenAI.
type compatProvider struct {
	// base is the default api_base; "" when there is none (self-hosted).
	base string
	// streamUsage reports that the provider accepts
	// stream_options.include_usage, so ForceStreamUsage may add it. The
	// others report usage in their last chunk unasked, or not at all.
	streamUsage bool
	// modelPrefix is prepended to model names that do not start with it.
	modelPrefix string
	// edit applies the provider's parameter quirks; nil when it has none.
	edit func(e *compatEditor) error
	// completions is the legacy completions endpoint's path under the
	// base; "" when the provider has no such API, so the gateway refuses
	// the request instead of sending one that would 404.
	completions string
}

// compatNames lists the providers in CompatProviders order.
const compatNames = "mistral groq together_ai fireworks_ai deepinfra openrouter xai deepseek perplexity cerebras hosted_vllm"

// compatLookup returns the provider's profile. A switch rather than a map
// keeps the table immutable.
func compatLookup(name string) (compatProvider, bool) {
	switch name {
	case "mistral":
		// https://docs.mistral.ai/api/#tag/chat: random_seed, tool_choice
		// "any"; LiteLLM (mistral/chat/transformation.py) maps the OpenAI
		// names. Usage comes in the last chunk of every stream. No legacy
		// completions: the API has chat, embeddings and
		// /v1/fim/completions, whose reply is a chat.completion object.
		return compatProvider{base: "https://api.mistral.ai/v1", edit: mistralEdit}, true
	case "groq":
		// https://console.groq.com/docs/openai: OpenAI-compatible under
		// /openai/v1; stream_options.include_usage is accepted. Its API
		// reference (console.groq.com/docs/api-reference) has no legacy
		// completions endpoint.
		return compatProvider{base: "https://api.groq.com/openai/v1", streamUsage: true, edit: groqEdit}, true
	case "together_ai":
		// https://docs.together.ai/reference/completions: POST
		// /v1/completions.
		return compatProvider{base: "https://api.together.xyz/v1", completions: "/completions"}, true
	case "fireworks_ai":
		// LiteLLM (fireworks_ai/chat/transformation.py): models live under
		// accounts/fireworks/models/, tool_choice "required" is "any".
		// https://docs.fireworks.ai/api-reference/post-completions:
		// POST /inference/v1/completions.
		return compatProvider{base: "https://api.fireworks.ai/inference/v1", modelPrefix: "accounts/fireworks/models/", edit: fireworksEdit, completions: "/completions"}, true
	case "deepinfra":
		// https://deepinfra.com/docs/advanced/openai_api: chat completion
		// and completion, streaming or not, under /v1/openai.
		return compatProvider{base: "https://api.deepinfra.com/v1/openai", streamUsage: true, completions: "/completions"}, true
	case "openrouter":
		// https://openrouter.ai/docs: include_usage "has no effect. Full
		// usage details are always included."
		// https://openrouter.ai/docs/api-reference/completion: POST
		// /api/v1/completions, "text-only format".
		return compatProvider{base: "https://openrouter.ai/api/v1", completions: "/completions"}, true
	case "xai":
		// xAI's REST API reference (docs.x.ai, archived at
		// archive.fo/gs9tj): POST /v1/completions, legacy, not for
		// reasoning models.
		return compatProvider{base: "https://api.x.ai/v1", streamUsage: true, completions: "/completions"}, true
	case "deepseek":
		// https://platform.deepseek.com/api-docs/zh-cn/fim_completion:
		// legacy completions only as FIM (Beta), POST
		// https://api.deepseek.com/beta/completions, for clients whose
		// base URL is https://api.deepseek.com/beta.
		return compatProvider{base: "https://api.deepseek.com", streamUsage: true, completions: "/beta/completions"}, true
	case "perplexity":
		// https://docs.perplexity.ai/docs/sonar/openai-compatibility: the
		// Sonar API takes OpenAI's chat completions format only.
		return compatProvider{base: "https://api.perplexity.ai"}, true
	case "cerebras":
		// https://inference-docs.cerebras.ai/api-reference/completions:
		// POST /v1/completions.
		return compatProvider{base: "https://api.cerebras.ai/v1", completions: "/completions"}, true
	case "hosted_vllm":
		// vLLM's OpenAI server implements stream_options and the
		// Completions API (/v1/completions,
		// https://docs.vllm.ai/en/stable/serving/openai_compatible_server/);
		// it has no public endpoint, so api_base is required.
		return compatProvider{streamUsage: true, completions: "/completions"}, true
	}
	return compatProvider{}, false
}

// CompatProviders returns the names of the OpenAI-compatible providers, as
// LiteLLM spells them in model prefixes.
func CompatProviders() []string { return strings.Fields(compatNames) }

// CompatDefaultBase returns the default api_base of an OpenAI-compatible
// provider. ok is false for unknown names; the base is "" (and ok true) for
// providers without a public endpoint, whose api_base is required.
func CompatDefaultBase(name string) (base string, ok bool) {
	p, ok := compatLookup(name)
	return p.base, ok
}

// NewOpenAICompatRequest returns the request translator for a named
// OpenAI-compatible provider (see CompatProviders). The path is
// {BasePath}/chat/completions with bearer auth, as for OpenAI.
// ForceStreamUsage is honoured only for providers that accept
// stream_options.include_usage.
func NewOpenAICompatRequest(provider string, t Target, o CompatOptions) (RequestTranslator, error) {
	p, ok := compatLookup(provider)
	if !ok {
		return nil, fmt.Errorf("%w: openai-compatible provider %q", ErrUnsupported, provider)
	}
	return &compatRequest{p: p, target: t, opts: o}, nil
}

// NewOpenAICompatResponse returns the response translator for a named
// OpenAI-compatible provider: the OpenAI pass-through, with the provider's
// error quirks.
func NewOpenAICompatResponse(provider string, o ResponseOptions) (ResponseTranslator, error) {
	if _, ok := compatLookup(provider); !ok {
		return nil, fmt.Errorf("%w: openai-compatible provider %q", ErrUnsupported, provider)
	}
	return &compatResponse{openAIToOpenAIResponse: openAIToOpenAIResponse{opts: o}, provider: provider}, nil
}

// compatRequest translates chat completions requests for one
// OpenAI-compatible provider.
type compatRequest struct {
	p      compatProvider
	target Target
	opts   CompatOptions
}

var _ RequestTranslator = (*compatRequest)(nil)

// RequestBody implements RequestTranslator.
func (t *compatRequest) RequestBody(body []byte) (RequestResult, error) {
	target := compatTarget(t.p, t.target, body)
	res, err := (&openAIToOpenAIRequest{target: target}).RequestBody(body)
	if err != nil || t.p.edit == nil {
		return res, err
	}
	e := compatEditor{doc: gjson.Parse(stringView(body)), src: body, out: res.Body, drop: t.opts.DropParams}
	if err := t.p.edit(&e); err != nil {
		return RequestResult{}, err
	}
	res.Body = e.out
	return res, nil
}

// compatTarget adapts a Target to a provider: stream usage is forced only
// where accepted, and the model gets the provider's prefix.
func compatTarget(p compatProvider, t Target, body []byte) Target {
	if !p.streamUsage {
		t.ForceStreamUsage = false
	}
	if p.modelPrefix == "" {
		return t
	}
	model := t.Model
	if model == "" {
		model = gjson.GetBytes(body, "model").Str
	}
	if model != "" && !strings.HasPrefix(model, "accounts/") {
		t.Model = p.modelPrefix + model
	}
	return t
}

// compatEditor applies quirks to a body. Fields are read from the client's
// body (doc) and written to out, which stays nil until the first edit.
type compatEditor struct {
	doc  gjson.Result
	src  []byte
	out  []byte
	drop bool
}

// body is the body edits apply to.
func (e *compatEditor) body() []byte {
	if e.out != nil {
		return e.out
	}
	return e.src
}

func (e *compatEditor) setRaw(path, raw string) error {
	b, err := sjson.SetRawBytes(e.body(), path, []byte(raw))
	if err != nil {
		return invalidf(path, "cannot set %s: %v", path, err)
	}
	e.out = b
	return nil
}

func (e *compatEditor) delete(path string) error {
	b, err := sjson.DeleteBytes(e.body(), path)
	if err != nil {
		return invalidf(path, "cannot remove %s: %v", path, err)
	}
	e.out = b
	return nil
}

// rename moves a top-level field to a new name, unless the new name is
// already given, in which case the old one is only removed.
func (e *compatEditor) rename(from, to string) error {
	v := e.doc.Get(from)
	if !v.Exists() {
		return nil
	}
	if !e.doc.Get(to).Exists() {
		if err := e.setRaw(to, v.Raw); err != nil {
			return err
		}
	}
	return e.delete(from)
}

// unsupported removes the field at path with DropParams and refuses the
// request otherwise, naming param.
func (e *compatEditor) unsupported(param, path, provider string) error {
	if !e.drop {
		return invalidf(param, "%s is not supported by %s models; set drop_params to remove it", param, provider)
	}
	return e.delete(path)
}

// toolChoiceAny rewrites tool_choice "required" to "any", the name Mistral
// and Fireworks use.
func (e *compatEditor) toolChoiceAny() error {
	if tc := e.doc.Get("tool_choice"); tc.Type == gjson.String && tc.Str == "required" {
		return e.setRaw("tool_choice", `"any"`)
	}
	return nil
}

// mistralEdit applies Mistral's names (LiteLLM MistralConfig and
// https://docs.mistral.ai/api/#tag/chat/operation/chat_completion_v1_chat_completions_post:
// max_tokens, random_seed, tool_choice auto/none/any/required, no logprobs,
// logit_bias or user).
func mistralEdit(e *compatEditor) error {
	if err := e.rename("max_completion_tokens", "max_tokens"); err != nil {
		return err
	}
	if err := e.rename("seed", "random_seed"); err != nil {
		return err
	}
	// A named tool passes: Mistral's tool_choice takes the OpenAI object
	// too, so LiteLLM's older fallback to "any" would force the wrong tool.
	if err := e.toolChoiceAny(); err != nil {
		return err
	}
	// user has no visible effect and LiteLLM never sends it; stream usage
	// comes in the last chunk anyway.
	for _, quiet := range [...]string{"user", "stream_options"} {
		if e.doc.Get(quiet).Exists() {
			if err := e.delete(quiet); err != nil {
				return err
			}
		}
	}
	for _, param := range [...]string{"logit_bias", "logprobs", "top_logprobs", "reasoning_effort"} {
		if v := e.doc.Get(param); v.Exists() && v.Type != gjson.Null && v.Type != gjson.False {
			if err := e.unsupported(param, param, "mistral"); err != nil {
				return err
			}
		}
	}
	return nil
}

// groqEdit refuses what Groq answers with a 400
// (https://console.groq.com/docs/openai, "Currently Unsupported OpenAI
// Features"): logprobs, logit_bias, top_logprobs, messages[].name, and n
// other than 1.
func groqEdit(e *compatEditor) error {
	for _, param := range [...]string{"logprobs", "logit_bias", "top_logprobs"} {
		if v := e.doc.Get(param); v.Exists() && v.Type != gjson.Null {
			if err := e.unsupported(param, param, "groq"); err != nil {
				return err
			}
		}
	}
	if n := e.doc.Get("n"); n.Exists() && n.Type != gjson.Null && n.Int() != 1 {
		if err := e.unsupported("n", "n", "groq"); err != nil {
			return err
		}
	}
	var err error
	e.doc.Get("messages").ForEach(func(i, m gjson.Result) bool {
		if m.Get("name").Exists() {
			err = e.unsupported(fmt.Sprintf("messages[%d].name", i.Int()), fmt.Sprintf("messages.%d.name", i.Int()), "groq")
		}
		return err == nil
	})
	return err
}

// fireworksEdit applies LiteLLM's Fireworks rules: tool_choice "required"
// is "any", and a json_schema response_format becomes
// {"type":"json_object","schema":...}
// (https://docs.fireworks.ai/structured-responses/structured-response-formatting).
func fireworksEdit(e *compatEditor) error {
	if err := e.toolChoiceAny(); err != nil {
		return err
	}
	rf := e.doc.Get("response_format")
	if rf.Get("type").Str != "json_schema" {
		return nil
	}
	schema := rf.Get("json_schema.schema")
	if !schema.IsObject() {
		return invalidf("response_format", "response_format json_schema must have a schema object")
	}
	return e.setRaw("response_format", `{"type":"json_object","schema":`+schema.Raw+`}`)
}

// compatResponse is the OpenAI pass-through with providers' error quirks.
type compatResponse struct {
	openAIToOpenAIResponse
	// provider is the compat provider's name; "" applies only the quirks
	// every provider shares.
	provider string
}

var _ ResponseTranslator = (*compatResponse)(nil)

// ErrorBody implements ResponseTranslator. Mistral reports exhausted
// capacity as "service tier capacity exceeded", which LiteLLM maps to a
// rate limit so that routers back off or fall back. OpenRouter's
// moderation refusals are content-policy errors.
func (r *compatResponse) ErrorBody(status int, body []byte) *ProviderError {
	e := openAIError(status, body)
	if strings.Contains(strings.ToLower(e.Message), "service tier capacity exceeded") {
		e.Status, e.Type = 429, ErrorTypeRateLimit
	}
	// OpenRouter answers 403 when the model requires moderation and the
	// input was flagged, naming the reasons in error.metadata
	// (https://openrouter.ai/docs/errors).
	if r.provider == "openrouter" && status == http.StatusForbidden && gjson.GetBytes(body, "error.metadata.reasons").IsArray() {
		e.Code, e.Type = CodeContentPolicy, ErrorTypeInvalidRequest
	}
	return e
}
