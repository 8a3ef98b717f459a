package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// The fuzzers check that no input panics a translator, that translated
// bodies are valid JSON, and that stream output does not depend on where
// the input was cut. Run one locally with, for example,
// go test -run '^$' -fuzz FuzzOpenAIToAnthropic_StreamChunk -fuzztime 20s ./pkg/transform

func addFixtures(f *testing.F, provider, kind string) {
	for _, name := range fixtures(f, provider, kind) {
		path := filepath.Join("testdata", provider, name+"."+kind+".json")
		if kind == "stream" {
			f.Add(bytes.Join(streamPieces(f, path), nil), 17)
			continue
		}
		f.Add(readFile(f, path))
	}
}

func FuzzOpenAIToAnthropic_RequestBody(f *testing.F) {
	addFixtures(f, "anthropic", "request")
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		tr := newAnthropicRequest(t, transform.Target{Model: "claude", APIKey: "k"})
		res, err := tr.RequestBody(body)
		if err != nil {
			if !errors.Is(err, transform.ErrInvalidRequest) {
				t.Fatalf("error is not an invalid request: %v", err)
			}
			return
		}
		if !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		again, _ := tr.RequestBody(body)
		if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(body, pristine) {
			t.Fatal("translation is not repeatable over an untouched body")
		}
	})
}

func FuzzOpenAIToAnthropic_ResponseBody(f *testing.F) {
	addFixtures(f, "anthropic", "response")
	f.Fuzz(func(t *testing.T, body []byte) {
		tr := newAnthropicResponse(t, transform.ResponseOptions{Created: created})
		res, err := tr.ResponseBody(body)
		if err == nil && !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		tr.ErrorBody(400, body)
	})
}

// translateSplit runs a stream cut in two at cut through a fresh
// translator and returns the output, stopping at the first error.
func translateSplit(tr transform.ResponseTranslator, stream []byte, cut int) []byte {
	cut = min(max(cut, 0), len(stream))
	var out []byte
	for i, p := range [][]byte{stream[:cut:cut], stream[cut:]} {
		res, err := tr.StreamChunk(p, i == 1)
		out = append(out, res.Body...)
		if err != nil {
			break
		}
	}
	return out
}

func FuzzOpenAIToAnthropic_StreamChunk(f *testing.F) {
	addFixtures(f, "anthropic", "stream")
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		opts := transform.ResponseOptions{Stream: true, IncludeUsage: cut%2 == 0, Created: created}
		got := translateSplit(newAnthropicResponse(t, opts), stream, cut)
		for _, d := range sseDataLines(got) {
			if d != "[DONE]" && !json.Valid([]byte(d)) {
				t.Fatalf("invalid event %s from %q", d, stream)
			}
		}
		if whole := translateSplit(newAnthropicResponse(t, opts), stream, len(stream)); !bytes.Equal(got, whole) {
			t.Fatalf("output depends on the cut:\n split: %q\n whole: %q", got, whole)
		}
	})
}

func FuzzOpenAIToOpenAI_RequestBody(f *testing.F) {
	addFixtures(f, "openai", "request")
	addFixtures(f, "anthropic", "request")
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		tr := newOpenAIRequest(t, transform.Target{Model: "gpt-x", ForceStreamUsage: true})
		res, err := tr.RequestBody(body)
		if err != nil {
			if !errors.Is(err, transform.ErrInvalidRequest) {
				t.Fatalf("error is not an invalid request: %v", err)
			}
			return
		}
		if res.Body != nil && !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		if !bytes.Equal(body, pristine) {
			t.Fatal("input body was modified")
		}
	})
}

func FuzzOpenAIToOpenAI_StreamChunk(f *testing.F) {
	addFixtures(f, "openai", "stream")
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		for _, include := range []bool{false, true} {
			opts := transform.ResponseOptions{Stream: true, IncludeUsage: include}
			got := translateSplit(newOpenAIResponse(t, opts), stream, cut)
			whole := translateSplit(newOpenAIResponse(t, opts), stream, len(stream))
			if !bytes.Equal(got, whole) {
				t.Fatalf("output depends on the cut:\n split: %q\n whole: %q", got, whole)
			}
			if include && !bytes.Equal(got, stream) {
				t.Fatal("pass-through changed the stream")
			}
		}
	})
}
