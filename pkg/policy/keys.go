// Package policy decides who may call what and how much: virtual keys and
// teams (static from config, or stored in memory or Redis behind a
// per-replica cache), their model access, RPM/TPM/parallel limits and
// budgets. docs/policy.md describes the behaviour for operators.
package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Errors a key check returns; the ext_proc error table maps them to HTTP.
var (
	// ErrKeyMissing: the request carried no API key.
	ErrKeyMissing = errors.New("no api key")
	// ErrKeyUnknown: the key is not a known virtual key.
	ErrKeyUnknown = errors.New("invalid api key")
	// ErrModelNotAllowed: the key may not call the model group.
	ErrModelNotAllowed = errors.New("model not allowed for this key")
	// ErrKeyExpired: the key is past its expiry. It wraps ErrKeyUnknown so
	// callers that only know ErrKeyUnknown still answer 401.
	ErrKeyExpired = fmt.Errorf("%w: key expired", ErrKeyUnknown)
	// ErrKeyBlocked: the key or its team is blocked. It wraps ErrKeyUnknown
	// (401, as LiteLLM and OpenAI answer for revoked keys).
	ErrKeyBlocked = fmt.Errorf("%w: key blocked", ErrKeyUnknown)
	// ErrUnavailable: the policy store or limiter could not decide (Redis
	// unreachable with nothing cached, or fail_closed mode); map to 503.
	ErrUnavailable = errors.New("policy store unavailable")
	// ErrNotFound: a store has no such key or team.
	ErrNotFound = errors.New("not found")
)

// Key is a virtual key as the gateway sees it after authentication. It is
// immutable and shared between requests: never modify one.
type Key struct {
	// ID names the key in logs, metadata and spend records; never the secret.
	ID string
	// Models lists the model groups the key may call; empty means all.
	Models []string
	// Alias, UserID and Metadata come from the stored key; empty for static
	// keys.
	Alias    string
	UserID   string
	Metadata map[string]any
	// Expires is when the key stops working; zero means never.
	Expires time.Time
	// Limits and Budget apply to the key itself.
	Limits Limits
	Budget Budget
	// Team is the key's team, or nil; its limits and budget apply too.
	Team *Team
	// hash is the SHA-256 of the secret.
	hash [sha256.Size]byte
}

// LogValue logs only the key id.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.ID) }

// Allows reports whether the key, and its team if any, may call a model
// group.
func (k *Key) Allows(group string) bool {
	if k.Team != nil && !allowed(k.Team.Models, group) {
		return false
	}
	return allowed(k.Models, group)
}

func allowed(models []string, group string) bool {
	return len(models) == 0 || slices.Contains(models, group)
}

// CheckModel returns ErrModelNotAllowed when the key may not call group.
func (k *Key) CheckModel(group string) error {
	if !k.Allows(group) {
		return fmt.Errorf("%w: key %s may not call model %q", ErrModelNotAllowed, k.ID, group)
	}
	return nil
}

// StaticKey is a key defined in the config file.
type StaticKey struct {
	ID     string
	Secret string
	Models []string
	// Limits and Budget are optional; zero values mean none.
	Limits Limits
	Budget Budget
}

// Keys authenticates static keys. It keeps only hashes of the secrets and
// is immutable after construction, so lookups need no locks.
type Keys struct {
	byHash map[[sha256.Size]byte]*Key
}

// NewKeys builds the key set. Secrets and ids must be unique and non-empty.
func NewKeys(static []StaticKey) (*Keys, error) {
	ks := &Keys{byHash: make(map[[sha256.Size]byte]*Key, len(static))}
	ids := make(map[string]bool, len(static))
	var errs []error
	for i, s := range static {
		if s.Secret == "" {
			errs = append(errs, fmt.Errorf("key %d: empty secret", i))
			continue
		}
		h := sha256.Sum256([]byte(s.Secret))
		if _, dup := ks.byHash[h]; dup {
			errs = append(errs, fmt.Errorf("key %d: secret is used twice", i))
			continue
		}
		if s.ID == "" {
			s.ID = DefaultKeyID(s.Secret)
		}
		if ids[s.ID] {
			errs = append(errs, fmt.Errorf("key %d: id %q is used twice", i, s.ID))
			continue
		}
		if err := errors.Join(s.Limits.Validate(), s.Budget.Validate()); err != nil {
			errs = append(errs, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		ids[s.ID] = true
		ks.byHash[h] = &Key{ID: s.ID, Models: s.Models, Limits: s.Limits, Budget: s.Budget, hash: h}
	}
	return ks, errors.Join(errs...)
}

// Authenticate finds the key for a secret. The lookup is by hash, and the
// final comparison is constant-time, so timing reveals nothing about
// near-miss secrets.
func (ks *Keys) Authenticate(secret string) (*Key, error) {
	return ks.lookup(secret, sum(secret))
}

// sum hashes a secret without a heap allocation for secrets of usual
// length ([]byte(secret) allocates past 32 bytes, and keys are longer).
func sum(secret string) [sha256.Size]byte {
	var buf [128]byte
	if len(secret) > len(buf) {
		return sha256.Sum256([]byte(secret))
	}
	return sha256.Sum256(append(buf[:0], secret...))
}

// lookup is Authenticate with the hash already computed, so the
// Authenticator hashes each secret once.
func (ks *Keys) lookup(secret string, h [sha256.Size]byte) (*Key, error) {
	if secret == "" {
		return nil, ErrKeyMissing
	}
	k, ok := ks.byHash[h]
	if !ok || subtle.ConstantTimeCompare(h[:], k.hash[:]) != 1 {
		return nil, ErrKeyUnknown
	}
	return k, nil
}

// DefaultKeyID derives a stable, non-secret id from a secret: a prefix of
// its SHA-256, so logs can tell keys apart without revealing them.
func DefaultKeyID(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "key-" + hex.EncodeToString(h[:6])
}
