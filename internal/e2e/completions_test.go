package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/transform"
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
		text, finish, usage := readCompletionStream(t, stream)
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

// TestCompletions_Azure: legacy completions to Azure OpenAI deployments,
// keyed and Entra ID, stream and non-stream, metered as for OpenAI; models
// whose provider has no completions API get an OpenAI-shaped 400 without
// a request upstream.
func TestCompletions_Azure(t *testing.T) {
	keyed := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey("k-azure"))
	entra := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithEntraToken("aad-static"))
	anth := fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey("k-anthropic"))
	bedrock := fakeprovider.Start(t, fakeprovider.Bedrock, fakeprovider.WithAPIKey("aws-secret"))
	s := startConfigStack(t, fmt.Sprintf(`
model_list:
  - {model_name: c-azure, litellm_params: {model: azure/instruct-prod, api_base: "%s", api_key: k-azure, api_version: "2024-10-21", input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}, model_info: {id: d-azure}}
  - {model_name: c-azure-entra, litellm_params: {model: azure/instruct-prod, api_base: "%s", azure_ad_token: aad-static}, model_info: {id: d-azure-entra}}
  - {model_name: c-azure-v1, litellm_params: {model: azure/instruct-v1, api_base: "%s", api_key: k-azure, api_version: v1}, model_info: {id: d-azure-v1}}
  - {model_name: c-anthropic, litellm_params: {model: anthropic/claude-sonnet-4-5, api_base: "%s", api_key: k-anthropic}, model_info: {id: d-anthropic}}
  - {model_name: c-bedrock, litellm_params: {model: bedrock/anthropic.claude-3-5-haiku-20241022-v1:0, api_base: "%s", aws_region_name: us-east-1, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: aws-secret}, model_info: {id: d-bedrock}}
keys: [{id: demo, key: sk-tollgate-demo}]
`, keyed.URL(), entra.URL(), keyed.URL(), anth.URL(), bedrock.URL()))
	checkRecord := func(t *testing.T, r accounting.Record, u openai.CompletionUsage) {
		t.Helper()
		want := float64(u.PromptTokens)*0.000001 + float64(u.CompletionTokens)*0.000002
		if r.Usage.InputTokens != u.PromptTokens || r.Usage.OutputTokens != u.CompletionTokens || u.CompletionTokens == 0 ||
			r.Estimated || r.Unpriced || math.Abs(r.Cost-want) > 1e-12 || r.Status != 200 || r.Deployment != "d-azure" {
			t.Errorf("record %+v, SDK usage %d/%d", r, u.PromptTokens, u.CompletionTokens)
		}
	}
	// checkUpstream checks the newest request the keyed fake received.
	checkUpstream := func(t *testing.T, wantStream bool) {
		t.Helper()
		reqs := keyed.Requests()
		last := reqs[len(reqs)-1]
		if last.Path != "/openai/deployments/instruct-prod/completions" || last.Header.Get("Api-Key") != "k-azure" ||
			last.Header.Get("Authorization") != "" || last.Status != 200 {
			t.Errorf("upstream %s %d headers %v", last.Path, last.Status, last.Header)
		}
		// Every stream asks for usage, so every stream is metered.
		if gjson.GetBytes(last.Body, "model").Str != "instruct-prod" || gjson.GetBytes(last.Body, "stream_options.include_usage").Bool() != wantStream {
			t.Errorf("upstream body %s", last.Body)
		}
	}

	t.Run("non-stream", func(t *testing.T) {
		resp, err := s.client.Completions.New(t.Context(), openai.CompletionNewParams{
			Model:  "c-azure",
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("complete these four words")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Object != "text_completion" || len(resp.Choices) != 1 || resp.Choices[0].Text != "echo: complete these four words" ||
			resp.Usage.PromptTokens != 4 || resp.Usage.CompletionTokens != 5 {
			t.Errorf("response %s", resp.RawJSON())
		}
		checkUpstream(t, false)
		checkRecord(t, s.records(t, "c-azure", 1)[0], resp.Usage)
	})

	t.Run("stream", func(t *testing.T) {
		stream := s.client.Completions.NewStreaming(t.Context(), openai.CompletionNewParams{
			Model:         "c-azure",
			Prompt:        openai.CompletionNewParamsPromptUnion{OfString: openai.String("one two three four five six")},
			MaxTokens:     openai.Int(3),
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
		text, finish, usage := readCompletionStream(t, stream)
		if text != "echo: one two" || finish != "length" || usage.PromptTokens != 6 || usage.CompletionTokens != 3 {
			t.Errorf("streamed %q finish %q usage %+v", text, finish, usage)
		}
		checkUpstream(t, true)
		checkRecord(t, s.records(t, "c-azure", 2)[0], usage)
	})

	t.Run("stream without usage", func(t *testing.T) {
		stream := s.client.Completions.NewStreaming(t.Context(), openai.CompletionNewParams{
			Model:  "c-azure",
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
		checkUpstream(t, true)
		checkRecord(t, s.records(t, "c-azure", 3)[0], openai.CompletionUsage{PromptTokens: 2, CompletionTokens: 3})
	})

	t.Run("entra", func(t *testing.T) {
		p := openai.CompletionNewParams{Model: "c-azure-entra", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("hello entra")}}
		resp, err := s.client.Completions.New(t.Context(), p)
		if err != nil || resp.Choices[0].Text != "echo: hello entra" {
			t.Fatalf("response %v: %v", resp, err)
		}
		stream := s.client.Completions.NewStreaming(t.Context(), p)
		var text string
		for stream.Next() {
			for _, c := range stream.Current().Choices {
				text += c.Text
			}
		}
		if err := stream.Err(); err != nil || text != "echo: hello entra" {
			t.Fatalf("streamed %q, %v", text, err)
		}
		for _, r := range entra.Requests() {
			if r.Path != "/openai/deployments/instruct-prod/completions" || r.Header.Get("Authorization") != "Bearer aad-static" ||
				r.Header.Get("Api-Key") != "" || r.Status != 200 {
				t.Errorf("upstream %s %d headers %v", r.Path, r.Status, r.Header)
			}
		}
	})

	t.Run("v1 API", func(t *testing.T) {
		resp, err := s.client.Completions.New(t.Context(), openai.CompletionNewParams{
			Model: "c-azure-v1", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("versionless")}})
		if err != nil || resp.Choices[0].Text != "echo: versionless" {
			t.Fatalf("response %v: %v", resp, err)
		}
		reqs := keyed.Requests()
		// The v1 API names the deployment in the body, not the path.
		if last := reqs[len(reqs)-1]; last.Path != "/openai/v1/completions" || gjson.GetBytes(last.Body, "model").Str != "instruct-v1" {
			t.Errorf("upstream %s %s", last.Path, last.Body)
		}
	})

	for _, group := range []string{"c-anthropic", "c-bedrock"} {
		t.Run(group+" refuses", func(t *testing.T) {
			_, err := s.client.Completions.New(t.Context(), openai.CompletionNewParams{
				Model:  openai.CompletionNewParamsModel(group),
				Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")},
			})
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Type != "invalid_request_error" ||
				apiErr.Code != "unsupported_endpoint" || apiErr.Param != "model" || !strings.Contains(apiErr.Message, "completions") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if n := len(anth.Requests()) + len(bedrock.Requests()); n != 0 {
		t.Errorf("%d requests reached providers without a completions API", n)
	}
}

// TestCompletions_Compat: legacy completions to every OpenAI-compatible
// provider, each configured by prefix alone against the OpenAI-format fake.
// Those that document the API get it at their path, stream and
// non-stream, metered with the usage the SDK saw; mistral, groq and
// perplexity, which have none, get the 400 and nothing goes upstream.
func TestCompletions_Compat(t *testing.T) {
	fake := fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey("k-compat"))
	refused := map[string]bool{"mistral": true, "groq": true, "perplexity": true}
	var cfg strings.Builder
	cfg.WriteString("model_list:\n")
	for _, name := range transform.CompatProviders() {
		// DeepSeek's base has no /v1: its FIM endpoint is /beta/completions
		// at the root.
		base := fake.URL() + "/v1"
		if name == "deepseek" {
			base = fake.URL()
		}
		fmt.Fprintf(&cfg, "  - {model_name: c-%s, litellm_params: {model: %s/%s-model, api_base: %q, api_key: k-compat, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}\n",
			name, name, name, base)
	}
	cfg.WriteString("keys: [{id: demo, key: sk-tollgate-demo}]\n")
	s := startConfigStack(t, cfg.String())

	checkRecord := func(t *testing.T, group string, n int, u openai.CompletionUsage) {
		t.Helper()
		r := s.records(t, group, n)[0]
		want := float64(u.PromptTokens)*0.000001 + float64(u.CompletionTokens)*0.000002
		if r.Usage.InputTokens != u.PromptTokens || r.Usage.OutputTokens != u.CompletionTokens || u.CompletionTokens == 0 ||
			r.Estimated || r.Unpriced || math.Abs(r.Cost-want) > 1e-12 || r.Status != 200 {
			t.Errorf("record %+v, SDK usage %d/%d", r, u.PromptTokens, u.CompletionTokens)
		}
	}
	// checkUpstream checks the newest request the fake received.
	checkUpstream := func(t *testing.T, name string, stream bool) {
		t.Helper()
		reqs := fake.Requests()
		last := reqs[len(reqs)-1]
		wantPath, wantModel := "/v1/completions", name+"-model"
		switch name {
		case "deepseek":
			wantPath = "/beta/completions"
		case "fireworks_ai":
			wantModel = "accounts/fireworks/models/" + wantModel
		}
		if last.Path != wantPath || last.Status != 200 || last.Header.Get("Authorization") != "Bearer k-compat" ||
			gjson.GetBytes(last.Body, "model").Str != wantModel || gjson.GetBytes(last.Body, "stream").Bool() != stream {
			t.Errorf("upstream %s %d %s", last.Path, last.Status, last.Body)
		}
	}

	for _, name := range transform.CompatProviders() {
		group := "c-" + name
		if refused[name] {
			t.Run(name+"/refuses", func(t *testing.T) {
				_, err := s.client.Completions.New(t.Context(), openai.CompletionNewParams{
					Model: openai.CompletionNewParamsModel(group), Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")}})
				var apiErr *openai.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Type != "invalid_request_error" ||
					apiErr.Code != "unsupported_endpoint" || apiErr.Param != "model" || !strings.Contains(apiErr.Message, name) {
					t.Fatalf("err = %v", err)
				}
			})
			continue
		}
		t.Run(name+"/non-stream", func(t *testing.T) {
			resp, err := s.client.Completions.New(t.Context(), openai.CompletionNewParams{
				Model:  openai.CompletionNewParamsModel(group),
				Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("complete for " + name)},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Choices) != 1 || resp.Choices[0].Text != "echo: complete for "+name || resp.Choices[0].FinishReason != "stop" ||
				resp.Usage.PromptTokens != 3 || resp.Usage.CompletionTokens != 4 {
				t.Errorf("response %s", resp.RawJSON())
			}
			checkUpstream(t, name, false)
			checkRecord(t, group, 1, resp.Usage)
		})
		t.Run(name+"/stream", func(t *testing.T) {
			stream := s.client.Completions.NewStreaming(t.Context(), openai.CompletionNewParams{
				Model:         openai.CompletionNewParamsModel(group),
				Prompt:        openai.CompletionNewParamsPromptUnion{OfString: openai.String("one two three four five six")},
				MaxTokens:     openai.Int(3),
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			text, finish, usage := readCompletionStream(t, stream)
			if text != "echo: one two" || finish != "length" || usage.PromptTokens != 6 || usage.CompletionTokens != 3 {
				t.Errorf("streamed %q finish %q usage %+v", text, finish, usage)
			}
			checkUpstream(t, name, true)
			checkRecord(t, group, 2, usage)
		})
	}
	for _, r := range fake.Requests() {
		if m := gjson.GetBytes(r.Body, "model").Str; refused[strings.TrimSuffix(m, "-model")] {
			t.Errorf("a request for %s reached the provider: %s", m, r.Path)
		}
	}
}

// readCompletionStream drains a legacy completions stream: its text, finish
// reason and the usage chunk, if any.
func readCompletionStream(t *testing.T, stream *ssestream.Stream[openai.Completion]) (text, finish string, usage openai.CompletionUsage) {
	t.Helper()
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
	return text, finish, usage
}
