// Package admin serves the LiteLLM-compatible key and team management API
// (/key/*, /team/*) on the ext_proc admin port, protected by the master
// key. Every route validates its whole input before it stores anything.
package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/policy"
)

// Store is what the admin API reads and writes.
type Store interface {
	policy.KeyStore
	policy.TeamStore
}

// SpendSource reports spend totals (USD) for /key/info and /team/info;
// the accounting package provides one.
type SpendSource interface {
	KeySpend(ctx context.Context, keyID string) (float64, error)
	TeamSpend(ctx context.Context, teamID string) (float64, error)
}

// Config configures the Handler. Zero values take the defaults named on
// each field.
type Config struct {
	// MasterKey is required; requests must send Authorization: Bearer
	// <MasterKey>.
	MasterKey string
	// Store is required.
	Store Store
	// Spend fills the spend fields; nil reports 0.
	Spend SpendSource
	// SpendLogs, when set, serves /spend/logs behind the same master-key
	// check (accounting's spend logs handler).
	SpendLogs http.Handler
	// KnownModel rejects model names that are neither a model group nor an
	// alias; nil accepts any name.
	KnownModel func(string) bool
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Rand is the randomness for secrets and team ids; default crypto/rand.
	Rand io.Reader
	// Logger receives store failures; default discards.
	Logger *slog.Logger
}

// Handler is the admin API's http.Handler.
type Handler struct {
	cfg    Config
	master [sha256.Size]byte
	mux    *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// maxBody bounds request bodies; admin bodies are small.
const maxBody = 1 << 20

// New returns the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.MasterKey == "" {
		return nil, errors.New("admin: a master key is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("admin: a store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, master: sha256.Sum256([]byte(cfg.MasterKey)), mux: http.NewServeMux()}
	for path, r := range map[string]struct {
		method string
		fn     func(*http.Request) (any, error)
	}{
		"/key/generate":   {http.MethodPost, h.keyGenerate},
		"/key/info":       {http.MethodGet, h.keyInfoRoute},
		"/key/update":     {http.MethodPost, h.keyUpdate},
		"/key/delete":     {http.MethodPost, h.keyDelete},
		"/key/list":       {http.MethodGet, h.keyList},
		"/key/block":      {http.MethodPost, h.keyBlock(true)},
		"/key/unblock":    {http.MethodPost, h.keyBlock(false)},
		"/key/regenerate": {http.MethodPost, h.keyRegenerate},
		"/team/new":       {http.MethodPost, h.teamNew},
		"/team/info":      {http.MethodGet, h.teamInfoRoute},
		"/team/update":    {http.MethodPost, h.teamUpdate},
		"/team/delete":    {http.MethodPost, h.teamDelete},
		"/team/list":      {http.MethodGet, h.teamList},
	} {
		h.mux.Handle(path, h.route(r.method, r.fn))
	}
	if cfg.SpendLogs != nil {
		h.mux.Handle("/spend/logs", cfg.SpendLogs)
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, &apiError{http.StatusNotFound, "invalid_request_error", "", "unknown_url", fmt.Sprintf("unknown admin path %q", r.URL.Path)})
	})
	return h, nil
}

// ServeHTTP checks the master key, then dispatches.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	// Comparing hashes keeps the comparison constant-time whatever the
	// length of the guess.
	if !ok || subtle.ConstantTimeCompare(got[:], h.master[:]) != 1 {
		h.writeError(w, r, &apiError{http.StatusUnauthorized, "authentication_error", "", "invalid_master_key",
			"admin routes need the master key: send 'Authorization: Bearer <master key>'"})
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) route(method string, fn func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			h.writeError(w, r, &apiError{http.StatusMethodNotAllowed, "invalid_request_error", "", "method_not_allowed",
				fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, method)})
			return
		}
		out, err := fn(r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(out); err != nil {
			h.cfg.Logger.Warn("admin: write response", "path", r.URL.Path, "error", err)
		}
	})
}

// apiError is an error with its HTTP status and OpenAI error fields.
type apiError struct {
	status         int
	errType, param string
	code, message  string
}

func (e *apiError) Error() string { return e.message }

func badRequest(param, format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "invalid_request_error", param, "invalid_request", fmt.Sprintf(format, args...)}
}

func notFound(param, format string, args ...any) error {
	return &apiError{http.StatusNotFound, "invalid_request_error", param, "not_found", fmt.Sprintf(format, args...)}
}

// writeError encodes {"error":{"message","type","param","code"}}. Store
// failures are logged and answered without detail: 503 when the store is
// unreachable, 500 otherwise.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		h.cfg.Logger.Warn("admin: store failed", "path", r.URL.Path, "error", err)
		ae = &apiError{http.StatusServiceUnavailable, "server_error", "", "store_unavailable", "the key store is unavailable; retry later"}
	}
	body := struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}{}
	body.Error.Message, body.Error.Type = ae.message, ae.errType
	if ae.param != "" {
		body.Error.Param = &ae.param
	}
	if ae.code != "" {
		body.Error.Code = &ae.code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.status)
	_ = json.NewEncoder(w).Encode(body)
}

// fields is a decoded JSON object body, read field by field so each
// error can name its param.
type fields map[string]json.RawMessage

// readFields decodes a POST body that must be one JSON object with only
// the allowed fields.
func readFields(r *http.Request, allowed ...string) (fields, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{http.StatusRequestEntityTooLarge, "invalid_request_error", "", "request_too_large", fmt.Sprintf("body larger than %d bytes", maxBody)}
		}
		return nil, badRequest("", "read body: %v", err)
	}
	var f fields
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil || f == nil {
		return nil, badRequest("", "body must be a JSON object")
	}
	if dec.More() {
		return nil, badRequest("", "body must be a single JSON object")
	}
	for name := range f {
		if !contains(allowed, name) {
			return nil, badRequest(name, "unknown field %q; allowed fields: %s", name, strings.Join(allowed, ", "))
		}
	}
	return f, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// field decodes one field. present is false when the field is absent;
// null is present with the zero value and isNull set.
func field[T any](f fields, name, want string) (v T, present, isNull bool, err error) {
	raw, ok := f[name]
	if !ok {
		return v, false, false, nil
	}
	if string(raw) == "null" {
		return v, true, true, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, true, false, badRequest(name, "%s must be %s", name, want)
	}
	return v, true, false, nil
}
