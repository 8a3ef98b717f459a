package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func newCompletionsRequest(t testing.TB, provider string, target transform.Target) transform.RequestTranslator {
	t.Helper()
	tr, err := transform.NewCompletionsRequest(provider, target)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestCompletions_RequestBody(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		target   transform.Target
		body     string
		wantPath string
		// wantBody is "" when the client's body must be forwarded as is.
		wantBody   string
		wantStream bool
	}{
		{"unchanged", "", transform.Target{Model: "gpt-3.5-turbo-instruct", BasePath: "/v1"},
			`{"model":"gpt-3.5-turbo-instruct","prompt":"hi"}`, "/v1/completions", "", false},
		{"prompt array", "openai", transform.Target{},
			`{"model":"m","prompt":["a","b"]}`, "/completions", "", false},
		{"model rewritten", "", transform.Target{Model: "x"},
			`{"model":"m","prompt":"hi"}`, "/completions", `{"model":"x","prompt":"hi"}`, false},
		{"usage forced", "", transform.Target{ForceStreamUsage: true},
			`{"model":"m","prompt":"hi","stream":true}`, "/completions", `{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, true},
		{"usage forced over null", "", transform.Target{ForceStreamUsage: true},
			`{"model":"m","prompt":"hi","stream":true,"stream_options":null}`, "/completions", `{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, true},
		{"usage already asked", "", transform.Target{ForceStreamUsage: true},
			`{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, "/completions", "", true},
		{"vllm forced", "hosted_vllm", transform.Target{BasePath: "/v1", ForceStreamUsage: true},
			`{"model":"m","prompt":"hi","stream":true}`, "/v1/completions", `{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, true},
		{"together not forced", "together_ai", transform.Target{ForceStreamUsage: true},
			`{"model":"m","prompt":"hi","stream":true}`, "/completions", "", true},
		{"fireworks prefix", "fireworks_ai", transform.Target{BasePath: "/inference/v1"},
			`{"model":"llama","prompt":"hi"}`, "/inference/v1/completions", `{"model":"accounts/fireworks/models/llama","prompt":"hi"}`, false},
		{"deepinfra forced", "deepinfra", transform.Target{BasePath: "/v1/openai", ForceStreamUsage: true},
			`{"model":"m","prompt":"hi","stream":true}`, "/v1/openai/completions", `{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, true},
		{"openrouter not forced", "openrouter", transform.Target{BasePath: "/api/v1", ForceStreamUsage: true},
			`{"model":"m","prompt":"hi","stream":true}`, "/api/v1/completions", "", true},
		{"xai forced", "xai", transform.Target{BasePath: "/v1", ForceStreamUsage: true},
			`{"model":"m","prompt":"hi","stream":true}`, "/v1/completions", `{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, true},
		{"cerebras", "cerebras", transform.Target{Model: "llama3.1-8b", BasePath: "/v1"},
			`{"model":"m","prompt":"hi"}`, "/v1/completions", `{"model":"llama3.1-8b","prompt":"hi"}`, false},
		// DeepSeek serves legacy completions only as FIM, under /beta.
		{"deepseek beta path", "deepseek", transform.Target{},
			`{"model":"deepseek-chat","prompt":"def f(","suffix":"return 1"}`, "/beta/completions", "", false},
		{"deepseek beta base", "deepseek", transform.Target{BasePath: "/beta"},
			`{"model":"deepseek-chat","prompt":"hi"}`, "/beta/completions", "", false},
		{"deepseek proxied", "deepseek", transform.Target{BasePath: "/deepseek", ForceStreamUsage: true},
			`{"model":"m","prompt":"hi","stream":true}`, "/deepseek/beta/completions", `{"model":"m","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, true},
		{"azure deployment and default version", "azure", transform.Target{Model: "instruct-prod", APIKey: "az"},
			`{"model":"instruct-prod","prompt":"hi"}`, "/openai/deployments/instruct-prod/completions?api-version=2024-10-21", "", false},
		{"azure deployment from body", "azure", transform.Target{},
			`{"model":"my instruct","prompt":["a","b"]}`, "/openai/deployments/my%20instruct/completions?api-version=2024-10-21", "", false},
		{"azure model rewritten", "azure", transform.Target{Model: "instruct-prod", BasePath: "/base", APIVersion: "2024-06-01"},
			`{"model":"gpt-35-turbo-instruct","prompt":"hi"}`, "/base/openai/deployments/instruct-prod/completions?api-version=2024-06-01", `{"model":"instruct-prod","prompt":"hi"}`, false},
		{"azure v1 GA path", "azure", transform.Target{Model: "instruct-prod", APIVersion: "v1"},
			`{"model":"m","prompt":"hi"}`, "/openai/v1/completions", `{"model":"instruct-prod","prompt":"hi"}`, false},
		{"azure usage forced", "azure", transform.Target{Model: "d", ForceStreamUsage: true},
			`{"model":"d","prompt":"hi","stream":true}`, "/openai/deployments/d/completions?api-version=2024-10-21", `{"model":"d","prompt":"hi","stream":true,"stream_options":{"include_usage":true}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.body)
			tr := newCompletionsRequest(t, tt.provider, tt.target)
			res, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.wantPath || res.Stream != tt.wantStream {
				t.Errorf("path %q stream %v", res.Path, res.Stream)
			}
			if (tt.wantBody == "" && res.Body != nil) || (tt.wantBody != "" && string(res.Body) != tt.wantBody) {
				t.Errorf("body %s, want %q", res.Body, tt.wantBody)
			}
			if string(in) != tt.body {
				t.Errorf("input modified: %s", in)
			}
			// Each retry attempt translates the same body again.
			if again, err := tr.RequestBody(in); err != nil || again.Path != res.Path || !bytes.Equal(again.Body, res.Body) {
				t.Errorf("second translation %+v, %v", again, err)
			}
		})
	}
}

func TestCompletions_RequestBodyHeaders(t *testing.T) {
	tests := []struct {
		name, provider, key string
		// wantCred is the credential header set, "name: value", or "".
		wantCred, wantRemove string
	}{
		{"with key", "", "sk", "authorization: Bearer sk", "x-api-key,api-key,anthropic-version,anthropic-beta"},
		{"without key", "", "", "", "x-api-key,api-key,anthropic-version,anthropic-beta,authorization"},
		{"azure with key", "azure", "az", "api-key: az", "authorization,x-api-key,anthropic-version,anthropic-beta"},
		// Entra ID: the credentials source sets authorization afterwards.
		{"azure without key", "azure", "", "", "authorization,x-api-key,anthropic-version,anthropic-beta,api-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newCompletionsRequest(t, tt.provider, transform.Target{Model: "m", APIKey: tt.key}).RequestBody([]byte(`{"model":"m","prompt":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			cred := ""
			for _, h := range res.SetHeaders {
				switch h.Key {
				case "content-type":
				default:
					if cred != "" {
						t.Errorf("more than one credential: %v", res.SetHeaders)
					}
					cred = h.Key + ": " + h.Value
				}
			}
			if cred != tt.wantCred || strings.Join(res.RemoveHeaders, ",") != tt.wantRemove {
				t.Errorf("set %v remove %v", res.SetHeaders, res.RemoveHeaders)
			}
		})
	}
}

func TestCompletions_RequestBodyInvalid(t *testing.T) {
	tests := []struct {
		name, body, wantParam string
	}{
		{"malformed", `{"prompt":`, ""},
		{"not object", `[]`, ""},
		{"no prompt", `{"model":"m","messages":[]}`, "prompt"},
		{"prompt number", `{"model":"m","prompt":3}`, "prompt"},
	}
	for _, provider := range []string{"", "azure"} {
		for _, tt := range tests {
			t.Run(provider+"/"+tt.name, func(t *testing.T) {
				_, err := newCompletionsRequest(t, provider, transform.Target{Model: "m"}).RequestBody([]byte(tt.body))
				var ie *transform.InvalidRequestError
				if !errors.As(err, &ie) || ie.Param != tt.wantParam {
					t.Errorf("err = %v, want param %q", err, tt.wantParam)
				}
			})
		}
	}
	t.Run("azure without a deployment", func(t *testing.T) {
		_, err := newCompletionsRequest(t, "azure", transform.Target{}).RequestBody([]byte(`{"prompt":"x"}`))
		var ie *transform.InvalidRequestError
		if !errors.As(err, &ie) || ie.Param != "model" {
			t.Errorf("err = %v", err)
		}
	})
}

// TestCompletions_Unsupported: providers without a legacy completions API
// have neither translator, so the gateway refuses the request rather than
// sending a body the provider would not understand, or to a path it does
// not serve. Every compat provider is listed, so a new one must be decided.
func TestCompletions_Unsupported(t *testing.T) {
	tests := []struct {
		provider transform.Provider
		served   bool
	}{
		{transform.ProviderOpenAI, true},
		{transform.ProviderAzure, true},
		{transform.ProviderAnthropic, false},
		{transform.ProviderBedrock, false},
		{transform.ProviderGemini, false},
		{transform.ProviderVertexAI, false},
		{transform.ProviderCohere, false},
		{transform.ProviderOllama, false},
		// Mistral has only FIM (/v1/fim/completions), answered with a
		// chat.completion; Groq and Perplexity only chat.
		{"mistral", false},
		{"groq", false},
		{"perplexity", false},
		{"together_ai", true},
		{"fireworks_ai", true},
		{"deepinfra", true},
		{"openrouter", true},
		{"xai", true},
		{"deepseek", true},
		{"cerebras", true},
		{"hosted_vllm", true},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[string(tt.provider)] = true
		t.Run(string(tt.provider), func(t *testing.T) {
			check := func(side string, err error) {
				t.Helper()
				if (tt.served && err != nil) || (!tt.served && !errors.Is(err, transform.ErrUnsupported)) {
					t.Errorf("%s: %v", side, err)
				}
			}
			_, err := transform.NewRequestTranslator(transform.APICompletions, tt.provider, transform.Target{})
			check("request", err)
			_, err = transform.NewResponseTranslator(transform.APICompletions, tt.provider, transform.ResponseOptions{})
			check("response", err)
		})
	}
	for _, name := range transform.CompatProviders() {
		if !seen[name] {
			t.Errorf("compat provider %s has no completions decision here", name)
		}
	}
}

func TestCompletions_RequestBodyGolden(t *testing.T) {
	for _, p := range []struct {
		provider string
		// suffix tells the provider's goldens apart.
		suffix string
		target transform.Target
	}{
		{"", "", transform.Target{Model: "gpt-3.5-turbo-instruct", BasePath: "/v1", APIKey: "sk", ForceStreamUsage: true}},
		{"azure", ".azure", transform.Target{Model: "instruct-prod", APIKey: "az", ForceStreamUsage: true}},
	} {
		for _, name := range fixtures(t, "completions", "request") {
			t.Run(p.provider+"/"+name, func(t *testing.T) {
				body := readFile(t, filepath.Join("testdata", "completions", name+".request.json"))
				res, err := newCompletionsRequest(t, p.provider, p.target).RequestBody(body)
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, filepath.Join("testdata", "completions", name+p.suffix+".request.golden.json"), requestGolden(t, res))
			})
		}
	}
}

func TestCompletions_ResponseBody(t *testing.T) {
	tests := []struct {
		provider  transform.Provider
		fixture   string
		wantUsage transform.Usage
		wantModel string
		wantText  string
	}{
		{transform.ProviderOpenAI, "text", transform.Usage{InputTokens: 5, OutputTokens: 7}, "gpt-3.5-turbo-instruct", "\n\nThis is a test."},
		// Azure adds prompt and choice content filter results.
		{transform.ProviderAzure, "azure", transform.Usage{InputTokens: 6, OutputTokens: 3}, "gpt-35-turbo-instruct", " a test."},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider), func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "completions", tt.fixture+".response.json"))
			tr, err := transform.NewResponseTranslator(transform.APICompletions, tt.provider, transform.ResponseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := tr.ResponseBody(body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Body != nil || res.Usage != tt.wantUsage || res.Model != tt.wantModel {
				t.Errorf("got %+v", res)
			}
			var c openai.Completion
			if err := json.Unmarshal(body, &c); err != nil || c.Choices[0].Text != tt.wantText || c.Usage.TotalTokens != tt.wantUsage.InputTokens+tt.wantUsage.OutputTokens {
				t.Errorf("completion %+v: %v", c, err)
			}
		})
	}
}

// TestCompletions_ErrorBody: Azure's legacy completions errors get Azure's
// classification, as its chat errors do.
func TestCompletions_ErrorBody(t *testing.T) {
	const filtered = `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}`
	const notSupported = `{"error":{"code":"OperationNotSupported","message":"The completion operation does not work with the specified model, gpt-4o. Please choose different model and try again."}}`
	tests := []struct {
		name   string
		status int
		body   string
		want   transform.ProviderError
	}{
		{"content filter", 400, filtered, transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Param: "prompt", Code: transform.CodeContentPolicy,
			Message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."}},
		{"chat model", 400, notSupported, transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: "OperationNotSupported",
			Message: "The completion operation does not work with the specified model, gpt-4o. Please choose different model and try again."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := transform.NewResponseTranslator(transform.APICompletions, transform.ProviderAzure, transform.ResponseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.ErrorBody(tt.status, []byte(tt.body)); *got != tt.want {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestCompletions_StreamChunk(t *testing.T) {
	tests := []struct {
		provider  transform.Provider
		fixture   string
		wantUsage transform.Usage
		wantModel string
	}{
		{transform.ProviderOpenAI, "text", transform.Usage{InputTokens: 5, OutputTokens: 2}, "gpt-3.5-turbo-instruct"},
		// Azure's first chunk holds only prompt filter results: no
		// choices, no usage, empty id and model.
		{transform.ProviderAzure, "azure", transform.Usage{InputTokens: 6, OutputTokens: 2}, "gpt-35-turbo-instruct"},
	}
	for _, tt := range tests {
		pieces := streamPieces(t, filepath.Join("testdata", "completions", tt.fixture+".stream.json"))
		whole := bytes.Join(pieces, nil)
		for _, include := range []bool{false, true} {
			want := whole
			if !include {
				// Only the usage chunk goes.
				want = nil
				for _, ev := range strings.SplitAfter(string(whole), "\n\n") {
					if !strings.Contains(ev, `"usage":{`) {
						want = append(want, ev...)
					}
				}
			}
			check := func(t *testing.T, pieces [][]byte) {
				t.Helper()
				tr, err := transform.NewResponseTranslator(transform.APICompletions, tt.provider, transform.ResponseOptions{Stream: true, IncludeUsage: include})
				if err != nil {
					t.Fatal(err)
				}
				got, last := runStream(t, tr, pieces)
				if !bytes.Equal(got, want) || last.Usage != tt.wantUsage || last.Model != tt.wantModel || !last.Done {
					t.Fatalf("got %q usage %+v model %q", got, last.Usage, last.Model)
				}
				for _, d := range sseDataLines(got) {
					var c openai.Completion
					if d != "[DONE]" && json.Unmarshal([]byte(d), &c) != nil {
						t.Errorf("chunk %s does not parse", d)
					}
				}
			}
			t.Run(fmt.Sprintf("%s/include_usage=%v", tt.provider, include), func(t *testing.T) {
				check(t, pieces)
				for _, split := range splitEverywhere(whole) {
					check(t, split)
				}
			})
		}
	}
}

func BenchmarkCompletions_RequestBody(b *testing.B) {
	body := []byte(`{"model":"gpt-3.5-turbo-instruct","prompt":"` + strings.Repeat("lorem ipsum ", 200) + `","max_tokens":64,"stream":true}`)
	for _, bc := range []struct {
		name, provider string
		target         transform.Target
	}{
		{"untouched", "", transform.Target{APIKey: "sk"}},
		{"usage_forced", "", transform.Target{APIKey: "sk", ForceStreamUsage: true}},
		{"azure", "azure", transform.Target{Model: "gpt-3.5-turbo-instruct", APIKey: "az", ForceStreamUsage: true}},
		{"compat_deepseek", "deepseek", transform.Target{APIKey: "sk", ForceStreamUsage: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := newCompletionsRequest(b, bc.provider, bc.target)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := tr.RequestBody(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
