package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/extproc"
	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/credentials"
)

// TestAzure_EntraID: Azure deployments authenticated with Entra ID
// instead of api-key, through the stand-in: a fixed azure_ad_token from
// config, and client credentials whose token is minted by a fake token
// endpoint that azure_authority_host points the config at. The Azure fake accepts only the bearer token, so a request
// that reached it with api-key, or with no credential, fails.
func TestAzure_EntraID(t *testing.T) {
	const minted = "aad-minted-1"
	static := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithEntraToken("aad-static"))
	viaClient := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithEntraToken(minted))

	var tokenCalls atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		if r.URL.Path != "/tenant-1/oauth2/v2.0/token" || r.FormValue("grant_type") != "client_credentials" || r.FormValue("client_id") != "app-1" ||
			r.FormValue("client_secret") != "s3cret" || r.FormValue("scope") != credentials.CognitiveServicesScope {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"access_token":%q}`, minted)
	}))
	t.Cleanup(tokens.Close)

	cfg := fmt.Sprintf(`
model_list:
  - {model_name: az-static, litellm_params: {model: azure/gpt4o-prod, api_base: "%s", api_version: "2024-10-21", azure_ad_token: aad-static}, model_info: {id: d-az-static}}
  - {model_name: az-client, litellm_params: {model: azure/gpt4o-prod, api_base: "%s", api_version: "2024-10-21", tenant_id: tenant-1, client_id: app-1, client_secret: s3cret, azure_authority_host: "%s"}, model_info: {id: d-az-client}}
keys: [{id: demo, key: sk-tollgate-demo}]
`, static.URL(), viaClient.URL(), tokens.URL)
	rt, err := config.FromBytes([]byte(cfg), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	d, _ := rt.Routes.Deployment("d-az-client")
	if _, ok := d.Credentials.(*credentials.AzureSource); !ok {
		t.Fatalf("config built %T for client credentials", d.Credentials)
	}

	extprocAddr := startExtProc(t, rt, extproc.Options{})
	xdsAddr := startXDS(t, []byte(cfg))
	sim := startSim(t, "../../examples/xds/envoy.yaml", map[string]string{"127.0.0.1:50051": extprocAddr, "127.0.0.1:18000": xdsAddr})
	client := openai.NewClient(option.WithBaseURL(sim.URL()+"/v1/"), option.WithAPIKey(demoKey), option.WithMaxRetries(0))

	for _, tc := range []struct {
		group, token string
		fake         *fakeprovider.Server
	}{
		{"az-static", "aad-static", static},
		{"az-client", minted, viaClient},
	} {
		t.Run(tc.group, func(t *testing.T) {
			params := userMessage("hello entra")
			params.Model = tc.group
			cc, err := client.Chat.Completions.New(t.Context(), params)
			if err != nil {
				t.Fatal(err)
			}
			if got := cc.Choices[0].Message.Content; got != "echo: hello entra" || cc.Usage.TotalTokens == 0 {
				t.Errorf("content %q usage %+v", got, cc.Usage)
			}
			p := params
			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: param.NewOpt(true)}
			stream := client.Chat.Completions.NewStreaming(t.Context(), p)
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if got := acc.Choices[0].Message.Content; got != "echo: hello entra" || acc.Usage.TotalTokens == 0 {
				t.Errorf("streamed %q usage %+v", got, acc.Usage)
			}
			for _, r := range tc.fake.Requests() {
				if got := r.Header.Get("Authorization"); got != "Bearer "+tc.token || r.Header.Get("Api-Key") != "" ||
					r.Path != "/openai/deployments/gpt4o-prod/chat/completions" || r.Status != http.StatusOK {
					t.Errorf("upstream %s %d authorization %q api-key %q", r.Path, r.Status, got, r.Header.Get("Api-Key"))
				}
			}
		})
	}
	// Both requests to the client-credentials deployment used one token.
	if n := tokenCalls.Load(); n != 1 {
		t.Errorf("%d token endpoint calls, want 1", n)
	}
}
