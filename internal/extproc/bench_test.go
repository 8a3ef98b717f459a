package extproc

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/policy"
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
		r := &routerStream{srv: srv, rt: rt, start: time.Now(), replies: replyPool.Get().(*replies)}
		for _, m := range msgs {
			if resp := r.handle(b.Context(), m); resp.GetImmediateResponse() != nil {
				b.Fatal(resp)
			}
		}
		replyPool.Put(r.replies)
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
				u := &upstreamStream{srv: srv, rt: rt, deploymentID: deployment, replies: replyPool.Get().(*replies)}
				for _, m := range msgs {
					if resp := u.handle(b.Context(), m); resp.GetImmediateResponse() != nil {
						b.Fatal(resp)
					}
				}
				replyPool.Put(u.replies)
			}
		})
	}
}

// BenchmarkRequest is one whole request as cmd/extproc serves it with
// bench/tollgate.yaml: both filters' messages, key check, in-memory limits,
// metering, a spend record and the metrics, ending with the router-level
// stream's finish. It is the in-process part of the load run's cost.
func BenchmarkRequest(b *testing.B) {
	f, err := config.Parse([]byte(testConfig + `
  - {id: bench, key: sk-bench, rpm_limit: 100000000, tpm_limit: 100000000000, max_parallel_requests: 100000}
`))
	if err != nil {
		b.Fatal(err)
	}
	rt, err := f.Build(func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	metrics, err := accounting.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	metrics.SetBounds(rt.LabelBounds())
	spend := accounting.NewRecorder(accounting.RecorderConfig{Sink: accounting.NewMemorySink(0), Metrics: metrics})
	b.Cleanup(func() { _ = spend.Close(context.Background()) })
	srv := New(rt, Options{Metrics: metrics, Spend: spend, Limiter: policy.NewMemoryLimiter(policy.LimiterConfig{}),
		Auth: policy.NewAuthenticator(policy.AuthConfig{Static: rt.Keys})})
	hdrs := []string{":authority", "tollgate.test", ":path", "/v1/chat/completions", ":method", "POST", ":scheme", "http",
		"content-type", "application/json", "content-length", strconv.Itoa(len(benchRequestBody)), "x-request-id", "req-1",
		"authorization", "Bearer sk-bench"}
	for _, c := range []struct{ deployment, response string }{
		{"openai-1", benchOpenAIResponse},
		{"anthropic-1", benchAnthropicResponse},
	} {
		b.Run(c.deployment, func(b *testing.B) {
			router := wire(b, reqHeaders(false, hdrs...), reqBody(benchRequestBody))
			upstream := wire(b, upstreamHeaders(c.deployment, append(hdrs[:len(hdrs)-2:len(hdrs)-2],
				"x-tollgate-pool", "gpt-4o", "x-tollgate-request-id", "req-1", "x-envoy-attempt-count", "1")...),
				reqBody(benchRequestBody))
			response := wire(b, respHeadersFromAttempt(c.deployment, 1, ":status", "200", "content-type", "application/json",
				"content-length", strconv.Itoa(len(c.response))), respBody(c.response, true))
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				r := &routerStream{srv: srv, rt: rt, start: time.Now()}
				serveWire(b, r, router)
				u := &upstreamStream{srv: srv, rt: rt, deploymentID: c.deployment}
				serveWire(b, u, upstream)
				u.finish(ctx)
				serveWire(b, r, response)
				r.finish(ctx)
			}
		})
	}
}

// wire encodes messages as Envoy sends them.
func wire(b *testing.B, msgs ...*extprocv3.ProcessingRequest) [][]byte {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		var err error
		if out[i], err = proto.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// serveWire does a stream's per-message work as Process does it: decode
// and encode with the server's codec, the reply built in pooled objects and
// sent in its own encoding.
func serveWire(b *testing.B, h handler, msgs [][]byte) {
	c := Codec()
	for _, m := range msgs {
		var req extprocv3.ProcessingRequest
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(m)}, &req); err != nil {
			b.Fatal(err)
		}
		p := replyPool.Get().(*replies)
		h.use(p)
		resp := h.handle(b.Context(), &req)
		if resp.GetImmediateResponse() != nil {
			b.Fatal(resp)
		}
		var out proto.Message = resp
		if resp == &p.resp {
			if w, ok := p.wire(); ok {
				out = w
			}
		}
		data, err := c.Marshal(out)
		if err != nil {
			b.Fatal(err)
		}
		data.Free()
		h.use(nil)
		replyPool.Put(p)
	}
}

const benchAnthropicResponse = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"- one\n- two\n- three"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":420,"output_tokens":12}}`
