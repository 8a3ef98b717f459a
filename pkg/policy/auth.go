package policy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// AuthConfig configures an Authenticator. Zero values take the defaults
// named on each field.
type AuthConfig struct {
	// Static keys from the config file are checked first and need no store;
	// nil means none. SetStatic replaces them on a config reload.
	Static *Keys
	// Store holds generated keys and teams; nil means static keys only.
	Store Store
	// CacheTTL is how long a looked-up key or team is trusted before it is
	// fetched again; default 10s. Changes announced by the store's feed
	// drop cached entries at once, so the TTL only bounds staleness when
	// the feed itself is down.
	CacheTTL time.Duration
	// StaleFor is how long past its TTL a cached key keeps working while
	// the store cannot be reached; default 1h, and a negative value turns
	// stale serving off (an outage then rejects every stored key with
	// ErrUnavailable).
	StaleFor time.Duration
	// StoreTimeout bounds each store lookup; default 250ms.
	StoreTimeout time.Duration
	// RetryInterval is how long the store is left alone after a failed
	// lookup, so an outage costs one timeout per interval rather than one
	// per request; default 1s.
	RetryInterval time.Duration
	// MaxEntries bounds the cache (known and unknown secrets); default
	// 100000. When full, arbitrary entries are evicted.
	MaxEntries int
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Logger receives degraded-operation warnings; default discards.
	Logger *slog.Logger
}

// AuthStats are monotonically increasing counters for metrics.
type AuthStats struct {
	CacheHits, CacheMisses uint64
	// StaleServed counts requests answered from an expired cache entry
	// because the store was unreachable.
	StaleServed uint64
	// StoreErrors counts failed store lookups.
	StoreErrors uint64
	// Invalidations counts cache entries dropped by change messages.
	Invalidations uint64
}

// Authenticator resolves secrets to keys: static keys, then the local
// cache, then the store. It is safe for concurrent use; run Run in a
// goroutine so changes made on other replicas reach the cache.
type Authenticator struct {
	cfg    AuthConfig
	static atomic.Pointer[Keys]
	mu     sync.RWMutex
	keys   map[[sha256.Size]byte]*keyEntry
	teams  map[string]*teamEntry
	hits   atomic.Uint64
	misses atomic.Uint64
	stale  atomic.Uint64
	errs   atomic.Uint64
	inval  atomic.Uint64
	// downUntil (unix ns) skips the store after a failure.
	downUntil atomic.Int64
	// gen counts invalidations; a lookup that raced with one is not cached,
	// since it may have read the record from before the change.
	gen atomic.Uint64
}

// keyEntry caches one lookup: a key, or the error for a secret that is
// unknown or blocked, so repeated bad secrets do not reach Redis.
type keyEntry struct {
	key     *Key
	err     error
	teamID  string
	fetched time.Time
}

type teamEntry struct {
	team    *Team
	fetched time.Time
}

// NewAuthenticator returns an Authenticator; it starts no goroutines.
func NewAuthenticator(cfg AuthConfig) *Authenticator {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 10 * time.Second
	}
	if cfg.StaleFor == 0 {
		cfg.StaleFor = time.Hour
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 250 * time.Millisecond
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{cfg: cfg, keys: map[[sha256.Size]byte]*keyEntry{}, teams: map[string]*teamEntry{}}
	a.static.Store(cfg.Static)
	return a
}

// SetStatic swaps in the static keys of a reloaded config; requests in
// flight finish with the set they started with.
func (a *Authenticator) SetStatic(ks *Keys) { a.static.Store(ks) }

// Run follows the store's change feed until ctx ends. Without a store it
// returns at once.
func (a *Authenticator) Run(ctx context.Context) error {
	if a.cfg.Store == nil {
		return nil
	}
	return a.cfg.Store.Subscribe(ctx, a.invalidate, a.resync)
}

// Stats returns the counters.
func (a *Authenticator) Stats() AuthStats {
	return AuthStats{a.hits.Load(), a.misses.Load(), a.stale.Load(), a.errs.Load(), a.inval.Load()}
}

// Authenticate returns the key for a secret, or ErrKeyMissing,
// ErrKeyUnknown, ErrKeyExpired, ErrKeyBlocked (all three satisfy
// errors.Is(err, ErrKeyUnknown): 401), ErrUnavailable (503: the store
// is unreachable and the secret is not cached), or ctx's error when the
// caller gives up first.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (*Key, error) {
	if secret == "" {
		return nil, ErrKeyMissing
	}
	h := sum(secret)
	if static := a.static.Load(); static != nil {
		if k, err := static.lookup(secret, h); err == nil {
			return k, nil
		}
	}
	if a.cfg.Store == nil {
		return nil, ErrKeyUnknown
	}
	now := a.cfg.Clock()
	a.mu.RLock()
	e := a.keys[h]
	a.mu.RUnlock()
	if e != nil && now.Sub(e.fetched) < a.cfg.CacheTTL {
		a.hits.Add(1)
		return a.check(e, h, now)
	}
	a.misses.Add(1)
	var fresh *keyEntry
	err := errStoreDown
	if now.UnixNano() >= a.downUntil.Load() {
		fresh, err = a.fetch(ctx, h, now)
		if err != nil && ctx.Err() != nil {
			// The caller gave up (client abort); the store is not to blame.
			return nil, fmt.Errorf("authenticate: %w", ctx.Err())
		}
		if err != nil {
			// Logged once per retry interval, not once per request.
			a.errs.Add(1)
			a.downUntil.Store(now.Add(a.cfg.RetryInterval).UnixNano())
			a.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "key store unreachable; serving cached keys, rejecting uncached ones with 503",
				slog.String("error", err.Error()))
		}
	}
	if err != nil {
		if e != nil && a.cfg.StaleFor > 0 && now.Sub(e.fetched) < a.cfg.CacheTTL+a.cfg.StaleFor {
			a.stale.Add(1)
			return a.check(e, h, now)
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return a.check(fresh, h, now)
}

// errStoreDown stands for the last store error while lookups are skipped.
var errStoreDown = errors.New("store failed recently; retrying later")

// check applies the per-request rules to a cached or fetched key; expiry is
// checked here rather than at fetch time so a cached key expires on time.
func (a *Authenticator) check(e *keyEntry, h [sha256.Size]byte, now time.Time) (*Key, error) {
	if e.err != nil {
		return nil, e.err
	}
	k := e.key
	if subtle.ConstantTimeCompare(h[:], k.hash[:]) != 1 {
		return nil, ErrKeyUnknown
	}
	if !k.Expires.IsZero() && !now.Before(k.Expires) {
		return nil, ErrKeyExpired
	}
	if k.Team != nil && k.Team.Blocked {
		return nil, fmt.Errorf("%w: team %s is blocked", ErrKeyBlocked, k.Team.ID)
	}
	return k, nil
}

// fetch reads the key and its team from the store and caches the outcome.
// It returns an error only when the store could not answer; an unknown or
// blocked key is an entry carrying its error. A key whose team is gone is
// unknown, since deleting a team revokes its keys.
func (a *Authenticator) fetch(ctx context.Context, h [sha256.Size]byte, now time.Time) (*keyEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.StoreTimeout)
	defer cancel()
	gen := a.gen.Load()
	rec, err := a.cfg.Store.GetKey(ctx, hex.EncodeToString(h[:]))
	if errors.Is(err, ErrNotFound) {
		return a.put(gen, h, &keyEntry{err: ErrKeyUnknown, fetched: now}), nil
	}
	if err != nil {
		return nil, err
	}
	if rec.Blocked {
		return a.put(gen, h, &keyEntry{err: ErrKeyBlocked, teamID: rec.TeamID, fetched: now}), nil
	}
	var team *Team
	if rec.TeamID != "" {
		team, err = a.team(ctx, gen, rec.TeamID, now)
		if errors.Is(err, ErrNotFound) {
			return a.put(gen, h, &keyEntry{err: ErrKeyUnknown, teamID: rec.TeamID, fetched: now}), nil
		}
		if err != nil {
			return nil, err
		}
	}
	k := &Key{
		ID: rec.ID, Models: rec.Models, Alias: rec.Alias, UserID: rec.UserID, Metadata: rec.Metadata,
		Expires: rec.Expires, Limits: rec.Limits, Budget: rec.Budget, Team: team, hash: h,
	}
	return a.put(gen, h, &keyEntry{key: k, teamID: rec.TeamID, fetched: now}), nil
}

func (a *Authenticator) team(ctx context.Context, gen uint64, id string, now time.Time) (*Team, error) {
	a.mu.RLock()
	e := a.teams[id]
	a.mu.RUnlock()
	if e != nil && now.Sub(e.fetched) < a.cfg.CacheTTL {
		return e.team, nil
	}
	t, err := a.cfg.Store.GetTeam(ctx, id)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.gen.Load() == gen {
		a.teams[id] = &teamEntry{team: t, fetched: now}
	}
	a.mu.Unlock()
	return t, nil
}

// put caches e unless an invalidation arrived since the lookup began
// (generation gen); either way it returns e for the current request.
func (a *Authenticator) put(gen uint64, h [sha256.Size]byte, e *keyEntry) *keyEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen.Load() != gen {
		return e
	}
	if _, ok := a.keys[h]; !ok && len(a.keys) >= a.cfg.MaxEntries {
		for victim := range a.keys {
			delete(a.keys, victim)
			break
		}
	}
	a.keys[h] = e
	return e
}

// invalidate drops what a change touched: a key by hash, or a team and
// every cached key of that team.
func (a *Authenticator) invalidate(c Change) {
	// A message proves the store is reachable again.
	a.downUntil.Store(0)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen.Add(1)
	if c.KeyHash != "" {
		if b, err := hex.DecodeString(c.KeyHash); err == nil && len(b) == sha256.Size {
			if _, ok := a.keys[[sha256.Size]byte(b)]; ok {
				delete(a.keys, [sha256.Size]byte(b))
				a.inval.Add(1)
			}
		}
	}
	if c.TeamID != "" {
		delete(a.teams, c.TeamID)
		for h, e := range a.keys {
			if e.teamID == c.TeamID {
				delete(a.keys, h)
				a.inval.Add(1)
			}
		}
	}
}

// resync marks every entry as due for a refetch but keeps it for serving
// stale while the store is down: after the feed reconnects we cannot know
// what changed meanwhile.
func (a *Authenticator) resync() {
	a.downUntil.Store(0)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen.Add(1)
	expired := a.cfg.Clock().Add(-a.cfg.CacheTTL)
	for h, e := range a.keys {
		if e.fetched.After(expired) {
			c := *e
			c.fetched = expired
			a.keys[h] = &c
		}
	}
	clear(a.teams)
}
