package policy

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fixedRand is a Rand that returns the value last stored.
type fixedRand struct{ bits atomic.Uint64 }

func (r *fixedRand) set(v float64) { r.bits.Store(uint64(v * 1e9)) }
func (r *fixedRand) get() float64  { return float64(r.bits.Load()) / 1e9 }

func depReq(key *Key, tokens int64, deps ...DeploymentLimit) Request {
	return Request{Key: key, ModelGroup: "g", EstimatedTokens: tokens, Deployments: deps}
}

// admitTo admits r and returns the picked deployment, or fails the test.
func admitTo(t *testing.T, l Limiter, r Request) (*Admission, string) {
	t.Helper()
	a, err := l.Admit(t.Context(), r)
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	return a, a.Deployment
}

func wantDeploymentsError(t *testing.T, err error, limits ...LimitKind) *DeploymentsError {
	t.Helper()
	var de *DeploymentsError
	if !errors.As(err, &de) || de.ModelGroup != "g" || len(de.Limits) != len(limits) || de.RetryAfter < time.Second {
		t.Fatalf("err = %v, want every deployment of g at its limit", err)
	}
	for i, le := range de.Limits {
		if le.Scope != ScopeDeployment || le.Limit != limits[i] {
			t.Fatalf("deployment %d: %+v, want %s", i, le, limits[i])
		}
	}
	return de
}

func TestLimiter_DeploymentLimits(t *testing.T) {
	free := &Key{ID: "free"}
	t.Run("rpm", func(t *testing.T) {
		limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now}, func(t *testing.T, newReplica func() Limiter) {
			l := newReplica()
			r := depReq(free, 0, DeploymentLimit{ID: "a", Limits: Limits{RPM: 2}}, DeploymentLimit{ID: "b", Limits: Limits{RPM: 1}})
			got := map[string]int{}
			for range 3 {
				a, d := admitTo(t, l, r)
				got[d]++
				_ = a.Done(t.Context(), Outcome{Deployment: d})
			}
			if got["a"] != 2 || got["b"] != 1 {
				t.Fatalf("picks %v, want a twice and b once", got)
			}
			_, err := l.Admit(t.Context(), r)
			de := wantDeploymentsError(t, err, LimitRPM, LimitRPM)
			if !strings.Contains(de.Error(), "model group g") || !strings.Contains(de.Error(), "a reached its rpm of 2") {
				t.Fatalf("message %q names neither the group nor the limit", de.Error())
			}
		})
	})
	t.Run("tpm on the estimate, corrected by the answering deployment only", func(t *testing.T) {
		limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now}, func(t *testing.T, newReplica func() Limiter) {
			l := newReplica()
			r := depReq(free, 40, DeploymentLimit{ID: "a", Limits: Limits{TPM: 100}})
			a1, _ := admitTo(t, l, r)
			a2, _ := admitTo(t, l, r)
			_, err := l.Admit(t.Context(), r)
			wantDeploymentsError(t, err, LimitTPM)
			// A retry answered a2 from another deployment: a's estimate is
			// refunded. a1 answered with more tokens than estimated.
			_ = a2.Done(t.Context(), Outcome{Tokens: 500, Deployment: "elsewhere"})
			_ = a1.Done(t.Context(), Outcome{Tokens: 70, Deployment: "a"})
			if _, err := l.Admit(t.Context(), depReq(free, 30, r.Deployments...)); err != nil {
				t.Fatalf("70 used + 30 of 100: %v", err)
			}
			_, err = l.Admit(t.Context(), depReq(free, 1, r.Deployments...))
			wantDeploymentsError(t, err, LimitTPM)
		})
	})
	t.Run("parallel slots released by Done", func(t *testing.T) {
		limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now}, func(t *testing.T, newReplica func() Limiter) {
			l := newReplica()
			r := depReq(free, 0, DeploymentLimit{ID: "a", Limits: Limits{MaxParallel: 1}}, DeploymentLimit{ID: "b", Limits: Limits{MaxParallel: 1}})
			a1, d1 := admitTo(t, l, r)
			_, d2 := admitTo(t, l, r)
			if d1 == d2 {
				t.Fatalf("both requests pinned to %s, which has one slot", d1)
			}
			_, err := l.Admit(t.Context(), r)
			if de := wantDeploymentsError(t, err, LimitParallel, LimitParallel); de.RetryAfter != time.Second {
				t.Fatalf("retry after %v, want 1s for parallel slots", de.RetryAfter)
			}
			// The client went away: no answering deployment, slot released.
			_ = a1.Done(t.Context(), Outcome{})
			if _, d := admitTo(t, l, r); d != d1 {
				t.Fatalf("picked %s, want %s whose slot was released", d, d1)
			}
		})
	})
	t.Run("unlimited sibling takes the rest", func(t *testing.T) {
		limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now}, func(t *testing.T, newReplica func() Limiter) {
			l := newReplica()
			r := depReq(free, 0, DeploymentLimit{ID: "a", Limits: Limits{RPM: 1}}, DeploymentLimit{ID: "b"})
			got := map[string]int{}
			for range 20 {
				_, d := admitTo(t, l, r)
				got[d]++
			}
			if got["a"] != 1 || got["b"] != 19 {
				t.Fatalf("picks %v, want a once and b for the rest", got)
			}
		})
	})
	t.Run("soonest retry-after", func(t *testing.T) {
		clock := newFakeClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
		limiterBackends(t, LimiterConfig{Clock: clock.Now}, func(t *testing.T, newReplica func() Limiter) {
			clock.Set(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
			l := newReplica()
			rpm := DeploymentLimit{ID: "a", Limits: Limits{RPM: 1}}
			tpm := DeploymentLimit{ID: "b", Limits: Limits{TPM: 100}}
			admitTo(t, l, depReq(free, 0, rpm))
			admitTo(t, l, depReq(free, 100, tpm))
			clock.Add(50 * time.Second)
			_, err := l.Admit(t.Context(), depReq(free, 50, rpm, tpm))
			de := wantDeploymentsError(t, err, LimitRPM, LimitTPM)
			// rpm: the request counted at :00 must weigh less than nothing
			// left, 70s away; tpm: 50 of the 100 tokens must have slid out
			// of the window, at 1:30, 40s away.
			if de.RetryAfter != 40*time.Second || de.Binding().ID != "b" {
				t.Fatalf("retry after %v (binding %+v), want 40s from b", de.RetryAfter, de.Binding())
			}
		})
	})
}

// A rejection by any check counts the request nowhere: not on the
// deployment when a scope rejects, not on the scopes when no deployment
// has capacity.
func TestLimiter_DeploymentRejectionCountsNothing(t *testing.T) {
	limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now}, func(t *testing.T, newReplica func() Limiter) {
		l := newReplica()
		one := DeploymentLimit{ID: "a", Limits: Limits{RPM: 1, MaxParallel: 5}}
		blocked := &Key{ID: "blocked", Budget: Budget{Max: ptr(0)}}
		var be *BudgetError
		if _, err := l.Admit(t.Context(), depReq(blocked, 0, one)); !errors.As(err, &be) {
			t.Fatalf("blocked key: %v", err)
		}
		if _, d := admitTo(t, l, depReq(&Key{ID: "free"}, 0, one)); d != "a" {
			t.Fatalf("picked %q", d)
		}
		limited := &Key{ID: "limited", Limits: Limits{RPM: 1}}
		_, err := l.Admit(t.Context(), depReq(limited, 0, one))
		wantDeploymentsError(t, err, LimitRPM)
		if _, err := l.Admit(t.Context(), Request{Key: limited}); err != nil {
			t.Fatalf("the rejected request was counted on the key: %v", err)
		}
	})
}

func TestLimiter_DeploymentWeights(t *testing.T) {
	rnd := &fixedRand{}
	limiterBackends(t, LimiterConfig{Clock: newFakeClock(t0).Now, Rand: rnd.get}, func(t *testing.T, newReplica func() Limiter) {
		l := newReplica()
		deps := []DeploymentLimit{{ID: "a", Weight: 1, Limits: Limits{RPM: 1}}, {ID: "b", Weight: 3, Limits: Limits{RPM: 100}}, {ID: "c"}}
		// Weights 1, 3 and 1 (zero counts as one): a covers [0, 0.2),
		// b [0.2, 0.8), c [0.8, 1).
		for _, tc := range []struct {
			rnd  float64
			want string
		}{{0.3, "b"}, {0.9, "c"}, {0.1, "a"}, {0.1, "b"}, {0.76, "c"}} {
			rnd.set(tc.rnd)
			if _, d := admitTo(t, l, depReq(&Key{ID: "free"}, 0, deps...)); d != tc.want {
				t.Fatalf("rand %v picked %s, want %s", tc.rnd, d, tc.want)
			}
		}
	})
}

// TestRedisLimiter_DeploymentsSharedAcrossReplicas runs two replicas with
// their own connections against one Redis under concurrent load and checks
// that each deployment's RPM and TPM limit holds for the fleet within 5%.
func TestRedisLimiter_DeploymentsSharedAcrossReplicas(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deps     []DeploymentLimit
		est      int64
		real     func(i int64) int64
		measured func(admitted, tokens int64) int64
	}{
		{"rpm", []DeploymentLimit{{ID: "a", Limits: Limits{RPM: 200}}, {ID: "b", Limits: Limits{RPM: 100}}}, 0,
			func(int64) int64 { return 0 }, func(admitted, _ int64) int64 { return admitted }},
		{"tpm", []DeploymentLimit{{ID: "a", Limits: Limits{TPM: 20_000}}, {ID: "b", Limits: Limits{TPM: 10_000}}}, 100,
			func(i int64) int64 { return 80 + i%41 }, func(_, tokens int64) int64 { return tokens }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, prefix := redisClient(t)
			// A generous deadline: the test is about sharing, and a loaded
			// machine must not push a replica into per-replica counters.
			cfg := LimiterConfig{Clock: newFakeClock(t0).Now, Prefix: prefix, Timeout: 2 * time.Second}
			replicas := []*RedisLimiter{
				newRedisLimiter(t, newClient(t, sharedRedis.Addr), cfg),
				newRedisLimiter(t, newClient(t, sharedRedis.Addr), cfg),
			}
			var mu sync.Mutex
			admitted, tokens := map[string]int64{}, map[string]int64{}
			var n atomic.Int64
			var wg sync.WaitGroup
			for w := range 8 {
				l := replicas[w%2]
				wg.Go(func() {
					for range 100 {
						a, err := l.Admit(t.Context(), depReq(&Key{ID: "k"}, tc.est, tc.deps...))
						if err != nil {
							continue
						}
						real := tc.real(n.Add(1))
						mu.Lock()
						admitted[a.Deployment]++
						tokens[a.Deployment] += real
						mu.Unlock()
						_ = a.Done(t.Context(), Outcome{Tokens: real, Deployment: a.Deployment})
					}
				})
			}
			wg.Wait()
			for _, d := range tc.deps {
				limit := max(d.Limits.RPM, d.Limits.TPM)
				got := tc.measured(admitted[d.ID], tokens[d.ID])
				if got > limit*105/100 || got < limit*95/100 {
					t.Fatalf("deployment %s used %d against a limit of %d (beyond 5%%)", d.ID, got, limit)
				}
				t.Logf("deployment %s used %d of %d (%d requests)", d.ID, got, limit, admitted[d.ID])
			}
			for _, r := range replicas {
				if s := r.Stats(); s.RedisErrors != 0 || s.DegradedAdmits != 0 {
					t.Fatalf("replica degraded during the test: %+v", s)
				}
			}
		})
	}
}

// While Redis is unreachable a degrading replica picks deployments on its
// own counters, with the same rules.
func TestRedisLimiter_DeploymentsWhileDegraded(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	defer c.Close()
	l := newRedisLimiter(t, c, LimiterConfig{Clock: newFakeClock(t0).Now})
	r := depReq(&Key{ID: "k"}, 0, DeploymentLimit{ID: "a", Limits: Limits{MaxParallel: 1}}, DeploymentLimit{ID: "b", Limits: Limits{MaxParallel: 1}})
	a1, d1 := admitTo(t, l, r)
	_, d2 := admitTo(t, l, r)
	if d1 == d2 {
		t.Fatalf("both requests pinned to %s", d1)
	}
	_, err := l.Admit(t.Context(), r)
	wantDeploymentsError(t, err, LimitParallel, LimitParallel)
	_ = a1.Done(t.Context(), Outcome{})
	if _, d := admitTo(t, l, r); d != d1 {
		t.Fatalf("picked %s after its slot was released", d)
	}
	if s := l.Stats(); !s.Degraded || s.DegradedAdmits != 4 {
		t.Fatalf("stats %+v, want 4 degraded admissions", s)
	}
}

// In fail_closed mode a request to a group with hard-limited deployments
// has limits to check, so it gets ErrUnavailable while Redis is down.
func TestRedisLimiter_DeploymentsFailClosed(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	defer c.Close()
	l := newRedisLimiter(t, c, LimiterConfig{Clock: newFakeClock(t0).Now, Failure: FailClosed})
	r := depReq(&Key{ID: "k"}, 0, DeploymentLimit{ID: "a", Limits: Limits{MaxParallel: 1}})
	if _, err := l.Admit(t.Context(), r); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	r.Deployments = nil
	if _, err := l.Admit(t.Context(), r); err != nil {
		t.Fatalf("a request without any limit: %v", err)
	}
}
