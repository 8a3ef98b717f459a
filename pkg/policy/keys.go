// Package policy decides who may call what: virtual keys and their model
// access. Limits and budgets build on the same Key.
package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
)

// Errors a key check returns; the ext_proc error table maps them to HTTP.
var (
	// ErrKeyMissing: the request carried no API key.
	ErrKeyMissing = errors.New("no api key")
	// ErrKeyUnknown: the key is not a known virtual key.
	ErrKeyUnknown = errors.New("invalid api key")
	// ErrModelNotAllowed: the key may not call the model group.
	ErrModelNotAllowed = errors.New("model not allowed for this key")
)

// Key is a virtual key as the gateway sees it after authentication.
type Key struct {
	// ID names the key in logs, metadata and spend records; never the secret.
	ID string
	// Models lists the model groups the key may call; empty means all.
	Models []string
	// hash is the SHA-256 of the secret.
	hash [sha256.Size]byte
}

// LogValue logs only the key id.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.ID) }

// Allows reports whether the key may call a model group.
func (k *Key) Allows(group string) bool {
	if len(k.Models) == 0 {
		return true
	}
	for _, m := range k.Models {
		if m == group {
			return true
		}
	}
	return false
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
		ids[s.ID] = true
		ks.byHash[h] = &Key{ID: s.ID, Models: s.Models, hash: h}
	}
	return ks, errors.Join(errs...)
}

// Authenticate finds the key for a secret. The lookup is by hash, and the
// final comparison is constant-time, so timing reveals nothing about
// near-miss secrets.
func (ks *Keys) Authenticate(secret string) (*Key, error) {
	if secret == "" {
		return nil, ErrKeyMissing
	}
	h := sha256.Sum256([]byte(secret))
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
