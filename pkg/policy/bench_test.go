package policy

import (
	"testing"
)

func BenchmarkAuthenticator_Authenticate(b *testing.B) {
	b.Run("static", func(b *testing.B) {
		static, _ := NewKeys([]StaticKey{{ID: "s", Secret: "sk-static-benchmark-key"}})
		a := NewAuthenticator(AuthConfig{Static: static})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(b.Context(), "sk-static-benchmark-key"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache_hit", func(b *testing.B) {
		s := NewMemoryStore()
		secret, err := GenerateSecret(nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.PutKey(b.Context(), NewKeyRecord(secret, t0)); err != nil {
			b.Fatal(err)
		}
		a := NewAuthenticator(AuthConfig{Store: s})
		if _, err := a.Authenticate(b.Context(), secret); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(b.Context(), secret); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchKey has every kind of limit and a budget on the key, its team and
// its model group, the worst case for one admission.
var benchKey = &Key{ID: "bench", Limits: Limits{RPM: 1 << 40, TPM: 1 << 50, MaxParallel: 1 << 20},
	Budget: Budget{Max: ptr(1e12), Duration: BudgetDuration{1, unitDay}},
	Team:   &Team{ID: "bench-team", Limits: Limits{RPM: 1 << 40}, Budget: Budget{Max: ptr(1e12)}}}

func benchAdmitDone(b *testing.B, l Limiter) {
	req := Request{Key: benchKey, ModelGroup: "g", ModelGroupLimits: Limits{TPM: 1 << 50}, EstimatedTokens: 100}
	b.ReportAllocs()
	for b.Loop() {
		a, err := l.Admit(b.Context(), req)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Done(b.Context(), Outcome{Tokens: 120, Cost: 0.001}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryLimiter_AdmitDone(b *testing.B) {
	benchAdmitDone(b, NewMemoryLimiter(LimiterConfig{}))
}

func BenchmarkRedisLimiter_AdmitDone(b *testing.B) {
	c, prefix := redisClient(b)
	l := newRedisLimiter(b, c, LimiterConfig{Prefix: prefix})
	benchAdmitDone(b, l)
	if s := l.Stats(); s.RedisErrors != 0 {
		b.Fatalf("redis errors: %+v", s)
	}
}
