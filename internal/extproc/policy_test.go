package extproc

import (
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

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
