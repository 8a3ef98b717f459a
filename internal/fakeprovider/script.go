package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Step scripts how the server answers one request. The zero Step answers
// normally.
type Step struct {
	// Status, when non-zero, answers with this HTTP status and the
	// provider's canonical error body for it (for example 429 rate limit,
	// 529 overloaded_error) instead of a reply. Authentication and
	// validation are skipped, as a real upstream fails before looking.
	Status int
	// ErrorType and ErrorMessage replace the canonical error type and
	// message for Status. Empty means canonical.
	ErrorType    string
	ErrorMessage string
	// Body, when non-nil, is sent verbatim as the error body for Status.
	Body []byte
	// Header is added to the response (for example retry-after).
	Header http.Header
	// Delay is waited before anything is sent; a client that gives up ends
	// the wait.
	Delay time.Duration
	// EventDelay is waited between SSE events of a streamed reply.
	EventDelay time.Duration
	// DropAfterEvents, when positive, cuts the connection after that many
	// SSE events, without ending the stream.
	DropAfterEvents int
	// DropAfterBytes, when positive, cuts the connection after that many
	// body bytes, streamed or not.
	DropAfterBytes int
	// Reply shapes the successful answer.
	Reply Reply
}

// Reply shapes a successful answer. The zero Reply answers with the
// server's default text and computed usage.
type Reply struct {
	// Text is the assistant text. When Text and ToolCalls are both empty the
	// server's default applies: the WithReply text, or "echo: <last user
	// text>" ("echo" when the last user turn has no text), or a forced tool
	// call when the request forces one.
	Text string
	// ToolCalls are returned after Text. They need not match the request's
	// tools, so tests can provoke a provider that misbehaves.
	ToolCalls []ToolCall
	// CacheReadTokens of the computed input tokens are reported as read
	// from the prompt cache (capped at the input).
	CacheReadTokens int
	// CacheWriteTokens of the remaining input tokens are reported as
	// written to the prompt cache (Anthropic's cache_creation_input_tokens;
	// OpenAI has no such field and counts them as plain prompt tokens).
	CacheWriteTokens int
	// ReasoningTokens are added to the output as reasoning tokens.
	ReasoningTokens int
}

// ToolCall is a tool call the fake returns.
type ToolCall struct {
	// Name is the tool's name.
	Name string
	// Arguments is a JSON object; empty means {"text":"<last user text>"},
	// which is also what a forced tool call carries.
	Arguments string
}

// Usage is the token usage of a reply in provider-neutral terms. Providers
// report it in their own fields:
//
//	OpenAI:    prompt_tokens = Input + CacheRead + CacheWrite,
//	           cached_tokens = CacheRead,
//	           completion_tokens = Output + Reasoning, reasoning_tokens = Reasoning
//	Anthropic: input_tokens = Input, cache_read_input_tokens = CacheRead,
//	           cache_creation_input_tokens = CacheWrite,
//	           output_tokens = Output + Reasoning
type Usage struct {
	// InputTokens is input neither read from nor written to the cache.
	InputTokens int
	// CacheReadTokens is input read from the prompt cache.
	CacheReadTokens int
	// CacheWriteTokens is input written to the prompt cache.
	CacheWriteTokens int
	// OutputTokens is visible output: reply text and tool call arguments.
	OutputTokens int
	// ReasoningTokens is hidden reasoning output.
	ReasoningTokens int
}

// CountTokens is the fake tokenizer: the number of whitespace-separated
// words in text. A request's input is the sum over every text it carries:
// system prompts, message text, tool call arguments or tool_use input (as
// raw JSON) and tool results; tool definitions are free. A reply's output is
// the sum over its text and each tool call's Arguments. With n choices
// (OpenAI) the output is counted n times.
func CountTokens(text string) int { return len(strings.Fields(text)) }

// Request headers that script a failure or reply when no programmatic step
// applies. Integers are decimal; an unparsable value gets a 400.
const (
	// HeaderStatus sets Step.Status.
	HeaderStatus = "X-Fake-Status"
	// HeaderErrorType sets Step.ErrorType.
	HeaderErrorType = "X-Fake-Error-Type"
	// HeaderErrorMessage sets Step.ErrorMessage.
	HeaderErrorMessage = "X-Fake-Error-Message"
	// HeaderRetryAfter sets the retry-after response header (seconds).
	HeaderRetryAfter = "X-Fake-Retry-After"
	// HeaderDelayMS sets Step.Delay in milliseconds.
	HeaderDelayMS = "X-Fake-Delay-Ms"
	// HeaderEventDelayMS sets Step.EventDelay in milliseconds.
	HeaderEventDelayMS = "X-Fake-Event-Delay-Ms"
	// HeaderDropAfterEvents sets Step.DropAfterEvents.
	HeaderDropAfterEvents = "X-Fake-Drop-After-Events"
	// HeaderDropAfterBytes sets Step.DropAfterBytes.
	HeaderDropAfterBytes = "X-Fake-Drop-After-Bytes"
	// HeaderReply sets Reply.Text.
	HeaderReply = "X-Fake-Reply"
	// HeaderToolCall adds a Reply.ToolCalls entry with this name and the
	// default arguments {"text":"<last user text>"}.
	HeaderToolCall = "X-Fake-Tool-Call"
	// HeaderCachedTokens sets Reply.CacheReadTokens.
	HeaderCachedTokens = "X-Fake-Cached-Tokens"
	// HeaderCacheWriteTokens sets Reply.CacheWriteTokens.
	HeaderCacheWriteTokens = "X-Fake-Cache-Write-Tokens"
	// HeaderReasoningTokens sets Reply.ReasoningTokens.
	HeaderReasoningTokens = "X-Fake-Reasoning-Tokens"
)

// stepFromHeaders builds the step the x-fake-* headers describe.
func stepFromHeaders(h http.Header) (Step, error) {
	var st Step
	var err error
	num := func(name string) int {
		v := h.Get(name)
		if v == "" || err != nil {
			return 0
		}
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 {
			err = fmt.Errorf("fakeprovider: header %s: want a non-negative integer, got %q", strings.ToLower(name), v)
			return 0
		}
		return n
	}
	st.Status = num(HeaderStatus)
	st.ErrorType = h.Get(HeaderErrorType)
	st.ErrorMessage = h.Get(HeaderErrorMessage)
	if v := num(HeaderRetryAfter); h.Get(HeaderRetryAfter) != "" {
		st.Header = http.Header{"Retry-After": {strconv.Itoa(v)}}
	}
	st.Delay = time.Duration(num(HeaderDelayMS)) * time.Millisecond
	st.EventDelay = time.Duration(num(HeaderEventDelayMS)) * time.Millisecond
	st.DropAfterEvents = num(HeaderDropAfterEvents)
	st.DropAfterBytes = num(HeaderDropAfterBytes)
	st.Reply.Text = h.Get(HeaderReply)
	if name := h.Get(HeaderToolCall); name != "" {
		st.Reply.ToolCalls = []ToolCall{{Name: name}}
	}
	st.Reply.CacheReadTokens = num(HeaderCachedTokens)
	st.Reply.CacheWriteTokens = num(HeaderCacheWriteTokens)
	st.Reply.ReasoningTokens = num(HeaderReasoningTokens)
	if st.Status != 0 && (st.Status < 400 || st.Status > 599) {
		err = fmt.Errorf("fakeprovider: header %s: want 400-599, got %d", strings.ToLower(HeaderStatus), st.Status)
	}
	return st, err
}

// call is a validated request reduced to what the reply depends on.
type call struct {
	model       string
	stream      bool
	inputTokens int
	lastUser    string
	// maxTokens caps output tokens; zero means no cap.
	maxTokens int
	// choices is OpenAI's n; at least 1.
	choices int
	// includeUsage is OpenAI's stream_options.include_usage.
	includeUsage bool
	// forcedTool is the tool the request forces, "" when none.
	forcedTool string
	// forcedByName is set when the request names the forced tool, which
	// OpenAI answers with finish_reason "stop" rather than "tool_calls".
	forcedByName bool
}

// stopReason is why a reply ended, in provider-neutral terms.
type stopReason int

const (
	stopEnd stopReason = iota
	stopLength
	stopToolUse
)

// outcome is a composed reply ready for a provider to render.
type outcome struct {
	id        string
	created   time.Time
	text      string
	toolCalls []toolCallOut
	stop      stopReason
	usage     Usage
}

type toolCallOut struct {
	id, name, args string
}

// compose decides the reply for c from the step's Reply and the defaults.
func (s *Server) compose(c *call, r Reply) outcome {
	out := outcome{id: s.id(s.prov.idPrefix()), created: s.cfg.clock()}
	calls := r.ToolCalls
	switch {
	case r.Text != "" || len(calls) > 0:
		out.text = r.Text
	case c.forcedTool != "":
		calls = []ToolCall{{Name: c.forcedTool}}
	case s.cfg.reply != "":
		out.text = s.cfg.reply
	case c.lastUser != "":
		out.text = "echo: " + c.lastUser
	default:
		out.text = "echo"
	}
	for _, tc := range calls {
		args := tc.Arguments
		if args == "" {
			args = defaultArgs(c.lastUser)
		}
		out.toolCalls = append(out.toolCalls, toolCallOut{id: s.id(s.prov.toolIDPrefix()), name: tc.Name, args: args})
	}
	if len(out.toolCalls) > 0 {
		out.stop = stopToolUse
	}
	if c.maxTokens > 0 && CountTokens(out.text) > c.maxTokens {
		out.text = truncateWords(out.text, c.maxTokens)
		out.toolCalls = nil
		out.stop = stopLength
	}
	output := CountTokens(out.text)
	for _, tc := range out.toolCalls {
		output += CountTokens(tc.args)
	}
	in := c.inputTokens
	read := min(r.CacheReadTokens, in)
	write := min(r.CacheWriteTokens, in-read)
	out.usage = Usage{
		InputTokens:      in - read - write,
		CacheReadTokens:  read,
		CacheWriteTokens: write,
		OutputTokens:     output * c.choices,
		ReasoningTokens:  r.ReasoningTokens,
	}
	return out
}

// defaultArgs is the arguments object of a tool call nobody specified.
func defaultArgs(text string) string {
	b, _ := json.Marshal(map[string]string{"text": text})
	return string(b)
}

// truncateWords keeps the first n words of s with their spacing.
func truncateWords(s string, n int) string {
	var b strings.Builder
	for i, p := range splitWords(s) {
		if i == n {
			break
		}
		b.WriteString(p)
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace)
}

// splitWords cuts s after each run of whitespace, so the pieces concatenate
// back to s and each holds one word; streams send one piece per delta.
func splitWords(s string) []string {
	var out []string
	start := 0
	inSpace := false
	for i, r := range s {
		sp := unicode.IsSpace(r)
		if inSpace && !sp {
			out = append(out, s[start:i])
			start = i
		}
		inSpace = sp
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// splitRunes cuts s into pieces of at most n runes, for streaming tool
// arguments in several deltas as providers do.
func splitRunes(s string, n int) []string {
	var out []string
	r := []rune(s)
	for len(r) > n {
		out = append(out, string(r[:n]))
		r = r[n:]
	}
	if len(r) > 0 || len(out) == 0 {
		out = append(out, string(r))
	}
	return out
}

// apiError is an error in provider-neutral form; each provider renders it
// in its own shape (Anthropic ignores Param and Code).
type apiError struct {
	Status  int
	Type    string
	Message string
	Param   string
	Code    string
}

// provider is one fake API: routes, authentication, validation and wire
// format. Implementations are stateless and safe for concurrent use.
type provider interface {
	// handles reports whether path is one of the provider's endpoints.
	handles(path string) bool
	// authenticate checks credentials against key ("" accepts any) and the
	// headers the API requires.
	authenticate(h http.Header, key string) *apiError
	// parse validates a request body as the real API would.
	parse(h http.Header, body []byte) (*call, *apiError)
	// body renders a non-streamed reply.
	body(c *call, out outcome) []byte
	// streamEvents renders a streamed reply as SSE events.
	streamEvents(c *call, out outcome) []sseEvent
	// errorBody renders e in the provider's error shape.
	errorBody(e *apiError) []byte
	// setResponseHeaders adds the provider's per-response headers.
	setResponseHeaders(h http.Header, requestID string)
	// idPrefix and toolIDPrefix start reply and tool call ids.
	idPrefix() string
	toolIDPrefix() string
	// canonicalError is the provider's usual error for an HTTP status.
	canonicalError(status int) *apiError
	notFound(method, path string) *apiError
	badMethod(method, path string) *apiError
	contextExceeded(tokens, window int) *apiError
	modelNotFound(model string) *apiError
}
