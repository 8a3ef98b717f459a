package policy

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// LimiterConfig configures a MemoryLimiter or RedisLimiter. Zero values
// take the defaults named on each field.
type LimiterConfig struct {
	// Clock returns the current time; default time.Now. Replicas sharing
	// Redis compute windows from their own clocks, so keep them in NTP sync.
	Clock func() time.Time
	// Logger receives degraded-operation lines; default discards.
	Logger *slog.Logger
	// OnSoftBudget is called (on the goroutine that called Done, or the
	// flusher's) when a spend update crosses a soft budget; nil ignores it.
	OnSoftBudget func(SoftBudgetEvent)
	// Rand returns a number in [0, 1) for picking a deployment; default
	// math/rand/v2's Float64.
	Rand func() float64

	// The fields below apply to the RedisLimiter only.

	// Prefix starts every Redis key; default "tg".
	Prefix string
	// Timeout bounds each Redis call on the request path; default 100ms.
	Timeout time.Duration
	// Failure decides what Admit does while Redis is unreachable; default
	// FailDegrade.
	Failure FailureMode
	// RetryInterval is how long Redis is bypassed after a failure before it
	// is tried again, and how often queued spend is flushed; default 1s.
	RetryInterval time.Duration
	// SlotLease is how long a parallel slot is held if Done never runs (a
	// replica crashed); longer requests may lose their slot. Default 10m.
	SlotLease time.Duration
	// QueueLimit bounds the spend updates queued while Redis is down
	// (distinct counters; repeated updates to one counter are summed);
	// default 100000.
	QueueLimit int
}

func (c *LimiterConfig) defaults() {
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Prefix == "" {
		c.Prefix = "tg"
	}
	if c.Timeout <= 0 {
		c.Timeout = 100 * time.Millisecond
	}
	if c.Failure == "" {
		c.Failure = FailDegrade
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	if c.SlotLease <= 0 {
		c.SlotLease = 10 * time.Minute
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = 100_000
	}
}

// MemoryLimiter keeps limits and spend in this process: for deployments
// without Redis, and as the RedisLimiter's per-replica fallback.
type MemoryLimiter struct {
	cfg       LimiterConfig
	mu        sync.Mutex
	rates     map[scopeID]*memRate
	spend     map[scopeID]*memSpend
	lastSweep int64
}

var _ Limiter = (*MemoryLimiter)(nil)

type scopeID struct {
	kind ScopeKind
	id   string
}

type memRate struct {
	window          int64 // start of the current window, unix ms
	curReq, prevReq int64
	curTok, prevTok int64
	parallel        int64
	lastUsedMs      int64
}

type memSpend struct {
	start time.Time
	spend float64
}

// NewMemoryLimiter returns an empty limiter.
func NewMemoryLimiter(cfg LimiterConfig) *MemoryLimiter {
	cfg.defaults()
	return &MemoryLimiter{cfg: cfg, rates: map[scopeID]*memRate{}, spend: map[scopeID]*memSpend{}}
}

// roll moves r's windows forward to the one holding nowMs.
func (r *memRate) roll(nowMs int64) {
	w := windowStart(nowMs)
	switch {
	case w == r.window:
	case w == r.window+rateWindow:
		r.prevReq, r.prevTok = r.curReq, r.curTok
		r.curReq, r.curTok = 0, 0
	default:
		r.prevReq, r.prevTok, r.curReq, r.curTok = 0, 0, 0, 0
	}
	r.window = w
}

// spendOf returns the spend of s's current budget window; callers hold mu.
func (m *MemoryLimiter) spendOf(s *scope, now time.Time) *memSpend {
	id := scopeID{s.kind, s.id}
	start, _ := s.budget.Duration.Window(now)
	sp := m.spend[id]
	if sp == nil || !sp.start.Equal(start) {
		sp = &memSpend{start: start}
		m.spend[id] = sp
	}
	return sp
}

// Admit implements Limiter.
func (m *MemoryLimiter) Admit(_ context.Context, r Request) (*Admission, error) {
	scopes := scopesOf(r)
	if len(scopes) == 0 && len(r.Deployments) == 0 {
		return &Admission{}, nil
	}
	return m.admit(scopes, r.ModelGroup, r.Deployments, r.EstimatedTokens)
}

// rate returns s's counters rolled to nowMs; callers hold mu.
func (m *MemoryLimiter) rate(s *scope, nowMs int64) *memRate {
	id := scopeID{s.kind, s.id}
	rt := m.rates[id]
	if rt == nil {
		rt = &memRate{window: windowStart(nowMs)}
		m.rates[id] = rt
	}
	rt.roll(nowMs)
	rt.lastUsedMs = nowMs
	return rt
}

func (rt *memRate) counts() counts {
	return counts{rt.prevReq, rt.curReq, rt.prevTok, rt.curTok, rt.parallel, 0}
}

func (m *MemoryLimiter) admit(scopes []scope, group string, deps []DeploymentLimit, tokens int64) (*Admission, error) {
	now := m.cfg.Clock()
	nowMs := now.UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(nowMs)
	cs := make([]counts, len(scopes))
	rates := make([]*memRate, len(scopes))
	for i := range scopes {
		s := &scopes[i]
		rt := m.rate(s, nowMs)
		rates[i] = rt
		cs[i] = rt.counts()
		if s.budget.Max != nil {
			cs[i].spend = m.spendOf(s, now).spend
		}
		if err := s.check(cs[i], tokens, nowMs, now); err != nil {
			return nil, err
		}
	}
	a := &Admission{Rate: rateInfo(scopes, cs, tokens, nowMs), s: m, scopes: scopes, est: tokens, window: windowStart(nowMs)}
	if len(deps) > 0 {
		dcs := make([]counts, len(deps))
		for i := range deps {
			s := deploymentScope(&deps[i])
			dcs[i] = m.rate(&s, nowMs).counts()
		}
		chosen := pick(deps, func(i int) bool {
			s := deploymentScope(&deps[i])
			return s.check(dcs[i], tokens, nowMs, now) == nil
		}, m.cfg.Rand())
		if chosen < 0 {
			return nil, deploymentsError(group, deps, dcs, tokens, nowMs, now)
		}
		d := deploymentScope(&deps[chosen])
		a.Deployment = d.id
		if !d.limits.IsZero() {
			a.scopes, a.group = append(a.scopes, d), group
			rates = append(rates, m.rate(&d, nowMs))
		}
	}
	for i := range a.scopes {
		rt, s := rates[i], &a.scopes[i]
		if s.rated() {
			rt.curReq++
			rt.curTok += tokens
		}
		if s.limits.MaxParallel > 0 {
			rt.parallel++
		}
	}
	return a, nil
}

// sweep forgets idle scopes once per window so the maps do not grow with
// every key ever seen; callers hold mu.
func (m *MemoryLimiter) sweep(nowMs int64) {
	if nowMs-m.lastSweep < rateWindow {
		return
	}
	m.lastSweep = nowMs
	for id, rt := range m.rates {
		if rt.parallel == 0 && nowMs-rt.lastUsedMs > 2*rateWindow {
			delete(m.rates, id)
		}
	}
}

// settle releases slots, corrects tokens in the window the request was
// counted in (if it is still one of the two that count) and adds spend.
func (m *MemoryLimiter) settle(_ context.Context, a *Admission, o Outcome) error {
	now := m.cfg.Clock()
	m.mu.Lock()
	for i := range a.scopes {
		s := &a.scopes[i]
		if rt := m.rates[scopeID{s.kind, s.id}]; rt != nil {
			if s.limits.MaxParallel > 0 && rt.parallel > 0 {
				rt.parallel--
			}
			if s.rated() {
				rt.roll(now.UnixMilli())
				delta := s.tokensOf(o) - a.est
				switch a.window {
				case rt.window:
					rt.curTok += delta
				case rt.window - rateWindow:
					rt.prevTok += delta
				}
			}
		}
	}
	m.mu.Unlock()
	events := m.addSpend(a.scopes, o.Cost, now)
	if a.degrade {
		// The RedisLimiter reports the crossing when the spend reaches Redis.
		return nil
	}
	for _, e := range events {
		if m.cfg.OnSoftBudget != nil {
			m.cfg.OnSoftBudget(e)
		}
	}
	return nil
}

// addSpend adds cost to the budgeted scopes' current windows and returns
// the soft-budget crossings it caused.
func (m *MemoryLimiter) addSpend(scopes []scope, cost float64, now time.Time) []SoftBudgetEvent {
	if cost <= 0 {
		return nil
	}
	var events []SoftBudgetEvent
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range scopes {
		s := &scopes[i]
		if s.budget.IsZero() {
			continue
		}
		sp := m.spendOf(s, now)
		sp.spend += cost
		if softCrossed(s.budget, sp.spend, cost) {
			events = append(events, SoftBudgetEvent{s.kind, s.id, *s.budget.Soft, sp.spend, sp.start})
		}
	}
	return events
}

// observeSpend raises the local view of a scope's spend to what Redis
// reported, so budget checks stay close while degraded.
func (m *MemoryLimiter) observeSpend(s *scope, start time.Time, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := scopeID{s.kind, s.id}
	sp := m.spend[id]
	if sp == nil || sp.start.Before(start) {
		m.spend[id] = &memSpend{start: start, spend: v}
		return
	}
	if sp.start.Equal(start) && v > sp.spend {
		sp.spend = v
	}
}
