package admin

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/policy"
)

var teamFields = append([]string{"team_id", "team_alias"}, limitFields...)

// teamInfo is a team as the API shows it.
type teamInfo struct {
	TeamID              string         `json:"team_id"`
	TeamAlias           *string        `json:"team_alias"`
	Models              []string       `json:"models"`
	Metadata            map[string]any `json:"metadata"`
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

func (h *Handler) teamInfoOf(ctx context.Context, t *policy.Team) (*teamInfo, error) {
	info := &teamInfo{
		TeamID: t.ID, TeamAlias: optString(t.Alias), Models: t.Models, Metadata: t.Metadata, Blocked: t.Blocked,
		TPMLimit: optInt(t.TPM), RPMLimit: optInt(t.RPM), MaxParallelRequests: optInt(t.MaxParallel),
		MaxBudget: t.Max, SoftBudget: t.Soft, BudgetDuration: optString(t.Duration.String()),
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
	if info.Models == nil {
		info.Models = []string{}
	}
	if h.cfg.Spend != nil {
		s, err := h.cfg.Spend.TeamSpend(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		info.Spend = s
	}
	return info, nil
}

func (h *Handler) applyTeam(f fields, t *policy.Team) error {
	if err := stringField(f, "team_alias", &t.Alias); err != nil {
		return err
	}
	return h.applyCommon(f, &t.Models, &t.Metadata, &t.Blocked, &t.Limits, &t.Budget)
}

func (h *Handler) teamParam(f fields) (string, error) {
	v, ok, null, err := field[string](f, "team_id", "a string")
	if err != nil {
		return "", err
	}
	if !ok || null || v == "" {
		return "", badRequest("team_id", "team_id is required")
	}
	return v, nil
}

func (h *Handler) lookupTeam(ctx context.Context, id string) (*policy.Team, error) {
	t, err := h.cfg.Store.GetTeam(ctx, id)
	if errors.Is(err, policy.ErrNotFound) {
		return nil, notFound("team_id", "team %q not found", id)
	}
	return t, err
}

func (h *Handler) teamNew(r *http.Request) (any, error) {
	f, err := readFields(r, teamFields...)
	if err != nil {
		return nil, err
	}
	now := h.cfg.Clock().UTC()
	t := &policy.Team{CreatedAt: now, UpdatedAt: now}
	id, ok, null, err := field[string](f, "team_id", "a string")
	switch {
	case err != nil:
		return nil, err
	case ok && !null:
		if !policy.ValidID(id) {
			return nil, badRequest("team_id", "team_id must be 1-128 characters from letters, digits and ._:-")
		}
		if _, err := h.cfg.Store.GetTeam(r.Context(), id); err == nil {
			return nil, &apiError{http.StatusConflict, "invalid_request_error", "team_id", "team_exists", "team " + id + " already exists"}
		} else if !errors.Is(err, policy.ErrNotFound) {
			return nil, err
		}
	default:
		var b [8]byte
		if _, err := io.ReadFull(h.cfg.Rand, b[:]); err != nil {
			return nil, err
		}
		id = "team-" + hex.EncodeToString(b[:])
	}
	t.ID = id
	if err := h.applyTeam(f, t); err != nil {
		return nil, err
	}
	if err := h.cfg.Store.PutTeam(r.Context(), t); err != nil {
		return nil, err
	}
	return h.teamInfoOf(r.Context(), t)
}

func (h *Handler) teamInfoRoute(r *http.Request) (any, error) {
	id := r.URL.Query().Get("team_id")
	if id == "" {
		return nil, badRequest("team_id", "team_id is required")
	}
	t, err := h.lookupTeam(r.Context(), id)
	if err != nil {
		return nil, err
	}
	info, err := h.teamInfoOf(r.Context(), t)
	if err != nil {
		return nil, err
	}
	keys, err := h.teamKeys(r.Context(), id)
	if err != nil {
		return nil, err
	}
	infos := make([]*keyInfo, 0, len(keys))
	for _, k := range keys {
		ki, err := h.keyInfoOf(r.Context(), k)
		if err != nil {
			return nil, err
		}
		infos = append(infos, ki)
	}
	return map[string]any{"team_id": id, "team_info": info, "keys": infos}, nil
}

func (h *Handler) teamKeys(ctx context.Context, id string) ([]*policy.KeyRecord, error) {
	all, err := h.cfg.Store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	all = slices.DeleteFunc(all, func(k *policy.KeyRecord) bool { return k.TeamID != id })
	slices.SortFunc(all, func(a, b *policy.KeyRecord) int { return strings.Compare(a.Hash, b.Hash) })
	return all, nil
}

func (h *Handler) teamUpdate(r *http.Request) (any, error) {
	f, err := readFields(r, teamFields...)
	if err != nil {
		return nil, err
	}
	id, err := h.teamParam(f)
	if err != nil {
		return nil, err
	}
	t, err := h.lookupTeam(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if err := h.applyTeam(f, t); err != nil {
		return nil, err
	}
	t.UpdatedAt = h.cfg.Clock().UTC()
	if err := h.cfg.Store.PutTeam(r.Context(), t); err != nil {
		return nil, err
	}
	return h.teamInfoOf(r.Context(), t)
}

// teamDelete deletes teams and their keys, as LiteLLM does. Keys go
// first: if deletion stops halfway, the team still exists and the call can
// simply be repeated.
func (h *Handler) teamDelete(r *http.Request) (any, error) {
	f, err := readFields(r, "team_ids")
	if err != nil {
		return nil, err
	}
	ids, ok, null, err := field[[]string](f, "team_ids", "a list of team ids")
	if err != nil {
		return nil, err
	}
	if !ok || null || len(ids) == 0 {
		return nil, badRequest("team_ids", "team_ids is required: a non-empty list of team ids")
	}
	for _, id := range ids {
		if _, err := h.lookupTeam(r.Context(), id); err != nil {
			return nil, err
		}
	}
	var deletedKeys []string
	for _, id := range ids {
		keys, err := h.teamKeys(r.Context(), id)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if err := h.cfg.Store.DeleteKey(r.Context(), k.Hash); err != nil && !errors.Is(err, policy.ErrNotFound) {
				return nil, err
			}
			deletedKeys = append(deletedKeys, k.Hash)
		}
		if err := h.cfg.Store.DeleteTeam(r.Context(), id); err != nil && !errors.Is(err, policy.ErrNotFound) {
			return nil, err
		}
	}
	if deletedKeys == nil {
		deletedKeys = []string{}
	}
	return map[string]any{"deleted_teams": ids, "deleted_keys": deletedKeys}, nil
}

func (h *Handler) teamList(r *http.Request) (any, error) {
	for name := range r.URL.Query() {
		return nil, badRequest(name, "team/list takes no query parameters, got %q", name)
	}
	teams, err := h.cfg.Store.ListTeams(r.Context())
	if err != nil {
		return nil, err
	}
	slices.SortFunc(teams, func(a, b *policy.Team) int { return strings.Compare(a.ID, b.ID) })
	out := make([]*teamInfo, 0, len(teams))
	for _, t := range teams {
		info, err := h.teamInfoOf(r.Context(), t)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}
