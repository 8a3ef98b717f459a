package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// FailureMode decides what the RedisLimiter does while Redis is
// unreachable.
type FailureMode string

// Failure modes.
const (
	// FailDegrade admits against per-replica counters (limits become per
	// replica) and says so in a log line and the Degraded counters.
	FailDegrade FailureMode = "degrade"
	// FailClosed rejects every limited request with ErrUnavailable.
	FailClosed FailureMode = "fail_closed"
)

// admitScript checks and counts one request against a group of scopes
// atomically and, when given deployments, picks one with capacity and
// counts the request against it too. KEYS: 4 per scope (current window
// hash, previous window hash, parallel-slot zset, spend counter), then 3
// per deployment (the same without spend). ARGV: now ms, window ms,
// tokens, slot lease ms, slot member, deployment count, random number in
// [0, 1), then 4 per scope (rpm, tpm, max parallel, max budget; -1: none),
// then 4 per deployment (rpm, tpm, max parallel, weight >= 1). Returns
// {status, failing scope (1-based), picked deployment (1-based)}, 6 per
// scope (cur req, prev req, cur tok, prev tok, slots in use, spend), then
// unless a scope failed 5 per deployment (the same without spend). Status
// 0 admits; 1-4 is a scope's rpm, tpm, parallel or budget; 5 means no
// deployment has capacity. Anything but 0 changes nothing.
const admitScript = `
local now, win, tok, lease, member = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local nd, rnd = tonumber(ARGV[6]), tonumber(ARGV[7])
local ns = (#KEYS - 3 * nd) / 4
local w = (win - now % win) / win
local out = {0, 0, 0}
local function usage(ck, pk, zk, rpm, tpm, mp)
  local cr, pr, ct, pt, par = 0, 0, 0, 0, 0
  if rpm > 0 or tpm > 0 then
    local c = redis.call('HMGET', ck, 'r', 't')
    local p = redis.call('HMGET', pk, 'r', 't')
    cr, ct, pr, pt = tonumber(c[1] or 0), tonumber(c[2] or 0), tonumber(p[1] or 0), tonumber(p[2] or 0)
  end
  if mp > 0 then
    redis.call('ZREMRANGEBYSCORE', zk, '-inf', now - lease)
    par = redis.call('ZCARD', zk)
  end
  return cr, pr, ct, pt, par
end
local function over(cr, pr, ct, pt, par, rpm, tpm, mp)
  local rused, tused = pr * w + cr, pt * w + ct
  if rpm > 0 and rused + 1 > rpm then return 1 end
  if tpm > 0 and (tused + tok > tpm or (tok == 0 and tused >= tpm)) then return 2 end
  if mp > 0 and par >= mp then return 3 end
  return 0
end
local function count(ck, zk, rpm, tpm, mp)
  if rpm > 0 or tpm > 0 then
    redis.call('HINCRBY', ck, 'r', 1)
    redis.call('HINCRBY', ck, 't', tok)
    redis.call('PEXPIRE', ck, win * 2)
  end
  if mp > 0 then
    redis.call('ZADD', zk, now, member)
    redis.call('PEXPIRE', zk, lease)
  end
end
for i = 0, ns - 1 do
  local k, a = i * 4, 7 + i * 4
  local rpm, tpm, mp, mb = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3]), tonumber(ARGV[a+4])
  local cr, pr, ct, pt, par = usage(KEYS[k+1], KEYS[k+2], KEYS[k+3], rpm, tpm, mp)
  local spend = '0'
  if mb >= 0 then spend = redis.call('GET', KEYS[k+4]) or '0' end
  for _, v in ipairs({cr, pr, ct, pt, par, spend}) do out[#out+1] = v end
  if out[1] == 0 then
    out[1] = over(cr, pr, ct, pt, par, rpm, tpm, mp)
    if out[1] == 0 and mb >= 0 and tonumber(spend) >= mb then out[1] = 4 end
    if out[1] ~= 0 then out[2] = i + 1 end
  end
end
if out[1] ~= 0 then return out end
local dk, da = ns * 4, 7 + ns * 4
if nd > 0 then
  local total, cand = 0, {}
  for j = 0, nd - 1 do
    local k, a = dk + j * 3, da + j * 4
    local rpm, tpm, mp, wt = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3]), tonumber(ARGV[a+4])
    local cr, pr, ct, pt, par = usage(KEYS[k+1], KEYS[k+2], KEYS[k+3], rpm, tpm, mp)
    for _, v in ipairs({cr, pr, ct, pt, par}) do out[#out+1] = v end
    if over(cr, pr, ct, pt, par, rpm, tpm, mp) == 0 then
      total = total + wt
      cand[#cand+1] = j
    end
  end
  if #cand == 0 then
    out[1] = 5
    return out
  end
  local target, chosen = rnd * total, cand[#cand]
  for _, j in ipairs(cand) do
    local wt = tonumber(ARGV[da + j * 4 + 4])
    if target < wt then
      chosen = j
      break
    end
    target = target - wt
  end
  out[3] = chosen + 1
  local k, a = dk + chosen * 3, da + chosen * 4
  count(KEYS[k+1], KEYS[k+3], tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3]))
end
for i = 0, ns - 1 do
  local k, a = i * 4, 7 + i * 4
  count(KEYS[k+1], KEYS[k+3], tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3]))
end
return out
`

// settleScript ends (or rolls back) one request in a group of scopes.
// KEYS, 3 per scope: the window hash the request was counted in, the
// parallel-slot zset, the spend counter. ARGV: member, request delta, then
// 5 per scope: rated (1/0), holds a slot (1/0), cost ("" for none), spend
// TTL seconds (0: none), token delta. A window that already expired is
// not recreated. Returns the new spend per scope ("" if none).
const settleScript = `
local member, rd = ARGV[1], tonumber(ARGV[2])
local n = #KEYS / 3
local out = {}
for i = 0, n - 1 do
  local k, a = i * 3, 2 + i * 5
  local td = tonumber(ARGV[a+5])
  if ARGV[a+1] == '1' and redis.call('EXISTS', KEYS[k+1]) == 1 then
    if rd ~= 0 then redis.call('HINCRBY', KEYS[k+1], 'r', rd) end
    if td ~= 0 then redis.call('HINCRBY', KEYS[k+1], 't', td) end
  end
  if ARGV[a+2] == '1' then redis.call('ZREM', KEYS[k+2], member) end
  local spend = ''
  if ARGV[a+3] ~= '' then
    spend = redis.call('INCRBYFLOAT', KEYS[k+3], ARGV[a+3])
    local ttl = tonumber(ARGV[a+4])
    if ttl > 0 then redis.call('EXPIRE', KEYS[k+3], ttl) end
  end
  out[i+1] = spend
end
return out
`

// LimiterStats are counters for metrics; all but QueueLen and Degraded
// only increase.
type LimiterStats struct {
	// RedisErrors counts failed Redis calls.
	RedisErrors uint64
	// DegradedAdmits counts requests admitted on per-replica counters.
	DegradedAdmits uint64
	// FailClosedRejects counts requests rejected because Redis was down in
	// fail_closed mode.
	FailClosedRejects uint64
	// SpendQueued counts spend updates and slot releases queued for later.
	SpendQueued uint64
	// SpendFlushed counts queued updates written to Redis.
	SpendFlushed uint64
	// SpendDropped counts updates lost because the queue was full.
	SpendDropped uint64
	// QueueLen is the number of queued updates now.
	QueueLen int
	// Degraded reports whether Redis is being bypassed now.
	Degraded bool
}

// RedisLimiter shares limits and spend between replicas through Redis: one
// script call per request at admission and one at Done. While Redis is
// unreachable it follows its FailureMode, queues spend and slot releases,
// and flushes them when Redis answers again (Run does this; Close flushes
// on shutdown).
type RedisLimiter struct {
	c         redis.UniversalClient
	cfg       LimiterConfig
	mem       *MemoryLimiter
	admit     *redis.Script
	settleScr *redis.Script
	cluster   bool
	replica   string
	seq       atomic.Uint64
	downUntil atomic.Int64
	degraded  atomic.Bool
	q         spendQueue

	redisErrs, degradedAdmits, failClosed atomic.Uint64
}

var _ Limiter = (*RedisLimiter)(nil)

// NewRedisLimiter returns a limiter on c (standalone or Cluster); it does
// not own or close c, which must honour context deadlines. rnd seeds this replica's slot ids (crypto/rand when
// nil).
func NewRedisLimiter(c redis.UniversalClient, cfg LimiterConfig, rnd io.Reader) (*RedisLimiter, error) {
	if err := checkClient(c); err != nil {
		return nil, err
	}
	cfg.defaults()
	if cfg.Failure != FailDegrade && cfg.Failure != FailClosed {
		return nil, fmt.Errorf("limiter failure mode %q: want %q or %q", cfg.Failure, FailDegrade, FailClosed)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	var id [8]byte
	if _, err := io.ReadFull(rnd, id[:]); err != nil {
		return nil, fmt.Errorf("limiter replica id: %w", err)
	}
	_, cluster := c.(*redis.ClusterClient)
	l := &RedisLimiter{
		c: c, cfg: cfg, mem: NewMemoryLimiter(cfg),
		admit: redis.NewScript(admitScript), settleScr: redis.NewScript(settleScript),
		cluster: cluster, replica: hex.EncodeToString(id[:]),
	}
	l.q.limit = cfg.QueueLimit
	return l, nil
}

// Stats returns the counters.
func (l *RedisLimiter) Stats() LimiterStats {
	queued, flushed, dropped, n := l.q.stats()
	return LimiterStats{
		RedisErrors: l.redisErrs.Load(), DegradedAdmits: l.degradedAdmits.Load(), FailClosedRejects: l.failClosed.Load(),
		SpendQueued: queued, SpendFlushed: flushed, SpendDropped: dropped, QueueLen: n, Degraded: l.degraded.Load(),
	}
}

// base starts the names of s's keys. A scope's keys share a hash tag; a
// model group's deployments all share one, because one script reads them
// all to pick among them.
// group is the model group of a deployment scope, ignored for the others.
func (l *RedisLimiter) base(s *scope, group string) string {
	if s.kind == ScopeDeployment {
		return l.cfg.Prefix + ":{rl:" + string(s.kind) + ":" + group + "}:" + s.id
	}
	return l.cfg.Prefix + ":{rl:" + string(s.kind) + ":" + s.id + "}"
}

func (l *RedisLimiter) rateKey(s *scope, group string, window int64) string {
	return l.base(s, group) + ":" + strconv.FormatInt(window, 10)
}

// spendKey names the counter of s's budget window holding now, and how
// long it must live.
func (l *RedisLimiter) spendKey(s *scope, group string, now time.Time) (name string, start time.Time, ttl int64) {
	if s.budget.Duration.IsZero() {
		return l.base(s, group) + ":spend:total", time.Unix(0, 0).UTC(), 0
	}
	start, end := s.budget.Duration.Window(now)
	ttl = int64(end.Sub(now)/time.Second) + 3600
	return l.base(s, group) + ":spend:" + s.budget.Duration.String() + ":" + strconv.FormatInt(start.Unix(), 10), start, ttl
}

// callGroup is the scopes [lo, hi) one script call covers, and whether it
// also picks the deployment.
type callGroup struct {
	lo, hi int
	deps   bool
}

// groups splits scopes (and the deployment pick) into script calls: one
// call in standalone Redis; in a Cluster, where each scope's keys share a
// hash tag but different scopes live in different slots, one per scope
// and one for the deployments, whose keys share their group's tag.
func (l *RedisLimiter) groups(n int, deps bool) []callGroup {
	if !l.cluster {
		return []callGroup{{0, n, deps}}
	}
	g := make([]callGroup, n, n+1)
	for i := range g {
		g[i] = callGroup{i, i + 1, false}
	}
	if deps {
		g = append(g, callGroup{n, n, true})
	}
	return g
}

// Admit implements Limiter.
func (l *RedisLimiter) Admit(ctx context.Context, r Request) (*Admission, error) {
	scopes := scopesOf(r)
	if len(scopes) == 0 && len(r.Deployments) == 0 {
		return &Admission{}, nil
	}
	now := l.cfg.Clock()
	if now.UnixNano() < l.downUntil.Load() {
		return l.fallback(scopes, r)
	}
	a, err := l.admitRedis(ctx, scopes, r.ModelGroup, r.Deployments, r.EstimatedTokens, now)
	var le *LimitError
	var be *BudgetError
	var de *DeploymentsError
	if err == nil || errors.As(err, &le) || errors.As(err, &be) || errors.As(err, &de) {
		l.up(ctx)
		return a, err
	}
	if ctx.Err() != nil {
		// The caller gave up (client abort); Redis is not to blame.
		return nil, fmt.Errorf("admit: %w", ctx.Err())
	}
	l.down(ctx, err)
	return l.fallback(scopes, r)
}

func (l *RedisLimiter) fallback(scopes []scope, r Request) (*Admission, error) {
	if l.cfg.Failure == FailClosed {
		l.failClosed.Add(1)
		return nil, fmt.Errorf("%w: rate limits cannot be checked and failure mode is fail_closed", ErrUnavailable)
	}
	l.degradedAdmits.Add(1)
	a, err := l.mem.admit(scopes, r.ModelGroup, r.Deployments, r.EstimatedTokens)
	if err != nil {
		return nil, err
	}
	a.s, a.degrade = l, true
	return a, nil
}

type groupResult struct {
	vals []any
	err  error
}

func (l *RedisLimiter) admitRedis(ctx context.Context, scopes []scope, group string, deps []DeploymentLimit, tokens int64, now time.Time) (*Admission, error) {
	nowMs := now.UnixMilli()
	win := windowStart(nowMs)
	a := &Admission{s: l, scopes: scopes, est: tokens, window: win, member: l.replica + ":" + strconv.FormatUint(l.seq.Add(1), 36)}
	groups := l.groups(len(scopes), len(deps) > 0)
	res := make([]groupResult, len(groups))
	var rnd string
	if len(deps) > 0 {
		rnd = strconv.FormatFloat(l.cfg.Rand(), 'f', -1, 64)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	run := func(gi int) {
		g := groups[gi]
		var ds []DeploymentLimit
		if g.deps {
			ds = deps
		}
		keys := make([]string, 0, 4*(g.hi-g.lo)+3*len(ds))
		args := make([]any, 0, 7+4*(g.hi-g.lo)+4*len(ds))
		args = append(args, nowMs, rateWindow, tokens, l.cfg.SlotLease.Milliseconds(), a.member, len(ds), rnd)
		for i := g.lo; i < g.hi; i++ {
			s := &scopes[i]
			spendName, _, _ := l.spendKey(s, "", now)
			keys = append(keys, l.rateKey(s, "", win), l.rateKey(s, "", win-rateWindow), l.base(s, "")+":par", spendName)
			maxBudget := "-1"
			if s.budget.Max != nil {
				maxBudget = strconv.FormatFloat(*s.budget.Max, 'f', -1, 64)
			}
			args = append(args, s.limits.RPM, s.limits.TPM, s.limits.MaxParallel, maxBudget)
		}
		for i := range ds {
			s := deploymentScope(&ds[i])
			keys = append(keys, l.rateKey(&s, group, win), l.rateKey(&s, group, win-rateWindow), l.base(&s, group)+":par")
			args = append(args, s.limits.RPM, s.limits.TPM, s.limits.MaxParallel, max(ds[i].Weight, 1))
		}
		vals, err := l.admit.Run(ctx, l.c, keys, args...).Slice()
		res[gi] = groupResult{vals, err}
	}
	if len(groups) == 1 {
		run(0)
	} else {
		var wg sync.WaitGroup
		for gi := range groups {
			wg.Go(func() { run(gi) })
		}
		wg.Wait()
	}

	cs := make([]counts, len(scopes))
	var dcs []counts
	if len(deps) > 0 {
		dcs = make([]counts, len(deps))
	}
	chosen := -1
	var failErr error
	var admitted []callGroup
	for gi, r := range res {
		g := groups[gi]
		var gdcs []counts
		if g.deps {
			gdcs = dcs
		}
		var status, idx, picked int64
		if r.err == nil {
			status, idx, picked, r.err = parseAdmit(r.vals, cs[g.lo:g.hi], gdcs)
		}
		if r.err != nil {
			failErr = errors.Join(failErr, fmt.Errorf("redis rate limit script: %w", r.err))
			continue
		}
		if status == 0 {
			admitted = append(admitted, g)
			if g.deps {
				chosen = int(picked) - 1
			}
			continue
		}
		if failErr != nil {
			continue
		}
		if status == 5 {
			if de := deploymentsError(group, deps, dcs, tokens, nowMs, now); de != nil {
				failErr = de
			} else {
				failErr = fmt.Errorf("redis rate limit script found no deployment of %s with capacity, which Go does not reproduce", group)
			}
			continue
		}
		i := g.lo + int(idx) - 1
		if failErr = scopes[i].check(cs[i], tokens, nowMs, now); failErr == nil {
			failErr = fmt.Errorf("redis rate limit script rejected %s %s with status %d that Go does not reproduce", scopes[i].kind, scopes[i].id, status)
		}
	}
	for i := range scopes {
		if scopes[i].budget.Max != nil {
			_, start, _ := l.spendKey(&scopes[i], "", now)
			l.mem.observeSpend(&scopes[i], start, cs[i].spend)
		}
	}
	if failErr != nil {
		// Only a Cluster, with several groups, can get here with some
		// groups admitted; undo them so rejected requests count nowhere.
		for _, g := range admitted {
			counted := scopes[g.lo:g.hi]
			if g.deps && chosen >= 0 {
				counted = []scope{deploymentScope(&deps[chosen])}
			}
			sub := &Admission{scopes: counted, group: group, est: tokens, window: win, member: a.member}
			if err := l.settleRedis(context.WithoutCancel(ctx), sub, true, Outcome{}, now); err != nil {
				l.queueSettle(sub, 0, now)
			}
		}
		return nil, failErr
	}
	a.Rate = rateInfo(scopes, cs, tokens, nowMs)
	if len(deps) > 0 {
		d := deploymentScope(&deps[chosen])
		a.Deployment = d.id
		if !d.limits.IsZero() {
			a.scopes, a.group = append(a.scopes, d), group
		}
	}
	return a, nil
}

// parseAdmit reads the admit script's status, failing scope, picked
// deployment and counts for one group; dcs is nil for a group without
// deployments.
func parseAdmit(vals []any, cs, dcs []counts) (status, idx, picked int64, err error) {
	if len(vals) < 3 {
		return 0, 0, 0, fmt.Errorf("unexpected reply of %d values", len(vals))
	}
	status, ok1 := vals[0].(int64)
	idx, ok2 := vals[1].(int64)
	picked, ok3 := vals[2].(int64)
	scopeFailed := status >= 1 && status <= 4
	switch {
	case !ok1 || !ok2 || !ok3 || status < 0 || status > 5 || idx < 0 || idx > int64(len(cs)) || scopeFailed != (idx != 0):
		return 0, 0, 0, fmt.Errorf("unexpected reply status %v", vals[:3])
	case picked < 0 || picked > int64(len(dcs)) || (status == 0 && len(dcs) > 0) != (picked != 0) || (status == 5 && len(dcs) == 0):
		return 0, 0, 0, fmt.Errorf("unexpected reply status %v", vals[:3])
	}
	want := 3 + 6*len(cs)
	if !scopeFailed {
		want += 5 * len(dcs)
	}
	if len(vals) != want {
		return 0, 0, 0, fmt.Errorf("unexpected reply of %d values, want %d", len(vals), want)
	}
	for i := range cs {
		v := vals[3+6*i:]
		if err := parseCounts(v[:5], &cs[i]); err != nil {
			return 0, 0, 0, err
		}
		s, isStr := v[5].(string)
		f, err := strconv.ParseFloat(s, 64)
		if !isStr || err != nil {
			return 0, 0, 0, fmt.Errorf("unexpected spend %v", v[5])
		}
		cs[i].spend = f
	}
	if !scopeFailed {
		for i := range dcs {
			if err := parseCounts(vals[3+6*len(cs)+5*i:][:5], &dcs[i]); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	return status, idx, picked, nil
}

// parseCounts reads cur req, prev req, cur tok, prev tok and slots in use.
func parseCounts(v []any, c *counts) error {
	var ok [5]bool
	c.curReq, ok[0] = v[0].(int64)
	c.prevReq, ok[1] = v[1].(int64)
	c.curTok, ok[2] = v[2].(int64)
	c.prevTok, ok[3] = v[3].(int64)
	c.parallel, ok[4] = v[4].(int64)
	if ok != [5]bool{true, true, true, true, true} {
		return fmt.Errorf("unexpected reply %v", v)
	}
	return nil
}

// settle implements settler. A degraded admission settles locally and
// queues its spend for Redis; a Redis admission settles in Redis, and if
// that fails its spend and slot releases are queued.
func (l *RedisLimiter) settle(ctx context.Context, a *Admission, o Outcome) error {
	now := l.cfg.Clock()
	if a.degrade {
		if err := l.mem.settle(ctx, a, o); err != nil {
			return err
		}
		l.queueSettle(a, o.Cost, now)
		return nil
	}
	if now.UnixNano() >= l.downUntil.Load() {
		err := l.settleRedis(ctx, a, false, o, now)
		if err == nil {
			return nil
		}
		l.down(ctx, err)
	}
	// Count the spend locally too, so budget checks while degraded see it.
	l.mem.addSpend(a.scopes, o.Cost, now)
	l.queueSettle(a, o.Cost, now)
	return nil
}

// settleRedis ends a's request with outcome o, or with rollback undoes its
// admission: one request and the estimate taken back, no cost.
func (l *RedisLimiter) settleRedis(ctx context.Context, a *Admission, rollback bool, o Outcome, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	costArg, reqDelta := "", 0
	switch {
	case rollback:
		reqDelta = -1
	case o.Cost > 0:
		costArg = strconv.FormatFloat(o.Cost, 'f', -1, 64)
	}
	for _, g := range l.groups(len(a.scopes), false) {
		scopes := a.scopes[g.lo:g.hi]
		keys := make([]string, 0, 3*len(scopes))
		args := make([]any, 0, 2+5*len(scopes))
		args = append(args, a.member, reqDelta)
		starts := make([]time.Time, len(scopes))
		for i := range scopes {
			s := &scopes[i]
			spendName, start, ttl := l.spendKey(s, a.group, now)
			starts[i] = start
			keys = append(keys, l.rateKey(s, a.group, a.window), l.base(s, a.group)+":par", spendName)
			c := ""
			if !s.budget.IsZero() {
				c = costArg
			}
			tokDelta := -a.est
			if !rollback {
				tokDelta += s.tokensOf(o)
			}
			args = append(args, flag(s.rated()), flag(s.limits.MaxParallel > 0), c, ttl, tokDelta)
		}
		vals, err := l.settleScr.Run(ctx, l.c, keys, args...).StringSlice()
		if err != nil {
			return fmt.Errorf("redis settle script: %w", err)
		}
		for i, v := range vals {
			if v == "" || i >= len(scopes) {
				continue
			}
			if spend, err := strconv.ParseFloat(v, 64); err == nil {
				l.observe(&scopes[i], starts[i], spend, o.Cost)
			}
		}
	}
	return nil
}

// observe records a spend total Redis returned and reports a soft-budget
// crossing.
func (l *RedisLimiter) observe(s *scope, start time.Time, spend, cost float64) {
	l.mem.observeSpend(s, start, spend)
	if softCrossed(s.budget, spend, cost) && l.cfg.OnSoftBudget != nil {
		l.cfg.OnSoftBudget(SoftBudgetEvent{s.kind, s.id, *s.budget.Soft, spend, start})
	}
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// queueSettle keeps what must reach Redis later: spend and slot releases.
// Token corrections are not queued; a window lives two minutes, so a late
// correction would mostly land in a dead window.
func (l *RedisLimiter) queueSettle(a *Admission, cost float64, now time.Time) {
	for i := range a.scopes {
		s := &a.scopes[i]
		if !a.degrade && s.limits.MaxParallel > 0 {
			l.q.addRelease(l.base(s, a.group)+":par", a.member)
		}
		if cost > 0 && !s.budget.IsZero() {
			name, start, ttl := l.spendKey(s, a.group, now)
			if !l.q.addSpend(name, queuedSpend{amount: cost, ttl: ttl, scope: *s, start: start}) {
				l.cfg.Logger.LogAttrs(context.Background(), slog.LevelError, "spend queue full; spend update dropped",
					slog.String("scope", string(s.kind)), slog.String("scope_id", s.id), slog.Float64("cost_usd", cost))
			}
		}
	}
}

func (l *RedisLimiter) down(ctx context.Context, err error) {
	l.redisErrs.Add(1)
	l.downUntil.Store(l.cfg.Clock().Add(l.cfg.RetryInterval).UnixNano())
	if !l.degraded.Swap(true) {
		l.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "redis unreachable; rate limits use per-replica counters or fail closed",
			slog.String("failure_mode", string(l.cfg.Failure)), slog.String("error", err.Error()))
	}
}

func (l *RedisLimiter) up(ctx context.Context) {
	if l.degraded.Swap(false) {
		l.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "redis reachable again; rate limits shared across replicas",
			slog.Int("queued_updates", l.q.len()))
	}
}

// Run flushes queued updates every RetryInterval until ctx ends, probing
// Redis while it is marked down.
func (l *RedisLimiter) Run(ctx context.Context) error {
	t := time.NewTicker(l.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if l.degraded.Load() || l.q.len() > 0 {
				if err := l.Flush(ctx); err == nil {
					l.up(ctx)
				}
			}
		}
	}
}

// Close flushes queued updates, for shutdown; it returns an error if some
// could not be written before ctx ended.
func (l *RedisLimiter) Close(ctx context.Context) error {
	for {
		err := l.Flush(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("close limiter: %d updates not written: %w", l.q.len(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Flush writes queued updates to Redis in one pipeline; updates that fail
// go back in the queue. An empty queue still pings Redis, so Flush doubles
// as the health probe.
func (l *RedisLimiter) Flush(ctx context.Context) error {
	spends, releases := l.q.take()
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout*5)
	defer cancel()
	type spendCmd struct {
		name string
		q    queuedSpend
		cmd  *redis.FloatCmd
	}
	sc := make([]spendCmd, 0, len(spends))
	rc := make(map[[2]string]*redis.IntCmd, len(releases))
	_, err := l.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Ping(ctx)
		for name, q := range spends {
			sc = append(sc, spendCmd{name, q, p.IncrByFloat(ctx, name, q.amount)})
			if q.ttl > 0 {
				p.Expire(ctx, name, time.Duration(q.ttl)*time.Second)
			}
		}
		for r := range releases {
			rc[r] = p.ZRem(ctx, r[0], r[1])
		}
		return nil
	})
	failedSpends := map[string]queuedSpend{}
	failedReleases := map[[2]string]struct{}{}
	for _, s := range sc {
		if s.cmd.Err() != nil {
			failedSpends[s.name] = s.q
			continue
		}
		l.q.flushed.Add(1)
		l.observe(&s.q.scope, s.q.start, s.cmd.Val(), s.q.amount)
	}
	for r, cmd := range rc {
		if cmd.Err() != nil {
			failedReleases[r] = struct{}{}
			continue
		}
		l.q.flushed.Add(1)
	}
	l.q.restore(failedSpends, failedReleases)
	if err != nil {
		l.down(ctx, err)
		return fmt.Errorf("flush limiter queue (%d updates kept): %w", len(failedSpends)+len(failedReleases), err)
	}
	return nil
}
