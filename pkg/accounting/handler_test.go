package accounting_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

func newLogsSink(t *testing.T) *accounting.MemorySink {
	t.Helper()
	sink := accounting.NewMemorySink(0)
	var b accounting.Batch
	for i := range 200 {
		r := loadRecord(i)
		// Spread the records over four days, one hour apart.
		r.Time = baseTime.Add(time.Duration(i) * 30 * time.Minute)
		b.Records = append(b.Records, r)
	}
	if _, err := sink.Write(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	return sink
}

func TestSpendLogsHandler_Filters(t *testing.T) {
	h := accounting.NewSpendLogsHandler(newLogsSink(t), nil)
	tests := []struct {
		name      string
		query     string
		wantLen   int
		wantFirst string
	}{
		{"default limit", "", accounting.DefaultQueryLimit, "req-00199"},
		{"limit", "?limit=7", 7, "req-00199"},
		{"key", "?key_id=key-03", 10, "req-00183"},
		{"team and model", "?team=team-2&model=gpt-4o", 50, "req-00198"},
		{"model only", "?model=claude&limit=1000", 100, "req-00199"},
		// 2026-11-24 runs from record 0 (12:00) to record 23 (23:30).
		{"one day, inclusive end date", "?start_date=2026-11-24&end_date=2026-11-24", 24, "req-00023"},
		{"rfc3339 range is half-open", "?start_date=2026-11-24T12:00:00Z&end_date=2026-11-24T13:00:00Z", 2, "req-00001"},
		{"unknown key", "?key_id=nope", 0, ""},
		{"unknown parameters are ignored", "?summarize=false&limit=2", 2, "req-00199"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/spend/logs"+tt.query, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var logs []accounting.SpendLog
			if err := json.Unmarshal(rec.Body.Bytes(), &logs); err != nil {
				t.Fatal(err)
			}
			if len(logs) != tt.wantLen {
				t.Fatalf("%d logs, want %d", len(logs), tt.wantLen)
			}
			if tt.wantLen > 0 && logs[0].RequestID != tt.wantFirst {
				t.Errorf("first %s, want %s", logs[0].RequestID, tt.wantFirst)
			}
		})
	}
}

// The JSON field names are LiteLLM's, so existing spend tooling reads them.
func TestSpendLogsHandler_Fields(t *testing.T) {
	h := accounting.NewSpendLogsHandler(newLogsSink(t), nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/spend/logs?limit=1", nil))
	var logs []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &logs); err != nil || len(logs) != 1 {
		t.Fatalf("decode: %v, %d logs", err, len(logs))
	}
	for _, f := range []string{
		"request_id", "api_key", "team_id", "user", "model", "model_group", "model_id", "custom_llm_provider",
		"spend", "prompt_tokens", "completion_tokens", "total_tokens", "startTime", "endTime", "cache_hit", "status", "metadata",
	} {
		if _, ok := logs[0][f]; !ok {
			t.Errorf("field %s missing from %v", f, logs[0])
		}
	}
	if logs[0]["status"] != "success" || logs[0]["api_key"] != "key-19" {
		t.Errorf("status %v api_key %v", logs[0]["status"], logs[0]["api_key"])
	}
}

func TestSpendLogsHandler_Errors(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		query      string
		querier    accounting.SpendQuerier
		wantStatus int
		wantType   string
		wantParam  any
	}{
		{"limit zero", "GET", "?limit=0", nil, 400, "invalid_request_error", "limit"},
		{"limit too big", "GET", "?limit=1001", nil, 400, "invalid_request_error", "limit"},
		{"limit not a number", "GET", "?limit=ten", nil, 400, "invalid_request_error", "limit"},
		{"bad start date", "GET", "?start_date=yesterday", nil, 400, "invalid_request_error", "start_date"},
		{"bad end date", "GET", "?end_date=2026-13-01", nil, 400, "invalid_request_error", "end_date"},
		{"end before start", "GET", "?start_date=2026-11-24&end_date=2026-11-01", nil, 400, "invalid_request_error", "end_date"},
		{"repeated key_id", "GET", "?key_id=a&key_id=b", nil, 400, "invalid_request_error", "key_id"},
		{"POST", "POST", "", nil, 405, "invalid_request_error", nil},
		{"query fails", "GET", "", failingQuerier{}, 500, "server_error", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.querier
			if q == nil {
				q = accounting.NewMemorySink(0)
			}
			rec := httptest.NewRecorder()
			accounting.NewSpendLogsHandler(q, nil).ServeHTTP(rec, httptest.NewRequest(tt.method, "/spend/logs"+tt.query, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			var body struct {
				Error map[string]any `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			e := body.Error
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := e[k]; !ok {
					t.Errorf("error body lacks %q: %s", k, rec.Body)
				}
			}
			if e["type"] != tt.wantType || e["param"] != tt.wantParam {
				t.Errorf("type %v param %v, want %v %v", e["type"], e["param"], tt.wantType, tt.wantParam)
			}
			if msg, _ := e["message"].(string); msg == "" {
				t.Error("empty message")
			}
		})
	}
}
