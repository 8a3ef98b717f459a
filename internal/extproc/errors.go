package extproc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/sjson"

	"github.com/tollgate-gw/tollgate/pkg/policy"
	"github.com/tollgate-gw/tollgate/pkg/routing"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// requestError is a client mistake found by the ext_proc layer itself; its
// message is safe to show.
type requestError struct {
	status  int
	errType transform.ErrorType
	code    string
	param   string
	message string
}

func (e *requestError) Error() string { return e.message }

func badRequest(param, code, format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, errType: transform.ErrorTypeInvalidRequest, code: code, param: param, message: fmt.Sprintf(format, args...)}
}

var (
	errUnknownPath = func(path string) error {
		return &requestError{status: http.StatusNotFound, errType: transform.ErrorTypeInvalidRequest, code: "unknown_url", message: fmt.Sprintf("unknown path %q: Tollgate serves /v1/chat/completions and /v1/models", path)}
	}
	errMethod = func(method, path, allowed string) error {
		return &requestError{status: http.StatusMethodNotAllowed, errType: transform.ErrorTypeInvalidRequest, code: "method_not_allowed", message: fmt.Sprintf("method %s is not allowed on %s; use %s", method, path, allowed)}
	}
	errBodyTooLarge = func(size, limit int64) error {
		return &requestError{status: http.StatusRequestEntityTooLarge, errType: transform.ErrorTypeInvalidRequest, code: "request_too_large", message: fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes", size, limit)}
	}
)

// apiError is an error in OpenAI's terms, ready to encode.
type apiError struct {
	Status  int
	Type    transform.ErrorType
	Code    string
	Param   string
	Message string
	// RetryAfter, when set, is sent as the retry-after header.
	RetryAfter time.Duration
}

// classify is the only mapping from errors to HTTP status and OpenAI error
// fields. Anything unmapped is a 500 with a generic message; the caller
// logs the detail.
func classify(err error) (apiError, bool) {
	var re *requestError
	var ire *transform.InvalidRequestError
	var pe *transform.ProviderError
	var le *policy.LimitError
	var de *policy.DeploymentsError
	var be *policy.BudgetError
	switch {
	case errors.As(err, &re):
		return apiError{Status: re.status, Type: re.errType, Code: re.code, Param: re.param, Message: re.message}, true
	case errors.As(err, &ire):
		return apiError{Status: http.StatusBadRequest, Type: transform.ErrorTypeInvalidRequest, Code: "invalid_request", Param: ire.Param, Message: ire.Message}, true
	case errors.As(err, &pe):
		return apiError{Status: pe.Status, Type: pe.Type, Code: pe.Code, Param: pe.Param, Message: pe.Message}, true
	case errors.As(err, &le):
		return apiError{http.StatusTooManyRequests, transform.ErrorTypeRateLimit, "rate_limit_exceeded", "", le.Error(), le.RetryAfter}, true
	case errors.As(err, &de):
		return apiError{http.StatusTooManyRequests, transform.ErrorTypeRateLimit, "rate_limit_exceeded", "", de.Error(), de.RetryAfter}, true
	case errors.As(err, &be):
		retry := time.Duration(0)
		if !be.ResetAt.IsZero() {
			retry = time.Until(be.ResetAt).Round(time.Second)
		}
		return apiError{http.StatusTooManyRequests, errorTypeBudget, "budget_exceeded", "", be.Error(), retry}, true
	case errors.Is(err, policy.ErrKeyExpired):
		return apiError{Status: http.StatusUnauthorized, Type: transform.ErrorTypeAuthentication, Code: "key_expired", Message: "the API key has expired"}, true
	case errors.Is(err, policy.ErrKeyBlocked):
		return apiError{Status: http.StatusUnauthorized, Type: transform.ErrorTypeAuthentication, Code: "key_blocked", Message: "the API key is blocked"}, true
	case errors.Is(err, policy.ErrUnavailable):
		return apiError{Status: http.StatusServiceUnavailable, Type: transform.ErrorTypeOverloaded, Code: "policy_unavailable",
			Message: "the gateway cannot check limits right now; try again"}, true
	case errors.Is(err, policy.ErrKeyMissing):
		return apiError{Status: http.StatusUnauthorized, Type: transform.ErrorTypeAuthentication, Code: "missing_api_key",
			Message: "no API key given: send it as 'Authorization: Bearer <key>'"}, true
	case errors.Is(err, policy.ErrKeyUnknown):
		return apiError{Status: http.StatusUnauthorized, Type: transform.ErrorTypeAuthentication, Code: "invalid_api_key",
			Message: "the API key is not valid"}, true
	case errors.Is(err, policy.ErrModelNotAllowed):
		return apiError{Status: http.StatusForbidden, Type: transform.ErrorTypePermission, Code: "model_not_allowed", Param: "model", Message: err.Error()}, true
	case errors.Is(err, errCredentials):
		return apiError{Status: http.StatusServiceUnavailable, Type: transform.ErrorTypeOverloaded, Code: "provider_credentials_unavailable",
			Message: "the gateway could not obtain credentials for the provider; try again"}, false
	case errors.Is(err, transform.ErrUnsupported):
		// The client called an endpoint the model's provider has no API
		// for (legacy completions on Anthropic, say): its request, not the
		// gateway, is at fault.
		return apiError{Status: http.StatusBadRequest, Type: transform.ErrorTypeInvalidRequest, Code: "unsupported_endpoint", Param: "model",
			Message: fmt.Sprintf("the model cannot serve this endpoint (%v)", err)}, true
	case errors.Is(err, routing.ErrUnknownModel):
		return apiError{Status: http.StatusNotFound, Type: transform.ErrorTypeInvalidRequest, Code: "model_not_found", Param: "model",
			Message: fmt.Sprintf("the model does not exist or you do not have access to it (%v)", err)}, true
	}
	return apiError{Status: http.StatusInternalServerError, Type: transform.ErrorTypeServer, Code: "internal_error",
		Message: "the gateway failed to process the request"}, false
}

// encodeError builds the OpenAI error body
// {"error":{"message","type","param","code"}}; param and code are null when
// empty, as OpenAI sends them.
func encodeError(e apiError) []byte {
	body := []byte(`{"error":{"message":"","type":"","param":null,"code":null}}`)
	body, _ = sjson.SetBytes(body, "error.message", e.Message)
	body, _ = sjson.SetBytes(body, "error.type", string(e.Type))
	if e.Param != "" {
		body, _ = sjson.SetBytes(body, "error.param", e.Param)
	}
	if e.Code != "" {
		body, _ = sjson.SetBytes(body, "error.code", e.Code)
	}
	return body
}

// localReplyError gives an Envoy local reply (plain text such as "no
// healthy upstream") OpenAI's error shape, keeping its status.
func localReplyError(status int, body []byte) apiError {
	msg := strings.TrimSpace(string(body))
	if msg == "" || !utf8.ValidString(msg) {
		msg = http.StatusText(status)
	}
	e := apiError{Status: status, Type: transform.ErrorTypeServer, Message: msg}
	switch {
	case status == http.StatusTooManyRequests:
		e.Type = transform.ErrorTypeRateLimit
	case status == http.StatusUnauthorized:
		e.Type = transform.ErrorTypeAuthentication
	case status == http.StatusForbidden:
		e.Type = transform.ErrorTypePermission
	case status < 500:
		e.Type = transform.ErrorTypeInvalidRequest
	case status == http.StatusServiceUnavailable:
		e.Type = transform.ErrorTypeOverloaded
	}
	return e
}

// errNoHeaders is a protocol violation: Envoy always sends headers first.
var errNoHeaders = errors.New("request body arrived before request headers")

// errCredentials marks a deployment whose credentials could not be
// obtained (token endpoint down, signing failed); the detail is logged, not
// shown.
var errCredentials = errors.New("provider credentials unavailable")

// errorTypeBudget is LiteLLM's error type for a spent budget, which
// clients of LiteLLM already handle.
const errorTypeBudget transform.ErrorType = "budget_exceeded"
