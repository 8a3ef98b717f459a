package transform

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Claude on Vertex AI is Anthropic's Messages API behind a Google endpoint.
// It differs from api.anthropic.com in three ways only:
//
//   - the path names the model and the method:
//     {BasePath}/{APIVersion or v1}/projects/{Project}/locations/{Region or us-central1}/publishers/anthropic/models/{model}:rawPredict
//     (:streamRawPredict for streams);
//   - the body has no "model" and carries "anthropic_version":"vertex-2023-10-16";
//   - auth is Google's OAuth bearer token, set by the deployment's
//     credentials.Source after translation, so neither x-api-key nor
//     anthropic-version is sent.
//
// Responses, streams and errors are Anthropic's, so the response translator
// is the Anthropic one, unchanged. Routing needs the deployment's model
// (Target.Model, ResponseOptions.Model): a vertex_ai model whose name
// starts with "claude" is Claude on Vertex, any other is Gemini.

// vertexAnthropicVersion is the anthropic_version Vertex AI takes in the
// body in place of the anthropic-version header.
const vertexAnthropicVersion = "vertex-2023-10-16"

// isVertexAnthropic reports whether a deployment of provider p serving
// model is an Anthropic (Claude) model on Vertex AI, which speaks
// Anthropic's Messages API rather than Gemini's generateContent.
func isVertexAnthropic(p Provider, model string) bool {
	return p == ProviderVertexAI && strings.HasPrefix(model, "claude")
}

// openAIToVertexAnthropicRequest translates chat completions requests into
// Messages requests for Claude on Vertex AI by wrapping the Anthropic
// translator.
type openAIToVertexAnthropicRequest struct {
	target Target
	inner  openAIToAnthropicRequest
}

var _ RequestTranslator = (*openAIToVertexAnthropicRequest)(nil)

// NewOpenAIToVertexAnthropicRequest returns the chat completions to Claude
// on Vertex AI request translator. Target.APIKey is never sent: the
// deployment's credentials.Source authorizes the request.
func NewOpenAIToVertexAnthropicRequest(t Target) RequestTranslator {
	inner := t
	inner.APIKey = ""
	return &openAIToVertexAnthropicRequest{target: t, inner: openAIToAnthropicRequest{target: inner}}
}

// vertexAnthropicRemoved are the headers a Vertex request must not carry
// (Envoy hands each attempt the headers the previous attempt left):
// Anthropic's and Gemini's credentials, and Anthropic's version header,
// which Vertex takes in the body.
var vertexAnthropicRemoved = [...]string{"x-api-key", "anthropic-version", "x-goog-api-key", "api-key", "authorization"}

// RequestBody implements RequestTranslator.
func (t *openAIToVertexAnthropicRequest) RequestBody(body []byte) (RequestResult, error) {
	res, err := t.inner.RequestBody(body)
	if err != nil {
		return RequestResult{}, err
	}
	name, out, err := vertexAnthropicBody(res.Body)
	if err != nil {
		return RequestResult{}, err
	}
	res.Body = out
	res.Path = t.path(name, res.Stream)

	// A copy: nothing says the inner header slices are fresh per call.
	headers := res.SetHeaders[:0:0]
	for _, h := range res.SetHeaders {
		if !slices.Contains(vertexAnthropicRemoved[:], h.Key) {
			headers = append(headers, h)
		}
	}
	res.SetHeaders = headers
	removed := make([]string, 0, len(res.RemoveHeaders)+len(vertexAnthropicRemoved))
	removed = append(removed, res.RemoveHeaders...)
	for _, h := range vertexAnthropicRemoved {
		if !slices.Contains(removed, h) {
			removed = append(removed, h)
		}
	}
	res.RemoveHeaders = removed
	return res, nil
}

// vertexAnthropicHead starts a Vertex body in place of {"model":"...",.
const vertexAnthropicHead = `{"anthropic_version":"` + vertexAnthropicVersion + `",`

// vertexAnthropicBody trades the model of an Anthropic Messages body for
// anthropic_version and returns the model, which the path names. body is
// the Anthropic translator's own buffer, so it is edited in place. That
// translator writes the model first, which the head replaces; any other
// layout is edited with sjson.
func vertexAnthropicBody(body []byte) (string, []byte, error) {
	model := gjson.GetBytes(body, "model")
	if model.Type != gjson.String || model.Str == "" {
		return "", nil, invalidf("model", "model is required")
	}
	const head = `{"model":`
	if end := model.Index + len(model.Raw); model.Index == len(head) && string(body[:len(head)]) == head &&
		end < len(body) && body[end] == ',' {
		name := model.Str // GetBytes copies: it does not alias body
		rest := len(body) - end - 1
		n := len(vertexAnthropicHead) + rest
		if n > cap(body) {
			out := make([]byte, 0, n)
			out = append(out, vertexAnthropicHead...)
			return name, append(out, body[end+1:]...), nil
		}
		out := body[:n]
		copy(out[len(vertexAnthropicHead):], body[end+1:]) // memmove: overlap is safe
		copy(out, vertexAnthropicHead)
		return name, out, nil
	}
	out, err := sjson.DeleteBytes(body, "model")
	if err == nil {
		out, err = sjson.SetBytes(out, "anthropic_version", vertexAnthropicVersion)
	}
	if err != nil {
		return "", nil, fmt.Errorf("vertex anthropic body: %w", err)
	}
	return model.Str, out, nil
}

// path builds the upstream :path. Segments taken from config or the client
// are escaped so that a model name cannot reach another endpoint.
func (t *openAIToVertexAnthropicRequest) path(model string, stream bool) string {
	method := ":rawPredict"
	if stream {
		method = ":streamRawPredict"
	}
	return vertexModelPath(&t.target, "anthropic", url.PathEscape(model)) + method
}
