package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

// TestCompletions_EndToEnd: the OpenAI SDK's legacy Completions API goes
// through the stand-in to the OpenAI fake's /v1/completions, stream and
// non-stream, and each request is metered with the usage the SDK saw.
func TestCompletions_EndToEnd(t *testing.T) {
	s := startStack(t)
	// spendRecords waits for n spend records of gpt-4o and returns them,
	// newest first.
	spendRecords := func(t *testing.T, n int) []accounting.Record {
		t.Helper()
		var recs []accounting.Record
		for deadline := time.Now().Add(5 * time.Second); len(recs) < n && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			recs, _ = s.spend.Query(context.Background(), accounting.Filter{ModelGroup: "gpt-4o"})
		}
		if len(recs) < n {
			t.Fatalf("%d spend records, want %d", len(recs), n)
		}
		return recs
	}
	checkRecord := func(t *testing.T, r accounting.Record, u openai.CompletionUsage) {
		t.Helper()
		if r.Usage.InputTokens != u.PromptTokens || r.Usage.OutputTokens != u.CompletionTokens ||
			r.Estimated || r.Unpriced || r.Cost <= 0 || r.Status != 200 || r.Deployment != "openai-gpt-4o" {
			t.Errorf("record %+v, SDK usage %d/%d", r, u.PromptTokens, u.CompletionTokens)
		}
	}

	t.Run("non-stream", func(t *testing.T) {
		resp, err := s.client.Completions.New(t.Context(), openai.CompletionNewParams{
			Model:  "gpt-4o",
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("complete these four words")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Choices) != 1 || resp.Choices[0].Text != "echo: complete these four words" || resp.Choices[0].FinishReason != "stop" {
			t.Errorf("choices %s", resp.RawJSON())
		}
		if resp.Object != "text_completion" || resp.Usage.PromptTokens != 4 || resp.Usage.CompletionTokens != 5 || resp.Usage.TotalTokens != 9 {
			t.Errorf("response %s", resp.RawJSON())
		}
		// The gateway forwarded the deployment's model to the legacy path.
		reqs := s.openai.Requests()
		if last := reqs[len(reqs)-1]; last.Path != "/v1/completions" || gjson.GetBytes(last.Body, "model").String() != "gpt-4o" {
			t.Errorf("upstream %s %s", last.Path, last.Body)
		}
		checkRecord(t, spendRecords(t, 1)[0], resp.Usage)
	})

	t.Run("stream", func(t *testing.T) {
		stream := s.client.Completions.NewStreaming(t.Context(), openai.CompletionNewParams{
			Model:         "gpt-4o",
			Prompt:        openai.CompletionNewParamsPromptUnion{OfString: openai.String("one two three four five six")},
			MaxTokens:     openai.Int(3),
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
		var text, finish string
		var usage openai.CompletionUsage
		for stream.Next() {
			ch := stream.Current()
			for _, c := range ch.Choices {
				text += c.Text
				if c.FinishReason != "" {
					finish = string(c.FinishReason)
				}
			}
			if ch.JSON.Usage.Valid() {
				usage = ch.Usage
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if text != "echo: one two" || finish != "length" {
			t.Errorf("streamed %q finish %q", text, finish)
		}
		if usage.PromptTokens != 6 || usage.CompletionTokens != 3 {
			t.Errorf("stream usage %+v", usage)
		}
		checkRecord(t, spendRecords(t, 2)[0], usage)
	})

	t.Run("stream without usage", func(t *testing.T) {
		// The client did not ask for usage: the gateway may ask upstream
		// for it to meter the request, but the client sees no usage chunk.
		stream := s.client.Completions.NewStreaming(t.Context(), openai.CompletionNewParams{
			Model:  "gpt-4o",
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("a b")},
		})
		var text string
		for stream.Next() {
			ch := stream.Current()
			if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
				t.Errorf("usage chunk the client did not ask for: %s", ch.RawJSON())
			}
			for _, c := range ch.Choices {
				text += c.Text
			}
		}
		if err := stream.Err(); err != nil || text != "echo: a b" {
			t.Fatalf("streamed %q, %v", text, err)
		}
		r := spendRecords(t, 3)[0]
		checkRecord(t, r, openai.CompletionUsage{PromptTokens: 2, CompletionTokens: 3})
	})
}
