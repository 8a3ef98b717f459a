package fakeprovider_test

import (
	"errors"
	"net/http"
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
