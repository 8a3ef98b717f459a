package config

import (
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

const vertexUser = `{"type":"authorized_user","client_id":"cid","client_secret":"s","refresh_token":"r","quota_project_id":"qp"}`

func TestBuild_Providers(t *testing.T) {
	env := envOf(map[string]string{"VERTEX_CREDS": vertexUser, "AWS_SECRET": "secret"})
	for _, tc := range []struct {
		name, params                 string
		provider                     transform.Provider
		model, base, region, project string
		wantCreds, wantDropParams    bool
	}{
		{"openai", "{model: openai/gpt-4o}", transform.ProviderOpenAI, "gpt-4o", "https://api.openai.com/v1", "", "", false, false},
		{"azure", "{model: azure/my-deployment, api_base: 'https://r.openai.azure.com', api_version: '2024-10-21'}", transform.ProviderAzure, "my-deployment", "https://r.openai.azure.com", "", "", false, false},
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
		{"vertex bad credentials", "{model: vertex_ai/x, vertex_project: p, vertex_credentials: '{\"type\":\"service_account\",\"private_key\":\"nope\"}'}", "vertex credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte("model_list: [{model_name: m, litellm_params: " + tc.params + "}]\nkeys: [{key: sk-1}]\n"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Build(envOf(nil)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
