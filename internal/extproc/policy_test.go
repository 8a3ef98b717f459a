package extproc

import (
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/pkg/policy"
)

func headersWithKey(key string) *extprocv3.ProcessingRequest {
	return reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer "+key, "x-request-id", "r")
}

// okResponse is a priced OpenAI response that costs more than the
// budgeted key's budget.
const okResponse = `{"id":"c","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}}`

func fullExchange(key string) []*extprocv3.ProcessingRequest {
	return []*extprocv3.ProcessingRequest{
		headersWithKey(key), reqBody(chatBody),
		respHeadersFromAttempt("openai-1", 1, ":status", "200", "content-type", "application/json"),
		respBody(okResponse, true),
	}
}

func TestRouter_RateLimit(t *testing.T) {
	c := startServerWith(t, Options{Limiter: policy.NewMemoryLimiter(policy.LimiterConfig{})})
	for i, wantRemaining := range []string{"1", "0"} {
		out := exchange(t, c, fullExchange("sk-limited")...)
		set, _ := headers(out[2].GetResponseHeaders().GetResponse().GetHeaderMutation())
		if set["x-ratelimit-limit-requests"] != "2" || set["x-ratelimit-remaining-requests"] != wantRemaining {
			t.Errorf("request %d: rate headers %v", i, set)
		}
	}
	out := exchange(t, c, headersWithKey("sk-limited"), reqBody(chatBody))
	imm := out[1].GetImmediateResponse()
	if imm.GetStatus().GetCode() != 429 {
		t.Fatalf("third request: %v", out[1])
	}
	set, _ := headers(imm.GetHeaders())
	if set["retry-after"] == "" || set["retry-after"] == "0" {
		t.Errorf("retry-after = %q", set["retry-after"])
	}
	if body := string(imm.GetBody()); !strings.Contains(body, `"type":"rate_limit_error"`) || !strings.Contains(body, "rpm_limit") {
		t.Errorf("body = %s", body)
	}
	// Other keys are not affected.
	if out := exchange(t, c, headersWithKey("sk-all"), reqBody(chatBody)); out[1].GetImmediateResponse() != nil {
		t.Errorf("unlimited key rejected: %v", out[1])
	}
}

func TestRouter_BudgetSpent(t *testing.T) {
	spend := &spendLog{}
	c := startServerWith(t, Options{Limiter: policy.NewMemoryLimiter(policy.LimiterConfig{}), Spend: spend})
	exchange(t, c, fullExchange("sk-budget")...)
	spend.wait(t, 1) // the first request has ended and its cost is counted
	out := exchange(t, c, headersWithKey("sk-budget"), reqBody(chatBody))
	imm := out[1].GetImmediateResponse()
	if imm.GetStatus().GetCode() != 429 || !strings.Contains(string(imm.GetBody()), `"code":"budget_exceeded"`) {
		t.Fatalf("second request: %v", out[1])
	}
}

// The parallel slot is released when the stream ends, however it ends.
func TestRouter_ParallelSlotReleasedAtEnd(t *testing.T) {
	spend := &spendLog{}
	c := startServerWith(t, Options{Limiter: policy.NewMemoryLimiter(policy.LimiterConfig{}), Spend: spend})
	first, err := c.Process(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*extprocv3.ProcessingRequest{headersWithKey("sk-single"), reqBody(chatBody)} {
		first.Send(m)
		if r, err := first.Recv(); err != nil || r.GetImmediateResponse() != nil {
			t.Fatalf("first request: %v %v", r, err)
		}
	}
	out := exchange(t, c, headersWithKey("sk-single"), reqBody(chatBody))
	if out[1].GetImmediateResponse().GetStatus().GetCode() != 429 {
		t.Fatalf("second request while the first is in flight: %v", out[1])
	}
	// The client of the first request goes away mid-request.
	first.CloseSend()
	first.Recv()
	spend.wait(t, 2)
	if out := exchange(t, c, headersWithKey("sk-single"), reqBody(chatBody)); out[1].GetImmediateResponse() != nil {
		t.Errorf("slot not released: %v", out[1])
	}
}

// limitedConfig has a group of two deployments with one parallel slot
// each, so every request is pinned to the deployment admission picked.
const limitedConfig = `
model_list:
  - model_name: limited
    litellm_params: {model: openai/gpt-4o, api_base: "http://a.test/v1", api_key: sk-a, max_parallel_requests: 1}
    model_info: {id: lim-a}
  - model_name: limited
    litellm_params: {model: openai/gpt-4o, api_base: "http://b.test/v1", api_key: sk-b, max_parallel_requests: 1}
    model_info: {id: lim-b}
keys:
  - {id: all, key: sk-all}
`

const limitedBody = `{"model":"limited","messages":[{"role":"user","content":"hi"}]}`

// poolOf opens a request on a stream left open (the request in flight)
// and returns the pool the router-level filter chose, or the immediate
// response.
func poolOf(t *testing.T, c extprocv3.ExternalProcessorClient) (string, *extprocv3.ImmediateResponse, extprocv3.ExternalProcessor_ProcessClient) {
	t.Helper()
	s, err := c.Process(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var last *extprocv3.ProcessingResponse
	for _, m := range []*extprocv3.ProcessingRequest{headersWithKey("sk-all"), reqBody(limitedBody)} {
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
		if last, err = s.Recv(); err != nil {
			t.Fatal(err)
		}
		if imm := last.GetImmediateResponse(); imm != nil {
			return "", imm, s
		}
	}
	set, _ := headers(last.GetRequestBody().GetResponse().GetHeaderMutation())
	return set[headerPool], nil, s
}

// A deployment at its limit is skipped while a sibling has capacity; the
// 429 comes only when every deployment is at its limit, and a finished
// request frees its deployment again.
func TestRouter_DeploymentLimits(t *testing.T) {
	f, err := config.Parse([]byte(limitedConfig))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.Build(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	spend := &spendLog{}
	c := startServerOn(t, rt, Options{Limiter: policy.NewMemoryLimiter(policy.LimiterConfig{}), Spend: spend})
	pinned := map[string]bool{"tollgate_pool_limited_pin_lim-a": true, "tollgate_pool_limited_pin_lim-b": true}

	first, imm, s1 := poolOf(t, c)
	if imm != nil || !pinned[first] {
		t.Fatalf("first request: pool %q, %v", first, imm)
	}
	second, imm, s2 := poolOf(t, c)
	if imm != nil || !pinned[second] || second == first {
		t.Fatalf("second request: pool %q (first %q), %v; want the sibling's pinned pool", second, first, imm)
	}
	_, imm, s3 := poolOf(t, c)
	s3.CloseSend()
	if imm.GetStatus().GetCode() != 429 {
		t.Fatalf("third request with both deployments busy: %v", imm)
	}
	set, _ := headers(imm.GetHeaders())
	body := string(imm.GetBody())
	if set["retry-after"] != "1" || !strings.Contains(body, `"type":"rate_limit_error"`) ||
		!strings.Contains(body, "model group limited") || !strings.Contains(body, "lim-a reached its max_parallel_requests of 1") {
		t.Fatalf("429: retry-after %q, body %s", set["retry-after"], body)
	}
	// The first client goes away: its deployment's slot is released.
	s1.CloseSend()
	s1.Recv()
	spend.wait(t, 2) // the first request and the rejected one
	if again, imm, _ := poolOf(t, c); imm != nil || again != first {
		t.Fatalf("after the first request ended: pool %q, %v; want %q", again, imm, first)
	}
	// The second request's provider fails: its slot is released too.
	secondID := strings.TrimPrefix(second, "tollgate_pool_limited_pin_")
	for _, m := range []*extprocv3.ProcessingRequest{
		respHeadersFromAttempt(secondID, 1, ":status", "503", "content-type", "application/json"),
		respBody(`{"error":{"message":"overloaded","type":"server_error"}}`, true),
	} {
		if err := s2.Send(m); err != nil {
			t.Fatal(err)
		}
		if _, err := s2.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	s2.CloseSend()
	s2.Recv()
	spend.wait(t, 3)
	if again, imm, _ := poolOf(t, c); imm != nil || again != second {
		t.Fatalf("after the second request's provider failed: pool %q, %v; want %q", again, imm, second)
	}
}

// The admitted deployment's TPM is corrected with the real usage only
// when it answered; a retry answered elsewhere refunds its estimate.
func TestRouter_DeploymentTokensFollowTheAnswer(t *testing.T) {
	f, err := config.Parse([]byte(`
model_list:
  - model_name: limited
    litellm_params: {model: openai/gpt-4o, api_base: "http://a.test/v1", api_key: sk-a, tpm: 1000}
    model_info: {id: lim-a}
  - model_name: limited
    litellm_params: {model: openai/gpt-4o, api_base: "http://b.test/v1", api_key: sk-b}
    model_info: {id: lim-b}
router_settings: {enable_pre_call_checks: true}
keys:
  - {id: all, key: sk-all}
`))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.Build(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	// Rand 0 picks the first deployment with capacity.
	spend := &spendLog{}
	c := startServerOn(t, rt, Options{Limiter: policy.NewMemoryLimiter(policy.LimiterConfig{Rand: func() float64 { return 0 }}), Spend: spend})
	n := 0
	request := func(answeredBy string) string {
		out := exchange(t, c, headersWithKey("sk-all"), reqBody(limitedBody),
			respHeadersFromAttempt(answeredBy, 2, ":status", "200", "content-type", "application/json"),
			respBody(okResponse, true))
		n++
		spend.wait(t, n) // the request has ended and settled
		set, _ := headers(out[1].GetRequestBody().GetResponse().GetHeaderMutation())
		return set[headerPool]
	}
	const pinA, pinB = "tollgate_pool_limited_pin_lim-a", "tollgate_pool_limited_pin_lim-b"
	// 1100 tokens answered by lim-b: lim-a keeps its whole 1000.
	if p := request("lim-b"); p != pinA {
		t.Fatalf("first request pinned to %s", p)
	}
	if p := request("lim-a"); p != pinA {
		t.Fatalf("second request pinned to %s; the first one's tokens were charged to lim-a", p)
	}
	// lim-a answered 1100 tokens of its 1000: the next goes to lim-b.
	if p := request("lim-b"); p != pinB {
		t.Fatalf("third request pinned to %s; lim-a's real usage was not counted", p)
	}
}
