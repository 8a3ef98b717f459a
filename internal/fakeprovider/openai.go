package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"
)

// openAI fakes the OpenAI Chat Completions API, and the legacy Completions
// API through forRequest (completions.go).
type openAI struct{}

var _ provider = (*openAI)(nil)

// openAIRoleTypes maps each message role to the SDK type that defines its
// fields, so unknown message fields are rejected as the real API does.
var openAIRoleTypes = map[string]reflect.Type{
	"developer": reflect.TypeFor[openai.ChatCompletionDeveloperMessageParam](),
	"system":    reflect.TypeFor[openai.ChatCompletionSystemMessageParam](),
	"user":      reflect.TypeFor[openai.ChatCompletionUserMessageParam](),
	"assistant": reflect.TypeFor[openai.ChatCompletionAssistantMessageParam](),
	"tool":      reflect.TypeFor[openai.ChatCompletionToolMessageParam](),
	//lint:ignore SA1019 the API still accepts the deprecated "function" role.
	"function": reflect.TypeFor[openai.ChatCompletionFunctionMessageParam](),
}

// openAIPartTypes lists the content part types each role accepts.
var openAIPartTypes = map[string][]string{
	"developer": {"text"},
	"system":    {"text"},
	"user":      {"text", "image_url", "input_audio", "file"},
	"assistant": {"text", "refusal"},
	"tool":      {"text"},
}

// openAITopLevel holds the accepted top-level fields: the SDK's params plus
// "stream", which the SDK adds only when streaming.
var openAITopLevel = withKeys(jsonKeys(reflect.TypeFor[openai.ChatCompletionNewParams]()), "stream")

func (*openAI) handles(path string) bool {
	return path == "/v1/chat/completions" || path == "/chat/completions" || isCompletionsPath(path)
}

func (*openAI) idPrefix() string     { return "chatcmpl-" }
func (*openAI) toolIDPrefix() string { return "call_" }

func (*openAI) setResponseHeaders(h http.Header, requestID string) {
	h.Set("X-Request-Id", requestID)
	h.Set("Openai-Processing-Ms", "1")
}

func (*openAI) authenticate(h http.Header, key string) *apiError {
	auth := h.Get("Authorization")
	got, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || got == "" {
		if key == "" {
			return nil
		}
		return &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error",
			Message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."}
	}
	if key != "" && got != key {
		return &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
			Message: fmt.Sprintf("Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.", redactKey(got))}
	}
	return nil
}

// redactKey shows a key the way OpenAI's error does: its ends only.
func redactKey(k string) string {
	if len(k) <= 8 {
		return "****"
	}
	return k[:3] + "*****" + k[len(k)-4:]
}

func (*openAI) parse(_ http.Header, body []byte) (*call, *apiError) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error",
			Message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"}
	}
	root := gjson.ParseBytes(body)
	if e := validateOpenAI(root); e != nil {
		return nil, e
	}
	var p openai.ChatCompletionNewParams
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, oaInvalid("", "", "We could not parse the JSON body of your request: "+err.Error())
	}
	c := &call{
		model:        p.Model,
		stream:       root.Get("stream").Bool(),
		includeUsage: p.StreamOptions.IncludeUsage.Value,
		maxTokens:    int(p.MaxCompletionTokens.Value),
		choices:      max(int(p.N.Value), 1),
	}
	if c.maxTokens == 0 {
		c.maxTokens = int(p.MaxTokens.Value)
	}
	for _, m := range root.Get("messages").Array() {
		c.inputTokens += CountTokens(openAIText(m.Get("content")))
		for _, tc := range m.Get("tool_calls").Array() {
			c.inputTokens += CountTokens(tc.Get("function.arguments").String())
		}
		if m.Get("role").String() == "user" {
			c.lastUser = openAIText(m.Get("content"))
		}
	}
	switch tc := root.Get("tool_choice"); {
	case tc.String() == "required":
		c.forcedTool = root.Get("tools.0.function.name").String()
	case tc.IsObject():
		c.forcedTool = tc.Get("function.name").String()
		c.forcedByName = true
	}
	return c, nil
}

// openAIText joins the text of a string or content-part array.
func openAIText(content gjson.Result) string {
	if content.Type == gjson.String {
		return content.String()
	}
	var parts []string
	for _, p := range content.Array() {
		if t := p.Get("text"); t.Exists() {
			parts = append(parts, t.String())
		} else if t := p.Get("refusal"); t.Exists() {
			parts = append(parts, t.String())
		}
	}
	return strings.Join(parts, " ")
}

// validateOpenAIHead makes the checks OpenAI's APIs share: only known
// top-level fields, and a string model.
func validateOpenAIHead(root gjson.Result, allowed map[string]bool) *apiError {
	if e := unknownKey(root, allowed, func(k string) *apiError {
		return oaInvalid("", "", "Unrecognized request argument supplied: "+k)
	}); e != nil {
		return e
	}
	switch model := root.Get("model"); {
	case !model.Exists():
		return oaInvalid("", "", "you must provide a model parameter")
	case model.Type != gjson.String:
		return oaType("model", "a string", model)
	}
	return nil
}

// validateOpenAI applies the checks the real API makes and the SDK's lenient
// decoder does not: required fields, JSON types, roles, parts and the
// tool-call/tool-message pairing.
func validateOpenAI(root gjson.Result) *apiError {
	if e := validateOpenAIHead(root, openAITopLevel); e != nil {
		return e
	}
	for _, f := range []struct {
		name string
		want gjson.Type
		desc string
	}{
		{"stream", gjson.True, "a boolean"},
		{"max_tokens", gjson.Number, "an integer"},
		{"max_completion_tokens", gjson.Number, "an integer"},
		{"n", gjson.Number, "an integer"},
		{"temperature", gjson.Number, "a number"},
	} {
		v := root.Get(f.name)
		if !v.Exists() || v.Type == gjson.Null {
			continue
		}
		if v.Type != f.want && !(f.want == gjson.True && v.Type == gjson.False) {
			return oaType(f.name, f.desc, v)
		}
	}
	if so := root.Get("stream_options"); so.Exists() && so.Type != gjson.Null && !root.Get("stream").Bool() {
		return oaInvalid("stream_options", "invalid_value", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	msgs := root.Get("messages")
	switch {
	case !msgs.Exists():
		return oaInvalid("messages", "missing_required_parameter", "Missing required parameter: 'messages'.")
	case !msgs.IsArray():
		return oaType("messages", "an array of objects", msgs)
	case len(msgs.Array()) == 0:
		return oaInvalid("messages", "empty_array", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	// pending holds the tool_call ids of the last assistant turn that tool
	// messages have not answered yet.
	var pending []string
	for i, m := range msgs.Array() {
		at := fmt.Sprintf("messages[%d]", i)
		if e := validateOpenAIMessage(at, i, m); e != nil {
			return e
		}
		role := m.Get("role").String()
		if role == "tool" {
			id := m.Get("tool_call_id").String()
			k := slices.Index(pending, id)
			if k < 0 {
				return oaInvalid(fmt.Sprintf("messages.[%d].role", i), "",
					"Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.")
			}
			pending = append(pending[:k], pending[k+1:]...)
			continue
		}
		if len(pending) > 0 {
			return missingToolResponses(pending)
		}
		for _, tc := range m.Get("tool_calls").Array() {
			pending = append(pending, tc.Get("id").String())
		}
	}
	if len(pending) > 0 {
		return missingToolResponses(pending)
	}
	return validateOpenAITools(root)
}

func missingToolResponses(ids []string) *apiError {
	return oaInvalid("messages", "",
		"An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: "+strings.Join(ids, ", "))
}

func validateOpenAIMessage(at string, i int, m gjson.Result) *apiError {
	if !m.IsObject() {
		return oaType(at, "an object", m)
	}
	role := m.Get("role")
	if !role.Exists() {
		return oaInvalid(at+".role", "missing_required_parameter", fmt.Sprintf("Missing required parameter: '%s.role'.", at))
	}
	typ, ok := openAIRoleTypes[role.String()]
	if role.Type != gjson.String || !ok {
		return oaInvalid(at+".role", "invalid_value", fmt.Sprintf(
			"Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.", role.String()))
	}
	if e := unknownKey(m, jsonKeys(typ), func(k string) *apiError {
		return oaInvalid("", "", fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected) - 'messages.%d'", k, i))
	}); e != nil {
		return e
	}
	content := m.Get("content")
	hasCalls := len(m.Get("tool_calls").Array()) > 0 || m.Get("function_call").IsObject()
	switch {
	case !content.Exists() || content.Type == gjson.Null:
		if role.String() != "assistant" || !hasCalls {
			return oaInvalid(at+".content", "missing_required_parameter", fmt.Sprintf("Missing required parameter: '%s.content'.", at))
		}
	case content.Type == gjson.String:
	case content.IsArray():
		for j, p := range content.Array() {
			pat := fmt.Sprintf("%s.content[%d]", at, j)
			if !p.IsObject() {
				return oaType(pat, "an object", p)
			}
			allowed := openAIPartTypes[role.String()]
			pt := p.Get("type").String()
			if slices.Index(allowed, pt) < 0 {
				return oaInvalid(pat+".type", "invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: %s.", pt, quoteList(allowed)))
			}
			if pt == "text" && p.Get("text").Type != gjson.String {
				return oaInvalid(pat+".text", "missing_required_parameter", fmt.Sprintf("Missing required parameter: '%s.text'.", pat))
			}
		}
	default:
		return oaType(at+".content", "one of a string or array of objects", content)
	}
	switch role.String() {
	case "tool":
		if m.Get("tool_call_id").Type != gjson.String {
			return oaInvalid(at+".tool_call_id", "missing_required_parameter", fmt.Sprintf("Missing required parameter: '%s.tool_call_id'.", at))
		}
	case "assistant":
		for j, tc := range m.Get("tool_calls").Array() {
			tat := fmt.Sprintf("%s.tool_calls[%d]", at, j)
			for _, f := range []string{"id", "function.name", "function.arguments"} {
				if tc.Get(f).Type != gjson.String {
					return oaInvalid(tat+"."+f, "missing_required_parameter", fmt.Sprintf("Missing required parameter: '%s.%s'.", tat, f))
				}
			}
		}
	}
	return nil
}

func validateOpenAITools(root gjson.Result) *apiError {
	tools := root.Get("tools")
	if tools.Exists() && !tools.IsArray() {
		return oaType("tools", "an array of objects", tools)
	}
	for i, t := range tools.Array() {
		at := fmt.Sprintf("tools[%d]", i)
		switch t.Get("type").String() {
		case "function":
			if t.Get("function.name").Type != gjson.String {
				return oaInvalid(at+".function.name", "missing_required_parameter", fmt.Sprintf("Missing required parameter: '%s.function.name'.", at))
			}
		case "custom":
		default:
			return oaInvalid(at+".type", "invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'function' and 'custom'.", t.Get("type").String()))
		}
	}
	tc := root.Get("tool_choice")
	if !tc.Exists() || tc.Type == gjson.Null {
		return nil
	}
	if len(tools.Array()) == 0 {
		return oaInvalid("tool_choice", "", "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.")
	}
	switch {
	case tc.Type == gjson.String:
		if v := tc.String(); v != "none" && v != "auto" && v != "required" {
			return oaInvalid("tool_choice", "invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'none', 'auto', and 'required'.", v))
		}
	case tc.IsObject():
		if tc.Get("type").String() == "function" && tc.Get("function.name").Type != gjson.String {
			return oaInvalid("tool_choice.function.name", "missing_required_parameter", "Missing required parameter: 'tool_choice.function.name'.")
		}
	default:
		return oaType("tool_choice", "one of a string or object", tc)
	}
	return nil
}

func oaInvalid(param, code, msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: msg, Param: param, Code: code}
}

func oaType(param, want string, got gjson.Result) *apiError {
	return oaInvalid(param, "invalid_type", fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", param, want, jsonTypeName(got)))
}

func (*openAI) canonicalError(status int) *apiError {
	e := &apiError{Status: status, Type: "invalid_request_error"}
	switch {
	case status == http.StatusBadRequest:
		e.Message = "Invalid request."
	case status == http.StatusUnauthorized:
		e.Message, e.Code = "Incorrect API key provided.", "invalid_api_key"
	case status == http.StatusForbidden:
		e.Type, e.Code = "request_forbidden", "unsupported_country_region_territory"
		e.Message = "Country, region, or territory not supported"
	case status == http.StatusNotFound:
		e.Message = "The requested resource was not found."
	case status == http.StatusRequestEntityTooLarge:
		e.Message = "Request too large."
	case status == http.StatusTooManyRequests:
		e.Type, e.Code = "requests", "rate_limit_exceeded"
		e.Message = "Rate limit reached for requests. Please try again in 1s."
	case status == http.StatusServiceUnavailable:
		e.Type = "server_error"
		e.Message = "The engine is currently overloaded, please try again later."
	case status >= 500:
		e.Type = "server_error"
		e.Message = "The server had an error while processing your request. Sorry about that!"
	default:
		e.Message = http.StatusText(status)
	}
	return e
}

func (*openAI) notFound(method, path string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Message: fmt.Sprintf("Invalid URL (%s %s)", method, path)}
}

func (*openAI) badMethod(method, path string) *apiError {
	return &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Message: fmt.Sprintf("Invalid method for URL (%s %s)", method, path)}
}

func (*openAI) contextExceeded(tokens, window int) *apiError {
	return oaInvalid("messages", "context_length_exceeded", fmt.Sprintf(
		"This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. Please reduce the length of the messages.", window, tokens))
}

func (*openAI) modelNotFound(model string) *apiError {
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found",
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model)}
}

func (*openAI) errorBody(e *apiError) []byte {
	type body struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	b := body{Message: e.Message, Type: e.Type}
	if e.Param != "" {
		b.Param = &e.Param
	}
	if e.Code != "" {
		b.Code = &e.Code
	}
	return mustJSON(struct {
		Error body `json:"error"`
	}{b})
}

// Wire types of the responses, in the field order OpenAI sends.
type (
	oaResponse struct {
		ID      string     `json:"id"`
		Object  string     `json:"object"`
		Created int64      `json:"created"`
		Model   string     `json:"model"`
		Choices []oaChoice `json:"choices"`
		// Usage is nil (omitted), nullJSON (sent as null) or *oaUsage.
		Usage             any    `json:"usage,omitempty"`
		ServiceTier       string `json:"service_tier"`
		SystemFingerprint string `json:"system_fingerprint"`
	}
	oaChoice struct {
		Index        int             `json:"index"`
		Message      *oaMessage      `json:"message,omitempty"`
		Delta        *oaDelta        `json:"delta,omitempty"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	}
	oaMessage struct {
		Role        string       `json:"role"`
		Content     *string      `json:"content"`
		Refusal     *string      `json:"refusal"`
		ToolCalls   []oaToolCall `json:"tool_calls,omitempty"`
		Annotations []string     `json:"annotations"`
	}
	oaDelta struct {
		Role      string          `json:"role,omitempty"`
		Content   *string         `json:"content,omitempty"`
		Refusal   json.RawMessage `json:"refusal,omitempty"`
		ToolCalls []oaToolCall    `json:"tool_calls,omitempty"`
	}
	oaToolCall struct {
		Index    *int       `json:"index,omitempty"`
		ID       string     `json:"id,omitempty"`
		Type     string     `json:"type,omitempty"`
		Function oaFunction `json:"function"`
	}
	oaFunction struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
	oaUsage struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		TotalTokens         int `json:"total_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
			AudioTokens  int `json:"audio_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails struct {
			ReasoningTokens          int `json:"reasoning_tokens"`
			AudioTokens              int `json:"audio_tokens"`
			AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
			RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
		} `json:"completion_tokens_details"`
	}
)

func openAIUsage(u Usage) *oaUsage {
	var o oaUsage
	o.PromptTokens = u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens
	o.CompletionTokens = u.OutputTokens + u.ReasoningTokens
	o.TotalTokens = o.PromptTokens + o.CompletionTokens
	o.PromptTokensDetails.CachedTokens = u.CacheReadTokens
	o.CompletionTokensDetails.ReasoningTokens = u.ReasoningTokens
	return &o
}

func openAIFinish(c *call, out outcome) *string {
	r := "stop"
	switch {
	case out.stop == stopLength:
		r = "length"
	// OpenAI reports "stop", not "tool_calls", when tool_choice named the
	// function.
	case out.stop == stopToolUse && !c.forcedByName:
		r = "tool_calls"
	}
	return &r
}

func (*openAI) envelope(c *call, out outcome, object string) oaResponse {
	return oaResponse{ID: out.id, Object: object, Created: out.created.Unix(), Model: c.model,
		ServiceTier: "default", SystemFingerprint: "fp_fake"}
}

func (o *openAI) body(c *call, out outcome) []byte {
	r := o.envelope(c, out, "chat.completion")
	for i := range c.choices {
		m := &oaMessage{Role: "assistant", Annotations: []string{}}
		if out.text != "" || len(out.toolCalls) == 0 {
			m.Content = &out.text
		}
		for _, tc := range out.toolCalls {
			m.ToolCalls = append(m.ToolCalls, oaToolCall{ID: tc.id, Type: "function", Function: oaFunction{Name: tc.name, Arguments: tc.args}})
		}
		r.Choices = append(r.Choices, oaChoice{Index: i, Message: m, Logprobs: nullJSON, FinishReason: openAIFinish(c, out)})
	}
	r.Usage = openAIUsage(out.usage)
	return mustJSON(r)
}

func (o *openAI) streamEvents(c *call, out outcome) []sseEvent {
	var events []sseEvent
	chunk := func(choice oaChoice) {
		r := o.envelope(c, out, "chat.completion.chunk")
		choice.Logprobs = nullJSON
		r.Choices = []oaChoice{choice}
		// With include_usage OpenAI sends "usage": null on every chunk
		// but the last.
		if c.includeUsage {
			r.Usage = nullJSON
		}
		events = append(events, sseEvent{data: mustJSON(r)})
	}
	for i := range c.choices {
		empty := ""
		chunk(oaChoice{Index: i, Delta: &oaDelta{Role: "assistant", Content: &empty, Refusal: nullJSON}})
		for _, piece := range splitWords(out.text) {
			chunk(oaChoice{Index: i, Delta: &oaDelta{Content: &piece}})
		}
		for k, tc := range out.toolCalls {
			idx := k
			chunk(oaChoice{Index: i, Delta: &oaDelta{ToolCalls: []oaToolCall{{Index: &idx, ID: tc.id, Type: "function", Function: oaFunction{Name: tc.name}}}}})
			for _, piece := range splitRunes(tc.args, 8) {
				chunk(oaChoice{Index: i, Delta: &oaDelta{ToolCalls: []oaToolCall{{Index: &idx, Function: oaFunction{Arguments: piece}}}}})
			}
		}
		chunk(oaChoice{Index: i, Delta: &oaDelta{}, FinishReason: openAIFinish(c, out)})
	}
	if c.includeUsage {
		r := o.envelope(c, out, "chat.completion.chunk")
		r.Choices = []oaChoice{}
		r.Usage = openAIUsage(out.usage)
		events = append(events, sseEvent{data: mustJSON(r)})
	}
	return append(events, sseEvent{data: []byte("[DONE]")})
}
