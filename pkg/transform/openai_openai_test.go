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

func newOpenAIRequest(t testing.TB, target transform.Target) transform.RequestTranslator {
	t.Helper()
	tr, err := transform.NewRequestTranslator(transform.APIChatCompletions, transform.ProviderOpenAI, target)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newOpenAIResponse(t testing.TB, opts transform.ResponseOptions) transform.ResponseTranslator {
	t.Helper()
	tr, err := transform.NewResponseTranslator(transform.APIChatCompletions, transform.ProviderOpenAI, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestOpenAIToOpenAI_RequestBody(t *testing.T) {
	tests := []struct {
		name     string
		target   transform.Target
		body     string
		wantPath string
		// wantBody is "" when the client's body must be forwarded as is.
		wantBody   string
		wantStream bool
	}{
		{"unchanged", transform.Target{Model: "gpt-4o", BasePath: "/v1", APIKey: "sk"},
			`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, "/v1/chat/completions", "", false},
		{"no target model keeps the body", transform.Target{},
			`{"model":"group","messages":[]}`, "/chat/completions", "", false},
		{"model rewritten", transform.Target{Model: "gpt-4o-mini", BasePath: "/v1"},
			`{"model":"group","messages":[]}`, "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, false},
		{"model added", transform.Target{Model: "m"},
			`{"messages":[]}`, "/chat/completions", `{"messages":[],"model":"m"}`, false},
		{"stream usage forced", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[],"stream":true}`, "/chat/completions", `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`, true},
		{"stream usage forced over false", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":false}}`, "/chat/completions", `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`, true},
		{"stream usage forced over null", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[],"stream":true,"stream_options":null}`, "/chat/completions", `{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`, true},
		{"stream usage already asked", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}}`, "/chat/completions", "", true},
		{"no forcing without stream", transform.Target{ForceStreamUsage: true},
			`{"model":"m","messages":[]}`, "/chat/completions", "", false},
		{"model and usage", transform.Target{Model: "x", ForceStreamUsage: true},
			`{"model":"m","messages":[],"stream":true}`, "/chat/completions", `{"model":"x","messages":[],"stream":true,"stream_options":{"include_usage":true}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.body)
			tr := newOpenAIRequest(t, tt.target)
			res, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.wantPath || res.Stream != tt.wantStream {
				t.Errorf("path %q stream %v", res.Path, res.Stream)
			}
			if tt.wantBody == "" && res.Body != nil {
				t.Errorf("body copied: %s", res.Body)
			}
			if tt.wantBody != "" && string(res.Body) != tt.wantBody {
				t.Errorf("body = %s, want %s", res.Body, tt.wantBody)
			}
			if string(in) != tt.body {
				t.Errorf("input modified: %s", in)
			}
			again, err := tr.RequestBody(in)
			if err != nil || !bytes.Equal(again.Body, res.Body) {
				t.Errorf("second translation differs: %s, %v", again.Body, err)
			}
		})
	}
}

func TestOpenAIToOpenAI_RequestBodyHeaders(t *testing.T) {
	body := []byte(`{"model":"m","messages":[]}`)
	tests := []struct {
		name       string
		key        string
		wantAuth   string
		wantRemove string
	}{
		{"with key", "sk-1", "Bearer sk-1", "x-api-key,api-key,anthropic-version,anthropic-beta"},
		{"without key", "", "", "x-api-key,api-key,anthropic-version,anthropic-beta,authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newOpenAIRequest(t, transform.Target{APIKey: tt.key}).RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			auth, ctype := "", ""
			for _, h := range res.SetHeaders {
				switch h.Key {
				case "authorization":
					auth = h.Value
				case "content-type":
					ctype = h.Value
				}
			}
			if auth != tt.wantAuth || ctype != "application/json" {
				t.Errorf("set headers %v", res.SetHeaders)
			}
			if got := strings.Join(res.RemoveHeaders, ","); got != tt.wantRemove {
				t.Errorf("remove headers %s, want %s", got, tt.wantRemove)
			}
		})
	}
}

func TestOpenAIToOpenAI_RequestBodyInvalid(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantParam string
	}{
		{"malformed", `{"model":`, ""},
		{"not object", `"hi"`, ""},
		{"no messages", `{"model":"m"}`, "messages"},
		{"messages not array", `{"model":"m","messages":{}}`, "messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newOpenAIRequest(t, transform.Target{}).RequestBody([]byte(tt.body))
			var ie *transform.InvalidRequestError
			if !errors.Is(err, transform.ErrInvalidRequest) || !errors.As(err, &ie) || ie.Param != tt.wantParam {
				t.Errorf("err = %v, want param %q", err, tt.wantParam)
			}
		})
	}
}

func TestOpenAIToOpenAI_ResponseBody(t *testing.T) {
	body := readFile(t, filepath.Join("testdata", "openai", "chat.response.json"))
	res, err := newOpenAIResponse(t, transform.ResponseOptions{}).ResponseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	want := transform.Usage{InputTokens: 1200, OutputTokens: 35, CachedInputTokens: 1024, ReasoningTokens: 16}
	if res.Body != nil || res.Usage != want || res.Model != "gpt-4o-2024-08-06" {
		t.Errorf("got body %q usage %+v model %q", res.Body, res.Usage, res.Model)
	}

	// The first of duplicate keys counts, as a lookup would read it.
	res, err = newOpenAIResponse(t, transform.ResponseOptions{}).ResponseBody([]byte(`{"model":"a","usage":{"prompt_tokens":3,` +
		`"prompt_tokens":9,"completion_tokens_details":{"reasoning_tokens":2},"completion_tokens":4},"model":"b","usage":{}}`))
	if want := (transform.Usage{InputTokens: 3, OutputTokens: 4, ReasoningTokens: 2}); err != nil || res.Usage != want || res.Model != "a" {
		t.Errorf("duplicate keys: usage %+v model %q err %v", res.Usage, res.Model, err)
	}

	_, err = newOpenAIResponse(t, transform.ResponseOptions{}).ResponseBody([]byte(`{"error":{"message":"boom","type":"server_error"}}`))
	var pe *transform.ProviderError
	if !errors.As(err, &pe) || pe.Status != 500 || pe.Message != "boom" {
		t.Errorf("error in 2xx body: %v", err)
	}
}

// wantUsageStream is what the usage fixture's client sees without the
// usage chunk.
func withoutUsageChunk(t *testing.T, stream []byte) []byte {
	t.Helper()
	var out []byte
	for _, ev := range strings.SplitAfter(string(stream), "\n\n") {
		if strings.Contains(ev, `"choices":[]`) {
			continue
		}
		out = append(out, ev...)
	}
	return out
}

func TestOpenAIToOpenAI_StreamChunk(t *testing.T) {
	pieces := streamPieces(t, filepath.Join("testdata", "openai", "usage.stream.json"))
	whole := bytes.Join(pieces, nil)
	wantUsage := transform.Usage{InputTokens: 1200, OutputTokens: 35, CachedInputTokens: 1024, ReasoningTokens: 16}
	tests := []struct {
		name         string
		includeUsage bool
		want         []byte
	}{
		{"client asked for usage", true, whole},
		{"usage chunk removed", false, withoutUsageChunk(t, whole)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := transform.ResponseOptions{Stream: true, IncludeUsage: tt.includeUsage}
			check := func(t *testing.T, pieces [][]byte) {
				t.Helper()
				got, last := runStream(t, newOpenAIResponse(t, opts), pieces)
				if !bytes.Equal(got, tt.want) {
					t.Fatalf("output differs:\n got: %q\nwant: %q", got, tt.want)
				}
				if last.Usage != wantUsage || last.Model != "gpt-4o-2024-08-06" || !last.Done {
					t.Fatalf("usage %+v model %q done %v", last.Usage, last.Model, last.Done)
				}
			}
			t.Run("recorded", func(t *testing.T) { check(t, pieces) })
			t.Run("whole", func(t *testing.T) { check(t, [][]byte{whole}) })
			t.Run("split everywhere", func(t *testing.T) {
				for _, split := range splitEverywhere(whole) {
					check(t, split)
				}
			})
			t.Run("byte by byte", func(t *testing.T) {
				var bytewise [][]byte
				for i := range whole {
					bytewise = append(bytewise, whole[i:i+1])
				}
				check(t, bytewise)
			})
		})
	}
}

func TestOpenAIToOpenAI_StreamChunkZeroCopy(t *testing.T) {
	piece := []byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n")
	tests := []struct {
		name         string
		includeUsage bool
	}{{"usage asked", true}, {"usage not asked", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newOpenAIResponse(t, transform.ResponseOptions{Stream: true, IncludeUsage: tt.includeUsage})
			res, err := tr.StreamChunk(piece, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Body) != len(piece) || &res.Body[0] != &piece[0] {
				t.Error("a piece of whole events was copied")
			}
		})
	}
	t.Run("unfinished line held back", func(t *testing.T) {
		tr := newOpenAIResponse(t, transform.ResponseOptions{Stream: true})
		res, _ := tr.StreamChunk([]byte("data: {\"choices\":[],\"us"), false)
		if len(res.Body) != 0 {
			t.Errorf("emitted %q", res.Body)
		}
		res, _ = tr.StreamChunk([]byte("age\":{\"prompt_tokens\":3}}\n\ndata: [DONE]\n\n"), true)
		if string(res.Body) != "data: [DONE]\n\n" || res.Usage.InputTokens != 3 || !res.Done {
			t.Errorf("body %q usage %+v", res.Body, res.Usage)
		}
	})
}

func TestOpenAIToOpenAI_StreamChunkParsesAsSDK(t *testing.T) {
	pieces := streamPieces(t, filepath.Join("testdata", "openai", "usage.stream.json"))
	out, _ := runStream(t, newOpenAIResponse(t, transform.ResponseOptions{Stream: true}), pieces)
	for _, d := range sseDataLines(out) {
		if d == "[DONE]" {
			continue
		}
		var c openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(d), &c); err != nil || len(c.Choices) == 0 {
			t.Errorf("chunk %s: %v", d, err)
		}
	}
}

func TestOpenAIToOpenAI_ErrorBody(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   transform.ProviderError
	}{
		{"rate limit kept", 429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			transform.ProviderError{Status: 429, Type: "requests", Code: "rate_limit_exceeded", Message: "Rate limit reached"}},
		{"context window by message", 400, `{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":null}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Param: "messages", Code: transform.CodeContextLengthExceeded, Message: "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."}},
		{"context window by code", 400, `{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: "too long"}},
		{"content policy", 400, `{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","code":"content_policy_violation"}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContentPolicy, Message: "Your request was rejected as a result of our safety system."}},
		{"azure content filter", 400, `{"error":{"message":"The response was filtered","type":null,"code":"content_filter","status":400}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContentPolicy, Message: "The response was filtered"}},
		{"missing type from status", 401, `{"error":{"message":"Incorrect API key provided"}}`,
			transform.ProviderError{Status: 401, Type: transform.ErrorTypeAuthentication, Message: "Incorrect API key provided"}},
		{"string error", 503, `{"error":"model is loading"}`,
			transform.ProviderError{Status: 503, Type: transform.ErrorTypeOverloaded, Message: "model is loading"}},
		{"detail", 422, `{"detail":"field required"}`,
			transform.ProviderError{Status: 422, Type: transform.ErrorTypeInvalidRequest, Message: "field required"}},
		{"non-JSON 502", 502, `<html>Bad Gateway</html>`,
			transform.ProviderError{Status: 502, Type: transform.ErrorTypeServer, Message: "provider returned status 502 with an unreadable error body"}},
		{"non-JSON 429", 429, `slow down`,
			transform.ProviderError{Status: 429, Type: transform.ErrorTypeRateLimit, Message: "provider returned status 429 with an unreadable error body"}},
		{"empty object", 500, `{}`,
			transform.ProviderError{Status: 500, Type: transform.ErrorTypeServer, Message: "provider returned status 500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newOpenAIResponse(t, transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body))
			if *got != tt.want {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func BenchmarkOpenAIToOpenAI_RequestBody(b *testing.B) {
	body := readFile(b, filepath.Join("testdata", "anthropic", "chat_2k.request.json"))
	tests := []struct {
		name   string
		target transform.Target
	}{
		{"unchanged", transform.Target{APIKey: "sk"}},
		{"model rewrite", transform.Target{Model: "gpt-4o", APIKey: "sk"}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			tr := newOpenAIRequest(b, tt.target)
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

// BenchmarkOpenAIToOpenAI_StreamChunk measures one SSE event per operation.
func BenchmarkOpenAIToOpenAI_StreamChunk(b *testing.B) {
	pieces := streamPieces(b, filepath.Join("testdata", "openai", "usage.stream.json"))
	ev := pieces[2]
	for _, include := range []bool{false, true} {
		b.Run(fmt.Sprintf("include_usage=%v", include), func(b *testing.B) {
			tr := newOpenAIResponse(b, transform.ResponseOptions{Stream: true, IncludeUsage: include})
			b.ReportAllocs()
			b.SetBytes(int64(len(ev)))
			for b.Loop() {
				if _, err := tr.StreamChunk(ev, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenAIToOpenAI_ResponseBody reads usage and model from a
// buffered pass-through response.
func BenchmarkOpenAIToOpenAI_ResponseBody(b *testing.B) {
	body := readFile(b, filepath.Join("testdata", "openai", "chat.response.json"))
	tr := newOpenAIResponse(b, transform.ResponseOptions{})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.ResponseBody(body); err != nil {
			b.Fatal(err)
		}
	}
}
