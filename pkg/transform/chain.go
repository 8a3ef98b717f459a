package transform

import (
	"fmt"
	"slices"

	"github.com/tidwall/gjson"
)

// The Messages API reaches providers other than Anthropic through chat
// completions: a request is translated from Anthropic's format into a chat
// request, then by that provider's chat translator; a response goes back
// through the provider's chat translator, then into Anthropic's format.
// The chains below compose any two translators, so every provider with a
// chat translator serves the Messages API.

// newMessagesRequest returns the request translator for the Messages API.
func newMessagesRequest(p Provider, t Target) (RequestTranslator, error) {
	if p == ProviderAnthropic {
		return &anthropicToAnthropicRequest{target: t}, nil
	}
	inner, err := NewRequestTranslator(APIChatCompletions, p, t)
	if err != nil {
		return nil, fmt.Errorf("%w: %s to %s", ErrUnsupported, APIMessages, p)
	}
	return messagesViaChatRequest(p, t, inner), nil
}

// messagesViaChatRequest chains the Anthropic-to-chat stage with a chat
// translator for p. OpenAI-format providers forward the chat body as it
// is, and OpenAI refuses fields it does not know, so only other providers'
// translators get cache_control.
func messagesViaChatRequest(p Provider, t Target, inner RequestTranslator) RequestTranslator {
	return &chainRequest{
		outer: &anthropicToOpenAIRequest{target: t, keepCacheControl: p != ProviderOpenAI},
		inner: inner,
	}
}

// newMessagesResponse returns the response translator for the Messages
// API.
func newMessagesResponse(p Provider, o ResponseOptions) (ResponseTranslator, error) {
	if p == ProviderAnthropic {
		return &anthropicToAnthropicResponse{}, nil
	}
	co := messagesChatOptions(o)
	if p == ProviderBedrock && gjson.GetBytes(o.Request, "tools").Exists() {
		// Bedrock's translator maps the tools it renamed back to the
		// client's names by reading the chat request; only requests with
		// tools pay for translating it again.
		if res, err := (&anthropicToOpenAIRequest{}).RequestBody(o.Request); err == nil && res.Body != nil {
			co.Request = res.Body
		}
	}
	inner, err := NewResponseTranslator(APIChatCompletions, p, co)
	if err != nil {
		return nil, fmt.Errorf("%w: %s to %s", ErrUnsupported, APIMessages, p)
	}
	return messagesViaChatResponse(o, inner), nil
}

// messagesChatOptions are the options for the chat stage of a messages
// response. The usage chunk is always wanted: message_delta reports usage.
// Model and ID stand in for providers whose responses carry none (Bedrock,
// Cohere). Request is the client's Messages body, not a chat one, so it is
// left out.
func messagesChatOptions(o ResponseOptions) ResponseOptions {
	return ResponseOptions{Stream: o.Stream, IncludeUsage: true, Created: o.Created, Model: o.Model, ID: o.ID}
}

// messagesViaChatResponse chains a chat response translator with the
// chat-to-Anthropic stage.
func messagesViaChatResponse(o ResponseOptions, inner ResponseTranslator) ResponseTranslator {
	return &chainResponse{inner: inner, outer: &anthropicToOpenAIResponse{opts: o}}
}

// chainRequest translates a body with outer, then outer's body with inner.
// The upstream request is inner's: its path and headers, plus the headers
// outer removes unless inner sets them.
type chainRequest struct {
	outer, inner RequestTranslator
}

var _ RequestTranslator = (*chainRequest)(nil)

// RequestBody implements RequestTranslator.
func (c *chainRequest) RequestBody(body []byte) (RequestResult, error) {
	first, err := c.outer.RequestBody(body)
	if err != nil {
		return RequestResult{}, err
	}
	mid := first.Body
	if mid == nil {
		mid = body
	}
	res, err := c.inner.RequestBody(mid)
	if err != nil {
		return RequestResult{}, err
	}
	if res.Body == nil {
		res.Body = first.Body
	}
	for _, h := range first.RemoveHeaders {
		if !hasHeader(res.SetHeaders, h) && !slices.Contains(res.RemoveHeaders, h) {
			res.RemoveHeaders = append(res.RemoveHeaders, h)
		}
	}
	return res, nil
}

func hasHeader(hs []Header, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}

// chainResponse translates a response with inner, then inner's output with
// outer. Usage and model are inner's, read from the provider's own
// response, and outer's only when inner reports none.
type chainResponse struct {
	inner, outer ResponseTranslator
}

var _ ResponseTranslator = (*chainResponse)(nil)

// ResponseBody implements ResponseTranslator.
func (c *chainResponse) ResponseBody(body []byte) (ResponseResult, error) {
	first, err := c.inner.ResponseBody(body)
	if err != nil {
		return ResponseResult{}, err
	}
	mid := first.Body
	if mid == nil {
		mid = body
	}
	res, err := c.outer.ResponseBody(mid)
	if err != nil {
		return ResponseResult{}, err
	}
	if res.Body == nil {
		res.Body = first.Body
	}
	if !first.Usage.IsZero() {
		res.Usage = first.Usage
	}
	if first.Model != "" {
		res.Model = first.Model
	}
	return res, nil
}

// StreamChunk implements ResponseTranslator. Inner's output is valid until
// inner's next call, so outer translates it at once; Body is outer's, valid
// until the next call. Done is outer's: the client's stream has ended.
func (c *chainResponse) StreamChunk(chunk []byte, final bool) (StreamResult, error) {
	first, innerErr := c.inner.StreamChunk(chunk, final)
	// After an inner failure its output ends with an error event, which
	// outer translates; the stream goes no further either way.
	res, err := c.outer.StreamChunk(first.Body, final)
	if !first.Usage.IsZero() {
		res.Usage = first.Usage
	}
	if first.Model != "" {
		res.Model = first.Model
	}
	if innerErr != nil {
		// The error event outer sent is inner's report of an unreadable
		// stream, not a provider error.
		res.Err = first.Err
		return res, innerErr
	}
	if first.Err != nil {
		res.Err = first.Err
	}
	return res, err
}

// ErrorBody implements ResponseTranslator: an error is read by the
// provider's translator alone.
func (c *chainResponse) ErrorBody(status int, body []byte) *ProviderError {
	return c.inner.ErrorBody(status, body)
}
