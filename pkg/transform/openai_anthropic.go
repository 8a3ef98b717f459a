package transform

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// openAIToAnthropicRequest translates chat completions requests into
// Anthropic Messages API requests.
type openAIToAnthropicRequest struct {
	target Target
}

var _ RequestTranslator = (*openAIToAnthropicRequest)(nil)

// defaultAnthropicMaxTokens is sent when neither the client nor the
// deployment gives max_tokens, which Anthropic requires.
const defaultAnthropicMaxTokens = 4096

// RequestBody implements RequestTranslator.
func (t *openAIToAnthropicRequest) RequestBody(body []byte) (RequestResult, error) {
	var f chatRequest
	if err := f.parse(body, &t.target, anthropicUnsupported); err != nil {
		return RequestResult{}, err
	}

	b := anthropicRequestBuilder{out: make([]byte, 0, len(body)+256)}
	if err := b.build(&t.target, &f); err != nil {
		return RequestResult{}, err
	}
	res := RequestResult{
		Path:   t.target.BasePath + "/v1/messages",
		Body:   b.out,
		Stream: f.stream.Type == gjson.True,
		SetHeaders: []Header{
			{Key: "content-type", Value: "application/json"},
			{Key: "anthropic-version", Value: anthropicVersion},
		},
		// Envoy hands each attempt the headers the previous attempt left.
		RemoveHeaders: []string{"authorization", "api-key"},
	}
	if t.target.APIKey != "" {
		res.SetHeaders = append(res.SetHeaders, Header{Key: "x-api-key", Value: t.target.APIKey})
	} else {
		res.RemoveHeaders = append(res.RemoveHeaders, "x-api-key")
	}
	return res, nil
}

// anthropicUnsupported rejects parameters Anthropic cannot honour and whose
// silent loss the client would notice; Anthropic has no penalties and no
// seed either. parallel_tool_calls false is disable_parallel_tool_use.
func anthropicUnsupported(key string, v gjson.Result) error {
	if err := unsupportedParam(key, v, "anthropic"); err != nil {
		return err
	}
	if err := unsupportedSeed(key, "anthropic"); err != nil {
		return err
	}
	return unsupportedPenalty(key, v, "anthropic")
}

// anthropicRequestBuilder appends an Anthropic request body to out.
type anthropicRequestBuilder struct {
	out []byte
	// turn is the role of the open message ("" when none); consecutive
	// blocks of one role share a message so that roles alternate.
	turn  string
	turns int
	// inResult redirects blocks into the content of a tool_result.
	inResult     bool
	resultBlocks int
	// thinking is on, from the client's thinking or reasoning_effort.
	thinking bool
}

func (b *anthropicRequestBuilder) build(t *Target, f *chatRequest) error {
	var err error
	b.out = append(b.out, `{"model":`...)
	if b.out, err = appendModel(b.out, t, f); err != nil {
		return err
	}

	fallback := t.DefaultMaxTokens
	if fallback <= 0 {
		fallback = defaultAnthropicMaxTokens
	}
	var maxTokens int64
	if name, v := f.maxTokensParam(); v.Exists() {
		if v.Type != gjson.Number || v.Int() < 1 {
			return invalidf(name, "%s must be a positive integer", name)
		}
		maxTokens = v.Int()
	}
	// The client's thinking object wins over reasoning_effort.
	var budget int64
	if !f.thinking.Exists() {
		if budget, err = effortThinkingBudget(f.reasoningEffort); err != nil {
			return err
		}
	}
	switch {
	case budget > 0:
		maxTokens, budget = fitThinking(maxTokens, fallback, budget)
	case maxTokens == 0:
		maxTokens = fallback
	}
	thinkingType := f.thinking.Get("type").Str
	b.thinking = budget > 0 || thinkingType != "" && thinkingType != "disabled"
	b.out = append(b.out, `,"max_tokens":`...)
	b.out = appendInt(b.out, maxTokens)

	if !f.messages.IsArray() {
		return invalidf("messages", "messages must be an array")
	}
	if err := b.system(f.messages); err != nil {
		return err
	}
	if err := b.messages(f.messages); err != nil {
		return err
	}
	if err := b.tools(f); err != nil {
		return err
	}
	if err := b.stop(f.stop); err != nil {
		return err
	}
	// top_k is no OpenAI parameter, but clients written for LiteLLM send
	// it and Anthropic takes it.
	for _, p := range [...]struct {
		name    string
		v       gjson.Result
		integer bool
	}{{"temperature", f.temperature, false}, {"top_p", f.topP, false}, {"top_k", f.topK, true}} {
		if !p.v.Exists() {
			continue
		}
		if p.v.Type != gjson.Number || (p.integer && p.v.Num != float64(int64(p.v.Num))) {
			return invalidf(p.name, "%s must be a number", p.name)
		}
		b.out = append(b.out, ',', '"')
		b.out = append(b.out, p.name...)
		b.out = append(b.out, '"', ':')
		b.out = append(b.out, p.v.Raw...)
	}
	// safety_identifier is OpenAI's successor to user for abuse
	// detection, which is what metadata.user_id is for.
	for _, u := range [...]gjson.Result{f.safetyIdentifier, f.user} {
		if u.Type == gjson.String && validUserID(u.Str) {
			b.out = append(b.out, `,"metadata":{"user_id":`...)
			b.out = append(b.out, u.Raw...)
			b.out = append(b.out, '}')
			break
		}
	}
	switch {
	case f.thinking.IsObject():
		b.out = append(b.out, `,"thinking":`...)
		b.out = append(b.out, f.thinking.Raw...)
	case budget > 0:
		b.out = append(b.out, `,"thinking":{"type":"enabled","budget_tokens":`...)
		b.out = appendInt(b.out, budget)
		b.out = append(b.out, '}')
	}
	if f.stream.Type == gjson.True {
		b.out = append(b.out, `,"stream":true`...)
	}
	b.out = append(b.out, '}')
	return nil
}

// validUserID reports whether a client's user may be sent as
// metadata.user_id, which Anthropic asks not to carry contact details.
func validUserID(u string) bool {
	if u == "" || strings.Contains(u, "@") {
		return false
	}
	phone := strings.Trim(u, "+0123456789-() ")
	return phone != ""
}

// system writes system and developer messages as top-level system blocks.
func (b *anthropicRequestBuilder) system(msgs gjson.Result) error {
	n := 0
	var err error
	msgs.ForEach(func(i, m gjson.Result) bool {
		role := m.Get("role").Str
		if role != "system" && role != "developer" {
			return true
		}
		content := m.Get("content")
		switch {
		case content.Type == gjson.String:
			if content.Str == "" {
				return true
			}
			b.out = appendSystemSep(b.out, n)
			n++
			b.out = appendTextBlock(b.out, content.Raw, m.Get("cache_control"))
		case content.IsArray():
			content.ForEach(func(j, part gjson.Result) bool {
				text := part.Get("text")
				if part.Get("type").Str != "text" || text.Type != gjson.String {
					err = invalidf(partParam(i, j), "system messages may contain only text parts")
					return false
				}
				if text.Str == "" {
					return true
				}
				b.out = appendSystemSep(b.out, n)
				n++
				b.out = appendTextBlock(b.out, text.Raw, part.Get("cache_control"))
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

func appendSystemSep(out []byte, n int) []byte {
	if n == 0 {
		return append(out, `,"system":[`...)
	}
	return append(out, ',')
}

// appendTextBlock appends a text block; text is a raw JSON string literal.
func appendTextBlock(out []byte, text string, cacheControl gjson.Result) []byte {
	out = append(out, `{"type":"text","text":`...)
	out = append(out, text...)
	return appendCacheControl(out, cacheControl)
}

// appendCacheControl closes a block, keeping the client's cache_control.
func appendCacheControl(out []byte, cc gjson.Result) []byte {
	if cc.IsObject() {
		out = append(out, `,"cache_control":`...)
		out = append(out, cc.Raw...)
	}
	return append(out, '}')
}

// messages writes the conversation. Tool results become user blocks, and
// consecutive messages of one Anthropic role are merged into one message.
func (b *anthropicRequestBuilder) messages(msgs gjson.Result) error {
	b.out = append(b.out, `,"messages":[`...)
	var err error
	msgs.ForEach(func(i, v gjson.Result) bool {
		var m chatMessage
		m.read(v)
		switch role := m.role.Str; role {
		case "system", "developer":
		case "user":
			err = b.userContent(i, m.content, m.cacheControl)
		case "assistant":
			err = b.assistant(i, &m)
		case "tool":
			err = b.toolResult(i, &m)
		default:
			err = invalidf(fmt.Sprintf("messages[%d].role", i.Int()), "role %q is not supported by anthropic models", role)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if b.turns == 0 {
		return invalidf("messages", "messages must contain at least one user or assistant message")
	}
	b.out = append(b.out, "]}]"...)
	return nil
}

// block starts a content block in a message of role, opening the message
// if the previous block had another role.
func (b *anthropicRequestBuilder) block(role string) {
	if b.inResult {
		if b.resultBlocks > 0 {
			b.out = append(b.out, ',')
		}
		b.resultBlocks++
		return
	}
	if b.turn == role {
		b.out = append(b.out, ',')
		return
	}
	if b.turn != "" {
		b.out = append(b.out, "]},"...)
	}
	b.out = append(b.out, `{"role":"`...)
	b.out = append(b.out, role...)
	b.out = append(b.out, `","content":[`...)
	b.turn = role
	b.turns++
}

// userContent writes user content (string or parts) as user blocks.
func (b *anthropicRequestBuilder) userContent(i, content, cacheControl gjson.Result) error {
	switch {
	case !content.Exists() || content.Type == gjson.Null:
		return nil
	case content.Type == gjson.String:
		if content.Str != "" {
			b.block("user")
			b.out = appendTextBlock(b.out, content.Raw, cacheControl)
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

func (b *anthropicRequestBuilder) userPart(i, j, v gjson.Result) error {
	var part contentPart
	part.read(v)
	switch typ := part.typ.Str; typ {
	case "text":
		if part.text.Type != gjson.String {
			return invalidf(partParam(i, j), "text parts must have a string text")
		}
		if part.text.Str != "" {
			b.block("user")
			b.out = appendTextBlock(b.out, part.text.Raw, part.cacheControl)
		}
		return nil
	case "image_url":
		url := part.imageURL
		if url.IsObject() {
			url = url.Get("url")
		}
		if url.Type != gjson.String {
			return invalidf(partParam(i, j), "image_url parts must have a string url")
		}
		b.block("user")
		var err error
		if b.out, err = appendImage(b.out, url.Str, partParam(i, j)); err != nil {
			return err
		}
		b.out = appendCacheControl(b.out, part.cacheControl)
		return nil
	default:
		return invalidf(partParam(i, j), "content part type %q is not supported by anthropic models", typ)
	}
}

// appendImage appends an image (or, for PDF data, document) block without
// its closing brace. Data URLs become base64 sources; web URLs are fetched
// by Anthropic.
func appendImage(out []byte, url, param string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(url, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, base64 := strings.CutSuffix(meta, ";base64")
		if !ok || !base64 || mediaType == "" {
			return out, invalidf(param, "image data URLs must be base64 with a media type")
		}
		if mediaType == "application/pdf" {
			out = append(out, `{"type":"document","source":{"type":"base64","media_type":`...)
		} else {
			out = append(out, `{"type":"image","source":{"type":"base64","media_type":`...)
		}
		out = appendJSONString(out, mediaType)
		out = append(out, `,"data":`...)
		out = appendJSONString(out, data)
		return append(out, '}'), nil
	}
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return out, invalidf(param, "image urls must be http(s) or base64 data URLs")
	}
	out = append(out, `{"type":"image","source":{"type":"url","url":`...)
	out = appendJSONString(out, url)
	return append(out, '}'), nil
}

// assistant writes an assistant message: text, then tool calls as tool_use
// blocks.
func (b *anthropicRequestBuilder) assistant(i gjson.Result, m *chatMessage) error {
	err := eachAssistantText(i, m.content, m.cacheControl, func(text, cc gjson.Result) {
		if text.Str != "" {
			b.block("assistant")
			b.out = appendTextBlock(b.out, text.Raw, cc)
		}
	})
	if err != nil {
		return err
	}
	return eachToolCall(i, m.toolCalls, b.toolUse)
}

func (b *anthropicRequestBuilder) toolUse(i, j, c gjson.Result) error {
	id, name := c.Get("id"), c.Get("function.name")
	if id.Type != gjson.String || name.Type != gjson.String {
		return invalidf(toolCallParam(i, j, ""), "tool calls must have a string id and function.name")
	}
	input, err := toolCallInput(i, j, c.Get("function.arguments"))
	if err != nil {
		return err
	}
	b.block("assistant")
	b.out = append(b.out, `{"type":"tool_use","id":`...)
	b.out = append(b.out, id.Raw...)
	b.out = append(b.out, `,"name":`...)
	b.out = append(b.out, name.Raw...)
	b.out = append(b.out, `,"input":`...)
	b.out = append(b.out, input...)
	b.out = append(b.out, '}')
	return nil
}

// toolResult writes a tool message as a tool_result block in a user turn.
func (b *anthropicRequestBuilder) toolResult(i gjson.Result, m *chatMessage) error {
	id := m.toolCallID
	if id.Type != gjson.String {
		return invalidf(fmt.Sprintf("messages[%d].tool_call_id", i.Int()), "tool messages must have a string tool_call_id")
	}
	b.block("user")
	b.out = append(b.out, `{"type":"tool_result","tool_use_id":`...)
	b.out = append(b.out, id.Raw...)
	content := m.content
	switch {
	case !content.Exists() || content.Type == gjson.Null:
	case content.Type == gjson.String:
		if content.Str != "" {
			b.out = append(b.out, `,"content":`...)
			b.out = append(b.out, content.Raw...)
		}
	case content.IsArray():
		mark := len(b.out)
		b.out = append(b.out, `,"content":[`...)
		b.inResult, b.resultBlocks = true, 0
		var err error
		content.ForEach(func(j, part gjson.Result) bool {
			err = b.userPart(i, j, part)
			return err == nil
		})
		b.inResult = false
		if err != nil {
			return err
		}
		if b.resultBlocks == 0 {
			b.out = b.out[:mark]
		} else {
			b.out = append(b.out, ']')
		}
	default:
		return invalidf(contentParam(i), "content must be a string or an array of content parts")
	}
	b.out = appendCacheControl(b.out, m.cacheControl)
	return nil
}

// tools writes tools and tool_choice, adding the forced JSON tool for
// response_format.
func (b *anthropicRequestBuilder) tools(f *chatRequest) error {
	jsonSchema, err := responseFormatSchema(f.responseFormat)
	if err != nil {
		return err
	}
	n := 0
	err = eachTool(f.tools, "anthropic", func(t chatTool) error {
		err := b.tool(&t, n)
		n++
		return err
	})
	if err != nil {
		return err
	}
	webSearch := f.webSearchOptions.Exists()
	if webSearch {
		b.out = appendToolsSep(b.out, n)
		n++
		if b.out, err = appendWebSearchTool(b.out, f.webSearchOptions); err != nil {
			return err
		}
	}
	if jsonSchema != "" {
		b.out = appendToolsSep(b.out, n)
		n++
		b.out = append(b.out, `{"name":"`+jsonToolName+`","input_schema":`...)
		b.out = append(b.out, jsonSchema...)
		b.out = append(b.out, '}')
	}
	if n == 0 {
		// Anthropic rejects tool_choice without tools; with no tools
		// there is nothing to choose.
		return nil
	}
	b.out = append(b.out, ']')

	b.out = append(b.out, `,"tool_choice":{"type":`...)
	tc := f.toolChoice
	switch {
	case jsonSchema != "" && !b.thinking && !webSearch:
		// Anthropic refuses forced tools while thinking, so the model is
		// then only offered the JSON tool; forcing it would also leave no
		// turn to search in.
		b.out = append(b.out, `"tool","name":"`+jsonToolName+`"`...)
	case !tc.Exists(), tc.Str == "auto", jsonSchema != "":
		b.out = append(b.out, `"auto"`...)
	case tc.Str == "required":
		b.out = append(b.out, `"any"`...)
	case tc.Str == "none":
		b.out = append(b.out, `"none"}`...)
		return nil
	case tc.IsObject() && tc.Get("function.name").Type == gjson.String:
		b.out = append(b.out, `"tool","name":`...)
		b.out = append(b.out, tc.Get("function.name").Raw...)
	default:
		return invalidf("tool_choice", `tool_choice must be "auto", "required", "none" or {"type":"function","function":{"name":...}}`)
	}
	if f.parallelToolCalls.Type == gjson.False {
		b.out = append(b.out, `,"disable_parallel_tool_use":true`...)
	}
	b.out = append(b.out, '}')
	return nil
}

// appendToolsSep opens the tools array before tool n == 0, else separates.
func appendToolsSep(out []byte, n int) []byte {
	if n == 0 {
		return append(out, `,"tools":[`...)
	}
	return append(out, ',')
}

// webSearchMaxUses bounds Anthropic's searches by OpenAI's
// search_context_size, with LiteLLM's values; "" for an unknown size.
func webSearchMaxUses(size string) string {
	switch size {
	case "low":
		return "1"
	case "medium":
		return "5"
	case "high":
		return "10"
	}
	return ""
}

// appendWebSearchTool appends Anthropic's server web search tool for
// web_search_options. search_context_size becomes max_uses, and
// user_location's approximate city, region, country and timezone carry
// over: Anthropic's user_location has the same fields.
func appendWebSearchTool(out []byte, opts gjson.Result) ([]byte, error) {
	if !opts.IsObject() {
		return out, invalidf("web_search_options", "web_search_options must be an object")
	}
	out = append(out, `{"type":"web_search_20250305","name":"web_search"`...)
	if size := opts.Get("search_context_size"); size.Exists() {
		uses := webSearchMaxUses(size.Str)
		if uses == "" || size.Type != gjson.String {
			return out, invalidf("web_search_options.search_context_size", `search_context_size must be "low", "medium" or "high"`)
		}
		out = append(out, `,"max_uses":`...)
		out = append(out, uses...)
	}
	if loc := opts.Get("user_location"); loc.Exists() {
		approx := loc.Get("approximate")
		if !loc.IsObject() || loc.Get("type").Str != "approximate" || !approx.IsObject() {
			return out, invalidf("web_search_options.user_location", `user_location must be {"type":"approximate","approximate":{...}}`)
		}
		out = append(out, `,"user_location":{"type":"approximate"`...)
		for _, k := range [...]string{"city", "region", "country", "timezone"} {
			v := approx.Get(k)
			if !v.Exists() {
				continue
			}
			if v.Type != gjson.String {
				return out, invalidf("web_search_options.user_location.approximate."+k, "%s must be a string", k)
			}
			out = append(out, ',', '"')
			out = append(out, k...)
			out = append(out, '"', ':')
			out = append(out, v.Raw...)
		}
		out = append(out, '}')
	}
	return append(out, '}'), nil
}

func (b *anthropicRequestBuilder) tool(t *chatTool, n int) error {
	if t.name.Str == jsonToolName {
		return invalidf(t.param(".function.name"), "tool name %q is reserved for response_format", jsonToolName)
	}
	b.out = appendToolsSep(b.out, n)
	b.out = append(b.out, `{"name":`...)
	b.out = append(b.out, t.name.Raw...)
	if t.description.Type == gjson.String {
		b.out = append(b.out, `,"description":`...)
		b.out = append(b.out, t.description.Raw...)
	}
	b.out = append(b.out, `,"input_schema":`...)
	if t.parameters.IsObject() {
		b.out = append(b.out, t.parameters.Raw...)
	} else {
		b.out = append(b.out, `{"type":"object","properties":{}}`...)
	}
	b.out = appendCacheControl(b.out, t.cacheControl)
	return nil
}

// permissiveObjectSchema accepts any JSON object: json_object mode.
const permissiveObjectSchema = `{"type":"object","additionalProperties":true,"properties":{}}`

// responseFormatSchema returns the raw input schema for the forced JSON
// tool, or "" when the client asked for plain text.
func responseFormatSchema(rf gjson.Result) (string, error) {
	if !rf.Exists() {
		return "", nil
	}
	switch rf.Get("type").Str {
	case "text":
		return "", nil
	case "json_object":
		return permissiveObjectSchema, nil
	case "json_schema":
		s := rf.Get("json_schema.schema")
		if !s.Exists() {
			return permissiveObjectSchema, nil
		}
		if !s.IsObject() {
			return "", invalidf("response_format.json_schema.schema", "schema must be an object")
		}
		return s.Raw, nil
	}
	return "", invalidf("response_format", `response_format type must be "text", "json_object" or "json_schema"`)
}

// stop writes stop sequences. Whitespace-only sequences are dropped:
// Anthropic rejects them.
func (b *anthropicRequestBuilder) stop(stop gjson.Result) error {
	n := 0
	add := func(s gjson.Result) {
		if strings.TrimSpace(s.Str) == "" {
			return
		}
		if n == 0 {
			b.out = append(b.out, `,"stop_sequences":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, s.Raw...)
	}
	if err := eachStop(stop, add); err != nil {
		return err
	}
	if n > 0 {
		b.out = append(b.out, ']')
	}
	return nil
}

// openAIToAnthropicResponse translates Anthropic messages, event streams and
// errors into chat completions.
type openAIToAnthropicResponse struct {
	opts ResponseOptions

	// Stream state.
	carry  lineCarry
	out    []byte
	chunks chatChunkWriter
	tokens anthropicTokens
	model  string
	blocks streamBlocks
	// toolCalls counts the client's tool calls so far.
	toolCalls int
	jsonMode  bool
	// ended is set after message_stop or an error: later input is ignored.
	ended bool
	done  bool
	err   *ProviderError
}

var _ ResponseTranslator = (*openAIToAnthropicResponse)(nil)

// anthropicTokens are Anthropic's usage counters, each replaced whenever a
// later event reports it.
type anthropicTokens struct {
	splitTokens
	webSearches int64
}

func (t *anthropicTokens) usage() Usage {
	u := t.splitTokens.usage()
	u.WebSearches = t.webSearches
	return u
}

func (t *anthropicTokens) update(u gjson.Result) {
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "input_tokens":
			t.input = v.Int()
		case "output_tokens":
			t.output = v.Int()
		case "cache_read_input_tokens":
			t.cacheRead = v.Int()
		case "cache_creation_input_tokens":
			t.cacheWrite = v.Int()
		case "server_tool_use":
			t.webSearches = v.Get("web_search_requests").Int()
		}
		return true
	})
}

// ResponseBody implements ResponseTranslator.
func (r *openAIToAnthropicResponse) ResponseBody(body []byte) (ResponseResult, error) {
	if !gjson.ValidBytes(body) {
		return ResponseResult{}, fmt.Errorf("read anthropic message: %w: not JSON", ErrMalformedResponse)
	}
	doc := gjson.Parse(string(body))
	switch doc.Get("type").Str {
	case "message":
	case "error":
		return ResponseResult{}, anthropicError(0, doc.Get("error"))
	default:
		return ResponseResult{}, fmt.Errorf("read anthropic message: %w: not a message", ErrMalformedResponse)
	}
	content := doc.Get("content")
	var tokens anthropicTokens
	tokens.update(doc.Get("usage"))
	usage := tokens.usage()
	model := doc.Get("model")

	out := make([]byte, 0, len(body)+256)
	out = append(out, `{"id":`...)
	out = appendRawString(out, doc.Get("id"))
	out = append(out, `,"object":"chat.completion","created":`...)
	out = appendInt(out, r.opts.Created)
	out = append(out, `,"model":`...)
	out = appendRawString(out, model)
	out = append(out, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)

	// The forced JSON tool's input is the structured output the client
	// asked for, so it becomes the content.
	var jsonInput gjson.Result
	content.ForEach(func(_, c gjson.Result) bool {
		if c.Get("type").Str == "tool_use" && c.Get("name").Str == jsonToolName {
			jsonInput = c.Get("input")
			return false
		}
		return true
	})
	if jsonInput.Exists() {
		out = appendCompactAsString(out, jsonInput.Raw)
	} else {
		out = appendJoinedBlocks(out, content, "text", "text", false)
	}
	out = appendJoinedBlocks(out, content, "thinking", "thinking", true)

	calls := 0
	content.ForEach(func(_, c gjson.Result) bool {
		if c.Get("type").Str != "tool_use" || c.Get("name").Str == jsonToolName {
			return true
		}
		out = appendToolCallOpen(out, calls, c.Get("id"))
		out = appendRawString(out, c.Get("name"))
		out = appendToolCallInput(out, c.Get("input"))
		calls++
		return true
	})
	if calls > 0 {
		out = append(out, ']')
	}

	finish := anthropicFinishReason(doc.Get("stop_reason").Str)
	if jsonInput.Exists() && finish == "tool_calls" {
		finish = "stop"
	}
	out = append(out, "},"...)
	out = appendCompletionEnd(out, finish, usage)
	return ResponseResult{Body: out, Usage: usage, Model: model.Str}, nil
}

// StreamChunk implements ResponseTranslator. Body is a buffer reused by the
// next call.
func (r *openAIToAnthropicResponse) StreamChunk(chunk []byte, final bool) (StreamResult, error) {
	r.out = r.out[:0]
	// The writer heads streams that skip message_start.
	r.chunks.created = r.opts.Created
	err := eachSSELine(&r.carry, chunk, final, r)
	return StreamResult{
		Body:  r.out,
		Usage: r.tokens.usage(),
		Model: r.model,
		Done:  r.done,
		Err:   r.err,
	}, err
}

// line translates one complete SSE line. Anthropic's data payloads carry
// their own type, so event lines are not needed.
func (r *openAIToAnthropicResponse) line(line []byte) error {
	if r.ended {
		return nil
	}
	data, ok := sseData(line)
	if !ok || len(data) == 0 {
		return nil
	}
	if !gjson.ValidBytes(data) {
		r.ended = true
		r.out = appendErrorEvent(r.out, unreadableEvent())
		return fmt.Errorf("read anthropic stream: %w: event is not JSON", ErrMalformedResponse)
	}
	ev := gjson.Parse(stringView(data))
	switch ev.Get("type").Str {
	case "message_start":
		r.messageStart(ev.Get("message"))
	case "content_block_start":
		r.blockStart(ev.Get("index").Int(), ev.Get("content_block"))
	case "content_block_delta":
		r.blockDelta(ev.Get("index").Int(), ev.Get("delta"))
	case "message_delta":
		r.tokens.update(ev.Get("usage"))
		finish := anthropicFinishReason(ev.Get("delta.stop_reason").Str)
		if r.jsonMode && finish == "tool_calls" {
			finish = "stop"
		}
		r.out = r.chunks.start(r.out)
		r.out = append(r.out, `{}`...)
		r.out = r.chunks.end(r.out, finish)
	case "message_stop":
		if r.opts.IncludeUsage {
			r.out = r.chunks.usage(r.out, r.tokens.usage())
		}
		r.out = append(r.out, "data: [DONE]\n\n"...)
		r.ended, r.done = true, true
	case "error":
		r.err = anthropicError(0, ev.Get("error"))
		r.out = appendErrorEvent(r.out, r.err)
		r.ended = true
	}
	return nil
}

func (r *openAIToAnthropicResponse) messageStart(msg gjson.Result) {
	if m := msg.Get("model"); m.Type == gjson.String {
		r.model = strings.Clone(m.Str)
	}
	r.tokens.update(msg.Get("usage"))
	r.buildHead(msg)
	r.out = r.chunks.start(r.out)
	r.out = append(r.out, `{"role":"assistant","content":""}`...)
	r.out = r.chunks.end(r.out, "")
}

// buildHead builds the chunk head from the message_start message, with
// its id and model as sent. Streams that skip message_start get the
// writer's head, with both "".
func (r *openAIToAnthropicResponse) buildHead(msg gjson.Result) {
	h := append(r.chunks.head[:0], `{"id":`...)
	h = appendRawString(h, msg.Get("id"))
	h = append(h, `,"object":"chat.completion.chunk","created":`...)
	h = appendInt(h, r.opts.Created)
	h = append(h, `,"model":`...)
	h = appendRawString(h, msg.Get("model"))
	r.chunks.head = append(h, `,"choices":[`...)
}

func (r *openAIToAnthropicResponse) blockStart(index int64, cb gjson.Result) {
	b := r.blocks.at(index)
	if b == nil {
		return
	}
	*b = streamBlock{}
	switch cb.Get("type").Str {
	case "text":
		b.kind = blockText
		if t := cb.Get("text"); t.Type == gjson.String && t.Str != "" {
			r.out = r.chunks.delta(r.out, "content", t.Raw)
		}
	case "thinking":
		b.kind = blockThinking
		if t := cb.Get("thinking"); t.Type == gjson.String && t.Str != "" {
			r.out = r.chunks.delta(r.out, "reasoning_content", t.Raw)
		}
	case "tool_use":
		if cb.Get("name").Str == jsonToolName {
			b.kind = blockJSON
			r.jsonMode = true
			return
		}
		b.kind, b.tool = blockTool, r.toolCalls
		r.toolCalls++
		r.out = r.chunks.toolCallStart(r.out, b.tool, cb.Get("id"))
		r.out = appendRawString(r.out, cb.Get("name"))
		r.out = r.chunks.toolCallEnd(r.out)
	}
}

func (r *openAIToAnthropicResponse) blockDelta(index int64, d gjson.Result) {
	b := r.blocks.at(index)
	if b == nil {
		return
	}
	switch d.Get("type").Str {
	case "text_delta":
		if t := d.Get("text"); t.Type == gjson.String && b.kind == blockText {
			r.out = r.chunks.delta(r.out, "content", t.Raw)
		}
	case "thinking_delta":
		if t := d.Get("thinking"); t.Type == gjson.String && b.kind == blockThinking {
			r.out = r.chunks.delta(r.out, "reasoning_content", t.Raw)
		}
	case "input_json_delta":
		// Raw, not Str: unescaping would allocate per event.
		p := d.Get("partial_json")
		if p.Type != gjson.String || len(p.Raw) <= len(`""`) {
			return
		}
		switch b.kind {
		case blockJSON:
			r.out = r.chunks.delta(r.out, "content", p.Raw)
		case blockTool:
			r.out = r.chunks.toolCallArgs(r.out, b.tool, p.Raw)
		}
	}
}

// ErrorBody implements ResponseTranslator.
func (r *openAIToAnthropicResponse) ErrorBody(status int, body []byte) *ProviderError {
	return anthropicErrorBody(status, body)
}
