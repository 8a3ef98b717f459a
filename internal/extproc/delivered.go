package extproc

import (
	"bytes"

	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

// maxDeliveredText bounds the text kept per stream for estimates; longer
// streams are extrapolated from it.
const maxDeliveredText = 64 << 10

// deliveredText collects the text a stream has delivered to the client, so
// a stream cut before the provider reported usage is still metered for what
// was delivered.
type deliveredText struct {
	text []byte
	// size counts every delivered text byte, kept or not.
	size int
}

// add takes the SSE bytes sent to the client and keeps the text and
// tool-argument deltas: OpenAI chunks (chat and legacy completions) and
// Anthropic events (the Messages API).
func (d *deliveredText) add(sse []byte) {
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
		// The view lives only within this loop; the kept text is copied.
		js := view(line[len(line)-len(data)-1:])
		var texts [3]gjson.Result
		if c := gjson.Get(js, "choices.0"); c.Exists() {
			texts = [3]gjson.Result{c.Get("delta.content"), c.Get("delta.tool_calls.0.function.arguments"), c.Get("text")}
		} else if d := gjson.Get(js, "delta"); d.Exists() {
			texts = [3]gjson.Result{d.Get("text"), d.Get("partial_json")}
		}
		for _, t := range texts {
			if t.Type != gjson.String || t.Str == "" {
				continue
			}
			d.size += len(t.Str)
			if room := maxDeliveredText - len(d.text); room > 0 {
				d.text = append(d.text, t.Str[:min(room, len(t.Str))]...)
			}
		}
	}
}

// estimateTokens counts the delivered text's tokens, scaling up when only
// part of it was kept.
func (d *deliveredText) estimateTokens() int64 {
	if len(d.text) == 0 {
		return 0
	}
	n := accounting.EstimateTokens(string(d.text))
	if d.size > len(d.text) {
		n = n * int64(d.size) / int64(len(d.text))
	}
	return n
}
