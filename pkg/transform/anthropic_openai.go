package transform

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// anthropicToOpenAIRequest translates Anthropic Messages API requests into
// chat completions requests, the first stage of the messages chain for
// every provider but Anthropic.
//
// Choices that lose or change meaning:
//   - max_tokens becomes max_completion_tokens, which OpenAI recommends and
//     its reasoning models require; servers that only know max_tokens
//     ignore it.
//   - top_k has no chat equivalent and is dropped.
//   - thinking becomes a reasoning_effort bucket (see messagesReasoningEffort);
//     thinking blocks in the history are dropped, since their signatures
//     mean nothing to other providers.
//   - tool_result blocks become one tool message each, right after the
//     assistant turn; an error result's text starts with "Error: ", and
//     images in results move to the user message that follows.
//   - Server tools (web_search, bash, ...) and Files API sources are
//     rejected: no chat provider runs them.
type anthropicToOpenAIRequest struct {
	target Target
	// keepCacheControl forwards cache_control in the chat body, the chat
	// extension the Anthropic and Bedrock translators read. OpenAI itself
	// rejects unknown fields, so it is off for OpenAI-format providers.
	keepCacheControl bool
}

var _ RequestTranslator = (*anthropicToOpenAIRequest)(nil)

// messagesFields are the top-level Messages API fields the translation
// reads, collected in one pass over the body.
type messagesFields struct {
	model, maxTokens, system, messages, tools, toolChoice gjson.Result
	stopSequences, temperature, topP, metadata, stream    gjson.Result
	thinking, outputConfig                                gjson.Result
}

// RequestBody implements RequestTranslator.
func (t *anthropicToOpenAIRequest) RequestBody(body []byte) (RequestResult, error) {
	if !gjson.ValidBytes(body) {
		return RequestResult{}, invalidf("", "request body is not valid JSON")
	}
	// Every gjson result below is a substring of this view of the body;
	// none outlives the call (the output is a copy).
	doc := gjson.Parse(stringView(body))
	if !doc.IsObject() {
		return RequestResult{}, invalidf("", "request body must be a JSON object")
	}
	var f messagesFields
	var err error
	doc.ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.Null {
			return true
		}
		switch k.Str {
		case "model":
			f.model = v
		case "max_tokens":
			f.maxTokens = v
		case "system":
			f.system = v
		case "messages":
			f.messages = v
		case "tools":
			f.tools = v
		case "tool_choice":
			f.toolChoice = v
		case "stop_sequences":
			f.stopSequences = v
		case "temperature":
			f.temperature = v
		case "top_p":
			f.topP = v
		case "metadata":
			f.metadata = v
		case "stream":
			f.stream = v
		case "thinking":
			f.thinking = v
		case "output_config":
			f.outputConfig = v
		case "mcp_servers":
			// Remote MCP servers are called by Anthropic's own platform.
			if !isEmptyArray(v) {
				err = invalidf(k.Str, "mcp_servers: only anthropic models support remote MCP servers")
			}
		}
		return err == nil
	})
	if err != nil {
		return RequestResult{}, err
	}

	b := messagesChatBuilder{out: make([]byte, 0, len(body)+256), keepCC: t.keepCacheControl}
	if err := b.build(&t.target, &f); err != nil {
		return RequestResult{}, err
	}
	return RequestResult{
		Path:       t.target.BasePath + "/chat/completions",
		Body:       b.out,
		Stream:     f.stream.Type == gjson.True,
		SetHeaders: []Header{{Key: "content-type", Value: "application/json"}},
		// The client's Anthropic headers mean nothing to other providers.
		RemoveHeaders: []string{"anthropic-version", "anthropic-beta"},
	}, nil
}

// messagesChatBuilder appends a chat completions body to out.
type messagesChatBuilder struct {
	out    []byte
	keepCC bool
	// msgs counts the chat messages written, for separators.
	msgs int
	// pending are the tool_use ids of the previous assistant turn, which
	// the next user turn must answer.
	pending   []messagesPendingToolUse
	pendingAt int64
	// parts counts the parts of the open user message; -1 when none is
	// open.
	parts int
	// calls is scratch space for an assistant turn's tool calls.
	calls []byte
}

type messagesPendingToolUse struct {
	id       string
	answered bool
}

func (b *messagesChatBuilder) build(t *Target, f *messagesFields) error {
	b.out = append(b.out, `{"model":`...)
	switch {
	case t.Model != "":
		b.out = appendJSONString(b.out, t.Model)
	case f.model.Type == gjson.String && f.model.Str != "":
		b.out = append(b.out, f.model.Raw...)
	default:
		return invalidf("model", "model: Field required")
	}

	switch {
	case !f.maxTokens.Exists():
		return invalidf("max_tokens", "max_tokens: Field required")
	case f.maxTokens.Type != gjson.Number || f.maxTokens.Float() != float64(f.maxTokens.Int()):
		return invalidf("max_tokens", "max_tokens: Input should be a valid integer")
	case f.maxTokens.Int() < 1:
		return invalidf("max_tokens", "max_tokens: Input should be greater than or equal to 1")
	}

	b.out = append(b.out, `,"messages":[`...)
	if err := b.system(f.system); err != nil {
		return err
	}
	if err := b.messages(f.messages); err != nil {
		return err
	}
	b.out = append(b.out, ']')

	b.out = append(b.out, `,"max_completion_tokens":`...)
	b.out = appendInt(b.out, f.maxTokens.Int())
	if err := b.stop(f.stopSequences); err != nil {
		return err
	}
	for _, p := range [...]struct {
		name string
		v    gjson.Result
	}{{"temperature", f.temperature}, {"top_p", f.topP}} {
		if !p.v.Exists() {
			continue
		}
		if p.v.Type != gjson.Number {
			return invalidf(p.name, "%s: Input should be a valid number", p.name)
		}
		b.out = append(b.out, ',', '"')
		b.out = append(b.out, p.name...)
		b.out = append(b.out, '"', ':')
		b.out = append(b.out, p.v.Raw...)
	}
	if u := f.metadata.Get("user_id"); u.Type == gjson.String && u.Str != "" {
		b.out = append(b.out, `,"user":`...)
		b.out = append(b.out, u.Raw...)
	}
	effort, err := messagesReasoningEffort(f.thinking, f.outputConfig)
	if err != nil {
		return err
	}
	if effort != "" {
		b.out = append(b.out, `,"reasoning_effort":"`...)
		b.out = append(b.out, effort...)
		b.out = append(b.out, '"')
	}
	if err := b.outputFormat(f.outputConfig.Get("format")); err != nil {
		return err
	}
	if err := b.tools(f.tools, f.toolChoice); err != nil {
		return err
	}
	if f.stream.Type == gjson.True {
		// Usage is needed for message_delta's token counts.
		b.out = append(b.out, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	b.out = append(b.out, '}')
	return nil
}

// messagesReasoningEffort maps thinking to an OpenAI reasoning_effort. Budgets are
// bucketed the way Claude Code asks for them: "think" (4,000 tokens) is low,
// "think hard" (10,000) medium, "ultrathink" (31,999) high; that is, below
// 4,096 low, below 16,384 medium, high above. Adaptive thinking, and
// requests without thinking, use output_config.effort when given (xhigh and
// max become high, which every reasoning model accepts); otherwise the
// model's default applies.
func messagesReasoningEffort(thinking, outputConfig gjson.Result) (string, error) {
	if thinking.Exists() {
		if !thinking.IsObject() {
			return "", invalidf("thinking", "thinking: Input should be an object")
		}
		switch typ := thinking.Get("type").Str; typ {
		case "enabled":
			switch budget := thinking.Get("budget_tokens").Int(); {
			case budget < 4096:
				return "low", nil
			case budget < 16384:
				return "medium", nil
			default:
				return "high", nil
			}
		case "disabled":
			return "", nil
		case "adaptive":
		default:
			return "", invalidf("thinking.type", "thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
		}
	}
	switch e := outputConfig.Get("effort"); e.Str {
	case "":
		return "", nil
	case "low", "medium", "high":
		return e.Str, nil
	case "xhigh", "max":
		return "high", nil
	}
	return "", invalidf("output_config.effort", "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
}

// outputFormat writes output_config.format (structured outputs) as a
// json_schema response_format.
func (b *messagesChatBuilder) outputFormat(format gjson.Result) error {
	if !format.Exists() {
		return nil
	}
	schema := format.Get("schema")
	if format.Get("type").Str != "json_schema" || !schema.IsObject() {
		return invalidf("output_config.format", "output_config.format: must be {\"type\":\"json_schema\",\"schema\":{...}}")
	}
	b.out = append(b.out, `,"response_format":{"type":"json_schema","json_schema":{"name":"output","schema":`...)
	b.out = append(b.out, schema.Raw...)
	b.out = append(b.out, "}}"...)
	return nil
}

// system writes the system prompt as one system message. Text blocks are
// joined into a string, which every chat server accepts (some refuse
// arrays in system messages), unless a block carries a cache_control that
// is kept: the breakpoints then need the blocks.
func (b *messagesChatBuilder) system(system gjson.Result) error {
	switch {
	case !system.Exists():
		return nil
	case system.Type == gjson.String:
		if system.Str == "" {
			return nil
		}
		b.message()
		b.out = append(b.out, `{"role":"system","content":`...)
		b.out = append(b.out, system.Raw...)
		b.out = append(b.out, '}')
		return nil
	case !system.IsArray():
		return invalidf("system", "system: Input should be a valid string or list of text blocks")
	}
	asBlocks := false
	var err error
	system.ForEach(func(i, v gjson.Result) bool {
		var blk messagesBlock
		blk.read(v)
		if blk.typ.Str != "text" || blk.text.Type != gjson.String {
			err = invalidf(fmt.Sprintf("system.%d", i.Int()), "system.%d: system blocks must be text blocks", i.Int())
			return false
		}
		asBlocks = asBlocks || (b.keepCC && blk.cacheControl.IsObject())
		return true
	})
	if err != nil {
		return err
	}
	n := 0
	system.ForEach(func(_, v gjson.Result) bool {
		var blk messagesBlock
		blk.read(v)
		if blk.text.Str == "" {
			return true
		}
		if n == 0 {
			b.message()
			b.out = append(b.out, `{"role":"system","content":`...)
			if asBlocks {
				b.out = append(b.out, '[')
			} else {
				b.out = append(b.out, '"')
			}
		} else if asBlocks {
			b.out = append(b.out, ',')
		} else {
			b.out = append(b.out, `\n\n`...)
		}
		n++
		if asBlocks {
			b.textPart(blk.text.Raw, blk.cacheControl)
		} else {
			b.out = append(b.out, rawInner(blk.text.Raw)...)
		}
		return true
	})
	switch {
	case n == 0:
	case asBlocks:
		b.out = append(b.out, "]}"...)
	default:
		b.out = append(b.out, `"}`...)
	}
	return nil
}

// message starts a chat message, writing its separator.
func (b *messagesChatBuilder) message() {
	if b.msgs > 0 {
		b.out = append(b.out, ',')
	}
	b.msgs++
}

// messagesBlock holds the fields of a Messages API content block, read in one scan.
type messagesBlock struct {
	typ, text, source, id, name, input, toolUseID, content gjson.Result
	isError, cacheControl                                  gjson.Result
}

func (blk *messagesBlock) read(v gjson.Result) {
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			blk.typ = v
		case "text":
			blk.text = v
		case "source":
			blk.source = v
		case "id":
			blk.id = v
		case "name":
			blk.name = v
		case "input":
			blk.input = v
		case "tool_use_id":
			blk.toolUseID = v
		case "content":
			blk.content = v
		case "is_error":
			blk.isError = v
		case "cache_control":
			blk.cacheControl = v
		}
		return true
	})
}

func (b *messagesChatBuilder) messages(msgs gjson.Result) error {
	if !msgs.IsArray() {
		if !msgs.Exists() {
			return invalidf("messages", "messages: Field required")
		}
		return invalidf("messages", "messages: Input should be a valid list")
	}
	var err error
	n := 0
	msgs.ForEach(func(i, m gjson.Result) bool {
		n++
		var role, content gjson.Result
		m.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "role":
				role = v
			case "content":
				content = v
			}
			return true
		})
		idx := i.Int()
		if content.Type != gjson.String && !content.IsArray() {
			err = invalidf(fmt.Sprintf("messages.%d.content", idx), "messages.%d.content: Input should be a valid string or list of content blocks", idx)
			return false
		}
		switch role.Str {
		case "user":
			err = b.user(idx, content)
		case "assistant":
			if err = b.checkAnswered(); err == nil {
				err = b.assistant(idx, content)
			}
		default:
			err = invalidf(fmt.Sprintf("messages.%d.role", idx), "messages.%d.role: Input should be 'user' or 'assistant'", idx)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return invalidf("messages", "messages: at least one message is required")
	}
	return b.checkAnswered()
}

// checkAnswered fails when the previous assistant turn called tools that
// the turn after it did not answer; OpenAI would refuse the request too.
func (b *messagesChatBuilder) checkAnswered() error {
	var missing []string
	for _, p := range b.pending {
		if !p.answered {
			missing = append(missing, p.id)
		}
	}
	b.pending = b.pending[:0]
	if len(missing) == 0 {
		return nil
	}
	return invalidf(fmt.Sprintf("messages.%d", b.pendingAt),
		"messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
		b.pendingAt, strings.Join(missing, ", "))
}

// user writes a user turn: its tool results first, as tool messages, then
// a user message with the remaining blocks.
func (b *messagesChatBuilder) user(idx int64, content gjson.Result) error {
	if content.Type == gjson.String {
		if err := b.checkAnswered(); err != nil {
			return err
		}
		b.message()
		b.out = append(b.out, `{"role":"user","content":`...)
		b.out = append(b.out, content.Raw...)
		b.out = append(b.out, '}')
		return nil
	}
	var err error
	// Most user turns hold no tool results; skip their first scan.
	if strings.Contains(content.Raw, `"tool_result"`) {
		content.ForEach(func(j, v gjson.Result) bool {
			var blk messagesBlock
			blk.read(v)
			if blk.typ.Str == "tool_result" {
				err = b.toolResult(idx, j.Int(), &blk)
			}
			return err == nil
		})
		if err != nil {
			return err
		}
	}
	if err := b.checkAnswered(); err != nil {
		return err
	}
	b.parts = -1
	content.ForEach(func(j, v gjson.Result) bool {
		var blk messagesBlock
		blk.read(v)
		err = b.userBlock(idx, j.Int(), &blk)
		return err == nil
	})
	if err != nil {
		return err
	}
	if b.parts >= 0 {
		b.out = append(b.out, "]}"...)
	}
	return nil
}

// part starts a part of the user message, opening the message first.
func (b *messagesChatBuilder) part() {
	if b.parts < 0 {
		b.message()
		b.out = append(b.out, `{"role":"user","content":[`...)
		b.parts = 0
	}
	if b.parts > 0 {
		b.out = append(b.out, ',')
	}
	b.parts++
}

func messagesBlockParam(i, j int64) string { return fmt.Sprintf("messages.%d.content.%d", i, j) }

func (b *messagesChatBuilder) userBlock(i, j int64, blk *messagesBlock) error {
	switch typ := blk.typ.Str; typ {
	case "text":
		if blk.text.Type != gjson.String {
			return invalidf(messagesBlockParam(i, j), "%s.text: Input should be a valid string", messagesBlockParam(i, j))
		}
		if blk.text.Str != "" {
			b.part()
			b.textPart(blk.text.Raw, blk.cacheControl)
		}
	case "image":
		b.part()
		return b.imagePart(messagesBlockParam(i, j), blk)
	case "document":
		b.part()
		return b.documentPart(messagesBlockParam(i, j), blk)
	case "tool_result":
		// Written as a tool message already; chat tool messages carry only
		// text, so its images join the user message.
		if !blk.content.IsArray() {
			return nil
		}
		var err error
		blk.content.ForEach(func(k, v gjson.Result) bool {
			var inner messagesBlock
			inner.read(v)
			if inner.typ.Str == "image" {
				b.part()
				err = b.imagePart(fmt.Sprintf("%s.content.%d", messagesBlockParam(i, j), k.Int()), &inner)
			}
			return err == nil
		})
		return err
	case "thinking", "redacted_thinking":
		return invalidf(messagesBlockParam(i, j), "%s: %s blocks may only appear in assistant messages", messagesBlockParam(i, j), typ)
	default:
		return invalidf(messagesBlockParam(i, j), "%s: content block type %q is not supported by this model", messagesBlockParam(i, j), typ)
	}
	return nil
}

// textPart appends a text part; text is a raw JSON string literal.
func (b *messagesChatBuilder) textPart(text string, cc gjson.Result) {
	b.out = append(b.out, `{"type":"text","text":`...)
	b.out = append(b.out, text...)
	b.closePart(cc)
}

// closePart closes a part, with its cache_control when kept.
func (b *messagesChatBuilder) closePart(cc gjson.Result) {
	if b.keepCC && cc.IsObject() {
		b.out = append(b.out, `,"cache_control":`...)
		b.out = append(b.out, cc.Raw...)
	}
	b.out = append(b.out, '}')
}

// imagePart appends an image as an image_url part: base64 sources as data
// URLs, URL sources as they are.
func (b *messagesChatBuilder) imagePart(param string, blk *messagesBlock) error {
	var typ, mediaType, data, url gjson.Result
	blk.source.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			typ = v
		case "media_type":
			mediaType = v
		case "data":
			data = v
		case "url":
			url = v
		}
		return true
	})
	b.out = append(b.out, `{"type":"image_url","image_url":{"url":`...)
	switch {
	case typ.Str == "base64" && mediaType.Type == gjson.String && data.Type == gjson.String:
		b.out = append(b.out, `"data:`...)
		b.out = append(b.out, rawInner(mediaType.Raw)...)
		b.out = append(b.out, `;base64,`...)
		b.out = append(b.out, rawInner(data.Raw)...)
		b.out = append(b.out, '"')
	case typ.Str == "url" && url.Type == gjson.String:
		b.out = append(b.out, url.Raw...)
	default:
		return invalidf(param, "%s.source: image sources must be base64 or url", param)
	}
	b.out = append(b.out, '}')
	b.closePart(blk.cacheControl)
	return nil
}

// documentPart appends a document: a base64 PDF as a file part (OpenAI's
// form for PDFs), plain text as a text part.
func (b *messagesChatBuilder) documentPart(param string, blk *messagesBlock) error {
	src := blk.source
	mediaType, data := src.Get("media_type"), src.Get("data")
	switch src.Get("type").Str {
	case "base64":
		if mediaType.Str != "application/pdf" || data.Type != gjson.String {
			return invalidf(param, "%s.source: base64 documents must be application/pdf", param)
		}
		b.out = append(b.out, `{"type":"file","file":{"filename":"document.pdf","file_data":"data:application/pdf;base64,`...)
		b.out = append(b.out, rawInner(data.Raw)...)
		b.out = append(b.out, `"}`...)
	case "text":
		if data.Type != gjson.String {
			return invalidf(param, "%s.source.data: Input should be a valid string", param)
		}
		b.out = append(b.out, `{"type":"text","text":`...)
		b.out = append(b.out, data.Raw...)
	default:
		return invalidf(param, "%s.source: only base64 PDF and plain text documents are supported by this model", param)
	}
	b.closePart(blk.cacheControl)
	return nil
}

// toolResult writes a tool_result block as a tool message.
func (b *messagesChatBuilder) toolResult(i, j int64, blk *messagesBlock) error {
	param := messagesBlockParam(i, j)
	id := blk.toolUseID
	if id.Type != gjson.String {
		return invalidf(param+".tool_use_id", "%s.tool_use_id: Field required", param)
	}
	matched := false
	for k := range b.pending {
		if b.pending[k].id == id.Str && !b.pending[k].answered {
			b.pending[k].answered, matched = true, true
			break
		}
	}
	if !matched {
		return invalidf(param, "%s: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", param, id.Str)
	}
	b.message()
	b.out = append(b.out, `{"role":"tool","tool_call_id":`...)
	b.out = append(b.out, id.Raw...)
	b.out = append(b.out, `,"content":"`...)
	if blk.isError.Type == gjson.True {
		b.out = append(b.out, "Error: "...)
	}
	cc := blk.cacheControl
	switch c := blk.content; {
	case !c.Exists():
	case c.Type == gjson.String:
		b.out = append(b.out, rawInner(c.Raw)...)
	case c.IsArray():
		n := 0
		var err error
		c.ForEach(func(k, v gjson.Result) bool {
			var inner messagesBlock
			inner.read(v)
			switch inner.typ.Str {
			case "text":
				if inner.text.Type != gjson.String {
					err = invalidf(param, "%s.content.%d.text: Input should be a valid string", param, k.Int())
					return false
				}
				if n > 0 {
					b.out = append(b.out, `\n`...)
				}
				n++
				b.out = append(b.out, rawInner(inner.text.Raw)...)
				if !cc.Exists() {
					cc = inner.cacheControl
				}
			case "image":
				// Moved to the user message by userBlock.
			default:
				err = invalidf(param, "%s.content.%d: tool results may contain only text and image blocks", param, k.Int())
			}
			return err == nil
		})
		if err != nil {
			return err
		}
	default:
		return invalidf(param+".content", "%s.content: Input should be a valid string or list of content blocks", param)
	}
	b.out = append(b.out, '"')
	b.closePart(cc)
	return nil
}

// assistant writes an assistant turn: its text joined into the content
// string, its tool_use blocks as tool calls. Thinking is dropped.
func (b *messagesChatBuilder) assistant(idx int64, content gjson.Result) error {
	if content.Type == gjson.String {
		b.message()
		b.out = append(b.out, `{"role":"assistant","content":`...)
		b.out = append(b.out, content.Raw...)
		b.out = append(b.out, '}')
		return nil
	}
	// One scan: text goes straight into the content string, tool calls
	// into a scratch buffer appended after it.
	mark, msgs := len(b.out), b.msgs
	b.message()
	b.out = append(b.out, `{"role":"assistant","content":"`...)
	textStart := len(b.out)
	b.calls = b.calls[:0]
	calls := 0
	var err error
	content.ForEach(func(j, v gjson.Result) bool {
		var blk messagesBlock
		blk.read(v)
		switch typ := blk.typ.Str; typ {
		case "text":
			if blk.text.Type != gjson.String {
				err = invalidf(messagesBlockParam(idx, j.Int()), "%s.text: Input should be a valid string", messagesBlockParam(idx, j.Int()))
				return false
			}
			b.out = append(b.out, rawInner(blk.text.Raw)...)
		case "tool_use":
			if blk.id.Type != gjson.String || blk.name.Type != gjson.String || !blk.input.IsObject() {
				err = invalidf(messagesBlockParam(idx, j.Int()), "%s: tool_use blocks need a string id and name and an object input", messagesBlockParam(idx, j.Int()))
				return false
			}
			if calls > 0 {
				b.calls = append(b.calls, ',')
			}
			calls++
			b.pending = append(b.pending, messagesPendingToolUse{id: blk.id.Str})
			b.calls = append(b.calls, `{"id":`...)
			b.calls = append(b.calls, blk.id.Raw...)
			b.calls = append(b.calls, `,"type":"function","function":{"name":`...)
			b.calls = append(b.calls, blk.name.Raw...)
			b.calls = append(b.calls, `,"arguments":`...)
			b.calls = appendCompactAsString(b.calls, blk.input.Raw)
			b.calls = append(b.calls, "}}"...)
		case "thinking", "redacted_thinking":
		default:
			err = invalidf(messagesBlockParam(idx, j.Int()), "%s: content block type %q is not supported in assistant messages by this model", messagesBlockParam(idx, j.Int()), typ)
			return false
		}
		return true
	})
	hasText := len(b.out) > textStart
	switch {
	case err != nil:
		return err
	case !hasText && calls == 0:
		// Nothing chat can carry (only thinking): no message.
		b.out, b.msgs = b.out[:mark], msgs
		return nil
	case hasText:
		b.out = append(b.out, '"')
	default:
		b.out = append(b.out[:textStart-1], "null"...)
	}
	if calls > 0 {
		b.pendingAt = idx
		b.out = append(b.out, `,"tool_calls":[`...)
		b.out = append(b.out, b.calls...)
		b.out = append(b.out, ']')
	}
	b.out = append(b.out, '}')
	return nil
}

// stop writes stop_sequences as stop.
func (b *messagesChatBuilder) stop(seqs gjson.Result) error {
	if !seqs.Exists() {
		return nil
	}
	if !seqs.IsArray() {
		return invalidf("stop_sequences", "stop_sequences: Input should be a valid list")
	}
	n := 0
	var err error
	seqs.ForEach(func(i, s gjson.Result) bool {
		if s.Type != gjson.String {
			err = invalidf("stop_sequences", "stop_sequences.%d: Input should be a valid string", i.Int())
			return false
		}
		if n == 0 {
			b.out = append(b.out, `,"stop":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, s.Raw...)
		return true
	})
	if n > 0 {
		b.out = append(b.out, ']')
	}
	return err
}

// tools writes tools as functions and tool_choice. Without tools there is
// nothing to choose, and OpenAI refuses tool_choice and
// parallel_tool_calls alone.
func (b *messagesChatBuilder) tools(tools, choice gjson.Result) error {
	if !tools.Exists() {
		return nil
	}
	if !tools.IsArray() {
		return invalidf("tools", "tools: Input should be a valid list")
	}
	n := 0
	var err error
	tools.ForEach(func(i, v gjson.Result) bool {
		err = b.tool(i.Int(), v, n)
		n++
		return err == nil
	})
	if err != nil || n == 0 {
		return err
	}
	b.out = append(b.out, ']')
	if !choice.Exists() {
		return nil
	}
	if !choice.IsObject() {
		return invalidf("tool_choice", "tool_choice: Input should be an object")
	}
	b.out = append(b.out, `,"tool_choice":`...)
	switch choice.Get("type").Str {
	case "auto":
		b.out = append(b.out, `"auto"`...)
	case "any":
		b.out = append(b.out, `"required"`...)
	case "none":
		b.out = append(b.out, `"none"`...)
	case "tool":
		name := choice.Get("name")
		if name.Type != gjson.String {
			return invalidf("tool_choice.name", "tool_choice.name: Field required")
		}
		b.out = append(b.out, `{"type":"function","function":{"name":`...)
		b.out = append(b.out, name.Raw...)
		b.out = append(b.out, "}}"...)
	default:
		return invalidf("tool_choice.type", "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
	}
	if choice.Get("disable_parallel_tool_use").Type == gjson.True {
		b.out = append(b.out, `,"parallel_tool_calls":false`...)
	}
	return nil
}

func (b *messagesChatBuilder) tool(i int64, v gjson.Result, n int) error {
	var typ, name, desc, schema, strict, cc gjson.Result
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			typ = v
		case "name":
			name = v
		case "description":
			desc = v
		case "input_schema":
			schema = v
		case "strict":
			strict = v
		case "cache_control":
			cc = v
		}
		return true
	})
	if typ.Exists() && typ.Str != "custom" {
		return invalidf(fmt.Sprintf("tools.%d.type", i), "tools.%d: %q is an Anthropic server tool, which only anthropic models support", i, typ.String())
	}
	if name.Type != gjson.String || name.Str == "" {
		return invalidf(fmt.Sprintf("tools.%d.name", i), "tools.%d.name: Field required", i)
	}
	if !schema.IsObject() {
		return invalidf(fmt.Sprintf("tools.%d.input_schema", i), "tools.%d.input_schema: Input should be an object", i)
	}
	if n == 0 {
		b.out = append(b.out, `,"tools":[`...)
	} else {
		b.out = append(b.out, ',')
	}
	b.out = append(b.out, `{"type":"function","function":{"name":`...)
	b.out = append(b.out, name.Raw...)
	if desc.Type == gjson.String {
		b.out = append(b.out, `,"description":`...)
		b.out = append(b.out, desc.Raw...)
	}
	b.out = append(b.out, `,"parameters":`...)
	b.out = append(b.out, schema.Raw...)
	if strict.Type == gjson.True {
		b.out = append(b.out, `,"strict":true`...)
	}
	b.out = append(b.out, '}')
	b.closePart(cc)
	return nil
}

// anthropicToOpenAIResponse translates chat completions, chunk streams and
// errors into Anthropic messages, event streams and errors: the last stage
// of the messages chain.
//
// Choices:
//   - The message id is "msg_" plus the chat id without its "chatcmpl-"
//     prefix, so one completion always gets the same id.
//   - reasoning_content (or reasoning, as some servers name it) becomes a
//     thinking block with an empty signature: the signature cannot be
//     made, so Anthropic would refuse the block if a client sent it back
//     there. Chat translators drop it.
//   - Tool call arguments that are not a JSON object become input {}: the
//     client's schema check then reports the missing fields to the model,
//     while a raw string under an invented key would reach the tool.
//   - finish_reason stop becomes stop_sequence only when the server names
//     the matched sequence in the choice's stop_reason (vLLM does; OpenAI
//     does not), and tool_use whenever tools were called, since some
//     servers report stop for tool calls.
//   - Usage: input_tokens excludes cached and cache-write tokens, as
//     Anthropic counts them.
type anthropicToOpenAIResponse struct {
	opts ResponseOptions

	// Stream state.
	carry lineCarry
	out   []byte
	usage Usage
	model string
	// started is set once message_start is sent.
	started bool
	// open is the open content block.
	open messagesOpenBlock
	// blocks is the next content block index.
	blocks int
	tools  []messagesToolCall
	// finish is the chat finish_reason, copied; "" until one arrives.
	finish  string
	stopSeq []byte
	// ended is set after message_stop or an error: later input is ignored.
	ended bool
	done  bool
	err   *ProviderError
}

var _ ResponseTranslator = (*anthropicToOpenAIResponse)(nil)

// ResponseBody implements ResponseTranslator.
func (r *anthropicToOpenAIResponse) ResponseBody(body []byte) (ResponseResult, error) {
	if !gjson.ValidBytes(body) {
		return ResponseResult{}, fmt.Errorf("read chat completion: %w: not JSON", ErrMalformedResponse)
	}
	// A view, not a copy: only the cloned model outlives the call.
	doc := gjson.Parse(stringView(body))
	var id, model, choices, usage, errv gjson.Result
	doc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			id = v
		case "model":
			model = v
		case "choices":
			choices = v
		case "usage":
			usage = v
		case "error":
			errv = v
		}
		return true
	})
	if errv.IsObject() && !choices.Exists() {
		return ResponseResult{}, openAIError(0, body)
	}
	if !choices.IsArray() {
		return ResponseResult{}, fmt.Errorf("read chat completion: %w: no choices", ErrMalformedResponse)
	}
	var c messagesChatChoice
	c.read(choices.Get("0"), "message")
	u := openAIUsage(usage)

	out := make([]byte, 0, len(body)+256)
	out = append(out, `{"id":`...)
	out = appendMessagesID(out, id.Str)
	out = append(out, `,"type":"message","role":"assistant","model":`...)
	out = appendRawString(out, model)
	out = append(out, `,"content":[`...)
	n := 0
	sep := func() {
		if n > 0 {
			out = append(out, ',')
		}
		n++
	}
	if t := c.reasoning(); t.Type == gjson.String && t.Str != "" {
		sep()
		out = append(out, `{"type":"thinking","thinking":`...)
		out = append(out, t.Raw...)
		out = append(out, `,"signature":""}`...)
	}
	text := c.content
	if text.Type != gjson.String || text.Str == "" {
		text = c.refusal
	}
	if text.Type == gjson.String && text.Str != "" {
		sep()
		out = append(out, `{"type":"text","text":`...)
		out = append(out, text.Raw...)
		out = append(out, '}')
	}
	calls := 0
	c.toolCalls.ForEach(func(_, tc gjson.Result) bool {
		id, name, args := tc.Get("id"), tc.Get("function.name"), tc.Get("function.arguments")
		sep()
		calls++
		out = append(out, `{"type":"tool_use","id":`...)
		if id.Type == gjson.String && id.Str != "" {
			out = append(out, id.Raw...)
		} else {
			out = appendMessagesToolUseID(out, calls-1)
		}
		out = append(out, `,"name":`...)
		out = appendRawString(out, name)
		out = append(out, `,"input":`...)
		out = appendMessagesToolInput(out, args)
		out = append(out, '}')
		return true
	})
	stopSeq := c.stopSequence()
	out = append(out, `],"stop_reason":"`...)
	out = append(out, messagesStopReason(c.finish.Str, calls > 0, stopSeq.Exists())...)
	out = append(out, `","stop_sequence":`...)
	if stopSeq.Exists() {
		out = append(out, stopSeq.Raw...)
	} else {
		out = append(out, "null"...)
	}
	out = append(out, `,"usage":`...)
	out = appendMessagesUsage(out, u)
	out = append(out, '}')
	return ResponseResult{Body: out, Usage: u, Model: strings.Clone(model.Str)}, nil
}

// messagesChatChoice holds the fields of a choice and its message (or delta), read
// in one scan each.
type messagesChatChoice struct {
	finish, stopReason, content, reasoningContent, reasoningField gjson.Result
	refusal, toolCalls                                            gjson.Result
}

// read reads choice, whose message is under key ("message" or "delta").
func (c *messagesChatChoice) read(choice gjson.Result, key string) {
	var msg gjson.Result
	choice.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case key:
			msg = v
		case "finish_reason":
			c.finish = v
		case "stop_reason":
			c.stopReason = v
		}
		return true
	})
	msg.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "content":
			c.content = v
		case "reasoning_content":
			c.reasoningContent = v
		case "reasoning":
			c.reasoningField = v
		case "refusal":
			c.refusal = v
		case "tool_calls":
			c.toolCalls = v
		}
		return true
	})
}

// reasoning is the reasoning text, under either name servers use.
func (c *messagesChatChoice) reasoning() gjson.Result {
	if c.reasoningContent.Type == gjson.String {
		return c.reasoningContent
	}
	return c.reasoningField
}

// stopSequence is the stop sequence a server says it matched, if any.
func (c *messagesChatChoice) stopSequence() gjson.Result {
	if c.finish.Str == "stop" && c.stopReason.Type == gjson.String && c.stopReason.Str != "" {
		return c.stopReason
	}
	return gjson.Result{}
}

// messagesStopReason maps a chat finish_reason to a stop_reason.
func messagesStopReason(finish string, toolUse, stopSequence bool) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	switch {
	case toolUse:
		return "tool_use"
	case stopSequence:
		return "stop_sequence"
	}
	return "end_turn"
}

// appendMessagesID appends the message id for a chat id as a JSON string.
// An id that already is a message id (a chat translated from Anthropic)
// is kept.
func appendMessagesID(out []byte, chatID string) []byte {
	id := strings.TrimPrefix(chatID, "chatcmpl-")
	if !strings.HasPrefix(id, "msg_") {
		out = append(out, `"msg_`...)
	} else {
		out = append(out, '"')
	}
	if id == "" {
		id = "tollgate"
	}
	out = appendEscaped(out, id)
	return append(out, '"')
}

// appendMessagesToolUseID appends an id for the n-th tool call of a message whose
// server gave none; ids only need to be unique within the conversation
// turn.
func appendMessagesToolUseID(out []byte, n int) []byte {
	out = append(out, `"toolu_tollgate_`...)
	out = appendInt(out, int64(n))
	return append(out, '"')
}

// appendMessagesToolInput appends tool call arguments (a JSON string holding a
// JSON object) as a tool_use input object, or {} when they hold none.
func appendMessagesToolInput(out []byte, args gjson.Result) []byte {
	if args.Type != gjson.String {
		return append(out, "{}"...)
	}
	s := args.Str
	if !gjson.Valid(s) || !gjson.Parse(s).IsObject() {
		return append(out, "{}"...)
	}
	return append(out, strings.TrimSpace(s)...)
}

// appendMessagesUsage appends u as an Anthropic usage object, whose
// input_tokens excludes cache reads and writes.
func appendMessagesUsage(out []byte, u Usage) []byte {
	out = append(out, `{"input_tokens":`...)
	out = appendInt(out, max(u.InputTokens-u.CachedInputTokens-u.CacheCreationInputTokens, 0))
	out = append(out, `,"cache_creation_input_tokens":`...)
	out = appendInt(out, u.CacheCreationInputTokens)
	out = append(out, `,"cache_read_input_tokens":`...)
	out = appendInt(out, u.CachedInputTokens)
	out = append(out, `,"output_tokens":`...)
	out = appendInt(out, u.OutputTokens)
	return append(out, '}')
}

// ErrorBody implements ResponseTranslator. The chat stage's provider error
// arrives in OpenAI's shape; the server encodes the result with
// EncodeAnthropicError.
func (r *anthropicToOpenAIResponse) ErrorBody(status int, body []byte) *ProviderError {
	return openAIError(status, body)
}

// EncodeAnthropicError returns e as an Anthropic error body,
// {"type":"error","error":{"type":...,"message":...}}, for clients of the
// Messages API: provider errors from its translators' ErrorBody and the
// gateway's own errors alike. The HTTP status stays e.Status.
func EncodeAnthropicError(e *ProviderError) []byte {
	return appendMessagesError(make([]byte, 0, len(e.Message)+64), e)
}

func appendMessagesError(out []byte, e *ProviderError) []byte {
	out = append(out, `{"type":"error","error":{"type":"`...)
	out = append(out, messagesErrorType(e)...)
	out = append(out, `","message":`...)
	out = appendJSONString(out, messagesErrorMessage(e))
	return append(out, "}}"...)
}

// messagesErrorMessage is e's message for a Messages client. A context-window
// error is worded the way Anthropic words it ("prompt is too long: N tokens >
// M maximum"), because coding agents such as Claude Code compact their
// conversation on that wording and would otherwise just fail; the provider's
// own message follows for whoever reads it.
func messagesErrorMessage(e *ProviderError) string {
	if e.Code != CodeContextLengthExceeded || strings.HasPrefix(strings.ToLower(e.Message), "prompt is too long") {
		return e.Message
	}
	if used, limit, ok := contextTokenCounts(e.Message); ok {
		return fmt.Sprintf("prompt is too long: %d tokens > %d maximum (%s)", used, limit, e.Message)
	}
	return "prompt is too long (" + e.Message + ")"
}

// contextTokenCounts reads the prompt size and the context window from a
// context-window message that names exactly two token counts ("maximum
// context length is 128000 tokens. However, your messages resulted in
// 130000 tokens"; llama.cpp's "request (9000 tokens) exceeds the available
// context size (8192 tokens)"): the larger is the prompt.
func contextTokenCounts(msg string) (used, limit int64, ok bool) {
	var counts []int64
	for i := 0; i < len(msg); {
		if msg[i] < '0' || msg[i] > '9' {
			i++
			continue
		}
		var n int64
		j := i
		for ; j < len(msg) && msg[j] >= '0' && msg[j] <= '9' && n < 1e15; j++ {
			n = n*10 + int64(msg[j]-'0')
		}
		if strings.HasPrefix(msg[j:], " token") {
			counts = append(counts, n)
		}
		i = j
	}
	if len(counts) != 2 || counts[0] == counts[1] {
		return 0, 0, false
	}
	return max(counts[0], counts[1]), min(counts[0], counts[1]), true
}

// messagesErrorType is the Anthropic error type for an error in OpenAI
// terms: statuses with their own Anthropic type first, then the OpenAI
// type, then the status class.
func messagesErrorType(e *ProviderError) string {
	switch e.Status {
	case 402:
		return "billing_error"
	case 404:
		// OpenAI calls an unknown model an invalid_request_error with 404;
		// Anthropic's clients expect not_found_error for any 404.
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 503, statusOverloaded:
		return "overloaded_error"
	case 504:
		return "timeout_error"
	}
	if t, ok := messagesErrorTypeName(e.Type); ok {
		return t
	}
	// typeForStatus gives only types the table knows.
	t, _ := messagesErrorTypeName(typeForStatus(e.Status))
	return t
}

func messagesErrorTypeName(t ErrorType) (string, bool) {
	switch t {
	case ErrorTypeInvalidRequest:
		return "invalid_request_error", true
	case ErrorTypeAuthentication:
		return "authentication_error", true
	case ErrorTypePermission:
		return "permission_error", true
	case ErrorTypeNotFound:
		return "not_found_error", true
	case ErrorTypeRateLimit:
		return "rate_limit_error", true
	case ErrorTypeServer:
		return "api_error", true
	case ErrorTypeOverloaded:
		return "overloaded_error", true
	}
	return "", false
}

// Stream translation. Chat streams carry text, reasoning and the
// arguments of several tool calls as deltas in any order; Anthropic streams
// carry content blocks one after another, each a content_block_start, its
// deltas and a content_block_stop. One block is open at a time, so no
// delta ever follows its block's stop. Text and thinking switch blocks
// when the kind changes. A tool call that appears while another is open
// waits, its arguments buffered, until the open call's arguments form a
// complete JSON object (servers that stream calls one after another, as
// OpenAI does, thus stream every call live) or the message ends; calls a
// server interleaves therefore still arrive whole and in order.
//
// message_start is sent with the first chunk. Chat servers report usage
// only at the end, so its usage is zero unless that chunk carried some;
// the final counts, input tokens included, are in message_delta, which
// the SDKs apply over message_start's.

// messagesOpenBlock is the open content block; kind blockIgnored means none.
type messagesOpenBlock struct {
	kind  blockKind
	index int
	// tool is the index in tools of a tool block.
	tool int
}

// messagesToolCall is one tool call of the stream.
type messagesToolCall struct {
	// index is the chat tool call index; -1 once a later call with another
	// id took it over (servers that number every call 0).
	index int64
	// id and name are raw JSON string literals, nil until known.
	id, name []byte
	// args is the escaped text of the arguments so far.
	args  []byte
	state messagesToolState
}

type messagesToolState uint8

const (
	msgsToolQueued messagesToolState = iota
	msgsToolOpen
	msgsToolClosed
)

// StreamChunk implements ResponseTranslator. Body is a buffer reused by the
// next call.
func (r *anthropicToOpenAIResponse) StreamChunk(chunk []byte, final bool) (StreamResult, error) {
	r.out = r.out[:0]
	err := eachSSELine(&r.carry, chunk, final, r)
	// Servers that end without [DONE] still finished if they gave a
	// finish_reason; a stream cut before that is left open for the
	// caller to report (Done stays false).
	if err == nil && final && !r.ended && r.finish != "" {
		r.finishMessage()
	}
	return StreamResult{
		Body:  r.out,
		Usage: r.usage,
		Model: r.model,
		Done:  r.done,
		Err:   r.err,
	}, err
}

// line translates one complete SSE line of a chat stream.
func (r *anthropicToOpenAIResponse) line(line []byte) error {
	if r.ended {
		return nil
	}
	data, ok := sseData(line)
	if !ok || len(data) == 0 {
		return nil
	}
	if string(data) == sseDone {
		r.finishMessage()
		return nil
	}
	if !gjson.ValidBytes(data) {
		r.fail(unreadableEvent())
		return fmt.Errorf("read chat stream: %w: event is not JSON", ErrMalformedResponse)
	}
	var id, model, choices, usage, errv gjson.Result
	gjson.Parse(stringView(data)).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			id = v
		case "model":
			model = v
		case "choices":
			choices = v
		case "usage":
			usage = v
		case "error":
			errv = v
		}
		return true
	})
	if errv.Exists() && !choices.Exists() {
		r.err = openAIError(0, data)
		r.fail(r.err)
		return nil
	}
	if usage.IsObject() {
		r.usage = openAIUsage(usage)
	}
	if !r.started {
		if !choices.Get("0").Exists() && !usage.IsObject() {
			// Azure's first chunk holds only the prompt's content filter
			// results, with an empty id and model: the message starts with
			// the next, which names them.
			return nil
		}
		r.start(id, model)
	}
	if r.finish != "" {
		// Only the usage chunk follows a finish.
		return nil
	}
	var c messagesChatChoice
	c.read(choices.Get("0"), "delta")
	if t := c.reasoning(); t.Type == gjson.String && t.Str != "" {
		r.textDelta(blockThinking, t.Raw)
	}
	if c.content.Type == gjson.String && c.content.Str != "" {
		r.textDelta(blockText, c.content.Raw)
	}
	if c.refusal.Type == gjson.String && c.refusal.Str != "" {
		r.textDelta(blockText, c.refusal.Raw)
	}
	c.toolCalls.ForEach(func(pos, tc gjson.Result) bool {
		r.toolDelta(pos.Int(), tc)
		return true
	})
	if c.finish.Type == gjson.String && c.finish.Str != "" {
		r.finish = strings.Clone(c.finish.Str)
		if s := c.stopSequence(); s.Exists() {
			r.stopSeq = append(r.stopSeq[:0], s.Raw...)
		}
		r.closeAll()
	}
	return nil
}

// event starts an SSE event; its data follows.
func (r *anthropicToOpenAIResponse) event(name string) {
	r.out = append(r.out, "event: "...)
	r.out = append(r.out, name...)
	r.out = append(r.out, "\ndata: "...)
}

func (r *anthropicToOpenAIResponse) start(id, model gjson.Result) {
	r.started = true
	if model.Type == gjson.String {
		r.model = strings.Clone(model.Str)
	}
	r.event("message_start")
	r.out = append(r.out, `{"type":"message_start","message":{"id":`...)
	r.out = appendMessagesID(r.out, id.Str)
	r.out = append(r.out, `,"type":"message","role":"assistant","model":`...)
	r.out = appendRawString(r.out, model)
	r.out = append(r.out, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	r.out = appendMessagesUsage(r.out, r.usage)
	r.out = append(r.out, "}}\n\n"...)
}

// textDelta appends a text or thinking delta (raw is a JSON string
// literal), switching blocks when the open one is of another kind.
func (r *anthropicToOpenAIResponse) textDelta(kind blockKind, raw string) {
	if r.open.kind != kind {
		r.closeAll()
		r.open = messagesOpenBlock{kind: kind, index: r.blocks}
		r.blocks++
		r.event("content_block_start")
		r.out = append(r.out, `{"type":"content_block_start","index":`...)
		r.out = appendInt(r.out, int64(r.open.index))
		if kind == blockThinking {
			r.out = append(r.out, `,"content_block":{"type":"thinking","thinking":"","signature":""}}`+"\n\n"...)
		} else {
			r.out = append(r.out, `,"content_block":{"type":"text","text":""}}`+"\n\n"...)
		}
	}
	r.event("content_block_delta")
	r.out = append(r.out, `{"type":"content_block_delta","index":`...)
	r.out = appendInt(r.out, int64(r.open.index))
	if kind == blockThinking {
		r.out = append(r.out, `,"delta":{"type":"thinking_delta","thinking":`...)
	} else {
		r.out = append(r.out, `,"delta":{"type":"text_delta","text":`...)
	}
	r.out = append(r.out, raw...)
	r.out = append(r.out, "}}\n\n"...)
}

// toolDelta applies one entry of a delta's tool_calls; pos is its place in
// the array, the index for servers that send none.
func (r *anthropicToOpenAIResponse) toolDelta(pos int64, tc gjson.Result) {
	var index, id, fn gjson.Result
	tc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "index":
			index = v
		case "id":
			id = v
		case "function":
			fn = v
		}
		return true
	})
	idx := pos
	if index.Type == gjson.Number {
		idx = index.Int()
	}
	var name, args gjson.Result
	fn.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "name":
			name = v
		case "arguments":
			args = v
		}
		return true
	})
	s := r.toolSlot(idx, id)
	t := &r.tools[s]
	if t.name == nil && name.Type == gjson.String && name.Str != "" {
		t.name = append([]byte(nil), name.Raw...)
	}
	if args.Type == gjson.String && args.Str != "" {
		switch t.state {
		case msgsToolOpen:
			t.args = append(t.args, rawInner(args.Raw)...)
			r.argsDelta(rawInner(args.Raw))
		case msgsToolQueued:
			t.args = append(t.args, rawInner(args.Raw)...)
		case msgsToolClosed:
			// A piece for a finished block has no valid place in the
			// stream; only a server that broke its own call sends one.
		}
	}
	r.advance()
}

// toolSlot returns the index in tools of the call a delta continues, adding
// a call for a new index or a new id at a known index.
func (r *anthropicToOpenAIResponse) toolSlot(idx int64, id gjson.Result) int {
	newID := id.Type == gjson.String && id.Str != ""
	for s := len(r.tools) - 1; s >= 0; s-- {
		t := &r.tools[s]
		if t.index != idx {
			continue
		}
		if newID && t.id != nil && string(t.id) != id.Raw {
			t.index = -1
			break
		}
		if newID && t.id == nil {
			t.id = append([]byte(nil), id.Raw...)
		}
		return s
	}
	t := messagesToolCall{index: idx}
	if newID {
		t.id = append([]byte(nil), id.Raw...)
	}
	r.tools = append(r.tools, t)
	return len(r.tools) - 1
}

// advance opens waiting tool calls while the open block allows: when it is
// not a tool call, or its arguments are complete.
func (r *anthropicToOpenAIResponse) advance() {
	for {
		next := -1
		for s := range r.tools {
			if r.tools[s].state == msgsToolQueued {
				next = s
				break
			}
		}
		if next < 0 || r.tools[next].name == nil {
			return
		}
		if r.open.kind == blockTool && !messagesArgsComplete(r.tools[r.open.tool].args) {
			return
		}
		r.closeOpen()
		r.startTool(next)
	}
}

// messagesArgsComplete reports whether escaped arguments form a JSON object.
func messagesArgsComplete(args []byte) bool {
	if len(args) == 0 {
		return false
	}
	s := stringView(args)
	if bytes.IndexByte(args, '\\') >= 0 {
		s = gjson.Parse(`"` + s + `"`).Str
	}
	return gjson.Valid(s) && gjson.Parse(s).IsObject()
}

func (r *anthropicToOpenAIResponse) startTool(s int) {
	t := &r.tools[s]
	t.state = msgsToolOpen
	r.open = messagesOpenBlock{kind: blockTool, index: r.blocks, tool: s}
	r.blocks++
	r.event("content_block_start")
	r.out = append(r.out, `{"type":"content_block_start","index":`...)
	r.out = appendInt(r.out, int64(r.open.index))
	r.out = append(r.out, `,"content_block":{"type":"tool_use","id":`...)
	if t.id != nil {
		r.out = append(r.out, t.id...)
	} else {
		r.out = appendMessagesToolUseID(r.out, s)
	}
	r.out = append(r.out, `,"name":`...)
	if t.name != nil {
		r.out = append(r.out, t.name...)
	} else {
		r.out = append(r.out, `""`...)
	}
	r.out = append(r.out, `,"input":{}}}`+"\n\n"...)
	if len(t.args) > 0 {
		r.argsDelta(stringView(t.args))
	}
}

// argsDelta appends an input_json_delta for the open block; escaped is the
// content of a JSON string literal.
func (r *anthropicToOpenAIResponse) argsDelta(escaped string) {
	r.event("content_block_delta")
	r.out = append(r.out, `{"type":"content_block_delta","index":`...)
	r.out = appendInt(r.out, int64(r.open.index))
	r.out = append(r.out, `,"delta":{"type":"input_json_delta","partial_json":"`...)
	r.out = append(r.out, escaped...)
	r.out = append(r.out, "\"}}\n\n"...)
}

// closeOpen stops the open block, if any.
func (r *anthropicToOpenAIResponse) closeOpen() {
	if r.open.kind == blockIgnored {
		return
	}
	if r.open.kind == blockTool {
		r.tools[r.open.tool].state = msgsToolClosed
	}
	r.event("content_block_stop")
	r.out = append(r.out, `{"type":"content_block_stop","index":`...)
	r.out = appendInt(r.out, int64(r.open.index))
	r.out = append(r.out, "}\n\n"...)
	r.open = messagesOpenBlock{}
}

// closeAll stops the open block and sends every waiting tool call whole.
func (r *anthropicToOpenAIResponse) closeAll() {
	r.closeOpen()
	for s := range r.tools {
		if r.tools[s].state == msgsToolQueued {
			r.startTool(s)
			r.closeOpen()
		}
	}
}

// finishMessage ends the message: message_delta with the stop reason and
// the final usage, then message_stop.
func (r *anthropicToOpenAIResponse) finishMessage() {
	if !r.started {
		r.start(gjson.Result{}, gjson.Result{})
	}
	r.closeAll()
	r.event("message_delta")
	r.out = append(r.out, `{"type":"message_delta","delta":{"stop_reason":"`...)
	r.out = append(r.out, messagesStopReason(r.finish, len(r.tools) > 0, len(r.stopSeq) > 0)...)
	r.out = append(r.out, `","stop_sequence":`...)
	if len(r.stopSeq) > 0 {
		r.out = append(r.out, r.stopSeq...)
	} else {
		r.out = append(r.out, "null"...)
	}
	r.out = append(r.out, `},"usage":`...)
	r.out = appendMessagesUsage(r.out, r.usage)
	r.out = append(r.out, "}\n\n"...)
	r.event("message_stop")
	r.out = append(r.out, `{"type":"message_stop"}`+"\n\n"...)
	r.ended, r.done = true, true
}

// fail ends the stream with an error event.
func (r *anthropicToOpenAIResponse) fail(e *ProviderError) {
	r.event("error")
	r.out = appendMessagesError(r.out, e)
	r.out = append(r.out, "\n\n"...)
	r.ended = true
}
