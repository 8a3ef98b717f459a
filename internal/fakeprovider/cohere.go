package fakeprovider

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
)

// Cohere serves Cohere's v2 Chat API, POST /v2/chat
// (https://docs.cohere.com/reference/chat), with bearer auth. Streams are
// SSE events named by type (message-start, content-delta, tool-call-*,
// message-end with usage) ending with data: [DONE].
const Cohere Kind = "cohere"

// cohereAPI fakes Cohere's v2 Chat API.
type cohereAPI struct{}

var _ provider = (*cohereAPI)(nil)

// cohereTopLevel are the request fields v2 chat documents.
var cohereTopLevel = withKeys(map[string]bool{}, "stream", "model", "messages", "tools", "strict_tools",
	"documents", "citation_options", "response_format", "safety_mode", "max_tokens", "stop_sequences",
	"temperature", "seed", "frequency_penalty", "presence_penalty", "k", "p", "logprobs", "tool_choice",
	"thinking", "priority")

// cohereMessageKeys are the fields each message role takes.
var cohereMessageKeys = map[string]map[string]bool{
	"system":    withKeys(map[string]bool{}, "role", "content"),
	"user":      withKeys(map[string]bool{}, "role", "content"),
	"assistant": withKeys(map[string]bool{}, "role", "content", "tool_calls", "tool_plan", "citations"),
	"tool":      withKeys(map[string]bool{}, "role", "tool_call_id", "content"),
}

func (*cohereAPI) handles(path string) bool { return path == "/v2/chat" }

func (*cohereAPI) idPrefix() string     { return "co-" }
func (*cohereAPI) toolIDPrefix() string { return "tool_" }

func (*cohereAPI) setResponseHeaders(h http.Header, requestID string) {
	h.Set("X-Debug-Trace-Id", requestID)
}

func (*cohereAPI) authenticate(h http.Header, key string) *apiError {
	got, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	switch {
	case key == "":
		return nil
	case !ok || got == "":
		return &apiError{Status: http.StatusUnauthorized, Message: "no api key supplied"}
	case got != key:
		return &apiError{Status: http.StatusUnauthorized, Message: "invalid api token"}
	}
	return nil
}

func coInvalid(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: "invalid request: " + fmt.Sprintf(format, args...)}
}

func (*cohereAPI) parse(_ http.Header, body []byte) (*call, *apiError) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, coInvalid("body must be a JSON object")
	}
	root := gjson.ParseBytes(body)
	if e := unknownKey(root, cohereTopLevel, func(k string) *apiError {
		return coInvalid("unknown field: parameter %s is not a valid field", k)
	}); e != nil {
		return nil, e
	}
	model := root.Get("model")
	if model.Type != gjson.String || model.Str == "" {
		return nil, coInvalid("model must be a string")
	}
	msgs := root.Get("messages")
	if !msgs.IsArray() || len(msgs.Array()) == 0 {
		return nil, coInvalid("messages must be a non-empty array")
	}
	c := &call{model: model.Str, choices: 1, stream: root.Get("stream").Bool()}
	for i, m := range msgs.Array() {
		if e := cohereMessage(c, i, m); e != nil {
			return nil, e
		}
	}
	for _, f := range []string{"max_tokens", "seed", "k"} {
		if v := root.Get(f); v.Exists() && (v.Type != gjson.Number || v.Num != float64(int64(v.Num)) || v.Num < 0) {
			return nil, coInvalid("%s must be a non-negative integer", f)
		}
	}
	for _, f := range []string{"temperature", "p", "frequency_penalty", "presence_penalty"} {
		if v := root.Get(f); v.Exists() && v.Type != gjson.Number {
			return nil, coInvalid("%s must be a number", f)
		}
	}
	if ss := root.Get("stop_sequences"); ss.Exists() && !ss.IsArray() {
		return nil, coInvalid("stop_sequences must be an array of strings")
	}
	c.maxTokens = int(root.Get("max_tokens").Int())
	if e := cohereTools(c, root); e != nil {
		return nil, e
	}
	if rf := root.Get("response_format"); rf.Exists() {
		if t := rf.Get("type").Str; t != "text" && t != "json_object" {
			return nil, coInvalid("response_format.type must be one of text, json_object")
		}
		if rf.Get("schema").Exists() {
			// v1's name; v2 calls it json_schema.
			return nil, coInvalid("response_format.schema is not a valid field, use json_schema")
		}
	}
	return c, nil
}

// cohereMessage validates one message and counts its text.
func cohereMessage(c *call, i int, m gjson.Result) *apiError {
	role := m.Get("role").Str
	keys, ok := cohereMessageKeys[role]
	if !ok {
		return coInvalid("messages[%d].role must be one of user, assistant, system, tool", i)
	}
	if e := unknownKey(m, keys, func(k string) *apiError {
		return coInvalid("messages[%d]: unknown field %s", i, k)
	}); e != nil {
		return e
	}
	content := m.Get("content")
	text, e := cohereText(i, content)
	if e != nil {
		return e
	}
	c.inputTokens += CountTokens(text)
	switch role {
	case "user":
		if !content.Exists() {
			return coInvalid("messages[%d].content is required", i)
		}
		c.lastUser = text
	case "system":
		if !content.Exists() {
			return coInvalid("messages[%d].content is required", i)
		}
	case "tool":
		if m.Get("tool_call_id").Type != gjson.String {
			return coInvalid("messages[%d].tool_call_id is required", i)
		}
	case "assistant":
		calls := m.Get("tool_calls")
		if !content.Exists() && !calls.Exists() {
			return coInvalid("messages[%d]: assistant messages must have content or tool_calls", i)
		}
		for j, tc := range calls.Array() {
			if tc.Get("id").Type != gjson.String || tc.Get("function.name").Type != gjson.String {
				return coInvalid("messages[%d].tool_calls[%d] must have an id and function.name", i, j)
			}
			args := tc.Get("function.arguments")
			if args.Type != gjson.String || !gjson.Valid(args.Str) {
				return coInvalid("messages[%d].tool_calls[%d].function.arguments must be a JSON string", i, j)
			}
			c.inputTokens += CountTokens(args.Str)
		}
	}
	return nil
}

// cohereText joins the text of a string or an array of content parts
// (text, image_url and, in tool results, document).
func cohereText(i int, content gjson.Result) (string, *apiError) {
	switch {
	case !content.Exists() || content.Type == gjson.String:
		return content.Str, nil
	case !content.IsArray():
		return "", coInvalid("messages[%d].content must be a string or an array", i)
	}
	var parts []string
	for j, p := range content.Array() {
		switch p.Get("type").Str {
		case "text":
			if p.Get("text").Type != gjson.String {
				return "", coInvalid("messages[%d].content[%d].text must be a string", i, j)
			}
			parts = append(parts, p.Get("text").Str)
		case "image_url":
			if p.Get("image_url.url").Type != gjson.String {
				return "", coInvalid("messages[%d].content[%d].image_url.url must be a string", i, j)
			}
		case "document":
		default:
			return "", coInvalid("messages[%d].content[%d].type must be one of text, image_url, document", i, j)
		}
	}
	return strings.Join(parts, " "), nil
}

// cohereTools validates tools and tool_choice and finds a forced tool.
func cohereTools(c *call, root gjson.Result) *apiError {
	tools := root.Get("tools")
	if tools.Exists() && !tools.IsArray() {
		return coInvalid("tools must be an array")
	}
	for i, t := range tools.Array() {
		if t.Get("type").Str != "function" || t.Get("function.name").Type != gjson.String {
			return coInvalid("tools[%d] must be a function with a name", i)
		}
		if e := unknownKey(t.Get("function"), withKeys(map[string]bool{}, "name", "description", "parameters"), func(k string) *apiError {
			return coInvalid("tools[%d].function: unknown field %s", i, k)
		}); e != nil {
			return e
		}
	}
	switch tc := root.Get("tool_choice"); {
	case !tc.Exists():
	case tc.Str == "REQUIRED":
		if len(tools.Array()) == 0 {
			return coInvalid("tool_choice requires tools")
		}
		c.forcedTool = tools.Get("0.function.name").Str
	case tc.Str == "NONE":
	default:
		return coInvalid("tool_choice must be one of REQUIRED, NONE")
	}
	return nil
}

func (*cohereAPI) canonicalError(status int) *apiError {
	e := &apiError{Status: status}
	switch status {
	case http.StatusBadRequest:
		e.Message = "invalid request: bad request"
	case http.StatusUnauthorized:
		e.Message = "invalid api token"
	case http.StatusPaymentRequired:
		e.Message = "Please add or update your payment method at https://dashboard.cohere.com/billing"
	case http.StatusNotFound:
		e.Message = "not found"
	case http.StatusRequestEntityTooLarge:
		e.Message = "request too large"
	case http.StatusTooManyRequests:
		e.Message = "You are past the per minute request limit, please wait before sending another request."
	case 499:
		e.Message = "request cancelled"
	case http.StatusServiceUnavailable:
		e.Message = "service unavailable"
	default:
		e.Message = "internal server error, this has been reported to our developers. id fake"
	}
	return e
}

func (*cohereAPI) notFound(method, path string) *apiError {
	return &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("route %s %s not found", method, path)}
}

func (*cohereAPI) badMethod(method, path string) *apiError {
	return &apiError{Status: http.StatusMethodNotAllowed, Message: fmt.Sprintf("method %s not allowed on %s", method, path)}
}

func (*cohereAPI) contextExceeded(tokens, window int) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(
		"too many tokens: size limit exceeded by %d tokens. Try using shorter or fewer inputs, or setting prompt_truncation='AUTO'.", tokens-window)}
}

func (*cohereAPI) modelNotFound(model string) *apiError {
	return &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf(
		"model '%s' not found, make sure the correct model ID was used and that you have access to the model.", model)}
}

func (*cohereAPI) errorBody(e *apiError) []byte {
	return mustJSON(struct {
		Message string `json:"message"`
	}{e.Message})
}

// Wire types of the responses, in the field order Cohere sends.
type (
	coResponse struct {
		ID           string    `json:"id"`
		Message      coMessage `json:"message"`
		FinishReason string    `json:"finish_reason"`
		Usage        coUsage   `json:"usage"`
	}
	coMessage struct {
		Role      string       `json:"role"`
		Content   []coText     `json:"content,omitempty"`
		ToolPlan  string       `json:"tool_plan,omitempty"`
		ToolCalls []coToolCall `json:"tool_calls,omitempty"`
	}
	coText struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	coToolCall struct {
		ID       string     `json:"id,omitempty"`
		Type     string     `json:"type,omitempty"`
		Function coFunction `json:"function"`
	}
	coFunction struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
	coTokens struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	}
	coUsage struct {
		BilledUnits  coTokens `json:"billed_units"`
		Tokens       coTokens `json:"tokens"`
		CachedTokens int      `json:"cached_tokens,omitempty"`
	}
)

// cohereUsage reports usage: tokens counts everything the model read,
// billed_units the same here (the fake has no prompt template).
func cohereUsage(u Usage) coUsage {
	t := coTokens{InputTokens: u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens, OutputTokens: u.OutputTokens + u.ReasoningTokens}
	return coUsage{BilledUnits: t, Tokens: t, CachedTokens: u.CacheReadTokens}
}

func cohereFinish(out outcome) string {
	switch out.stop {
	case stopLength:
		return "MAX_TOKENS"
	case stopToolUse:
		return "TOOL_CALL"
	}
	return "COMPLETE"
}

func (*cohereAPI) body(_ *call, out outcome) []byte {
	r := coResponse{ID: out.id, Message: coMessage{Role: "assistant"}, FinishReason: cohereFinish(out), Usage: cohereUsage(out.usage)}
	if out.text != "" {
		r.Message.Content = []coText{{Type: "text", Text: out.text}}
	}
	for _, tc := range out.toolCalls {
		r.Message.ToolCalls = append(r.Message.ToolCalls, coToolCall{ID: tc.id, Type: "function", Function: coFunction{Name: tc.name, Arguments: tc.args}})
	}
	if len(out.toolCalls) > 0 {
		r.Message.ToolPlan = "I will call " + out.toolCalls[0].name + "."
	}
	return mustJSON(r)
}

func (*cohereAPI) streamEvents(_ *call, out outcome) []sseEvent {
	type delta struct {
		Message any `json:"message,omitempty"`
		// FinishReason and Usage are set on message-end only.
		FinishReason string   `json:"finish_reason,omitempty"`
		Usage        *coUsage `json:"usage,omitempty"`
	}
	type event struct {
		ID    string `json:"id,omitempty"`
		Type  string `json:"type"`
		Index *int   `json:"index,omitempty"`
		Delta *delta `json:"delta,omitempty"`
	}
	var events []sseEvent
	add := func(ev event) { events = append(events, sseEvent{name: ev.Type, data: mustJSON(ev)}) }
	idx := func(i int) *int { return &i }
	msg := func(m map[string]any) *delta { return &delta{Message: m} }

	add(event{ID: out.id, Type: "message-start", Delta: msg(map[string]any{
		"role": "assistant", "content": []any{}, "tool_plan": "", "tool_calls": []any{}, "citations": []any{}})})
	if out.text != "" {
		add(event{Type: "content-start", Index: idx(0), Delta: msg(map[string]any{"content": map[string]any{"type": "text", "text": ""}})})
		for _, piece := range splitWords(out.text) {
			add(event{Type: "content-delta", Index: idx(0), Delta: msg(map[string]any{"content": map[string]any{"text": piece}})})
		}
		add(event{Type: "content-end", Index: idx(0)})
	}
	if len(out.toolCalls) > 0 {
		for _, piece := range splitWords("I will call " + out.toolCalls[0].name + ".") {
			add(event{Type: "tool-plan-delta", Delta: msg(map[string]any{"tool_plan": piece})})
		}
	}
	for i, tc := range out.toolCalls {
		add(event{Type: "tool-call-start", Index: idx(i), Delta: msg(map[string]any{"tool_calls": coToolCall{
			ID: tc.id, Type: "function", Function: coFunction{Name: tc.name}}})})
		for _, piece := range splitRunes(tc.args, 8) {
			add(event{Type: "tool-call-delta", Index: idx(i), Delta: msg(map[string]any{"tool_calls": map[string]any{
				"function": map[string]any{"arguments": piece}}})})
		}
		add(event{Type: "tool-call-end", Index: idx(i)})
	}
	u := cohereUsage(out.usage)
	add(event{Type: "message-end", Delta: &delta{FinishReason: cohereFinish(out), Usage: &u}})
	return append(events, sseEvent{data: []byte("[DONE]")})
}
