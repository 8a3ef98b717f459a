package config

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate-gw/tollgate/pkg/credentials"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

const vertexUser = `{"type":"authorized_user","client_id":"cid","client_secret":"s","refresh_token":"r","quota_project_id":"qp"}`

func TestBuild_Providers(t *testing.T) {
	env := envOf(map[string]string{"VERTEX_CREDS": vertexUser, "AWS_SECRET": "secret", "AZURE_AD_TOKEN": "aad-tok", "AZURE_SECRET": "s3cret"})
	for _, tc := range []struct {
		name, params                 string
		provider                     transform.Provider
		model, base, region, project string
		wantCreds, wantDropParams    bool
	}{
		{"openai", "{model: openai/gpt-4o}", transform.ProviderOpenAI, "gpt-4o", "https://api.openai.com/v1", "", "", false, false},
		{"azure", "{model: azure/my-deployment, api_base: 'https://r.openai.azure.com', api_version: '2024-10-21'}", transform.ProviderAzure, "my-deployment", "https://r.openai.azure.com", "", "", false, false},
		{"azure entra id token", "{model: azure/my-deployment, api_base: 'https://r.openai.azure.com', azure_ad_token: os.environ/AZURE_AD_TOKEN}", transform.ProviderAzure, "my-deployment", "https://r.openai.azure.com", "", "", true, false},
		{"azure client credentials", "{model: azure/my-deployment, api_base: 'https://r.openai.azure.com', tenant_id: t1, client_id: app-1, client_secret: os.environ/AZURE_SECRET}", transform.ProviderAzure, "my-deployment", "https://r.openai.azure.com", "", "", true, false},
		{"bedrock", "{model: bedrock/us.anthropic.claude-sonnet-4-20250514-v1:0, aws_region_name: us-west-2, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: os.environ/AWS_SECRET}", transform.ProviderBedrock, "us.anthropic.claude-sonnet-4-20250514-v1:0", "https://bedrock-runtime.us-west-2.amazonaws.com", "us-west-2", "", true, false},
		{"gemini", "{model: gemini/gemini-2.5-flash, api_key: k}", transform.ProviderGemini, "gemini-2.5-flash", "https://generativelanguage.googleapis.com", "", "", false, false},
		{"vertex", "{model: vertex_ai/gemini-2.5-pro, vertex_project: p1, vertex_location: europe-west4, vertex_credentials: os.environ/VERTEX_CREDS}", transform.ProviderVertexAI, "gemini-2.5-pro", "https://europe-west4-aiplatform.googleapis.com", "europe-west4", "p1", true, false},
		{"vertex global, project from credentials", "{model: vertex_ai/gemini-2.5-pro, vertex_location: global, vertex_credentials: os.environ/VERTEX_CREDS}", transform.ProviderVertexAI, "gemini-2.5-pro", "https://aiplatform.googleapis.com", "global", "qp", true, false},
		{"cohere alias", "{model: cohere_chat/command-r-plus}", transform.ProviderCohere, "command-r-plus", "https://api.cohere.com", "", "", false, false},
		{"ollama alias", "{model: ollama/llama3.1}", transform.ProviderOllama, "llama3.1", "http://localhost:11434", "", "", false, false},
		{"mistral", "{model: mistral/mistral-large-latest, drop_params: true}", "mistral", "mistral-large-latest", "https://api.mistral.ai/v1", "", "", false, true},
		{"vllm", "{model: hosted_vllm/meta-llama/Llama-3.1-8B, api_base: 'http://vllm:8000/v1'}", "hosted_vllm", "meta-llama/Llama-3.1-8B", "http://vllm:8000/v1", "", "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte("model_list: [{model_name: m, litellm_params: " + tc.params + "}]\nkeys: [{key: sk-1}]\n"))
			if err != nil {
				t.Fatal(err)
			}
			rt, err := f.Build(env)
			if err != nil {
				t.Fatal(err)
			}
			d := rt.Routes.Groups()[0].Deployments[0]
			if d.Provider != tc.provider || d.Model != tc.model || d.BaseURL != tc.base || d.Region != tc.region || d.Project != tc.project {
				t.Errorf("deployment = %+v", d)
			}
			if (d.Credentials != nil) != tc.wantCreds || d.DropParams != tc.wantDropParams {
				t.Errorf("credentials %v, drop_params %v", d.Credentials != nil, d.DropParams)
			}
			if _, err := transform.NewRequestTranslator(transform.APIChatCompletions, d.Provider, d.Target()); err != nil {
				t.Errorf("no translator: %v", err)
			}
		})
	}
}

func TestBuild_ProviderRejects(t *testing.T) {
	for _, tc := range []struct{ name, params, want string }{
		{"unknown provider lists the supported ones", "{model: acme/x}", "supported: anthropic, azure, bedrock"},
		{"azure needs api_base", "{model: azure/d}", "api_base: required for provider azure"},
		{"vllm needs api_base", "{model: hosted_vllm/x}", "api_base: required for provider hosted_vllm"},
		{"bedrock needs a region", "{model: bedrock/x, aws_access_key_id: a, aws_secret_access_key: b}", "aws_region_name is required"},
		{"bedrock secret unset", "{model: bedrock/x, aws_region_name: us-east-1, aws_access_key_id: a, aws_secret_access_key: os.environ/NOPE}", "aws_secret_access_key"},
		{"azure_ad_token excludes client credentials", "{model: azure/d, api_base: 'https://r', azure_ad_token: t, tenant_id: t1, client_id: c, client_secret: s}", "azure_ad_token and tenant_id/client_id/client_secret are mutually exclusive"},
		{"client credentials come together", "{model: azure/d, api_base: 'https://r', tenant_id: t1, client_id: c}", "model_list[0].litellm_params: tenant_id, client_id and client_secret are required together (missing client_secret)"},
		{"client credentials come together, two missing", "{model: azure/d, api_base: 'https://r', client_secret: s}", "(missing tenant_id, client_id)"},
		{"entra id excludes api_key", "{model: azure/d, api_base: 'https://r', api_key: k, azure_ad_token: t}", "api_key and azure_ad_token are mutually exclusive"},
		{"entra id on another provider", "{model: openai/gpt-4o, azure_ad_token: t}", "azure_ad_token: only provider azure takes Entra ID credentials"},
		{"azure_ad_token unset", "{model: azure/d, api_base: 'https://r', azure_ad_token: os.environ/NOPE}", "azure_ad_token: environment variable NOPE is not set"},
		{"client_secret empty", "{model: azure/d, api_base: 'https://r', tenant_id: t1, client_id: c, client_secret: os.environ/EMPTY}", "client_secret: resolves to an empty secret"},
		{"azure_authority_host without client credentials", "{model: azure/d, api_base: 'https://r', api_key: k, azure_authority_host: 'https://login.microsoftonline.us'}", "azure_authority_host: only allowed with tenant_id/client_id/client_secret"},
		{"azure_authority_host beside azure_ad_token", "{model: azure/d, api_base: 'https://r', azure_ad_token: t, azure_authority_host: 'https://login.microsoftonline.us'}", "azure_authority_host: only allowed with tenant_id/client_id/client_secret"},
		{"azure_authority_host not a URL", "{model: azure/d, api_base: 'https://r', tenant_id: t1, client_id: c, client_secret: s, azure_authority_host: login.microsoftonline.us}", "model_list[0].litellm_params: azure_authority_host: \"login.microsoftonline.us\" must start with http:// or https://"},
		{"azure_authority_host not http", "{model: azure/d, api_base: 'https://r', tenant_id: t1, client_id: c, client_secret: s, azure_authority_host: 'ftp://login.example'}", "azure_authority_host: \"ftp://login.example\" must start with http:// or https://"},
		{"azure_authority_host with a query", "{model: azure/d, api_base: 'https://r', tenant_id: t1, client_id: c, client_secret: s, azure_authority_host: 'https://login.example?x=1'}", "azure_authority_host: \"https://login.example?x=1\" must not carry a query or fragment"},
		{"vertex bad credentials", "{model: vertex_ai/x, vertex_project: p, vertex_credentials: '{\"type\":\"service_account\",\"private_key\":\"nope\"}'}", "vertex credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte("model_list: [{model_name: m, litellm_params: " + tc.params + "}]\nkeys: [{key: sk-1}]\n"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Build(envOf(map[string]string{"EMPTY": ""})); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBuild_AzureCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, params string
		check        func(t *testing.T, c credentials.Source)
	}{
		{"api_key only: no source", "api_key: k", func(t *testing.T, c credentials.Source) {
			if c != nil {
				t.Errorf("credentials %T", c)
			}
		}},
		{"azure_ad_token: a fixed bearer", "azure_ad_token: os.environ/TOK", func(t *testing.T, c credentials.Source) {
			h, err := c.Apply(t.Context(), &credentials.Request{})
			if err != nil || len(h) != 1 || h[0].Key != "authorization" || h[0].Value != "Bearer aad-tok" {
				t.Errorf("headers %+v, %v", h, err)
			}
		}},
		{"client credentials: a minting source", "tenant_id: t1, client_id: c, client_secret: file:" + secretFile(t, "s3cret\n"), func(t *testing.T, c credentials.Source) {
			if _, ok := c.(*credentials.AzureSource); !ok {
				t.Errorf("credentials %T", c)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte("model_list: [{model_name: m, litellm_params: {model: azure/d, api_base: 'https://r.openai.azure.com', " + tc.params + "}}]\nkeys: [{key: sk-1}]\n"))
			if err != nil {
				t.Fatal(err)
			}
			rt, err := f.Build(envOf(map[string]string{"TOK": "aad-tok"}))
			if err != nil {
				t.Fatal(err)
			}
			d := rt.Routes.Groups()[0].Deployments[0]
			tc.check(t, d.Credentials)
			// Without a key the translator sends no api-key, leaving
			// authorization to the source.
			res, err := transform.NewOpenAIToAzureRequest(d.Target()).RequestBody([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range res.SetHeaders {
				if h.Key == "api-key" && d.APIKey == "" {
					t.Errorf("api-key sent without a key: %+v", res.SetHeaders)
				}
			}
		})
	}
}

// TestBuild_AzureAuthorityHost: azure_authority_host moves the client
// credentials grant to <host>/<tenant>/oauth2/v2.0/token.
func TestBuild_AzureAuthorityHost(t *testing.T) {
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		if r.FormValue("grant_type") != "client_credentials" || r.FormValue("client_id") != "c" || r.FormValue("client_secret") != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"sovereign-tok"}`)
	}))
	t.Cleanup(srv.Close)
	for _, host := range []string{srv.URL, srv.URL + "/"} {
		t.Run(host, func(t *testing.T) {
			f, err := Parse([]byte("model_list: [{model_name: m, litellm_params: {model: azure/d, api_base: 'https://r.openai.azure.us', tenant_id: os.environ/TENANT, client_id: c, client_secret: s3cret, azure_authority_host: '" + host + "'}}]\nkeys: [{key: sk-1}]\n"))
			if err != nil {
				t.Fatal(err)
			}
			rt, err := f.Build(envOf(map[string]string{"TENANT": "tenant-gov"}))
			if err != nil {
				t.Fatal(err)
			}
			h, err := rt.Routes.Groups()[0].Deployments[0].Credentials.Apply(t.Context(), &credentials.Request{})
			if err != nil || len(h) != 1 || h[0].Value != "Bearer sovereign-tok" {
				t.Fatalf("headers %+v, %v", h, err)
			}
			if got := path.Load(); got != "/tenant-gov/oauth2/v2.0/token" {
				t.Errorf("token request to %v", got)
			}
		})
	}
}

// secretFile writes a secret to a file and returns its path.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
