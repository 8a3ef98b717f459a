package transform

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
)

// NewOpenAIToBedrockRequest returns a translator from chat completions
// requests to Bedrock Converse requests for t.Model (a Bedrock model id,
// inference profile or ARN). It sets no credentials: Bedrock requests are
// signed afterwards (credentials.AWS). The translator implements
// ToolNameMapper.
//
// Choices Converse forces:
//   - tool_choice "none" has no Converse form: the choice is left out and
//     the tools are kept, so the model may still call one.
//   - A history with tool calls but no tools gets a placeholder spec per
//     called tool, because Converse rejects toolUse and toolResult blocks
//     without a toolConfig (LiteLLM's modify_params does the same).
//   - Tool names Converse rejects are sanitised; ToolNames maps them back.
//   - Tool results carry no status: OpenAI has no success flag, and only
//     Anthropic models accept one.
func NewOpenAIToBedrockRequest(t Target) RequestTranslator {
	return &openAIToBedrockRequest{target: t}
}

// openAIToBedrockRequest translates chat completions requests into Converse
// requests.
type openAIToBedrockRequest struct {
	target Target
	names  bedrockToolNamer
}

var (
	_ RequestTranslator = (*openAIToBedrockRequest)(nil)
	_ ToolNameMapper    = (*openAIToBedrockRequest)(nil)
)

// ToolNames implements ToolNameMapper.
func (t *openAIToBedrockRequest) ToolNames() map[string]string { return t.names.toClient }

// RequestBody implements RequestTranslator.
func (t *openAIToBedrockRequest) RequestBody(body []byte) (RequestResult, error) {
	t.names = bedrockToolNamer{}
	var f chatRequest
	if err := f.parse(body, &t.target, bedrockUnsupported); err != nil {
		return RequestResult{}, err
	}
	model, err := modelName(&t.target, &f)
	if err != nil {
		return RequestResult{}, err
	}
	t.names.tools = f.tools
	b := bedrockRequestBuilder{out: make([]byte, 0, len(body)+256), names: &t.names}
	if err := b.build(model, &t.target, &f); err != nil {
		t.names = bedrockToolNamer{}
		return RequestResult{}, err
	}
	stream := f.stream.Type == gjson.True
	return RequestResult{
		Path:   bedrockPath(t.target.BasePath, model, stream),
		Body:   b.out,
		Stream: stream,
		SetHeaders: []Header{
			{Key: "content-type", Value: "application/json"},
		},
		// Envoy hands each attempt the headers the previous attempt left;
		// the signer adds Bedrock's own. A token left by an attempt with
		// temporary credentials would spoil a signature made without one.
		RemoveHeaders: []string{"authorization", "x-api-key", "api-key", "anthropic-version", "x-amz-security-token"},
	}, nil
}

// bedrockUnsupported rejects parameters Converse cannot honour and whose
// silent loss the client would notice. Converse has no penalties and no
// seed either (inferenceConfig has maxTokens, stopSequences, temperature
// and topP only), no web search, and its toolChoice cannot limit a reply
// to one call.
func bedrockUnsupported(key string, v gjson.Result) error {
	if err := unsupportedParam(key, v, "bedrock"); err != nil {
		return err
	}
	if err := unsupportedWebSearch(key, "bedrock"); err != nil {
		return err
	}
	if err := unsupportedSeed(key, "bedrock"); err != nil {
		return err
	}
	if err := unsupportedSerialToolCalls(key, v, "bedrock"); err != nil {
		return err
	}
	return unsupportedPenalty(key, v, "bedrock")
}

// bedrockToolNamer gives client tool names the names Converse accepts and
// remembers the renames.
type bedrockToolNamer struct {
	// tools is the client's tools array, for collision checks.
	tools gjson.Result
	// toProvider and toClient hold renamed tools only; nil when none.
	toProvider, toClient map[string]string
}

func (n *bedrockToolNamer) name(client string) string {
	if validBedrockToolName(client) {
		return client
	}
	if p, ok := n.toProvider[client]; ok {
		return p
	}
	p := sanitizeBedrockName(client, n.taken)
	if n.toProvider == nil {
		n.toProvider, n.toClient = map[string]string{}, map[string]string{}
	}
	n.toProvider[client], n.toClient[p] = p, client
	return p
}

// taken reports whether a provider name is already used: by a rename, or
// by a client tool whose name needs none.
func (n *bedrockToolNamer) taken(s string) bool {
	if _, ok := n.toClient[s]; ok || s == jsonToolName {
		return true
	}
	found := false
	n.tools.ForEach(func(_, t gjson.Result) bool {
		found = t.Get("function.name").Str == s
		return !found
	})
	return found
}

// bedrockRequestBuilder appends a Converse request body to out.
// Consecutive messages of one role share a turn so that roles alternate.
// Within a turn, Converse (for Anthropic models) wants tool results before
// other user content and text before tool use, so such "first" blocks are
// moved ahead of the turn's other blocks when a merged message brings them
// late.
type bedrockRequestBuilder struct {
	out   []byte
	names *bedrockToolNamer
	// turn is the role of the open turn, "" when none.
	turn string
	// firstEnd is the offset in out where the open turn's first blocks
	// end; nRest counts its other blocks.
	firstEnd int
	nRest    int
	turns    int
	// called lists the provider names of tools the history calls, for
	// placeholder specs when the request has no tools.
	called []string
	docs   int
}

func (b *bedrockRequestBuilder) build(model string, t *Target, f *chatRequest) error {
	if !f.messages.IsArray() {
		return invalidf("messages", "messages must be an array")
	}
	b.out = append(b.out, `{"messages":[`...)
	if err := b.messages(f.messages); err != nil {
		return err
	}
	b.flush()
	if b.turns == 0 {
		return invalidf("messages", "messages must contain at least one user or assistant message")
	}
	b.out = append(b.out, ']')
	if err := b.system(f.messages); err != nil {
		return err
	}
	budget, err := bedrockThinkingBudget(model, f)
	if err != nil {
		return err
	}
	// The budget shrinks to fit a small max_tokens (fitThinking).
	if budget, err = b.inferenceConfig(t, f, budget); err != nil {
		return err
	}
	if err := b.toolConfig(f, budget > 0 || f.thinking.IsObject()); err != nil {
		return err
	}
	if err := b.additionalFields(model, t, f, budget); err != nil {
		return err
	}
	b.requestMetadata(f.metadata)
	b.serviceTier(f.serviceTier)
	b.out = append(b.out, '}')
	return nil
}

// additionalFields writes additionalModelRequestFields: Anthropic's
// thinking, and top_k, which inferenceConfig lacks. AWS's Converse
// examples pass it as top_k to Anthropic models and as inferenceConfig.topK
// to Nova models; other models have no documented field, so top_k gets a
// 400, or is left out under drop_params.
func (b *bedrockRequestBuilder) additionalFields(model string, t *Target, f *chatRequest, budget int64) error {
	topK := f.topK
	if topK.Exists() && (topK.Type != gjson.Number || topK.Num != float64(int64(topK.Num))) {
		return invalidf("top_k", "top_k must be an integer")
	}
	anthropic, nova := isAnthropicModel(model), isNovaModel(model)
	if topK.Exists() && !anthropic && !nova {
		if !t.DropParams {
			return invalidf("top_k", "top_k is supported only for anthropic and amazon nova models on bedrock")
		}
		topK = gjson.Result{}
	}
	n := 0
	field := func(name string) {
		if n == 0 {
			b.out = append(b.out, `,"additionalModelRequestFields":{"`...)
		} else {
			b.out = append(b.out, `,"`...)
		}
		n++
		b.out = append(b.out, name...)
		b.out = append(b.out, '"', ':')
	}
	switch {
	case f.thinking.IsObject():
		field("thinking")
		b.out = append(b.out, f.thinking.Raw...)
	case budget > 0:
		field("thinking")
		b.out = append(b.out, `{"type":"enabled","budget_tokens":`...)
		b.out = appendInt(b.out, budget)
		b.out = append(b.out, '}')
	}
	switch {
	case !topK.Exists():
	case nova:
		field("inferenceConfig")
		b.out = append(b.out, `{"topK":`...)
		b.out = append(b.out, topK.Raw...)
		b.out = append(b.out, '}')
	default:
		field("top_k")
		b.out = append(b.out, topK.Raw...)
	}
	if n > 0 {
		b.out = append(b.out, '}')
	}
	return nil
}

// requestMetadata writes OpenAI's metadata as requestMetadata: both tag a
// request for finding it later (in Bedrock's invocation logs) without
// changing the answer. Entries outside Bedrock's pattern, which it would
// refuse, are left out rather than fail the request over a tag.
func (b *bedrockRequestBuilder) requestMetadata(md gjson.Result) {
	n := 0
	md.ForEach(func(k, v gjson.Result) bool {
		if v.Type != gjson.String || !validBedrockMetadata(k.Str, 1) || !validBedrockMetadata(v.Str, 0) {
			return true
		}
		if n == 0 {
			b.out = append(b.out, `,"requestMetadata":{`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, k.Raw...)
		b.out = append(b.out, ':')
		b.out = append(b.out, v.Raw...)
		return true
	})
	if n > 0 {
		b.out = append(b.out, '}')
	}
}

// validBedrockMetadata reports whether s matches Converse's requestMetadata
// pattern, [a-zA-Z0-9\s._:/=+$@-]{minLen,256}.
func validBedrockMetadata(s string, minLen int) bool {
	if len(s) < minLen || len(s) > 256 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte(" \t\n\v\f\r._:/=+$@-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// serviceTier writes service_tier as Converse's serviceTier, which has
// OpenAI's default, flex and priority tiers. "auto" is what Bedrock does
// unasked and "scale" has no equivalent; both are left out, as the tier
// changes price and latency, not the answer.
func (b *bedrockRequestBuilder) serviceTier(tier gjson.Result) {
	switch tier.Str {
	case "default", "flex", "priority":
		b.out = append(b.out, `,"serviceTier":{"type":`...)
		b.out = append(b.out, tier.Raw...)
		b.out = append(b.out, '}')
	}
}

// bedrockThinkingBudget returns the thinking budget reasoning_effort asks
// for, 0 for none. Only Anthropic models take Anthropic's thinking
// parameter; dropping it silently elsewhere would hide the reasoning the
// client asked for.
func bedrockThinkingBudget(model string, f *chatRequest) (int64, error) {
	if f.thinking.Exists() {
		if !f.thinking.IsObject() {
			return 0, invalidf("thinking", "thinking must be an object")
		}
		if !isAnthropicModel(model) {
			return 0, invalidf("thinking", "thinking is supported only for anthropic models on bedrock")
		}
		return 0, nil
	}
	budget, err := effortThinkingBudget(f.reasoningEffort)
	if err != nil || budget == 0 {
		return 0, err
	}
	if !isAnthropicModel(model) {
		return 0, invalidf("reasoning_effort", "reasoning_effort is supported only for anthropic models on bedrock")
	}
	return budget, nil
}

func (b *bedrockRequestBuilder) inferenceConfig(t *Target, f *chatRequest, budget int64) (int64, error) {
	n := 0
	field := func(name string) {
		if n == 0 {
			b.out = append(b.out, `,"inferenceConfig":{`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, '"')
		b.out = append(b.out, name...)
		b.out = append(b.out, '"', ':')
	}
	var maxTokens int64
	if name, v := f.maxTokensParam(); v.Exists() {
		if v.Type != gjson.Number || v.Int() < 1 || v.Num != float64(v.Int()) {
			return 0, invalidf(name, "%s must be a positive integer", name)
		}
		maxTokens = v.Int()
	}
	if budget > 0 {
		maxTokens, budget = fitThinking(maxTokens, t.DefaultMaxTokens, budget)
	}
	if maxTokens > 0 {
		field("maxTokens")
		b.out = appendInt(b.out, maxTokens)
	}
	for _, p := range [...]struct {
		name, key string
		v         gjson.Result
	}{{"temperature", "temperature", f.temperature}, {"top_p", "topP", f.topP}} {
		if !p.v.Exists() {
			continue
		}
		if p.v.Type != gjson.Number {
			return 0, invalidf(p.name, "%s must be a number", p.name)
		}
		field(p.key)
		b.out = append(b.out, p.v.Raw...)
	}
	stops := 0
	addStop := func(s gjson.Result) {
		// Converse rejects empty stop sequences.
		if s.Str == "" {
			return
		}
		if stops == 0 {
			field("stopSequences")
			b.out = append(b.out, '[')
		} else {
			b.out = append(b.out, ',')
		}
		stops++
		b.out = append(b.out, s.Raw...)
	}
	if err := eachStop(f.stop, addStop); err != nil {
		return 0, err
	}
	if stops > 0 {
		b.out = append(b.out, ']')
	}
	if n > 0 {
		b.out = append(b.out, '}')
	}
	return budget, nil
}

// system writes system and developer messages as system blocks.
func (b *bedrockRequestBuilder) system(msgs gjson.Result) error {
	n := 0
	add := func(text string, cc gjson.Result) {
		if n == 0 {
			b.out = append(b.out, `,"system":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, `{"text":`...)
		b.out = append(b.out, text...)
		b.out = append(b.out, '}')
		if cc.IsObject() {
			b.out = append(b.out, `,{"cachePoint":{"type":"default"}}`...)
		}
	}
	var err error
	msgs.ForEach(func(i, v gjson.Result) bool {
		var m chatMessage
		m.read(v)
		if m.role.Str != "system" && m.role.Str != "developer" {
			return true
		}
		switch content := m.content; {
		case content.Type == gjson.String:
			if !blank(content.Str) {
				add(content.Raw, m.cacheControl)
			}
		case content.IsArray():
			content.ForEach(func(j, pv gjson.Result) bool {
				var p contentPart
				p.read(pv)
				if p.typ.Str != "text" || p.text.Type != gjson.String {
					err = invalidf(partParam(i, j), "system messages may contain only text parts")
					return false
				}
				if !blank(p.text.Str) {
					add(p.text.Raw, p.cacheControl)
				}
				return true
			})
		default:
			err = invalidf(contentParam(i), "content must be a string or an array of content parts")
		}
		return err == nil
	})
	if n > 0 {
		b.out = append(b.out, ']')
	}
	return err
}

// messages writes the conversation turns.
func (b *bedrockRequestBuilder) messages(msgs gjson.Result) error {
	var err error
	msgs.ForEach(func(i, v gjson.Result) bool {
		var m chatMessage
		m.read(v)
		switch role := m.role.Str; role {
		case "system", "developer":
		case "user":
			err = b.userContent(i, m.content, m.cacheControl)
		case "assistant":
			if b.turn == "" && b.turns == 0 {
				err = invalidf(fmt.Sprintf("messages[%d].role", i.Int()), "bedrock requires the conversation to start with a user message")
				break
			}
			err = b.assistant(i, &m)
		case "tool":
			err = b.toolResult(i, &m)
		default:
			err = invalidf(fmt.Sprintf("messages[%d].role", i.Int()), "role %q is not supported by bedrock models", role)
		}
		return err == nil
	})
	return err
}

// begin starts a content block in a turn of role, opening the turn if the
// previous block had another role, and returns where the block starts.
// Blocks are written without separators; end adds them.
func (b *bedrockRequestBuilder) begin(role string) int {
	if b.turn != role {
		b.flush()
		if b.turns > 0 {
			b.out = append(b.out, ',')
		}
		b.out = append(b.out, `{"role":"`...)
		b.out = append(b.out, role...)
		b.out = append(b.out, `","content":[`...)
		b.turn = role
		b.firstEnd, b.nRest = len(b.out), 0
	}
	return len(b.out)
}

// end finishes the block written since start. A first block (tool result,
// assistant text) that follows other blocks of the turn is rotated in
// place to the end of the turn's first blocks.
func (b *bedrockRequestBuilder) end(start int, first bool) {
	b.out = append(b.out, ',')
	if !first {
		b.nRest++
		return
	}
	n := len(b.out) - start
	if b.nRest > 0 {
		tail := b.out[b.firstEnd:]
		slices.Reverse(tail[:len(tail)-n])
		slices.Reverse(tail[len(tail)-n:])
		slices.Reverse(tail)
	}
	b.firstEnd += n
}

// flush closes the open turn, replacing the last block's separator.
func (b *bedrockRequestBuilder) flush() {
	if b.turn == "" {
		return
	}
	b.out[len(b.out)-1] = ']'
	b.out = append(b.out, '}')
	b.turns++
	b.turn = ""
}

// appendCachePoint adds a cache point after a block whose message or part
// has cache_control.
func appendCachePoint(dst []byte, cc gjson.Result) []byte {
	if cc.IsObject() {
		return append(dst, `,{"cachePoint":{"type":"default"}}`...)
	}
	return dst
}

// userContent writes user content (string or parts) as user blocks.
func (b *bedrockRequestBuilder) userContent(i, content, cc gjson.Result) error {
	switch {
	case !content.Exists() || content.Type == gjson.Null:
		return nil
	case content.Type == gjson.String:
		if !blank(content.Str) {
			start := b.begin("user")
			b.out = append(b.out, `{"text":`...)
			b.out = append(b.out, content.Raw...)
			b.out = append(b.out, '}')
			b.out = appendCachePoint(b.out, cc)
			b.end(start, false)
		}
		return nil
	case content.IsArray():
		var err error
		content.ForEach(func(j, part gjson.Result) bool {
			err = b.userPart(i, j, part)
			return err == nil
		})
		return err
	}
	return invalidf(contentParam(i), "content must be a string or an array of content parts")
}

func (b *bedrockRequestBuilder) userPart(i, j, v gjson.Result) error {
	var part contentPart
	part.read(v)
	switch typ := part.typ.Str; typ {
	case "text":
		if part.text.Type != gjson.String {
			return invalidf(partParam(i, j), "text parts must have a string text")
		}
		if blank(part.text.Str) {
			return nil
		}
		start := b.begin("user")
		b.out = append(b.out, `{"text":`...)
		b.out = append(b.out, part.text.Raw...)
		b.out = append(b.out, '}')
		b.out = appendCachePoint(b.out, part.cacheControl)
		b.end(start, false)
		return nil
	case "image_url":
		url := part.imageURL
		if url.IsObject() {
			url = url.Get("url")
		}
		if url.Type != gjson.String {
			return invalidf(partParam(i, j), "image_url parts must have a string url")
		}
		start := b.begin("user")
		var err error
		if b.out, err = b.appendMedia(b.out, url.Str, partParam(i, j)); err != nil {
			return err
		}
		b.out = appendCachePoint(b.out, part.cacheControl)
		b.end(start, false)
		return nil
	}
	return invalidf(partParam(i, j), "content part type %q is not supported by bedrock models", part.typ.Str)
}

// appendMedia appends an image block, or a document block for PDF data,
// from a base64 data URL. Converse cannot fetch web URLs.
func (b *bedrockRequestBuilder) appendMedia(dst []byte, url, param string) ([]byte, error) {
	rest, ok := strings.CutPrefix(url, "data:")
	if !ok {
		return dst, invalidf(param, "bedrock models take images only as base64 data URLs, not web URLs")
	}
	meta, data, ok := strings.Cut(rest, ",")
	mediaType, base64 := strings.CutSuffix(meta, ";base64")
	if !ok || !base64 || data == "" {
		return dst, invalidf(param, "image data URLs must be base64 with a media type")
	}
	var format string
	switch mediaType {
	case "image/png":
		format = "png"
	case "image/jpeg", "image/jpg":
		format = "jpeg"
	case "image/gif":
		format = "gif"
	case "image/webp":
		format = "webp"
	case "application/pdf":
		// Converse requires every document to have a distinct name.
		b.docs++
		dst = append(dst, `{"document":{"format":"pdf","name":"document-`...)
		dst = appendInt(dst, int64(b.docs))
		dst = append(dst, `","source":{"bytes":`...)
		dst = appendJSONString(dst, data)
		return append(dst, "}}}"...), nil
	default:
		return dst, invalidf(param, "media type %q is not supported by bedrock models", mediaType)
	}
	dst = append(dst, `{"image":{"format":"`...)
	dst = append(dst, format...)
	dst = append(dst, `","source":{"bytes":`...)
	dst = appendJSONString(dst, data)
	return append(dst, "}}}"...), nil
}

// assistant writes an assistant message: text, then tool calls as toolUse
// blocks.
func (b *bedrockRequestBuilder) assistant(i gjson.Result, m *chatMessage) error {
	err := eachAssistantText(i, m.content, m.cacheControl, func(text, cc gjson.Result) {
		if blank(text.Str) {
			return
		}
		start := b.begin("assistant")
		b.out = append(b.out, `{"text":`...)
		b.out = append(b.out, text.Raw...)
		b.out = append(b.out, '}')
		b.out = appendCachePoint(b.out, cc)
		b.end(start, true)
	})
	if err != nil {
		return err
	}
	return eachToolCall(i, m.toolCalls, b.toolUse)
}

func (b *bedrockRequestBuilder) toolUse(i, j, c gjson.Result) error {
	id, name := c.Get("id"), c.Get("function.name")
	if id.Type != gjson.String || id.Str == "" || name.Type != gjson.String || name.Str == "" {
		return invalidf(toolCallParam(i, j, ""), "tool calls must have a non-empty id and function.name")
	}
	input, err := toolCallInput(i, j, c.Get("function.arguments"))
	if err != nil {
		return err
	}
	provider := b.names.name(name.Str)
	if !containsString(b.called, provider) {
		b.called = append(b.called, provider)
	}
	start := b.begin("assistant")
	b.out = append(b.out, `{"toolUse":{"toolUseId":`...)
	b.out = appendToolUseID(b.out, id.Str)
	b.out = append(b.out, `,"name":`...)
	b.out = appendJSONString(b.out, provider)
	b.out = append(b.out, `,"input":`...)
	b.out = append(b.out, input...)
	b.out = append(b.out, "}}"...)
	b.end(start, false)
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// appendToolUseID appends a tool call id as Converse accepts it
// ([a-zA-Z0-9_-]+). Ids from other providers may hold other bytes; they
// are replaced the same way in the call and its result, so the pair still
// matches.
func appendToolUseID(dst []byte, id string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(id); i++ {
		if c := id[i]; bedrockNameByte(c) {
			dst = append(dst, c)
		} else {
			dst = append(dst, '_')
		}
	}
	return append(dst, '"')
}

// blank reports whether text is empty or whitespace, which Converse
// rejects in every text block ("the text field ... is blank"). Such text
// carries nothing, so it is dropped, or replaced in tool results, which
// need content.
func blank(text string) bool { return strings.TrimSpace(text) == "" }

// emptyToolResult stands in for a blank tool result.
const emptyToolResult = `{"text":"(empty)"}`

// toolResult writes a tool message as a toolResult block in a user turn.
func (b *bedrockRequestBuilder) toolResult(i gjson.Result, m *chatMessage) error {
	id := m.toolCallID
	if id.Type != gjson.String || id.Str == "" {
		return invalidf(fmt.Sprintf("messages[%d].tool_call_id", i.Int()), "tool messages must have a non-empty tool_call_id")
	}
	if b.turn == "" && b.turns == 0 {
		return invalidf(fmt.Sprintf("messages[%d]", i.Int()), "tool messages must follow the assistant message that called the tool")
	}
	start := b.begin("user")
	b.out = append(b.out, `{"toolResult":{"toolUseId":`...)
	b.out = appendToolUseID(b.out, id.Str)
	b.out = append(b.out, `,"content":[`...)
	switch content := m.content; {
	case content.Type == gjson.String:
		if blank(content.Str) {
			b.out = append(b.out, emptyToolResult...)
		} else {
			b.out = append(b.out, `{"text":`...)
			b.out = append(b.out, content.Raw...)
			b.out = append(b.out, '}')
		}
	case content.IsObject():
		// Not OpenAI's shape, but clients send structured results; the
		// json block keeps their structure.
		b.out = append(b.out, `{"json":`...)
		b.out = append(b.out, content.Raw...)
		b.out = append(b.out, '}')
	case content.IsArray():
		n := 0
		var err error
		content.ForEach(func(j, v gjson.Result) bool {
			var part contentPart
			part.read(v)
			if part.typ.Str != "text" || part.text.Type != gjson.String {
				err = invalidf(partParam(i, j), "tool messages may contain only text parts")
				return false
			}
			if blank(part.text.Str) {
				return true
			}
			if n > 0 {
				b.out = append(b.out, ',')
			}
			n++
			b.out = append(b.out, `{"text":`...)
			b.out = append(b.out, part.text.Raw...)
			b.out = append(b.out, '}')
			return true
		})
		if err != nil {
			return err
		}
		if n == 0 {
			b.out = append(b.out, emptyToolResult...)
		}
	case !content.Exists() || content.Type == gjson.Null:
		b.out = append(b.out, emptyToolResult...)
	default:
		return invalidf(contentParam(i), "content must be a string or an array of content parts")
	}
	b.out = append(b.out, "]}}"...)
	b.out = appendCachePoint(b.out, m.cacheControl)
	b.end(start, true)
	return nil
}

// toolConfig writes the tools and the tool choice, adding the forced JSON
// tool for response_format and placeholders for tools the history calls.
func (b *bedrockRequestBuilder) toolConfig(f *chatRequest, thinking bool) error {
	jsonSchema, err := responseFormatSchema(f.responseFormat)
	if err != nil {
		return err
	}
	n := 0
	next := func() {
		if n == 0 {
			b.out = append(b.out, `,"toolConfig":{"tools":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
	}
	offer := func(t chatTool) error { return b.tool(&t, next) }
	if f.toolChoice.Str == "none" {
		// Converse has no "none": only the tools the history called are
		// declared, as its toolUse blocks require; no others are offered.
		offer = func(t chatTool) error {
			if !containsString(b.called, b.names.name(t.name.Str)) {
				return reservedToolName(&t)
			}
			return b.tool(&t, next)
		}
	}
	err = eachTool(f.tools, "bedrock", offer)
	if err != nil {
		return err
	}
	if jsonSchema != "" {
		next()
		b.out = append(b.out, `{"toolSpec":{"name":"`+jsonToolName+`","description":"Respond with a JSON object.","inputSchema":{"json":`...)
		b.out = append(b.out, jsonSchema...)
		b.out = append(b.out, "}}}"...)
	}
	if n == 0 {
		for _, name := range b.called {
			next()
			b.out = append(b.out, `{"toolSpec":{"name":`...)
			b.out = appendJSONString(b.out, name)
			b.out = append(b.out, `,"description":"A tool called earlier in this conversation; it is not available now.","inputSchema":{"json":{"type":"object","properties":{}}}}}`...)
		}
		if n == 0 {
			// Converse rejects a tool choice without tools; with no tools
			// there is nothing to choose.
			return nil
		}
		b.out = append(b.out, "]}"...)
		return nil
	}
	b.out = append(b.out, ']')
	tc := f.toolChoice
	switch {
	case jsonSchema != "" && !thinking:
		// Anthropic refuses forced tools while thinking, so the model is
		// then only offered the JSON tool.
		b.out = append(b.out, `,"toolChoice":{"tool":{"name":"`+jsonToolName+`"}}`...)
	case !tc.Exists(), tc.Str == "auto", jsonSchema != "":
		b.out = append(b.out, `,"toolChoice":{"auto":{}}`...)
	case tc.Str == "required":
		b.out = append(b.out, `,"toolChoice":{"any":{}}`...)
	case tc.Str == "none":
		// No choice to send: only the history's tools are declared.
	case tc.IsObject() && tc.Get("function.name").Type == gjson.String && tc.Get("function.name").Str != "":
		b.out = append(b.out, `,"toolChoice":{"tool":{"name":`...)
		b.out = appendJSONString(b.out, b.names.name(tc.Get("function.name").Str))
		b.out = append(b.out, "}}"...)
	default:
		return invalidf("tool_choice", `tool_choice must be "auto", "required", "none" or {"type":"function","function":{"name":...}}`)
	}
	b.out = append(b.out, '}')
	return nil
}

// reservedToolName refuses a client tool named like the response_format
// tool.
func reservedToolName(t *chatTool) error {
	if t.name.Str == jsonToolName {
		return invalidf(t.param(".function.name"), "tool name %q is reserved for response_format", jsonToolName)
	}
	return nil
}

func (b *bedrockRequestBuilder) tool(t *chatTool, next func()) error {
	if err := reservedToolName(t); err != nil {
		return err
	}
	next()
	b.out = append(b.out, `{"toolSpec":{"name":`...)
	b.out = appendJSONString(b.out, b.names.name(t.name.Str))
	// Converse rejects an empty description.
	if t.description.Type == gjson.String && t.description.Str != "" {
		b.out = append(b.out, `,"description":`...)
		b.out = append(b.out, t.description.Raw...)
	}
	b.out = append(b.out, `,"inputSchema":{"json":`...)
	if t.parameters.IsObject() {
		b.out = append(b.out, t.parameters.Raw...)
	} else {
		b.out = append(b.out, `{"type":"object","properties":{}}`...)
	}
	b.out = append(b.out, "}}}"...)
	if t.cacheControl.IsObject() {
		next()
		b.out = append(b.out, `{"cachePoint":{"type":"default"}}`...)
	}
	return nil
}

// BedrockResponseContext is what a Bedrock response translator needs from
// its request: Converse responses carry neither a model nor an id, and name
// renamed tools by their Converse names.
type BedrockResponseContext struct {
	// Model is reported as the response's model; usually the deployment's
	// model id or the client's model name.
	Model string
	// ID is the response id. Empty means "chatcmpl-bedrock"; the package
	// has no randomness, so callers wanting unique ids pass one.
	ID string
	// ToolNames maps Converse tool names back to the client's
	// (ToolNameMapper.ToolNames of the request translator). Nil means no
	// tool was renamed.
	ToolNames map[string]string
}

// defaultBedrockID is the response id when the context gives none.
const defaultBedrockID = "chatcmpl-bedrock"

// NewOpenAIToBedrockResponse returns a translator from Converse responses,
// event streams and errors to chat completions.
func NewOpenAIToBedrockResponse(o ResponseOptions, c BedrockResponseContext) ResponseTranslator {
	if c.ID == "" {
		c.ID = defaultBedrockID
	}
	return &openAIToBedrockResponse{opts: o, ctx: c, chunks: chatChunkWriter{id: c.ID, model: c.Model, created: o.Created}}
}

// openAIToBedrockResponse translates Converse responses.
type openAIToBedrockResponse struct {
	opts ResponseOptions
	ctx  BedrockResponseContext

	// Stream state.
	dec       eventStreamDecoder
	out       []byte
	chunks    chatChunkWriter
	tokens    bedrockTokens
	blocks    streamBlocks
	toolCalls int
	jsonMode  bool
	// stopped is set by messageStop; ended after the stream's end or an
	// error, when later input is ignored.
	stopped, ended, done bool
	err                  *ProviderError
}

var _ ResponseTranslator = (*openAIToBedrockResponse)(nil)

// bedrockTokens are Converse's usage counters.
type bedrockTokens struct{ splitTokens }

func (t *bedrockTokens) update(u gjson.Result) {
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "inputTokens":
			t.input = v.Int()
		case "outputTokens":
			t.output = v.Int()
		case "cacheReadInputTokens":
			t.cacheRead = v.Int()
		case "cacheWriteInputTokens":
			t.cacheWrite = v.Int()
		}
		return true
	})
}

// appendToolName appends a tool name from the provider, mapped back.
func (r *openAIToBedrockResponse) appendToolName(dst []byte, v gjson.Result) []byte {
	if c, ok := r.ctx.ToolNames[v.Str]; ok {
		return appendJSONString(dst, c)
	}
	return appendRawString(dst, v)
}

// ResponseBody implements ResponseTranslator.
func (r *openAIToBedrockResponse) ResponseBody(body []byte) (ResponseResult, error) {
	if !gjson.ValidBytes(body) {
		return ResponseResult{}, fmt.Errorf("read bedrock response: %w: not JSON", ErrMalformedResponse)
	}
	doc := gjson.Parse(stringView(body))
	var output, usage, stop gjson.Result
	doc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "output":
			output = v
		case "usage":
			usage = v
		case "stopReason":
			stop = v
		}
		return true
	})
	if !output.IsObject() {
		if doc.IsObject() && (doc.Get("message").Exists() || doc.Get("Message").Exists()) {
			return ResponseResult{}, bedrockErrorBody(0, body)
		}
		return ResponseResult{}, fmt.Errorf("read bedrock response: %w: no output", ErrMalformedResponse)
	}
	content := output.Get("message.content")
	var tokens bedrockTokens
	tokens.update(usage)
	u := tokens.usage()

	out := make([]byte, 0, len(body)+256)
	out = append(out, `{"id":`...)
	out = appendJSONString(out, r.ctx.ID)
	out = append(out, `,"object":"chat.completion","created":`...)
	out = appendInt(out, r.opts.Created)
	out = append(out, `,"model":`...)
	out = appendJSONString(out, r.ctx.Model)
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)

	// The forced JSON tool's input is the structured output the client
	// asked for, so it becomes the content.
	var jsonInput gjson.Result
	content.ForEach(func(_, c gjson.Result) bool {
		if tu := c.Get("toolUse"); tu.Get("name").Str == jsonToolName {
			jsonInput = tu.Get("input")
			return false
		}
		return true
	})
	if jsonInput.Exists() {
		out = appendCompactAsString(out, jsonInput.Raw)
	} else {
		out = appendJoinedBlocks(out, content, "", "text", false)
	}
	out = appendJoinedBlocks(out, content, "", "reasoningContent.reasoningText.text", true)

	calls := 0
	content.ForEach(func(_, c gjson.Result) bool {
		tu := c.Get("toolUse")
		if !tu.IsObject() || tu.Get("name").Str == jsonToolName {
			return true
		}
		out = appendToolCallOpen(out, calls, tu.Get("toolUseId"))
		out = r.appendToolName(out, tu.Get("name"))
		out = appendToolCallInput(out, tu.Get("input"))
		calls++
		return true
	})
	if calls > 0 {
		out = append(out, ']')
	}
	finish := bedrockFinishReason(stop.Str)
	if jsonInput.Exists() && finish == "tool_calls" {
		finish = "stop"
	}
	out = append(out, "},"...)
	out = appendCompletionEnd(out, finish, u)
	return ResponseResult{Body: out, Usage: u, Model: r.ctx.Model}, nil
}

// StreamChunk implements ResponseTranslator. Body is a buffer reused by the
// next call.
func (r *openAIToBedrockResponse) StreamChunk(chunk []byte, final bool) (StreamResult, error) {
	r.out = r.out[:0]
	var err error
	rest := chunk
	for !r.ended {
		m, tail, ok, derr := r.dec.next(rest)
		if derr != nil {
			err = r.fail(fmt.Errorf("read bedrock stream: %w: %w", ErrMalformedResponse, derr))
			break
		}
		if !ok {
			break
		}
		rest = tail
		if err = r.message(&m); err != nil {
			break
		}
	}
	if final && !r.ended {
		switch {
		case r.dec.pending():
			err = r.fail(fmt.Errorf("read bedrock stream: %w: stream ends inside a message", ErrMalformedResponse))
		case r.stopped:
			// Streams without a metadata event still end cleanly.
			r.finish()
		}
	}
	return StreamResult{
		Body:  r.out,
		Usage: r.tokens.usage(),
		Model: r.ctx.Model,
		Done:  r.done,
		Err:   r.err,
	}, err
}

// fail ends the stream with an error event for an unreadable stream.
func (r *openAIToBedrockResponse) fail(err error) error {
	r.ended = true
	r.out = appendErrorEvent(r.out, unreadableEvent())
	return err
}

// message translates one event stream message.
func (r *openAIToBedrockResponse) message(m *eventMessage) error {
	switch string(m.messageType) {
	case "exception":
		msg := ""
		if gjson.ValidBytes(m.payload) {
			msg = gjson.GetBytes(m.payload, "message").String()
		}
		r.streamError(bedrockError(0, string(m.exceptionType), msg))
		return nil
	case "error":
		r.streamError(bedrockError(0, string(m.errorCode), string(m.errorMessage)))
		return nil
	case "event":
	default:
		return nil
	}
	if !gjson.ValidBytes(m.payload) {
		return r.fail(fmt.Errorf("read bedrock stream: %w: event is not JSON", ErrMalformedResponse))
	}
	ev := gjson.Parse(stringView(m.payload))
	switch string(m.eventType) {
	case "messageStart":
		r.out = r.chunks.start(r.out)
		r.out = append(r.out, `{"role":"assistant","content":""}`...)
		r.out = r.chunks.end(r.out, "")
	case "contentBlockStart":
		r.blockStart(ev.Get("contentBlockIndex").Int(), ev.Get("start"))
	case "contentBlockDelta":
		r.blockDelta(ev.Get("contentBlockIndex").Int(), ev.Get("delta"))
	case "messageStop":
		finish := bedrockFinishReason(ev.Get("stopReason").Str)
		if r.jsonMode && finish == "tool_calls" {
			finish = "stop"
		}
		r.out = r.chunks.start(r.out)
		r.out = append(r.out, `{}`...)
		r.out = r.chunks.end(r.out, finish)
		r.stopped = true
	case "metadata":
		r.tokens.update(ev.Get("usage"))
		r.finish()
	}
	return nil
}

// finish emits the usage chunk the client asked for and the end marker.
func (r *openAIToBedrockResponse) finish() {
	if r.opts.IncludeUsage {
		r.out = r.chunks.usage(r.out, r.tokens.usage())
	}
	r.out = append(r.out, "data: [DONE]\n\n"...)
	r.ended, r.done = true, true
}

func (r *openAIToBedrockResponse) streamError(e *ProviderError) {
	r.err = e
	r.out = appendErrorEvent(r.out, e)
	r.ended = true
}

// blockStart handles contentBlockStart, which Converse sends only for tool
// use: text and reasoning blocks start with their first delta.
func (r *openAIToBedrockResponse) blockStart(index int64, start gjson.Result) {
	b := r.blocks.at(index)
	tu := start.Get("toolUse")
	if b == nil || !tu.IsObject() {
		return
	}
	name := tu.Get("name")
	if name.Str == jsonToolName {
		*b = streamBlock{kind: blockJSON}
		r.jsonMode = true
		return
	}
	*b = streamBlock{kind: blockTool, tool: r.toolCalls}
	r.toolCalls++
	r.out = r.chunks.toolCallStart(r.out, b.tool, tu.Get("toolUseId"))
	r.out = r.appendToolName(r.out, name)
	r.out = r.chunks.toolCallEnd(r.out)
}

func (r *openAIToBedrockResponse) blockDelta(index int64, d gjson.Result) {
	b := r.blocks.at(index)
	if b == nil {
		return
	}
	d.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "text":
			if v.Type == gjson.String && len(v.Raw) > len(`""`) && b.kind != blockTool && b.kind != blockJSON {
				r.out = r.chunks.delta(r.out, "content", v.Raw)
			}
		case "reasoningContent":
			if t := v.Get("text"); t.Type == gjson.String && len(t.Raw) > len(`""`) {
				r.out = r.chunks.delta(r.out, "reasoning_content", t.Raw)
			}
		case "toolUse":
			// Raw, not Str: unescaping would allocate per event.
			p := v.Get("input")
			if p.Type != gjson.String || len(p.Raw) <= len(`""`) {
				return false
			}
			switch b.kind {
			case blockJSON:
				r.out = r.chunks.delta(r.out, "content", p.Raw)
			case blockTool:
				r.out = r.chunks.toolCallArgs(r.out, b.tool, p.Raw)
			}
		}
		return false
	})
}

// ErrorBody implements ResponseTranslator.
func (r *openAIToBedrockResponse) ErrorBody(status int, body []byte) *ProviderError {
	return bedrockErrorBody(status, body)
}
