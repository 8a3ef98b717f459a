package admin

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/policy"
)

// keyFields are the fields /key/generate, /key/update and /key/regenerate
// accept besides "key".
var keyFields = append([]string{"key_alias", "duration", "team_id", "user_id"}, limitFields...)

// keyInfo is a key as the API shows it: never the secret, only its hash
// (LiteLLM's "token") and a recognisable prefix.
type keyInfo struct {
	Token               string         `json:"token"`
	KeyID               string         `json:"key_id"`
	KeyName             string         `json:"key_name"`
	KeyAlias            *string        `json:"key_alias"`
	Models              []string       `json:"models"`
	TeamID              *string        `json:"team_id"`
	UserID              *string        `json:"user_id"`
	Metadata            map[string]any `json:"metadata"`
	Expires             *time.Time     `json:"expires"`
	Blocked             bool           `json:"blocked"`
	TPMLimit            *int64         `json:"tpm_limit"`
	RPMLimit            *int64         `json:"rpm_limit"`
	MaxParallelRequests *int64         `json:"max_parallel_requests"`
	MaxBudget           *float64       `json:"max_budget"`
	SoftBudget          *float64       `json:"soft_budget"`
	BudgetDuration      *string        `json:"budget_duration"`
	Spend               float64        `json:"spend"`
	CreatedAt           time.Time      `json:"created_at"`
	UpdatedAt           time.Time      `json:"updated_at"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optInt(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func (h *Handler) keyInfoOf(ctx context.Context, r *policy.KeyRecord) (*keyInfo, error) {
	info := &keyInfo{
		Token: r.Hash, KeyID: r.ID, KeyName: r.Prefix, KeyAlias: optString(r.Alias), Models: r.Models,
		TeamID: optString(r.TeamID), UserID: optString(r.UserID), Metadata: r.Metadata, Blocked: r.Blocked,
		TPMLimit: optInt(r.TPM), RPMLimit: optInt(r.RPM), MaxParallelRequests: optInt(r.MaxParallel),
		MaxBudget: r.Max, SoftBudget: r.Soft, BudgetDuration: optString(r.Duration.String()),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if info.Models == nil {
		info.Models = []string{}
	}
	if !r.Expires.IsZero() {
		info.Expires = &r.Expires
	}
	if h.cfg.Spend != nil {
		s, err := h.cfg.Spend.KeySpend(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		info.Spend = s
	}
	return info, nil
}

// applyKey applies the key fields to rec and checks that its team exists.
func (h *Handler) applyKey(ctx context.Context, f fields, rec *policy.KeyRecord) error {
	if err := stringField(f, "key_alias", &rec.Alias); err != nil {
		return err
	}
	if err := stringField(f, "user_id", &rec.UserID); err != nil {
		return err
	}
	if v, ok, null, err := field[string](f, "duration", "a string such as \"30d\" or null"); err != nil {
		return err
	} else if ok && null {
		rec.Expires = time.Time{}
	} else if ok {
		d, err := parseDuration(v)
		if err != nil {
			return badRequest("duration", "%v", err)
		}
		rec.Expires = h.cfg.Clock().UTC().Add(d)
	}
	if err := h.applyCommon(f, &rec.Models, &rec.Metadata, &rec.Blocked, &rec.Limits, &rec.Budget); err != nil {
		return err
	}
	if v, ok, _, err := field[string](f, "team_id", "a string or null"); err != nil {
		return err
	} else if ok {
		if v != "" {
			if _, err := h.cfg.Store.GetTeam(ctx, v); errors.Is(err, policy.ErrNotFound) {
				return badRequest("team_id", "team %q does not exist; create it with /team/new", v)
			} else if err != nil {
				return err
			}
		}
		rec.TeamID = v
	}
	return nil
}

// lookupKey finds a key by its secret or its hash, as LiteLLM accepts both.
func (h *Handler) lookupKey(ctx context.Context, param, key string) (*policy.KeyRecord, error) {
	if key == "" {
		return nil, badRequest(param, "%s is required: the key or its token (hash)", param)
	}
	hash := key
	if strings.HasPrefix(key, "sk-") {
		hash = policy.HashSecret(key)
	} else if b, err := hex.DecodeString(key); err != nil || len(b) != 32 {
		return nil, badRequest(param, "%s must be a key (sk-...) or its 64-character token", param)
	}
	rec, err := h.cfg.Store.GetKey(ctx, hash)
	if errors.Is(err, policy.ErrNotFound) {
		return nil, notFound(param, "key not found")
	}
	return rec, err
}

func (h *Handler) keyParam(f fields) (string, error) {
	v, ok, null, err := field[string](f, "key", "a string")
	if err != nil {
		return "", err
	}
	if !ok || null || v == "" {
		return "", badRequest("key", "key is required: the key or its token (hash)")
	}
	return v, nil
}

// generated is /key/generate's and /key/regenerate's answer: the only time
// the secret is shown.
type generated struct {
	Key string `json:"key"`
	*keyInfo
}

func (h *Handler) keyGenerate(r *http.Request) (any, error) {
	f, err := readFields(r, append([]string{"key"}, keyFields...)...)
	if err != nil {
		return nil, err
	}
	secret, ok, null, err := field[string](f, "key", "a string")
	if err != nil {
		return nil, err
	}
	if ok && !null {
		if !strings.HasPrefix(secret, "sk-") || len(secret) < 20 || len(secret) > 256 {
			return nil, badRequest("key", "a custom key must start with sk- and be 20 to 256 characters")
		}
		if _, err := h.cfg.Store.GetKey(r.Context(), policy.HashSecret(secret)); err == nil {
			return nil, badRequest("key", "this key already exists")
		} else if !errors.Is(err, policy.ErrNotFound) {
			return nil, err
		}
	} else if secret, err = policy.GenerateSecret(h.cfg.Rand); err != nil {
		return nil, err
	}
	rec := policy.NewKeyRecord(secret, h.cfg.Clock())
	if err := h.applyKey(r.Context(), f, rec); err != nil {
		return nil, err
	}
	if err := h.cfg.Store.PutKey(r.Context(), rec); err != nil {
		return nil, err
	}
	info, err := h.keyInfoOf(r.Context(), rec)
	if err != nil {
		return nil, err
	}
	return generated{Key: secret, keyInfo: info}, nil
}

func (h *Handler) keyInfoRoute(r *http.Request) (any, error) {
	rec, err := h.lookupKey(r.Context(), "key", r.URL.Query().Get("key"))
	if err != nil {
		return nil, err
	}
	info, err := h.keyInfoOf(r.Context(), rec)
	if err != nil {
		return nil, err
	}
	return map[string]any{"key": rec.Hash, "info": info}, nil
}

func (h *Handler) keyUpdate(r *http.Request) (any, error) {
	f, err := readFields(r, append([]string{"key"}, keyFields...)...)
	if err != nil {
		return nil, err
	}
	key, err := h.keyParam(f)
	if err != nil {
		return nil, err
	}
	rec, err := h.lookupKey(r.Context(), "key", key)
	if err != nil {
		return nil, err
	}
	if err := h.applyKey(r.Context(), f, rec); err != nil {
		return nil, err
	}
	rec.UpdatedAt = h.cfg.Clock().UTC()
	if err := h.cfg.Store.PutKey(r.Context(), rec); err != nil {
		return nil, err
	}
	return h.keyInfoOf(r.Context(), rec)
}

func (h *Handler) keyDelete(r *http.Request) (any, error) {
	f, err := readFields(r, "keys")
	if err != nil {
		return nil, err
	}
	keys, ok, null, err := field[[]string](f, "keys", "a list of keys or tokens")
	if err != nil {
		return nil, err
	}
	if !ok || null || len(keys) == 0 {
		return nil, badRequest("keys", "keys is required: a non-empty list of keys or tokens")
	}
	// Find every key first so a bad entry deletes nothing.
	recs := make([]*policy.KeyRecord, 0, len(keys))
	for _, k := range keys {
		rec, err := h.lookupKey(r.Context(), "keys", k)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	deleted := make([]string, 0, len(recs))
	for _, rec := range recs {
		if err := h.cfg.Store.DeleteKey(r.Context(), rec.Hash); err != nil && !errors.Is(err, policy.ErrNotFound) {
			return nil, err
		}
		deleted = append(deleted, rec.Hash)
	}
	return map[string]any{"deleted_keys": deleted}, nil
}

func (h *Handler) keyList(r *http.Request) (any, error) {
	q := r.URL.Query()
	for name := range q {
		if !contains([]string{"team_id", "user_id", "key_alias", "page", "size", "return_full_object"}, name) {
			return nil, badRequest(name, "unknown query parameter %q", name)
		}
	}
	page, size := 1, 10
	for _, p := range []struct {
		name     string
		dst      *int
		min, max int
	}{{"page", &page, 1, 1 << 30}, {"size", &size, 1, 100}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < p.min || n > p.max {
				return nil, badRequest(p.name, "%s must be an integer from %d to %d", p.name, p.min, p.max)
			}
			*p.dst = n
		}
	}
	full := false
	if s := q.Get("return_full_object"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, badRequest("return_full_object", "return_full_object must be true or false")
		}
		full = b
	}
	all, err := h.cfg.Store.ListKeys(r.Context())
	if err != nil {
		return nil, err
	}
	all = slices.DeleteFunc(all, func(k *policy.KeyRecord) bool {
		return (q.Has("team_id") && k.TeamID != q.Get("team_id")) || (q.Has("user_id") && k.UserID != q.Get("user_id")) ||
			(q.Has("key_alias") && k.Alias != q.Get("key_alias"))
	})
	slices.SortFunc(all, func(a, b *policy.KeyRecord) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Hash, b.Hash)
	})
	total := len(all)
	lo := min((page-1)*size, total)
	hi := min(lo+size, total)
	out := make([]any, 0, hi-lo)
	for _, rec := range all[lo:hi] {
		if !full {
			out = append(out, rec.Hash)
			continue
		}
		info, err := h.keyInfoOf(r.Context(), rec)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return map[string]any{"keys": out, "total_count": total, "current_page": page, "total_pages": (total + size - 1) / size}, nil
}

func (h *Handler) keyBlock(blocked bool) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		f, err := readFields(r, "key")
		if err != nil {
			return nil, err
		}
		key, err := h.keyParam(f)
		if err != nil {
			return nil, err
		}
		rec, err := h.lookupKey(r.Context(), "key", key)
		if err != nil {
			return nil, err
		}
		rec.Blocked = blocked
		rec.UpdatedAt = h.cfg.Clock().UTC()
		if err := h.cfg.Store.PutKey(r.Context(), rec); err != nil {
			return nil, err
		}
		return h.keyInfoOf(r.Context(), rec)
	}
}

// keyRegenerate replaces a key's secret, keeping its id (so its limits and
// spend carry over) and any fields given; the old secret stops working.
func (h *Handler) keyRegenerate(r *http.Request) (any, error) {
	f, err := readFields(r, append([]string{"key"}, keyFields...)...)
	if err != nil {
		return nil, err
	}
	key, err := h.keyParam(f)
	if err != nil {
		return nil, err
	}
	old, err := h.lookupKey(r.Context(), "key", key)
	if err != nil {
		return nil, err
	}
	secret, err := policy.GenerateSecret(h.cfg.Rand)
	if err != nil {
		return nil, err
	}
	rec := *old
	fresh := policy.NewKeyRecord(secret, h.cfg.Clock())
	rec.Hash, rec.Prefix, rec.UpdatedAt = fresh.Hash, fresh.Prefix, fresh.UpdatedAt
	if err := h.applyKey(r.Context(), f, &rec); err != nil {
		return nil, err
	}
	// Store the new secret before removing the old, so a failure in
	// between leaves a working key rather than none.
	if err := h.cfg.Store.PutKey(r.Context(), &rec); err != nil {
		return nil, err
	}
	if err := h.cfg.Store.DeleteKey(r.Context(), old.Hash); err != nil && !errors.Is(err, policy.ErrNotFound) {
		return nil, err
	}
	info, err := h.keyInfoOf(r.Context(), &rec)
	if err != nil {
		return nil, err
	}
	return generated{Key: secret, keyInfo: info}, nil
}
