package policy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every generated virtual key, so leaked keys are easy
// to recognise in logs and secret scanners. LiteLLM requires "sk-".
const SecretPrefix = "sk-tg-"

// Limits are the rate limits of a key, team or model group. Zero means no
// limit of that kind.
type Limits struct {
	// RPM is the number of requests allowed per minute (sliding window).
	RPM int64 `json:"rpm_limit,omitempty"`
	// TPM is the number of tokens (prompt + completion) allowed per minute.
	TPM int64 `json:"tpm_limit,omitempty"`
	// MaxParallel is the number of requests allowed in flight at once.
	MaxParallel int64 `json:"max_parallel_requests,omitempty"`
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// Validate rejects negative limits.
func (l Limits) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{{"rpm_limit", l.RPM}, {"tpm_limit", l.TPM}, {"max_parallel_requests", l.MaxParallel}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %d", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// Budget caps the spend (USD) of a key or team per budget window.
type Budget struct {
	// Max rejects requests once the window's spend reaches it; nil means no
	// budget.
	Max *float64 `json:"max_budget,omitempty"`
	// Soft only reports the crossing (for alerts); nil means none.
	Soft *float64 `json:"soft_budget,omitempty"`
	// Duration is the reset period; zero means spend never resets.
	Duration BudgetDuration `json:"budget_duration,omitzero"`
}

// IsZero reports whether neither a hard nor a soft budget is set.
func (b Budget) IsZero() bool { return b.Max == nil && b.Soft == nil }

// Validate rejects negative amounts.
func (b Budget) Validate() error {
	var errs []error
	if b.Max != nil && *b.Max < 0 {
		errs = append(errs, fmt.Errorf("max_budget must not be negative, got %g", *b.Max))
	}
	if b.Soft != nil && *b.Soft < 0 {
		errs = append(errs, fmt.Errorf("soft_budget must not be negative, got %g", *b.Soft))
	}
	return errors.Join(errs...)
}

// budgetUnit is the calendar unit of a BudgetDuration.
type budgetUnit uint8

const (
	unitNone budgetUnit = iota
	unitSecond
	unitMinute
	unitHour
	unitDay
	unitWeek
	unitMonth
)

// BudgetDuration is a budget reset period: "daily", "weekly", "monthly",
// or a count and unit ("30s", "30m", "12h", "30d", "2w", "1mo"). Windows
// are aligned in UTC: days start at midnight, weeks on Monday, months on the
// 1st, and an N-unit period at multiples of N units since 1970-01-01 (weeks
// since Monday 1969-12-29), so every replica computes the same window start
// from the clock alone.
type BudgetDuration struct {
	n    int64
	unit budgetUnit
}

// ParseBudgetDuration parses the forms BudgetDuration documents. The empty
// string is the zero duration (never resets).
func ParseBudgetDuration(s string) (BudgetDuration, error) {
	switch s {
	case "":
		return BudgetDuration{}, nil
	case "daily":
		return BudgetDuration{1, unitDay}, nil
	case "weekly":
		return BudgetDuration{1, unitWeek}, nil
	case "monthly":
		return BudgetDuration{1, unitMonth}, nil
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n <= 0 || n > 1_000_000 {
		return BudgetDuration{}, fmt.Errorf("invalid budget_duration %q: want daily, weekly, monthly or a positive count and unit like 30d", s)
	}
	units := map[string]budgetUnit{"s": unitSecond, "m": unitMinute, "h": unitHour, "d": unitDay, "w": unitWeek, "mo": unitMonth}
	u, ok := units[s[i:]]
	if !ok {
		return BudgetDuration{}, fmt.Errorf("invalid budget_duration %q: unit must be s, m, h, d, w or mo", s)
	}
	return BudgetDuration{n, u}, nil
}

// IsZero reports whether the duration never resets.
func (d BudgetDuration) IsZero() bool { return d.unit == unitNone }

// String returns the canonical form ("1d", "1w", "1mo", "30d").
func (d BudgetDuration) String() string {
	if d.IsZero() {
		return ""
	}
	return strconv.FormatInt(d.n, 10) + [...]string{"", "s", "m", "h", "d", "w", "mo"}[d.unit]
}

// MarshalText encodes the canonical form.
func (d BudgetDuration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses any form ParseBudgetDuration accepts.
func (d *BudgetDuration) UnmarshalText(b []byte) error {
	v, err := ParseBudgetDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// mondayEpoch is the Monday before the Unix epoch; weeks count from it.
var mondayEpoch = time.Date(1969, 12, 29, 0, 0, 0, 0, time.UTC).Unix()

// Window returns the UTC start and end of the budget window holding t. The
// zero duration has one window from the epoch to the far future.
func (d BudgetDuration) Window(t time.Time) (start, end time.Time) {
	t = t.UTC()
	sec := t.Unix()
	fixed := func(origin, length int64) (time.Time, time.Time) {
		s := origin + floorDiv(sec-origin, length)*length
		return time.Unix(s, 0).UTC(), time.Unix(s+length, 0).UTC()
	}
	switch d.unit {
	case unitSecond:
		return fixed(0, d.n)
	case unitMinute:
		return fixed(0, d.n*60)
	case unitHour:
		return fixed(0, d.n*3600)
	case unitDay:
		return fixed(0, d.n*86400)
	case unitWeek:
		return fixed(mondayEpoch, d.n*7*86400)
	case unitMonth:
		months := int64(t.Year()-1970)*12 + int64(t.Month()-1)
		m := floorDiv(months, d.n) * d.n
		start = time.Date(1970+int(m/12), time.Month(m%12+1), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, int(d.n), 0)
	}
	return time.Unix(0, 0).UTC(), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// KeyRecord is a stored virtual key. Only the hash of its secret is kept.
type KeyRecord struct {
	// ID is stable for the key's life (regeneration keeps it) and names the
	// key in logs, limits and spend.
	ID string `json:"id"`
	// Hash is the hex SHA-256 of the current secret (LiteLLM's "token").
	Hash string `json:"hash"`
	// Alias is a human name (LiteLLM's key_alias).
	Alias string `json:"alias,omitempty"`
	// Prefix is the start of the secret, shown in listings to tell keys apart.
	Prefix   string         `json:"prefix,omitempty"`
	TeamID   string         `json:"team_id,omitempty"`
	UserID   string         `json:"user_id,omitempty"`
	Models   []string       `json:"models,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	// Expires is when the key stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
	Blocked bool      `json:"blocked,omitempty"`
	Limits
	Budget
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Team groups keys under shared limits and budgets; a request must pass
// both its key's and its team's.
type Team struct {
	ID       string         `json:"team_id"`
	Alias    string         `json:"team_alias,omitempty"`
	Models   []string       `json:"models,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	Blocked  bool           `json:"blocked,omitempty"`
	Limits
	Budget
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// HashSecret returns the hex SHA-256 of a secret, the form keys are stored
// and looked up by (the same as LiteLLM's hash_token).
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// GenerateSecret returns a new virtual key: SecretPrefix and 32 random
// bytes from r (crypto/rand.Reader when nil), base64url-encoded.
func GenerateSecret(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// secretPrefix is the part of a secret safe to show: the prefix and four
// characters, as LiteLLM's key_name does.
func secretPrefix(secret string) string {
	if len(secret) <= len(SecretPrefix)+4 {
		return SecretPrefix + "..."
	}
	return secret[:len(SecretPrefix)+4] + "..."
}

// NewKeyRecord builds a record for a fresh secret; the caller fills in the
// other fields.
func NewKeyRecord(secret string, now time.Time) *KeyRecord {
	return &KeyRecord{
		ID:        DefaultKeyID(secret),
		Hash:      HashSecret(secret),
		Prefix:    secretPrefix(secret),
		CreatedAt: now.UTC(),
		UpdatedAt: now.UTC(),
	}
}

// ValidID reports whether s may be used as a team or key id: 1–128
// characters from letters, digits and "._:-", so it is safe in Redis key
// names, hash tags and logs.
func ValidID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r))
	}) < 0
}
