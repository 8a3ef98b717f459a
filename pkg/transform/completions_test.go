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
		{"fireworks prefix", "fireworks_ai", transform.Target{},
			`{"model":"llama","prompt":"hi"}`, "/completions", `{"model":"accounts/fireworks/models/llama","prompt":"hi"}`, false},
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
		})
	}
}

func TestCompletions_RequestBodyHeaders(t *testing.T) {
	tests := []struct {
		name, key, wantAuth, wantRemove string
	}{
		{"with key", "sk", "Bearer sk", "x-api-key,api-key,anthropic-version,anthropic-beta"},
		{"without key", "", "", "x-api-key,api-key,anthropic-version,anthropic-beta,authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newCompletionsRequest(t, "", transform.Target{APIKey: tt.key}).RequestBody([]byte(`{"model":"m","prompt":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			auth := ""
			for _, h := range res.SetHeaders {
				if h.Key == "authorization" {
					auth = h.Value
				}
			}
			if auth != tt.wantAuth || strings.Join(res.RemoveHeaders, ",") != tt.wantRemove {
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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newCompletionsRequest(t, "", transform.Target{}).RequestBody([]byte(tt.body))
			var ie *transform.InvalidRequestError
			if !errors.As(err, &ie) || ie.Param != tt.wantParam {
				t.Errorf("err = %v, want param %q", err, tt.wantParam)
			}
		})
	}
	if _, err := transform.NewCompletionsRequest("anthropic", transform.Target{}); !errors.Is(err, transform.ErrUnsupported) {
		t.Errorf("anthropic completions: %v", err)
	}
}

func TestCompletions_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "completions", "request") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "completions", name+".request.json"))
			res, err := newCompletionsRequest(t, "", transform.Target{Model: "gpt-3.5-turbo-instruct", BasePath: "/v1", APIKey: "sk", ForceStreamUsage: true}).RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "completions", name+".request.golden.json"), requestGolden(t, res))
		})
	}
}

func TestCompletions_ResponseBody(t *testing.T) {
	body := readFile(t, filepath.Join("testdata", "completions", "text.response.json"))
	res, err := transform.NewCompletionsResponse(transform.ResponseOptions{}).ResponseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Body != nil || res.Usage != (transform.Usage{InputTokens: 5, OutputTokens: 7}) || res.Model != "gpt-3.5-turbo-instruct" {
		t.Errorf("got %+v", res)
	}
	var c openai.Completion
	if err := json.Unmarshal(body, &c); err != nil || c.Choices[0].Text != "\n\nThis is a test." || c.Usage.TotalTokens != 12 {
		t.Errorf("completion %+v: %v", c, err)
	}
}

func TestCompletions_StreamChunk(t *testing.T) {
	pieces := streamPieces(t, filepath.Join("testdata", "completions", "text.stream.json"))
	whole := bytes.Join(pieces, nil)
	for _, include := range []bool{false, true} {
		want := whole
		if !include {
			want = withoutUsageChunk(t, whole)
		}
		check := func(t *testing.T, pieces [][]byte) {
			t.Helper()
			got, last := runStream(t, transform.NewCompletionsResponse(transform.ResponseOptions{Stream: true, IncludeUsage: include}), pieces)
			if !bytes.Equal(got, want) || last.Usage != (transform.Usage{InputTokens: 5, OutputTokens: 2}) || last.Model != "gpt-3.5-turbo-instruct" || !last.Done {
				t.Fatalf("got %q usage %+v", got, last.Usage)
			}
			for _, d := range sseDataLines(got) {
				var c openai.Completion
				if d != "[DONE]" && (json.Unmarshal([]byte(d), &c) != nil || c.Object != "text_completion") {
					t.Errorf("chunk %s", d)
				}
			}
		}
		check(t, pieces)
		for _, split := range splitEverywhere(whole) {
			check(t, split)
		}
	}
}

func BenchmarkCompletions_RequestBody(b *testing.B) {
	body := []byte(`{"model":"gpt-3.5-turbo-instruct","prompt":"` + strings.Repeat("lorem ipsum ", 200) + `","max_tokens":64,"stream":true}`)
	for _, force := range []bool{false, true} {
		name := "untouched"
		if force {
			name = "usage_forced"
		}
		b.Run(name, func(b *testing.B) {
			tr := newCompletionsRequest(b, "", transform.Target{APIKey: "sk", ForceStreamUsage: force})
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
