package fakeprovider

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/tidwall/sjson"
)

// AzureOpenAI serves Azure OpenAI chat completions and legacy completions:
// POST /openai/deployments/{deployment}/chat/completions and
// .../completions, and the versionless v1 API's /openai/v1/chat/completions
// and /openai/v1/completions, with bodies, streams and errors as the OpenAI
// fake's (completions.go). The key goes in api-key; an Entra ID token goes in
// authorization: Bearer, checked against [WithEntraToken]'s (with neither
// configured any credential is accepted). The api-version query is not
// checked: the fake sees only the path.
const AzureOpenAI Kind = "azure"

// azurePromptFilter is the prompt's content filter verdict, which Azure
// adds to every reply
// (https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter):
// as prompt_filter_results in a body, and in a stream as a first chunk of
// its own, with no choices and an empty id, model and object.
const azurePromptFilter = `[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},` +
	`"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]`

// azureBody adds the prompt filter results to an OpenAI-format body.
func azureBody(body []byte) []byte {
	out, err := sjson.SetRawBytes(body, "prompt_filter_results", []byte(azurePromptFilter))
	if err != nil {
		panic("fakeprovider: azure body: " + err.Error())
	}
	return out
}

// azureStream puts the prompt filter chunk before an OpenAI-format stream.
func azureStream(events []sseEvent) []sseEvent {
	first := sseEvent{data: []byte(`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":` + azurePromptFilter + `}`)}
	return append([]sseEvent{first}, events...)
}

// WithEntraToken makes the Azure fake accept authorization: Bearer token
// as an alternative to the api-key of [WithAPIKey], as Azure OpenAI
// accepts Entra ID tokens. Without it a bearer token is not checked.
func WithEntraToken(token string) Option { return func(c *config) { c.entraToken = token } }

// azureOpenAI is the OpenAI fake on Azure's routes and key header.
type azureOpenAI struct {
	openAI
	// entraToken is the accepted bearer token; "" accepts none.
	entraToken string
}

var (
	_ provider   = (*azureOpenAI)(nil)
	_ pathRouted = (*azureOpenAI)(nil)
)

// forRequest implements pathRouted, overriding the OpenAI fake's, which
// routes by OpenAI's paths: a legacy completions request on an Azure route
// gets the completions fake with Azure's auth.
func (a *azureOpenAI) forRequest(u *url.URL) provider {
	if op, _ := azureOperation(u.Path); op == "completions" {
		return &azureCompletions{azure: a}
	}
	return a
}

func (*azureOpenAI) handles(path string) bool {
	_, ok := azureOperation(path)
	return ok
}

// azureOperation is the operation an Azure inference path names,
// "chat/completions" or "completions", after a deployment or on the v1 API;
// ok is false for any other path.
func azureOperation(path string) (op string, ok bool) {
	if rest, v1 := strings.CutPrefix(path, "/openai/v1/"); v1 {
		op = rest
	} else {
		rest, ok := strings.CutPrefix(path, "/openai/deployments/")
		deployment, after, _ := strings.Cut(rest, "/")
		if !ok || deployment == "" {
			return "", false
		}
		op = after
	}
	return op, op == "chat/completions" || op == "completions"
}

// azureCompletions is the legacy completions fake behind Azure's routes:
// OpenAI's bodies, Azure's credentials.
type azureCompletions struct {
	openAICompletions
	azure *azureOpenAI
}

var _ provider = (*azureCompletions)(nil)

func (c *azureCompletions) body(call *call, out outcome) []byte {
	return azureBody(c.openAICompletions.body(call, out))
}

func (c *azureCompletions) streamEvents(call *call, out outcome) []sseEvent {
	return azureStream(c.openAICompletions.streamEvents(call, out))
}

func (c *azureCompletions) authenticate(h http.Header, key string) *apiError {
	return c.azure.authenticate(h, key)
}

func (a *azureOpenAI) body(c *call, out outcome) []byte { return azureBody(a.openAI.body(c, out)) }

func (a *azureOpenAI) streamEvents(c *call, out outcome) []sseEvent {
	return azureStream(a.openAI.streamEvents(c, out))
}

func (*azureOpenAI) setResponseHeaders(h http.Header, requestID string) {
	h.Set("Apim-Request-Id", requestID)
	h.Set("X-Ms-Region", "East US")
}

func (a *azureOpenAI) authenticate(h http.Header, key string) *apiError {
	badToken := &apiError{Status: http.StatusUnauthorized, Code: "401",
		Message: "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired."}
	if tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer "); ok && a.entraToken != "" {
		if tok != a.entraToken {
			return badToken
		}
		return nil
	}
	switch {
	case key == "" && a.entraToken == "":
		return nil
	case key == "":
		return badToken
	case h.Get("Api-Key") != key:
		return &apiError{Status: http.StatusUnauthorized, Code: "401",
			Message: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}
	}
	return nil
}

func (*azureOpenAI) notFound(string, string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "404", Message: "Resource not found"}
}
