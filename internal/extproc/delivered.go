package extproc

import (
	"bytes"

	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

// maxDelivered bounds the stream bytes kept per request for estimates;
// longer streams are extrapolated from this sample, which keeps the cost
// per stream small (10,000 open streams hold at most 80 MB of it).
const maxDelivered = 8 << 10

// deliveredText keeps what a stream has sent the client, so a stream cut
// before the provider reported usage is still metered for what was
// delivered. Every stream pays only a bounded copy; the bytes are parsed
// only when an estimate is needed.
type deliveredText struct {
	raw []byte
	// size counts every delivered byte, kept or not.
	size int
}

func (d *deliveredText) add(sse []byte) {
	d.size += len(sse)
	if room := maxDelivered - len(d.raw); room > 0 {
		d.raw = append(d.raw, sse[:min(room, len(sse))]...)
	}
}

// estimateTokens counts the tokens of the delivered text and tool
// arguments, scaled up when only part of the stream was kept.
func (d *deliveredText) estimateTokens() int64 {
	text := deltaText(d.raw)
	if len(text) == 0 {
		return 0
	}
	n := accounting.EstimateTokens(string(text))
	if d.size > len(d.raw) {
		n = n * int64(d.size) / int64(len(d.raw))
	}
	return n
}

// deltaText extracts the text and tool-argument deltas of SSE: OpenAI
// chunks (chat and legacy completions) and Anthropic events (the Messages
// API).
func deltaText(sse []byte) []byte {
	var out []byte
	for len(sse) > 0 {
		line := sse
		if i := bytes.IndexByte(sse, '\n'); i >= 0 {
			line, sse = sse[:i], sse[i+1:]
		} else {
			sse = nil
		}
		data, ok := bytes.CutPrefix(line, []byte("data: {"))
		if !ok {
			continue
		}
		js := view(line[len(line)-len(data)-1:])
		var texts [3]gjson.Result
		if c := gjson.Get(js, "choices.0"); c.Exists() {
			texts = [3]gjson.Result{c.Get("delta.content"), c.Get("delta.tool_calls.0.function.arguments"), c.Get("text")}
		} else if d := gjson.Get(js, "delta"); d.Exists() {
			texts = [3]gjson.Result{d.Get("text"), d.Get("partial_json")}
		}
		for _, t := range texts {
			if t.Type == gjson.String {
				out = append(out, t.Str...)
			}
		}
	}
	return out
}
