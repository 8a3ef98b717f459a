package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// SplitSSE splits a server-sent-events body into events, each keeping its
// trailing blank line, so every event can travel as one response_body chunk
// and the chunks concatenate back to the original body.
func SplitSSE(body []byte) [][]byte {
	body = bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
	var events [][]byte
	for len(body) > 0 {
		i := bytes.Index(body, []byte("\n\n"))
		if i < 0 {
			if len(bytes.TrimSpace(body)) > 0 {
				// A copy, so the terminator never writes into the caller's buffer.
				last := append([]byte(nil), bytes.TrimRight(body, "\n")...)
				events = append(events, append(last, '\n', '\n'))
			}
			break
		}
		if ev := body[:i+2]; len(bytes.TrimSpace(ev)) > 0 {
			events = append(events, ev)
		}
		body = body[i+2:]
	}
	return events
}

// LoadSSE reads an SSE fixture file and splits it into events.
func LoadSSE(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read stream fixture: %w", err)
	}
	events := SplitSSE(b)
	if len(events) == 0 {
		return nil, fmt.Errorf("read stream fixture %s: no events", path)
	}
	return events, nil
}

// RepeatStream returns a stream whose content-delta events are cycled until
// there are n of them, keeping the events before the first delta and after
// the last one exactly once. That turns a small recorded stream into a long
// one of the same shape (e.g. 1,000 Anthropic content_block_delta events).
// Deltas are Anthropic content_block_delta events and OpenAI chunks with a
// non-empty choices[].delta.content. n <= 0 returns the events unchanged.
func RepeatStream(events [][]byte, n int) ([][]byte, error) {
	if n <= 0 {
		return events, nil
	}
	first, last := -1, -1
	for i, ev := range events {
		if isDelta(ev) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil, fmt.Errorf("repeat stream: fixture has no content-delta events")
	}
	middle := events[first : last+1]
	out := make([][]byte, 0, first+n+len(events)-last-1)
	out = append(out, events[:first]...)
	for i := range n {
		out = append(out, middle[i%len(middle)])
	}
	return append(out, events[last+1:]...), nil
}

func isDelta(ev []byte) bool {
	for line := range bytes.SplitSeq(ev, []byte("\n")) {
		if bytes.Equal(bytes.TrimSpace(line), []byte("event: content_block_delta")) {
			return true
		}
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal(bytes.TrimSpace(data), &chunk) != nil {
			continue
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != "" {
				return true
			}
		}
	}
	return false
}
