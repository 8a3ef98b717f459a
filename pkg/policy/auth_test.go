package policy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// storeBackends runs a test against the memory store and a Redis store.
// replica returns another view of the same data, as a second process would
// have: the same memory store, or a Redis store with its own connection.
func storeBackends(t *testing.T, f func(t *testing.T, s Store, replica func() Store)) {
	t.Run("memory", func(t *testing.T) {
		s := NewMemoryStore()
		f(t, s, func() Store { return s })
	})
	t.Run("redis", func(t *testing.T) {
		c, prefix := redisClient(t)
		f(t, newRedisStore(t, c, RedisStoreConfig{Prefix: prefix}), func() Store {
			return newRedisStore(t, newClient(t, sharedRedis.Addr), RedisStoreConfig{Prefix: prefix})
		})
	})
}

var t0 = time.Date(2026, 11, 24, 12, 0, 30, 0, time.UTC)

func putKey(t *testing.T, s KeyStore, mod func(*KeyRecord)) (string, *KeyRecord) {
	t.Helper()
	secret, err := GenerateSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := NewKeyRecord(secret, t0)
	if mod != nil {
		mod(rec)
	}
	if err := s.PutKey(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	return secret, rec
}

func TestAuthenticator_Authenticate(t *testing.T) {
	storeBackends(t, func(t *testing.T, s Store, _ func() Store) {
		ctx := t.Context()
		max := 5.0
		for _, team := range []*Team{
			{ID: "t-open", Models: []string{"m1", "m2"}, Limits: Limits{RPM: 7}},
			{ID: "t-blocked", Blocked: true},
		} {
			if err := s.PutTeam(ctx, team); err != nil {
				t.Fatal(err)
			}
		}
		static, _ := NewKeys([]StaticKey{{ID: "static", Secret: "sk-static", Models: []string{"m1"}}})
		clock := newFakeClock(t0)
		a := NewAuthenticator(AuthConfig{Static: static, Store: s, Clock: clock.Now})

		full, fullRec := putKey(t, s, func(r *KeyRecord) {
			r.Alias, r.UserID, r.TeamID = "ci", "u1", "t-open"
			r.Models = []string{"m1"}
			r.Metadata = map[string]any{"env": "ci"}
			r.Expires = t0.Add(time.Hour)
			r.Limits = Limits{RPM: 1, TPM: 2, MaxParallel: 3}
			r.Budget = Budget{Max: &max, Duration: BudgetDuration{1, unitDay}}
		})
		expired, _ := putKey(t, s, func(r *KeyRecord) { r.Expires = t0 })
		blocked, _ := putKey(t, s, func(r *KeyRecord) { r.Blocked = true })
		teamBlocked, _ := putKey(t, s, func(r *KeyRecord) { r.TeamID = "t-blocked" })
		teamGone, _ := putKey(t, s, func(r *KeyRecord) { r.TeamID = "t-missing" })

		for _, tc := range []struct {
			name, secret string
			wantID       string
			wantErr      error
		}{
			{"static", "sk-static", "static", nil},
			{"stored", full, fullRec.ID, nil},
			{"missing", "", "", ErrKeyMissing},
			{"unknown", "sk-tg-nope", "", ErrKeyUnknown},
			{"expired", expired, "", ErrKeyExpired},
			{"blocked", blocked, "", ErrKeyBlocked},
			{"team blocked", teamBlocked, "", ErrKeyBlocked},
			{"team deleted", teamGone, "", ErrKeyUnknown},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for range 2 { // the second call is served from the cache
					k, err := a.Authenticate(ctx, tc.secret)
					if !errors.Is(err, tc.wantErr) || (err == nil && k.ID != tc.wantID) {
						t.Fatalf("Authenticate = %v, %v; want %s, %v", k, err, tc.wantID, tc.wantErr)
					}
					if tc.wantErr != nil && tc.wantErr != ErrKeyMissing && !errors.Is(err, ErrKeyUnknown) {
						t.Fatalf("%v does not map to 401 via ErrKeyUnknown", err)
					}
				}
			})
		}

		k, err := a.Authenticate(ctx, full)
		if err != nil {
			t.Fatal(err)
		}
		if k.Alias != "ci" || k.UserID != "u1" || k.Metadata["env"] != "ci" || !k.Expires.Equal(t0.Add(time.Hour)) ||
			k.Limits != (Limits{1, 2, 3}) || *k.Budget.Max != 5 || k.Budget.Duration.String() != "1d" ||
			k.Team == nil || k.Team.Limits.RPM != 7 {
			t.Fatalf("key fields lost: %+v team %+v", k, k.Team)
		}
		if !k.Allows("m1") || k.Allows("m2") || k.Allows("m3") {
			t.Fatal("model access must be the key's list within the team's")
		}
		clock.Add(time.Hour)
		if _, err := a.Authenticate(ctx, full); !errors.Is(err, ErrKeyExpired) {
			t.Fatalf("cached key past expiry: %v", err)
		}
	})
}

// countingStore counts lookups and can be made to fail like an unreachable
// Redis.
type countingStore struct {
	Store
	gets atomic.Int64
	down atomic.Bool
}

func (c *countingStore) GetKey(ctx context.Context, hash string) (*KeyRecord, error) {
	c.gets.Add(1)
	if c.down.Load() {
		return nil, errors.New("dial tcp: connection refused")
	}
	return c.Store.GetKey(ctx, hash)
}

func TestAuthenticator_CacheAndOutage(t *testing.T) {
	mem := NewMemoryStore()
	s := &countingStore{Store: mem}
	clock := newFakeClock(t0)
	a := NewAuthenticator(AuthConfig{Store: s, Clock: clock.Now, CacheTTL: time.Second, StaleFor: time.Minute})
	ctx := t.Context()
	secret, _ := putKey(t, mem, nil)

	for range 3 {
		if _, err := a.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		_, _ = a.Authenticate(ctx, "sk-tg-unknown")
	}
	if got := s.gets.Load(); got != 2 {
		t.Fatalf("store read %d times for 2 distinct secrets; cache (incl. negative) not used", got)
	}

	s.down.Store(true)
	clock.Add(2 * time.Second) // past the TTL: a refetch is due and fails
	if _, err := a.Authenticate(ctx, secret); err != nil {
		t.Fatalf("cached key rejected while the store is down: %v", err)
	}
	if a.Stats().StaleServed != 1 || a.Stats().StoreErrors != 1 {
		t.Fatalf("stats %+v", a.Stats())
	}
	other, _ := putKey(t, mem, nil)
	if _, err := a.Authenticate(ctx, other); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("uncached key while store down = %v, want ErrUnavailable", err)
	}
	clock.Add(2 * time.Minute) // past StaleFor
	if _, err := a.Authenticate(ctx, secret); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("key served beyond StaleFor: %v", err)
	}
}

func TestAuthenticator_InvalidationAcrossReplicas(t *testing.T) {
	storeBackends(t, func(t *testing.T, s Store, replica func() Store) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// Each replica has its own store connection and cache; a long TTL
		// proves that the change feed, not expiry, drops the entry.
		replicas := []*Authenticator{
			NewAuthenticator(AuthConfig{Store: s, CacheTTL: time.Hour}),
			NewAuthenticator(AuthConfig{Store: replica(), CacheTTL: time.Hour}),
		}
		for _, r := range replicas {
			go func() { _ = r.Run(ctx) }()
		}
		secret, rec := putKey(t, s, nil)
		waitFor(t, time.Second, func() bool {
			_, err := replicas[1].Authenticate(ctx, secret)
			return err == nil
		})

		for _, step := range []struct {
			name    string
			change  func() error
			wantErr error
		}{
			{"block", func() error { r := *rec; r.Blocked = true; return s.PutKey(ctx, &r) }, ErrKeyBlocked},
			{"unblock", func() error { return s.PutKey(ctx, rec) }, nil},
			{"team blocked", func() error {
				if err := s.PutTeam(ctx, &Team{ID: "tx"}); err != nil {
					return err
				}
				r := *rec
				r.TeamID = "tx"
				if err := s.PutKey(ctx, &r); err != nil {
					return err
				}
				waitFor(t, time.Second, func() bool { k, _ := replicas[1].Authenticate(ctx, secret); return k != nil && k.Team != nil })
				return s.PutTeam(ctx, &Team{ID: "tx", Blocked: true})
			}, ErrKeyBlocked},
			{"delete", func() error { return s.DeleteKey(ctx, rec.Hash) }, ErrKeyUnknown},
		} {
			t.Run(step.name, func(t *testing.T) {
				if err := step.change(); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				waitFor(t, time.Second, func() bool {
					_, err := replicas[1].Authenticate(ctx, secret)
					return errors.Is(err, step.wantErr) || (step.wantErr == nil && err == nil)
				})
				t.Logf("replica 2 saw %s after %v", step.name, time.Since(start))
			})
		}
	})
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slowStore reads a key, then waits, as a slow Redis reply would.
type slowStore struct {
	Store
	read, release chan struct{}
}

func (s *slowStore) GetKey(ctx context.Context, hash string) (*KeyRecord, error) {
	rec, err := s.Store.GetKey(ctx, hash)
	s.read <- struct{}{}
	<-s.release
	return rec, err
}

// TestAuthenticator_ChangeDuringLookup blocks a key while a lookup of it
// is in flight: the lookup may answer with what it read, but must not cache
// it, or the revoked key would work for a whole TTL.
func TestAuthenticator_ChangeDuringLookup(t *testing.T) {
	mem := NewMemoryStore()
	secret, rec := putKey(t, mem, nil)
	s := &slowStore{Store: mem, read: make(chan struct{}), release: make(chan struct{})}
	a := NewAuthenticator(AuthConfig{Store: s, CacheTTL: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	subscribed := make(chan struct{})
	go func() {
		_ = mem.Subscribe(ctx, a.invalidate, func() { a.resync(); close(subscribed) })
	}()
	<-subscribed

	done := make(chan error)
	go func() { _, err := a.Authenticate(ctx, secret); done <- err }()
	<-s.read
	blocked := *rec
	blocked.Blocked = true
	if err := mem.PutKey(ctx, &blocked); err != nil {
		t.Fatal(err)
	}
	close(s.release)
	if err := <-done; err != nil {
		t.Fatalf("in-flight lookup: %v", err)
	}
	go func() {
		for range s.read {
		}
	}()
	if _, err := a.Authenticate(ctx, secret); !errors.Is(err, ErrKeyBlocked) {
		t.Fatalf("after the change: %v (a pre-change read was cached)", err)
	}
	close(s.read)
}

func TestAuthenticator_SetStatic(t *testing.T) {
	old, _ := NewKeys([]StaticKey{{ID: "old", Secret: "sk-old"}})
	fresh, _ := NewKeys([]StaticKey{{ID: "new", Secret: "sk-new"}})
	a := NewAuthenticator(AuthConfig{Static: old})
	if k, err := a.Authenticate(t.Context(), "sk-old"); err != nil || k.ID != "old" {
		t.Fatalf("before reload: %v, %v", k, err)
	}
	a.SetStatic(fresh)
	if _, err := a.Authenticate(t.Context(), "sk-old"); !errors.Is(err, ErrKeyUnknown) {
		t.Fatalf("removed static key after reload: %v", err)
	}
	if k, err := a.Authenticate(t.Context(), "sk-new"); err != nil || k.ID != "new" {
		t.Fatalf("added static key after reload: %v, %v", k, err)
	}
}
