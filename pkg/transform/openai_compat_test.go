package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func newCompatRequest(t testing.TB, provider string, target transform.Target, o transform.CompatOptions) transform.RequestTranslator {
	t.Helper()
	tr, err := transform.NewOpenAICompatRequest(provider, target, o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestCompatProviders(t *testing.T) {
	names := transform.CompatProviders()
	want := []string{"mistral", "groq", "together_ai", "fireworks_ai", "deepinfra", "openrouter", "xai", "deepseek", "perplexity", "cerebras", "hosted_vllm"}
	if !slices.Equal(names, want) {
		t.Fatalf("providers = %v", names)
	}
	for _, n := range names {
		base, ok := transform.CompatDefaultBase(n)
		if !ok || (base == "") != (n == "hosted_vllm") {
			t.Errorf("%s: base %q ok %v", n, base, ok)
		}
		if base != "" && (!strings.HasPrefix(base, "https://") || strings.HasSuffix(base, "/")) {
			t.Errorf("%s: base %q", n, base)
		}
		if _, err := transform.NewOpenAICompatResponse(n, transform.ResponseOptions{}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if b, _ := transform.CompatDefaultBase("mistral"); b != "https://api.mistral.ai/v1" {
		t.Errorf("mistral base %q", b)
	}
	if _, ok := transform.CompatDefaultBase("openai"); ok {
		t.Error("openai is not a compat provider")
	}
	if _, err := transform.NewOpenAICompatRequest("nope", transform.Target{}, transform.CompatOptions{}); !errors.Is(err, transform.ErrUnsupported) {
		t.Errorf("unknown provider: %v", err)
	}
	if _, err := transform.NewOpenAICompatResponse("nope", transform.ResponseOptions{}); !errors.Is(err, transform.ErrUnsupported) {
		t.Errorf("unknown provider: %v", err)
	}
}

func TestCompat_RequestBody(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		target   transform.Target
		body     string
		drop     bool
		// want is "" when the client's body must be forwarded as is.
		want string
	}{
		{"mistral untouched", "mistral", transform.Target{},
			`{"model":"m","messages":[],"max_tokens":5,"random_seed":1,"tool_choice":"auto"}`, false, ""},
		{"mistral max_completion_tokens", "mistral", transform.Target{},
			`{"model":"m","messages":[],"max_completion_tokens":5}`, false, `{"model":"m","messages":[],"max_tokens":5}`},
		{"mistral max_tokens wins", "mistral", transform.Target{},
			`{"model":"m","messages":[],"max_tokens":3,"max_completion_tokens":5}`, false, `{"model":"m","messages":[],"max_tokens":3}`},
		{"mistral seed", "mistral", transform.Target{},
			`{"model":"m","messages":[],"seed":42}`, false, `{"model":"m","messages":[],"random_seed":42}`},
		{"mistral required", "mistral", transform.Target{},
			`{"model":"m","messages":[],"tool_choice":"required"}`, false, `{"model":"m","messages":[],"tool_choice":"any"}`},
		{"mistral named tool kept", "mistral", transform.Target{},
			`{"model":"m","messages":[],"tool_choice":{"type":"function","function":{"name":"f"}}}`, false, ""},
		{"mistral user and stream_options removed", "mistral", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[],"user":"u","stream":true,"stream_options":{"include_usage":true}}`, false, `{"model":"m","messages":[],"stream":true}`},
		{"mistral no forced usage", "mistral", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[],"stream":true}`, false, ""},
		{"mistral logprobs false kept", "mistral", transform.Target{},
			`{"model":"m","messages":[],"logprobs":false}`, false, ""},
		{"mistral logit_bias dropped", "mistral", transform.Target{},
			`{"model":"m","messages":[],"logit_bias":{"1":2}}`, true, `{"model":"m","messages":[]}`},
		{"mistral model and quirk", "mistral", transform.Target{Model: "mistral-small"},
			`{"model":"g","messages":[],"seed":1}`, false, `{"model":"mistral-small","messages":[],"random_seed":1}`},
		{"groq untouched", "groq", transform.Target{},
			`{"model":"m","messages":[{"role":"user","content":"x"}],"n":1,"reasoning_effort":"low"}`, false, ""},
		{"groq forced usage", "groq", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[],"stream":true}`, false, `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`},
		{"groq logprobs dropped", "groq", transform.Target{},
			`{"model":"m","messages":[],"logprobs":true,"top_logprobs":2}`, true, `{"model":"m","messages":[]}`},
		{"groq n dropped", "groq", transform.Target{},
			`{"model":"m","messages":[],"n":3}`, true, `{"model":"m","messages":[]}`},
		{"groq names dropped", "groq", transform.Target{},
			`{"model":"m","messages":[{"role":"user","name":"a","content":"x"},{"role":"user","name":"b","content":"y"}]}`, true,
			`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","content":"y"}]}`},
		{"fireworks prefix", "fireworks_ai", transform.Target{},
			`{"model":"llama-v3","messages":[]}`, false, `{"model":"accounts/fireworks/models/llama-v3","messages":[]}`},
		{"fireworks target prefixed", "fireworks_ai", transform.Target{Model: "qwen3"},
			`{"model":"g","messages":[]}`, false, `{"model":"accounts/fireworks/models/qwen3","messages":[]}`},
		{"fireworks already prefixed", "fireworks_ai", transform.Target{},
			`{"model":"accounts/me/models/ft-1","messages":[]}`, false, ""},
		{"fireworks required", "fireworks_ai", transform.Target{},
			`{"model":"accounts/fireworks/models/x","messages":[],"tool_choice":"required"}`, false, `{"model":"accounts/fireworks/models/x","messages":[],"tool_choice":"any"}`},
		{"fireworks json_schema", "fireworks_ai", transform.Target{},
			`{"model":"accounts/fireworks/models/x","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object"}}}}`, false,
			`{"model":"accounts/fireworks/models/x","messages":[],"response_format":{"type":"json_object","schema":{"type":"object"}}}`},
		{"fireworks json_object kept", "fireworks_ai", transform.Target{},
			`{"model":"accounts/fireworks/models/x","messages":[],"response_format":{"type":"json_object"}}`, false, ""},
		{"openrouter no forced usage", "openrouter", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[],"stream":true}`, false, ""},
		{"vllm forced usage", "hosted_vllm", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[],"stream":true}`, false, `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`},
		{"together reasoning kept", "together_ai", transform.Target{},
			`{"model":"m","messages":[],"reasoning_effort":"high","logprobs":true}`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.body)
			tr := newCompatRequest(t, tt.provider, tt.target, transform.CompatOptions{DropParams: tt.drop})
			res, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" && res.Body != nil {
				t.Errorf("body copied: %s", res.Body)
			}
			if tt.want != "" && string(res.Body) != tt.want {
				t.Errorf("body = %s\nwant   %s", res.Body, tt.want)
			}
			if string(in) != tt.body {
				t.Errorf("input modified: %s", in)
			}
			if res.Path != tt.target.BasePath+"/chat/completions" {
				t.Errorf("path %q", res.Path)
			}
			again, err := tr.RequestBody(in)
			if err != nil || !bytes.Equal(again.Body, res.Body) {
				t.Errorf("second translation differs: %s, %v", again.Body, err)
			}
		})
	}
}

func TestCompat_RequestBodyUnsupported(t *testing.T) {
	tests := []struct {
		name      string
		provider  string
		body      string
		wantParam string
	}{
		{"mistral logprobs", "mistral", `{"model":"m","messages":[],"logprobs":true}`, "logprobs"},
		{"mistral reasoning_effort", "mistral", `{"model":"m","messages":[],"reasoning_effort":"low"}`, "reasoning_effort"},
		{"groq logit_bias", "groq", `{"model":"m","messages":[],"logit_bias":{}}`, "logit_bias"},
		{"groq n", "groq", `{"model":"m","messages":[],"n":2}`, "n"},
		{"groq name", "groq", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"user","name":"b","content":"y"}]}`, "messages[1].name"},
		{"fireworks schema missing", "fireworks_ai", `{"model":"m","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}`, "response_format"},
		{"not json", "groq", `{"model":`, ""},
		{"no messages", "mistral", `{"model":"m"}`, "messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newCompatRequest(t, tt.provider, transform.Target{}, transform.CompatOptions{}).RequestBody([]byte(tt.body))
			var ie *transform.InvalidRequestError
			if !errors.Is(err, transform.ErrInvalidRequest) || !errors.As(err, &ie) || ie.Param != tt.wantParam {
				t.Fatalf("err = %v, want param %q", err, tt.wantParam)
			}
		})
	}
}

func TestCompat_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "compat", "request") {
		t.Run(name, func(t *testing.T) {
			provider := name[:strings.IndexByte(name, '_')]
			switch provider {
			case "fireworks":
				provider = "fireworks_ai"
			}
			body := readFile(t, filepath.Join("testdata", "compat", name+".request.json"))
			tr := newCompatRequest(t, provider, transform.Target{BasePath: "/v1", APIKey: "k", ForceStreamUsage: true}, transform.CompatOptions{DropParams: true})
			res, err := tr.RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "compat", name+".request.golden.json"), requestGolden(t, res))
		})
	}
}

func TestCompat_ErrorBody(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		status   int
		body     string
		want     transform.ProviderError
	}{
		{"mistral capacity", "mistral", 400,
			`{"object":"error","message":"Service tier capacity exceeded for this model.","type":"invalid_request_error","param":null,"code":"3505"}`,
			transform.ProviderError{Status: 429, Type: transform.ErrorTypeRateLimit, Message: "Service tier capacity exceeded for this model."}},
		{"mistral context", "mistral", 400,
			`{"object":"error","message":"Prompt contains 40000 tokens, too large for model with 32768 maximum context length","type":"invalid_request_error","code":"3051"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: "Prompt contains 40000 tokens, too large for model with 32768 maximum context length"}},
		// Context-window errors as each provider sends them (sources in
		// docs/providers.md [x8]); all become context_length_exceeded.
		{"groq context window", "groq", 400,
			`{"error":{"message":"Please reduce the length of the messages or completion.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Param: "messages", Code: transform.CodeContextLengthExceeded, Message: "Please reduce the length of the messages or completion."}},
		{"together_ai context window", "together_ai", 400,
			"{\"error\":{\"message\":\"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4097. Given: 80125 `inputs` tokens and 4096 `max_new_tokens`\",\"type\":\"invalid_request_error\",\"param\":\"max_tokens\",\"code\":null}}",
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Param: "max_tokens", Code: transform.CodeContextLengthExceeded,
				Message: "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4097. Given: 80125 `inputs` tokens and 4096 `max_new_tokens`"}},
		{"fireworks_ai context window", "fireworks_ai", 400,
			`{"object":"error","type":"invalid_request_error","code":"invalid_request_error","message":"The prompt is too long: 264613, model maximum context length: 262141"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: "The prompt is too long: 264613, model maximum context length: 262141"}},
		{"deepinfra context window", "deepinfra", 400,
			`{"object":"error","message":"This model's maximum context length is 16000 tokens. However, you requested 17165 tokens (13069 in the messages, 4096 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded,
				Message: "This model's maximum context length is 16000 tokens. However, you requested 17165 tokens (13069 in the messages, 4096 in the completion). Please reduce the length of the messages or completion."}},
		{"openrouter context window", "openrouter", 400,
			`{"error":{"code":400,"message":"This endpoint's maximum context length is 200000 tokens. However, you requested about 5028244 tokens (4945291 of text input, 2953 of tool input, 80000 in the output). Please reduce the length of either one, or use the \"middle-out\" transform to compress your prompt automatically."}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded,
				Message: `This endpoint's maximum context length is 200000 tokens. However, you requested about 5028244 tokens (4945291 of text input, 2953 of tool input, 80000 in the output). Please reduce the length of either one, or use the "middle-out" transform to compress your prompt automatically.`}},
		{"xai context window", "xai", 400,
			`{"code":"Client specified an invalid argument","error":"This model's maximum prompt length is 131072 but the request contains 136973 tokens."}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: "This model's maximum prompt length is 131072 but the request contains 136973 tokens."}},
		{"xai input too large", "xai", 400,
			`{"code":"Client specified an invalid argument","error":"Failed to start sampling: [input_too_large] Current message (1149677 tokens) exceeds budget (975424 tokens)"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: "Failed to start sampling: [input_too_large] Current message (1149677 tokens) exceeds budget (975424 tokens)"}},
		{"deepseek context window", "deepseek", 400,
			`{"error":{"message":"This model's maximum context length is 65536 tokens. However, you requested 66343 tokens (62247 in the messages, 4096 in the completion). Please reduce the length of the messages or completion.","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded,
				Message: "This model's maximum context length is 65536 tokens. However, you requested 66343 tokens (62247 in the messages, 4096 in the completion). Please reduce the length of the messages or completion."}},
		{"cerebras context window", "cerebras", 400,
			`{"message":"Please reduce the length of the messages or completion. Current length is 42328 while limit is 40000","type":"invalid_request_error","param":"messages","code":null}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded,
				Message: "Please reduce the length of the messages or completion. Current length is 42328 while limit is 40000"}},
		{"hosted_vllm context window", "hosted_vllm", 400,
			`{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens in the messages, Please reduce the length of the messages.","type":"BadRequestError","param":null,"code":400}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded,
				Message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens in the messages, Please reduce the length of the messages."}},
		{"hosted_vllm decoder prompt", "hosted_vllm", 400,
			`{"error":{"message":"The decoder prompt (length 2136) is longer than the maximum model length of 2048. Make sure that ` + "`max_model_len`" + ` is no smaller than the number of text tokens."}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded,
				Message: "The decoder prompt (length 2136) is longer than the maximum model length of 2048. Make sure that `max_model_len` is no smaller than the number of text tokens."}},
		// OpenRouter's moderation refusal: 403 with the reasons in
		// error.metadata (the message is illustrative; only the status and
		// metadata are read). Without them a 403 stays a permission error.
		{"openrouter moderation", "openrouter", 403,
			`{"error":{"code":403,"message":"openai/gpt-4o requires moderation on OpenAI. Your input was flagged for \"harassment\". No credits were charged.","metadata":{"reasons":["harassment"],"flagged_input":"...","provider_name":"OpenAI","model_slug":"openai/gpt-4o"}}}`,
			transform.ProviderError{Status: 403, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContentPolicy, Message: `openai/gpt-4o requires moderation on OpenAI. Your input was flagged for "harassment". No credits were charged.`}},
		{"openrouter forbidden", "openrouter", 403, `{"error":{"code":403,"message":"Key limit exceeded"}}`,
			transform.ProviderError{Status: 403, Type: transform.ErrorTypePermission, Code: "403", Message: "Key limit exceeded"}},
		{"moderation shape elsewhere", "together_ai", 403,
			`{"error":{"code":403,"message":"flagged","metadata":{"reasons":["harassment"]}}}`,
			transform.ProviderError{Status: 403, Type: transform.ErrorTypePermission, Code: "403", Message: "flagged"}},
		{"groq rate limit", "groq", 429,
			`{"error":{"message":"Rate limit reached for model","type":"tokens","code":"rate_limit_exceeded"}}`,
			transform.ProviderError{Status: 429, Type: "tokens", Code: "rate_limit_exceeded", Message: "Rate limit reached for model"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := transform.NewOpenAICompatResponse(tt.provider, transform.ResponseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.ErrorBody(tt.status, []byte(tt.body)); *got != tt.want {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestCompat_StreamChunk(t *testing.T) {
	// Mistral reports usage in its last content chunk, unasked: it passes
	// through and is metered.
	stream := "data: {\"id\":\"a\",\"model\":\"mistral-small\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n" +
		"data: {\"id\":\"a\",\"model\":\"mistral-small\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1,\"total_tokens\":5}}\n\n" +
		"data: [DONE]\n\n"
	for _, split := range splitEverywhere([]byte(stream)) {
		tr, err := transform.NewOpenAICompatResponse("mistral", transform.ResponseOptions{Stream: true})
		if err != nil {
			t.Fatal(err)
		}
		got, last := runStream(t, tr, split)
		if string(got) != stream || last.Usage != (transform.Usage{InputTokens: 4, OutputTokens: 1}) || last.Model != "mistral-small" || !last.Done {
			t.Fatalf("got %q usage %+v", got, last.Usage)
		}
	}
}

func FuzzCompat_RequestBody(f *testing.F) {
	addFixtures(f, "compat", "request")
	addFixtures(f, "openai", "request")
	providers := transform.CompatProviders()
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		for i, p := range providers {
			tr := newCompatRequest(t, p, transform.Target{Model: "m", ForceStreamUsage: true}, transform.CompatOptions{DropParams: i%2 == 0})
			res, err := tr.RequestBody(body)
			if err != nil {
				if !errors.Is(err, transform.ErrInvalidRequest) {
					t.Fatalf("%s: error is not an invalid request: %v", p, err)
				}
				continue
			}
			if res.Body != nil && !json.Valid(res.Body) {
				t.Fatalf("%s: invalid JSON from %q:\n%s", p, body, res.Body)
			}
			if !bytes.Equal(body, pristine) {
				t.Fatalf("%s: input body was modified", p)
			}
		}
	})
}

func BenchmarkCompat_RequestBody(b *testing.B) {
	body := readFile(b, filepath.Join("testdata", "anthropic", "chat_2k.request.json"))
	quirky := readFile(b, filepath.Join("testdata", "compat", "mistral_tools.request.json"))
	tests := []struct {
		name     string
		provider string
		body     []byte
	}{
		{"groq/untouched", "groq", body},
		{"mistral/untouched", "mistral", body},
		{"mistral/quirks", "mistral", quirky},
		{"fireworks/prefix", "fireworks_ai", body},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tr := newCompatRequest(b, tt.provider, transform.Target{APIKey: "k"}, transform.CompatOptions{})
			b.ReportAllocs()
			b.SetBytes(int64(len(tt.body)))
			for b.Loop() {
				if _, err := tr.RequestBody(tt.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
