package transform

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// Cohere's v2 Chat API (https://docs.cohere.com/reference/chat) takes
// messages, tools and tool calls in almost OpenAI's shapes; the differences
// are parameter names (p, k, stop_sequences), tool_choice values, the
// response envelope and its own stream events
// (https://docs.cohere.com/v2/docs/streaming).

// NewOpenAIToCohereRequest returns the request translator for Cohere's v2
// Chat API: POST {BasePath}/v2/chat (api_base https://api.cohere.com) with
// bearer auth.
func NewOpenAIToCohereRequest(t Target) RequestTranslator {
	return &cohereRequest{target: t}
}

// NewOpenAIToCohereResponse returns the translator of Cohere v2 chat
// responses, streams and errors into chat completions. Cohere does not echo
// the model, so model is the one the request named (Target.Model, else the
// client's); it is reported in the translated body and in the results.
func NewOpenAIToCohereResponse(o ResponseOptions, model string) ResponseTranslator {
	return &cohereResponse{opts: o, model: model, chunks: chatChunkWriter{model: model, created: o.Created}}
}

// cohereRequest translates chat completions requests into Cohere v2 chat
// requests.
type cohereRequest struct {
	target Target
}

var _ RequestTranslator = (*cohereRequest)(nil)

// RequestBody implements RequestTranslator.
func (t *cohereRequest) RequestBody(body []byte) (RequestResult, error) {
	var f chatRequest
	if err := f.parse(body, &t.target, cohereUnsupported); err != nil {
		return RequestResult{}, err
	}
	b := cohereRequestBuilder{out: make([]byte, 0, len(body)+64)}
	if err := b.build(&t.target, &f); err != nil {
		return RequestResult{}, err
	}
	res := RequestResult{Path: t.target.BasePath + "/v2/chat", Body: b.out, Stream: f.stream.Type == gjson.True}
	setBearerHeaders(&res, t.target.APIKey)
	return res, nil
}

// cohereUnsupported rejects parameters Cohere cannot honour; v2 chat has no
// way to limit a reply to one tool call, and no web search.
func cohereUnsupported(key string, v gjson.Result) error {
	if err := unsupportedSerialToolCalls(key, v, "cohere"); err != nil {
		return err
	}
	if err := unsupportedWebSearch(key, "cohere"); err != nil {
		return err
	}
	return unsupportedParam(key, v, "cohere")
}

// cohereRequestBuilder appends a Cohere v2 chat request to out.
type cohereRequestBuilder struct {
	out []byte
}

func (b *cohereRequestBuilder) build(t *Target, f *chatRequest) error {
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
	if err := b.tools(f.tools, f.toolChoice); err != nil {
		return err
	}
	param, maxTokens := f.maxTokensParam()
	for _, p := range [...]struct {
		name, to string
		v        gjson.Result
		integer  bool
	}{
		{param, "max_tokens", maxTokens, true},
		{"temperature", "temperature", f.temperature, false},
		{"top_p", "p", f.topP, false},
		{"top_k", "k", f.topK, true},
		{"seed", "seed", f.seed, true},
		{"frequency_penalty", "frequency_penalty", f.frequencyPenalty, false},
		{"presence_penalty", "presence_penalty", f.presencePenalty, false},
	} {
		if !p.v.Exists() {
			continue
		}
		if p.v.Type != gjson.Number || (p.integer && p.v.Num != float64(int64(p.v.Num))) {
			return invalidf(p.name, "%s must be a number", p.name)
		}
		b.out = append(b.out, ',', '"')
		b.out = append(b.out, p.to...)
		b.out = append(b.out, '"', ':')
		b.out = append(b.out, p.v.Raw...)
	}
	if err := b.stop(f.stop); err != nil {
		return err
	}
	if err := b.responseFormat(f.responseFormat); err != nil {
		return err
	}
	if err := b.thinking(f); err != nil {
		return err
	}
	if f.stream.Type == gjson.True {
		b.out = append(b.out, `,"stream":true`...)
	}
	b.out = append(b.out, '}')
	return nil
}

// messages writes the conversation; v2 roles and tool fields match
// OpenAI's, except that developer messages are system messages.
func (b *cohereRequestBuilder) messages(msgs gjson.Result) error {
	b.out = append(b.out, `,"messages":[`...)
	n := 0
	var err error
	msgs.ForEach(func(i, v gjson.Result) bool {
		var m chatMessage
		m.read(v)
		start := len(b.out)
		if n > 0 {
			b.out = append(b.out, ',')
		}
		var wrote bool
		switch role := m.role.Str; role {
		case "system", "developer":
			wrote, err = b.message(i, "system", m.content, false)
		case "user":
			wrote, err = b.message(i, "user", m.content, true)
		case "assistant":
			wrote, err = b.assistant(i, &m)
		case "tool":
			wrote, err = b.tool(i, &m)
		default:
			err = invalidf(fmt.Sprintf("messages[%d].role", i.Int()), "role %q is not supported by cohere models", role)
		}
		if !wrote {
			b.out = b.out[:start]
		} else {
			n++
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return invalidf("messages", "messages must contain at least one message")
	}
	b.out = append(b.out, ']')
	return nil
}

// message writes a system or user message, leaving it out when it has no
// content. Only user messages may carry images.
func (b *cohereRequestBuilder) message(i gjson.Result, role string, content gjson.Result, images bool) (bool, error) {
	mark := len(b.out)
	b.out = append(b.out, `{"role":"`...)
	b.out = append(b.out, role...)
	b.out = append(b.out, `","content":`...)
	ok, err := b.content(i, content, images)
	if !ok || err != nil {
		b.out = b.out[:mark]
		return false, err
	}
	b.out = append(b.out, '}')
	return true, nil
}

// content writes a string or an array of text (and, when images is set,
// image_url) parts, and reports whether there was any.
func (b *cohereRequestBuilder) content(i, content gjson.Result, images bool) (bool, error) {
	switch {
	case !content.Exists() || content.Type == gjson.Null:
		return false, nil
	case content.Type == gjson.String:
		if content.Str == "" {
			return false, nil
		}
		b.out = append(b.out, content.Raw...)
		return true, nil
	case !content.IsArray():
		return false, invalidf(contentParam(i), "content must be a string or an array of content parts")
	}
	n := 0
	var err error
	b.out = append(b.out, '[')
	content.ForEach(func(j, v gjson.Result) bool {
		var part contentPart
		part.read(v)
		switch typ := part.typ.Str; {
		case typ == "text":
			if part.text.Type != gjson.String {
				err = invalidf(partParam(i, j), "text parts must have a string text")
				return false
			}
			if n > 0 {
				b.out = append(b.out, ',')
			}
			n++
			b.out = append(b.out, `{"type":"text","text":`...)
			b.out = append(b.out, part.text.Raw...)
			b.out = append(b.out, '}')
		case typ == "image_url" && images:
			url, detail := part.imageURL, gjson.Result{}
			if url.IsObject() {
				url, detail = url.Get("url"), url.Get("detail")
			}
			if url.Type != gjson.String {
				err = invalidf(partParam(i, j), "image_url parts must have a string url")
				return false
			}
			if n > 0 {
				b.out = append(b.out, ',')
			}
			n++
			// Cohere takes web URLs and data URLs alike, and OpenAI's
			// detail levels (auto, low, high).
			b.out = append(b.out, `{"type":"image_url","image_url":{"url":`...)
			b.out = append(b.out, url.Raw...)
			if detail.Type == gjson.String {
				b.out = append(b.out, `,"detail":`...)
				b.out = append(b.out, detail.Raw...)
			}
			b.out = append(b.out, "}}"...)
		case typ == "refusal":
			// The model's own refusal carries nothing to continue from.
		default:
			err = invalidf(partParam(i, j), "content part type %q is not supported by cohere models here", typ)
		}
		return err == nil
	})
	b.out = append(b.out, ']')
	return n > 0, err
}

// assistant writes an assistant turn: its text and its tool calls, which
// v2 takes in OpenAI's shape (arguments as a JSON string).
func (b *cohereRequestBuilder) assistant(i gjson.Result, m *chatMessage) (bool, error) {
	b.out = append(b.out, `{"role":"assistant"`...)
	mark := len(b.out)
	b.out = append(b.out, `,"content":`...)
	text, err := b.content(i, m.content, false)
	if err != nil {
		return false, err
	}
	if !text {
		b.out = b.out[:mark]
	}
	calls := 0
	err = eachToolCall(i, m.toolCalls, func(i, j, c gjson.Result) error {
		id, name, args := c.Get("id"), c.Get("function.name"), c.Get("function.arguments")
		if id.Type != gjson.String || name.Type != gjson.String {
			return invalidf(toolCallParam(i, j, ""), "tool calls must have a string id and function.name")
		}
		if calls == 0 {
			b.out = append(b.out, `,"tool_calls":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		calls++
		b.out = append(b.out, `{"id":`...)
		b.out = append(b.out, id.Raw...)
		b.out = append(b.out, `,"type":"function","function":{"name":`...)
		b.out = append(b.out, name.Raw...)
		b.out = append(b.out, `,"arguments":`...)
		switch {
		case args.Type == gjson.String:
			b.out = append(b.out, args.Raw...)
		case args.IsObject():
			b.out = appendCompactAsString(b.out, args.Raw)
		default:
			b.out = append(b.out, `"{}"`...)
		}
		b.out = append(b.out, "}}"...)
		return nil
	})
	if err != nil {
		return false, err
	}
	if calls > 0 {
		b.out = append(b.out, ']')
	}
	b.out = append(b.out, '}')
	return text || calls > 0, nil
}

// tool writes a tool result.
func (b *cohereRequestBuilder) tool(i gjson.Result, m *chatMessage) (bool, error) {
	if m.toolCallID.Type != gjson.String {
		return false, invalidf(fmt.Sprintf("messages[%d].tool_call_id", i.Int()), "tool messages must have a string tool_call_id")
	}
	b.out = append(b.out, `{"role":"tool","tool_call_id":`...)
	b.out = append(b.out, m.toolCallID.Raw...)
	b.out = append(b.out, `,"content":`...)
	ok, err := b.content(i, m.content, false)
	if err != nil {
		return false, err
	}
	if !ok {
		// Cohere requires content; an empty result is still a result.
		b.out = append(b.out, `""`...)
	}
	b.out = append(b.out, '}')
	return true, nil
}

// tools writes tools and tool_choice. v2 has no named tool choice, so a
// named function is forced by offering only that tool with REQUIRED.
// strict on any function turns on Cohere's strict_tools.
func (b *cohereRequestBuilder) tools(tools, choice gjson.Result) error {
	only := ""
	mode := ""
	switch {
	case !choice.Exists(), choice.Str == "auto":
	case choice.Str == "required":
		mode = "REQUIRED"
	case choice.Str == "none":
		mode = "NONE"
	case choice.IsObject() && choice.Get("function.name").Type == gjson.String:
		only, mode = choice.Get("function.name").Str, "REQUIRED"
	default:
		return invalidf("tool_choice", `tool_choice must be "auto", "required", "none" or {"type":"function","function":{"name":...}}`)
	}
	if !tools.Exists() {
		// With no tools there is nothing to choose, even a named one.
		return nil
	}
	n := 0
	strict := false
	err := eachTool(tools, "cohere", func(t chatTool) error {
		if only != "" && t.name.Str != only {
			return nil
		}
		if n == 0 {
			b.out = append(b.out, `,"tools":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, `{"type":"function","function":{"name":`...)
		b.out = append(b.out, t.name.Raw...)
		if t.description.Type == gjson.String {
			b.out = append(b.out, `,"description":`...)
			b.out = append(b.out, t.description.Raw...)
		}
		b.out = append(b.out, `,"parameters":`...)
		if t.parameters.IsObject() {
			b.out = append(b.out, t.parameters.Raw...)
		} else {
			b.out = append(b.out, `{"type":"object","properties":{}}`...)
		}
		b.out = append(b.out, "}}"...)
		strict = strict || t.strict.Type == gjson.True
		return nil
	})
	if err != nil {
		return err
	}
	if only != "" && n == 0 {
		return invalidf("tool_choice", "tool_choice names function %q, which is not in tools", only)
	}
	if n > 0 {
		b.out = append(b.out, ']')
		if strict {
			b.out = append(b.out, `,"strict_tools":true`...)
		}
		if mode != "" {
			b.out = append(b.out, `,"tool_choice":"`...)
			b.out = append(b.out, mode...)
			b.out = append(b.out, '"')
		}
	}
	return nil
}

// stop writes stop as stop_sequences, which must be an array.
func (b *cohereRequestBuilder) stop(stop gjson.Result) error {
	if err := eachStop(stop, func(gjson.Result) {}); err != nil || !stop.Exists() {
		return err
	}
	b.out = append(b.out, `,"stop_sequences":`...)
	if stop.Type == gjson.String {
		b.out = append(b.out, '[')
		b.out = append(b.out, stop.Raw...)
		b.out = append(b.out, ']')
		return nil
	}
	b.out = append(b.out, stop.Raw...)
	return nil
}

// responseFormat writes JSON mode: v2 takes {"type":"json_object"} with an
// optional json_schema (https://docs.cohere.com/docs/structured-outputs).
func (b *cohereRequestBuilder) responseFormat(rf gjson.Result) error {
	if !rf.Exists() {
		return nil
	}
	switch rf.Get("type").Str {
	case "text":
	case "json_object":
		b.out = append(b.out, `,"response_format":{"type":"json_object"}`...)
	case "json_schema":
		schema := rf.Get("json_schema.schema")
		if !schema.IsObject() {
			return invalidf("response_format", "response_format json_schema must have a schema object")
		}
		b.out = append(b.out, `,"response_format":{"type":"json_object","json_schema":`...)
		b.out = append(b.out, schema.Raw...)
		b.out = append(b.out, '}')
	default:
		return invalidf("response_format", `response_format type must be "text", "json_object" or "json_schema"`)
	}
	return nil
}

// thinking writes an Anthropic-style thinking object, else
// reasoning_effort, as thinking (https://docs.cohere.com/docs/reasoning):
// budget_tokens, or the budget of the shared table, as token_budget. The
// object wins, as on Anthropic, since its budget is exact. "none" and
// "disabled" send "disabled": Cohere's reasoning models think unless told
// not to.
func (b *cohereRequestBuilder) thinking(f *chatRequest) error {
	var budget int64
	var err error
	switch {
	case f.thinking.Exists():
		_, budget, err = chatThinking(f.thinking)
	case f.reasoningEffort.Exists():
		budget, err = reasoningBudget(f.reasoningEffort)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	if budget == 0 {
		b.out = append(b.out, `,"thinking":{"type":"disabled"}`...)
		return nil
	}
	b.out = append(b.out, `,"thinking":{"type":"enabled","token_budget":`...)
	b.out = appendInt(b.out, budget)
	b.out = append(b.out, '}')
	return nil
}

// cohereFinishReason maps a v2 finish_reason through LiteLLM's
// map_finish_reason: COMPLETE, STOP_SEQUENCE and ERROR are "stop".
func cohereFinishReason(reason string) string {
	switch reason {
	case "COMPLETE", "STOP_SEQUENCE", "ERROR", "":
		return "stop"
	case "MAX_TOKENS":
		return "length"
	case "TOOL_CALL":
		return "tool_calls"
	}
	return strings.ToLower(reason)
}

// cohereUsage reads a v2 usage object: tokens counts what the model saw,
// while billed_units leaves out what Cohere does not bill (the prompt
// template), so tokens is what OpenAI would report.
func cohereUsage(u gjson.Result) Usage {
	return Usage{
		InputTokens:       u.Get("tokens.input_tokens").Int(),
		OutputTokens:      u.Get("tokens.output_tokens").Int(),
		CachedInputTokens: u.Get("cached_tokens").Int(),
	}
}

// cohereResponse translates Cohere v2 chat responses, streams and errors.
type cohereResponse struct {
	opts  ResponseOptions
	model string

	carry  lineCarry
	out    []byte
	chunks chatChunkWriter
	usage  Usage
	calls  int
	// ended is set after message-end or an error: later input is ignored.
	ended bool
	done  bool
	err   *ProviderError
}

var _ ResponseTranslator = (*cohereResponse)(nil)

// ResponseBody implements ResponseTranslator.
func (r *cohereResponse) ResponseBody(body []byte) (ResponseResult, error) {
	if !gjson.ValidBytes(body) {
		return ResponseResult{}, fmt.Errorf("read cohere response: %w: not JSON", ErrMalformedResponse)
	}
	doc := gjson.Parse(stringView(body))
	msg := doc.Get("message")
	if !msg.IsObject() {
		if m := doc.Get("message"); m.Type == gjson.String {
			return ResponseResult{}, cohereError(0, doc)
		}
		return ResponseResult{}, fmt.Errorf("read cohere response: %w: no message", ErrMalformedResponse)
	}
	usage := cohereUsage(doc.Get("usage"))
	content := msg.Get("content")

	out := make([]byte, 0, len(body)+128)
	out = append(out, `{"id":`...)
	out = appendRawString(out, doc.Get("id"))
	out = append(out, `,"object":"chat.completion","created":`...)
	out = appendInt(out, r.opts.Created)
	out = append(out, `,"model":`...)
	out = appendJSONString(out, r.model)
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	out = appendJoinedBlocks(out, content, "text", "text", false)
	out = appendJoinedBlocks(out, content, "thinking", "thinking", true)
	calls := 0
	msg.Get("tool_calls").ForEach(func(_, c gjson.Result) bool {
		out = appendToolCallOpen(out, calls, c.Get("id"))
		calls++
		out = appendRawString(out, c.Get("function.name"))
		out = append(out, `,"arguments":`...)
		if a := c.Get("function.arguments"); a.Type == gjson.String {
			out = append(out, a.Raw...)
		} else {
			out = append(out, `"{}"`...)
		}
		out = append(out, "}}"...)
		return true
	})
	if calls > 0 {
		out = append(out, ']')
	}
	out = append(out, `},"logprobs":null,`...)
	out = appendCompletionEnd(out, cohereFinishReason(doc.Get("finish_reason").Str), usage)
	return ResponseResult{Body: out, Usage: usage, Model: r.model}, nil
}

// StreamChunk implements ResponseTranslator. Body is a buffer reused by the
// next call.
func (r *cohereResponse) StreamChunk(chunk []byte, final bool) (StreamResult, error) {
	r.out = r.out[:0]
	err := eachSSELine(&r.carry, chunk, final, r)
	return StreamResult{Body: r.out, Usage: r.usage, Model: r.model, Done: r.done, Err: r.err}, err
}

// line translates one SSE line. Cohere's data payloads carry their own
// type, so event lines are not needed.
func (r *cohereResponse) line(line []byte) error {
	if r.ended {
		return nil
	}
	data, ok := sseData(line)
	if !ok || len(data) == 0 || string(data) == sseDone {
		return nil
	}
	if !gjson.ValidBytes(data) {
		r.ended = true
		r.out = appendErrorEvent(r.out, unreadableEvent())
		return fmt.Errorf("read cohere stream: %w: event is not JSON", ErrMalformedResponse)
	}
	ev := gjson.Parse(stringView(data))
	switch ev.Get("type").Str {
	case "message-start":
		r.chunks.setID(ev.Get("id"))
		r.out = r.chunks.start(r.out)
		r.out = append(r.out, `{"role":"assistant","content":""}`...)
		r.out = r.chunks.end(r.out, "")
	case "content-delta":
		c := ev.Get("delta.message.content")
		if t := c.Get("text"); t.Type == gjson.String && len(t.Raw) > 2 {
			r.out = r.chunks.delta(r.out, "content", t.Raw)
		} else if t := c.Get("thinking"); t.Type == gjson.String && len(t.Raw) > 2 {
			r.out = r.chunks.delta(r.out, "reasoning_content", t.Raw)
		}
	case "tool-call-start":
		tc := ev.Get("delta.message.tool_calls")
		r.out = r.chunks.start(r.out)
		r.out = append(r.out, `{"tool_calls":[{"index":`...)
		r.out = appendInt(r.out, int64(r.calls))
		r.out = append(r.out, `,"id":`...)
		r.out = appendRawString(r.out, tc.Get("id"))
		r.out = append(r.out, `,"type":"function","function":{"name":`...)
		r.out = appendRawString(r.out, tc.Get("function.name"))
		r.out = append(r.out, `,"arguments":`...)
		r.out = appendRawString(r.out, tc.Get("function.arguments"))
		r.out = append(r.out, "}}]}"...)
		r.out = r.chunks.end(r.out, "")
		r.calls++
	case "tool-call-delta":
		a := ev.Get("delta.message.tool_calls.function.arguments")
		if r.calls == 0 || a.Type != gjson.String || len(a.Raw) <= 2 {
			return nil
		}
		r.out = r.chunks.start(r.out)
		r.out = append(r.out, `{"tool_calls":[{"index":`...)
		r.out = appendInt(r.out, int64(r.calls-1))
		r.out = append(r.out, `,"function":{"arguments":`...)
		r.out = append(r.out, a.Raw...)
		r.out = append(r.out, "}}]}"...)
		r.out = r.chunks.end(r.out, "")
	case "message-end":
		d := ev.Get("delta")
		r.ended = true
		if e := d.Get("error"); e.Type == gjson.String && e.Str != "" {
			r.err = &ProviderError{Status: 500, Type: ErrorTypeServer, Message: e.Str}
			r.out = appendErrorEvent(r.out, r.err)
			return nil
		}
		r.usage = cohereUsage(d.Get("usage"))
		r.out = r.chunks.start(r.out)
		r.out = append(r.out, "{}"...)
		r.out = r.chunks.end(r.out, cohereFinishReason(d.Get("finish_reason").Str))
		if r.opts.IncludeUsage {
			r.out = r.chunks.usage(r.out, r.usage)
		}
		r.out = append(r.out, "data: [DONE]\n\n"...)
		r.done = true
	}
	return nil
}

// ErrorBody implements ResponseTranslator.
func (r *cohereResponse) ErrorBody(status int, body []byte) *ProviderError {
	if !gjson.ValidBytes(body) {
		return nonJSONError(status)
	}
	return cohereError(status, gjson.ParseBytes(body))
}

// cohereError maps a Cohere error body, {"message": ...} (with an id on
// newer responses), by status and message.
func cohereError(status int, doc gjson.Result) *ProviderError {
	s := clientStatus(status)
	e := &ProviderError{Status: s, Type: typeForStatus(s), Message: doc.Get("message").String()}
	if e.Message == "" {
		e.Message = fmt.Sprintf("provider returned status %d", status)
	}
	lower := strings.ToLower(e.Message)
	switch {
	case strings.Contains(lower, "too many tokens"):
		// "too many tokens: size limit exceeded by N tokens".
		e.Code, e.Type = CodeContextLengthExceeded, ErrorTypeInvalidRequest
	default:
		switch classifyCode("", e.Message) {
		case CodeContextLengthExceeded:
			e.Code, e.Type = CodeContextLengthExceeded, ErrorTypeInvalidRequest
		case CodeContentPolicy:
			e.Code = CodeContentPolicy
		}
	}
	return e
}
