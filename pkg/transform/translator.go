// Package transform translates OpenAI-format requests into provider wire
// formats and provider responses, event streams and errors back into OpenAI
// shapes.
//
// The package is pure: no I/O, no clocks, no randomness, and it depends only
// on the standard library, gjson and sjson, so every translator can be fuzzed
// and benchmarked alone.
//
// Translators are values created per request (or per attempt) and are not
// safe for concurrent use. They never modify the byte slices they are given:
// the upstream filter runs once per Envoy attempt over the same pristine body,
// so translating the same input twice must give the same output.
package transform

import (
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
)

// API names the OpenAI-format endpoint a client called.
type API string

// APIs the gateway translates.
const (
	APIChatCompletions API = "chat_completions"
	// APIMessages is Anthropic's Messages API (/v1/messages), served by
	// every provider: passed through to Anthropic, and through chat
	// completions to the others. Errors for its clients are encoded with
	// EncodeAnthropicError.
	APIMessages API = "messages"
	// APICompletions is the legacy /v1/completions, served by
	// OpenAI-format providers and Azure OpenAI.
	APICompletions API = "completions"
	// APIEmbeddings is /v1/embeddings, served by OpenAI-format providers,
	// Bedrock (Titan and Cohere Embed), Gemini, Vertex AI and Cohere (see
	// NewEmbeddingsRequest).
	APIEmbeddings API = "embeddings"
)

// Provider names the wire format a deployment speaks.
type Provider string

// Providers with a translator of their own. The OpenAI-compatible family
// (CompatProviders: mistral, groq, together_ai, ...) is served by the
// OpenAI translators with per-provider quirks.
const (
	// ProviderOpenAI is OpenAI and any OpenAI-compatible base URL.
	ProviderOpenAI Provider = "openai"
	// ProviderAnthropic is the Anthropic Messages API.
	ProviderAnthropic Provider = "anthropic"
	// ProviderAzure is Azure OpenAI (deployment paths, api-key).
	ProviderAzure Provider = "azure"
	// ProviderBedrock is the Amazon Bedrock Converse API.
	ProviderBedrock Provider = "bedrock"
	// ProviderGemini is the Gemini API of Google AI Studio, authorized by
	// an API key.
	ProviderGemini Provider = "gemini"
	// ProviderVertexAI is Vertex AI, authorized by an OAuth token from a
	// credentials.Source: Gemini models, and Anthropic's Claude models
	// (model names starting "claude") through rawPredict. Target.Project
	// tells it from ProviderGemini.
	ProviderVertexAI Provider = "vertex_ai"
	// ProviderCohere is Cohere's v2 Chat API.
	ProviderCohere Provider = "cohere"
	// ProviderOllama is Ollama's native /api/chat (NDJSON streams).
	ProviderOllama Provider = "ollama_chat"
)

// Header is one header to set on the upstream request.
type Header struct {
	Key   string
	Value string
}

// Target is what a request translator needs to know about the deployment an
// attempt goes to.
type Target struct {
	// Model is the provider's model name. Empty keeps the client's model.
	Model string
	// BasePath is the path of the deployment's api_base, without a trailing
	// slash ("" when the base URL has none). The provider's API path is
	// appended to it as given: OpenAI-format providers append
	// "/chat/completions" (api_base "https://api.openai.com/v1" → BasePath
	// "/v1" → "/v1/chat/completions"), while Anthropic appends
	// "/v1/messages" (api_base "https://api.anthropic.com" → BasePath "").
	BasePath string
	// APIKey is the provider credential. Empty sends no credential header
	// (self-hosted servers without auth).
	APIKey string
	// DefaultMaxTokens is sent to providers that require max_tokens when the
	// client gave none. Zero means the translator's own default.
	DefaultMaxTokens int64
	// APIVersion is the provider API version where the path or query
	// carries one (Azure's api-version, Vertex's v1 or v1beta1).
	APIVersion string
	// Region is the cloud region or location a provider's path names
	// (Bedrock's AWS region, Vertex AI's location).
	Region string
	// Project is the cloud project a provider's path names (Vertex AI).
	Project string
	// DropParams removes parameters the provider cannot take instead of
	// refusing the request (LiteLLM's drop_params).
	DropParams bool
	// ForceStreamUsage asks an OpenAI-format provider to report usage in
	// streams (stream_options.include_usage) even when the client did not, so
	// that every stream is metered. The response translator removes the extra
	// usage chunk again (ResponseOptions.IncludeUsage).
	ForceStreamUsage bool
	// BodyValidated says the caller has already checked that the body is a
	// valid JSON object, so chat completions translators skip their own
	// validity pass over it (the body is still parsed).
	BodyValidated bool
}

// RequestResult is a translated request.
type RequestResult struct {
	// Path is the upstream :path.
	Path string
	// Body is the upstream body. Nil means the client's body is forwarded
	// unchanged, so pass-through costs no copy.
	Body []byte
	// SetHeaders are set on the upstream request, replacing any value.
	SetHeaders []Header
	// RemoveHeaders are removed from the upstream request.
	RemoveHeaders []string
	// Stream reports whether the request asks for a streamed response.
	Stream bool
}

// RequestTranslator turns an OpenAI-format request body into a provider
// request.
type RequestTranslator interface {
	// RequestBody translates a complete client body. It returns an
	// *InvalidRequestError for client bodies the provider cannot take.
	RequestBody(body []byte) (RequestResult, error)
}

// ResponseOptions describe the client request a response translator answers.
type ResponseOptions struct {
	// Stream reports whether the client asked for a stream.
	Stream bool
	// IncludeUsage reports whether the client asked for the usage chunk
	// (stream_options.include_usage). When false, a usage-only chunk is
	// removed from the stream after its usage has been read.
	IncludeUsage bool
	// Created is the Unix time reported in responses whose provider gives
	// none. Injected so translation stays deterministic.
	Created int64
	// Model is the provider model the request was sent to, reported by
	// providers whose responses name none (Bedrock, Cohere).
	Model string
	// ID is the response id for providers that give none (Bedrock).
	ID string
	// Request is the client's request body, read-only, for translators
	// that must recover facts of the request (Bedrock's renamed tools).
	Request []byte
}

// Usage is token usage in OpenAI's terms: InputTokens includes cached and
// cache-creation tokens, and OutputTokens includes reasoning tokens.
type Usage struct {
	InputTokens              int64
	OutputTokens             int64
	CachedInputTokens        int64
	CacheCreationInputTokens int64
	ReasoningTokens          int64
	// WebSearches counts the server-side web searches the provider ran and
	// bills per search (Anthropic's server_tool_use.web_search_requests).
	WebSearches int64
}

// TotalTokens is input plus output tokens.
func (u Usage) TotalTokens() int64 { return u.InputTokens + u.OutputTokens }

// IsZero reports whether no usage was seen.
func (u Usage) IsZero() bool { return u == Usage{} }

// ResponseResult is a translated non-stream response.
type ResponseResult struct {
	// Body is the OpenAI-format body. Nil means the provider's body is
	// already OpenAI-format and is forwarded unchanged.
	Body []byte
	// Usage is the provider's reported usage.
	Usage Usage
	// Model is the model the provider says answered.
	Model string
}

// StreamResult is the translation of one piece of an event stream.
type StreamResult struct {
	// Body is the OpenAI SSE bytes to emit for this piece; it may be empty
	// while an event is incomplete. It may alias the piece passed in or a
	// buffer the translator reuses, so it is valid only until the next
	// StreamChunk call: emit or copy it before then.
	Body []byte
	// Usage is the usage seen so far in the stream (cumulative).
	Usage Usage
	// Model is the model the provider says answered, once known.
	Model string
	// Done reports that the provider's stream ended normally.
	Done bool
	// Err is an error the provider reported inside the stream. Body then
	// already ends with it as an OpenAI error event, and the translator
	// ignores anything after it.
	Err *ProviderError
}

// ResponseTranslator turns provider responses into OpenAI-format responses.
type ResponseTranslator interface {
	// ResponseBody translates a complete 2xx non-stream body. It returns a
	// *ProviderError when the body is a provider error, and an error
	// wrapping ErrMalformedResponse when the body cannot be read.
	ResponseBody(body []byte) (ResponseResult, error)
	// StreamChunk translates the next piece of a 2xx event stream. Pieces
	// may split events anywhere; final marks the last piece. It returns an
	// error wrapping ErrMalformedResponse when an event cannot be read;
	// Body then still holds the events translated before it, followed by an
	// OpenAI error event, and the translator ignores the rest of the stream.
	StreamChunk(chunk []byte, final bool) (StreamResult, error)
	// ErrorBody turns a provider error response (any non-2xx status, or a
	// 2xx carrying an error) into an OpenAI error.
	ErrorBody(status int, body []byte) *ProviderError
}

// ErrorType is the OpenAI error `type`.
type ErrorType string

// OpenAI error types.
const (
	ErrorTypeInvalidRequest ErrorType = "invalid_request_error"
	ErrorTypeAuthentication ErrorType = "authentication_error"
	ErrorTypePermission     ErrorType = "permission_error"
	ErrorTypeNotFound       ErrorType = "not_found_error"
	ErrorTypeRateLimit      ErrorType = "rate_limit_error"
	ErrorTypeServer         ErrorType = "server_error"
	ErrorTypeOverloaded     ErrorType = "service_unavailable_error"
)

// Error codes that mark errors a router treats specially.
const (
	CodeContextLengthExceeded = "context_length_exceeded"
	CodeContentPolicy         = "content_policy_violation"
)

// ProviderError is a provider's error in OpenAI terms.
type ProviderError struct {
	// Status is the HTTP status to return to the client.
	Status  int
	Type    ErrorType
	Code    string
	Param   string
	Message string
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("provider error %d %s: %s", e.Status, e.Type, e.Message)
}

// ErrInvalidRequest marks client bodies a translator rejects; safe to show
// to the client.
var ErrInvalidRequest = errors.New("invalid request")

// InvalidRequestError is a client body a translator cannot take. Message is
// safe to show to the client.
type InvalidRequestError struct {
	Param   string
	Message string
}

func (e *InvalidRequestError) Error() string { return e.Message }

// Is makes errors.Is(err, ErrInvalidRequest) true.
func (e *InvalidRequestError) Is(target error) bool { return target == ErrInvalidRequest }

func invalidf(param, format string, args ...any) error {
	return &InvalidRequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// ErrMalformedResponse marks provider responses a translator cannot read:
// an upstream fault, not the client's.
var ErrMalformedResponse = errors.New("malformed provider response")

// ErrUnsupported is returned by the constructors for an (API, provider) pair
// with no translator.
var ErrUnsupported = errors.New("no translator for this api and provider")

// NewRequestTranslator returns the request translator for an API and
// provider.
func NewRequestTranslator(api API, p Provider, t Target) (RequestTranslator, error) {
	switch api {
	case APIMessages:
		return newMessagesRequest(p, t)
	case APICompletions:
		return NewCompletionsRequest(string(p), t)
	case APIEmbeddings:
		return NewEmbeddingsRequest(p, t)
	case APIChatCompletions:
		if isVertexAnthropic(p, t.Model) {
			return NewOpenAIToVertexAnthropicRequest(t), nil
		}
		switch p {
		case ProviderOpenAI:
			return &openAIToOpenAIRequest{target: t}, nil
		case ProviderAnthropic:
			return &openAIToAnthropicRequest{target: t}, nil
		case ProviderAzure:
			return NewOpenAIToAzureRequest(t), nil
		case ProviderBedrock:
			return NewOpenAIToBedrockRequest(t), nil
		case ProviderGemini, ProviderVertexAI:
			return NewOpenAIToGeminiRequest(t), nil
		case ProviderCohere:
			return NewOpenAIToCohereRequest(t), nil
		case ProviderOllama:
			return NewOpenAIToOllamaRequest(t), nil
		}
		if _, ok := CompatDefaultBase(string(p)); ok {
			return NewOpenAICompatRequest(string(p), t, CompatOptions{DropParams: t.DropParams})
		}
	}
	return nil, fmt.Errorf("%w: %s to %s", ErrUnsupported, api, p)
}

// NewResponseTranslator returns the response translator for an API and
// provider.
func NewResponseTranslator(api API, p Provider, o ResponseOptions) (ResponseTranslator, error) {
	switch api {
	case APIMessages:
		if isVertexAnthropic(p, o.Model) {
			// The chat stage's options carry no model to route by.
			return messagesViaChatResponse(o, &openAIToAnthropicResponse{opts: messagesChatOptions(o)}), nil
		}
		return newMessagesResponse(p, o)
	case APIEmbeddings:
		return NewEmbeddingsResponse(p, o)
	case APICompletions:
		return newCompletionsResponse(p, o)
	case APIChatCompletions:
		if isVertexAnthropic(p, o.Model) {
			return &openAIToAnthropicResponse{opts: o}, nil
		}
		switch p {
		case ProviderOpenAI:
			return &openAIToOpenAIResponse{opts: o}, nil
		case ProviderAnthropic:
			return &openAIToAnthropicResponse{opts: o}, nil
		case ProviderAzure:
			return NewOpenAIToAzureResponse(o), nil
		case ProviderBedrock:
			return NewOpenAIToBedrockResponse(o, bedrockContext(o)), nil
		case ProviderGemini, ProviderVertexAI:
			return NewOpenAIToGeminiResponse(o), nil
		case ProviderCohere:
			return NewOpenAIToCohereResponse(o, o.Model), nil
		case ProviderOllama:
			return NewOpenAIToOllamaResponse(o), nil
		}
		if _, ok := CompatDefaultBase(string(p)); ok {
			return NewOpenAICompatResponse(string(p), o)
		}
	}
	return nil, fmt.Errorf("%w: %s to %s", ErrUnsupported, api, p)
}

// bedrockContext recovers what a Converse response lacks: the model, an id,
// and the client's names of tools the request translator renamed (only
// requests with tools pay for translating the request again).
func bedrockContext(o ResponseOptions) BedrockResponseContext {
	c := BedrockResponseContext{Model: o.Model, ID: o.ID}
	if len(o.Request) > 0 && gjson.GetBytes(o.Request, "tools").Exists() {
		rt := NewOpenAIToBedrockRequest(Target{})
		if _, err := rt.RequestBody(o.Request); err == nil {
			if m, ok := rt.(ToolNameMapper); ok {
				c.ToolNames = m.ToolNames()
			}
		}
	}
	return c
}
