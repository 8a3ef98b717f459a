package admin

import (
	"fmt"
	"maps"
	"math"
	"strconv"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/policy"
)

// Fields shared by keys and teams, named as LiteLLM names them.
var limitFields = []string{"models", "metadata", "blocked", "tpm_limit", "rpm_limit", "max_parallel_requests",
	"max_budget", "soft_budget", "budget_duration"}

// applyCommon applies the shared fields to a record's parts; null clears a
// limit or budget.
func (h *Handler) applyCommon(f fields, models *[]string, metadata *map[string]any, blocked *bool, l *policy.Limits, b *policy.Budget) error {
	if v, ok, _, err := field[[]string](f, "models", "a list of model names"); err != nil {
		return err
	} else if ok {
		for _, m := range v {
			if m == "" {
				return badRequest("models", "models must not contain empty names")
			}
			if h.cfg.KnownModel != nil && !h.cfg.KnownModel(m) {
				return badRequest("models", "unknown model %q", m)
			}
		}
		*models = v
	}
	if v, ok, _, err := field[map[string]any](f, "metadata", "an object"); err != nil {
		return err
	} else if ok {
		*metadata = maps.Clone(v)
	}
	if v, ok, null, err := field[bool](f, "blocked", "true or false"); err != nil {
		return err
	} else if ok && null {
		return badRequest("blocked", "blocked must be true or false")
	} else if ok {
		*blocked = v
	}
	for _, lim := range []struct {
		name string
		dst  *int64
	}{{"tpm_limit", &l.TPM}, {"rpm_limit", &l.RPM}, {"max_parallel_requests", &l.MaxParallel}} {
		v, ok, _, err := field[int64](f, lim.name, "a non-negative integer or null")
		if err != nil {
			return err
		}
		if v < 0 {
			return badRequest(lim.name, "%s must not be negative, got %d", lim.name, v)
		}
		if ok {
			*lim.dst = v
		}
	}
	for _, amt := range []struct {
		name string
		dst  **float64
	}{{"max_budget", &b.Max}, {"soft_budget", &b.Soft}} {
		v, ok, null, err := field[float64](f, amt.name, "a non-negative number or null")
		if err != nil {
			return err
		}
		if v < 0 || math.IsInf(v, 0) {
			return badRequest(amt.name, "%s must be a non-negative number, got %g", amt.name, v)
		}
		switch {
		case ok && null:
			*amt.dst = nil
		case ok:
			*amt.dst = &v
		}
	}
	if v, ok, _, err := field[string](f, "budget_duration", "a string such as \"daily\" or \"30d\""); err != nil {
		return err
	} else if ok {
		d, err := policy.ParseBudgetDuration(v)
		if err != nil {
			return badRequest("budget_duration", "%v", err)
		}
		b.Duration = d
	}
	return nil
}

// stringField applies an optional string of at most 256 bytes.
func stringField(f fields, name string, dst *string) error {
	v, ok, _, err := field[string](f, name, "a string")
	if err != nil {
		return err
	}
	if len(v) > 256 {
		return badRequest(name, "%s must be at most 256 bytes", name)
	}
	if ok {
		*dst = v
	}
	return nil
}

// parseDuration reads LiteLLM's key duration: a count and a unit s, m, h,
// d or w ("30d"); it is measured from now, unlike budget windows.
func parseDuration(s string) (time.Duration, error) {
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if len(s) < 2 {
		return 0, fmt.Errorf("invalid duration %q: want a count and unit such as 30d", s)
	}
	u, ok := units[s[len(s)-1]]
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if !ok || err != nil || n <= 0 || n > 100_000 {
		return 0, fmt.Errorf("invalid duration %q: want a positive count and a unit s, m, h, d or w, such as 30d", s)
	}
	return time.Duration(n) * u, nil
}
