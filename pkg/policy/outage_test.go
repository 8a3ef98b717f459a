package policy

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/policy/redistest"
)

// replica is one gateway process's policy objects on its own connection.
type replica struct {
	auth *Authenticator
	lim  *RedisLimiter
}

// loadResult counts what a burst of requests saw.
type loadResult struct {
	ok, authErr, limitErr, unavailable atomic.Int64
	cost                               atomic.Int64 // quarter-dollars, so sums are exact
}

// load sends requests from 4 workers through both replicas for d; every
// admitted request ends with Done and a cost of $0.25.
func load(t *testing.T, reps []*replica, secret string, d time.Duration) *loadResult {
	var res loadResult
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range 4 {
		r := reps[w%len(reps)]
		wg.Go(func() {
			for time.Now().Before(stop) {
				k, err := r.auth.Authenticate(t.Context(), secret)
				if err != nil {
					if res.authErr.Add(1) == 1 {
						t.Log("first auth error:", err)
					}
					continue
				}
				a, err := r.lim.Admit(t.Context(), Request{Key: k, EstimatedTokens: 10})
				switch {
				case errors.Is(err, ErrUnavailable):
					res.unavailable.Add(1)
					continue
				case err != nil:
					res.limitErr.Add(1)
					continue
				}
				res.ok.Add(1)
				res.cost.Add(1)
				_ = a.Done(t.Context(), Outcome{Tokens: 10, Cost: 0.25})
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	return &res
}

// TestRedisOutage kills Redis during load and restarts it: keys keep
// working from the cache, limits degrade to per-replica counters (or fail
// closed), and spend recorded meanwhile reaches Redis after the restart.
func TestRedisOutage(t *testing.T) {
	for _, mode := range []FailureMode{FailDegrade, FailClosed} {
		t.Run(string(mode), func(t *testing.T) {
			srv, err := redistest.Start()
			if errors.Is(err, redistest.ErrNoBinary) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()

			max := 1000.0
			team := &Team{ID: "t", Limits: Limits{RPM: 100_000}, Budget: Budget{Max: &max, Duration: BudgetDuration{1, unitDay}}}
			secret, _ := GenerateSecret(nil)
			rec := NewKeyRecord(secret, time.Now())
			rec.TeamID, rec.Limits, rec.Budget = "t", Limits{RPM: 100_000, MaxParallel: 50}, team.Budget
			seed := func() {
				s := newRedisStore(t, newClient(t, srv.Addr), RedisStoreConfig{})
				if err := s.PutTeam(ctx, team); err != nil {
					t.Fatal(err)
				}
				if err := s.PutKey(ctx, rec); err != nil {
					t.Fatal(err)
				}
			}
			seed()

			var reps []*replica
			for range 2 {
				c := newClient(t, srv.Addr)
				r := &replica{
					auth: NewAuthenticator(AuthConfig{Store: newRedisStore(t, c, RedisStoreConfig{Timeout: 50 * time.Millisecond}), CacheTTL: 20 * time.Millisecond}),
					lim:  newRedisLimiter(t, c, LimiterConfig{Failure: mode, Timeout: 50 * time.Millisecond, RetryInterval: 50 * time.Millisecond}),
				}
				go func() { _ = r.auth.Run(ctx) }()
				go func() { _ = r.lim.Run(ctx) }()
				reps = append(reps, r)
			}

			if res := load(t, reps, secret, 100*time.Millisecond); res.ok.Load() == 0 || res.authErr.Load()+res.limitErr.Load()+res.unavailable.Load() != 0 {
				t.Fatalf("before the outage: ok %d, auth errors %d, limit errors %d, unavailable %d",
					res.ok.Load(), res.authErr.Load(), res.limitErr.Load(), res.unavailable.Load())
			}

			srv.Kill()
			during := load(t, reps, secret, 200*time.Millisecond)
			if during.authErr.Load() != 0 {
				t.Fatalf("%d requests lost their key while Redis was down", during.authErr.Load())
			}
			switch mode {
			case FailDegrade:
				if during.ok.Load() == 0 || during.unavailable.Load() != 0 {
					t.Fatalf("degrade mode during the outage: ok %d, unavailable %d", during.ok.Load(), during.unavailable.Load())
				}
				if s := reps[0].lim.Stats(); !s.Degraded || s.DegradedAdmits == 0 || s.SpendQueued == 0 || s.RedisErrors == 0 {
					t.Fatalf("stats during the outage: %+v", s)
				}
				// Limits still hold, per replica.
				tight := &Key{ID: "tight", Limits: Limits{MaxParallel: 1}}
				a, err := reps[0].lim.Admit(ctx, Request{Key: tight})
				if err != nil {
					t.Fatal(err)
				}
				var le *LimitError
				if _, err := reps[0].lim.Admit(ctx, Request{Key: tight}); !errors.As(err, &le) {
					t.Fatalf("degraded limiter ignored a limit: %v", err)
				}
				_ = a.Done(ctx, Outcome{})
			case FailClosed:
				if during.ok.Load() != 0 || during.unavailable.Load() == 0 || reps[0].lim.Stats().FailClosedRejects == 0 {
					t.Fatalf("fail_closed during the outage: ok %d, unavailable %d", during.ok.Load(), during.unavailable.Load())
				}
			}

			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			seed() // a production Redis persists its data; this one starts empty
			for _, r := range reps {
				waitFor(t, 2*time.Second, func() bool { _, err := r.auth.Authenticate(ctx, secret); return err == nil })
			}
			after := load(t, reps, secret, 100*time.Millisecond)
			if after.ok.Load() == 0 || after.unavailable.Load() != 0 {
				t.Fatalf("after the restart: ok %d, unavailable %d, auth errors %d, limit errors %d", after.ok.Load(), after.unavailable.Load(), after.authErr.Load(), after.limitErr.Load())
			}
			for _, r := range reps {
				waitFor(t, 3*time.Second, func() bool { s := r.lim.Stats(); return s.QueueLen == 0 && !s.Degraded })
			}

			// Everything spent since the kill (the data before it died with
			// the process) must be in Redis.
			want := float64(during.cost.Load()+after.cost.Load()) * 0.25
			c := newClient(t, srv.Addr)
			for _, s := range []scope{{kind: ScopeKey, id: rec.ID, budget: rec.Budget}, {kind: ScopeTeam, id: "t", budget: team.Budget}} {
				name, _, _ := reps[0].lim.spendKey(&s, "", time.Now())
				v, err := c.Get(ctx, name).Result()
				if err != nil {
					t.Fatalf("%s spend: %v", s.kind, err)
				}
				if got, _ := strconv.ParseFloat(v, 64); got != want {
					t.Fatalf("%s spend in Redis = %v, want %v (outage %d requests, after %d)", s.kind, got, want, during.cost.Load(), after.cost.Load())
				}
			}
			s := reps[0].lim.Stats()
			t.Logf("outage: %d ok / %d unavailable; stats %+v", during.ok.Load(), during.unavailable.Load(), s)
			if s.SpendDropped != 0 {
				t.Fatalf("spend dropped: %+v", s)
			}
		})
	}
}

// TestRedisSlow pauses Redis (CLIENT PAUSE) so calls hang rather than
// fail: the per-call deadlines must keep the request path fast, with keys
// from the cache and limits degraded.
func TestRedisSlow(t *testing.T) {
	c, prefix := redisClient(t)
	ctx := t.Context()
	store := newRedisStore(t, c, RedisStoreConfig{Prefix: prefix})
	secret, _ := putKey(t, store, nil)
	clock := newFakeClock(t0)
	auth := NewAuthenticator(AuthConfig{Store: store, Clock: clock.Now, StoreTimeout: 50 * time.Millisecond})
	lim := newRedisLimiter(t, c, LimiterConfig{Prefix: prefix, Timeout: 50 * time.Millisecond})
	if _, err := auth.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute) // the cached entry is due for a refetch

	admin := newClient(t, sharedRedis.Addr)
	// The pause is far longer than the deadlines, so the bound below tells
	// applied deadlines from a wait on Redis even on a loaded machine.
	if err := admin.Do(ctx, "CLIENT", "PAUSE", 3000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Do(context.WithoutCancel(ctx), "CLIENT", "UNPAUSE")
	start := time.Now()
	k, err := auth.Authenticate(ctx, secret)
	if err != nil {
		t.Fatalf("cached key while Redis hangs: %v", err)
	}
	a, err := lim.Admit(ctx, Request{Key: &Key{ID: k.ID, Limits: Limits{RPM: 10}}})
	if err != nil {
		t.Fatalf("admit while Redis hangs: %v", err)
	}
	_ = a.Done(ctx, Outcome{})
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("request path took %v while Redis hung; deadlines not applied", d)
	}
	if !lim.Stats().Degraded || auth.Stats().StaleServed != 1 {
		t.Fatalf("stats: limiter %+v, auth %+v", lim.Stats(), auth.Stats())
	}
}

// TestRedisOutage_BudgetWhileDegraded checks that a degraded replica still
// enforces budgets from the spend it last saw in Redis plus its own.
func TestRedisOutage_BudgetWhileDegraded(t *testing.T) {
	srv, err := redistest.Start()
	if errors.Is(err, redistest.ErrNoBinary) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := t.Context()
	l := newRedisLimiter(t, newClient(t, srv.Addr), LimiterConfig{Clock: newFakeClock(t0).Now, Timeout: 50 * time.Millisecond})
	k := &Key{ID: "k", Budget: Budget{Max: ptr(1), Duration: BudgetDuration{1, unitDay}}}
	spend := func(cost float64) error {
		a, err := l.Admit(ctx, Request{Key: k})
		if err != nil {
			return err
		}
		return a.Done(ctx, Outcome{Cost: cost})
	}
	if err := spend(0.75); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := spend(0.5); err != nil {
		t.Fatalf("degraded admission under budget: %v", err)
	}
	var be *BudgetError
	if err := spend(0.1); !errors.As(err, &be) || be.Spend != 1.25 {
		t.Fatalf("degraded admission over budget: %v", err)
	}
	if s := l.Stats(); !s.Degraded || s.QueueLen != 1 {
		t.Fatalf("stats %+v", s)
	}
}
