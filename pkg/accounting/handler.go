package accounting

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// SpendQuerier answers spend-log queries; *Recorder implements it.
type SpendQuerier interface {
	Query(ctx context.Context, f Filter) ([]Record, error)
}

var _ SpendQuerier = (*Recorder)(nil)

// NewSpendLogsHandler serves GET /spend/logs with the query parameters
// key_id, team, model (a model group), start_date and end_date (YYYY-MM-DD
// in UTC, or RFC 3339; a bare end_date includes that whole day) and limit
// (1 to MaxQueryLimit, default DefaultQueryLimit). It answers a JSON array
// of SpendLog, newest first; bad parameters get 400 with an OpenAI-shaped
// error naming the parameter.
//
// The handler does no authentication: spend logs show every key's and
// team's usage, so whoever mounts it must put it behind the admin API's
// master-key check. A nil logger discards query errors.
func NewSpendLogsHandler(q SpendQuerier, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &spendLogsHandler{q: q, log: logger}
}

type spendLogsHandler struct {
	q   SpendQuerier
	log *slog.Logger
}

type apiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status line is sent; an encoding error can only be a broken
	// connection, which the client already sees.
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, code, param, msg string) {
	e := apiError{Message: msg, Type: typ, Code: code}
	if param != "" {
		e.Param = &param
	}
	writeJSON(w, status, map[string]apiError{"error": e})
}

// paramError is a query parameter the handler rejects.
type paramError struct {
	param, msg string
}

func (h *spendLogsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "",
			fmt.Sprintf("method %s is not allowed on /spend/logs; use GET", r.Method))
		return
	}
	f, perr := parseSpendFilter(r)
	if perr != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_parameter", perr.param, perr.msg)
		return
	}
	recs, err := h.q.Query(r.Context(), f)
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "spend log query failed", slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "server_error", "internal_error", "",
			"spend logs are unavailable right now")
		return
	}
	logs := make([]SpendLog, len(recs))
	for i := range recs {
		logs[i] = recs[i].SpendLog()
	}
	writeJSON(w, http.StatusOK, logs)
}

func parseSpendFilter(r *http.Request) (Filter, *paramError) {
	q := r.URL.Query()
	var f Filter
	single := func(name string) (string, *paramError) {
		vs := q[name]
		if len(vs) > 1 {
			return "", &paramError{name, fmt.Sprintf("%s is given %d times; give it once", name, len(vs))}
		}
		if len(vs) == 0 {
			return "", nil
		}
		return vs[0], nil
	}
	var perr *paramError
	for _, p := range []struct {
		name string
		dst  *string
	}{{"key_id", &f.KeyID}, {"team", &f.Team}, {"model", &f.ModelGroup}} {
		if *p.dst, perr = single(p.name); perr != nil {
			return f, perr
		}
	}
	start, perr := single("start_date")
	if perr != nil {
		return f, perr
	}
	if start != "" {
		t, _, err := parseDate(start)
		if err != nil {
			return f, &paramError{"start_date", fmt.Sprintf("start_date %q: want YYYY-MM-DD or an RFC 3339 time", start)}
		}
		f.From = t
	}
	end, perr := single("end_date")
	if perr != nil {
		return f, perr
	}
	if end != "" {
		t, dateOnly, err := parseDate(end)
		if err != nil {
			return f, &paramError{"end_date", fmt.Sprintf("end_date %q: want YYYY-MM-DD or an RFC 3339 time", end)}
		}
		if dateOnly {
			t = t.AddDate(0, 0, 1)
		}
		f.To = t
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, &paramError{"end_date", "end_date must be after start_date"}
	}
	limit, perr := single("limit")
	if perr != nil {
		return f, perr
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxQueryLimit {
			return f, &paramError{"limit", fmt.Sprintf("limit %q: want an integer from 1 to %d", limit, MaxQueryLimit)}
		}
		f.Limit = n
	}
	return f, nil
}

// parseDate reads YYYY-MM-DD (UTC midnight) or RFC 3339.
func parseDate(s string) (t time.Time, dateOnly bool, err error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true, nil
	}
	t, err = time.Parse(time.RFC3339Nano, s)
	return t, false, err
}
