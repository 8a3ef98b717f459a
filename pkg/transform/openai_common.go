package transform

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// setBearerHeaders sets the headers of a JSON request authorised with a
// bearer key, OpenAI's scheme. Envoy hands each attempt the headers the
// previous attempt left, so credentials for other providers (or an earlier
// key) are removed.
func setBearerHeaders(res *RequestResult, apiKey string) {
	res.SetHeaders = []Header{{Key: "content-type", Value: "application/json"}}
	res.RemoveHeaders = []string{"x-api-key", "api-key", "anthropic-version", "anthropic-beta"}
	if apiKey != "" {
		res.SetHeaders = append(res.SetHeaders, Header{Key: "authorization", Value: "Bearer " + apiKey})
	} else {
		res.RemoveHeaders = append(res.RemoveHeaders, "authorization")
	}
}

// classifyCode returns the special error code a provider code or message
// implies, or "". Context-window errors matter most: routers answer them
// with a larger-context fallback rather than a retry.
func classifyCode(code, message string) string {
	contextWindow := [...]string{
		"maximum context length",
		"context_length_exceeded",
		"exceed context limit",
		"exceeds the context window",
		"string too long. expected a string with maximum length",
		"model's maximum context limit",
		"is longer than the model's context length",
		"prompt is too long",
		"prompt: length",
		// Ollama: "the input length exceeds the context length" and "the
		// prompt is longer than the context length currently available to
		// the model", and the llama.cpp server under it, "request (N
		// tokens) exceeds the available context size (M tokens)".
		"exceeds the context length",
		"longer than the context length",
		"exceeds the available context size",
		// OpenAI's tail, which Groq and Cerebras send alone.
		"reduce the length of the messages or completion",
		// xAI: "This model's maximum prompt length is N but the request
		// contains M tokens", and later "[input_too_large] Current message
		// (N tokens) exceeds budget (M tokens)".
		"maximum prompt length",
		"[input_too_large]",
		// Together (text-generation-inference): "`inputs` tokens +
		// `max_new_tokens` must be <= N".
		"tokens + `max_new_tokens` must be <=",
		// vLLM: "The decoder prompt (length N) is longer than the maximum
		// model length of M".
		"longer than the maximum model length",
	}
	contentPolicy := [...]string{
		"content_policy_violation",
		"content_filter",
		"violating our usage policy",
		"request was rejected as a result of the safety system",
		"content management policy",
		// Cohere: "blocked input: please adjust your prompt and try again,
		// as it may be a potential violation of our Usage Guidelines".
		"potential violation of our usage",
	}
	text := strings.ToLower(code + " " + message)
	for _, p := range contextWindow {
		if strings.Contains(text, p) {
			return CodeContextLengthExceeded
		}
	}
	for _, p := range contentPolicy {
		if strings.Contains(text, p) {
			return CodeContentPolicy
		}
	}
	return ""
}

// typeForStatus is the OpenAI error type for an HTTP status, used when the
// provider gives no usable type.
func typeForStatus(status int) ErrorType {
	switch {
	case status == http.StatusUnauthorized:
		return ErrorTypeAuthentication
	case status == http.StatusForbidden:
		return ErrorTypePermission
	case status == http.StatusNotFound:
		return ErrorTypeNotFound
	case status == http.StatusTooManyRequests:
		return ErrorTypeRateLimit
	case status == http.StatusServiceUnavailable || status == statusOverloaded:
		return ErrorTypeOverloaded
	case status >= 400 && status < 500:
		return ErrorTypeInvalidRequest
	}
	return ErrorTypeServer
}

// statusOverloaded is the non-standard status Anthropic uses when it is
// overloaded. OpenAI SDKs do not know it, so it is reported as 503, which
// they retry.
const statusOverloaded = 529

// clientStatus is the status to report for a provider error status: 529
// becomes 503, and a success status (an error carried in a 2xx body) 500.
func clientStatus(status int) int {
	switch {
	case status == statusOverloaded:
		return http.StatusServiceUnavailable
	case status < 400 || status > 599:
		return http.StatusInternalServerError
	}
	return status
}

// nonJSONError describes an error response whose body cannot be read; the
// body itself is not shown because it may be an HTML page from a proxy.
func nonJSONError(status int) *ProviderError {
	s := clientStatus(status)
	return &ProviderError{
		Status:  s,
		Type:    typeForStatus(s),
		Message: "provider returned status " + strconv.Itoa(status) + " with an unreadable error body",
	}
}

// openAIError maps an OpenAI-format error body. OpenAI-compatible servers
// vary: the error may be an object, a bare string, or a top-level message.
func openAIError(status int, body []byte) *ProviderError {
	if !gjson.ValidBytes(body) {
		return nonJSONError(status)
	}
	doc := gjson.Parse(string(body))
	if !doc.IsObject() {
		return nonJSONError(status)
	}
	e := &ProviderError{Status: clientStatus(status)}
	errv := doc.Get("error")
	switch {
	case errv.IsObject():
		e.Message = errv.Get("message").String()
		e.Type = ErrorType(errv.Get("type").String())
		e.Param = errv.Get("param").String()
		e.Code = errv.Get("code").String()
	case errv.Type == gjson.String:
		e.Message = errv.Str
		// Ollama passes on its llama.cpp runner's error object as a
		// string; its message is the part meant for people.
		if inner := gjson.Get(errv.Str, "error.message"); gjson.Valid(errv.Str) && inner.Type == gjson.String && inner.Str != "" {
			e.Message = inner.Str
		}
	default:
		e.Message = doc.Get("message").String()
		if e.Message == "" {
			e.Message = doc.Get("detail").String()
		}
	}
	if e.Message == "" {
		e.Message = "provider returned status " + strconv.Itoa(status)
	}
	if e.Type == "" {
		e.Type = typeForStatus(e.Status)
	}
	switch classifyCode(e.Code, e.Message) {
	case CodeContextLengthExceeded:
		e.Code = CodeContextLengthExceeded
		e.Type = ErrorTypeInvalidRequest
	case CodeContentPolicy:
		e.Code = CodeContentPolicy
	}
	return e
}

// appendErrorEvent appends e as an OpenAI stream error event.
func appendErrorEvent(dst []byte, e *ProviderError) []byte {
	dst = append(dst, `data: {"error":{"message":`...)
	dst = appendJSONString(dst, e.Message)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, string(e.Type))
	dst = append(dst, `,"param":`...)
	dst = appendNullableString(dst, e.Param)
	dst = append(dst, `,"code":`...)
	dst = appendNullableString(dst, e.Code)
	return append(dst, "}}\n\n"...)
}

// unreadableEvent is the error a client sees for a stream event that
// cannot be read.
func unreadableEvent() *ProviderError {
	return &ProviderError{Status: http.StatusBadGateway, Type: ErrorTypeServer, Message: "provider sent an unreadable stream event"}
}

// appendNullableString appends s as a JSON string, or null when empty.
func appendNullableString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, s)
}

// splitTokens are usage counters whose input excludes cache reads and
// writes, as Anthropic and Converse count them.
type splitTokens struct {
	input, output, cacheRead, cacheWrite int64
}

// usage is the counters in OpenAI's terms, where input includes cache reads
// and writes.
func (t splitTokens) usage() Usage {
	return Usage{
		InputTokens:              t.input + t.cacheRead + t.cacheWrite,
		OutputTokens:             t.output,
		CachedInputTokens:        t.cacheRead,
		CacheCreationInputTokens: t.cacheWrite,
	}
}

// openAIUsage reads an OpenAI usage object.
func openAIUsage(u gjson.Result) Usage {
	// One pass over the object: a lookup per field rescanned it five times,
	// on every response and every usage chunk.
	var prompt, completion, promptDetails, completionDetails, cacheHits gjson.Result
	u.ForEach(func(k, v gjson.Result) bool {
		// The first of duplicate keys counts, as with a lookup.
		switch {
		case k.Str == "prompt_tokens" && !prompt.Exists():
			prompt = v
		case k.Str == "completion_tokens" && !completion.Exists():
			completion = v
		case k.Str == "prompt_tokens_details" && !promptDetails.Exists():
			promptDetails = v
		case k.Str == "completion_tokens_details" && !completionDetails.Exists():
			completionDetails = v
		case k.Str == "prompt_cache_hit_tokens" && !cacheHits.Exists():
			cacheHits = v
		}
		return true
	})
	cached := promptDetails.Get("cached_tokens")
	if !cached.Exists() {
		// DeepSeek names its cache hits prompt_cache_hit_tokens, and not
		// every DeepSeek usage object carries OpenAI's field too.
		cached = cacheHits
	}
	return Usage{
		InputTokens:              prompt.Int(),
		OutputTokens:             completion.Int(),
		CachedInputTokens:        cached.Int(),
		CacheCreationInputTokens: promptDetails.Get("cache_write_tokens").Int(),
		ReasoningTokens:          completionDetails.Get("reasoning_tokens").Int(),
	}
}

// chatChunkWriter appends chat.completion.chunk events that share an id,
// model and creation time.
type chatChunkWriter struct {
	// id is the chunks' id until setID gives one.
	id      string
	model   string
	created int64
	// head is the start of every chunk, up to and including `"choices":[`.
	head []byte
}

// setID builds the chunk head with id, a raw JSON string (anything else
// becomes "").
func (w *chatChunkWriter) setID(id gjson.Result) {
	w.head = append(w.head[:0], `{"id":`...)
	w.head = appendRawString(w.head, id)
	w.headRest()
}

// ensureHead builds the chunk head with w.id if setID has not.
func (w *chatChunkWriter) ensureHead() {
	if len(w.head) == 0 {
		w.head = append(w.head, `{"id":`...)
		w.head = appendJSONString(w.head, w.id)
		w.headRest()
	}
}

func (w *chatChunkWriter) headRest() {
	w.head = append(w.head, `,"object":"chat.completion.chunk","created":`...)
	w.head = appendInt(w.head, w.created)
	w.head = append(w.head, `,"model":`...)
	w.head = appendJSONString(w.head, w.model)
	w.head = append(w.head, `,"choices":[`...)
}

// start appends a chunk up to its delta value.
func (w *chatChunkWriter) start(out []byte) []byte {
	w.ensureHead()
	out = append(out, "data: "...)
	out = append(out, w.head...)
	return append(out, `{"index":0,"delta":`...)
}

// end closes a chunk with a finish reason, or null when "".
func (w *chatChunkWriter) end(out []byte, finish string) []byte {
	if finish == "" {
		return append(out, `,"finish_reason":null}]}`+"\n\n"...)
	}
	out = append(out, `,"finish_reason":"`...)
	out = append(out, finish...)
	return append(out, `"}]}`+"\n\n"...)
}

// delta appends a chunk whose delta is {"field": raw}.
func (w *chatChunkWriter) delta(out []byte, field, raw string) []byte {
	out = w.start(out)
	out = append(out, `{"`...)
	out = append(out, field...)
	out = append(out, `":`...)
	out = append(out, raw...)
	out = append(out, '}')
	return w.end(out, "")
}

// usage appends the usage-only chunk that include_usage asks for.
func (w *chatChunkWriter) usage(out []byte, u Usage) []byte {
	w.ensureHead()
	out = append(out, "data: "...)
	out = append(out, w.head...)
	out = append(out, `],"usage":`...)
	out = appendOpenAIUsage(out, u)
	return append(out, "}\n\n"...)
}

// toolCallStart appends the chunk that opens tool call n: its id (a raw
// JSON string, anything else becoming "") and its name, which appendName
// appends as a JSON string.
func (w *chatChunkWriter) toolCallStart(out []byte, n int, id gjson.Result) []byte {
	out = w.start(out)
	out = append(out, `{"tool_calls":[{"index":`...)
	out = appendInt(out, int64(n))
	out = append(out, `,"id":`...)
	out = appendRawString(out, id)
	return append(out, `,"type":"function","function":{"name":`...)
}

// toolCallEnd closes the chunk toolCallStart opened, after the name.
func (w *chatChunkWriter) toolCallEnd(out []byte) []byte {
	out = append(out, `,"arguments":""}}]}`...)
	return w.end(out, "")
}

// toolCallArgs appends a chunk carrying a piece of tool call n's
// arguments, a raw JSON string.
func (w *chatChunkWriter) toolCallArgs(out []byte, n int, raw string) []byte {
	out = w.start(out)
	out = append(out, `{"tool_calls":[{"index":`...)
	out = appendInt(out, int64(n))
	out = append(out, `,"function":{"arguments":`...)
	out = append(out, raw...)
	out = append(out, `}}]}`...)
	return w.end(out, "")
}

// streamBlock is what a provider's content block of a stream turns into.
type streamBlock struct {
	kind blockKind
	// tool is the OpenAI tool call index of a tool block.
	tool int
}

type blockKind uint8

const (
	blockIgnored blockKind = iota
	blockText
	blockThinking
	blockTool
	blockJSON
)

// streamBlocks are a stream's content blocks by the provider's index.
type streamBlocks []streamBlock

// at returns block index, growing the list, or nil for an index out of
// bounds: indexes are small and sequential, and the bound keeps a hostile
// index from allocating.
func (s *streamBlocks) at(index int64) *streamBlock {
	if index < 0 || index > 1<<12 {
		return nil
	}
	for int64(len(*s)) <= index {
		*s = append(*s, streamBlock{})
	}
	return &(*s)[index]
}

// appendOpenAIUsage appends u as an OpenAI usage object.
func appendOpenAIUsage(out []byte, u Usage) []byte {
	out = append(out, `{"prompt_tokens":`...)
	out = appendInt(out, u.InputTokens)
	out = append(out, `,"completion_tokens":`...)
	out = appendInt(out, u.OutputTokens)
	out = append(out, `,"total_tokens":`...)
	out = appendInt(out, u.TotalTokens())
	out = append(out, `,"prompt_tokens_details":{"cached_tokens":`...)
	out = appendInt(out, u.CachedInputTokens)
	out = append(out, `,"cache_write_tokens":`...)
	out = appendInt(out, u.CacheCreationInputTokens)
	return append(out, "}}"...)
}

// appendRawString appends v if it is a JSON string and "" otherwise, so that
// odd provider values cannot break the output's shape.
func appendRawString(out []byte, v gjson.Result) []byte {
	if v.Type != gjson.String {
		return append(out, `""`...)
	}
	return append(out, v.Raw...)
}

// appendJoinedBlocks appends the strings at path of the content blocks of
// type typ (of every block when typ is "") joined into one string: as
// "content" (null when none), or when optional as "reasoning_content" only
// if there is any. Joining the still-escaped literals avoids unescaping and
// escaping again.
func appendJoinedBlocks(out []byte, content gjson.Result, typ, path string, optional bool) []byte {
	n := 0
	content.ForEach(func(_, c gjson.Result) bool {
		v := c.Get(path)
		if (typ != "" && c.Get("type").Str != typ) || v.Type != gjson.String {
			return true
		}
		if n == 0 {
			if optional {
				out = append(out, `,"reasoning_content":`...)
			}
			out = append(out, '"')
		}
		n++
		out = append(out, rawInner(v.Raw)...)
		return true
	})
	switch {
	case n > 0:
		out = append(out, '"')
	case !optional:
		out = append(out, "null"...)
	}
	return out
}

// appendToolCallOpen appends the start of tool call n of a message, up to
// its name: the separator, and the id (a raw JSON string, anything else
// becoming "").
func appendToolCallOpen(out []byte, n int, id gjson.Result) []byte {
	if n == 0 {
		out = append(out, `,"tool_calls":[`...)
	} else {
		out = append(out, ',')
	}
	out = append(out, `{"id":`...)
	out = appendRawString(out, id)
	return append(out, `,"type":"function","function":{"name":`...)
}

// appendToolCallInput closes a tool call after its name with input, a raw
// JSON value, as the arguments string ("{}" when there is none).
func appendToolCallInput(out []byte, input gjson.Result) []byte {
	out = append(out, `,"arguments":`...)
	if input.Exists() {
		out = appendCompactAsString(out, input.Raw)
	} else {
		out = append(out, `"{}"`...)
	}
	return append(out, "}}"...)
}

// appendCompletionEnd appends the end of a one-choice chat.completion, from
// its finish_reason on.
func appendCompletionEnd(out []byte, finish string, u Usage) []byte {
	out = append(out, `"finish_reason":"`...)
	out = append(out, finish...)
	out = append(out, `"}],"usage":`...)
	out = appendOpenAIUsage(out, u)
	return append(out, '}')
}

// sseLineHandler consumes complete stream lines.
type sseLineHandler interface {
	line(line []byte) error
}

// eachSSELine passes every complete line of the stream that chunk continues
// (SSE, or Ollama's NDJSON) to h, carrying an unfinished last line to the next call (or passing it
// as the last line when final). It stops at the first error.
func eachSSELine(c *lineCarry, chunk []byte, final bool, h sseLineHandler) error {
	rest := chunk
	if c.pending() {
		line, tail, ok := c.complete(chunk, final)
		if ok {
			if err := h.line(line); err != nil {
				return err
			}
		}
		rest = tail
	}
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if final {
				return h.line(rest)
			}
			c.keep(rest)
			return nil
		}
		if err := h.line(rest[:i+1]); err != nil {
			return err
		}
		rest = rest[i+1:]
	}
	return nil
}
