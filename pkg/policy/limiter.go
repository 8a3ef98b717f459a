package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
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
	// ScopeDeployment is one deployment of a model group; admission picks
	// a deployment with capacity instead of rejecting on it.
	ScopeDeployment ScopeKind = "deployment"
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

// DeploymentsError rejects a request because no deployment of its model
// group has capacity; the server answers 429 rate_limit_error with
// retry-after. It names each deployment's binding limit, since "no
// deployments available" alone hides the cause.
type DeploymentsError struct {
	ModelGroup string
	// Limits holds, per deployment in config order, the first limit that
	// blocks it (Scope ScopeDeployment, ID the deployment id).
	Limits []*LimitError
	// RetryAfter is the soonest any deployment would fit again.
	RetryAfter time.Duration
}

func (e *DeploymentsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no deployments available for model group %s: every deployment is at its limit (", e.ModelGroup)
	for i, le := range e.Limits {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s reached its %s of %d", le.ID, deploymentField(le.Limit), le.Max)
	}
	fmt.Fprintf(&b, "); retry after %ds", int64(e.RetryAfter/time.Second))
	return b.String()
}

// deploymentField is a limit's name in a deployment's litellm_params.
func deploymentField(k LimitKind) string {
	switch k {
	case LimitRPM:
		return "rpm"
	case LimitTPM:
		return "tpm"
	}
	return string(k)
}

// Binding is the limit of the deployment that frees up soonest, for
// metrics.
func (e *DeploymentsError) Binding() *LimitError {
	var best *LimitError
	for _, le := range e.Limits {
		if best == nil || le.RetryAfter < best.RetryAfter {
			best = le
		}
	}
	return best
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
	// Deployments, when set, are the model group's deployments with their
	// hard limits: admission picks one with capacity (weighted random),
	// counts the request against it with the scopes above, and rejects
	// with *DeploymentsError when none has capacity. Nil for groups
	// without hard-limited deployments, which then cost nothing extra.
	Deployments []DeploymentLimit
}

// DeploymentLimit is one deployment as admission sees it.
type DeploymentLimit struct {
	ID string
	// Limits are the deployment's hard limits; zero means the deployment
	// always has capacity and nothing is counted for it.
	Limits Limits
	// Weight is the deployment's share among those with capacity (its
	// Envoy endpoint weight); zero counts as one.
	Weight uint32
}

// Outcome is how a request ended.
type Outcome struct {
	// Tokens is the real usage (prompt + completion); zero when the request
	// failed before any usage was known, which refunds the estimate.
	Tokens int64
	// Cost in USD is added to the key's and team's spend.
	Cost float64
	// Deployment is the id of the deployment that answered. When it is not
	// the admitted one (Envoy retried elsewhere), the admitted deployment's
	// token estimate is refunded instead of corrected: the tokens were not
	// its own.
	Deployment string
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
	// Deployment is the id of the deployment picked for the request; ""
	// when the request named no deployments.
	Deployment string

	s       settler
	scopes  []scope
	group   string // model group of a deployment in scopes; names its Redis keys
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

// scope is one set of limits and a budget a request must pass, or one
// deployment admission may pick.
type scope struct {
	kind   ScopeKind
	id     string
	limits Limits
	budget Budget
}

// tokensOf is what Done charges s for o: a deployment that did not answer
// gets none of the tokens.
func (s *scope) tokensOf(o Outcome) int64 {
	if s.kind == ScopeDeployment && o.Deployment != s.id {
		return 0
	}
	return o.Tokens
}

func (s *scope) rated() bool { return s.limits.RPM > 0 || s.limits.TPM > 0 }

// scopes lists what r is checked against; scopes with nothing to check
// are left out, so unlimited keys cost nothing.
func scopesOf(r Request) []scope {
	var out []scope
	add := func(kind ScopeKind, id string, l Limits, b Budget) {
		if !l.IsZero() || !b.IsZero() {
			out = append(out, scope{kind: kind, id: id, limits: l, budget: b})
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

// deploymentScope is d as a scope to check and count.
func deploymentScope(d *DeploymentLimit) scope {
	return scope{kind: ScopeDeployment, id: d.ID, limits: d.Limits}
}

// pick chooses among the deployments that have capacity by weighted
// random, rnd in [0, 1); -1 when none has capacity. The Lua script makes
// the same choice with the same arithmetic.
func pick(deps []DeploymentLimit, capacity func(i int) bool, rnd float64) int {
	var total float64
	for i := range deps {
		if capacity(i) {
			total += float64(max(deps[i].Weight, 1))
		}
	}
	if total == 0 {
		return -1
	}
	target, last := rnd*total, -1
	for i := range deps {
		if !capacity(i) {
			continue
		}
		last = i
		w := float64(max(deps[i].Weight, 1))
		if target < w {
			return i
		}
		target -= w
	}
	return last
}

// deploymentsError explains why no deployment has capacity from their
// counts; nil if some deployment passes (Go and Lua disagree).
func deploymentsError(group string, deps []DeploymentLimit, cs []counts, tokens, nowMs int64, now time.Time) *DeploymentsError {
	e := &DeploymentsError{ModelGroup: group, Limits: make([]*LimitError, len(deps))}
	for i := range deps {
		var le *LimitError
		s := deploymentScope(&deps[i])
		if !errors.As(s.check(cs[i], tokens, nowMs, now), &le) {
			return nil
		}
		e.Limits[i] = le
		if e.RetryAfter == 0 || le.RetryAfter < e.RetryAfter {
			e.RetryAfter = le.RetryAfter
		}
	}
	return e
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
