package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/tidwall/gjson"
)

// anthropicAPI fakes the Anthropic Messages API.
type anthropicAPI struct{}

var _ provider = (*anthropicAPI)(nil)

// anthropicTopLevel holds the accepted top-level fields: the SDK's params
// plus "stream", which the SDK adds only when streaming.
var anthropicTopLevel = withKeys(jsonKeys(reflect.TypeFor[anthropic.MessageNewParams]()), "stream")

var anthropicMessageKeys = jsonKeys(reflect.TypeFor[anthropic.MessageParam]())

// anthropicVersions are the anthropic-version values the API accepts.
var anthropicVersions = []string{"2023-06-01", "2023-01-01"}

// handles includes Claude on Vertex AI's paths (anthropic_vertex.go).
func (*anthropicAPI) handles(path string) bool {
	return path == "/v1/messages" || parseAnthropicVertexRoute(path).ok
}

func (*anthropicAPI) idPrefix() string     { return "msg_" }
func (*anthropicAPI) toolIDPrefix() string { return "toolu_" }

func (*anthropicAPI) setResponseHeaders(h http.Header, requestID string) {
	h.Set("Request-Id", requestID)
}

func (*anthropicAPI) authenticate(h http.Header, key string) *apiError {
	got := h.Get("X-Api-Key")
	switch {
	case key != "" && got == "":
		return &apiError{Status: http.StatusUnauthorized, Type: "authentication_error", Message: "x-api-key header is required"}
	case key != "" && got != key:
		return &apiError{Status: http.StatusUnauthorized, Type: "authentication_error", Message: "invalid x-api-key"}
	}
	switch v := h.Get("Anthropic-Version"); {
	case v == "":
		return anInvalid("anthropic-version: header is required")
	case !slices.Contains(anthropicVersions, v):
		return anInvalid(fmt.Sprintf("anthropic-version: invalid version %q", v))
	}
	return nil
}

func anInvalid(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: msg}
}

func (*anthropicAPI) parse(_ http.Header, body []byte) (*call, *apiError) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, anInvalid("There was an issue with your request body: it must be a valid JSON object")
	}
	root := gjson.ParseBytes(body)
	if e := validateAnthropic(root); e != nil {
		return nil, e
	}
	var p anthropic.MessageNewParams
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, anInvalid("There was an issue with your request body: " + err.Error())
	}
	c := &call{
		model:     p.Model,
		stream:    root.Get("stream").Bool(),
		maxTokens: int(p.MaxTokens),
		choices:   1,
	}
	for _, b := range p.System {
		c.inputTokens += CountTokens(b.Text)
	}
	for _, m := range root.Get("messages").Array() {
		text := anthropicText(m.Get("content"))
		c.inputTokens += CountTokens(text)
		if m.Get("role").String() == "user" {
			c.lastUser = anthropicUserText(m.Get("content"))
		}
	}
	switch tc := root.Get("tool_choice"); tc.Get("type").String() {
	case "any":
		c.forcedTool = root.Get("tools.0.name").String()
	case "tool":
		c.forcedTool = tc.Get("name").String()
	}
	return c, nil
}

// anthropicText joins every countable text of a message's content: text,
// thinking, tool_use input and tool_result content.
func anthropicText(content gjson.Result) string {
	if content.Type == gjson.String {
		return content.String()
	}
	var parts []string
	for _, b := range content.Array() {
		switch b.Get("type").String() {
		case "text":
			parts = append(parts, b.Get("text").String())
		case "thinking":
			parts = append(parts, b.Get("thinking").String())
		case "tool_use":
			parts = append(parts, b.Get("input").Raw)
		case "tool_result":
			parts = append(parts, anthropicText(b.Get("content")))
		}
	}
	return strings.Join(parts, " ")
}

// anthropicUserText joins only the text blocks of a user turn, the part the
// echo reply repeats.
func anthropicUserText(content gjson.Result) string {
	if content.Type == gjson.String {
		return content.String()
	}
	var parts []string
	for _, b := range content.Array() {
		if b.Get("type").String() == "text" {
			parts = append(parts, b.Get("text").String())
		}
	}
	return strings.Join(parts, " ")
}

// validateAnthropic applies the checks the real API makes and the SDK's
// lenient decoder does not.
func validateAnthropic(root gjson.Result) *apiError {
	if e := unknownKey(root, anthropicTopLevel, func(k string) *apiError {
		return anInvalid(k + ": Extra inputs are not permitted")
	}); e != nil {
		return e
	}
	if m := root.Get("model"); !m.Exists() {
		return anInvalid("model: Field required")
	} else if m.Type != gjson.String {
		return anInvalid("model: Input should be a valid string")
	}
	switch mt := root.Get("max_tokens"); {
	case !mt.Exists():
		return anInvalid("max_tokens: Field required")
	case mt.Type != gjson.Number || mt.Num != float64(int64(mt.Num)):
		return anInvalid("max_tokens: Input should be a valid integer")
	case mt.Int() < 1:
		return anInvalid("max_tokens: Input should be greater than or equal to 1")
	}
	if s := root.Get("stream"); s.Exists() && s.Type != gjson.True && s.Type != gjson.False {
		return anInvalid("stream: Input should be a valid boolean")
	}
	if e := validateAnthropicSystem(root.Get("system")); e != nil {
		return e
	}
	msgs := root.Get("messages")
	switch {
	case !msgs.Exists():
		return anInvalid("messages: Field required")
	case !msgs.IsArray():
		return anInvalid("messages: Input should be a valid list")
	case len(msgs.Array()) == 0:
		return anInvalid("messages: at least one message is required")
	}
	all := msgs.Array()
	// prevToolUses holds the tool_use ids of the previous assistant turn.
	var prevToolUses []string
	for i, m := range all {
		if e := validateAnthropicMessage(i, m, i == len(all)-1); e != nil {
			return e
		}
		role := m.Get("role").String()
		switch {
		case i == 0 && role != "user":
			return anInvalid(`messages: first message must use the "user" role`)
		case i > 0 && role == all[i-1].Get("role").String():
			return anInvalid(fmt.Sprintf(`messages: roles must alternate between "user" and "assistant", but found multiple %q roles in a row`, role))
		}
		var uses, results []string
		blocks := m.Get("content").Array()
		for j, b := range blocks {
			switch b.Get("type").String() {
			case "tool_use":
				uses = append(uses, b.Get("id").String())
			case "tool_result":
				if role != "user" {
					return anInvalid(fmt.Sprintf("messages.%d.content.%d: tool_result blocks are only allowed in user messages", i, j))
				}
				id := b.Get("tool_use_id").String()
				if !slices.Contains(prevToolUses, id) {
					return anInvalid(fmt.Sprintf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, j, id))
				}
				results = append(results, id)
			}
		}
		if role == "user" {
			var missing []string
			for _, id := range prevToolUses {
				if !slices.Contains(results, id) {
					missing = append(missing, id)
				}
			}
			if len(missing) > 0 {
				return anInvalid(fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i-1, strings.Join(missing, ", ")))
			}
		}
		prevToolUses = uses
	}
	return validateAnthropicTools(root)
}

func validateAnthropicSystem(sys gjson.Result) *apiError {
	switch {
	case !sys.Exists() || sys.Type == gjson.String:
		return nil
	case !sys.IsArray():
		return anInvalid("system: Input should be a valid list")
	}
	for i, b := range sys.Array() {
		if b.Get("type").String() != "text" || b.Get("text").Type != gjson.String {
			return anInvalid(fmt.Sprintf("system.%d: system content blocks must be text blocks with a text field", i))
		}
	}
	return nil
}

func validateAnthropicMessage(i int, m gjson.Result, last bool) *apiError {
	at := fmt.Sprintf("messages.%d", i)
	if !m.IsObject() {
		return anInvalid(at + ": Input should be a valid dictionary")
	}
	if e := unknownKey(m, anthropicMessageKeys, func(k string) *apiError {
		return anInvalid(fmt.Sprintf("%s.%s: Extra inputs are not permitted", at, k))
	}); e != nil {
		return e
	}
	switch role := m.Get("role"); {
	case !role.Exists():
		return anInvalid(at + ".role: Field required")
	case role.String() == "system":
		return anInvalid(`messages: Unexpected role "system". The Messages API accepts a top-level ` + "`system`" + ` parameter, not "system" as an input message role.`)
	case role.String() != "user" && role.String() != "assistant":
		return anInvalid(at + ".role: Input should be 'user' or 'assistant'")
	}
	content := m.Get("content")
	finalAssistant := last && m.Get("role").String() == "assistant"
	switch {
	case !content.Exists():
		return anInvalid(at + ".content: Field required")
	case content.Type == gjson.String:
		if content.String() == "" && !finalAssistant {
			return anInvalid(at + ": all messages must have non-empty content except for the optional final assistant message")
		}
		return nil
	case !content.IsArray():
		return anInvalid(at + ".content: Input should be a valid list")
	case len(content.Array()) == 0 && !finalAssistant:
		return anInvalid(at + ": all messages must have non-empty content except for the optional final assistant message")
	}
	for j, b := range content.Array() {
		bat := fmt.Sprintf("%s.content.%d", at, j)
		var u anthropic.ContentBlockParamUnion
		if !b.IsObject() || json.Unmarshal([]byte(b.Raw), &u) != nil || u.GetType() == nil {
			return anInvalid(fmt.Sprintf("%s: Input tag '%s' found using 'type' does not match any of the expected tags", bat, b.Get("type").String()))
		}
		switch b.Get("type").String() {
		case "text":
			if b.Get("text").Type != gjson.String {
				return anInvalid(bat + ".text: Field required")
			}
			if b.Get("text").String() == "" {
				return anInvalid("messages: text content blocks must be non-empty")
			}
		case "tool_use":
			for _, f := range []string{"id", "name"} {
				if b.Get(f).Type != gjson.String {
					return anInvalid(fmt.Sprintf("%s.%s: Field required", bat, f))
				}
			}
			if !b.Get("input").IsObject() {
				return anInvalid(bat + ".input: Input should be a valid dictionary")
			}
		case "tool_result":
			if b.Get("tool_use_id").Type != gjson.String {
				return anInvalid(bat + ".tool_use_id: Field required")
			}
		}
	}
	return nil
}

func validateAnthropicTools(root gjson.Result) *apiError {
	tools := root.Get("tools")
	if tools.Exists() && !tools.IsArray() {
		return anInvalid("tools: Input should be a valid list")
	}
	var names []string
	for i, t := range tools.Array() {
		if t.Get("name").Type != gjson.String {
			return anInvalid(fmt.Sprintf("tools.%d.name: Field required", i))
		}
		names = append(names, t.Get("name").String())
	}
	tc := root.Get("tool_choice")
	if !tc.Exists() {
		return nil
	}
	switch tc.Get("type").String() {
	case "auto", "none":
	case "any":
		if len(names) == 0 {
			return anInvalid("tool_choice: tool_choice may only be specified while providing tools")
		}
	case "tool":
		if !slices.Contains(names, tc.Get("name").String()) {
			return anInvalid(fmt.Sprintf("tool_choice.name: tool %q not found in tools", tc.Get("name").String()))
		}
	default:
		return anInvalid("tool_choice: Input tag '" + tc.Get("type").String() + "' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
	}
	return nil
}

func (*anthropicAPI) canonicalError(status int) *apiError {
	e := &apiError{Status: status}
	switch {
	case status == http.StatusBadRequest:
		e.Type, e.Message = "invalid_request_error", "invalid request"
	case status == http.StatusUnauthorized:
		e.Type, e.Message = "authentication_error", "invalid x-api-key"
	case status == http.StatusPaymentRequired:
		e.Type, e.Message = "billing_error", "Your credit balance is too low to access the Anthropic API."
	case status == http.StatusForbidden:
		e.Type, e.Message = "permission_error", "Your API key does not have permission to use the specified resource."
	case status == http.StatusNotFound:
		e.Type, e.Message = "not_found_error", "Not found"
	case status == http.StatusRequestEntityTooLarge:
		e.Type, e.Message = "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case status == http.StatusTooManyRequests:
		e.Type, e.Message = "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"
	case status == http.StatusGatewayTimeout:
		e.Type, e.Message = "timeout_error", "Request timed out"
	case status == 529:
		e.Type, e.Message = "overloaded_error", "Overloaded"
	case status >= 500:
		e.Type, e.Message = "api_error", "Internal server error"
	default:
		e.Type, e.Message = "invalid_request_error", http.StatusText(status)
	}
	return e
}

func (*anthropicAPI) notFound(_, _ string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "not_found_error", Message: "Not Found"}
}

func (*anthropicAPI) badMethod(method, _ string) *apiError {
	return &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Message: "Method " + method + " not allowed"}
}

func (*anthropicAPI) contextExceeded(tokens, window int) *apiError {
	return anInvalid(fmt.Sprintf("prompt is too long: %d tokens > %d maximum", tokens, window))
}

func (*anthropicAPI) modelNotFound(model string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "not_found_error", Message: "model: " + model}
}

func (*anthropicAPI) errorBody(e *apiError) []byte {
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	return mustJSON(struct {
		Type  string `json:"type"`
		Error detail `json:"error"`
	}{"error", detail{e.Type, e.Message}})
}

// Wire types of the responses, in the field order Anthropic sends.
type (
	anMessage struct {
		ID           string    `json:"id"`
		Type         string    `json:"type"`
		Role         string    `json:"role"`
		Model        string    `json:"model"`
		Content      []anBlock `json:"content"`
		StopReason   *string   `json:"stop_reason"`
		StopSequence *string   `json:"stop_sequence"`
		Usage        anUsage   `json:"usage"`
	}
	anBlock struct {
		Type  string          `json:"type"`
		Text  *string         `json:"text,omitempty"`
		ID    string          `json:"id,omitempty"`
		Name  string          `json:"name,omitempty"`
		Input json.RawMessage `json:"input,omitempty"`
	}
	anUsage struct {
		InputTokens              int    `json:"input_tokens"`
		CacheCreationInputTokens int    `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int    `json:"cache_read_input_tokens"`
		OutputTokens             int    `json:"output_tokens"`
		ServiceTier              string `json:"service_tier"`
	}
	anEvent struct {
		Type         string         `json:"type"`
		Message      *anMessage     `json:"message,omitempty"`
		Index        *int           `json:"index,omitempty"`
		ContentBlock *anBlock       `json:"content_block,omitempty"`
		Delta        any            `json:"delta,omitempty"`
		Usage        *anOutputUsage `json:"usage,omitempty"`
	}
	anStop struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
	anOutputUsage struct {
		OutputTokens int `json:"output_tokens"`
	}
	anDelta struct {
		Type        string `json:"type"`
		Text        string `json:"text,omitempty"`
		PartialJSON string `json:"partial_json,omitempty"`
	}
)

func anthropicUsage(u Usage, output int) anUsage {
	return anUsage{InputTokens: u.InputTokens, CacheCreationInputTokens: u.CacheWriteTokens,
		CacheReadInputTokens: u.CacheReadTokens, OutputTokens: output, ServiceTier: "standard"}
}

func anthropicStop(out outcome) *string {
	r := "end_turn"
	switch out.stop {
	case stopLength:
		r = "max_tokens"
	case stopToolUse:
		r = "tool_use"
	}
	return &r
}

// toolInput is a tool call's arguments as a JSON value; arguments that are
// not JSON (a script may send them to test a gateway) become a string.
func toolInput(args string) json.RawMessage {
	if gjson.Valid(args) {
		return json.RawMessage(args)
	}
	return mustJSON(args)
}

func (*anthropicAPI) blocks(out outcome) []anBlock {
	var bs []anBlock
	if out.text != "" || len(out.toolCalls) == 0 {
		bs = append(bs, anBlock{Type: "text", Text: &out.text})
	}
	for _, tc := range out.toolCalls {
		bs = append(bs, anBlock{Type: "tool_use", ID: tc.id, Name: tc.name, Input: toolInput(tc.args)})
	}
	return bs
}

func (a *anthropicAPI) body(c *call, out outcome) []byte {
	return mustJSON(anMessage{ID: out.id, Type: "message", Role: "assistant", Model: c.model,
		Content: a.blocks(out), StopReason: anthropicStop(out),
		Usage: anthropicUsage(out.usage, out.usage.OutputTokens+out.usage.ReasoningTokens)})
}

func (a *anthropicAPI) streamEvents(c *call, out outcome) []sseEvent {
	var events []sseEvent
	add := func(ev anEvent) { events = append(events, sseEvent{name: ev.Type, data: mustJSON(ev)}) }
	// message_start carries the input usage and a placeholder output count,
	// as the real API does; the final count comes in message_delta.
	add(anEvent{Type: "message_start", Message: &anMessage{ID: out.id, Type: "message", Role: "assistant",
		Model: c.model, Content: []anBlock{}, Usage: anthropicUsage(out.usage, 1)}})
	for i, b := range a.blocks(out) {
		start := b
		var deltas []anDelta
		switch b.Type {
		case "text":
			empty := ""
			start.Text = &empty
			for _, piece := range splitWords(*b.Text) {
				deltas = append(deltas, anDelta{Type: "text_delta", Text: piece})
			}
		case "tool_use":
			start.Input = json.RawMessage("{}")
			for _, piece := range splitRunes(string(b.Input), 8) {
				deltas = append(deltas, anDelta{Type: "input_json_delta", PartialJSON: piece})
			}
		}
		add(anEvent{Type: "content_block_start", Index: &i, ContentBlock: &start})
		if i == 0 {
			add(anEvent{Type: "ping"})
		}
		for _, d := range deltas {
			add(anEvent{Type: "content_block_delta", Index: &i, Delta: d})
		}
		add(anEvent{Type: "content_block_stop", Index: &i})
	}
	add(anEvent{Type: "message_delta",
		Delta: anStop{StopReason: anthropicStop(out)},
		Usage: &anOutputUsage{OutputTokens: out.usage.OutputTokens + out.usage.ReasoningTokens}})
	add(anEvent{Type: "message_stop"})
	return events
}
