package transform

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// anthropicToAnthropicRequest forwards Messages API requests to Anthropic,
// copying the body only when the deployment renames the model.
//
// The client's anthropic-beta header is not in the body: the server must
// forward it (and may drop betas it does not allow). Its anthropic-version
// is replaced by the version the gateway speaks.
type anthropicToAnthropicRequest struct {
	target Target
}

var _ RequestTranslator = (*anthropicToAnthropicRequest)(nil)

// RequestBody implements RequestTranslator.
func (t *anthropicToAnthropicRequest) RequestBody(body []byte) (RequestResult, error) {
	if !gjson.ValidBytes(body) {
		return RequestResult{}, invalidf("", "request body is not valid JSON")
	}
	// A view, not a copy: nothing read from it outlives the call.
	doc := gjson.Parse(stringView(body))
	if !doc.IsObject() {
		return RequestResult{}, invalidf("", "request body must be a JSON object")
	}
	var model, stream gjson.Result
	doc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			model = v
		case "stream":
			stream = v
		}
		return true
	})
	res := RequestResult{
		Path:   t.target.BasePath + "/v1/messages",
		Stream: stream.Type == gjson.True,
		SetHeaders: []Header{
			{Key: "content-type", Value: "application/json"},
			{Key: "anthropic-version", Value: anthropicVersion},
		},
		// Envoy hands each attempt the headers the previous attempt left.
		RemoveHeaders: []string{"authorization", "api-key"},
	}
	if t.target.Model != "" && (model.Type != gjson.String || model.Str != t.target.Model) {
		// sjson copies: the client's body stays pristine for the next
		// attempt.
		var err error
		if res.Body, err = sjson.SetBytes(body, "model", t.target.Model); err != nil {
			return RequestResult{}, invalidf("model", "cannot set model: %v", err)
		}
	}
	if t.target.APIKey != "" {
		res.SetHeaders = append(res.SetHeaders, Header{Key: "x-api-key", Value: t.target.APIKey})
	} else {
		res.RemoveHeaders = append(res.RemoveHeaders, "x-api-key")
	}
	return res, nil
}

// anthropicToAnthropicResponse passes Anthropic responses through, reading
// usage and model on the way.
type anthropicToAnthropicResponse struct {
	carry  lineCarry
	tokens anthropicTokens
	model  string
	done   bool
	err    *ProviderError
}

var _ ResponseTranslator = (*anthropicToAnthropicResponse)(nil)

// ResponseBody implements ResponseTranslator. The body is forwarded
// unchanged; an error body is returned as a *ProviderError.
func (r *anthropicToAnthropicResponse) ResponseBody(body []byte) (ResponseResult, error) {
	if !gjson.ValidBytes(body) {
		return ResponseResult{}, fmt.Errorf("read anthropic message: %w: not JSON", ErrMalformedResponse)
	}
	doc := gjson.Parse(stringView(body))
	var typ, model, usage, errv gjson.Result
	doc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			typ = v
		case "model":
			model = v
		case "usage":
			usage = v
		case "error":
			errv = v
		}
		return true
	})
	switch typ.Str {
	case "message":
	case "error":
		return ResponseResult{}, anthropicError(0, errv)
	default:
		return ResponseResult{}, fmt.Errorf("read anthropic message: %w: not a message", ErrMalformedResponse)
	}
	var tokens anthropicTokens
	tokens.update(usage)
	return ResponseResult{Usage: tokens.usage(), Model: strings.Clone(model.Str)}, nil
}

// StreamChunk implements ResponseTranslator. Body is always chunk itself:
// only an unfinished last line is copied, to be read with the next piece.
func (r *anthropicToAnthropicResponse) StreamChunk(chunk []byte, final bool) (StreamResult, error) {
	// line never fails: a line it cannot read is the client's to see.
	_ = eachSSELine(&r.carry, chunk, final, r)
	return StreamResult{
		Body:  chunk,
		Usage: r.tokens.usage(),
		Model: r.model,
		Done:  r.done,
		Err:   r.err,
	}, nil
}

// line reads usage, model, the end and errors from one line. Deltas, most
// of the stream, are recognised by their type, the first field, without
// reading further.
func (r *anthropicToAnthropicResponse) line(line []byte) error {
	data, ok := sseData(line)
	if !ok || len(data) == 0 {
		return nil
	}
	ev := gjson.Parse(stringView(data))
	switch ev.Get("type").Str {
	case "message_start":
		msg := ev.Get("message")
		if m := msg.Get("model"); m.Type == gjson.String {
			r.model = strings.Clone(m.Str)
		}
		r.tokens.update(msg.Get("usage"))
	case "message_delta":
		r.tokens.update(ev.Get("usage"))
	case "message_stop":
		r.done = true
	case "error":
		r.err = anthropicError(0, ev.Get("error"))
	}
	return nil
}

// ErrorBody implements ResponseTranslator. The server encodes the result
// with EncodeAnthropicError.
func (r *anthropicToAnthropicResponse) ErrorBody(status int, body []byte) *ProviderError {
	return anthropicErrorBody(status, body)
}
