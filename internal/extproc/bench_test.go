package extproc

import (
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// benchRequestBody is a realistic ~2 KB chat request.
var benchRequestBody = `{"model":"gpt-4o","temperature":0.2,"messages":[{"role":"system","content":"` +
	strings.Repeat("You are a careful assistant. ", 20) + `"},{"role":"user","content":"` +
	strings.Repeat("Summarise the quarterly report in three bullet points. ", 25) + `"}]}`

const benchOpenAIResponse = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"- one\n- two\n- three"},"finish_reason":"stop"}],"usage":{"prompt_tokens":420,"completion_tokens":12,"total_tokens":432}}`

// BenchmarkRouterStream_PassThrough is the router-level filter's work for
// one non-stream OpenAI request: the four messages Envoy sends it.
func BenchmarkRouterStream_PassThrough(b *testing.B) {
	srv := New(testRuntime(b), Options{Now: time.Now, NewRequestID: func() string { return "id" }})
	rt := srv.runtime.Load()
	msgs := []*extprocv3.ProcessingRequest{
		reqHeaders(false, chatHeaders...), reqBody(benchRequestBody),
		respHeadersFromAttempt("openai-1", 1, ":status", "200", "content-type", "application/json"),
		respBody(benchOpenAIResponse, true),
	}
	b.ReportAllocs()
	for b.Loop() {
		r := &routerStream{srv: srv, rt: rt, start: time.Now()}
		for _, m := range msgs {
			if resp := r.handle(b.Context(), m); resp.GetImmediateResponse() != nil {
				b.Fatal(resp)
			}
		}
	}
}

// BenchmarkUpstreamStream_Attempt is the upstream filter's work for one
// attempt, by provider.
func BenchmarkUpstreamStream_Attempt(b *testing.B) {
	srv := New(testRuntime(b), Options{})
	rt := srv.runtime.Load()
	for _, deployment := range []string{"openai-1", "anthropic-1"} {
		b.Run(deployment, func(b *testing.B) {
			msgs := []*extprocv3.ProcessingRequest{
				upstreamHeaders(deployment, ":path", "/v1/chat/completions", "x-envoy-attempt-count", "1"),
				reqBody(benchRequestBody),
			}
			b.ReportAllocs()
			for b.Loop() {
				u := &upstreamStream{srv: srv, rt: rt, deploymentID: deployment}
				for _, m := range msgs {
					if resp := u.handle(b.Context(), m); resp.GetImmediateResponse() != nil {
						b.Fatal(resp)
					}
				}
			}
		})
	}
}
