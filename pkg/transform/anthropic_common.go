package transform

import (
	"net/http"

	"github.com/tidwall/gjson"
)

// anthropicVersion is the Messages API version the translators speak.
const anthropicVersion = "2023-06-01"

// jsonToolName names the forced tool that carries structured output:
// Anthropic has no response_format, so a JSON schema becomes the input schema
// of a tool the model must call, and the call is unwrapped into content.
const jsonToolName = "json_tool_call"

// anthropicFinishReason maps a stop_reason to an OpenAI finish_reason.
// Unknown reasons become "stop" because OpenAI clients switch on the value.
func anthropicFinishReason(stopReason string) string {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop"
}

// anthropicErrorTypes maps Anthropic error types to the status and OpenAI
// type a client sees.
func anthropicErrorType(t string) (status int, typ ErrorType, ok bool) {
	switch t {
	case "invalid_request_error":
		return http.StatusBadRequest, ErrorTypeInvalidRequest, true
	case "authentication_error":
		return http.StatusUnauthorized, ErrorTypeAuthentication, true
	case "billing_error":
		return http.StatusPaymentRequired, ErrorTypePermission, true
	case "permission_error":
		return http.StatusForbidden, ErrorTypePermission, true
	case "not_found_error":
		return http.StatusNotFound, ErrorTypeNotFound, true
	case "request_too_large":
		return http.StatusRequestEntityTooLarge, ErrorTypeInvalidRequest, true
	case "rate_limit_error":
		return http.StatusTooManyRequests, ErrorTypeRateLimit, true
	case "api_error":
		return http.StatusInternalServerError, ErrorTypeServer, true
	case "timeout_error":
		return http.StatusGatewayTimeout, ErrorTypeServer, true
	case "overloaded_error":
		return http.StatusServiceUnavailable, ErrorTypeOverloaded, true
	}
	return 0, "", false
}

// anthropicError maps an Anthropic error object ({"type","message"}) seen
// with an HTTP status (0 inside a stream, where the type alone decides).
func anthropicError(status int, errv gjson.Result) *ProviderError {
	e := &ProviderError{Message: errv.Get("message").String()}
	if s, typ, ok := anthropicErrorType(errv.Get("type").String()); ok {
		e.Status, e.Type = s, typ
	} else {
		e.Status = clientStatus(status)
		e.Type = typeForStatus(e.Status)
	}
	if e.Message == "" {
		e.Message = "provider returned " + string(e.Type)
	}
	if classifyCode("", e.Message) == CodeContextLengthExceeded {
		e.Code = CodeContextLengthExceeded
		e.Status, e.Type = http.StatusBadRequest, ErrorTypeInvalidRequest
	}
	return e
}

// anthropicErrorBody maps an Anthropic error response body.
func anthropicErrorBody(status int, body []byte) *ProviderError {
	if !gjson.ValidBytes(body) {
		return nonJSONError(status)
	}
	errv := gjson.GetBytes(body, "error")
	if !errv.IsObject() {
		// Proxies in front of Anthropic may answer in OpenAI's shape.
		return openAIError(status, body)
	}
	return anthropicError(status, errv)
}
