package transform

import (
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
)

// geminiSkipSignature is the value Google documents for functionCall parts
// that have no thought signature of their own (history written by another
// model or rebuilt by a client). Gemini 3 rejects a current-turn function
// call without a signature, and OpenAI clients rarely keep it.
const geminiSkipSignature = "skip_thought_signature_validator"

// geminiFinishReason maps a candidate's finishReason to an OpenAI
// finish_reason. STOP with function calls is "tool_calls", as OpenAI
// clients look for calls only then. Unknown reasons become "stop".
func geminiFinishReason(reason string, toolCalls bool) string {
	switch reason {
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return "content_filter"
	}
	if toolCalls {
		return "tool_calls"
	}
	return "stop"
}

// geminiStatus maps a google.rpc status name to the HTTP status and OpenAI
// type a client sees.
func geminiStatus(status string) (int, ErrorType, bool) {
	switch status {
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		return http.StatusBadRequest, ErrorTypeInvalidRequest, true
	case "UNAUTHENTICATED":
		return http.StatusUnauthorized, ErrorTypeAuthentication, true
	case "PERMISSION_DENIED":
		return http.StatusForbidden, ErrorTypePermission, true
	case "NOT_FOUND":
		return http.StatusNotFound, ErrorTypeNotFound, true
	case "RESOURCE_EXHAUSTED":
		return http.StatusTooManyRequests, ErrorTypeRateLimit, true
	case "INTERNAL", "UNKNOWN", "DATA_LOSS":
		return http.StatusInternalServerError, ErrorTypeServer, true
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable, ErrorTypeOverloaded, true
	case "DEADLINE_EXCEEDED":
		return http.StatusGatewayTimeout, ErrorTypeServer, true
	}
	return 0, "", false
}

// geminiContextPhrases are Google's wordings for a prompt over the model's
// context window, which classifyCode does not know.
var geminiContextPhrases = [...]string{
	"exceeds the maximum number of tokens",
	"input token count",
	"exceeds the context window",
}

// geminiError maps a Google error object ({"code","message","status"})
// seen with an HTTP status (0 inside a stream, where the object decides).
func geminiError(status int, errv gjson.Result) *ProviderError {
	var code int64
	var msg, name string
	var details gjson.Result
	errv.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "code":
			code = v.Int()
		case "message":
			msg = v.String()
		case "status":
			name = v.String()
		case "details":
			details = v
		}
		return true
	})
	if status == 0 || status < 400 {
		status = int(code)
	}
	e := &ProviderError{Message: msg}
	if s, typ, ok := geminiStatus(name); ok {
		e.Status, e.Type = s, typ
	} else {
		e.Status = clientStatus(status)
		e.Type = typeForStatus(e.Status)
	}
	if e.Message == "" {
		e.Message = "provider returned " + string(e.Type)
	}
	lower := strings.ToLower(e.Message)
	switch {
	case apiKeyInvalid(details, lower):
		// Google answers a bad API key with 400 INVALID_ARGUMENT; clients
		// and routers treat it as the credential failure it is.
		e.Status, e.Type = http.StatusUnauthorized, ErrorTypeAuthentication
	case containsAny(lower, geminiContextPhrases[:]) || classifyCode("", e.Message) == CodeContextLengthExceeded:
		e.Code = CodeContextLengthExceeded
		e.Status, e.Type = http.StatusBadRequest, ErrorTypeInvalidRequest
	}
	return e
}

// apiKeyInvalid reports whether an error is Google's rejection of an API
// key, by its ErrorInfo reason or, for proxies that drop details, message.
func apiKeyInvalid(details gjson.Result, lowerMsg string) bool {
	found := false
	details.ForEach(func(_, d gjson.Result) bool {
		found = d.Get("reason").Str == "API_KEY_INVALID"
		return !found
	})
	return found || strings.Contains(lowerMsg, "api key not valid")
}

func containsAny(s string, subs []string) bool {
	for _, p := range subs {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// geminiErrorBody maps a Google error response body. Vertex wraps errors
// of some methods in a one-element array; proxies may answer in OpenAI's
// shape.
func geminiErrorBody(status int, body []byte) *ProviderError {
	if !gjson.ValidBytes(body) {
		return nonJSONError(status)
	}
	doc := gjson.ParseBytes(body)
	if doc.IsArray() {
		doc = doc.Get("0")
	}
	errv := doc.Get("error")
	if !errv.IsObject() || !errv.Get("status").Exists() && !errv.Get("code").Exists() {
		return openAIError(status, body)
	}
	return geminiError(status, errv)
}
