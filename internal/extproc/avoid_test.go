package extproc

import (
	"slices"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/pkg/policy"
)

func TestAvoided_Filter(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	clock := t0
	now := func() time.Time { return clock }
	deps := []policy.DeploymentLimit{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	ids := func(ds []policy.DeploymentLimit) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	var a avoided
	if got := a.filter(deps, now); &got[0] != &deps[0] {
		t.Fatal("nothing avoided, yet deps were copied")
	}
	if !a.skip("b", t0) || a.skip("b", t0) {
		t.Fatal("skip reports a new avoidance only the first time")
	}
	a.skip("a", t0)
	if got := ids(a.filter(deps, now)); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("filter = %v, want c", got)
	}
	a.skip("c", t0)
	if got := ids(a.filter(deps, now)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("all avoided: filter = %v, want all (Envoy falls back by itself)", got)
	}
	clock = t0.Add(avoidFor)
	if got := ids(a.filter(deps, now)); !slices.Equal(got, []string{"a", "b", "c"}) || a.n.Load() != 0 {
		t.Fatalf("after %v: filter = %v, %d entries left", avoidFor, got, a.n.Load())
	}
	if !a.skip("b", clock) {
		t.Fatal("a new skip after expiry is not reported")
	}
}

// A pinned request answered by a sibling on its first attempt means Envoy
// had ejected the pinned deployment: admission picks the others for a
// while. A sibling answering a retry (the pinned one failed) is no sign.
func TestRouter_AvoidsDeploymentEnvoySkipped(t *testing.T) {
	f, err := config.Parse([]byte(`
model_list:
  - model_name: limited
    litellm_params: {model: openai/gpt-4o, api_base: "http://a.test/v1", api_key: sk-a, max_parallel_requests: 5}
    model_info: {id: lim-a}
  - model_name: limited
    litellm_params: {model: openai/gpt-4o, api_base: "http://b.test/v1", api_key: sk-b, max_parallel_requests: 5}
    model_info: {id: lim-b}
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
	c := startServerOn(t, rt, Options{Limiter: policy.NewMemoryLimiter(policy.LimiterConfig{Rand: func() float64 { return 0 }})})
	request := func(answeredBy string, attempts int) string {
		out := exchange(t, c, headersWithKey("sk-all"), reqBody(limitedBody),
			respHeadersFromAttempt(answeredBy, attempts, ":status", "200", "content-type", "application/json"),
			respBody(okResponse, true))
		set, _ := headers(out[1].GetRequestBody().GetResponse().GetHeaderMutation())
		return set[headerPool]
	}
	const pinA, pinB = "tollgate_pool_limited_pin_lim-a", "tollgate_pool_limited_pin_lim-b"
	if p := request("lim-b", 2); p != pinA {
		t.Fatalf("first request pinned to %s", p)
	}
	if p := request("lim-b", 1); p != pinA {
		t.Fatalf("a retry answered by lim-b made admission avoid lim-a: %s", p)
	}
	if p := request("lim-b", 1); p != pinB {
		t.Fatalf("lim-a was skipped by Envoy, yet the next request is pinned to %s", p)
	}
}
