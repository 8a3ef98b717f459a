package transform

import (
	"net/url"

	"github.com/tidwall/gjson"
)

// azureDefaultAPIVersion is the api-version sent when the deployment names
// none: the latest dated GA version of the Azure OpenAI data-plane
// inference API
// (https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle).
const azureDefaultAPIVersion = "2024-10-21"

// azureV1 is the APIVersion that selects the versionless v1 API, which Azure
// made GA in August 2025: /openai/v1/chat/completions, with the deployment
// named by the body's model, as OpenAI's own clients send it.
const azureV1 = "v1"

// NewOpenAIToAzureRequest returns the request translator for Azure OpenAI
// chat completions. The path is
//
//	{BasePath}/openai/deployments/{Model}/chat/completions?api-version={APIVersion or 2024-10-21}
//
// or, when APIVersion is "v1", {BasePath}/openai/v1/chat/completions with
// the deployment as the body's model. The body is the OpenAI pass-through
// (model rewrite, ForceStreamUsage) and the key goes in api-key. Without an
// APIKey no credential header is set: a credentials source for Entra ID
// sets authorization after translation.
func NewOpenAIToAzureRequest(t Target) RequestTranslator {
	return &azureRequest{target: t, operation: "chat/completions", body: &openAIToOpenAIRequest{target: t}}
}

// NewOpenAIToAzureResponse returns the response translator for Azure
// OpenAI: the OpenAI pass-through, with content-filter errors classified.
// finish_reason "content_filter" passes through unchanged.
func NewOpenAIToAzureResponse(o ResponseOptions) ResponseTranslator {
	return &azureResponse{openAIToOpenAIResponse{opts: o}}
}

// azureRequest translates OpenAI-format requests for Azure OpenAI, which
// takes OpenAI's bodies on its own paths and auth.
type azureRequest struct {
	target Target
	// operation is the path after the deployment: "chat/completions" or
	// the legacy "completions".
	operation string
	// body validates and edits the body as for OpenAI.
	body RequestTranslator
}

var _ RequestTranslator = (*azureRequest)(nil)

// RequestBody implements RequestTranslator.
func (t *azureRequest) RequestBody(body []byte) (RequestResult, error) {
	res, err := t.body.RequestBody(body)
	if err != nil {
		return RequestResult{}, err
	}
	if t.target.APIVersion == azureV1 {
		res.Path = t.target.BasePath + "/openai/v1/" + t.operation
	} else {
		deployment := t.target.Model
		if deployment == "" {
			// Validated as JSON by the pass-through above.
			deployment = gjson.GetBytes(body, "model").Str
		}
		if deployment == "" {
			return RequestResult{}, invalidf("model", "model is required to name the azure deployment")
		}
		version := t.target.APIVersion
		if version == "" {
			version = azureDefaultAPIVersion
		}
		res.Path = t.target.BasePath + "/openai/deployments/" + url.PathEscape(deployment) +
			"/" + t.operation + "?api-version=" + url.QueryEscape(version)
	}
	res.SetHeaders = []Header{{Key: "content-type", Value: "application/json"}}
	// A previous attempt may have left another provider's credential.
	res.RemoveHeaders = []string{"authorization", "x-api-key", "anthropic-version", "anthropic-beta"}
	if t.target.APIKey != "" {
		res.SetHeaders = append(res.SetHeaders, Header{Key: "api-key", Value: t.target.APIKey})
	} else {
		res.RemoveHeaders = append(res.RemoveHeaders, "api-key")
	}
	return res, nil
}

// azureResponse is the OpenAI pass-through with Azure's error shapes.
type azureResponse struct {
	openAIToOpenAIResponse
}

var _ ResponseTranslator = (*azureResponse)(nil)

// ErrorBody implements ResponseTranslator. Azure's content filter answers
// 400 with code "content_filter" or an innererror coded
// "ResponsibleAIPolicyViolation"
// (https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter);
// LiteLLM raises ContentPolicyViolationError for both.
func (r *azureResponse) ErrorBody(status int, body []byte) *ProviderError {
	e := openAIError(status, body)
	if e.Code != CodeContentPolicy &&
		gjson.GetBytes(body, "error.innererror.code").Str == "ResponsibleAIPolicyViolation" {
		e.Code = CodeContentPolicy
	}
	if e.Code == CodeContentPolicy {
		e.Status, e.Type = 400, ErrorTypeInvalidRequest
	}
	return e
}
