package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func TestAzure_RequestBody(t *testing.T) {
	body := `{"model":"gpt-4o","messages":[]}`
	tests := []struct {
		name       string
		target     transform.Target
		body       string
		wantPath   string
		wantBody   string
		wantKey    string
		wantRemove string
	}{
		{"deployment and default version", transform.Target{Model: "gpt-4o", BasePath: "", APIKey: "az"}, body,
			"/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", "", "az",
			"authorization,x-api-key,anthropic-version,anthropic-beta"},
		{"explicit version", transform.Target{Model: "prod-4o", APIVersion: "2025-04-01-preview", APIKey: "az"}, body,
			"/openai/deployments/prod-4o/chat/completions?api-version=2025-04-01-preview", `{"model":"prod-4o","messages":[]}`, "az",
			"authorization,x-api-key,anthropic-version,anthropic-beta"},
		{"deployment from body", transform.Target{APIKey: "az"}, body,
			"/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", "", "az",
			"authorization,x-api-key,anthropic-version,anthropic-beta"},
		{"escaped deployment", transform.Target{Model: "a b/c", APIVersion: "x&y"}, body,
			"/openai/deployments/a%20b%2Fc/chat/completions?api-version=x%26y", `{"model":"a b/c","messages":[]}`, "",
			"authorization,x-api-key,anthropic-version,anthropic-beta,api-key"},
		{"v1 GA path", transform.Target{Model: "my-deploy", BasePath: "/base", APIVersion: "v1", APIKey: "az"}, body,
			"/base/openai/v1/chat/completions", `{"model":"my-deploy","messages":[]}`, "az",
			"authorization,x-api-key,anthropic-version,anthropic-beta"},
		{"stream usage forced", transform.Target{Model: "gpt-4o", ForceStreamUsage: true, APIKey: "az"}, `{"model":"gpt-4o","messages":[],"stream":true}`,
			"/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", `{"model":"gpt-4o","messages":[],"stream":true,"stream_options":{"include_usage":true}}`, "az",
			"authorization,x-api-key,anthropic-version,anthropic-beta"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.body)
			res, err := transform.NewOpenAIToAzureRequest(tt.target).RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.wantPath {
				t.Errorf("path %q, want %q", res.Path, tt.wantPath)
			}
			if (tt.wantBody == "" && res.Body != nil) || (tt.wantBody != "" && string(res.Body) != tt.wantBody) {
				t.Errorf("body %s, want %q", res.Body, tt.wantBody)
			}
			key := ""
			for _, h := range res.SetHeaders {
				if h.Key == "authorization" {
					t.Errorf("authorization set: %v", res.SetHeaders)
				}
				if h.Key == "api-key" {
					key = h.Value
				}
			}
			if key != tt.wantKey {
				t.Errorf("api-key %q", key)
			}
			if got := strings.Join(res.RemoveHeaders, ","); got != tt.wantRemove {
				t.Errorf("remove %s, want %s", got, tt.wantRemove)
			}
		})
	}
	t.Run("no deployment", func(t *testing.T) {
		_, err := transform.NewOpenAIToAzureRequest(transform.Target{}).RequestBody([]byte(`{"messages":[]}`))
		var ie *transform.InvalidRequestError
		if !errors.As(err, &ie) || ie.Param != "model" {
			t.Errorf("err = %v", err)
		}
	})
}

func TestAzure_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "azure", "request") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "azure", name+".request.json"))
			res, err := transform.NewOpenAIToAzureRequest(transform.Target{Model: "prod-gpt4o", APIKey: "az", ForceStreamUsage: true}).RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "azure", name+".request.golden.json"), requestGolden(t, res))
		})
	}
}

func TestAzure_ResponseBody(t *testing.T) {
	body := readFile(t, filepath.Join("testdata", "azure", "content_filter.response.json"))
	res, err := transform.NewOpenAIToAzureResponse(transform.ResponseOptions{}).ResponseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Body != nil || res.Usage != (transform.Usage{InputTokens: 19, OutputTokens: 2}) || res.Model != "gpt-4o-2024-11-20" {
		t.Errorf("got %+v", res)
	}
	var c openai.ChatCompletion
	if err := json.Unmarshal(body, &c); err != nil || c.Choices[0].FinishReason != "content_filter" {
		t.Errorf("finish %q: %v", c.Choices[0].FinishReason, err)
	}
}

func TestAzure_StreamChunk(t *testing.T) {
	pieces := streamPieces(t, filepath.Join("testdata", "azure", "usage.stream.json"))
	whole := bytes.Join(pieces, nil)
	want := transform.Usage{InputTokens: 9, OutputTokens: 1}
	for _, include := range []bool{false, true} {
		wantOut := whole
		if !include {
			// Only the usage chunk goes; the prompt filter chunk, which
			// also has no choices, stays.
			wantOut = nil
			for _, ev := range strings.SplitAfter(string(whole), "\n\n") {
				if !strings.Contains(ev, `"usage":{`) {
					wantOut = append(wantOut, ev...)
				}
			}
		}
		check := func(t *testing.T, pieces [][]byte) {
			t.Helper()
			tr := transform.NewOpenAIToAzureResponse(transform.ResponseOptions{Stream: true, IncludeUsage: include})
			got, last := runStream(t, tr, pieces)
			if !bytes.Equal(got, wantOut) || last.Usage != want || !last.Done {
				t.Fatalf("got %q usage %+v", got, last.Usage)
			}
		}
		check(t, pieces)
		for _, split := range splitEverywhere(whole) {
			check(t, split)
		}
	}
	// Azure's first chunk (prompt filter results) has no choices and no
	// usage: it passes, and every chunk still parses as the SDK's type.
	for _, d := range sseDataLines(whole) {
		var c openai.ChatCompletionChunk
		if d != "[DONE]" && json.Unmarshal([]byte(d), &c) != nil {
			t.Errorf("chunk %s does not parse", d)
		}
	}
}

func TestAzure_ErrorBody(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   transform.ProviderError
	}{
		{"content filter code", 400,
			`{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"violence":{"filtered":true,"severity":"high"}}}}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Param: "prompt", Code: transform.CodeContentPolicy,
				Message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."}},
		{"innererror only", 400,
			`{"error":{"message":"Blocked.","code":"invalid_prompt","innererror":{"code":"ResponsibleAIPolicyViolation"}}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContentPolicy, Message: "Blocked."}},
		{"deployment not found", 404,
			`{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`,
			transform.ProviderError{Status: 404, Type: transform.ErrorTypeNotFound, Code: "DeploymentNotFound", Message: "The API deployment for this resource does not exist."}},
		{"rate limit", 429,
			`{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded call rate limit."}}`,
			transform.ProviderError{Status: 429, Type: transform.ErrorTypeRateLimit, Code: "429", Message: "Requests to the ChatCompletions_Create Operation have exceeded call rate limit."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := transform.NewOpenAIToAzureResponse(transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body))
			if *got != tt.want {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func BenchmarkAzure_RequestBody(b *testing.B) {
	body := readFile(b, filepath.Join("testdata", "anthropic", "chat_2k.request.json"))
	tr := transform.NewOpenAIToAzureRequest(transform.Target{Model: "gpt-4o", APIKey: "az"})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.RequestBody(body); err != nil {
			b.Fatal(err)
		}
	}
}
