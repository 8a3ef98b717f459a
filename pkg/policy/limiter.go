package policy

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// ScopeKind names what a limit or budget belongs to.
type ScopeKind string

// Scopes a request is checked against.
const (
	ScopeKey        ScopeKind = "key"
	ScopeTeam       ScopeKind = "team"
	ScopeModelGroup ScopeKind = "model_group"
)

// LimitKind names a rate limit.
type LimitKind string

// Rate limits, named as LiteLLM's fields.
const (
	LimitRPM      LimitKind = "rpm_limit"
	LimitTPM      LimitKind = "tpm_limit"
	LimitParallel LimitKind = "max_parallel_requests"
)

// LimitError rejects a request that would exceed a rate limit; the server
// answers 429 rate_limit_error with retry-after.
type LimitError struct {
	Scope ScopeKind
	ID    string
	Limit LimitKind
	// Max is the configured limit.
	Max int64
	// RetryAfter is when the request would fit again (whole seconds, at
	// least one); for max_parallel_requests it is a guess of one second.
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("rate limit exceeded: %s %s reached its %s of %d; retry after %ds",
		e.Scope, e.ID, e.Limit, e.Max, int64(e.RetryAfter/time.Second))
}

// BudgetError rejects a request whose key or team has spent its budget for
// the current window.
type BudgetError struct {
	Scope ScopeKind
	ID    string
	// Max and Spend are in USD.
	Max, Spend float64
	// ResetAt is the start of the next budget window; zero when the budget
	// never resets.
	ResetAt time.Time
}

func (e *BudgetError) Error() string {
	reset := "the budget does not reset"
	if !e.ResetAt.IsZero() {
		reset = "it resets at " + e.ResetAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("budget exceeded: %s %s spent $%.4f of its $%.4f max_budget; %s", e.Scope, e.ID, e.Spend, e.Max, reset)
}

// SoftBudgetEvent reports that a key's or team's spend crossed its soft
// budget in the current window. Exactly one replica reports each crossing
// (the one whose spend update crossed it).
type SoftBudgetEvent struct {
	Scope       ScopeKind
	ID          string
	Soft, Spend float64
	WindowStart time.Time
}

// Request is what a request is admitted on.
type Request struct {
	// Key is the authenticated key; its team's limits and budget apply too.
	Key *Key
	// ModelGroup and ModelGroupLimits add the model group's limits (from
	// the routing config); zero limits mean none.
	ModelGroup       string
	ModelGroupLimits Limits
	// EstimatedTokens is the prompt estimate checked against TPM limits;
	// Done corrects it with the real usage.
	EstimatedTokens int64
}

// Outcome is how a request ended.
type Outcome struct {
	// Tokens is the real usage (prompt + completion); zero when the request
	// failed before any usage was known, which refunds the estimate.
	Tokens int64
	// Cost in USD is added to the key's and team's spend.
	Cost float64
}

// RateInfo is what the x-ratelimit-* headers report: the tightest limit
// that applied and what remains of it after this request. A zero limit
// means no such limit applied; omit those headers.
type RateInfo struct {
	LimitRequests, RemainingRequests int64
	LimitTokens, RemainingTokens     int64
}

// Limiter admits requests against rate limits and budgets. Implementations
// are safe for concurrent use. Admit returns *LimitError (answer 429
// rate_limit_error with retry-after), *BudgetError (429 with type and code
// budget_exceeded: OpenAI's status for exhausted quota, LiteLLM's type) or
// an error wrapping ErrUnavailable (503, fail_closed mode only); any other
// error is the caller's context ending.
type Limiter interface {
	Admit(ctx context.Context, r Request) (*Admission, error)
}

// Admission is one admitted request. Call Done exactly when the request
// ends, however it ends (normal end, client abort, provider failure); Done
// is idempotent, so a deferred call beside an explicit one is safe. If Done
// never runs (the replica crashed), parallel slots expire after the slot
// lease.
type Admission struct {
	// Rate is for the x-ratelimit-* response headers.
	Rate RateInfo

	s       settler
	scopes  []scope
	est     int64
	member  string
	window  int64 // start of the rate window (unix ms) the request was counted in
	degrade bool  // admitted by the fallback limiter while Redis was down
	done    atomic.Bool
}

// Done releases the request's parallel slots, corrects its token count and
// adds its cost to the spend. Only the first call has effect. It ignores
// ctx's cancellation (a client abort must still release the slot) but
// keeps its values; Redis calls have their own deadline, and what cannot
// be written is queued.
func (a *Admission) Done(ctx context.Context, o Outcome) error {
	if a == nil || !a.done.CompareAndSwap(false, true) || a.s == nil {
		return nil
	}
	return a.s.settle(context.WithoutCancel(ctx), a, o)
}

type settler interface {
	settle(ctx context.Context, a *Admission, o Outcome) error
}

// scope is one set of limits and a budget a request must pass.
type scope struct {
	kind   ScopeKind
	id     string
	limits Limits
	budget Budget
}

func (s *scope) rated() bool { return s.limits.RPM > 0 || s.limits.TPM > 0 }

// scopes lists what r is checked against; scopes with nothing to check
// are left out, so unlimited keys cost nothing.
func scopesOf(r Request) []scope {
	var out []scope
	add := func(kind ScopeKind, id string, l Limits, b Budget) {
		if !l.IsZero() || !b.IsZero() {
			out = append(out, scope{kind, id, l, b})
		}
	}
	if r.Key != nil {
		add(ScopeKey, r.Key.ID, r.Key.Limits, r.Key.Budget)
		if t := r.Key.Team; t != nil {
			add(ScopeTeam, t.ID, t.Limits, t.Budget)
		}
	}
	if r.ModelGroup != "" {
		add(ScopeModelGroup, r.ModelGroup, r.ModelGroupLimits, Budget{})
	}
	return out
}

// rateWindow is the RPM/TPM window. Counting uses a sliding window
// approximated from two fixed windows: the previous minute's count weighted
// by how much of it still overlaps the last 60s, plus the current minute's.
// It avoids the 2x burst a fixed window allows at each boundary, needs two
// counters instead of a log per request, and is exact whenever requests in
// the previous minute were evenly spread.
const rateWindow = int64(time.Minute / time.Millisecond)

func windowStart(nowMs int64) int64 { return nowMs - nowMs%rateWindow }

// slidingCount estimates the last 60s's usage at nowMs.
// The arithmetic matches the Lua script's operation for operation, so both
// reach the same decision on the same counts.
func slidingCount(prev, cur, nowMs int64) float64 {
	w := float64(rateWindow-nowMs%rateWindow) / float64(rateWindow)
	return float64(prev)*w + float64(cur)
}

// overLimit is the admission rule, identical in Go and Lua: the request's
// cost must fit in what remains, and a zero-cost request still needs some
// room.
func overLimit(used float64, cost, limit int64) bool {
	return used+float64(cost) > float64(limit) || (cost == 0 && used >= float64(limit))
}

// retryAfter is how long until a request costing cost fits under limit,
// assuming no other traffic: first the current window's usage must become
// the previous window's, then its weight must decay enough.
func retryAfter(prev, cur, cost, limit, nowMs int64) time.Duration {
	elapsed := nowMs % rateWindow
	room := float64(limit - cost)
	var waitMs float64
	switch {
	case room < 0:
		waitMs = float64(rateWindow)
	case float64(cur) > room:
		waitMs = float64(rateWindow-elapsed) + float64(rateWindow)*(1-room/float64(cur))
	case prev > 0:
		waitMs = float64(rateWindow)*(1-(room-float64(cur))/float64(prev)) - float64(elapsed)
	}
	// The tolerance keeps float noise (0.3 computed as 0.30000000000000004)
	// from adding a whole second.
	s := math.Ceil(waitMs/1000 - 1e-6)
	if s < 1 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

// counts is one scope's usage as an admission saw it.
type counts struct {
	prevReq, curReq, prevTok, curTok int64
	parallel                         int64
	spend                            float64
}

// check returns the first limit s would exceed, or nil.
func (s *scope) check(c counts, tokens, nowMs int64, now time.Time) error {
	l := s.limits
	if l.RPM > 0 && overLimit(slidingCount(c.prevReq, c.curReq, nowMs), 1, l.RPM) {
		return &LimitError{s.kind, s.id, LimitRPM, l.RPM, retryAfter(c.prevReq, c.curReq, 1, l.RPM, nowMs)}
	}
	if l.TPM > 0 && overLimit(slidingCount(c.prevTok, c.curTok, nowMs), tokens, l.TPM) {
		return &LimitError{s.kind, s.id, LimitTPM, l.TPM, retryAfter(c.prevTok, c.curTok, tokens, l.TPM, nowMs)}
	}
	if l.MaxParallel > 0 && c.parallel >= l.MaxParallel {
		return &LimitError{s.kind, s.id, LimitParallel, l.MaxParallel, time.Second}
	}
	if b := s.budget; b.Max != nil && c.spend >= *b.Max {
		e := &BudgetError{Scope: s.kind, ID: s.id, Max: *b.Max, Spend: c.spend}
		if !b.Duration.IsZero() {
			_, e.ResetAt = b.Duration.Window(now)
		}
		return e
	}
	return nil
}

// rateInfo folds admitted scopes' counts (before this request) into the
// tightest remaining request and token allowance.
func rateInfo(scopes []scope, cs []counts, tokens, nowMs int64) RateInfo {
	var ri RateInfo
	reqRem, tokRem := int64(math.MaxInt64), int64(math.MaxInt64)
	for i := range scopes {
		l, c := scopes[i].limits, cs[i]
		if l.RPM > 0 {
			if rem := l.RPM - int64(math.Ceil(slidingCount(c.prevReq, c.curReq, nowMs)+1)); rem < reqRem {
				reqRem, ri.LimitRequests = rem, l.RPM
			}
		}
		if l.TPM > 0 {
			if rem := l.TPM - int64(math.Ceil(slidingCount(c.prevTok, c.curTok, nowMs)+float64(tokens))); rem < tokRem {
				tokRem, ri.LimitTokens = rem, l.TPM
			}
		}
	}
	if ri.LimitRequests > 0 {
		ri.RemainingRequests = max(reqRem, 0)
	}
	if ri.LimitTokens > 0 {
		ri.RemainingTokens = max(tokRem, 0)
	}
	return ri
}

// softCrossed reports whether adding cost moved spend from below soft to
// at or above it.
func softCrossed(b Budget, after, cost float64) bool {
	return b.Soft != nil && cost > 0 && after-cost < *b.Soft && after >= *b.Soft
}
