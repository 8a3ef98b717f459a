package admin

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-gw/tollgate/pkg/policy"
	"github.com/tollgate-gw/tollgate/pkg/policy/redistest"
)

// sharedRedis is the package's redis-server; nil when not installed.
var sharedRedis *redistest.Server

func TestMain(m *testing.M) {
	s, err := redistest.Start()
	switch {
	case errors.Is(err, redistest.ErrNoBinary):
		fmt.Fprintln(os.Stderr, "admin tests:", err, "- tests skip")
	case err != nil:
		fmt.Fprintln(os.Stderr, "admin tests:", err)
		os.Exit(1)
	default:
		sharedRedis = s
	}
	code := m.Run()
	if sharedRedis != nil {
		sharedRedis.Close()
	}
	os.Exit(code)
}

const master = "sk-master-test-0123456789"

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// fakeSpend reports fixed totals.
type fakeSpend struct{}

func (fakeSpend) KeySpend(context.Context, string) (float64, error)  { return 1.5, nil }
func (fakeSpend) TeamSpend(context.Context, string) (float64, error) { return 7.25, nil }

type env struct {
	h     *Handler
	store policy.Store
	clock *clock
}

// newEnv returns a handler on a fresh Redis prefix, so tests (and repeated
// runs with -count) never see each other's keys.
func newEnv(t *testing.T) *env {
	t.Helper()
	if sharedRedis == nil {
		t.Skip("redis-server not installed at " + redistest.Binary)
	}
	c := redis.NewClient(&redis.Options{Addr: sharedRedis.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	store, err := policy.NewRedisStore(c, policy.RedisStoreConfig{Prefix: strings.ReplaceAll(t.Name(), "/", ".") + "." + rand.Text()})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	spendLogs := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"data":[]}`)) })
	h, err := New(Config{MasterKey: master, Store: store, Spend: fakeSpend{}, Clock: clk.Now, SpendLogs: spendLogs,
		KnownModel: func(m string) bool { return m != "no-such-model" }})
	if err != nil {
		t.Fatal(err)
	}
	return &env{h: h, store: store, clock: clk}
}

// do sends a request with the master key (unless auth overrides the
// Authorization header) and decodes the JSON answer.
func (e *env) do(t *testing.T, method, target, body string, auth ...string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	if auth == nil {
		r.Header.Set("Authorization", "Bearer "+master)
	} else if auth[0] != "" {
		r.Header.Set("Authorization", auth[0])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	var out map[string]any
	if w.Code == http.StatusOK && strings.HasPrefix(strings.TrimSpace(w.Body.String()), "[") {
		var list []any
		if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
			t.Fatalf("%s %s: bad JSON %q", method, target, w.Body)
		}
		return w.Code, map[string]any{"list": list}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: bad JSON %q", method, target, w.Body)
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: content-type %q", method, target, w.Header().Get("Content-Type"))
	}
	return w.Code, out
}

// mustOK is do that fails the test on a non-200 answer.
func (e *env) mustOK(t *testing.T, method, target, body string) map[string]any {
	t.Helper()
	code, out := e.do(t, method, target, body)
	if code != http.StatusOK {
		t.Fatalf("%s %s %s: %d %v", method, target, body, code, out)
	}
	return out
}

// snapshot is the whole stored state, to prove a rejected call stored
// nothing.
func (e *env) snapshot(t *testing.T) string {
	t.Helper()
	keys, err := e.store.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	teams, err := e.store.ListTeams(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(keys, func(a, b *policy.KeyRecord) int { return strings.Compare(a.Hash, b.Hash) })
	slices.SortFunc(teams, func(a, b *policy.Team) int { return strings.Compare(a.ID, b.ID) })
	b, _ := json.Marshal([]any{keys, teams})
	return string(b)
}

// checkError asserts an OpenAI-shaped error body.
func checkError(t *testing.T, out map[string]any, wantType, wantParam string) {
	t.Helper()
	e, ok := out["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %v", out)
	}
	for _, f := range []string{"message", "type", "param", "code"} {
		if _, ok := e[f]; !ok {
			t.Fatalf("error lacks %q: %v", f, e)
		}
	}
	if msg, _ := e["message"].(string); msg == "" || e["type"] != wantType {
		t.Fatalf("error = %v, want type %s", e, wantType)
	}
	if wantParam != "" && e["param"] != wantParam {
		t.Fatalf("error param = %v, want %s (%v)", e["param"], wantParam, e["message"])
	}
}

var routes = []struct{ method, path string }{
	{"POST", "/key/generate"}, {"GET", "/key/info"}, {"POST", "/key/update"}, {"POST", "/key/delete"},
	{"GET", "/key/list"}, {"POST", "/key/block"}, {"POST", "/key/unblock"}, {"POST", "/key/regenerate"},
	{"POST", "/team/new"}, {"GET", "/team/info"}, {"POST", "/team/update"}, {"POST", "/team/delete"},
	{"GET", "/team/list"}, {"GET", "/spend/logs"},
}

func TestHandler_MasterKeyRequired(t *testing.T) {
	e := newEnv(t)
	gen := e.mustOK(t, "POST", "/key/generate", `{}`)
	e.mustOK(t, "POST", "/team/new", `{"team_id":"t1"}`)
	valid := map[string]string{
		"/key/info": "?key=" + gen["key"].(string), "/team/info": "?team_id=t1",
	}
	body := fmt.Sprintf(`{"key":%q}`, gen["key"])
	before := e.snapshot(t)
	for _, r := range routes {
		for _, auth := range []struct{ name, header string }{
			{"missing", ""},
			{"wrong key", "Bearer sk-master-test-0123456780"},
			{"prefix of the key", "Bearer sk-master"},
			{"not bearer", "Basic " + master},
			{"the key without scheme", master},
			{"a virtual key", "Bearer " + gen["key"].(string)},
		} {
			t.Run(r.path+"/"+auth.name, func(t *testing.T) {
				code, out := e.do(t, r.method, r.path+valid[r.path], body, auth.header)
				if code != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", code)
				}
				checkError(t, out, "authentication_error", "")
			})
		}
	}
	if e.snapshot(t) != before {
		t.Fatal("an unauthenticated call changed the store")
	}
}

func TestHandler_BadInput(t *testing.T) {
	e := newEnv(t)
	gen := e.mustOK(t, "POST", "/key/generate", `{"team_id":null}`)
	e.mustOK(t, "POST", "/team/new", `{"team_id":"t1"}`)
	key := gen["key"].(string)
	unknownKey := "sk-tg-" + strings.Repeat("x", 43)
	for _, tc := range []struct {
		name, method, target, body string
		status                     int
		param                      string
	}{
		// Shapes every POST route shares.
		{"generate: not JSON", "POST", "/key/generate", `{"models":`, 400, ""},
		{"generate: empty body", "POST", "/key/generate", ``, 400, ""},
		{"generate: array", "POST", "/key/generate", `[]`, 400, ""},
		{"generate: two objects", "POST", "/key/generate", `{} {}`, 400, ""},
		{"generate: too large", "POST", "/key/generate", `{"metadata":{"x":"` + strings.Repeat("a", maxBody) + `"}}`, 413, ""},
		{"generate: unknown field", "POST", "/key/generate", `{"tpm_limt":5}`, 400, "tpm_limt"},
		{"generate: models not a list", "POST", "/key/generate", `{"models":"gpt-4o"}`, 400, "models"},
		{"generate: empty model name", "POST", "/key/generate", `{"models":["a",""]}`, 400, "models"},
		{"generate: unknown model", "POST", "/key/generate", `{"models":["no-such-model"]}`, 400, "models"},
		{"generate: rpm as string", "POST", "/key/generate", `{"rpm_limit":"10"}`, 400, "rpm_limit"},
		{"generate: rpm fractional", "POST", "/key/generate", `{"rpm_limit":1.5}`, 400, "rpm_limit"},
		{"generate: negative rpm", "POST", "/key/generate", `{"rpm_limit":-1}`, 400, "rpm_limit"},
		{"generate: negative tpm", "POST", "/key/generate", `{"tpm_limit":-1}`, 400, "tpm_limit"},
		{"generate: negative parallel", "POST", "/key/generate", `{"max_parallel_requests":-3}`, 400, "max_parallel_requests"},
		{"generate: negative budget", "POST", "/key/generate", `{"max_budget":-0.01}`, 400, "max_budget"},
		{"generate: budget as string", "POST", "/key/generate", `{"max_budget":"10"}`, 400, "max_budget"},
		{"generate: negative soft budget", "POST", "/key/generate", `{"soft_budget":-1}`, 400, "soft_budget"},
		{"generate: bad budget duration", "POST", "/key/generate", `{"budget_duration":"fortnightly"}`, 400, "budget_duration"},
		{"generate: bad duration", "POST", "/key/generate", `{"duration":"30x"}`, 400, "duration"},
		{"generate: negative duration", "POST", "/key/generate", `{"duration":"-1d"}`, 400, "duration"},
		{"generate: metadata not object", "POST", "/key/generate", `{"metadata":[1]}`, 400, "metadata"},
		{"generate: blocked not bool", "POST", "/key/generate", `{"blocked":"yes"}`, 400, "blocked"},
		{"generate: unknown team", "POST", "/key/generate", `{"team_id":"nope"}`, 400, "team_id"},
		{"generate: team_id not string", "POST", "/key/generate", `{"team_id":5}`, 400, "team_id"},
		{"generate: long alias", "POST", "/key/generate", `{"key_alias":"` + strings.Repeat("a", 257) + `"}`, 400, "key_alias"},
		{"generate: custom key without sk-", "POST", "/key/generate", `{"key":"my-key-0123456789012345"}`, 400, "key"},
		{"generate: custom key exists", "POST", "/key/generate", fmt.Sprintf(`{"key":%q}`, key), 400, "key"},
		{"generate: GET", "GET", "/key/generate", ``, 405, ""},

		{"info: no key", "GET", "/key/info", ``, 400, "key"},
		{"info: malformed key", "GET", "/key/info?key=abc", ``, 400, "key"},
		{"info: unknown key", "GET", "/key/info?key=" + unknownKey, ``, 404, "key"},
		{"info: unknown token", "GET", "/key/info?key=" + strings.Repeat("0", 64), ``, 404, "key"},
		{"info: POST", "POST", "/key/info", `{}`, 405, ""},

		{"update: no key", "POST", "/key/update", `{"rpm_limit":5}`, 400, "key"},
		{"update: key null", "POST", "/key/update", `{"key":null}`, 400, "key"},
		{"update: unknown key", "POST", "/key/update", fmt.Sprintf(`{"key":%q,"rpm_limit":5}`, unknownKey), 404, "key"},
		{"update: unknown field", "POST", "/key/update", fmt.Sprintf(`{"key":%q,"spend":5}`, key), 400, "spend"},
		{"update: negative rpm", "POST", "/key/update", fmt.Sprintf(`{"key":%q,"rpm_limit":-5}`, key), 400, "rpm_limit"},
		{"update: unknown team", "POST", "/key/update", fmt.Sprintf(`{"key":%q,"team_id":"nope"}`, key), 400, "team_id"},
		{"update: bad JSON", "POST", "/key/update", `{"key":`, 400, ""},
		{"update: GET", "GET", "/key/update", ``, 405, ""},

		{"delete: no keys", "POST", "/key/delete", `{}`, 400, "keys"},
		{"delete: empty list", "POST", "/key/delete", `{"keys":[]}`, 400, "keys"},
		{"delete: not a list", "POST", "/key/delete", fmt.Sprintf(`{"keys":%q}`, key), 400, "keys"},
		{"delete: one unknown deletes none", "POST", "/key/delete", fmt.Sprintf(`{"keys":[%q,%q]}`, key, unknownKey), 404, "keys"},
		{"delete: unknown field", "POST", "/key/delete", `{"key":"x"}`, 400, "key"},

		{"list: bad page", "GET", "/key/list?page=0", ``, 400, "page"},
		{"list: bad size", "GET", "/key/list?size=1000", ``, 400, "size"},
		{"list: size not a number", "GET", "/key/list?size=ten", ``, 400, "size"},
		{"list: bad full flag", "GET", "/key/list?return_full_object=maybe", ``, 400, "return_full_object"},
		{"list: unknown param", "GET", "/key/list?team=t1", ``, 400, "team"},
		{"list: POST", "POST", "/key/list", `{}`, 405, ""},

		{"block: no key", "POST", "/key/block", `{}`, 400, "key"},
		{"block: unknown key", "POST", "/key/block", fmt.Sprintf(`{"key":%q}`, unknownKey), 404, "key"},
		{"block: key not string", "POST", "/key/block", `{"key":42}`, 400, "key"},
		{"block: extra field", "POST", "/key/block", fmt.Sprintf(`{"key":%q,"blocked":false}`, key), 400, "blocked"},
		{"unblock: no key", "POST", "/key/unblock", `{}`, 400, "key"},
		{"unblock: unknown key", "POST", "/key/unblock", fmt.Sprintf(`{"key":%q}`, unknownKey), 404, "key"},
		{"unblock: bad JSON", "POST", "/key/unblock", `nope`, 400, ""},

		{"regenerate: no key", "POST", "/key/regenerate", `{}`, 400, "key"},
		{"regenerate: unknown key", "POST", "/key/regenerate", fmt.Sprintf(`{"key":%q}`, unknownKey), 404, "key"},
		{"regenerate: bad field", "POST", "/key/regenerate", fmt.Sprintf(`{"key":%q,"tpm_limit":-1}`, key), 400, "tpm_limit"},
		{"regenerate: unknown field", "POST", "/key/regenerate", fmt.Sprintf(`{"key":%q,"new_secret":"x"}`, key), 400, "new_secret"},

		{"team new: exists", "POST", "/team/new", `{"team_id":"t1"}`, 409, "team_id"},
		{"team new: bad id", "POST", "/team/new", `{"team_id":"has space"}`, 400, "team_id"},
		{"team new: unknown field", "POST", "/team/new", `{"team_name":"x"}`, 400, "team_name"},
		{"team new: negative tpm", "POST", "/team/new", `{"tpm_limit":-1}`, 400, "tpm_limit"},
		{"team new: bad budget", "POST", "/team/new", `{"max_budget":"lots"}`, 400, "max_budget"},
		{"team new: unknown model", "POST", "/team/new", `{"models":["no-such-model"]}`, 400, "models"},
		{"team new: bad JSON", "POST", "/team/new", `{`, 400, ""},

		{"team info: no id", "GET", "/team/info", ``, 400, "team_id"},
		{"team info: unknown", "GET", "/team/info?team_id=nope", ``, 404, "team_id"},

		{"team update: no id", "POST", "/team/update", `{"rpm_limit":1}`, 400, "team_id"},
		{"team update: unknown", "POST", "/team/update", `{"team_id":"nope","rpm_limit":1}`, 404, "team_id"},
		{"team update: negative parallel", "POST", "/team/update", `{"team_id":"t1","max_parallel_requests":-1}`, 400, "max_parallel_requests"},
		{"team update: wrong type", "POST", "/team/update", `{"team_id":"t1","blocked":1}`, 400, "blocked"},

		{"team delete: no ids", "POST", "/team/delete", `{}`, 400, "team_ids"},
		{"team delete: one unknown deletes none", "POST", "/team/delete", `{"team_ids":["t1","nope"]}`, 404, "team_id"},
		{"team delete: not a list", "POST", "/team/delete", `{"team_ids":"t1"}`, 400, "team_ids"},

		{"team list: unknown param", "GET", "/team/list?x=1", ``, 400, "x"},
		{"team list: POST", "POST", "/team/list", `{}`, 405, ""},

		{"unknown path", "GET", "/key/nope", ``, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot(t)
			code, out := e.do(t, tc.method, tc.target, tc.body)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %v", code, tc.status, out)
			}
			checkError(t, out, "invalid_request_error", tc.param)
			if e.snapshot(t) != before {
				t.Fatal("a rejected call changed the store")
			}
		})
	}
}
