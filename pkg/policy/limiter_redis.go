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
// atomically. KEYS, 4 per scope: current window hash, previous window hash,
// parallel-slot zset, spend counter. ARGV: now ms, window ms, tokens, slot
// lease ms, slot member, then 4 per scope: rpm, tpm, max parallel, max
// budget (-1: none). Returns {status, failing scope (1-based)} then 6 per
// scope: cur req, prev req, cur tok, prev tok, slots in use, spend; status
// 0 admits, anything else rejects and changes nothing.
const admitScript = `
local now, win, tok, lease, member = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local n = #KEYS / 4
local w = (win - now % win) / win
local out = {0, 0}
for i = 0, n - 1 do
  local k, a = i * 4, 5 + i * 4
  local rpm, tpm, mp, mb = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3]), tonumber(ARGV[a+4])
  local cr, pr, ct, pt, par, spend = 0, 0, 0, 0, 0, '0'
  if rpm > 0 or tpm > 0 then
    local c = redis.call('HMGET', KEYS[k+1], 'r', 't')
    local p = redis.call('HMGET', KEYS[k+2], 'r', 't')
    cr, ct, pr, pt = tonumber(c[1] or 0), tonumber(c[2] or 0), tonumber(p[1] or 0), tonumber(p[2] or 0)
  end
  if mp > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k+3], '-inf', now - lease)
    par = redis.call('ZCARD', KEYS[k+3])
  end
  if mb >= 0 then spend = redis.call('GET', KEYS[k+4]) or '0' end
  for _, v in ipairs({cr, pr, ct, pt, par, spend}) do out[#out+1] = v end
  if out[1] == 0 then
    local rused, tused = pr * w + cr, pt * w + ct
    if rpm > 0 and rused + 1 > rpm then out[1] = 1
    elseif tpm > 0 and (tused + tok > tpm or (tok == 0 and tused >= tpm)) then out[1] = 2
    elseif mp > 0 and par >= mp then out[1] = 3
    elseif mb >= 0 and tonumber(spend) >= mb then out[1] = 4 end
    if out[1] ~= 0 then out[2] = i + 1 end
  end
end
if out[1] ~= 0 then return out end
for i = 0, n - 1 do
  local k, a = i * 4, 5 + i * 4
  if tonumber(ARGV[a+1]) > 0 or tonumber(ARGV[a+2]) > 0 then
    redis.call('HINCRBY', KEYS[k+1], 'r', 1)
    redis.call('HINCRBY', KEYS[k+1], 't', tok)
    redis.call('PEXPIRE', KEYS[k+1], win * 2)
  end
  if tonumber(ARGV[a+3]) > 0 then
    redis.call('ZADD', KEYS[k+3], now, member)
    redis.call('PEXPIRE', KEYS[k+3], lease)
  end
end
return out
`

// settleScript ends (or rolls back) one request in a group of scopes.
// KEYS, 3 per scope: the window hash the request was counted in, the
// parallel-slot zset, the spend counter. ARGV: member, request delta,
// token delta, then 4 per scope: rated (1/0), holds a slot (1/0), cost
// ("" for none), spend TTL seconds (0: none). A window that already
// expired is not recreated. Returns the new spend per scope ("" if none).
const settleScript = `
local member, rd, td = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = #KEYS / 3
local out = {}
for i = 0, n - 1 do
  local k, a = i * 3, 3 + i * 4
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

func (l *RedisLimiter) base(s *scope) string {
	return l.cfg.Prefix + ":{rl:" + string(s.kind) + ":" + s.id + "}"
}

func (l *RedisLimiter) rateKey(s *scope, window int64) string {
	return l.base(s) + ":" + strconv.FormatInt(window, 10)
}

// spendKey names the counter of s's budget window holding now, and how
// long it must live.
func (l *RedisLimiter) spendKey(s *scope, now time.Time) (name string, start time.Time, ttl int64) {
	if s.budget.Duration.IsZero() {
		return l.base(s) + ":spend:total", time.Unix(0, 0).UTC(), 0
	}
	start, end := s.budget.Duration.Window(now)
	ttl = int64(end.Sub(now)/time.Second) + 3600
	return l.base(s) + ":spend:" + s.budget.Duration.String() + ":" + strconv.FormatInt(start.Unix(), 10), start, ttl
}

// groups splits scopes into script calls: one call in standalone Redis; one
// per scope in a Cluster, where each scope's keys share a hash tag but
// different scopes live in different slots.
func (l *RedisLimiter) groups(n int) [][2]int {
	if !l.cluster {
		return [][2]int{{0, n}}
	}
	g := make([][2]int, n)
	for i := range g {
		g[i] = [2]int{i, i + 1}
	}
	return g
}

// Admit implements Limiter.
func (l *RedisLimiter) Admit(ctx context.Context, r Request) (*Admission, error) {
	scopes := scopesOf(r)
	if len(scopes) == 0 {
		return &Admission{}, nil
	}
	now := l.cfg.Clock()
	if now.UnixNano() < l.downUntil.Load() {
		return l.fallback(scopes, r.EstimatedTokens)
	}
	a, err := l.admitRedis(ctx, scopes, r.EstimatedTokens, now)
	var le *LimitError
	var be *BudgetError
	if err == nil || errors.As(err, &le) || errors.As(err, &be) {
		l.up(ctx)
		return a, err
	}
	if ctx.Err() != nil {
		// The caller gave up (client abort); Redis is not to blame.
		return nil, fmt.Errorf("admit: %w", ctx.Err())
	}
	l.down(ctx, err)
	return l.fallback(scopes, r.EstimatedTokens)
}

func (l *RedisLimiter) fallback(scopes []scope, tokens int64) (*Admission, error) {
	if l.cfg.Failure == FailClosed {
		l.failClosed.Add(1)
		return nil, fmt.Errorf("%w: rate limits cannot be checked and failure mode is fail_closed", ErrUnavailable)
	}
	l.degradedAdmits.Add(1)
	a, err := l.mem.admit(scopes, tokens)
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

func (l *RedisLimiter) admitRedis(ctx context.Context, scopes []scope, tokens int64, now time.Time) (*Admission, error) {
	nowMs := now.UnixMilli()
	win := windowStart(nowMs)
	a := &Admission{s: l, scopes: scopes, est: tokens, window: win, member: l.replica + ":" + strconv.FormatUint(l.seq.Add(1), 36)}
	groups := l.groups(len(scopes))
	res := make([]groupResult, len(groups))
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	run := func(gi int) {
		lo, hi := groups[gi][0], groups[gi][1]
		keys := make([]string, 0, 4*(hi-lo))
		args := make([]any, 0, 5+4*(hi-lo))
		args = append(args, nowMs, rateWindow, tokens, l.cfg.SlotLease.Milliseconds(), a.member)
		for i := lo; i < hi; i++ {
			s := &scopes[i]
			spendName, _, _ := l.spendKey(s, now)
			keys = append(keys, l.rateKey(s, win), l.rateKey(s, win-rateWindow), l.base(s)+":par", spendName)
			maxBudget := "-1"
			if s.budget.Max != nil {
				maxBudget = strconv.FormatFloat(*s.budget.Max, 'f', -1, 64)
			}
			args = append(args, s.limits.RPM, s.limits.TPM, s.limits.MaxParallel, maxBudget)
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
	var failErr error
	var admitted [][2]int
	for gi, r := range res {
		var status, idx int64
		if r.err == nil {
			status, idx, r.err = parseAdmit(r.vals, cs[groups[gi][0]:groups[gi][1]])
		}
		if r.err != nil {
			failErr = errors.Join(failErr, fmt.Errorf("redis rate limit script: %w", r.err))
			continue
		}
		if status == 0 {
			admitted = append(admitted, groups[gi])
			continue
		}
		if failErr == nil {
			i := groups[gi][0] + int(idx) - 1
			if failErr = scopes[i].check(cs[i], tokens, nowMs, now); failErr == nil {
				failErr = fmt.Errorf("redis rate limit script rejected %s %s with status %d that Go does not reproduce", scopes[i].kind, scopes[i].id, status)
			}
		}
	}
	for i := range scopes {
		if scopes[i].budget.Max != nil {
			_, start, _ := l.spendKey(&scopes[i], now)
			l.mem.observeSpend(&scopes[i], start, cs[i].spend)
		}
	}
	if failErr != nil {
		// Only a Cluster, with several groups, can get here with some
		// groups admitted; undo them so rejected requests count nowhere.
		for _, g := range admitted {
			sub := &Admission{scopes: scopes[g[0]:g[1]], est: tokens, window: win, member: a.member}
			if err := l.settleRedis(context.WithoutCancel(ctx), sub, -1, -tokens, 0, now); err != nil {
				l.queueSettle(sub, 0, now)
			}
		}
		return nil, failErr
	}
	a.Rate = rateInfo(scopes, cs, tokens, nowMs)
	return a, nil
}

// parseAdmit reads the admit script's status, failing scope and counts
// for one group.
func parseAdmit(vals []any, cs []counts) (status, idx int64, err error) {
	if len(vals) != 2+6*len(cs) {
		return 0, 0, fmt.Errorf("unexpected reply of %d values", len(vals))
	}
	status, ok1 := vals[0].(int64)
	idx, ok2 := vals[1].(int64)
	if !ok1 || !ok2 || idx < 0 || idx > int64(len(cs)) || (status == 0) != (idx == 0) {
		return 0, 0, fmt.Errorf("unexpected reply status %v", vals[:2])
	}
	for i := range cs {
		v := vals[2+6*i:]
		var ok [5]bool
		cs[i].curReq, ok[0] = v[0].(int64)
		cs[i].prevReq, ok[1] = v[1].(int64)
		cs[i].curTok, ok[2] = v[2].(int64)
		cs[i].prevTok, ok[3] = v[3].(int64)
		cs[i].parallel, ok[4] = v[4].(int64)
		s, isStr := v[5].(string)
		f, err := strconv.ParseFloat(s, 64)
		if ok != [5]bool{true, true, true, true, true} || !isStr || err != nil {
			return 0, 0, fmt.Errorf("unexpected reply %v", v[:6])
		}
		cs[i].spend = f
	}
	return status, idx, nil
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
	tokDelta := o.Tokens - a.est
	if now.UnixNano() >= l.downUntil.Load() {
		err := l.settleRedis(ctx, a, 0, tokDelta, o.Cost, now)
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

func (l *RedisLimiter) settleRedis(ctx context.Context, a *Admission, reqDelta, tokDelta int64, cost float64, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	costArg := ""
	if cost > 0 {
		costArg = strconv.FormatFloat(cost, 'f', -1, 64)
	}
	for _, g := range l.groups(len(a.scopes)) {
		scopes := a.scopes[g[0]:g[1]]
		keys := make([]string, 0, 3*len(scopes))
		args := make([]any, 0, 3+4*len(scopes))
		args = append(args, a.member, reqDelta, tokDelta)
		starts := make([]time.Time, len(scopes))
		for i := range scopes {
			s := &scopes[i]
			spendName, start, ttl := l.spendKey(s, now)
			starts[i] = start
			keys = append(keys, l.rateKey(s, a.window), l.base(s)+":par", spendName)
			c := ""
			if !s.budget.IsZero() {
				c = costArg
			}
			args = append(args, flag(s.rated()), flag(s.limits.MaxParallel > 0), c, ttl)
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
				l.observe(&scopes[i], starts[i], spend, cost)
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
			l.q.addRelease(l.base(s)+":par", a.member)
		}
		if cost > 0 && !s.budget.IsZero() {
			name, start, ttl := l.spendKey(s, now)
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
