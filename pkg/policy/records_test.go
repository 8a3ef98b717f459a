package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseBudgetDuration(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{"", "", false},
		{"daily", "1d", false},
		{"weekly", "1w", false},
		{"monthly", "1mo", false},
		{"30d", "30d", false},
		{"12h", "12h", false},
		{"30m", "30m", false},
		{"45s", "45s", false},
		{"2w", "2w", false},
		{"3mo", "3mo", false},
		{"0d", "", true},
		{"-1d", "", true},
		{"d", "", true},
		{"10y", "", true},
		{"1.5d", "", true},
		{"Daily", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			d, err := ParseBudgetDuration(tc.in)
			if (err != nil) != tc.wantErr || (err == nil && d.String() != tc.want) {
				t.Fatalf("ParseBudgetDuration(%q) = %q, %v", tc.in, d, err)
			}
		})
	}
}

func TestBudgetDuration_Window(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		dur, now, start, end string
	}{
		{"daily", "2026-11-24T22:01:00Z", "2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"},
		{"daily", "2026-11-24T23:30:00-05:00", "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"},
		{"weekly", "2026-11-24T10:00:00Z", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"}, // Tuesday → Monday
		{"weekly", "2026-11-23T00:00:00Z", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"},
		{"monthly", "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"3mo", "2026-11-24T00:00:00Z", "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"12h", "2026-11-24T13:00:00Z", "2026-11-24T12:00:00Z", "2026-11-25T00:00:00Z"},
		{"30s", "2026-11-24T13:00:45Z", "2026-11-24T13:00:30Z", "2026-11-24T13:01:00Z"},
		{"30d", "1970-01-31T00:00:00Z", "1970-01-31T00:00:00Z", "1970-03-02T00:00:00Z"},
		{"1d", "1969-12-31T12:00:00Z", "1969-12-31T00:00:00Z", "1970-01-01T00:00:00Z"},
	} {
		t.Run(tc.dur+" "+tc.now, func(t *testing.T) {
			d, err := ParseBudgetDuration(tc.dur)
			if err != nil {
				t.Fatal(err)
			}
			start, end := d.Window(at(tc.now))
			if !start.Equal(at(tc.start)) || !end.Equal(at(tc.end)) {
				t.Fatalf("Window = %v, %v; want %s, %s", start, end, tc.start, tc.end)
			}
		})
	}
}

func TestBudgetDuration_JSON(t *testing.T) {
	var b Budget
	if err := json.Unmarshal([]byte(`{"max_budget":10,"budget_duration":"weekly"}`), &b); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(b)
	if string(out) != `{"max_budget":10,"budget_duration":"1w"}` {
		t.Fatalf("round trip = %s", out)
	}
	if err := json.Unmarshal([]byte(`{"budget_duration":"fortnightly"}`), &b); err == nil {
		t.Fatal("bad duration accepted")
	}
	out, _ = json.Marshal(Budget{})
	if string(out) != `{}` {
		t.Fatalf("zero budget = %s", out)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func TestGenerateSecret(t *testing.T) {
	a, err := GenerateSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateSecret(nil)
	if !strings.HasPrefix(a, SecretPrefix) || len(a) != len(SecretPrefix)+43 || a == b {
		t.Fatalf("secrets %q, %q", a, b)
	}
	if _, err := GenerateSecret(failingReader{}); err == nil {
		t.Fatal("failing random source not reported")
	}
	rec := NewKeyRecord(a, time.Unix(0, 0))
	if rec.Hash != HashSecret(a) || len(rec.Hash) != 64 || strings.Contains(rec.Prefix, a[len(SecretPrefix)+4:]) || rec.ID != DefaultKeyID(a) {
		t.Fatalf("record %+v", rec)
	}
}

func TestLimitsBudget_Validate(t *testing.T) {
	neg := -1.0
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"rpm", Limits{RPM: -1}.Validate(), "rpm_limit must not be negative"},
		{"tpm", Limits{TPM: -5}.Validate(), "tpm_limit must not be negative"},
		{"parallel", Limits{MaxParallel: -2}.Validate(), "max_parallel_requests must not be negative"},
		{"max budget", Budget{Max: &neg}.Validate(), "max_budget must not be negative"},
		{"soft budget", Budget{Soft: &neg}.Validate(), "soft_budget must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", tc.err, tc.want)
			}
		})
	}
	if err := (Limits{RPM: 1, TPM: 2, MaxParallel: 3}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidID(t *testing.T) {
	for in, want := range map[string]bool{
		"team-1": true, "a.b:c_d": true, "": false, "has space": false, "brace{": false,
		strings.Repeat("x", 128): true, strings.Repeat("x", 129): false, "ünï": false,
	} {
		if ValidID(in) != want {
			t.Errorf("ValidID(%q) = %v", in, !want)
		}
	}
}
