package transform

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// openAIToOpenAIRequest forwards chat completions requests to OpenAI and
// OpenAI-compatible servers, copying the body only when a field must change.
type openAIToOpenAIRequest struct {
	target Target
}

var _ RequestTranslator = (*openAIToOpenAIRequest)(nil)

// RequestBody implements RequestTranslator.
func (t *openAIToOpenAIRequest) RequestBody(body []byte) (RequestResult, error) {
	if !t.target.BodyValidated && !gjson.ValidBytes(body) {
		return RequestResult{}, invalidf("", "request body is not valid JSON")
	}
	// A view, not a copy: nothing read from it outlives the call.
	doc := gjson.Parse(stringView(body))
	if !doc.IsObject() {
		return RequestResult{}, invalidf("", "request body must be a JSON object")
	}
	// One pass over the top-level fields instead of a scan per field.
	var model, messages, stream, streamOptions gjson.Result
	doc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			model = v
		case "messages":
			messages = v
		case "stream":
			stream = v
		case "stream_options":
			streamOptions = v
		}
		return true
	})
	if !messages.IsArray() {
		return RequestResult{}, invalidf("messages", "messages must be an array")
	}
	res := RequestResult{
		Path:   t.target.BasePath + "/chat/completions",
		Stream: stream.Bool(),
	}

	// sjson copies rather than editing in place (ReplaceInPlace is off), so
	// the client's body stays pristine for the next attempt.
	var err error
	if t.target.Model != "" && (model.Type != gjson.String || model.Str != t.target.Model) {
		if res.Body, err = sjson.SetBytes(body, "model", t.target.Model); err != nil {
			return RequestResult{}, invalidf("model", "cannot set model: %v", err)
		}
	}
	if t.target.ForceStreamUsage && res.Stream && !streamOptions.Get("include_usage").Bool() {
		src := body
		if res.Body != nil {
			src = res.Body
		}
		if !streamOptions.IsObject() && streamOptions.Exists() {
			// A non-object stream_options (null) cannot take a field.
			src, err = sjson.SetRawBytes(src, "stream_options", []byte("{}"))
			if err != nil {
				return RequestResult{}, invalidf("stream_options", "cannot set stream_options: %v", err)
			}
		}
		if res.Body, err = sjson.SetBytes(src, "stream_options.include_usage", true); err != nil {
			return RequestResult{}, invalidf("stream_options", "cannot set stream_options: %v", err)
		}
	}

	setBearerHeaders(&res, t.target.APIKey)
	return res, nil
}

// openAIToOpenAIResponse reads usage from OpenAI-format responses and passes
// them through, removing only the usage chunk the client did not ask for.
type openAIToOpenAIResponse struct {
	opts  ResponseOptions
	carry lineCarry
	out   []byte
	usage Usage
	model string
	done  bool
	// dropBlank drops the separator line after a removed event.
	dropBlank bool
}

var _ ResponseTranslator = (*openAIToOpenAIResponse)(nil)

// ResponseBody implements ResponseTranslator. The body is forwarded
// unchanged; an error object in a 2xx body is returned as a *ProviderError.
func (r *openAIToOpenAIResponse) ResponseBody(body []byte) (ResponseResult, error) {
	// A view, not a copy: only the cloned model outlives the call. One
	// pass over the top-level fields instead of a scan per field; the
	// first of duplicate keys counts, as with a lookup.
	var errObj, choices, usage, model gjson.Result
	gjson.Parse(stringView(body)).ForEach(func(k, v gjson.Result) bool {
		switch {
		case k.Str == "error" && !errObj.Exists():
			errObj = v
		case k.Str == "choices" && !choices.Exists():
			choices = v
		case k.Str == "usage" && !usage.Exists():
			usage = v
		case k.Str == "model" && !model.Exists():
			model = v
		}
		return true
	})
	if errObj.IsObject() && !choices.Exists() {
		return ResponseResult{}, openAIError(0, body)
	}
	return ResponseResult{
		Usage: openAIUsage(usage),
		Model: strings.Clone(model.String()),
	}, nil
}

// StreamChunk implements ResponseTranslator. The returned Body is chunk
// itself or a buffer reused by the next call. When the client asked for the
// usage chunk every byte passes through at once; otherwise an unfinished
// line is held back until the next piece, since it may be the usage chunk.
func (r *openAIToOpenAIResponse) StreamChunk(chunk []byte, final bool) (StreamResult, error) {
	pass := r.opts.IncludeUsage
	r.out = r.out[:0]
	useOut := false
	segStart := 0
	rest := chunk
	if r.carry.pending() {
		line, tail, ok := r.carry.complete(chunk, final)
		if ok {
			if r.line(line) && !pass {
				r.out = append(r.out, line...)
			}
			segStart = len(chunk) - len(tail)
		} else {
			segStart = len(chunk)
		}
		rest = tail
		useOut = !pass
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		start := len(chunk) - len(rest)
		line := rest[:i+1]
		rest = rest[i+1:]
		if !r.line(line) && !pass {
			r.out = append(r.out, chunk[segStart:start]...)
			segStart = start + len(line)
			useOut = true
		}
	}
	end := len(chunk) - len(rest)
	if len(rest) > 0 {
		if final {
			if r.line(rest) || pass {
				end = len(chunk)
			}
		} else {
			r.carry.keep(rest)
		}
	}
	res := StreamResult{Usage: r.usage, Model: r.model, Done: r.done}
	switch {
	case pass:
		res.Body = chunk
	case useOut:
		r.out = append(r.out, chunk[segStart:end]...)
		res.Body = r.out
	default:
		res.Body = chunk[segStart:end]
	}
	return res, nil
}

// line reads usage and model from one complete line and reports whether to
// keep it.
func (r *openAIToOpenAIResponse) line(line []byte) bool {
	if isBlankLine(line) {
		keep := !r.dropBlank
		r.dropBlank = false
		return keep
	}
	r.dropBlank = false
	data, ok := sseData(line)
	if !ok {
		return true
	}
	if string(data) == sseDone {
		r.done = true
		return true
	}
	doc := gjson.Parse(stringView(data))
	if r.model == "" {
		if m := doc.Get("model"); m.Type == gjson.String {
			r.model = strings.Clone(m.Str)
		}
	}
	u := doc.Get("usage")
	if !u.IsObject() {
		return true
	}
	r.usage = openAIUsage(u)
	if r.opts.IncludeUsage || !isEmptyArray(doc.Get("choices")) {
		return true
	}
	r.dropBlank = true
	return false
}

// isEmptyArray reports whether v is missing or an empty array.
func isEmptyArray(v gjson.Result) bool {
	if !v.Exists() {
		return true
	}
	if !v.IsArray() {
		return false
	}
	return len(strings.TrimSpace(rawInner(v.Raw))) == 0
}

// ErrorBody implements ResponseTranslator.
func (r *openAIToOpenAIResponse) ErrorBody(status int, body []byte) *ProviderError {
	return openAIError(status, body)
}
