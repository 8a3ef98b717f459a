package accounting_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

var testBounds = accounting.LabelBounds{
	ModelGroups: []string{"gpt-4o", "claude"},
	Deployments: []string{"openai-1", "anthropic-1"},
	Models:      []string{"gpt-4o", "claude-sonnet-4-5"},
	Providers:   []string{"openai", "anthropic"},
}

func newTestMetrics(t testing.TB) (*accounting.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := accounting.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.SetBounds(testBounds)
	return m, reg
}

// metric finds the one sample of family name whose labels include want.
func metric(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d samples, want 1", name, want, len(found))
	}
	return found[0]
}

func genAI(op, provider, req, resp string) map[string]string {
	return map[string]string{
		"gen_ai_operation_name": op, "gen_ai_provider_name": provider,
		"gen_ai_request_model": req, "gen_ai_response_model": resp,
	}
}

func with(base map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for kk, vv := range base {
		out[kk] = vv
	}
	return out
}

func TestMetrics_ObserveRequest(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.ObserveRequest(accounting.RequestObservation{
		Operation: "chat", Provider: "openai", ModelGroup: "gpt-4o", Deployment: "openai-1",
		RequestModel: "gpt-4o", ResponseModel: "gpt-4o-2024-08-06", Status: 200,
		Duration: 1500 * time.Millisecond,
		Usage:    transform.Usage{InputTokens: 1000, OutputTokens: 200, CachedInputTokens: 400},
		Cost:     0.004,
	})
	m.ObserveRequest(accounting.RequestObservation{
		Operation: "chat", Provider: "anthropic", ModelGroup: "claude", Deployment: "anthropic-1",
		RequestModel: "claude", ResponseModel: "claude-sonnet-4-5-20250929", Status: 200, Stream: true,
		Duration: 1600 * time.Millisecond, TimeToFirstToken: 300 * time.Millisecond,
		Usage: transform.Usage{InputTokens: 4221, OutputTokens: 14, CachedInputTokens: 3000, CacheCreationInputTokens: 1200},
		Cost:  0.005673,
	})
	m.ObserveRequest(accounting.RequestObservation{
		Operation: "chat", Provider: "openai", ModelGroup: "gpt-4o", Deployment: "openai-1",
		RequestModel: "gpt-4o", Status: 429, ErrorType: "rate_limit_error", Duration: 200 * time.Millisecond,
	})
	m.ObserveRequest(accounting.RequestObservation{
		Operation: "chat", Provider: "openai", ModelGroup: "gpt-4o", Deployment: "openai-1",
		RequestModel: "gpt-99", ResponseModel: "totally-new-model", Status: 200,
		Duration: time.Second, Usage: transform.Usage{InputTokens: 10, OutputTokens: 5}, Unpriced: true, Estimated: true,
	})

	const want = `
# HELP tollgate_requests_total Requests answered, by model group, deployment, provider, HTTP status class and error type.
# TYPE tollgate_requests_total counter
tollgate_requests_total{deployment="anthropic-1",error_type="",model_group="claude",provider="anthropic",status_class="2xx"} 1
tollgate_requests_total{deployment="openai-1",error_type="",model_group="gpt-4o",provider="openai",status_class="2xx"} 2
tollgate_requests_total{deployment="openai-1",error_type="rate_limit_error",model_group="gpt-4o",provider="openai",status_class="4xx"} 1
# HELP tollgate_spend_usd_total Cost of answered requests in USD.
# TYPE tollgate_spend_usd_total counter
tollgate_spend_usd_total{model_group="claude",provider="anthropic"} 0.005673
tollgate_spend_usd_total{model_group="gpt-4o",provider="openai"} 0.004
# HELP tollgate_unpriced_requests_total Requests whose model has no known price and were recorded at cost 0.
# TYPE tollgate_unpriced_requests_total counter
tollgate_unpriced_requests_total{deployment="anthropic-1",model_group="claude",provider="anthropic"} 0
tollgate_unpriced_requests_total{deployment="openai-1",model_group="gpt-4o",provider="openai"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tollgate_requests_total", "tollgate_spend_usd_total", "tollgate_unpriced_requests_total"); err != nil {
		t.Error(err)
	}

	openai := genAI("chat", "openai", "gpt-4o", "gpt-4o")
	claude := genAI("chat", "anthropic", "claude", "claude-sonnet-4-5")
	tests := []struct {
		name      string
		metric    string
		labels    map[string]string
		wantCount uint64
		wantSum   float64
	}{
		{"input tokens", "gen_ai_client_token_usage", with(openai, "gen_ai_token_type", "input"), 1, 1000},
		{"output tokens", "gen_ai_client_token_usage", with(openai, "gen_ai_token_type", "output"), 1, 200},
		{"cached input tokens", "gen_ai_client_token_usage", with(openai, "gen_ai_token_type", "cached_input"), 1, 400},
		{"no reasoning tokens observed", "gen_ai_client_token_usage", with(openai, "gen_ai_token_type", "reasoning"), 0, 0},
		{"cache creation tokens", "gen_ai_client_token_usage", with(claude, "gen_ai_token_type", "cache_creation_input"), 1, 1200},
		{"duration success", "gen_ai_server_request_duration_seconds", with(openai, "error_type", ""), 1, 1.5},
		{"duration failure", "gen_ai_server_request_duration_seconds",
			with(genAI("chat", "openai", "gpt-4o", "other"), "error_type", "rate_limit_error"), 1, 0.2},
		{"time to first token", "gen_ai_server_time_to_first_token_seconds", claude, 1, 0.3},
		// (1.6 s − 0.3 s) over the 13 tokens after the first.
		{"time per output token", "gen_ai_server_time_per_output_token_seconds", claude, 1, 0.1},
		{"no ttft for non-streams", "gen_ai_server_time_to_first_token_seconds", openai, 0, 0},
		{"unknown models are other", "gen_ai_client_token_usage",
			with(genAI("chat", "openai", "other", "other"), "gen_ai_token_type", "input"), 1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := metric(t, reg, tt.metric, tt.labels).GetHistogram()
			if h.GetSampleCount() != tt.wantCount || math.Abs(h.GetSampleSum()-tt.wantSum) > 1e-9 {
				t.Errorf("count %d sum %g, want %d %g", h.GetSampleCount(), h.GetSampleSum(), tt.wantCount, tt.wantSum)
			}
		})
	}

	est := metric(t, reg, "tollgate_estimated_usage_requests_total", map[string]string{"deployment": "openai-1"})
	if got := est.GetCounter().GetValue(); got != 1 {
		t.Errorf("estimated usage requests = %g, want 1", got)
	}
}

func TestMetrics_Events(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.LimitRejected("key", "rpm")
	m.LimitRejected("key", "rpm")
	m.LimitRejected("team", "bogus")
	m.BudgetRejected("team")
	m.BudgetRejected("someone's key id")
	m.FallbackTaken("gpt-4o", "claude")
	m.SetDeploymentHealth("gpt-4o", "openai-1", true)
	m.SetDeploymentHealth("claude", "anthropic-1", false)
	m.SetDeploymentHealth("claude", "not-configured", true)
	m.ObserveExtProcMessage(accounting.FilterRouter, accounting.PhaseRequestBody, 2*time.Millisecond)
	m.ObserveExtProcMessage(accounting.FilterUpstream, accounting.PhaseRequestHeaders, time.Millisecond)
	m.ObserveExtProcMessage(accounting.ExtProcFilter(9), accounting.PhaseRequestHeaders, time.Millisecond)
	m.RedisError("spend_write")

	const want = `
# HELP tollgate_limit_rejections_total Requests rejected by a rate or parallel-request limit, by scope and limit.
# TYPE tollgate_limit_rejections_total counter
tollgate_limit_rejections_total{limit="other",scope="team"} 1
tollgate_limit_rejections_total{limit="rpm",scope="key"} 2
# HELP tollgate_budget_rejections_total Requests rejected because a budget was spent, by scope.
# TYPE tollgate_budget_rejections_total counter
tollgate_budget_rejections_total{scope="other"} 1
tollgate_budget_rejections_total{scope="team"} 1
# HELP tollgate_fallbacks_total Requests answered by a fallback model group instead of the one asked for.
# TYPE tollgate_fallbacks_total counter
tollgate_fallbacks_total{fallback_model_group="claude",model_group="gpt-4o"} 1
# HELP tollgate_deployment_healthy 1 when a deployment is healthy, 0 when it is cooled down or ejected.
# TYPE tollgate_deployment_healthy gauge
tollgate_deployment_healthy{deployment="anthropic-1",model_group="claude"} 0
tollgate_deployment_healthy{deployment="openai-1",model_group="gpt-4o"} 1
# HELP tollgate_redis_errors_total Failed Redis operations, by operation.
# TYPE tollgate_redis_errors_total counter
tollgate_redis_errors_total{operation="spend_write"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"tollgate_limit_rejections_total", "tollgate_budget_rejections_total", "tollgate_fallbacks_total",
		"tollgate_deployment_healthy", "tollgate_redis_errors_total"); err != nil {
		t.Error(err)
	}
	h := metric(t, reg, "tollgate_extproc_message_duration_seconds", map[string]string{"filter": "router", "phase": "request_body"}).GetHistogram()
	if h.GetSampleCount() != 1 || h.GetSampleSum() != 0.002 {
		t.Errorf("router request_body: count %d sum %g", h.GetSampleCount(), h.GetSampleSum())
	}
	// 2 filters × 6 phases, resolved up front; the bad filter added none.
	if n, err := testutil.GatherAndCount(reg, "tollgate_extproc_message_duration_seconds"); err != nil || n != 12 {
		t.Errorf("extproc series = %d (%v), want 12", n, err)
	}

	// A reload that drops a deployment removes its health gauge.
	m.SetBounds(accounting.LabelBounds{ModelGroups: []string{"gpt-4o"}, Deployments: []string{"openai-1"}})
	if n, err := testutil.GatherAndCount(reg, "tollgate_deployment_healthy"); err != nil || n != 1 {
		t.Errorf("health series after reload = %d (%v), want 1", n, err)
	}
}

// Label values come only from bounded sets: a flood of unknown names adds
// one "other" series, not one per name.
func TestMetrics_BoundedLabels(t *testing.T) {
	m, reg := newTestMetrics(t)
	for i := range 1000 {
		s := fmt.Sprint(i)
		m.ObserveRequest(accounting.RequestObservation{
			Operation: "op" + s, Provider: "p" + s, ModelGroup: "g" + s, Deployment: "d" + s,
			RequestModel: "m" + s, ResponseModel: "r" + s, Status: 200 + i, ErrorType: "e" + s,
			Duration: time.Second, Usage: transform.Usage{InputTokens: 1, OutputTokens: 1},
		})
	}
	counts := map[string]int{
		// status 200..1199 fall into 2xx..9xx classes: 2xx, 3xx, 4xx, 5xx and other.
		"tollgate_requests_total":                1 * 5,
		"gen_ai_server_request_duration_seconds": 1,
		"gen_ai_client_token_usage":              5,
	}
	for name, want := range counts {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != want {
			t.Errorf("%s: %d series (%v), want %d", name, n, err, want)
		}
	}
	r := metric(t, reg, "tollgate_requests_total", map[string]string{"status_class": "other"})
	for _, lp := range r.GetLabel() {
		if v := lp.GetValue(); v != "other" && v != "_OTHER" {
			t.Errorf("label %s = %q, want other", lp.GetName(), v)
		}
	}
}

// One test lints the whole registry after every metric has a sample.
func TestMetrics_Lint(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.ObserveRequest(accounting.RequestObservation{
		Operation: "chat", Provider: "openai", ModelGroup: "gpt-4o", Deployment: "openai-1",
		RequestModel: "gpt-4o", ResponseModel: "gpt-4o", Status: 200, Stream: true,
		Duration: time.Second, TimeToFirstToken: 100 * time.Millisecond,
		Usage: transform.Usage{InputTokens: 10, OutputTokens: 10, ReasoningTokens: 2}, Cost: 1, Unpriced: true, Estimated: true,
	})
	m.LimitRejected("key", "tpm")
	m.BudgetRejected("key")
	m.FallbackTaken("gpt-4o", "claude")
	m.SetDeploymentHealth("gpt-4o", "openai-1", true)
	m.RedisError("spend_write")
	rec := accounting.NewRecorder(accounting.RecorderConfig{Metrics: m, QueueSize: 1})
	rec.Record(accounting.Record{KeyID: "k"})
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec.Record(accounting.Record{KeyID: "k"})

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "tollgate_") && !strings.HasPrefix(name, "gen_ai_") {
			t.Errorf("metric %s has neither the tollgate_ nor the gen_ai_ prefix", name)
		}
	}
	if len(mfs) != 17 {
		t.Errorf("gathered %d families, want all 17", len(mfs))
	}
}

func TestNewMetrics_Twice(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := accounting.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := accounting.NewMetrics(reg); err == nil {
		t.Error("second NewMetrics on one registry succeeded, want an already-registered error")
	}
}

// A nil *Metrics is a valid "no metrics" value.
func TestMetrics_Nil(t *testing.T) {
	var m *accounting.Metrics
	m.SetBounds(testBounds)
	m.ObserveRequest(accounting.RequestObservation{Status: 200})
	m.LimitRejected("key", "rpm")
	m.BudgetRejected("key")
	m.FallbackTaken("a", "b")
	m.SetDeploymentHealth("a", "b", true)
	m.ObserveExtProcMessage(accounting.FilterRouter, accounting.PhaseRequestBody, time.Millisecond)
	m.RedisError("x")
}

func BenchmarkMetrics_ObserveRequest(b *testing.B) {
	m, _ := newTestMetrics(b)
	o := accounting.RequestObservation{
		Operation: "chat", Provider: "anthropic", ModelGroup: "claude", Deployment: "anthropic-1",
		RequestModel: "claude", ResponseModel: "claude-sonnet-4-5-20250929", Status: 200, Stream: true,
		Duration: 1600 * time.Millisecond, TimeToFirstToken: 300 * time.Millisecond,
		Usage: transform.Usage{InputTokens: 4221, OutputTokens: 14, CachedInputTokens: 3000, CacheCreationInputTokens: 1200},
		Cost:  0.005673,
	}
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.ObserveRequest(o)
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.ObserveRequest(o)
			}
		})
	})
}

func BenchmarkMetrics_ObserveExtProcMessage(b *testing.B) {
	m, _ := newTestMetrics(b)
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveExtProcMessage(accounting.FilterRouter, accounting.PhaseRequestBody, time.Millisecond)
	}
}
