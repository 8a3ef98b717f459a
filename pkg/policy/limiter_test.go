package policy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// limiterBackends runs a test against the memory limiter and the Redis
// limiter. newReplica returns a limiter sharing state with the others the
// test created: the same memory limiter, or a new RedisLimiter with its own
// connection on the same Redis prefix.
func limiterBackends(t *testing.T, cfg LimiterConfig, f func(t *testing.T, newReplica func() Limiter)) {
	t.Run("memory", func(t *testing.T) {
		m := NewMemoryLimiter(cfg)
		f(t, func() Limiter { return m })
	})
	t.Run("redis", func(t *testing.T) {
		_, prefix := redisClient(t)
		c := cfg
		c.Prefix = prefix
		f(t, func() Limiter { return newRedisLimiter(t, newClient(t, sharedRedis.Addr), c) })
	})
}

func newRedisLimiter(t testing.TB, c redis.UniversalClient, cfg LimiterConfig) *RedisLimiter {
	t.Helper()
	l, err := NewRedisLimiter(c, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ptr(f float64) *float64 { return &f }

type step struct {
	tokens    int64
	done      *Outcome // nil keeps the request open
	wantScope ScopeKind
	wantLimit LimitKind // "" with wantScope set means a budget error
}

func TestLimiter_Admit(t *testing.T) {
	team := &Team{ID: "team-a", Limits: Limits{RPM: 2}, Budget: Budget{Max: ptr(1)}}
	finished := &Outcome{Tokens: 10, Cost: 0.5}
	for _, tc := range []struct {
		name  string
		key   Key
		group Limits
		steps []step
	}{
		{"key rpm", Key{ID: "k", Limits: Limits{RPM: 2}}, Limits{}, []step{
			{done: finished}, {done: finished}, {wantScope: ScopeKey, wantLimit: LimitRPM}}},
		{"key tpm on the estimate", Key{ID: "k", Limits: Limits{TPM: 100}}, Limits{}, []step{
			{tokens: 40}, {tokens: 40}, {tokens: 40, wantScope: ScopeKey, wantLimit: LimitTPM}, {tokens: 20}}},
		{"tpm request larger than the limit", Key{ID: "k", Limits: Limits{TPM: 100}}, Limits{}, []step{
			{tokens: 101, wantScope: ScopeKey, wantLimit: LimitTPM}}},
		{"key parallel", Key{ID: "k", Limits: Limits{MaxParallel: 2}}, Limits{}, []step{
			{}, {}, {wantScope: ScopeKey, wantLimit: LimitParallel}}},
		{"team rpm binds before key rpm", Key{ID: "k", Limits: Limits{RPM: 10}, Team: team}, Limits{}, []step{
			{done: finished}, {}, {wantScope: ScopeTeam, wantLimit: LimitRPM}}},
		{"model group rpm", Key{ID: "k"}, Limits{RPM: 1}, []step{
			{}, {wantScope: ScopeModelGroup, wantLimit: LimitRPM}}},
		{"key budget", Key{ID: "k", Budget: Budget{Max: ptr(1)}}, Limits{}, []step{
			{done: &Outcome{Cost: 0.6}}, {done: &Outcome{Cost: 0.6}}, {wantScope: ScopeKey}}},
		{"team budget", Key{ID: "k", Team: &Team{ID: "team-b", Budget: Budget{Max: ptr(1)}}}, Limits{}, []step{
			{done: &Outcome{Cost: 1}}, {wantScope: ScopeTeam}}},
		{"zero budget blocks", Key{ID: "k", Budget: Budget{Max: ptr(0)}}, Limits{}, []step{
			{wantScope: ScopeKey}}},
		{"no limits", Key{ID: "k"}, Limits{}, []step{{}, {}, {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now}, func(t *testing.T, newReplica func() Limiter) {
				l := newReplica()
				for i, s := range tc.steps {
					a, err := l.Admit(t.Context(), Request{Key: &tc.key, ModelGroup: "g", ModelGroupLimits: tc.group, EstimatedTokens: s.tokens})
					var le *LimitError
					var be *BudgetError
					switch {
					case s.wantScope == "" && err != nil:
						t.Fatalf("step %d: %v", i, err)
					case s.wantScope == "":
						if s.done != nil {
							if err := a.Done(t.Context(), *s.done); err != nil {
								t.Fatal(err)
							}
						}
					case s.wantLimit != "":
						if !errors.As(err, &le) || le.Scope != s.wantScope || le.Limit != s.wantLimit || le.RetryAfter < time.Second {
							t.Fatalf("step %d: err = %v, want %s %s limit", i, err, s.wantScope, s.wantLimit)
						}
					default:
						if !errors.As(err, &be) || be.Scope != s.wantScope || be.Spend < be.Max {
							t.Fatalf("step %d: err = %v, want %s budget", i, err, s.wantScope)
						}
					}
				}
			})
		})
	}
}

func TestLimiter_RateInfo(t *testing.T) {
	limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now}, func(t *testing.T, newReplica func() Limiter) {
		k := &Key{ID: "k", Limits: Limits{RPM: 10, TPM: 1000}, Team: &Team{ID: "t", Limits: Limits{TPM: 500}}}
		a, err := newReplica().Admit(t.Context(), Request{Key: k, EstimatedTokens: 100})
		if err != nil {
			t.Fatal(err)
		}
		want := RateInfo{LimitRequests: 10, RemainingRequests: 9, LimitTokens: 500, RemainingTokens: 400}
		if a.Rate != want {
			t.Fatalf("Rate = %+v, want %+v", a.Rate, want)
		}
		a, _ = newReplica().Admit(t.Context(), Request{Key: &Key{ID: "free"}})
		if a.Rate != (RateInfo{}) {
			t.Fatalf("unlimited key Rate = %+v", a.Rate)
		}
	})
}

func TestLimiter_SlidingWindow(t *testing.T) {
	window := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	clock := newFakeClock(window.Add(30 * time.Second))
	limiterBackends(t, LimiterConfig{Clock: clock.Now}, func(t *testing.T, newReplica func() Limiter) {
		clock.Set(window.Add(30 * time.Second))
		l := newReplica()
		k := &Key{ID: "k", Limits: Limits{RPM: 10}}
		admit := func() error { _, err := l.Admit(t.Context(), Request{Key: k}); return err }
		for range 10 {
			if err := admit(); err != nil {
				t.Fatal(err)
			}
		}
		// 15s into the next minute the previous minute still weighs 0.75:
		// 7.5 used, so two more fit.
		clock.Set(window.Add(75 * time.Second))
		for i := range 2 {
			if err := admit(); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		var le *LimitError
		if err := admit(); !errors.As(err, &le) || le.RetryAfter != 3*time.Second {
			t.Fatalf("third request: %v, want a 3s retry-after (10*0.7+2+1 fits at 18s)", err)
		}
		clock.Set(window.Add(78 * time.Second))
		if err := admit(); err != nil {
			t.Fatalf("after retry-after: %v", err)
		}
	})
}

func TestLimiter_TokenCorrection(t *testing.T) {
	limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now}, func(t *testing.T, newReplica func() Limiter) {
		l := newReplica()
		k := &Key{ID: "k", Limits: Limits{TPM: 100}}
		for _, s := range []struct{ est, real int64 }{{50, 10}, {50, 10}, {80, 80}} {
			a, err := l.Admit(t.Context(), Request{Key: k, EstimatedTokens: s.est})
			if err != nil {
				t.Fatalf("estimate %d after corrections: %v", s.est, err)
			}
			_ = a.Done(t.Context(), Outcome{Tokens: s.real})
		}
		if _, err := l.Admit(t.Context(), Request{Key: k, EstimatedTokens: 1}); err == nil {
			t.Fatal("100 real tokens used, yet another request fits")
		}
	})
}

func TestAdmission_DoneOnEveryEnding(t *testing.T) {
	limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now}, func(t *testing.T, newReplica func() Limiter) {
		l := newReplica()
		k := &Key{ID: "k", Limits: Limits{MaxParallel: 1, TPM: 1_000_000}}
		aborted, cancel := context.WithCancel(t.Context())
		cancel()
		for _, end := range []struct {
			name string
			ctx  context.Context
			o    Outcome
		}{
			{"normal end", t.Context(), Outcome{Tokens: 120, Cost: 0.01}},
			{"client abort", aborted, Outcome{Tokens: 30}},
			{"provider failure", t.Context(), Outcome{}},
		} {
			t.Run(end.name, func(t *testing.T) {
				a, err := l.Admit(t.Context(), Request{Key: k, EstimatedTokens: 100})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.Admit(t.Context(), Request{Key: k}); err == nil {
					t.Fatal("second request admitted while the slot is held")
				}
				if err := a.Done(end.ctx, end.o); err != nil {
					t.Fatal(err)
				}
				if err := a.Done(end.ctx, end.o); err != nil {
					t.Fatal(err)
				}
				b, err := l.Admit(t.Context(), Request{Key: k})
				if err != nil {
					t.Fatalf("slot not released: %v", err)
				}
				_ = b.Done(t.Context(), Outcome{})
			})
		}
		// A second Done must not release a slot someone else now holds.
		a, _ := l.Admit(t.Context(), Request{Key: k})
		_ = a.Done(t.Context(), Outcome{})
		held, err := l.Admit(t.Context(), Request{Key: k})
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Done(t.Context(), Outcome{})
		if _, err := l.Admit(t.Context(), Request{Key: k}); err == nil {
			t.Fatal("a repeated Done released another request's slot")
		}
		_ = held.Done(t.Context(), Outcome{})
	})
}

func TestLimiter_BudgetReset(t *testing.T) {
	for _, tc := range []struct {
		dur         string
		spendAt     time.Time
		resetAt     time.Time
		beforeReset time.Duration
	}{
		{"daily", time.Date(2026, 11, 24, 23, 59, 0, 0, time.UTC), time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), time.Second},
		{"weekly", time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), time.Second},
		{"monthly", time.Date(2026, 12, 31, 8, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Second},
		{"12h", time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), time.Second},
	} {
		t.Run(tc.dur, func(t *testing.T) {
			clock := newFakeClock(tc.spendAt)
			limiterBackends(t, LimiterConfig{Clock: clock.Now}, func(t *testing.T, newReplica func() Limiter) {
				clock.Set(tc.spendAt)
				d, _ := ParseBudgetDuration(tc.dur)
				l := newReplica()
				k := &Key{ID: "k", Budget: Budget{Max: ptr(2), Duration: d}}
				a, err := l.Admit(t.Context(), Request{Key: k})
				if err != nil {
					t.Fatal(err)
				}
				_ = a.Done(t.Context(), Outcome{Cost: 2.5})
				clock.Set(tc.resetAt.Add(-tc.beforeReset))
				var be *BudgetError
				if _, err := l.Admit(t.Context(), Request{Key: k}); !errors.As(err, &be) || !be.ResetAt.Equal(tc.resetAt) || be.Spend != 2.5 {
					t.Fatalf("just before the reset: %v (reset %v)", err, be)
				}
				clock.Set(tc.resetAt)
				if _, err := l.Admit(t.Context(), Request{Key: k}); err != nil {
					t.Fatalf("at the reset: %v", err)
				}
			})
		})
	}
}

func TestLimiter_SoftBudget(t *testing.T) {
	var events []SoftBudgetEvent
	var mu sync.Mutex
	cfg := LimiterConfig{Clock: newFakeClock(t0).Now, OnSoftBudget: func(e SoftBudgetEvent) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}}
	limiterBackends(t, cfg, func(t *testing.T, newReplica func() Limiter) {
		mu.Lock()
		events = nil
		mu.Unlock()
		k := &Key{ID: "k", Budget: Budget{Soft: ptr(1)}, Team: &Team{ID: "t", Budget: Budget{Soft: ptr(10)}}}
		for range 4 {
			a, err := newReplica().Admit(t.Context(), Request{Key: k})
			if err != nil {
				t.Fatal(err)
			}
			_ = a.Done(t.Context(), Outcome{Cost: 0.5})
		}
		mu.Lock()
		defer mu.Unlock()
		if len(events) != 1 || events[0].Scope != ScopeKey || events[0].Spend != 1 || events[0].Soft != 1 {
			t.Fatalf("events = %+v, want one key crossing at 1.0", events)
		}
	})
}

// TestRedisLimiter_SharedAcrossReplicas runs two replicas with their own
// connections against one Redis under concurrent load and checks that the
// fleet as a whole stays within 5% of one RPM and one TPM limit.
func TestRedisLimiter_SharedAcrossReplicas(t *testing.T) {
	for _, tc := range []struct {
		name     string
		limits   Limits
		est      int64
		real     func(i int64) int64
		measured func(admitted, tokens int64) int64
		limit    int64
	}{
		{"rpm", Limits{RPM: 300}, 0, func(int64) int64 { return 0 },
			func(admitted, _ int64) int64 { return admitted }, 300},
		{"tpm", Limits{TPM: 30_000}, 100, func(i int64) int64 { return 80 + i%41 },
			func(_, tokens int64) int64 { return tokens }, 30_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, prefix := redisClient(t)
			cfg := LimiterConfig{Clock: newFakeClock(t0).Now, Prefix: prefix}
			replicas := []*RedisLimiter{
				newRedisLimiter(t, newClient(t, sharedRedis.Addr), cfg),
				newRedisLimiter(t, newClient(t, sharedRedis.Addr), cfg),
			}
			k := &Key{ID: "shared", Limits: tc.limits}
			var admitted, tokens, n atomic.Int64
			var wg sync.WaitGroup
			for w := range 8 {
				l := replicas[w%2]
				wg.Go(func() {
					for range 120 {
						a, err := l.Admit(t.Context(), Request{Key: k, EstimatedTokens: tc.est})
						if err != nil {
							continue
						}
						real := tc.real(n.Add(1))
						admitted.Add(1)
						tokens.Add(real)
						_ = a.Done(t.Context(), Outcome{Tokens: real})
					}
				})
			}
			wg.Wait()
			got := tc.measured(admitted.Load(), tokens.Load())
			if got > tc.limit*105/100 || got < tc.limit*95/100 {
				t.Fatalf("fleet used %d against a limit of %d (beyond 5%%)", got, tc.limit)
			}
			for _, r := range replicas {
				if s := r.Stats(); s.RedisErrors != 0 || s.DegradedAdmits != 0 {
					t.Fatalf("replica degraded during the test: %+v", s)
				}
			}
			t.Logf("fleet used %d of %d", got, tc.limit)
		})
	}
}

// TestRedisLimiter_SlidingAcrossReplicas keeps two replicas saturating one
// RPM limit for three minutes of fake time and checks every rolling 60s
// span: the fleet never admits more than 5% over the limit, and in steady
// state no less than 5% under it.
func TestRedisLimiter_SlidingAcrossReplicas(t *testing.T) {
	_, prefix := redisClient(t)
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	clock := newFakeClock(start)
	cfg := LimiterConfig{Clock: clock.Now, Prefix: prefix}
	replicas := []*RedisLimiter{
		newRedisLimiter(t, newClient(t, sharedRedis.Addr), cfg),
		newRedisLimiter(t, newClient(t, sharedRedis.Addr), cfg),
	}
	const limit, step, steps = 120, 500 * time.Millisecond, 360
	k := &Key{ID: "sliding", Limits: Limits{RPM: limit}}
	admitted := make([]int64, steps)
	for i := range steps {
		clock.Set(start.Add(time.Duration(i) * step))
		var n atomic.Int64
		var wg sync.WaitGroup
		for w := range 4 {
			l := replicas[w%2]
			wg.Go(func() {
				for range 2 {
					if _, err := l.Admit(t.Context(), Request{Key: k}); err == nil {
						n.Add(1)
					}
				}
			})
		}
		wg.Wait()
		admitted[i] = n.Load()
	}
	perMinute := int(time.Minute / step)
	var worst, lastMinute int64
	for i := 0; i+perMinute <= steps; i++ {
		var sum int64
		for _, v := range admitted[i : i+perMinute] {
			sum += v
		}
		worst = max(worst, sum)
		lastMinute = sum
	}
	if worst > limit*105/100 || lastMinute < limit*95/100 {
		t.Fatalf("rolling 60s counts: worst %d, last minute %d; limit %d", worst, lastMinute, limit)
	}
	t.Logf("rolling 60s counts: worst %d, last minute %d; limit %d", worst, lastMinute, limit)
}
