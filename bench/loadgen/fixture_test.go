package loadgen

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestSplitSSE(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"two events", "data: a\n\ndata: b\n\n", []string{"data: a\n\n", "data: b\n\n"}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"data: a\n\n", "data: b\n\n"}},
		{"no final blank line", "event: x\ndata: a\n\ndata: b\n", []string{"event: x\ndata: a\n\n", "data: b\n\n"}},
		{"blank runs skipped", "\n\ndata: a\n\n\n\n", []string{"data: a\n\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitSSE([]byte(tt.body))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %q, want %q", len(got), got, tt.want)
			}
			for i := range got {
				if string(got[i]) != tt.want[i] {
					t.Errorf("event %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSplitSSE_FixturesRoundTrip(t *testing.T) {
	for _, f := range []string{"../testdata/openai_chat.stream.sse", "../testdata/anthropic_messages.stream.sse"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Join(SplitSSE(b), nil); !bytes.Equal(got, b) {
			t.Errorf("%s: events do not concatenate back to the file", f)
		}
	}
}

func TestRepeatStream(t *testing.T) {
	tests := []struct {
		file       string
		n          int
		deltaEvent string
		first      string
		last       string
	}{
		{"../testdata/anthropic_messages.stream.sse", 1000, "event: content_block_delta", "event: message_start", "event: message_stop"},
		{"../testdata/openai_chat.stream.sse", 250, `"delta":{"content":"`, `"role":"assistant"`, "data: [DONE]"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			events, err := LoadSSE(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			long, err := RepeatStream(events, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			var deltas int
			for _, ev := range long {
				if strings.Contains(string(ev), tt.deltaEvent) {
					deltas++
				}
			}
			if deltas != tt.n {
				t.Errorf("deltas = %d, want %d", deltas, tt.n)
			}
			if !strings.Contains(string(long[0]), tt.first) || !strings.Contains(string(long[len(long)-1]), tt.last) {
				t.Error("prefix or suffix events lost")
			}
		})
	}
	if _, err := RepeatStream([][]byte{[]byte("data: [DONE]\n\n")}, 5); err == nil {
		t.Error("a stream without deltas must be refused")
	}
}
