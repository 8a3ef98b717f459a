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
}

// models is the endpoint answered from config.
var modelsEndpoint = endpoint{method: http.MethodGet}

// endpoints are the paths Tollgate serves, with and without the /v1
// prefix, as OpenAI SDKs and LiteLLM clients send both.
var endpoints = map[string]endpoint{
	"/v1/chat/completions": {api: transform.APIChatCompletions, method: http.MethodPost, input: "messages", inputArrayOnly: true},
	"/chat/completions":    {api: transform.APIChatCompletions, method: http.MethodPost, input: "messages", inputArrayOnly: true},
	"/v1/models":           modelsEndpoint,
	"/models":              modelsEndpoint,
}

// validInput reports whether the request's content field has the shape the
// endpoint needs.
func (e endpoint) validInput(v gjson.Result) bool {
	if e.inputArrayOnly {
		return v.IsArray()
	}
	return v.IsArray() || v.Type == gjson.String
}

// encodeErrorFor renders an error in the shape clients of an API expect.
func encodeErrorFor(api transform.API, e apiError) []byte {
	return encodeError(e)
}
