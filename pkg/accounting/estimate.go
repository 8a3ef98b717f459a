package accounting

import (
	"sync"

	"github.com/tidwall/gjson"
	"github.com/tiktoken-go/tokenizer/codec"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// o200k is OpenAI's o200k_base BPE (gpt-4o, gpt-4.1, o-series, gpt-5). Its
// vocabulary is compiled into the tokenizer module, so nothing is fetched at
// run time; it is built on first use (about 40 ms) because most requests
// carry provider usage and never need it. The codec is safe for concurrent
// use and never changes after it is built.
var o200k = sync.OnceValue(codec.NewO200kBase)

// Token overheads of OpenAI's chat format, from OpenAI's published counting
// recipe for gpt-4o-era models: every message is wrapped in 3 tokens, a
// "name" costs 1 more, and the reply is primed with 3.
const (
	tokensPerMessage = 3
	tokensPerName    = 1
	tokensReplyPrime = 3
	// tokensPerImage is the fixed base OpenAI charges for a low-detail
	// image; real image cost depends on size and detail, which the body
	// alone cannot tell, so estimates undercount high-detail images.
	tokensPerImage = 85
)

// EstimateTokens counts the tokens of text with the o200k_base tokenizer.
// It is exact for OpenAI's current models and an estimate for other
// providers (Anthropic publishes no tokenizer; counts differ by a few
// percent). Used where a provider reports no usage or a stream is cut, so
// records built from it must set Record.Estimated.
func EstimateTokens(text string) int64 {
	if text == "" {
		return 0
	}
	// Count fails only if the split pattern does, after counting what it
	// matched; a partial count is the best estimate left.
	n, _ := o200k().Count(text)
	return int64(n)
}

// EstimatePromptTokens estimates the prompt tokens of an OpenAI chat
// completions body the way OpenAI counts them: the text of every message
// field (role, content text parts, name, tool calls) plus per-message
// overhead and reply priming. Tool definitions are counted as their JSON
// text, an approximation: OpenAI renders them in an internal format. A body
// that is not valid JSON or has no messages array gives 0.
func EstimatePromptTokens(openAIChatBody []byte) int64 {
	if !gjson.ValidBytes(openAIChatBody) {
		return 0
	}
	msgs := gjson.GetBytes(openAIChatBody, "messages")
	if !msgs.IsArray() {
		return 0
	}
	var n int64
	msgs.ForEach(func(_, m gjson.Result) bool {
		n += tokensPerMessage
		m.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "content":
				n += contentTokens(v)
			case "name":
				n += tokensPerName + EstimateTokens(v.String())
			case "tool_calls":
				v.ForEach(func(_, call gjson.Result) bool {
					n += EstimateTokens(call.Get("function.name").String())
					n += EstimateTokens(call.Get("function.arguments").String())
					return true
				})
			default:
				if v.Type == gjson.String {
					n += EstimateTokens(v.Str)
				}
			}
			return true
		})
		return true
	})
	n += tokensReplyPrime
	if tools := gjson.GetBytes(openAIChatBody, "tools"); tools.IsArray() {
		n += EstimateTokens(tools.Raw)
	}
	return n
}

func contentTokens(v gjson.Result) int64 {
	switch {
	case v.Type == gjson.String:
		return EstimateTokens(v.Str)
	case v.IsArray():
		var n int64
		v.ForEach(func(_, part gjson.Result) bool {
			switch part.Get("type").Str {
			case "image_url":
				n += tokensPerImage
			default:
				n += EstimateTokens(part.Get("text").String())
			}
			return true
		})
		return n
	}
	return 0
}

// EstimateInputTokens estimates the tokens of an embeddings body's "input"
// or a legacy completions body's "prompt" (field): a string, an array of
// strings, or token ids (an array of integers, or arrays of them), which
// count one each. Anything else gives 0.
func EstimateInputTokens(body []byte, field string) int64 {
	v := gjson.GetBytes(body, field)
	if v.Type == gjson.String {
		return EstimateTokens(v.Str)
	}
	if !v.IsArray() {
		return 0
	}
	var n int64
	v.ForEach(func(_, item gjson.Result) bool {
		switch {
		case item.Type == gjson.String:
			n += EstimateTokens(item.Str)
		case item.Type == gjson.Number:
			n++
		case item.IsArray():
			n += int64(len(item.Array()))
		}
		return true
	})
	return n
}

// EstimateUsage is the usage of a request the provider did not meter, or
// whose stream was cut: the prompt estimated from the client's OpenAI chat
// body and the output from the completion text the client received. Record
// it with Record.Estimated set.
func EstimateUsage(openAIChatBody []byte, completion string) transform.Usage {
	return transform.Usage{
		InputTokens:  EstimatePromptTokens(openAIChatBody),
		OutputTokens: EstimateTokens(completion),
	}
}
