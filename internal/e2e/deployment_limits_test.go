package e2e

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/envoysim"
	"github.com/tollgate-gw/tollgate/internal/extproc"
	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/policy"
)

// limitedGroup is a model group of two deployments with one parallel
// slot each, on two fake providers.
const limitedGroup = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "http://127.0.0.1:18091/v1", api_key: sk-fake-openai, max_parallel_requests: 1}
    model_info: {id: dep-a}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "http://127.0.0.1:18092/v1", api_key: sk-fake-openai, max_parallel_requests: 1}
    model_info: {id: dep-b}
keys:
  - {id: demo, key: sk-tollgate-demo}
`

// TestDeploymentLimits_PinnedToCapacity runs hard per-deployment limits
// through the whole path: the xDS server renders the pinned pools, the
// router-level filter picks the deployment with a free slot and routes
// to its pinned pool, Envoy sends the request there, and when every
// deployment is busy the client gets the gateway's 429. A deployment
// failure is still retried on its sibling inside the pinned pool.
func TestDeploymentLimits_PinnedToCapacity(t *testing.T) {
	a, b, sim, client := startPinnedStack(t, limitedGroup)
	params := userMessage("pinned")
	params.Model = "gpt-4o"
	call := func() (string, error) {
		var resp *http.Response
		_, err := client.Chat.Completions.New(t.Context(), params, option.WithResponseInto(&resp))
		if err != nil {
			return "", err
		}
		return resp.Header.Get("x-tollgate-deployment"), nil
	}

	// dep-a is busy with a slow request; the next ones go to dep-b only.
	a.Enqueue(fakeprovider.Step{Delay: 3 * time.Second})
	slow := make(chan error, 1)
	go func() {
		d, err := call()
		if err == nil && d != "dep-a" {
			err = errors.New("the slow request was answered by " + d)
		}
		slow <- err
	}()
	waitRequests(t, a, 1)
	for i := range 2 {
		if d, err := call(); err != nil || d != "dep-b" {
			t.Fatalf("request %d while dep-a is busy: %q, %v; want dep-b", i, d, err)
		}
	}

	// Both busy: the gateway answers 429 without reaching a provider.
	b.Enqueue(fakeprovider.Step{Delay: 3 * time.Second})
	go func() { _, _ = call() }()
	waitRequests(t, b, 3)
	_, err := call()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Type != "rate_limit_error" ||
		!strings.Contains(apiErr.Message, "no deployments available for model group gpt-4o") ||
		!strings.Contains(apiErr.Message, "max_parallel_requests") {
		t.Fatalf("request with every deployment busy: %v", err)
	}
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if got := len(a.Requests()); got != 1 {
		t.Fatalf("dep-a received %d requests, want only the slow one", got)
	}
	if sim.Counter("upstream_rq_retry") != 0 {
		t.Fatalf("envoy retried %d times; pinned requests should land first time", sim.Counter("upstream_rq_retry"))
	}

	// dep-a is free again and picked; when it fails, Envoy retries on
	// dep-b at the pinned pool's next priority.
	a.Enqueue(fakeprovider.Step{Status: 503})
	if d, err := call(); err != nil || d != "dep-b" {
		t.Fatalf("request after dep-a failed: %q, %v; want the retry on dep-b", d, err)
	}
	if got := len(a.Requests()); got != 2 {
		t.Fatalf("dep-a received %d requests, want the failed attempt too", got)
	}
}

// TestDeploymentLimits_EjectedDeploymentIsAvoided: once Envoy ejects a
// deployment, a request pinned to it is answered by its sibling on the
// first attempt; admission then stops picking it, so the sibling's own
// limit holds instead of taking the ejected deployment's traffic
// uncounted.
func TestDeploymentLimits_EjectedDeploymentIsAvoided(t *testing.T) {
	const cfg = `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "http://127.0.0.1:18091/v1", api_key: sk-fake-openai, max_parallel_requests: 10}
    model_info: {id: dep-a}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_base: "http://127.0.0.1:18092/v1", api_key: sk-fake-openai, max_parallel_requests: 1}
    model_info: {id: dep-b}
keys:
  - {id: demo, key: sk-tollgate-demo}
`
	a, b, _, client := startPinnedStack(t, cfg)
	params := userMessage("ejected")
	params.Model = "gpt-4o"
	call := func() (string, string, error) {
		var resp *http.Response
		_, err := client.Chat.Completions.New(t.Context(), params, option.WithResponseInto(&resp))
		if err != nil {
			return "", "", err
		}
		return resp.Header.Get("x-tollgate-deployment"), resp.Header.Get("x-envoy-attempt-count"), nil
	}

	// Three 5xx in a row eject dep-a from its pinned pool (consecutive_5xx:
	// 3); each is retried on dep-b.
	a.Enqueue(fakeprovider.Step{Status: 503}, fakeprovider.Step{Status: 503}, fakeprovider.Step{Status: 503})
	for i := range 3 {
		if d, attempts, err := call(); err != nil || d != "dep-b" || attempts != "2" {
			t.Fatalf("request %d: %q after %s attempts, %v; want dep-b on the retry", i, d, attempts, err)
		}
	}
	// Pinned to dep-a once more, Envoy skips it: dep-b on the first try.
	if d, attempts, err := call(); err != nil || d != "dep-b" || attempts != "1" {
		t.Fatalf("request to the ejected deployment: %q after %s attempts, %v", d, attempts, err)
	}
	if got := len(a.Requests()); got != 3 {
		t.Fatalf("dep-a received %d requests while ejected, want 3", got)
	}
	// Admission now picks dep-b, whose one slot a slow request takes; the
	// next request is refused instead of reaching dep-b uncounted.
	b.Enqueue(fakeprovider.Step{Delay: 2 * time.Second})
	go func() { _, _, _ = call() }()
	waitRequests(t, b, 5)
	_, _, err := call()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests ||
		!strings.Contains(apiErr.Message, "dep-b reached its max_parallel_requests of 1") {
		t.Fatalf("request while dep-a is avoided and dep-b busy: %v", err)
	}
}

// waitRequests waits until f has received n requests.
func waitRequests(t *testing.T, f *fakeprovider.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.Requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the provider received %d requests, want %d", len(f.Requests()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startPinnedStack runs cfg's two OpenAI deployments (dep-a at 127.0.0.1:18091,
// dep-b at :18092) behind the xDS server, ext_proc and the stand-in. The
// limiter's random number is 0, so admission picks the first deployment with
// capacity and which one a request must reach is known.
func startPinnedStack(t *testing.T, cfg string) (a, b *fakeprovider.Server, sim *envoysim.Sim, client openai.Client) {
	t.Helper()
	a = fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey("sk-fake-openai"))
	b = fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey("sk-fake-openai"))
	f, err := config.Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.Build(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	lim := policy.NewMemoryLimiter(policy.LimiterConfig{Rand: func() float64 { return 0 }})
	hostOf := func(raw string) string { u, _ := url.Parse(raw); return u.Host }
	sim = startSim(t, "../../examples/xds/envoy.yaml", map[string]string{
		"127.0.0.1:18000": startXDS(t, []byte(cfg)),
		"127.0.0.1:50051": startExtProc(t, rt, extproc.Options{Limiter: lim}),
		"127.0.0.1:18091": hostOf(a.URL()),
		"127.0.0.1:18092": hostOf(b.URL()),
	})
	return a, b, sim, openai.NewClient(option.WithBaseURL(sim.URL()+"/v1/"), option.WithAPIKey(demoKey), option.WithMaxRetries(0))
}
