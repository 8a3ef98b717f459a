package accounting_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func TestRecord_SpendLogRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  accounting.Record
	}{
		{"success", loadRecord(3)},
		{"stream with every token type", accounting.Record{
			Time: time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC), RequestID: "r", KeyID: "k", Team: "t", User: "u",
			ModelGroup: "claude", Deployment: "anthropic-1", Provider: "anthropic", Model: "claude-sonnet-4-5-20250929",
			Usage:            transform.Usage{InputTokens: 4221, OutputTokens: 14, CachedInputTokens: 3000, CacheCreationInputTokens: 1200, ReasoningTokens: 5, WebSearches: 2},
			Cost:             0.005673,
			Estimated:        true,
			Latency:          1600 * time.Millisecond,
			TimeToFirstToken: 300 * time.Millisecond,
			Status:           200, CacheHit: true, Stream: true,
		}},
		{"failure", accounting.Record{Time: baseTime, RequestID: "f", Status: 429, ErrorType: "rate_limit_error", Unpriced: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.rec.SpendLog()
			data, err := json.Marshal(&l)
			if err != nil {
				t.Fatal(err)
			}
			var back accounting.SpendLog
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			got := back.Record()
			if !got.Time.Equal(tt.rec.Time) {
				t.Errorf("time %v, want %v", got.Time, tt.rec.Time)
			}
			got.Time = tt.rec.Time
			if got != tt.rec {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tt.rec)
			}
			if wantStatus := map[bool]string{false: "success", true: "failure"}[tt.rec.Failed()]; l.Status != wantStatus {
				t.Errorf("status %q, want %q", l.Status, wantStatus)
			}
		})
	}
}
