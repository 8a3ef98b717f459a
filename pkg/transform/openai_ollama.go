package transform

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// Ollama's native chat API (https://github.com/ollama/ollama/blob/main/docs/api.md,
// "Generate a chat completion") takes flat string content with base64
// images beside it, sampling parameters under options, and answers with
// newline-delimited JSON objects rather than SSE; the last one has
// "done":true, the done_reason and the token counts. Ollama streams unless
// told otherwise, so stream is always sent.

// ollamaID is the completion id: Ollama gives none.
const ollamaID = "chatcmpl-ollama"

// NewOpenAIToOllamaRequest returns the request translator for Ollama's
// native chat API: POST {BasePath}/api/chat (api_base
// http://localhost:11434), with bearer auth only when an APIKey is set
// (Ollama behind an authenticating proxy, or Ollama's cloud).
//
// Ollama has no tool_choice: "auto" is what it does, and "none" is kept by
// offering no tools. A required or named choice cannot be forced (LiteLLM
// drops it, as forcing it through a template makes the server hang), so it
// is refused unless Target.DropParams.
func NewOpenAIToOllamaRequest(t Target) RequestTranslator {
	return &ollamaRequest{target: t}
}

// NewOpenAIToOllamaResponse returns the translator of Ollama chat
// responses, NDJSON streams and errors into chat completions. Tool calls
// get ids call_0, call_1, … in order, since Ollama gives none.
func NewOpenAIToOllamaResponse(o ResponseOptions) ResponseTranslator {
	return &ollamaResponse{opts: o, chunks: chatChunkWriter{id: ollamaID, created: o.Created}}
}

// ollamaRequest translates chat completions requests into Ollama chat
// requests.
type ollamaRequest struct {
	target Target
}

var _ RequestTranslator = (*ollamaRequest)(nil)

// RequestBody implements RequestTranslator.
func (t *ollamaRequest) RequestBody(body []byte) (RequestResult, error) {
	var f chatRequest
	if err := f.parse(body, &t.target, ollamaUnsupported); err != nil {
		return RequestResult{}, err
	}
	b := ollamaRequestBuilder{out: make([]byte, 0, len(body)+64)}
	if err := b.build(&t.target, &f); err != nil {
		return RequestResult{}, err
	}
	res := RequestResult{Path: t.target.BasePath + "/api/chat", Body: b.out, Stream: f.stream.Type == gjson.True}
	setBearerHeaders(&res, t.target.APIKey)
	return res, nil
}

// ollamaUnsupported rejects parameters Ollama cannot honour: a tool_choice
// that forces tools, parallel_tool_calls false, which it has no way to
// keep, and web_search_options (its chat API runs no search).
func ollamaUnsupported(key string, v gjson.Result) error {
	if key == "tool_choice" && (v.Str == "required" || v.IsObject()) {
		return invalidf(key, `tool_choice must be "auto" or "none" for ollama models, which cannot be made to call a tool`)
	}
	if err := unsupportedSerialToolCalls(key, v, "ollama"); err != nil {
		return err
	}
	if err := unsupportedWebSearch(key, "ollama"); err != nil {
		return err
	}
	return unsupportedParam(key, v, "ollama")
}

// ollamaRequestBuilder appends an Ollama chat request to out.
type ollamaRequestBuilder struct {
	out []byte
}

func (b *ollamaRequestBuilder) build(t *Target, f *chatRequest) error {
	var err error
	b.out = append(b.out, `{"model":`...)
	if b.out, err = appendModel(b.out, t, f); err != nil {
		return err
	}
	if !f.messages.IsArray() {
		return invalidf("messages", "messages must be an array")
	}
	if err := b.messages(f.messages); err != nil {
		return err
	}
	if f.tools.Exists() && !f.tools.IsArray() {
		return invalidf("tools", "tools must be an array")
	}
	switch tc := f.toolChoice; {
	case !tc.Exists(), tc.Str == "auto":
		if f.tools.Exists() {
			// Ollama takes OpenAI's tool definitions as they are.
			b.out = append(b.out, `,"tools":`...)
			b.out = append(b.out, f.tools.Raw...)
		}
	case tc.Str == "none":
		// Without tools the model cannot call one. The history's calls
		// and results need no declarations, unlike on Converse.
	default:
		return invalidf("tool_choice", `tool_choice must be "auto" or "none" for ollama models`)
	}
	if err := b.options(f); err != nil {
		return err
	}
	if err := b.format(f.responseFormat); err != nil {
		return err
	}
	if err := b.think(t, f); err != nil {
		return err
	}
	if f.keepAlive.Type == gjson.String || f.keepAlive.Type == gjson.Number {
		b.out = append(b.out, `,"keep_alive":`...)
		b.out = append(b.out, f.keepAlive.Raw...)
	}
	if f.stream.Type == gjson.True {
		b.out = append(b.out, `,"stream":true}`...)
	} else {
		b.out = append(b.out, `,"stream":false}`...)
	}
	return nil
}

// messages writes the conversation with flattened content. Tool results
// name their tool (tool_name), looked up from the assistant's calls.
func (b *ollamaRequestBuilder) messages(msgs gjson.Result) error {
	b.out = append(b.out, `,"messages":[`...)
	n := 0
	var err error
	msgs.ForEach(func(i, v gjson.Result) bool {
		var m chatMessage
		m.read(v)
		if n > 0 {
			b.out = append(b.out, ',')
		}
		n++
		role := m.role.Str
		switch role {
		case "system", "developer":
			role = "system"
		case "user", "assistant", "tool":
		default:
			err = invalidf(fmt.Sprintf("messages[%d].role", i.Int()), "role %q is not supported by ollama models", role)
			return false
		}
		b.out = append(b.out, `{"role":"`...)
		b.out = append(b.out, role...)
		b.out = append(b.out, `","content":`...)
		if err = b.content(i, m.content, role == "user"); err != nil {
			return false
		}
		switch role {
		case "assistant":
			if r := v.Get("reasoning_content"); r.Type == gjson.String && r.Str != "" {
				b.out = append(b.out, `,"thinking":`...)
				b.out = append(b.out, r.Raw...)
			}
			err = b.toolCalls(i, m.toolCalls)
		case "tool":
			if m.toolCallID.Type == gjson.String {
				if name := ollamaToolName(msgs, m.toolCallID.Str); name.Exists() {
					b.out = append(b.out, `,"tool_name":`...)
					b.out = append(b.out, name.Raw...)
				}
			}
		}
		b.out = append(b.out, '}')
		return err == nil
	})
	if err != nil {
		return err
	}
	b.out = append(b.out, ']')
	return nil
}

// ollamaToolName finds the function name of the tool call with id.
func ollamaToolName(msgs gjson.Result, id string) gjson.Result {
	var name gjson.Result
	msgs.ForEach(func(_, m gjson.Result) bool {
		m.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
			if c.Get("id").Str == id {
				name = c.Get("function.name")
			}
			return !name.Exists()
		})
		return !name.Exists()
	})
	if name.Type != gjson.String {
		return gjson.Result{}
	}
	return name
}

// content writes content as one string, text parts joined by newlines,
// followed (for user messages) by the images of image_url parts, which
// must be base64 data URLs: Ollama fetches nothing.
func (b *ollamaRequestBuilder) content(i, content gjson.Result, images bool) error {
	switch {
	case !content.Exists() || content.Type == gjson.Null:
		b.out = append(b.out, `""`...)
		return nil
	case content.Type == gjson.String:
		b.out = append(b.out, content.Raw...)
		return nil
	case !content.IsArray():
		return invalidf(contentParam(i), "content must be a string or an array of content parts")
	}
	b.out = append(b.out, '"')
	texts := 0
	var err error
	content.ForEach(func(j, v gjson.Result) bool {
		var part contentPart
		part.read(v)
		switch typ := part.typ.Str; {
		case typ == "text":
			if part.text.Type != gjson.String {
				err = invalidf(partParam(i, j), "text parts must have a string text")
				return false
			}
			if texts > 0 {
				b.out = append(b.out, `\n`...)
			}
			texts++
			b.out = append(b.out, rawInner(part.text.Raw)...)
		case typ == "image_url" && images:
		case typ == "refusal":
		default:
			err = invalidf(partParam(i, j), "content part type %q is not supported by ollama models here", typ)
		}
		return err == nil
	})
	b.out = append(b.out, '"')
	if err != nil || !images {
		return err
	}
	n := 0
	content.ForEach(func(j, v gjson.Result) bool {
		if v.Get("type").Str != "image_url" {
			return true
		}
		url := v.Get("image_url")
		if url.IsObject() {
			url = url.Get("url")
		}
		_, data, ok := strings.Cut(url.Str, ";base64,")
		if url.Type != gjson.String || !strings.HasPrefix(url.Str, "data:") || !ok {
			err = invalidf(partParam(i, j), "ollama takes images only as base64 data URLs")
			return false
		}
		if n == 0 {
			b.out = append(b.out, `,"images":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = appendJSONString(b.out, data)
		return true
	})
	if n > 0 {
		b.out = append(b.out, ']')
	}
	return err
}

// toolCalls writes an assistant's tool calls with their arguments parsed
// into objects, the form Ollama takes.
func (b *ollamaRequestBuilder) toolCalls(i, calls gjson.Result) error {
	n := 0
	err := eachToolCall(i, calls, func(i, j, c gjson.Result) error {
		name := c.Get("function.name")
		if name.Type != gjson.String {
			return invalidf(toolCallParam(i, j, ""), "tool calls must have a string function.name")
		}
		args := "{}"
		switch a := c.Get("function.arguments"); {
		case a.Type == gjson.String:
			if s := strings.TrimSpace(a.Str); s != "" {
				if !gjson.Valid(s) || !gjson.Parse(s).IsObject() {
					return invalidf(toolCallParam(i, j, ".function.arguments"), "tool call arguments must be a JSON object")
				}
				args = s
			}
		case a.IsObject():
			args = a.Raw
		}
		if n == 0 {
			b.out = append(b.out, `,"tool_calls":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, `{"function":{"name":`...)
		b.out = append(b.out, name.Raw...)
		b.out = append(b.out, `,"arguments":`...)
		b.out = append(b.out, args...)
		b.out = append(b.out, "}}"...)
		return nil
	})
	if n > 0 {
		b.out = append(b.out, ']')
	}
	return err
}

// options writes the sampling parameters Ollama takes under options
// (https://github.com/ollama/ollama/blob/main/docs/modelfile.md#valid-parameters-and-values);
// frequency_penalty becomes repeat_penalty, as in LiteLLM.
func (b *ollamaRequestBuilder) options(f *chatRequest) error {
	param, maxTokens := f.maxTokensParam()
	n := 0
	for _, p := range [...]struct {
		name, to string
		v        gjson.Result
		integer  bool
	}{
		{param, "num_predict", maxTokens, true},
		{"temperature", "temperature", f.temperature, false},
		{"top_p", "top_p", f.topP, false},
		{"top_k", "top_k", f.topK, true},
		{"seed", "seed", f.seed, true},
		{"frequency_penalty", "repeat_penalty", f.frequencyPenalty, false},
		{"presence_penalty", "presence_penalty", f.presencePenalty, false},
	} {
		if !p.v.Exists() {
			continue
		}
		if p.v.Type != gjson.Number || (p.integer && p.v.Num != float64(int64(p.v.Num))) {
			return invalidf(p.name, "%s must be a number", p.name)
		}
		b.out = appendOptionKey(b.out, n, p.to)
		n++
		b.out = append(b.out, p.v.Raw...)
	}
	switch stop := f.stop; {
	case !stop.Exists():
	case stop.Type == gjson.String:
		b.out = appendOptionKey(b.out, n, "stop")
		n++
		b.out = append(b.out, '[')
		b.out = append(b.out, stop.Raw...)
		b.out = append(b.out, ']')
	case stop.IsArray():
		b.out = appendOptionKey(b.out, n, "stop")
		n++
		b.out = append(b.out, stop.Raw...)
	default:
		return invalidf("stop", "stop must be a string or an array of strings")
	}
	if n > 0 {
		b.out = append(b.out, '}')
	}
	return nil
}

// appendOptionKey opens the options object before the first key.
func appendOptionKey(out []byte, n int, key string) []byte {
	if n == 0 {
		out = append(out, `,"options":{"`...)
	} else {
		out = append(out, `,"`...)
	}
	out = append(out, key...)
	return append(out, `":`...)
}

// format writes JSON mode: "json", or the schema itself.
func (b *ollamaRequestBuilder) format(rf gjson.Result) error {
	if !rf.Exists() {
		return nil
	}
	switch rf.Get("type").Str {
	case "text":
	case "json_object":
		b.out = append(b.out, `,"format":"json"`...)
	case "json_schema":
		schema := rf.Get("json_schema.schema")
		if !schema.IsObject() {
			return invalidf("response_format", "response_format json_schema must have a schema object")
		}
		b.out = append(b.out, `,"format":`...)
		b.out = append(b.out, schema.Raw...)
	default:
		return invalidf("response_format", `response_format type must be "text", "json_object" or "json_schema"`)
	}
	return nil
}

// think writes an Anthropic-style thinking object, else reasoning_effort,
// as think: gpt-oss models take the effort level, others a boolean
// (LiteLLM's mapping). Ollama takes no budget, so a thinking budget picks
// the level the /v1/messages chain would (messagesReasoningEffort). The
// object wins, as on Anthropic.
func (b *ollamaRequestBuilder) think(t *Target, f *chatRequest) error {
	var level string
	switch {
	case f.thinking.Exists():
		on, _, err := chatThinking(f.thinking)
		if err != nil {
			return err
		}
		level = "none"
		if on {
			if level, err = messagesReasoningEffort(f.thinking, gjson.Result{}); err != nil {
				return err
			}
		}
	case f.reasoningEffort.Exists():
		level = f.reasoningEffort.Str
	default:
		return nil
	}
	switch level {
	case "low", "medium", "high":
	case "none", "minimal":
		b.out = append(b.out, `,"think":false`...)
		return nil
	default:
		return invalidf("reasoning_effort", `reasoning_effort must be "none", "minimal", "low", "medium" or "high"`)
	}
	// The deployment's model is the one Ollama runs; the client's may be
	// a model group's name.
	model := t.Model
	if model == "" {
		model = f.model.Str
	}
	if strings.Contains(model, "gpt-oss") {
		b.out = append(b.out, `,"think":"`...)
		b.out = append(b.out, level...)
		b.out = append(b.out, '"')
		return nil
	}
	b.out = append(b.out, `,"think":true`...)
	return nil
}

// ollamaFinishReason maps done_reason; tool calls finish with "tool_calls"
// whatever Ollama says, as OpenAI clients expect.
func ollamaFinishReason(reason string, calls bool) string {
	switch {
	case calls:
		return "tool_calls"
	case reason == "length":
		return "length"
	}
	return "stop"
}

// ollamaUsage reads the token counts of a final object.
func ollamaUsage(doc gjson.Result) Usage {
	return Usage{InputTokens: doc.Get("prompt_eval_count").Int(), OutputTokens: doc.Get("eval_count").Int()}
}

// appendOllamaToolCall appends one tool call with id call_<n>; arguments
// (an object in Ollama) become a JSON string.
func appendOllamaToolCall(out []byte, n int, c gjson.Result) []byte {
	return appendOllamaToolCallFields(append(out, '{'), n, c)
}

// appendOllamaToolCallFields appends a tool call without its opening
// brace, so a stream delta can put its index first.
func appendOllamaToolCallFields(out []byte, n int, c gjson.Result) []byte {
	out = append(out, `"id":"call_`...)
	out = appendInt(out, int64(n))
	out = append(out, `","type":"function","function":{"name":`...)
	out = appendRawString(out, c.Get("function.name"))
	out = append(out, `,"arguments":`...)
	switch a := c.Get("function.arguments"); {
	case a.Type == gjson.String:
		out = append(out, a.Raw...)
	case a.IsObject():
		out = appendCompactAsString(out, a.Raw)
	default:
		out = append(out, `"{}"`...)
	}
	return append(out, "}}"...)
}

// ollamaResponse translates Ollama chat responses, NDJSON streams and
// errors.
type ollamaResponse struct {
	opts ResponseOptions

	carry   lineCarry
	out     []byte
	chunks  chatChunkWriter
	started bool
	usage   Usage
	model   string
	calls   int
	ended   bool
	done    bool
	err     *ProviderError
}

var _ ResponseTranslator = (*ollamaResponse)(nil)

// ResponseBody implements ResponseTranslator.
func (r *ollamaResponse) ResponseBody(body []byte) (ResponseResult, error) {
	if !gjson.ValidBytes(body) {
		return ResponseResult{}, fmt.Errorf("read ollama response: %w: not JSON", ErrMalformedResponse)
	}
	doc := gjson.Parse(stringView(body))
	if e := doc.Get("error"); e.Exists() {
		return ResponseResult{}, openAIError(0, body)
	}
	msg := doc.Get("message")
	if !msg.IsObject() {
		return ResponseResult{}, fmt.Errorf("read ollama response: %w: no message", ErrMalformedResponse)
	}
	usage := ollamaUsage(doc)
	model := doc.Get("model")

	out := make([]byte, 0, len(body)+128)
	out = append(out, `{"id":"`+ollamaID+`","object":"chat.completion","created":`...)
	out = appendInt(out, r.opts.Created)
	out = append(out, `,"model":`...)
	out = appendRawString(out, model)
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if c := msg.Get("content"); c.Type == gjson.String {
		out = append(out, c.Raw...)
	} else {
		out = append(out, "null"...)
	}
	if t := msg.Get("thinking"); t.Type == gjson.String && t.Str != "" {
		out = append(out, `,"reasoning_content":`...)
		out = append(out, t.Raw...)
	}
	calls := 0
	msg.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
		if calls == 0 {
			out = append(out, `,"tool_calls":[`...)
		} else {
			out = append(out, ',')
		}
		out = appendOllamaToolCall(out, calls, c)
		calls++
		return true
	})
	if calls > 0 {
		out = append(out, ']')
	}
	out = append(out, `},"logprobs":null,`...)
	out = appendCompletionEnd(out, ollamaFinishReason(doc.Get("done_reason").Str, calls > 0), usage)
	return ResponseResult{Body: out, Usage: usage, Model: strings.Clone(model.Str)}, nil
}

// StreamChunk implements ResponseTranslator: each NDJSON line becomes SSE
// chunks. Body is a buffer reused by the next call.
func (r *ollamaResponse) StreamChunk(chunk []byte, final bool) (StreamResult, error) {
	r.out = r.out[:0]
	err := eachSSELine(&r.carry, chunk, final, r)
	return StreamResult{Body: r.out, Usage: r.usage, Model: r.model, Done: r.done, Err: r.err}, err
}

func (r *ollamaResponse) line(line []byte) error {
	if r.ended || isBlankLine(line) {
		return nil
	}
	if !gjson.ValidBytes(line) {
		r.ended = true
		r.out = appendErrorEvent(r.out, &ProviderError{Status: 502, Type: ErrorTypeServer, Message: "provider sent an unreadable stream line"})
		return fmt.Errorf("read ollama stream: %w: line is not JSON", ErrMalformedResponse)
	}
	doc := gjson.Parse(stringView(line))
	if e := doc.Get("error"); e.Exists() {
		// Ollama reports failures after the first line as {"error": ...}.
		r.ended = true
		r.err = &ProviderError{Status: 500, Type: ErrorTypeServer, Message: e.String()}
		r.out = appendErrorEvent(r.out, r.err)
		return nil
	}
	if !r.started {
		r.started = true
		if m := doc.Get("model"); m.Type == gjson.String {
			r.model = strings.Clone(m.Str)
			r.chunks.model = r.model
		}
		r.out = r.chunks.start(r.out)
		r.out = append(r.out, `{"role":"assistant","content":""}`...)
		r.out = r.chunks.end(r.out, "")
	}
	msg := doc.Get("message")
	if t := msg.Get("thinking"); t.Type == gjson.String && len(t.Raw) > 2 {
		r.out = r.chunks.delta(r.out, "reasoning_content", t.Raw)
	}
	if c := msg.Get("content"); c.Type == gjson.String && len(c.Raw) > 2 {
		r.out = r.chunks.delta(r.out, "content", c.Raw)
	}
	msg.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
		r.out = r.chunks.start(r.out)
		r.out = append(r.out, `{"tool_calls":[{"index":`...)
		r.out = appendInt(r.out, int64(r.calls))
		r.out = append(r.out, ',')
		r.out = appendOllamaToolCallFields(r.out, r.calls, c)
		r.out = append(r.out, "]}"...)
		r.out = r.chunks.end(r.out, "")
		r.calls++
		return true
	})
	if doc.Get("done").Type != gjson.True {
		return nil
	}
	r.ended, r.done = true, true
	r.usage = ollamaUsage(doc)
	r.out = r.chunks.start(r.out)
	r.out = append(r.out, "{}"...)
	r.out = r.chunks.end(r.out, ollamaFinishReason(doc.Get("done_reason").Str, r.calls > 0))
	if r.opts.IncludeUsage {
		r.out = r.chunks.usage(r.out, r.usage)
	}
	r.out = append(r.out, "data: [DONE]\n\n"...)
	return nil
}

// ErrorBody implements ResponseTranslator. Ollama errors are
// {"error": "..."}, which the OpenAI reader takes.
func (r *ollamaResponse) ErrorBody(status int, body []byte) *ProviderError {
	return openAIError(status, body)
}
