package admin

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/policy"
)

// TestHandler_KeyLifecycle drives every key route and checks each field
// both in the API's answers and in what the gateway's Authenticator sees.
func TestHandler_KeyLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	auth := runAuth(t, policy.AuthConfig{Store: e.store, Clock: e.clock.Now})
	e.mustOK(t, "POST", "/team/new", `{"team_id":"eng","team_alias":"Engineering","models":["gpt-4o","claude"],"rpm_limit":100}`)

	gen := e.mustOK(t, "POST", "/key/generate", `{
		"key_alias":"ci","duration":"1h","team_id":"eng","user_id":"u-1","models":["gpt-4o"],
		"metadata":{"env":"ci","tags":["a"]},"tpm_limit":1000,"rpm_limit":10,"max_parallel_requests":2,
		"max_budget":25.5,"soft_budget":20,"budget_duration":"monthly"}`)
	secret, _ := gen["key"].(string)
	if !strings.HasPrefix(secret, policy.SecretPrefix) {
		t.Fatalf("generated key %q", secret)
	}
	token := policy.HashSecret(secret)
	want := map[string]any{
		"token": token, "key_alias": "ci", "team_id": "eng", "user_id": "u-1", "models": []any{"gpt-4o"},
		"tpm_limit": 1000.0, "rpm_limit": 10.0, "max_parallel_requests": 2.0, "max_budget": 25.5, "soft_budget": 20.0,
		"budget_duration": "1mo", "blocked": false, "spend": 1.5, "expires": t0.Add(time.Hour).Format(time.RFC3339),
	}
	check := func(t *testing.T, got map[string]any, want map[string]any) {
		t.Helper()
		for k, v := range want {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	}
	check(t, gen, want)

	info := e.mustOK(t, "GET", "/key/info?key="+secret, "")
	if info["key"] != token || strings.Contains(fmt.Sprint(info), secret) {
		t.Fatalf("/key/info shows the secret or not the token: %v", info)
	}
	check(t, info["info"].(map[string]any), want)
	if byToken := e.mustOK(t, "GET", "/key/info?key="+token, ""); fmt.Sprint(byToken) != fmt.Sprint(info) {
		t.Fatal("lookup by token differs from lookup by key")
	}

	k, err := auth.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if k.Alias != "ci" || k.UserID != "u-1" || k.Team == nil || k.Team.RPM != 100 || k.Limits != (policy.Limits{RPM: 10, TPM: 1000, MaxParallel: 2}) ||
		*k.Budget.Max != 25.5 || *k.Budget.Soft != 20 || k.Budget.Duration.String() != "1mo" || k.Metadata["env"] != "ci" ||
		!k.Allows("gpt-4o") || k.Allows("claude") {
		t.Fatalf("gateway sees %+v", k)
	}

	// Update: change some fields, clear others with null.
	upd := e.mustOK(t, "POST", "/key/update", fmt.Sprintf(`{"key":%q,"rpm_limit":null,"max_budget":null,"models":["claude"],"duration":null,"key_alias":"ci-2"}`, token))
	check(t, upd, map[string]any{"rpm_limit": nil, "max_budget": nil, "models": []any{"claude"}, "expires": nil, "key_alias": "ci-2", "tpm_limit": 1000.0})
	eventually(t, auth, secret, func(k *policy.Key, err error) bool {
		return err == nil && k.Limits.RPM == 0 && k.Budget.Max == nil && k.Allows("claude")
	})

	// Expiry follows the clock.
	e.mustOK(t, "POST", "/key/update", fmt.Sprintf(`{"key":%q,"duration":"30m"}`, secret))
	eventually(t, auth, secret, func(k *policy.Key, err error) bool { return err == nil && !k.Expires.IsZero() })
	e.clock.ns.Add(int64(31 * time.Minute))
	if _, err := auth.Authenticate(ctx, secret); !errors.Is(err, policy.ErrKeyExpired) {
		t.Fatalf("expired key: %v", err)
	}
	e.mustOK(t, "POST", "/key/update", fmt.Sprintf(`{"key":%q,"duration":null}`, secret))

	// Block and unblock.
	if b := e.mustOK(t, "POST", "/key/block", fmt.Sprintf(`{"key":%q}`, secret)); b["blocked"] != true {
		t.Fatalf("block answer %v", b)
	}
	eventually(t, auth, secret, func(_ *policy.Key, err error) bool { return errors.Is(err, policy.ErrKeyBlocked) })
	e.mustOK(t, "POST", "/key/unblock", fmt.Sprintf(`{"key":%q}`, token))
	eventually(t, auth, secret, func(_ *policy.Key, err error) bool { return err == nil })

	// Regenerate: new secret, same id, old secret dead.
	regen := e.mustOK(t, "POST", "/key/regenerate", fmt.Sprintf(`{"key":%q,"tpm_limit":500}`, secret))
	newSecret, _ := regen["key"].(string)
	if newSecret == secret || regen["key_id"] != gen["key_id"] || regen["tpm_limit"] != 500.0 || regen["key_alias"] != "ci-2" {
		t.Fatalf("regenerate answer %v", regen)
	}
	eventually(t, auth, secret, func(_ *policy.Key, err error) bool { return errors.Is(err, policy.ErrKeyUnknown) })
	if k, err := auth.Authenticate(ctx, newSecret); err != nil || k.ID != gen["key_id"] {
		t.Fatalf("new secret: %v, %v", k, err)
	}

	// A custom secret, LiteLLM's "key" field.
	custom := "sk-custom-0123456789abcdef"
	if c := e.mustOK(t, "POST", "/key/generate", fmt.Sprintf(`{"key":%q,"user_id":"u-2"}`, custom)); c["key"] != custom {
		t.Fatalf("custom key answer %v", c)
	}

	// List: hashes by default, filters, full objects, pages.
	list := e.mustOK(t, "GET", "/key/list", "")
	if list["total_count"] != 2.0 || len(list["keys"].([]any)) != 2 || strings.Contains(fmt.Sprint(list), newSecret) {
		t.Fatalf("list %v", list)
	}
	if l := e.mustOK(t, "GET", "/key/list?team_id=eng&return_full_object=true", ""); l["total_count"] != 1.0 ||
		l["keys"].([]any)[0].(map[string]any)["key_alias"] != "ci-2" {
		t.Fatalf("team filter %v", l)
	}
	if l := e.mustOK(t, "GET", "/key/list?user_id=u-2", ""); l["total_count"] != 1.0 || l["keys"].([]any)[0] != policy.HashSecret(custom) {
		t.Fatalf("user filter %v", l)
	}
	if l := e.mustOK(t, "GET", "/key/list?size=1&page=2", ""); len(l["keys"].([]any)) != 1 || l["total_pages"] != 2.0 || l["current_page"] != 2.0 {
		t.Fatalf("page 2 %v", l)
	}

	// Delete.
	del := e.mustOK(t, "POST", "/key/delete", fmt.Sprintf(`{"keys":[%q,%q]}`, newSecret, custom))
	if len(del["deleted_keys"].([]any)) != 2 {
		t.Fatalf("delete answer %v", del)
	}
	eventually(t, auth, newSecret, func(_ *policy.Key, err error) bool { return errors.Is(err, policy.ErrKeyUnknown) })
	if code, _ := e.do(t, "GET", "/key/info?key="+newSecret, ""); code != 404 {
		t.Fatalf("info of a deleted key: %d", code)
	}
}

func TestHandler_TeamLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	auth := runAuth(t, policy.AuthConfig{Store: e.store})

	created := e.mustOK(t, "POST", "/team/new", `{"team_alias":"Research","models":["gpt-4o"],"tpm_limit":5000,
		"rpm_limit":50,"max_parallel_requests":4,"max_budget":100,"soft_budget":80,"budget_duration":"weekly","metadata":{"cost_center":"42"}}`)
	id, _ := created["team_id"].(string)
	if !strings.HasPrefix(id, "team-") || created["spend"] != 7.25 || created["budget_duration"] != "1w" || created["tpm_limit"] != 5000.0 {
		t.Fatalf("team/new answer %v", created)
	}
	key := e.mustOK(t, "POST", "/key/generate", fmt.Sprintf(`{"team_id":%q}`, id))["key"].(string)
	k, err := auth.Authenticate(ctx, key)
	if err != nil || k.Team == nil || k.Team.Limits != (policy.Limits{RPM: 50, TPM: 5000, MaxParallel: 4}) || *k.Team.Budget.Max != 100 ||
		k.Team.Alias != "Research" || !k.Allows("gpt-4o") || k.Allows("claude") {
		t.Fatalf("gateway sees team %+v, %v", k, err)
	}

	info := e.mustOK(t, "GET", "/team/info?team_id="+id, "")
	if info["team_info"].(map[string]any)["team_alias"] != "Research" || len(info["keys"].([]any)) != 1 || strings.Contains(fmt.Sprint(info), key) {
		t.Fatalf("team/info %v", info)
	}

	upd := e.mustOK(t, "POST", "/team/update", fmt.Sprintf(`{"team_id":%q,"rpm_limit":5,"max_budget":null,"blocked":true}`, id))
	if upd["rpm_limit"] != 5.0 || upd["max_budget"] != nil || upd["blocked"] != true || upd["tpm_limit"] != 5000.0 {
		t.Fatalf("team/update %v", upd)
	}
	eventually(t, auth, key, func(_ *policy.Key, err error) bool { return errors.Is(err, policy.ErrKeyBlocked) })

	e.mustOK(t, "POST", "/team/new", `{"team_id":"other"}`)
	list := e.mustOK(t, "GET", "/team/list", "")["list"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["team_id"] != "other" {
		t.Fatalf("team/list %v", list)
	}

	del := e.mustOK(t, "POST", "/team/delete", fmt.Sprintf(`{"team_ids":[%q]}`, id))
	if len(del["deleted_keys"].([]any)) != 1 {
		t.Fatalf("team/delete %v", del)
	}
	eventually(t, auth, key, func(_ *policy.Key, err error) bool { return errors.Is(err, policy.ErrKeyUnknown) })
	if code, _ := e.do(t, "GET", "/team/info?team_id="+id, ""); code != 404 {
		t.Fatalf("info of a deleted team: %d", code)
	}
}

// runAuth starts a gateway-side Authenticator following the store's
// change feed, as a replica does; a one-hour TTL proves that changes reach
// it through the feed.
func runAuth(t *testing.T, cfg policy.AuthConfig) *policy.Authenticator {
	cfg.CacheTTL = time.Hour
	a := policy.NewAuthenticator(cfg)
	go func() { _ = a.Run(t.Context()) }()
	return a
}

// eventually retries an Authenticate until ok holds, for up to a second.
func eventually(t *testing.T, a *policy.Authenticator, secret string, ok func(*policy.Key, error) bool) {
	t.Helper()
	var k *policy.Key
	var err error
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if k, err = a.Authenticate(t.Context(), secret); ok(k, err) {
			return
		}
	}
	t.Fatalf("gateway still sees %+v, %v", k, err)
}

func TestNew_Rejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no master key", Config{Store: policy.NewMemoryStore()}},
		{"no store", Config{MasterKey: master}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
