package transform

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// chatRequest holds every top-level chat completions field a translator to
// another provider reads. Each is a view of the request body (see parse)
// and must not outlive the translation. A field the client left out or set
// to null does not exist.
type chatRequest struct {
	model, messages, tools, toolChoice, parallelToolCalls, stop gjson.Result
	maxTokens, maxCompletionTokens, temperature, topP, topK, n  gjson.Result
	seed, presencePenalty, frequencyPenalty, user, stream       gjson.Result
	responseFormat, reasoningEffort, thinking                   gjson.Result
	safetySettings, keepAlive, webSearchOptions                 gjson.Result
	safetyIdentifier, metadata, serviceTier                     gjson.Result
}

// parse reads a chat completions body in one pass: gjson lookups rescan
// the object each time, which dominated translation cost. unsupported sees
// every non-null parameter in body order, so that the first one the
// provider rejects is the one reported; with DropParams a rejected
// parameter is left out instead, as LiteLLM does. A pointer receiver, as
// the struct is large: returning it by value copied it twice per request.
func (r *chatRequest) parse(body []byte, target *Target, unsupported func(key string, v gjson.Result) error) error {
	drop := target.DropParams
	if !target.BodyValidated && !gjson.ValidBytes(body) {
		return invalidf("", "request body is not valid JSON")
	}
	// The results are views of body, not copies; translators copy what
	// they keep into their output.
	doc := gjson.Parse(stringView(body))
	if !doc.IsObject() {
		return invalidf("", "request body must be a JSON object")
	}
	var err error
	doc.ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.Null {
			return true
		}
		if err = unsupported(k.Str, v); err != nil {
			if drop {
				err = nil
				return true
			}
			return false
		}
		switch k.Str {
		case "model":
			r.model = v
		case "messages":
			r.messages = v
		case "tools":
			r.tools = v
		case "tool_choice":
			r.toolChoice = v
		case "parallel_tool_calls":
			r.parallelToolCalls = v
		case "stop":
			r.stop = v
		case "max_tokens":
			r.maxTokens = v
		case "max_completion_tokens":
			r.maxCompletionTokens = v
		case "temperature":
			r.temperature = v
		case "top_p":
			r.topP = v
		case "top_k":
			r.topK = v
		case "n":
			r.n = v
		case "seed":
			r.seed = v
		case "presence_penalty":
			r.presencePenalty = v
		case "frequency_penalty":
			r.frequencyPenalty = v
		case "user":
			r.user = v
		case "stream":
			r.stream = v
		case "response_format":
			r.responseFormat = v
		case "reasoning_effort":
			r.reasoningEffort = v
		case "thinking":
			r.thinking = v
		case "safety_settings":
			r.safetySettings = v
		case "keep_alive":
			r.keepAlive = v
		case "web_search_options":
			r.webSearchOptions = v
		case "safety_identifier":
			r.safetyIdentifier = v
		case "metadata":
			r.metadata = v
		case "service_tier":
			r.serviceTier = v
		}
		return true
	})
	return err
}

// reasoningBudget is the thinking budget for a reasoning_effort, in the
// tokens LiteLLM uses so clients see the same behaviour; 0 means none.
func reasoningBudget(effort gjson.Result) (int64, error) {
	switch effort.Str {
	case "none", "disable":
		return 0, nil
	case "minimal":
		return 128, nil
	case "low":
		return 1024, nil
	case "medium":
		return 2048, nil
	case "high":
		return 4096, nil
	}
	return 0, invalidf("reasoning_effort", `reasoning_effort must be "none", "minimal", "low", "medium" or "high"`)
}

// chatThinking reads an Anthropic-style thinking object, which clients
// written for LiteLLM send on chat too: on for "enabled", with
// budget_tokens as budget, off for "disabled".
func chatThinking(thinking gjson.Result) (on bool, budget int64, err error) {
	if !thinking.IsObject() {
		return false, 0, invalidf("thinking", "thinking must be an object")
	}
	switch thinking.Get("type").Str {
	case "enabled":
		bt := thinking.Get("budget_tokens")
		if !isPositiveInt(bt) {
			return false, 0, invalidf("thinking.budget_tokens", "thinking.budget_tokens must be a positive integer")
		}
		return true, bt.Int(), nil
	case "disabled":
		return false, 0, nil
	}
	return false, 0, invalidf("thinking.type", `thinking.type must be "enabled" or "disabled"`)
}

// effortThinkingBudget is reasoningBudget for Anthropic's models, which
// take no budget under minThinkingBudget; 0 also when no effort was given.
func effortThinkingBudget(effort gjson.Result) (int64, error) {
	if !effort.Exists() {
		return 0, nil
	}
	budget, err := reasoningBudget(effort)
	if budget > 0 && budget < minThinkingBudget {
		budget = minThinkingBudget
	}
	return budget, err
}

const (
	// thinkingOutputRoom is the room left for the answer above the
	// thinking budget when the client gave no max_tokens.
	thinkingOutputRoom = 4096
	// minThinkingBudget is the smallest budget Anthropic accepts.
	minThinkingBudget = 1024
)

// fitThinking returns the max_tokens and thinking budget to send for a
// reasoning_effort budget; Anthropic requires max_tokens to exceed the
// budget. requested is the client's max_tokens (0: none), fallback the
// deployment's default (0: none). A client's max_tokens bounds reasoning
// too, as OpenAI's max_completion_tokens does, so the budget shrinks to
// fit it, and thinking is left off when less than the minimum fits.
func fitThinking(requested, fallback, budget int64) (maxTokens, fitted int64) {
	switch {
	case requested == 0 && fallback > budget:
		return fallback, budget
	case requested == 0:
		return budget + thinkingOutputRoom, budget
	case requested > budget:
		return requested, budget
	case requested > minThinkingBudget:
		return requested, requested - 1
	}
	return requested, 0
}

// maxTokensParam is the output limit the client set and its parameter name:
// max_completion_tokens, the current name, wins over max_tokens.
func (r *chatRequest) maxTokensParam() (string, gjson.Result) {
	if r.maxCompletionTokens.Exists() {
		return "max_completion_tokens", r.maxCompletionTokens
	}
	return "max_tokens", r.maxTokens
}

// appendModel appends the model as a JSON string: the deployment's, else
// the client's as sent.
func appendModel(out []byte, t *Target, r *chatRequest) ([]byte, error) {
	switch {
	case t.Model != "":
		return appendJSONString(out, t.Model), nil
	case r.model.Type == gjson.String && r.model.Str != "":
		return append(out, r.model.Raw...), nil
	}
	return out, invalidf("model", "model is required")
}

// modelName is the deployment's model, else the client's.
func modelName(t *Target, r *chatRequest) (string, error) {
	if t.Model != "" {
		return t.Model, nil
	}
	if r.model.Type != gjson.String || r.model.Str == "" {
		return "", invalidf("model", "model is required")
	}
	return r.model.Str, nil
}

// unsupportedParam rejects parameters a provider cannot honour whose silent
// loss the client would notice (fewer choices, no logprobs, no bias, no
// audio or other non-text output, no predicted output, an answer of another
// length than verbosity asked for). Parameters that do not change the
// output (user, store, metadata, service_tier, prompt_cache_key,
// safety_identifier, stream_options) and unknown ones are ignored unless a
// translator maps them: refusing them would break unmodified OpenAI SDK
// clients for nothing.
func unsupportedParam(key string, v gjson.Result, provider string) error {
	switch key {
	case "prediction", "verbosity":
		return invalidf(key, "%s is not supported by %s models", key, provider)
	case "modalities":
		if !textOnly(v) {
			return invalidf(key, `modalities other than ["text"] are not supported by %s models`, provider)
		}
	case "n":
		if v.Int() > 1 {
			return invalidf(key, "n > 1 is not supported by %s models", provider)
		}
	case "logprobs":
		if v.Type == gjson.True {
			return invalidf(key, "logprobs is not supported by %s models", provider)
		}
	case "top_logprobs", "audio":
		return invalidf(key, "%s is not supported by %s models", key, provider)
	case "logit_bias":
		if v.IsObject() && len(strings.TrimSpace(rawInner(v.Raw))) > 0 {
			return invalidf(key, "logit_bias is not supported by %s models", provider)
		}
	}
	return nil
}

// textOnly reports whether modalities asks for text output alone, which
// every provider gives.
func textOnly(modalities gjson.Result) bool {
	if !modalities.IsArray() {
		return false
	}
	only := true
	modalities.ForEach(func(_, m gjson.Result) bool {
		only = m.Str == "text"
		return only
	})
	return only
}

// unsupportedWebSearch rejects web_search_options, for providers whose chat
// API has no search the model can run: the client asked for answers from
// the web.
func unsupportedWebSearch(key string, provider string) error {
	if key == "web_search_options" {
		return invalidf(key, "web_search_options is not supported by %s models", provider)
	}
	return nil
}

// unsupportedPenalty rejects a non-zero presence or frequency penalty, for
// providers that have none: the client would get unpenalised text.
func unsupportedPenalty(key string, v gjson.Result, provider string) error {
	if (key == "presence_penalty" || key == "frequency_penalty") && v.Float() != 0 {
		return invalidf(key, "%s is not supported by %s models", key, provider)
	}
	return nil
}

// unsupportedSeed rejects seed, for providers that take none: the client
// asked for repeatable sampling it would not get.
func unsupportedSeed(key string, provider string) error {
	if key == "seed" {
		return invalidf(key, "seed is not supported by %s models", provider)
	}
	return nil
}

// unsupportedSerialToolCalls rejects parallel_tool_calls false, for
// providers that cannot limit a reply to one tool call; true is what they
// do anyway.
func unsupportedSerialToolCalls(key string, v gjson.Result, provider string) error {
	if key == "parallel_tool_calls" && v.Type == gjson.False {
		return invalidf(key, "parallel_tool_calls false is not supported by %s models", provider)
	}
	return nil
}

// eachStop calls add with each stop sequence after checking that stop is a
// string or an array of strings; add decides which ones a provider keeps.
func eachStop(stop gjson.Result, add func(s gjson.Result)) error {
	switch {
	case !stop.Exists():
	case stop.Type == gjson.String:
		add(stop)
	case stop.IsArray():
		var err error
		stop.ForEach(func(_, s gjson.Result) bool {
			if s.Type != gjson.String {
				err = invalidf("stop", "stop must be a string or an array of strings")
				return false
			}
			add(s)
			return true
		})
		return err
	default:
		return invalidf("stop", "stop must be a string or an array of strings")
	}
	return nil
}

// chatTool is one client tool definition, read in one scan of the tool and
// one of its function.
type chatTool struct {
	index                                 int64
	typ, function                         gjson.Result
	name, description, parameters, strict gjson.Result
	// cacheControl is the tool's, else its function's.
	cacheControl gjson.Result
}

// read fills t from the tool object v.
func (t *chatTool) read(v gjson.Result) {
	var fnCache gjson.Result
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			t.typ = v
		case "function":
			t.function = v
		case "cache_control":
			t.cacheControl = v
		}
		return true
	})
	t.function.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "name":
			t.name = v
		case "description":
			t.description = v
		case "parameters":
			t.parameters = v
		case "strict":
			t.strict = v
		case "cache_control":
			fnCache = v
		}
		return true
	})
	if !t.cacheControl.Exists() {
		t.cacheControl = fnCache
	}
}

// param names the tool in an error; built only then, as it allocates.
func (t *chatTool) param(field string) string {
	return fmt.Sprintf("tools[%d]%s", t.index, field)
}

// check accepts function tools with a name; the type may be left out.
func (t *chatTool) check(provider string) error {
	if t.typ.Str != "function" && t.typ.Str != "" {
		return invalidf(t.param(".type"), "tool type %q is not supported by %s models", t.typ.Str, provider)
	}
	if t.name.Type != gjson.String || t.name.Str == "" {
		return invalidf(t.param(".function.name"), "tools must have a function name")
	}
	return nil
}

// eachTool calls fn with each of the client's tools, read and checked;
// fn writes it in the provider's shape. Absent tools are no tools.
func eachTool(tools gjson.Result, provider string, fn func(t chatTool) error) error {
	if !tools.Exists() {
		return nil
	}
	if !tools.IsArray() {
		return invalidf("tools", "tools must be an array")
	}
	var err error
	tools.ForEach(func(i, v gjson.Result) bool {
		t := chatTool{index: i.Int()}
		t.read(v)
		if err = t.check(provider); err == nil {
			err = fn(t)
		}
		return err == nil
	})
	return err
}

// chatMessage holds the fields of a chat message, read in one scan: gjson
// lookups rescan the object each time, which dominated translation cost.
type chatMessage struct {
	role, content, toolCalls, toolCallID, cacheControl gjson.Result
}

func (m *chatMessage) read(v gjson.Result) {
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "role":
			m.role = v
		case "content":
			m.content = v
		case "tool_calls":
			m.toolCalls = v
		case "tool_call_id":
			m.toolCallID = v
		case "cache_control":
			m.cacheControl = v
		}
		return true
	})
}

// contentPart holds the fields of a content part, read in one scan.
type contentPart struct {
	typ, text, imageURL, cacheControl gjson.Result
}

func (p *contentPart) read(v gjson.Result) {
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			p.typ = v
		case "text":
			p.text = v
		case "image_url":
			p.imageURL = v
		case "cache_control":
			p.cacheControl = v
		}
		return true
	})
}

// contentParam names message i's content in an error.
func contentParam(i gjson.Result) string {
	return fmt.Sprintf("messages[%d].content", i.Int())
}

// partParam names part j of message i's content in an error.
func partParam(i, j gjson.Result) string {
	return fmt.Sprintf("messages[%d].content[%d]", i.Int(), j.Int())
}

// eachAssistantText calls add with each text of message i's assistant
// content, a string or text parts, and the cache_control beside it.
// Refusal parts are dropped: a refusal is the model's own output and
// carries nothing to continue from.
func eachAssistantText(i, content, cacheControl gjson.Result, add func(text, cacheControl gjson.Result)) error {
	switch {
	case !content.Exists() || content.Type == gjson.Null:
	case content.Type == gjson.String:
		add(content, cacheControl)
	case content.IsArray():
		var err error
		content.ForEach(func(j, v gjson.Result) bool {
			var part contentPart
			part.read(v)
			switch part.typ.Str {
			case "text":
				if part.text.Type != gjson.String {
					err = invalidf(partParam(i, j), "text parts must have a string text")
					return false
				}
				add(part.text, part.cacheControl)
			case "refusal":
			default:
				err = invalidf(partParam(i, j), "assistant messages may contain only text parts")
			}
			return err == nil
		})
		return err
	default:
		return invalidf(contentParam(i), "content must be a string or an array of content parts")
	}
	return nil
}

// eachToolCall calls fn with each tool call of message i; absent or null
// calls are none.
func eachToolCall(i, calls gjson.Result, fn func(i, j, c gjson.Result) error) error {
	if !calls.Exists() || calls.Type == gjson.Null {
		return nil
	}
	if !calls.IsArray() {
		return invalidf(fmt.Sprintf("messages[%d].tool_calls", i.Int()), "tool_calls must be an array")
	}
	var err error
	calls.ForEach(func(j, c gjson.Result) bool {
		err = fn(i, j, c)
		return err == nil
	})
	return err
}

// toolCallParam names a field of tool call j of message i in an error;
// built only then, as it allocates.
func toolCallParam(i, j gjson.Result, field string) string {
	return fmt.Sprintf("messages[%d].tool_calls[%d]%s", i.Int(), j.Int(), field)
}

// toolCallInput returns tool call j's arguments (a JSON string, or an
// object some clients send) as a raw JSON object, "{}" when there are none.
func toolCallInput(i, j, args gjson.Result) (string, error) {
	switch {
	case args.Type == gjson.String:
		if s := strings.TrimSpace(args.Str); s != "" {
			if !gjson.Valid(s) || !gjson.Parse(s).IsObject() {
				return "", invalidf(toolCallParam(i, j, ".function.arguments"), "tool call arguments must be a JSON object")
			}
			return s, nil
		}
	case args.IsObject():
		return args.Raw, nil
	case args.Exists() && args.Type != gjson.Null:
		return "", invalidf(toolCallParam(i, j, ".function.arguments"), "tool call arguments must be a JSON object")
	}
	return "{}", nil
}
