package transform

import (
	"hash/fnv"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
)

// ToolNameMapper is implemented by request translators that rename tools
// the provider would reject. ToolNames maps each provider-side name back to
// the client's; it describes the last RequestBody call and is nil when no
// name changed. Pass it to the response translator.
type ToolNameMapper interface {
	ToolNames() map[string]string
}

// bedrockPath is basePath followed by the Converse path for a model id.
func bedrockPath(basePath, model string, stream bool) string {
	var buf [256]byte
	return string(appendBedrockPath(append(buf[:0], basePath...), model, stream))
}

// appendBedrockPath appends the Converse path for a model id. The id is
// escaped as the AWS SDKs escape a URI label: everything but unreserved
// characters, so the ":" of versioned ids and the "/" of ARNs become %3A
// and %2F. SigV4 signs this escaped form (escaped once more), so it must
// match what Bedrock reconstructs.
func appendBedrockPath(dst []byte, model string, stream bool) []byte {
	dst = append(dst, "/model/"...)
	for i := 0; i < len(model); i++ {
		c := model[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&0xf])
	}
	if stream {
		return append(dst, "/converse-stream"...)
	}
	return append(dst, "/converse"...)
}

const upperHex = "0123456789ABCDEF"

// bedrockMaxToolName is the longest tool name Converse accepts.
const bedrockMaxToolName = 64

// validBedrockToolName reports whether Converse accepts a tool name:
// [a-zA-Z0-9_-]{1,64}.
func validBedrockToolName(name string) bool {
	if name == "" || len(name) > bedrockMaxToolName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !bedrockNameByte(name[i]) {
			return false
		}
	}
	return true
}

func bedrockNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// sanitizeBedrockName replaces the bytes Converse rejects with "_". Names
// that are too long, or that collide with another tool's name (taken), are
// cut and given a hash of the original, which keeps them distinct and
// stable across requests.
func sanitizeBedrockName(name string, taken func(string) bool) string {
	b := []byte(name)
	for i, c := range b {
		if !bedrockNameByte(c) {
			b[i] = '_'
		}
	}
	s := string(b)
	if len(s) <= bedrockMaxToolName && !taken(s) {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	sum := h.Sum32()
	suffix := []byte{'_'}
	for shift := 28; shift >= 0; shift -= 4 {
		suffix = append(suffix, hexDigits[sum>>uint(shift)&0xf])
	}
	return s[:min(len(s), bedrockMaxToolName-len(suffix))] + string(suffix)
}

// bedrockFinishReason maps a Converse stopReason to an OpenAI
// finish_reason. Unknown reasons become "stop".
func bedrockFinishReason(stopReason string) string {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "guardrail_intervened", "content_filtered":
		return "content_filter"
	}
	return "stop"
}

// bedrockErrorType maps a Bedrock error name (from an exception frame's
// :exception-type, or a body's __type) to the status and OpenAI type a
// client sees. Names are matched case-insensitively because streams use
// lowerCamel ("throttlingException") and HTTP errors UpperCamel.
func bedrockErrorType(name string) (status int, typ ErrorType, ok bool) {
	switch strings.ToLower(name) {
	case "validationexception":
		return http.StatusBadRequest, ErrorTypeInvalidRequest, true
	case "accessdeniedexception", "unrecognizedclientexception":
		return http.StatusForbidden, ErrorTypePermission, true
	case "resourcenotfoundexception":
		return http.StatusNotFound, ErrorTypeNotFound, true
	case "throttlingexception", "servicequotaexceededexception", "modelnotreadyexception":
		return http.StatusTooManyRequests, ErrorTypeRateLimit, true
	case "modeltimeoutexception":
		return http.StatusGatewayTimeout, ErrorTypeServer, true
	case "modelerrorexception", "modelstreamerrorexception", "internalserverexception":
		return http.StatusInternalServerError, ErrorTypeServer, true
	case "serviceunavailableexception":
		return http.StatusServiceUnavailable, ErrorTypeOverloaded, true
	}
	return 0, "", false
}

// bedrockStatus maps a Bedrock HTTP error status to the status a client
// sees. Bedrock's 424 (ModelErrorException: the model failed) has no
// meaning to OpenAI clients and becomes 500, which they retry.
func bedrockStatus(status int) int {
	if status == http.StatusFailedDependency {
		return http.StatusInternalServerError
	}
	return clientStatus(status)
}

// bedrockContextWindow are messages Bedrock uses when the input is too
// long, beyond the ones classifyCode already knows.
var bedrockContextWindow = [...]string{
	"input is too long",
	"too many input tokens",
	"too many total text bytes",
	"input length exceeds the context window",
}

// bedrockError builds the error for a Bedrock error name (may be empty) and
// message seen with an HTTP status (0 inside a stream).
func bedrockError(status int, name, message string) *ProviderError {
	e := &ProviderError{Message: message}
	if s, typ, ok := bedrockErrorType(name); ok {
		e.Status, e.Type = s, typ
	} else {
		e.Status = bedrockStatus(status)
		e.Type = typeForStatus(e.Status)
	}
	if e.Message == "" {
		e.Message = "provider returned " + string(e.Type)
	}
	lower := strings.ToLower(e.Message)
	code := classifyCode("", e.Message)
	for _, p := range bedrockContextWindow {
		if strings.Contains(lower, p) {
			code = CodeContextLengthExceeded
		}
	}
	switch code {
	case CodeContextLengthExceeded:
		e.Code = code
		e.Status, e.Type = http.StatusBadRequest, ErrorTypeInvalidRequest
	case CodeContentPolicy:
		e.Code = code
	}
	return e
}

// bedrockErrorBody maps a Bedrock error response body. The error name
// travels in the x-amzn-errortype header, which translators do not see, so
// the status and message decide unless the body also names it (__type or
// code, as some AWS front ends add).
func bedrockErrorBody(status int, body []byte) *ProviderError {
	if !gjson.ValidBytes(body) {
		return nonJSONError(status)
	}
	doc := gjson.ParseBytes(body)
	if !doc.IsObject() {
		return nonJSONError(status)
	}
	if doc.Get("error").Exists() {
		// An OpenAI-shaped error from a proxy in front of Bedrock.
		return openAIError(status, body)
	}
	message := doc.Get("message").String()
	if message == "" {
		message = doc.Get("Message").String()
	}
	name := doc.Get("__type").String()
	if name == "" {
		name = doc.Get("code").String()
	}
	return bedrockError(status, bedrockErrorName(name), message)
}

// bedrockErrorName strips the namespace and detail AWS may wrap an error
// name in ("com.amazon.bedrock#ThrottlingException:http://...").
func bedrockErrorName(s string) string {
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	return s
}

// isAnthropicModel reports whether a Bedrock model id (or inference
// profile or ARN) names an Anthropic model, which takes Anthropic's own
// parameters in additionalModelRequestFields.
func isAnthropicModel(model string) bool {
	return strings.Contains(model, "anthropic.")
}

// isNovaModel reports whether a Bedrock model id, inference profile or ARN
// names an Amazon Nova model.
func isNovaModel(model string) bool {
	return strings.Contains(model, "amazon.nova")
}
