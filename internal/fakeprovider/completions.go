package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"
)

// The OpenAI fake also serves the legacy Completions API: POST
// /v1/completions and /completions, and /beta/completions, where DeepSeek
// serves the same API (as FIM). A body is validated as the real API
// does (model and prompt required, the SDK's CompletionNewParams fields
// plus "stream", nothing else) and answered with a "text_completion"
// object, or an SSE stream of them ending in data: [DONE], with the usage
// chunk only when stream_options.include_usage asks for it.
//
// The reply is the chat path's: "echo: <prompt>" unless scripted or
// configured. The prompt may be a string, an array of strings, an array of
// token ids or an array of token-id arrays; the reply echoes the last
// prompt (a token-id prompt echoes nothing: "echo"), and every prompt gets
// n choices of it, indexed prompt-major as OpenAI does. Input tokens are
// counted with [CountTokens] over every prompt (a token-id prompt counts
// its ids). max_tokens defaults to 16, as OpenAI's does, so longer replies
// end with finish_reason "length". echo prepends the prompt to each
// choice's text. Usage has only the three counts the legacy API reports.

// completionsTopLevel holds the accepted top-level fields: the SDK's params
// plus "stream", which the SDK adds only when streaming.
var completionsTopLevel = withKeys(jsonKeys(reflect.TypeFor[openai.CompletionNewParams]()), "stream")

// completionsDefaultMaxTokens is max_tokens when a request leaves it out.
const completionsDefaultMaxTokens = 16

// isCompletionsPath reports whether path is a legacy completions endpoint.
func isCompletionsPath(path string) bool {
	return path == "/v1/completions" || path == "/completions" || path == "/beta/completions"
}

// openAICompletions is the OpenAI fake bound to one legacy completions
// request: parse fills it, and body and streamEvents read it back.
type openAICompletions struct {
	openAI
	// prompts are the request's prompts as text, one per prompt.
	prompts []string
	// n is the choices per prompt.
	n int
	// echo prepends each prompt to its choices' text.
	echo bool
}

var (
	_ provider   = (*openAICompletions)(nil)
	_ pathRouted = (*openAI)(nil)
)

// forRequest implements pathRouted: a legacy completions request gets a
// provider of its own, every other path the chat fake.
func (o *openAI) forRequest(u *url.URL) provider {
	if isCompletionsPath(u.Path) {
		return &openAICompletions{}
	}
	return o
}

func (o *openAICompletions) parse(_ http.Header, body []byte) (*call, *apiError) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, oaInvalid("", "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
	}
	root := gjson.ParseBytes(body)
	if e := validateCompletions(root); e != nil {
		return nil, e
	}
	o.n = max(int(root.Get("n").Int()), 1)
	o.echo = root.Get("echo").Bool()
	c := &call{
		model:        root.Get("model").String(),
		stream:       root.Get("stream").Bool(),
		includeUsage: root.Get("stream_options.include_usage").Bool(),
		maxTokens:    completionsDefaultMaxTokens,
	}
	if mt := root.Get("max_tokens"); mt.Type == gjson.Number {
		c.maxTokens = int(mt.Int())
	}
	prompt := root.Get("prompt")
	switch {
	case prompt.Type == gjson.String:
		o.addPrompt(c, prompt.String(), CountTokens(prompt.String()))
	case isTokenArray(prompt):
		o.addPrompt(c, "", len(prompt.Array()))
	default:
		for _, p := range prompt.Array() {
			if p.Type == gjson.String {
				o.addPrompt(c, p.String(), CountTokens(p.String()))
			} else {
				o.addPrompt(c, "", len(p.Array()))
			}
		}
	}
	c.choices = len(o.prompts) * o.n
	return c, nil
}

// addPrompt records one prompt: its text (empty for token ids) becomes the
// last user text and its tokens count as input.
func (o *openAICompletions) addPrompt(c *call, text string, tokens int) {
	o.prompts = append(o.prompts, text)
	c.inputTokens += tokens
	c.lastUser = text
}

// isTokenArray reports whether v is a non-empty array of integers.
func isTokenArray(v gjson.Result) bool {
	arr := v.Array()
	if !v.IsArray() || len(arr) == 0 {
		return false
	}
	for _, x := range arr {
		if !isInteger(x) {
			return false
		}
	}
	return true
}

func isInteger(v gjson.Result) bool {
	return v.Type == gjson.Number && v.Num == float64(int64(v.Num))
}

// validateCompletions applies the checks the real API makes: known fields,
// required model and prompt, JSON types and the stream-only options.
func validateCompletions(root gjson.Result) *apiError {
	if e := validateOpenAIHead(root, completionsTopLevel); e != nil {
		return e
	}
	if e := validateCompletionsPrompt(root.Get("prompt")); e != nil {
		return e
	}
	for _, f := range []struct {
		name string
		want gjson.Type
		desc string
	}{
		{"stream", gjson.True, "a boolean"},
		{"echo", gjson.True, "a boolean"},
		{"max_tokens", gjson.Number, "an integer"},
		{"n", gjson.Number, "an integer"},
		{"best_of", gjson.Number, "an integer"},
		{"logprobs", gjson.Number, "an integer"},
		{"seed", gjson.Number, "an integer"},
		{"temperature", gjson.Number, "a number"},
		{"top_p", gjson.Number, "a number"},
		{"suffix", gjson.String, "a string"},
		{"user", gjson.String, "a string"},
	} {
		v := root.Get(f.name)
		if !v.Exists() || v.Type == gjson.Null {
			continue
		}
		isBool := v.Type == gjson.True || v.Type == gjson.False
		if (f.want == gjson.True && !isBool) || (f.want != gjson.True && v.Type != f.want) ||
			(f.desc == "an integer" && !isInteger(v)) {
			return oaType(f.name, f.desc, v)
		}
	}
	if mt := root.Get("max_tokens"); mt.Type == gjson.Number && mt.Int() < 0 {
		return oaInvalid("max_tokens", "integer_below_min_value", fmt.Sprintf(
			"Invalid 'max_tokens': integer below minimum value. Expected a value >= 0, but got %s instead.", mt.Raw))
	}
	if n := root.Get("n"); n.Type == gjson.Number && n.Int() < 1 {
		return oaInvalid("n", "integer_below_min_value", fmt.Sprintf(
			"Invalid 'n': integer below minimum value. Expected a value >= 1, but got %s instead.", n.Raw))
	}
	if bo := root.Get("best_of"); bo.Type == gjson.Number {
		if bo.Int() < max(root.Get("n").Int(), 1) {
			return oaInvalid("best_of", "", "best_of must be greater than or equal to n.")
		}
		if bo.Int() > 1 && root.Get("stream").Bool() {
			return oaInvalid("best_of", "", "Cannot stream results with best_of > 1.")
		}
	}
	so := root.Get("stream_options")
	if !so.Exists() || so.Type == gjson.Null {
		return nil
	}
	if !root.Get("stream").Bool() {
		return oaInvalid("stream_options", "invalid_value", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	if !so.IsObject() {
		return oaType("stream_options", "an object", so)
	}
	if iu := so.Get("include_usage"); iu.Exists() && iu.Type != gjson.True && iu.Type != gjson.False && iu.Type != gjson.Null {
		return oaType("stream_options.include_usage", "a boolean", iu)
	}
	return nil
}

// validateCompletionsPrompt accepts what the API does: a string, or a
// non-empty array of strings, of token ids or of non-empty token-id arrays.
func validateCompletionsPrompt(p gjson.Result) *apiError {
	const want = "one of a string, array of strings, array of integers, or array of arrays of integers"
	switch {
	case !p.Exists() || p.Type == gjson.Null:
		return oaInvalid("prompt", "missing_required_parameter", "Missing required parameter: 'prompt'.")
	case p.Type == gjson.String:
		return nil
	case !p.IsArray():
		return oaType("prompt", want, p)
	}
	arr := p.Array()
	if len(arr) == 0 {
		return oaInvalid("prompt", "empty_array", "Invalid 'prompt': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	if isTokenArray(p) {
		return nil
	}
	for i, x := range arr {
		if x.Type == gjson.String || isTokenArray(x) {
			continue
		}
		return oaType("prompt["+strconv.Itoa(i)+"]", "one of a string or array of integers", x)
	}
	return nil
}

// Wire types of legacy completion replies, in the field order OpenAI sends.
type (
	cmplResponse struct {
		ID      string       `json:"id"`
		Object  string       `json:"object"`
		Created int64        `json:"created"`
		Model   string       `json:"model"`
		Choices []cmplChoice `json:"choices"`
		// Usage is nil (omitted), nullJSON (sent as null) or *cmplUsage.
		Usage any `json:"usage,omitempty"`
	}
	cmplChoice struct {
		Text         string          `json:"text"`
		Index        int             `json:"index"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	}
	cmplUsage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
)

func completionsUsage(u Usage) *cmplUsage {
	in := u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens
	out := u.OutputTokens + u.ReasoningTokens
	return &cmplUsage{PromptTokens: in, CompletionTokens: out, TotalTokens: in + out}
}

// completionsFinish is the legacy finish_reason: "length" or "stop"; the
// API has no tool calls.
func completionsFinish(out outcome) *string {
	r := "stop"
	if out.stop == stopLength {
		r = "length"
	}
	return &r
}

func (o *openAICompletions) envelope(c *call, out outcome) cmplResponse {
	return cmplResponse{ID: cmplID(out.id), Object: "text_completion", Created: out.created.Unix(), Model: c.model}
}

// choiceText is the text of the choices for prompt i: the reply, after the
// prompt when echo is set. A scripted tool call has no legacy form; its
// arguments stand in as text.
func (o *openAICompletions) choiceText(i int, out outcome) string {
	text := out.text
	for _, tc := range out.toolCalls {
		text += tc.args
	}
	if o.echo {
		return o.prompts[i] + text
	}
	return text
}

func (o *openAICompletions) body(c *call, out outcome) []byte {
	r := o.envelope(c, out)
	for i := range o.prompts {
		for j := range o.n {
			r.Choices = append(r.Choices, cmplChoice{Text: o.choiceText(i, out), Index: i*o.n + j,
				Logprobs: nullJSON, FinishReason: completionsFinish(out)})
		}
	}
	r.Usage = completionsUsage(out.usage)
	return mustJSON(r)
}

func (o *openAICompletions) streamEvents(c *call, out outcome) []sseEvent {
	var events []sseEvent
	chunk := func(choice cmplChoice) {
		r := o.envelope(c, out)
		choice.Logprobs = nullJSON
		r.Choices = []cmplChoice{choice}
		// With include_usage OpenAI sends "usage": null on every chunk
		// but the last.
		if c.includeUsage {
			r.Usage = nullJSON
		}
		events = append(events, sseEvent{data: mustJSON(r)})
	}
	for i := range o.prompts {
		for j := range o.n {
			idx := i*o.n + j
			for _, piece := range splitWords(o.choiceText(i, out)) {
				chunk(cmplChoice{Text: piece, Index: idx})
			}
			chunk(cmplChoice{Index: idx, FinishReason: completionsFinish(out)})
		}
	}
	if c.includeUsage {
		r := o.envelope(c, out)
		r.Choices = []cmplChoice{}
		r.Usage = completionsUsage(out.usage)
		events = append(events, sseEvent{data: mustJSON(r)})
	}
	return append(events, sseEvent{data: []byte("[DONE]")})
}

// cmplID turns the server's reply id into a legacy one: compose numbers
// replies with the chat prefix, OpenAI's legacy ids start with "cmpl-".
func cmplID(id string) string {
	if rest, ok := strings.CutPrefix(id, "chatcmpl-"); ok {
		return "cmpl-" + rest
	}
	return id
}
