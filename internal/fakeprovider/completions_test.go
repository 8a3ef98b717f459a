package fakeprovider_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func promptString(s string) openai.CompletionNewParamsPromptUnion {
	return openai.CompletionNewParamsPromptUnion{OfString: openai.String(s)}
}

func TestOpenAI_Completions(t *testing.T) {
	tests := []struct {
		name       string
		params     openai.CompletionNewParams
		opts       []option.RequestOption
		wantTexts  []string
		wantFinish string
		wantUsage  [2]int64 // prompt, completion
	}{
		{
			name:       "echo",
			params:     openai.CompletionNewParams{Model: "gpt-3.5-turbo-instruct", Prompt: promptString("say this please")},
			wantTexts:  []string{"echo: say this please"},
			wantFinish: "stop",
			wantUsage:  [2]int64{3, 4},
		},
		{
			name:       "max_tokens truncates",
			params:     openai.CompletionNewParams{Model: "m", Prompt: promptString("a b c"), MaxTokens: openai.Int(2)},
			wantTexts:  []string{"echo: a"},
			wantFinish: "length",
			wantUsage:  [2]int64{3, 2},
		},
		{
			name:       "max_tokens defaults to 16",
			params:     openai.CompletionNewParams{Model: "m", Prompt: promptString(strings.Repeat("w ", 20))},
			wantTexts:  []string{"echo:" + strings.Repeat(" w", 15)},
			wantFinish: "length",
			wantUsage:  [2]int64{20, 16},
		},
		{
			name: "prompt array with n: prompt-major choices echoing the last prompt",
			params: openai.CompletionNewParams{Model: "m", N: openai.Int(2),
				Prompt: openai.CompletionNewParamsPromptUnion{OfArrayOfStrings: []string{"one two", "three"}}},
			wantTexts:  []string{"echo: three", "echo: three", "echo: three", "echo: three"},
			wantFinish: "stop",
			wantUsage:  [2]int64{3, 8},
		},
		{
			name:       "token ids count as input",
			params:     openai.CompletionNewParams{Model: "m", Prompt: openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: []int64{1, 2, 3}}},
			wantTexts:  []string{"echo"},
			wantFinish: "stop",
			wantUsage:  [2]int64{3, 1},
		},
		{
			name:       "echo prepends the prompt",
			params:     openai.CompletionNewParams{Model: "m", Prompt: promptString("hi "), Echo: openai.Bool(true)},
			wantTexts:  []string{"hi echo: hi "},
			wantFinish: "stop",
			wantUsage:  [2]int64{1, 2},
		},
		{
			name:       "scripted reply and reasoning tokens",
			params:     openai.CompletionNewParams{Model: "m", Prompt: promptString("x")},
			opts:       []option.RequestOption{option.WithHeader(fakeprovider.HeaderReply, "done now"), option.WithHeader(fakeprovider.HeaderReasoningTokens, "3")},
			wantTexts:  []string{"done now"},
			wantFinish: "stop",
			wantUsage:  [2]int64{1, 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey(testKey))
			client := openAIClient(srv)
			resp, err := client.Completions.New(t.Context(), tt.params, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Object != "text_completion" || !strings.HasPrefix(resp.ID, "cmpl-") || resp.Model != string(tt.params.Model) {
				t.Errorf("envelope %s", resp.RawJSON())
			}
			if len(resp.Choices) != len(tt.wantTexts) {
				t.Fatalf("%d choices, want %d: %s", len(resp.Choices), len(tt.wantTexts), resp.RawJSON())
			}
			for i, ch := range resp.Choices {
				if ch.Text != tt.wantTexts[i] || string(ch.FinishReason) != tt.wantFinish || ch.Index != int64(i) {
					t.Errorf("choice %d = %q %q index %d, want %q %q", i, ch.Text, ch.FinishReason, ch.Index, tt.wantTexts[i], tt.wantFinish)
				}
			}
			u := resp.Usage
			if u.PromptTokens != tt.wantUsage[0] || u.CompletionTokens != tt.wantUsage[1] || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage %+v, want %v", u, tt.wantUsage)
			}
			// The legacy API reports the three counts only.
			if gjson.Get(resp.RawJSON(), "usage.prompt_tokens_details").Exists() {
				t.Errorf("usage has details: %s", resp.RawJSON())
			}
			if rec := srv.Requests()[0]; rec.Path != "/v1/completions" || rec.Status != 200 {
				t.Errorf("record %s %d", rec.Path, rec.Status)
			}

			// The same request streamed, with usage.
			p := tt.params
			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			stream := client.Completions.NewStreaming(t.Context(), p, tt.opts...)
			texts := make([]string, len(tt.wantTexts))
			finishes := make([]string, len(tt.wantTexts))
			var usage openai.CompletionUsage
			var chunks int
			for stream.Next() {
				ch := stream.Current()
				chunks++
				if ch.Object != "text_completion" {
					t.Errorf("chunk object %q", ch.Object)
				}
				for _, c := range ch.Choices {
					texts[c.Index] += c.Text
					if c.FinishReason != "" {
						finishes[c.Index] = string(c.FinishReason)
					}
				}
				if ch.JSON.Usage.Valid() {
					if len(ch.Choices) != 0 {
						t.Errorf("usage on a chunk with choices: %s", ch.RawJSON())
					}
					usage = ch.Usage
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			for i := range texts {
				if texts[i] != tt.wantTexts[i] || finishes[i] != tt.wantFinish {
					t.Errorf("streamed choice %d = %q %q", i, texts[i], finishes[i])
				}
			}
			if usage.PromptTokens != tt.wantUsage[0] || usage.CompletionTokens != tt.wantUsage[1] {
				t.Errorf("stream usage %+v", usage)
			}
			if chunks < 2 {
				t.Errorf("%d chunks", chunks)
			}
		})
	}
}

func TestOpenAI_CompletionsStreamWithoutUsage(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.OpenAI)
	client := openAIClient(srv)
	stream := client.Completions.NewStreaming(t.Context(), openai.CompletionNewParams{Model: "m", Prompt: promptString("a b")})
	var text string
	for stream.Next() {
		ch := stream.Current()
		if ch.JSON.Usage.Valid() || len(ch.Choices) != 1 {
			t.Errorf("chunk %s", ch.RawJSON())
		}
		text += ch.Choices[0].Text
	}
	if err := stream.Err(); err != nil || text != "echo: a b" {
		t.Errorf("streamed %q, %v", text, err)
	}
	if body := srv.Requests()[0].Body; !gjson.GetBytes(body, "stream").Bool() {
		t.Errorf("request %s", body)
	}
}

func TestOpenAI_CompletionsErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		key       string
		wantCode  int
		wantParam string
		wantErr   string
	}{
		{name: "invalid json", body: `{"model":`, wantCode: 400, wantErr: "could not parse the JSON body"},
		{name: "unknown field", body: `{"model":"m","prompt":"hi","messages":[]}`, wantCode: 400, wantErr: "Unrecognized request argument supplied: messages"},
		{name: "missing model", body: `{"prompt":"hi"}`, wantCode: 400, wantErr: "you must provide a model parameter"},
		{name: "missing prompt", body: `{"model":"m"}`, wantCode: 400, wantParam: "prompt", wantErr: "Missing required parameter: 'prompt'"},
		{name: "prompt an object", body: `{"model":"m","prompt":{}}`, wantCode: 400, wantParam: "prompt", wantErr: "but got an object instead"},
		{name: "empty prompt array", body: `{"model":"m","prompt":[]}`, wantCode: 400, wantParam: "prompt", wantErr: "empty array"},
		{name: "mixed prompt array", body: `{"model":"m","prompt":["a",{}]}`, wantCode: 400, wantParam: "prompt[1]"},
		{name: "max_tokens not an integer", body: `{"model":"m","prompt":"a","max_tokens":1.5}`, wantCode: 400, wantParam: "max_tokens", wantErr: "expected an integer, but got a decimal"},
		{name: "negative max_tokens", body: `{"model":"m","prompt":"a","max_tokens":-1}`, wantCode: 400, wantParam: "max_tokens"},
		{name: "stream not a boolean", body: `{"model":"m","prompt":"a","stream":1}`, wantCode: 400, wantParam: "stream"},
		{name: "stream_options without stream", body: `{"model":"m","prompt":"a","stream_options":{"include_usage":true}}`, wantCode: 400, wantParam: "stream_options"},
		{name: "best_of below n", body: `{"model":"m","prompt":"a","n":3,"best_of":2}`, wantCode: 400, wantParam: "best_of"},
		{name: "wrong key", body: `{"model":"m","prompt":"a"}`, key: "sk-wrong-key-123", wantCode: 401, wantErr: "Incorrect API key provided"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey(testKey))
			opts := []option.RequestOption{option.WithRequestBody("application/json", []byte(tt.body))}
			if tt.key != "" {
				opts = append(opts, option.WithAPIKey(tt.key))
			}
			client := openAIClient(srv)
			_, err := client.Completions.New(t.Context(), openai.CompletionNewParams{}, opts...)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *openai.Error", err)
			}
			if apiErr.StatusCode != tt.wantCode || apiErr.Param != tt.wantParam || !strings.Contains(apiErr.Message, tt.wantErr) {
				t.Errorf("error = %d param %q %q, want %d param %q containing %q",
					apiErr.StatusCode, apiErr.Param, apiErr.Message, tt.wantCode, tt.wantParam, tt.wantErr)
			}
		})
	}
}

// TestOpenAI_CompletionsDeepSeekBeta: DeepSeek's base URL for its FIM
// completions is https://api.deepseek.com/beta; the fake answers there
// too, and nowhere else under /beta.
func TestOpenAI_CompletionsDeepSeekBeta(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey(testKey))
	client := openAIClient(srv, option.WithBaseURL(srv.URL()+"/beta"))
	resp, err := client.Completions.New(t.Context(), openai.CompletionNewParams{Model: "deepseek-chat", Prompt: promptString("def fib(a):"),
		Suffix: openai.String("return fib(a-1)")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Text != "echo: def fib(a):" || srv.Requests()[0].Path != "/beta/completions" {
		t.Errorf("response %s, path %s", resp.RawJSON(), srv.Requests()[0].Path)
	}
	var apiErr *openai.Error
	_, err = client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "deepseek-chat", Messages: userMsg("x")})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("chat under /beta: err = %v, want 404", err)
	}
}

// TestAzure_Completions: the Azure fake serves the legacy completions API
// on a deployment's path and on the v1 API, with Azure's credentials; the
// OpenAI fake's own completions path is not an Azure route.
func TestAzure_Completions(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey(testKey))
	// Entra ID: the bearer token is the only credential that fake takes.
	entraSrv := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithEntraToken("aad-token"))
	entra := openai.NewClient(option.WithBaseURL(entraSrv.URL()+"/openai/deployments/instruct"), option.WithAPIKey("aad-token"),
		option.WithQuery("api-version", "2024-10-21"), option.WithMaxRetries(0))
	for name, client := range map[string]openai.Client{
		"deployment": azureClient(srv.URL()+"/openai/deployments/instruct", testKey),
		"v1":         azureClient(srv.URL()+"/openai/v1", testKey),
		"entra":      entra,
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := client.Completions.New(t.Context(), openai.CompletionNewParams{Model: "instruct", Prompt: promptString("say this please")})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Object != "text_completion" || resp.Choices[0].Text != "echo: say this please" || resp.Usage.PromptTokens != 3 || resp.Usage.CompletionTokens != 4 {
				t.Errorf("response %s", resp.RawJSON())
			}
			stream := client.Completions.NewStreaming(t.Context(), openai.CompletionNewParams{Model: "instruct", Prompt: promptString("a b"),
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}})
			var text string
			var usage openai.CompletionUsage
			for stream.Next() {
				for _, c := range stream.Current().Choices {
					text += c.Text
				}
				if stream.Current().JSON.Usage.Valid() {
					usage = stream.Current().Usage
				}
			}
			if err := stream.Err(); err != nil || text != "echo: a b" || usage.TotalTokens != 5 {
				t.Errorf("streamed %q usage %+v: %v", text, usage, err)
			}
		})
	}
	var paths []string
	for _, r := range srv.Requests() {
		paths = append(paths, r.Path)
	}
	if want := "/openai/deployments/instruct/completions"; !slices.Contains(paths, want) || !slices.Contains(paths, "/openai/v1/completions") {
		t.Errorf("paths %v", paths)
	}

	var apiErr *openai.Error
	wrongKey := azureClient(srv.URL()+"/openai/deployments/instruct", "wrong")
	_, err := wrongKey.Completions.New(t.Context(), openai.CompletionNewParams{Model: "m", Prompt: promptString("x")})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "401" {
		t.Errorf("wrong key: %v", err)
	}
	openAIPath := azureClient(srv.URL()+"/v1", testKey)
	_, err = openAIPath.Completions.New(t.Context(), openai.CompletionNewParams{Model: "m", Prompt: promptString("x")})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("openai path: err = %v, want 404", err)
	}
	// A deployment's path with more segments is not a route either.
	nested := azureClient(srv.URL()+"/openai/deployments/a/b", testKey)
	_, err = nested.Completions.New(t.Context(), openai.CompletionNewParams{Model: "m", Prompt: promptString("x")})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("nested path: err = %v, want 404", err)
	}
}

// TestAzure_CompletionsThroughTranslator: what the gateway's Azure
// completions translator sends, the fake accepts, on both API styles.
func TestAzure_CompletionsThroughTranslator(t *testing.T) {
	for _, version := range []string{"", "v1"} {
		t.Run("api-version="+version, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey(testKey))
			req, err := transform.NewCompletionsRequest("azure", transform.Target{Model: "instruct", APIKey: testKey, APIVersion: version, ForceStreamUsage: true})
			if err != nil {
				t.Fatal(err)
			}
			resp := func(o transform.ResponseOptions) transform.ResponseTranslator {
				tr, err := transform.NewResponseTranslator(transform.APICompletions, transform.ProviderAzure, o)
				if err != nil {
					t.Fatal(err)
				}
				return tr
			}
			throughTranslator(t, "completions", srv, req.RequestBody, resp)
			if p := srv.Requests()[0].Path; (version == "v1") != (p == "/openai/v1/completions") {
				t.Errorf("path %s", p)
			}
		})
	}
}
