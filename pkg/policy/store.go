package policy

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// KeyStore holds virtual keys by the hex SHA-256 of their secret.
// Implementations are safe for concurrent use. GetKey returns ErrNotFound
// (wrapped) for an unknown hash; any other error means the store could not
// answer, and the caller may fall back to a cached copy.
type KeyStore interface {
	GetKey(ctx context.Context, hash string) (*KeyRecord, error)
	// PutKey creates or replaces the record under rec.Hash and announces
	// the change to every replica.
	PutKey(ctx context.Context, rec *KeyRecord) error
	// DeleteKey removes the record and announces it; deleting an unknown
	// hash returns ErrNotFound.
	DeleteKey(ctx context.Context, hash string) error
	// ListKeys returns every stored key, in no particular order.
	ListKeys(ctx context.Context) ([]*KeyRecord, error)
}

// TeamStore holds teams by id, with the same error contract as KeyStore.
type TeamStore interface {
	GetTeam(ctx context.Context, id string) (*Team, error)
	PutTeam(ctx context.Context, t *Team) error
	DeleteTeam(ctx context.Context, id string) error
	ListTeams(ctx context.Context) ([]*Team, error)
}

// Change names a stored key (by hash) or team (by id) that was written or
// deleted, so caches drop their copy.
type Change struct {
	KeyHash string
	TeamID  string
}

// ChangeFeed delivers changes made by any replica. Subscribe blocks until
// ctx ends, calling onChange for every change and onResync whenever the
// feed (re)connects, because changes made while it was disconnected are
// lost and caches must then revalidate everything.
type ChangeFeed interface {
	Subscribe(ctx context.Context, onChange func(Change), onResync func()) error
}

// Store is everything the Authenticator and the admin API need.
type Store interface {
	KeyStore
	TeamStore
	ChangeFeed
}

// MemoryStore is a Store for single-replica deployments and tests. Records
// are copied in and out, so callers cannot change stored state by
// accident.
type MemoryStore struct {
	mu    sync.Mutex
	keys  map[string]*KeyRecord
	teams map[string]*Team
	subs  map[int]func(Change)
	next  int
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{keys: map[string]*KeyRecord{}, teams: map[string]*Team{}, subs: map[int]func(Change){}}
}

func copyKey(r *KeyRecord) *KeyRecord {
	c := *r
	c.Models = slices.Clone(r.Models)
	c.Metadata = maps.Clone(r.Metadata)
	return &c
}

func copyTeam(t *Team) *Team {
	c := *t
	c.Models = slices.Clone(t.Models)
	c.Metadata = maps.Clone(t.Metadata)
	return &c
}

// GetKey implements KeyStore.
func (s *MemoryStore) GetKey(_ context.Context, hash string) (*KeyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.keys[hash]
	if !ok {
		return nil, ErrNotFound
	}
	return copyKey(r), nil
}

// PutKey implements KeyStore.
func (s *MemoryStore) PutKey(_ context.Context, rec *KeyRecord) error {
	s.mu.Lock()
	s.keys[rec.Hash] = copyKey(rec)
	s.mu.Unlock()
	s.notify(Change{KeyHash: rec.Hash})
	return nil
}

// DeleteKey implements KeyStore.
func (s *MemoryStore) DeleteKey(_ context.Context, hash string) error {
	s.mu.Lock()
	_, ok := s.keys[hash]
	delete(s.keys, hash)
	s.mu.Unlock()
	if !ok {
		return ErrNotFound
	}
	s.notify(Change{KeyHash: hash})
	return nil
}

// ListKeys implements KeyStore.
func (s *MemoryStore) ListKeys(context.Context) ([]*KeyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*KeyRecord, 0, len(s.keys))
	for _, r := range s.keys {
		out = append(out, copyKey(r))
	}
	return out, nil
}

// GetTeam implements TeamStore.
func (s *MemoryStore) GetTeam(_ context.Context, id string) (*Team, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.teams[id]
	if !ok {
		return nil, ErrNotFound
	}
	return copyTeam(t), nil
}

// PutTeam implements TeamStore.
func (s *MemoryStore) PutTeam(_ context.Context, t *Team) error {
	s.mu.Lock()
	s.teams[t.ID] = copyTeam(t)
	s.mu.Unlock()
	s.notify(Change{TeamID: t.ID})
	return nil
}

// DeleteTeam implements TeamStore.
func (s *MemoryStore) DeleteTeam(_ context.Context, id string) error {
	s.mu.Lock()
	_, ok := s.teams[id]
	delete(s.teams, id)
	s.mu.Unlock()
	if !ok {
		return ErrNotFound
	}
	s.notify(Change{TeamID: id})
	return nil
}

// ListTeams implements TeamStore.
func (s *MemoryStore) ListTeams(context.Context) ([]*Team, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Team, 0, len(s.teams))
	for _, t := range s.teams {
		out = append(out, copyTeam(t))
	}
	return out, nil
}

// Subscribe implements ChangeFeed: changes arrive synchronously from the
// writing goroutine.
func (s *MemoryStore) Subscribe(ctx context.Context, onChange func(Change), onResync func()) error {
	s.mu.Lock()
	id := s.next
	s.next++
	s.subs[id] = onChange
	s.mu.Unlock()
	onResync()
	<-ctx.Done()
	s.mu.Lock()
	delete(s.subs, id)
	s.mu.Unlock()
	return nil
}

func (s *MemoryStore) notify(c Change) {
	s.mu.Lock()
	subs := slices.Collect(maps.Values(s.subs))
	s.mu.Unlock()
	for _, f := range subs {
		f(c)
	}
}
