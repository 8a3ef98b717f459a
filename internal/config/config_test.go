package config

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/policy"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad_EmbeddedDefault(t *testing.T) {
	rt, err := Load("", envOf(nil))
	if err != nil {
		t.Fatalf("Load(default): %v", err)
	}
	if rt.Server.GRPCAddress != DefaultGRPCAddress || rt.Server.MaxRequestBodyBytes != DefaultMaxRequestBodyBytes ||
		time.Duration(rt.Server.ShutdownTimeout) != DefaultShutdownTimeout {
		t.Errorf("defaults not applied: %+v", rt.Server)
	}
	g, err := rt.Routes.Resolve("gpt-4o")
	if err != nil {
		t.Fatal(err)
	}
	if g.Pool != "tollgate_pool_gpt-4o" || len(g.Fallbacks) != 1 || g.Fallbacks[0] != "claude-sonnet" {
		t.Errorf("group gpt-4o = %+v", g)
	}
	d, err := rt.Routes.Deployment("anthropic-claude-sonnet")
	if err != nil {
		t.Fatal(err)
	}
	if d.Provider != transform.ProviderAnthropic || d.Model != "claude-sonnet-4-5" || d.BasePath != "" {
		t.Errorf("anthropic deployment = %+v", d)
	}
	if d, _ := rt.Routes.Deployment("openai-gpt-4o"); d.BasePath != "/v1" {
		t.Errorf("openai base path = %q, want /v1", d.BasePath)
	}
	k, err := rt.Keys.Authenticate("sk-tollgate-demo")
	if err != nil || k.ID != "demo" {
		t.Fatalf("demo key: %v %v", k, err)
	}
}

func TestLoad_ExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*/tollgate*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs found")
	}
	env := envOf(map[string]string{"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-y", "TOLLGATE_MASTER_KEY": "sk-m", "TOLLGATE_TEAM_A_KEY": "sk-a"})
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			if _, err := Load(f, env); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBuild_Secrets(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "key")
	if err := os.WriteFile(secretFile, []byte("sk-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := `
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_KEY}
keys:
  - key: file:` + secretFile + `
general_settings:
  master_key: os.environ/MASTER
`
	f, err := Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.Build(envOf(map[string]string{"OPENAI_KEY": "sk-openai", "MASTER": "sk-master"}))
	if err != nil {
		t.Fatal(err)
	}
	d := rt.Routes.Groups()[0].Deployments[0]
	if d.APIKey != "sk-openai" || d.BaseURL != "https://api.openai.com/v1" {
		t.Errorf("deployment = %+v", d)
	}
	if _, err := rt.Keys.Authenticate("sk-from-file"); err != nil {
		t.Errorf("file key: %v", err)
	}
	if k, err := rt.Keys.Authenticate("sk-master"); err != nil || !k.Allows("anything") {
		t.Errorf("master key: %v %v", k, err)
	}
}

func TestParse_Rejects(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown top-level field", "modle_list: []", "field modle_list not found"},
		{"unknown nested field", "model_list: [{model_name: a, litellm_params: {modle: x}}]", "field modle not found"},
		{"bad duration", "server: {shutdown_timeout: soon}", "not a duration"},
		{"wrong type", "model_list: {a: b}", "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBuild_Rejects(t *testing.T) {
	badPrices := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(badPrices, []byte(`{"gpt-x": {"input_cost_per_token": "cheap"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const okModel = "model_list: [{model_name: m, litellm_params: {model: openai/gpt-4o}}]\n"
	const okKey = "keys: [{key: sk-1}]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"no deployments", okKey, "model_list: at least one deployment"},
		{"no keys", okModel, "keys: at least one key"},
		{"missing model name", "model_list: [{litellm_params: {model: openai/x}}]\n" + okKey, "model_list[0].model_name: required"},
		{"missing provider prefix", "model_list: [{model_name: m, litellm_params: {model: gpt-4o}}]\n" + okKey, "model_list[0].litellm_params.model: \"gpt-4o\" has no provider prefix"},
		{"unsupported provider", "model_list: [{model_name: m, litellm_params: {model: acme/x}}]\n" + okKey, "provider \"acme\" is not supported"},
		{"bad api_base", "model_list: [{model_name: m, litellm_params: {model: openai/x, api_base: 'ftp://x'}}]\n" + okKey, "model_list[0].litellm_params.api_base"},
		{"unset env secret", "model_list: [{model_name: m, litellm_params: {model: openai/x, api_key: os.environ/NOPE}}]\n" + okKey, "model_list[0].litellm_params.api_key: environment variable NOPE is not set"},
		{"missing secret file", "model_list: [{model_name: m, litellm_params: {model: openai/x, api_key: 'file:/nonexistent/k'}}]\n" + okKey, "read secret file"},
		{"bad log level", okModel + okKey + "server: {log_level: loud}", "server.log_level"},
		{"bad budget duration", okModel + "keys: [{key: sk-1, max_budget: 10, budget_duration: fortnightly}]", "keys[0]: budget_duration"},
		{"negative budget", okModel + "keys: [{key: sk-1, max_budget: -1}]", "max_budget must be a finite amount"},
		{"negative key limit", okModel + "keys: [{key: sk-1, rpm_limit: -1}]", "keys[0]: rpm_limit"},
		{"bad failure mode", okModel + okKey + "policy: {on_redis_failure: ignore}", "policy.on_redis_failure"},
		{"limits for unknown group", okModel + okKey + "router_settings: {model_group_limits: {nope: {rpm_limit: 1}}}", "model_group_limits: unknown model"},
		{"negative group limit", okModel + okKey + "router_settings: {model_group_limits: {m: {rpm_limit: -1}}}", "model_group_limits.m"},
		{"tracing bad endpoint", okModel + okKey + "tracing: {otlp_endpoint: 'http://collector:4317'}", "tracing"},
		{"tracing bad ratio", okModel + okKey + "tracing: {otlp_endpoint: 'collector:4317', sample_ratio: 1.5}", "sample_ratio"},
		{"negative price", "model_list: [{model_name: m, litellm_params: {model: openai/x, input_cost_per_token: -0.1}}]\n" + okKey, "model_list[0].litellm_params.input_cost_per_token"},
		{"negative request price", "model_list: [{model_name: m, litellm_params: {model: openai/x, input_cost_per_request: -1}}]\n" + okKey, "model_list[0].litellm_params.input_cost_per_request"},
		{"missing prices file", okModel + okKey + "accounting: {prices_file: /nonexistent/prices.json}", "accounting.prices_file"},
		{"bad prices file", okModel + okKey + "accounting: {prices_file: " + badPrices + "}", "accounting"},
		{"redis both modes", okModel + okKey + "redis: {address: 'a:1', cluster_addresses: ['b:1']}", "not both"},
		{"redis password unset", okModel + okKey + "redis: {address: 'a:1', password: os.environ/NOPE}", "redis.password"},
		{"negative spend queue", okModel + okKey + "accounting: {spend: {queue_size: -1}}", "accounting.spend"},
		{"negative weight", "model_list: [{model_name: m, litellm_params: {model: openai/x, weight: -1}}]\n" + okKey, "model_list[0].litellm_params.weight"},
		{"negative rpm", "model_list: [{model_name: m, litellm_params: {model: openai/x, rpm: -5}}]\n" + okKey, "rpm, tpm and order must not be negative"},
		{"colliding pool names", "model_list: [{model_name: a/b, litellm_params: {model: openai/x}}, {model_name: a_b, litellm_params: {model: openai/y}}]\n" + okKey, "both map to Envoy cluster"},
		{"negative body limit", okModel + okKey + "server: {max_request_body_bytes: -1}", "server.max_request_body_bytes"},
		{"empty key", okModel + "keys: [{id: a}]", "keys[0].key: required"},
		{"duplicate key secret", okModel + "keys: [{key: sk-1}, {key: sk-1}]", "secret is used twice"},
		{"key names unknown model", okModel + "keys: [{key: sk-1, models: [nope]}]", "keys[0].models: unknown model \"nope\""},
		{"duplicate deployment id", "model_list: [{model_name: m, litellm_params: {model: openai/x}, model_info: {id: d}}, {model_name: n, litellm_params: {model: openai/y}, model_info: {id: d}}]\n" + okKey, "deployment id \"d\" is used twice"},
		{"fallback to unknown group", okModel + okKey + "router_settings: {fallbacks: [{m: [nope]}]}", "fallback \"nope\" of model group \"m\""},
		{"alias to unknown group", okModel + okKey + "router_settings: {model_group_alias: {a: nope}}", "alias \"a\" names unknown model group"},
		{"unknown routing strategy", okModel + okKey + "router_settings: {routing_strategy: fastest}", "router_settings.routing_strategy: \"fastest\" is not a routing strategy"},
		{"unimplemented routing strategy", okModel + okKey + "router_settings: {routing_strategy: least-busy}", "router_settings.routing_strategy: \"least-busy\" is a LiteLLM strategy Tollgate does not implement"},
		{"negative deployment parallel", "model_list: [{model_name: m, litellm_params: {model: openai/x, max_parallel_requests: -1}}]\n" + okKey, "model_list[0].litellm_params.max_parallel_requests: must not be negative"},
		{"pinned pool clashes with a pool", "model_list: [{model_name: a, litellm_params: {model: openai/x, max_parallel_requests: 1}, model_info: {id: x}}, {model_name: a_pin_x, litellm_params: {model: openai/y}}]\n" + okKey, "both map to Envoy cluster \"tollgate_pool_a_pin_x\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Build(envOf(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestBuild_ReportsEveryProblem(t *testing.T) {
	f, err := Parse([]byte("model_list: [{litellm_params: {model: x}}, {model_name: b}]\nserver: {log_level: loud}"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Build(envOf(nil))
	for _, want := range []string{"model_list[0].model_name", "model_list[0].litellm_params.model", "model_list[1].litellm_params.model", "server.log_level", "keys:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestDeploymentID_StableWhenDerived(t *testing.T) {
	m := ModelEntry{ModelName: "g", LiteLLMParams: LiteLLMParams{Model: "openai/x", APIKey: "os.environ/K"}}
	if a, b := m.deploymentID(), m.deploymentID(); a != b || len(a) != 16 {
		t.Fatalf("ids %q %q", a, b)
	}
	// The id of an entry without Entra ID fields is the one it had before
	// they were hashed: model_name, model, custom_llm_provider, api_base,
	// api_key.
	old := sha256.Sum256([]byte("g\x00openai/x\x00\x00\x00os.environ/K"))
	if got, want := m.deploymentID(), hex.EncodeToString(old[:8]); got != want {
		t.Errorf("id = %s, want the unchanged %s", got, want)
	}
}

func TestDeploymentID_DistinctEntries(t *testing.T) {
	azure := ModelEntry{ModelName: "g", LiteLLMParams: LiteLLMParams{Model: "azure/d", APIBase: "https://r.openai.azure.com"}}
	entra := azure
	entra.LiteLLMParams.TenantID, entra.LiteLLMParams.ClientID, entra.LiteLLMParams.ClientSecret = "os.environ/T", "os.environ/C", "os.environ/S"
	bedrock := ModelEntry{ModelName: "g", LiteLLMParams: LiteLLMParams{Model: "bedrock/anthropic.claude-3-haiku", AWSRegionName: "us-east-1",
		AWSAccessKeyID: "os.environ/A", AWSSecretAccessKey: "os.environ/S"}}
	vertex := ModelEntry{ModelName: "g", LiteLLMParams: LiteLLMParams{Model: "vertex_ai/gemini-2.0-flash", VertexProject: "p", VertexLocation: "us-central1", VertexCredentials: "os.environ/SA"}}
	for _, tt := range []struct {
		name string
		base ModelEntry
		edit func(*LiteLLMParams)
	}{
		{"api_base", azure, func(p *LiteLLMParams) { p.APIBase = "https://other" }},
		{"api_key", azure, func(p *LiteLLMParams) { p.APIKey = "os.environ/K" }},
		{"azure_ad_token", azure, func(p *LiteLLMParams) { p.AzureADToken = "os.environ/TOK" }},
		{"azure_ad_token reference", func() ModelEntry { e := azure; e.LiteLLMParams.AzureADToken = "os.environ/TOK_A"; return e }(), func(p *LiteLLMParams) { p.AzureADToken = "os.environ/TOK_B" }},
		{"client credentials vs none", azure, func(p *LiteLLMParams) {
			p.TenantID, p.ClientID, p.ClientSecret = "os.environ/T", "os.environ/C", "os.environ/S"
		}},
		{"tenant_id", entra, func(p *LiteLLMParams) { p.TenantID = "os.environ/T2" }},
		{"client_id", entra, func(p *LiteLLMParams) { p.ClientID = "os.environ/C2" }},
		{"client_secret", entra, func(p *LiteLLMParams) { p.ClientSecret = "os.environ/S2" }},
		{"azure_authority_host", entra, func(p *LiteLLMParams) { p.AzureAuthorityHost = "https://login.microsoftonline.us" }},
		{"aws_region_name", bedrock, func(p *LiteLLMParams) { p.AWSRegionName = "eu-west-1" }},
		{"aws keys", bedrock, func(p *LiteLLMParams) { p.AWSAccessKeyID, p.AWSSecretAccessKey = "os.environ/A2", "os.environ/S2" }},
		{"aws_session_token", bedrock, func(p *LiteLLMParams) { p.AWSSessionToken = "os.environ/T" }},
		{"aws_profile_name", bedrock, func(p *LiteLLMParams) { p.AWSProfileName = "prod" }},
		{"vertex_project", vertex, func(p *LiteLLMParams) { p.VertexProject = "p2" }},
		{"vertex_location", vertex, func(p *LiteLLMParams) { p.VertexLocation = "europe-west4" }},
		{"vertex_credentials", vertex, func(p *LiteLLMParams) { p.VertexCredentials = "os.environ/SA2" }},
		// The fields are separated: moving a value between them changes the id.
		{"value moved between fields", entra, func(p *LiteLLMParams) { p.TenantID, p.ClientID = p.ClientID, p.TenantID }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			other := tt.base
			tt.edit(&other.LiteLLMParams)
			if a, b := tt.base.deploymentID(), other.deploymentID(); a == b {
				t.Errorf("entries differing in %s share id %s", tt.name, a)
			}
		})
	}
}

func TestBuild_PriceOverrides(t *testing.T) {
	f, err := Parse([]byte(`
model_list:
  - model_name: m
    litellm_params: {model: openai/my-finetune, input_cost_per_token: 0.000002, output_cost_per_token: 0.000008, input_cost_per_request: 0.001}
    model_info: {id: ft}
keys: [{key: sk-1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.Build(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	cost, priced := rt.Prices.Cost("ft", "openai", "my-finetune", transform.Usage{InputTokens: 1000, OutputTokens: 100})
	if !priced || cost < 0.0037999 || cost > 0.0038001 {
		t.Errorf("cost = %v priced %v, want 0.0038", cost, priced)
	}
	b := rt.LabelBounds()
	if len(b.ModelGroups) != 1 || b.Deployments[0] != "ft" || b.Providers[0] != "openai" {
		t.Errorf("bounds = %+v", b)
	}
}

// Deployment rpm and tpm are hard limits only under pre-call checks or a
// usage-based strategy; max_parallel_requests always is. Only groups with
// a hard limit are pinned and listed for admission.
func TestBuild_DeploymentLimits(t *testing.T) {
	const models = `model_list:
  - {model_name: m, litellm_params: {model: openai/a, rpm: 300, tpm: 9000}, model_info: {id: a}}
  - {model_name: m, litellm_params: {model: openai/b, rpm: 100}, model_info: {id: b}}
  - {model_name: p, litellm_params: {model: openai/c, max_parallel_requests: 4}, model_info: {id: c}}
  - {model_name: p, litellm_params: {model: openai/d}, model_info: {id: d}}
  - {model_name: free, litellm_params: {model: openai/e}, model_info: {id: e}}
keys: [{key: sk-1}]
`
	for _, tc := range []struct {
		name, settings string
		hardRate       bool
	}{
		{"default", "", false},
		{"simple-shuffle", "router_settings: {routing_strategy: simple-shuffle}", false},
		{"pre-call checks", "router_settings: {enable_pre_call_checks: true}", true},
		{"usage-based-routing", "router_settings: {routing_strategy: usage-based-routing}", true},
		{"usage-based-routing-v2", "router_settings: {routing_strategy: usage-based-routing-v2}", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(models + tc.settings))
			if err != nil {
				t.Fatal(err)
			}
			rt, err := f.Build(envOf(nil))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]policy.DeploymentLimit{
				"p": {{ID: "c", Limits: policy.Limits{MaxParallel: 4}}, {ID: "d"}},
			}
			if tc.hardRate {
				want["m"] = []policy.DeploymentLimit{
					{ID: "a", Weight: 1000, Limits: policy.Limits{RPM: 300, TPM: 9000}},
					{ID: "b", Weight: 333, Limits: policy.Limits{RPM: 100}},
				}
			}
			if !reflect.DeepEqual(rt.DeploymentLimits, want) {
				t.Fatalf("DeploymentLimits = %+v, want %+v", rt.DeploymentLimits, want)
			}
			for _, g := range rt.Routes.Groups() {
				_, limited := want[g.Name]
				for _, d := range g.Deployments {
					if pinned := d.PinnedPool != ""; g.Pinned != limited || pinned != limited {
						t.Errorf("group %s deployment %s: pinned %v, pool %q; want pinned %v", g.Name, d.ID, g.Pinned, d.PinnedPool, limited)
					}
				}
			}
		})
	}
}
