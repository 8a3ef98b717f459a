package accounting_test

import (
	"testing"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func TestEstimateTokens(t *testing.T) {
	// Counts from tiktoken's o200k_base vectors (the tokenizer module's own
	// tests list the same token ids).
	tests := []struct {
		name string
		text string
		want int64
	}{
		{"empty", "", 0},
		{"hello world", "hello world", 2},
		{"double space", "hello  world", 3},
		{"triple space", "hello   world", 3},
		{"long word", "supercalifragilistic", 6},
		{"sentence", "We know what we are, but know not what we may be.", 14},
		{"contraction", "'RE", 2},
		{"invalid utf-8 is counted, not rejected", "\xff\xfe abc", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := accounting.EstimateTokens(tt.text); got != tt.want {
				t.Errorf("EstimateTokens(%q) = %d, want %d", tt.text, got, tt.want)
			}
		})
	}
}

func TestEstimateInputTokens(t *testing.T) {
	tests := []struct {
		name, body, field string
		want              int64
	}{
		{"string", `{"input":"hello world"}`, "input", 2},
		{"strings", `{"input":["hello world","hello  world"]}`, "input", 5},
		{"token ids", `{"input":[10,20,30]}`, "input", 3},
		{"batches of token ids", `{"prompt":[[10,20],[30]]}`, "prompt", 3},
		{"other field", `{"prompt":"hello world"}`, "input", 0},
		{"object", `{"input":{"text":"hello"}}`, "input", 0},
		{"not JSON", `hello world`, "input", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := accounting.EstimateInputTokens([]byte(tt.body), tt.field); got != tt.want {
				t.Errorf("EstimateInputTokens(%s, %s) = %d, want %d", tt.body, tt.field, got, tt.want)
			}
		})
	}
}

func TestEstimatePromptTokens(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int64
	}{
		// 3 per message + "user" (1) + "hello world" (2) + 3 reply priming:
		// what OpenAI reports as prompt_tokens for this request.
		{"one user message", `{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}]}`, 9},
		// + 3 + "system" (1) + "You are a helpful assistant." (6).
		{"system and user",
			`{"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"hello world"}]}`, 19},
		// name costs its tokens plus 1.
		{"name", `{"messages":[{"role":"user","name":"bob","content":"hello world"}]}`, 9 + 1 + 1},
		// text parts count, an image part counts the low-detail base 85.
		{"content parts",
			`{"messages":[{"role":"user","content":[{"type":"text","text":"hello world"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`,
			9 + 85},
		{"escaped text is counted unescaped", `{"messages":[{"role":"user","content":"hello\u0020world"}]}`, 9},
		{"assistant tool call",
			`{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"hello","arguments":"world"}}]}]}`,
			3 + 1 + 1 + 1 + 3},
		{"no messages", `{"model":"gpt-4o"}`, 0},
		{"messages not an array", `{"messages":"hello"}`, 0},
		{"bad JSON", `{"messages":[{"role":"user","content":"hi"}`, 0},
		{"not JSON", `hello`, 0},
		{"empty", ``, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := accounting.EstimatePromptTokens([]byte(tt.body)); got != tt.want {
				t.Errorf("EstimatePromptTokens = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestEstimatePromptTokens_Tools(t *testing.T) {
	without := accounting.EstimatePromptTokens([]byte(`{"messages":[{"role":"user","content":"hi"}]}`))
	with := accounting.EstimatePromptTokens([]byte(`{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`))
	if with <= without {
		t.Errorf("tools added no tokens: %d with, %d without", with, without)
	}
}

func TestEstimateUsage(t *testing.T) {
	got := accounting.EstimateUsage([]byte(`{"messages":[{"role":"user","content":"hello world"}]}`), "supercalifragilistic")
	if want := (transform.Usage{InputTokens: 9, OutputTokens: 6}); got != want {
		t.Errorf("EstimateUsage = %+v, want %+v", got, want)
	}
}

func BenchmarkEstimateTokens(b *testing.B) {
	text := "We know what we are, but know not what we may be. "
	accounting.EstimateTokens(text) // build the codec outside the loop
	b.ReportAllocs()
	for b.Loop() {
		accounting.EstimateTokens(text)
	}
}

// The estimators read client bodies: any bytes must give a count, never a
// panic or a negative number.
func FuzzEstimators(f *testing.F) {
	for _, seed := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"}]}],"tools":[{}]}`,
		`{"input":["a",[1,2],3,{"x":1}],"prompt":"b"}`,
		`{"input":"`, `[]`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, n := range []int64{
			accounting.EstimatePromptTokens(body),
			accounting.EstimateInputTokens(body, "input"),
			accounting.EstimateInputTokens(body, "prompt"),
		} {
			if n < 0 {
				t.Fatalf("negative estimate %d for %q", n, body)
			}
		}
	})
}
