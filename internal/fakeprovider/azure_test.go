package fakeprovider_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// azureClient is openai-go configured the way Azure clients call a
// deployment: the deployment's URL as base, api-version in the query and
// the key in api-key.
func azureClient(base, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(base), option.WithAPIKey("unused"),
		option.WithHeader("api-key", key), option.WithQuery("api-version", "2024-10-21"), option.WithMaxRetries(0))
}

func TestAzure_Chat(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey(testKey))
	for _, base := range []string{srv.URL() + "/openai/deployments/prod-4o", srv.URL() + "/openai/v1"} {
		t.Run(base[len(srv.URL()):], func(t *testing.T) {
			client := azureClient(base, testKey)
			resp, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "prod-4o", Messages: userMsg("hello big world")})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Choices[0].Message.Content != "echo: hello big world" || resp.Usage.PromptTokens != 3 {
				t.Errorf("response %+v", resp)
			}
			stream := client.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
				Model: "prod-4o", Messages: userMsg("a b"), StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}})
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil || acc.Choices[0].Message.Content != "echo: a b" || acc.Usage.TotalTokens != 5 {
				t.Errorf("stream %+v %v", acc.ChatCompletion, err)
			}
		})
	}
	recs := srv.Requests()
	if len(recs) != 4 || recs[0].Path != "/openai/deployments/prod-4o/chat/completions" || recs[2].Path != "/openai/v1/chat/completions" ||
		recs[0].Header.Get("Api-Key") != testKey {
		t.Errorf("records %+v", recs)
	}
}

func TestAzure_Errors(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey(testKey))
	wrong := azureClient(srv.URL()+"/openai/deployments/d", "wrong")
	_, err := wrong.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "d", Messages: userMsg("x")})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Code != "401" {
		t.Errorf("wrong key: %v", err)
	}
	// OpenAI's own path is not an Azure route.
	openAIPath := azureClient(srv.URL()+"/v1", testKey)
	_, err = openAIPath.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "d", Messages: userMsg("x")})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Errorf("openai path: %v", err)
	}
}

func TestAzure_ThroughTranslator(t *testing.T) {
	for _, version := range []string{"", "v1"} {
		t.Run("api-version="+version, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey(testKey))
			throughTranslator(t, "azure", srv,
				transform.NewOpenAIToAzureRequest(transform.Target{Model: "prod-4o", APIKey: testKey, APIVersion: version, ForceStreamUsage: true}).RequestBody,
				transform.NewOpenAIToAzureResponse)
			if p := srv.Requests()[0].Path; (version == "v1") != (p == "/openai/v1/chat/completions") {
				t.Errorf("path %s", p)
			}
		})
	}
}

func TestAzure_EntraToken(t *testing.T) {
	const token = "aad-token-1"
	tests := []struct {
		name     string
		srvOpts  []fakeprovider.Option
		headers  map[string]string
		wantCode int
		wantMsg  string
	}{
		{name: "bearer token", srvOpts: []fakeprovider.Option{fakeprovider.WithAPIKey(testKey), fakeprovider.WithEntraToken(token)},
			headers: map[string]string{"Authorization": "Bearer " + token}, wantCode: 200},
		{name: "api-key still accepted", srvOpts: []fakeprovider.Option{fakeprovider.WithAPIKey(testKey), fakeprovider.WithEntraToken(token)},
			headers: map[string]string{"api-key": testKey}, wantCode: 200},
		{name: "token only", srvOpts: []fakeprovider.Option{fakeprovider.WithEntraToken(token)},
			headers: map[string]string{"Authorization": "Bearer " + token}, wantCode: 200},
		{name: "wrong token", srvOpts: []fakeprovider.Option{fakeprovider.WithAPIKey(testKey), fakeprovider.WithEntraToken(token)},
			headers: map[string]string{"Authorization": "Bearer other"}, wantCode: 401, wantMsg: "Access token is missing, invalid"},
		{name: "no credential with token only", srvOpts: []fakeprovider.Option{fakeprovider.WithEntraToken(token)},
			wantCode: 401, wantMsg: "Access token is missing, invalid"},
		{name: "bearer without WithEntraToken is not a key", srvOpts: []fakeprovider.Option{fakeprovider.WithAPIKey(testKey)},
			headers: map[string]string{"Authorization": "Bearer " + testKey}, wantCode: 401, wantMsg: "invalid subscription key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.AzureOpenAI, tt.srvOpts...)
			opts := []option.RequestOption{option.WithBaseURL(srv.URL() + "/openai/deployments/d"), option.WithMaxRetries(0),
				option.WithQuery("api-version", "2024-10-21"), option.WithHeaderDel("authorization")}
			for k, v := range tt.headers {
				opts = append(opts, option.WithHeader(k, v))
			}
			client := openai.NewClient(opts...)
			_, err := client.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "d", Messages: userMsg("x")})
			if got := srv.Requests()[0].Header.Get("Authorization"); got != tt.headers["Authorization"] {
				t.Fatalf("sent authorization %q", got)
			}
			if tt.wantCode == 200 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.wantCode || !strings.Contains(apiErr.Message, tt.wantMsg) {
				t.Errorf("err = %v, want %d %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}
