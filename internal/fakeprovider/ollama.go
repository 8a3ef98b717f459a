package fakeprovider

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Ollama serves Ollama's native chat API, POST /api/chat
// (https://github.com/ollama/ollama/blob/main/docs/api.md). It streams
// unless the request says "stream": false, as Ollama does, and streams
// newline-delimited JSON (application/x-ndjson), not SSE. Authentication is
// off unless WithAPIKey is given (bearer, as Ollama's cloud and
// authenticating proxies take it).
//
// Unlike Ollama, which ignores unknown fields, the fake rejects them, so
// that a translator sending a field Ollama would silently drop is caught.
const Ollama Kind = "ollama"

// ollamaAPI fakes Ollama's chat API.
type ollamaAPI struct{}

var (
	_ provider           = (*ollamaAPI)(nil)
	_ streamContentTyper = (*ollamaAPI)(nil)
)

// ollamaTopLevel are the request fields /api/chat documents.
var ollamaTopLevel = withKeys(map[string]bool{}, "model", "messages", "tools", "format", "options", "stream", "keep_alive", "think")

// ollamaMessageKeys are the fields a message takes.
var ollamaMessageKeys = withKeys(map[string]bool{}, "role", "content", "thinking", "images", "tool_calls", "tool_name")

// ollamaOptions are the options Ollama's runner accepts (the Modelfile
// parameters plus the runtime ones).
var ollamaOptions = withKeys(map[string]bool{}, "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p",
	"typical_p", "repeat_last_n", "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty",
	"stop", "num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "mirostat",
	"mirostat_eta", "mirostat_tau", "tfs_z", "penalize_newline", "numa", "low_vram")

func (*ollamaAPI) handles(path string) bool { return path == "/api/chat" }

func (*ollamaAPI) idPrefix() string     { return "ollama-" }
func (*ollamaAPI) toolIDPrefix() string { return "call_" }

func (*ollamaAPI) streamContentType() string { return "application/x-ndjson" }

func (*ollamaAPI) setResponseHeaders(http.Header, string) {}

func (*ollamaAPI) authenticate(h http.Header, key string) *apiError {
	if key == "" {
		return nil
	}
	if got, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer "); !ok || got != key {
		return &apiError{Status: http.StatusUnauthorized, Message: "unauthorized"}
	}
	return nil
}

func olInvalid(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func (*ollamaAPI) parse(_ http.Header, body []byte) (*call, *apiError) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, olInvalid("invalid character in request body")
	}
	root := gjson.ParseBytes(body)
	if e := unknownKey(root, ollamaTopLevel, func(k string) *apiError {
		return olInvalid("json: unknown field %q", k)
	}); e != nil {
		return nil, e
	}
	model := root.Get("model")
	if model.Type != gjson.String || model.Str == "" {
		return nil, olInvalid("model is required")
	}
	c := &call{model: model.Str, choices: 1, stream: true}
	if s := root.Get("stream"); s.Exists() {
		if s.Type != gjson.True && s.Type != gjson.False {
			return nil, olInvalid("json: cannot unmarshal %s into Go struct field ChatRequest.stream of type bool", jsonTypeName(s))
		}
		c.stream = s.Type == gjson.True
	}
	msgs := root.Get("messages")
	if !msgs.IsArray() {
		return nil, olInvalid("messages must be an array")
	}
	for i, m := range msgs.Array() {
		if e := ollamaMessage(c, i, m); e != nil {
			return nil, e
		}
	}
	if e := ollamaCheckOptions(c, root.Get("options")); e != nil {
		return nil, e
	}
	if f := root.Get("format"); f.Exists() && !(f.Type == gjson.String && f.Str == "json") && !f.IsObject() {
		return nil, olInvalid(`invalid format: %s; expected "json" or a valid JSON Schema`, f.Raw)
	}
	if th := root.Get("think"); th.Exists() && th.Type != gjson.True && th.Type != gjson.False &&
		th.Str != "low" && th.Str != "medium" && th.Str != "high" {
		return nil, olInvalid("invalid think value: %s", th.Raw)
	}
	tools := root.Get("tools")
	if tools.Exists() && !tools.IsArray() {
		return nil, olInvalid("tools must be an array")
	}
	for i, t := range tools.Array() {
		if t.Get("type").Str != "function" || t.Get("function.name").Type != gjson.String {
			return nil, olInvalid("tools[%d] must be a function with a name", i)
		}
	}
	return c, nil
}

// ollamaMessage validates one message and counts its text.
func ollamaMessage(c *call, i int, m gjson.Result) *apiError {
	if e := unknownKey(m, ollamaMessageKeys, func(k string) *apiError {
		return olInvalid("json: unknown field %q in messages[%d]", k, i)
	}); e != nil {
		return e
	}
	role := m.Get("role").Str
	switch role {
	case "system", "user", "assistant", "tool":
	default:
		return olInvalid("invalid role %q in messages[%d]", role, i)
	}
	content := m.Get("content")
	if content.Exists() && content.Type != gjson.String {
		// Ollama's content is a plain string; OpenAI part arrays are not
		// accepted here.
		return olInvalid("json: cannot unmarshal %s into Go struct field Message.messages.content of type string", jsonTypeName(content))
	}
	c.inputTokens += CountTokens(content.Str)
	if role == "user" {
		c.lastUser = content.Str
	}
	for j, img := range m.Get("images").Array() {
		if img.Type != gjson.String || strings.HasPrefix(img.Str, "data:") {
			return olInvalid("messages[%d].images[%d]: images must be base64 without a data: prefix", i, j)
		}
	}
	for j, tc := range m.Get("tool_calls").Array() {
		args := tc.Get("function.arguments")
		if tc.Get("function.name").Type != gjson.String || !args.IsObject() {
			return olInvalid("json: cannot unmarshal messages[%d].tool_calls[%d]: function.arguments must be an object", i, j)
		}
		c.inputTokens += CountTokens(args.Raw)
	}
	return nil
}

// ollamaCheckOptions validates options and reads num_predict.
func ollamaCheckOptions(c *call, opts gjson.Result) *apiError {
	if !opts.Exists() {
		return nil
	}
	if !opts.IsObject() {
		return olInvalid("options must be an object")
	}
	if e := unknownKey(opts, ollamaOptions, func(k string) *apiError {
		return olInvalid("invalid option provided: %s", k)
	}); e != nil {
		return e
	}
	if n := opts.Get("num_predict"); n.Exists() {
		if n.Type != gjson.Number || n.Num != float64(int64(n.Num)) {
			return olInvalid("option num_predict must be an integer")
		}
		if n.Num > 0 {
			c.maxTokens = int(n.Num)
		}
	}
	if s := opts.Get("stop"); s.Exists() && !s.IsArray() {
		return olInvalid("option stop must be an array of strings")
	}
	return nil
}

func (*ollamaAPI) canonicalError(status int) *apiError {
	e := &apiError{Status: status}
	switch {
	case status == http.StatusBadRequest:
		e.Message = "bad request"
	case status == http.StatusNotFound:
		e.Message = "model not found"
	case status == http.StatusTooManyRequests:
		e.Message = "server busy, please try again.  maximum pending requests exceeded"
	case status == http.StatusServiceUnavailable:
		e.Message = "server overloaded, please try again later"
	case status >= 500:
		e.Message = "llama runner process has terminated: exit status 2"
	default:
		e.Message = strings.ToLower(http.StatusText(status))
	}
	return e
}

func (*ollamaAPI) notFound(string, string) *apiError {
	return &apiError{Status: http.StatusNotFound, Message: "404 page not found"}
}

func (*ollamaAPI) badMethod(string, string) *apiError {
	return &apiError{Status: http.StatusMethodNotAllowed, Message: "405 method not allowed"}
}

// contextExceeded: Ollama truncates an over-long prompt by default; with
// truncation off its runner refuses it with this fixed message, which
// carries no counts.
func (*ollamaAPI) contextExceeded(int, int) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: "the input length exceeds the context length"}
}

func (*ollamaAPI) modelNotFound(model string) *apiError {
	return &apiError{Status: http.StatusNotFound, Message: fmt.Sprintf("model %q not found, try pulling it first", model)}
}

func (*ollamaAPI) errorBody(e *apiError) []byte {
	return mustJSON(struct {
		Error string `json:"error"`
	}{e.Message})
}

// Wire types of the responses, in the field order Ollama sends.
type (
	olResponse struct {
		Model              string    `json:"model"`
		CreatedAt          string    `json:"created_at"`
		Message            olMessage `json:"message"`
		DoneReason         string    `json:"done_reason,omitempty"`
		Done               bool      `json:"done"`
		TotalDuration      int64     `json:"total_duration,omitempty"`
		LoadDuration       int64     `json:"load_duration,omitempty"`
		PromptEvalCount    int       `json:"prompt_eval_count,omitempty"`
		PromptEvalDuration int64     `json:"prompt_eval_duration,omitempty"`
		EvalCount          int       `json:"eval_count,omitempty"`
		EvalDuration       int64     `json:"eval_duration,omitempty"`
	}
	olMessage struct {
		Role      string       `json:"role"`
		Content   string       `json:"content"`
		ToolCalls []olToolCall `json:"tool_calls,omitempty"`
	}
	olToolCall struct {
		Function olFunction `json:"function"`
	}
	olFunction struct {
		Name      string   `json:"name"`
		Arguments jsonText `json:"arguments"`
	}
)

// jsonText is JSON text embedded as is.
type jsonText string

// MarshalJSON implements json.Marshaler.
func (j jsonText) MarshalJSON() ([]byte, error) { return []byte(j), nil }

func ollamaToolCalls(out outcome) []olToolCall {
	var calls []olToolCall
	for _, tc := range out.toolCalls {
		args := tc.args
		if !gjson.Valid(args) || !gjson.Parse(args).IsObject() {
			// Ollama parses the model's arguments into an object.
			args = "{}"
		}
		calls = append(calls, olToolCall{Function: olFunction{Name: tc.name, Arguments: jsonText(args)}})
	}
	return calls
}

// final is the last object: done, with the reason and the counts.
func (*ollamaAPI) final(c *call, out outcome, msg olMessage) olResponse {
	reason := "stop"
	if out.stop == stopLength {
		reason = "length"
	}
	return olResponse{
		Model: c.model, CreatedAt: out.created.UTC().Format(time.RFC3339Nano), Message: msg,
		DoneReason: reason, Done: true,
		TotalDuration: 1_000_000, LoadDuration: 1_000, PromptEvalDuration: 1_000, EvalDuration: 1_000,
		PromptEvalCount: out.usage.InputTokens + out.usage.CacheReadTokens + out.usage.CacheWriteTokens,
		EvalCount:       out.usage.OutputTokens + out.usage.ReasoningTokens,
	}
}

func (o *ollamaAPI) body(c *call, out outcome) []byte {
	return mustJSON(o.final(c, out, olMessage{Role: "assistant", Content: out.text, ToolCalls: ollamaToolCalls(out)}))
}

func (o *ollamaAPI) streamEvents(c *call, out outcome) []sseEvent {
	var events []sseEvent
	line := func(r olResponse) { events = append(events, sseEvent{raw: append(mustJSON(r), '\n')}) }
	at := out.created.UTC().Format(time.RFC3339Nano)
	for _, piece := range splitWords(out.text) {
		line(olResponse{Model: c.model, CreatedAt: at, Message: olMessage{Role: "assistant", Content: piece}})
	}
	if calls := ollamaToolCalls(out); len(calls) > 0 {
		line(olResponse{Model: c.model, CreatedAt: at, Message: olMessage{Role: "assistant", ToolCalls: calls}})
	}
	line(o.final(c, out, olMessage{Role: "assistant"}))
	return events
}
