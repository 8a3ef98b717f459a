package e2e

import (
	"errors"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
)

// TestMessages_AnthropicSDK: Anthropic's official SDK, as Claude Code uses
// the Messages API, served by the Anthropic deployment (pass-through) and
// by the OpenAI one (translated both ways).
func TestMessages_AnthropicSDK(t *testing.T) {
	s := startStack(t)
	client := anthropic.NewClient(anthropicopt.WithBaseURL(s.sim.URL()), anthropicopt.WithAPIKey(demoKey), anthropicopt.WithMaxRetries(0))
	for _, model := range []string{"claude-sonnet", "gpt-4o"} {
		params := anthropic.MessageNewParams{
			Model:     anthropic.Model(model),
			MaxTokens: 100,
			System:    []anthropic.TextBlockParam{{Text: "be brief"}},
			Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello from claude code"))},
		}
		t.Run(model+"/non-stream", func(t *testing.T) {
			msg, err := client.Messages.New(t.Context(), params)
			if err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) != 1 || msg.Content[0].Text != "echo: hello from claude code" || msg.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("message = %+v", msg)
			}
			if msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens != 5 {
				t.Errorf("usage = %+v", msg.Usage)
			}
		})
		t.Run(model+"/stream", func(t *testing.T) {
			stream := client.Messages.NewStreaming(t.Context(), params)
			var msg anthropic.Message
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) != 1 || msg.Content[0].Text != "echo: hello from claude code" || msg.Usage.OutputTokens != 5 {
				t.Errorf("accumulated = %+v", msg)
			}
		})
	}
	t.Run("error in Anthropic's shape", func(t *testing.T) {
		_, err := client.Messages.New(t.Context(), anthropic.MessageNewParams{Model: "no-such-model", MaxTokens: 10,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))}})
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
			t.Fatalf("err = %v", err)
		}
	})
}
