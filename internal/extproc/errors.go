package extproc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
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
}

// classify is the only mapping from errors to HTTP status and OpenAI error
// fields. Anything unmapped is a 500 with a generic message; the caller
// logs the detail.
func classify(err error) (apiError, bool) {
	var re *requestError
	var ire *transform.InvalidRequestError
	var pe *transform.ProviderError
	switch {
	case errors.As(err, &re):
		return apiError{re.status, re.errType, re.code, re.param, re.message}, true
	case errors.As(err, &ire):
		return apiError{http.StatusBadRequest, transform.ErrorTypeInvalidRequest, "invalid_request", ire.Param, ire.Message}, true
	case errors.As(err, &pe):
		return apiError{pe.Status, pe.Type, pe.Code, pe.Param, pe.Message}, true
	case errors.Is(err, policy.ErrKeyMissing):
		return apiError{http.StatusUnauthorized, transform.ErrorTypeAuthentication, "missing_api_key",
			"", "no API key given: send it as 'Authorization: Bearer <key>'"}, true
	case errors.Is(err, policy.ErrKeyUnknown):
		return apiError{http.StatusUnauthorized, transform.ErrorTypeAuthentication, "invalid_api_key",
			"", "the API key is not valid"}, true
	case errors.Is(err, policy.ErrModelNotAllowed):
		return apiError{http.StatusForbidden, transform.ErrorTypePermission, "model_not_allowed", "model", err.Error()}, true
	case errors.Is(err, errCredentials):
		return apiError{http.StatusServiceUnavailable, transform.ErrorTypeOverloaded, "provider_credentials_unavailable", "",
			"the gateway could not obtain credentials for the provider; try again"}, false
	case errors.Is(err, routing.ErrUnknownModel):
		return apiError{http.StatusNotFound, transform.ErrorTypeInvalidRequest, "model_not_found", "model",
			fmt.Sprintf("the model does not exist or you do not have access to it (%v)", err)}, true
	}
	return apiError{http.StatusInternalServerError, transform.ErrorTypeServer, "internal_error", "",
		"the gateway failed to process the request"}, false
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
