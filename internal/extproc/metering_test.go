package extproc

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func TestRouter_MetersAndPricesResponse(t *testing.T) {
	spend := &spendLog{}
	reg := prometheus.NewPedanticRegistry()
	metrics, err := accounting.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	metrics.SetBounds(testRuntime(t).LabelBounds())
	c := startServerWith(t, Options{Spend: spend, Metrics: metrics})
	const body = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100,"prompt_tokens_details":{"cached_tokens":400}}}`
	out := exchange(t, c,
		reqHeaders(false, chatHeaders...), reqBody(chatBody),
		respHeadersFromAttempt("openai-1", 1, ":status", "200", "content-type", "application/json"),
		respBody(body, true))

	want, priced := testRuntime(t).Prices.Cost("openai-1", "openai", "gpt-4o-2024-08-06",
		transform.Usage{InputTokens: 1000, OutputTokens: 100, CachedInputTokens: 400})
	if !priced || want <= 0 {
		t.Fatalf("test model is not priced: %v %v", want, priced)
	}
	set, _ := headers(out[3].GetResponseBody().GetResponse().GetHeaderMutation())
	if set[headerResponseCost] != strconv.FormatFloat(want, 'f', -1, 64) {
		t.Errorf("%s = %q, want %v", headerResponseCost, set[headerResponseCost], want)
	}
	md := out[3].GetDynamicMetadata().GetFields()[metadataNamespace].GetStructValue().AsMap()
	if md["cost"] != want {
		t.Errorf("cost metadata = %v", md["cost"])
	}

	recs := spend.wait(t, 1)
	r := recs[0]
	if r.RequestID != "req-1" || r.KeyID != "all" || r.ModelGroup != "gpt-4o" || r.Deployment != "openai-1" ||
		r.Provider != "openai" || r.Status != 200 || r.Cost != want || r.Estimated || r.Unpriced ||
		r.Usage.InputTokens != 1000 || r.Usage.CachedInputTokens != 400 {
		t.Errorf("record = %+v", r)
	}
	if n := testutil.CollectAndCount(reg, "gen_ai_client_token_usage"); n == 0 {
		t.Error("no token usage observed")
	}
}

func TestRouter_RejectedRequestIsRecorded(t *testing.T) {
	spend := &spendLog{}
	c := startServerWith(t, Options{Spend: spend})
	exchange(t, c, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-nope"))
	r := spend.wait(t, 1)[0]
	if r.Status != 401 || r.ErrorType != "authentication_error" || r.Cost != 0 || r.KeyID != "" {
		t.Errorf("record = %+v", r)
	}
}

// A client that goes away mid-stream, before the provider's usage: the
// request is metered for what was delivered, marked estimated.
func TestRouter_CutStreamMeteredForWhatWasDelivered(t *testing.T) {
	spend := &spendLog{}
	c := startServerWith(t, Options{Spend: spend})
	stream, err := c.Process(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip := func(m *extprocv3.ProcessingRequest) {
		t.Helper()
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip(reqHeaders(false, chatHeaders...))
	roundTrip(reqBody(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"tell me a long story about a lighthouse keeper"}]}`))
	roundTrip(respHeadersFromAttempt("openai-1", 1, ":status", "200", "content-type", "text/event-stream"))
	roundTrip(respBody(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Once upon a time, on a rocky island, "}}]}`+"\n\n", false))
	roundTrip(respBody(`data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"there lived a keeper named Ada."}}]}`+"\n\n", false))
	stream.CloseSend() // the client is gone

	r := spend.wait(t, 1)[0]
	if !r.Estimated || r.Usage.InputTokens == 0 || r.Usage.OutputTokens < 10 || r.Cost <= 0 {
		t.Errorf("record = %+v", r)
	}
}

// Providers that report no usage for embeddings or legacy completions
// (Gemini AI Studio, Cohere on Bedrock) are metered from the client's input,
// marked estimated.
func TestRouter_EstimatesInputWhenProviderReportsNone(t *testing.T) {
	tests := []struct {
		name, path, body, resp string
		want                   int64
	}{
		{"embeddings, strings", "/v1/embeddings", `{"model":"gpt-4o","input":["hello world","a lighthouse keeper"]}`,
			`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]},{"object":"embedding","index":1,"embedding":[0.2]}],"model":"gpt-4o"}`,
			accounting.EstimateTokens("hello world") + accounting.EstimateTokens("a lighthouse keeper")},
		{"embeddings, token ids", "/v1/embeddings", `{"model":"gpt-4o","input":[[1,2,3],[4,5]]}`,
			`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1]}],"model":"gpt-4o"}`, 5},
		{"completions, prompt string", "/v1/completions", `{"model":"gpt-4o","prompt":"Say this is a test"}`,
			`{"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-4o","choices":[{"index":0,"text":"This is a test","finish_reason":"stop"}]}`,
			accounting.EstimateTokens("Say this is a test")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spend := &spendLog{}
			c := startServerWith(t, Options{Spend: spend})
			exchange(t, c,
				reqHeaders(false, ":method", "POST", ":path", tt.path, "content-type", "application/json",
					"authorization", "Bearer sk-all", "x-request-id", "req-1"),
				reqBody(tt.body),
				respHeadersFromAttempt("openai-1", 1, ":status", "200", "content-type", "application/json"),
				respBody(tt.resp, true))
			r := spend.wait(t, 1)[0]
			if !r.Estimated || r.Usage.InputTokens != tt.want || tt.want == 0 || r.Cost <= 0 {
				t.Errorf("record = %+v, want %d estimated input tokens", r, tt.want)
			}
		})
	}
}

// TestRouter_SpendAddsUpUnderConcurrency: records of many concurrent
// requests add up exactly to the usage and cost the responses carried.
func TestRouter_SpendAddsUpUnderConcurrency(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 500
	}
	rec := accounting.NewRecorder(accounting.RecorderConfig{Sink: accounting.NewMemorySink(n), QueueSize: n})
	c := startServerWith(t, Options{Spend: rec})
	rt := testRuntime(t)

	const workers = 16
	var mu sync.Mutex
	var wantTokens int64
	var wantCost float64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				in, out := int64(100+i%37), int64(1+i%11)
				body := fmt.Sprintf(`{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, in, out, in+out)
				stream, err := c.Process(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				for _, m := range []*extprocv3.ProcessingRequest{
					reqHeaders(false, chatHeaders...), reqBody(chatBody),
					respHeadersFromAttempt("openai-1", 1, ":status", "200", "content-type", "application/json"),
					respBody(body, true),
				} {
					if err := stream.Send(m); err != nil {
						t.Error(err)
						return
					}
					if _, err := stream.Recv(); err != nil {
						t.Error(err)
						return
					}
				}
				stream.CloseSend()
				stream.Recv() // wait for the server to end the stream
				cost, _ := rt.Prices.Cost("openai-1", "openai", "gpt-4o-2024-08-06", transform.Usage{InputTokens: in, OutputTokens: out})
				mu.Lock()
				wantTokens += in + out
				wantCost += cost
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	totals, err := rec.Totals(context.Background(), "all")
	if err != nil {
		t.Fatal(err)
	}
	if totals.Requests != int64(n) || totals.InputTokens+totals.OutputTokens != wantTokens || math.Abs(totals.Spend-wantCost) > 1e-9 {
		t.Errorf("totals %+v, want %d requests, %d tokens, $%v", totals, n, wantTokens, wantCost)
	}
}
