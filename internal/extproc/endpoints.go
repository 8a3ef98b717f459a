package extproc

import (
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// endpoint is one client-facing path: the API it speaks and what a request
// must carry before it is routed.
type endpoint struct {
	// api is the API translated for providers; "" for paths answered by
	// the gateway itself.
	api    transform.API
	method string
	// input is the top-level field holding the request's content.
	input string
	// inputArrayOnly requires input to be an array (chat messages);
	// otherwise a string is accepted too (completion prompts).
	inputArrayOnly bool
	// requireMaxTokens: the API makes max_tokens mandatory (Anthropic's
	// Messages API).
	requireMaxTokens bool
}

// messagesEndpoint is Anthropic's Messages API, as Claude Code and the
// Anthropic SDKs call it (base URL with or without an /anthropic prefix).
var messagesEndpoint = endpoint{api: transform.APIMessages, method: http.MethodPost, input: "messages", inputArrayOnly: true, requireMaxTokens: true}

// models is the endpoint answered from config.
var modelsEndpoint = endpoint{method: http.MethodGet}

// endpoints are the paths Tollgate serves, with and without the /v1
// prefix, as OpenAI SDKs and LiteLLM clients send both.
var endpoints = map[string]endpoint{
	"/v1/chat/completions":   {api: transform.APIChatCompletions, method: http.MethodPost, input: "messages", inputArrayOnly: true},
	"/chat/completions":      {api: transform.APIChatCompletions, method: http.MethodPost, input: "messages", inputArrayOnly: true},
	"/v1/messages":           messagesEndpoint,
	"/anthropic/v1/messages": messagesEndpoint,
	"/v1/completions":        {api: transform.APICompletions, method: http.MethodPost, input: "prompt"},
	"/completions":           {api: transform.APICompletions, method: http.MethodPost, input: "prompt"},
	"/v1/embeddings":         {api: transform.APIEmbeddings, method: http.MethodPost, input: "input"},
	"/embeddings":            {api: transform.APIEmbeddings, method: http.MethodPost, input: "input"},
	"/v1/models":             modelsEndpoint,
	"/models":                modelsEndpoint,
}

// validInput reports whether the request's content field has the shape the
// endpoint needs.
func (e endpoint) validInput(v gjson.Result) bool {
	if e.inputArrayOnly {
		return v.IsArray()
	}
	return v.IsArray() || v.Type == gjson.String
}

// encodeErrorFor renders an error in the shape clients of an API expect:
// Anthropic's for the Messages API, OpenAI's otherwise.
func encodeErrorFor(api transform.API, e apiError) []byte {
	if api == transform.APIMessages {
		return transform.EncodeAnthropicError(&transform.ProviderError{Status: e.Status, Type: e.Type, Code: e.Code, Param: e.Param, Message: e.Message})
	}
	return encodeError(e)
}
