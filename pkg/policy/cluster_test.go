package policy

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-gw/tollgate/pkg/policy/redistest"
)

// TestRedisCluster runs the store and the limiter on a one-node Redis
// Cluster, which rejects any command or script touching keys of more than
// one slot (CROSSSLOT), the mistake a standalone test cannot catch.
func TestRedisCluster(t *testing.T) {
	srv, err := redistest.StartCluster()
	if errors.Is(err, redistest.ErrNoBinary) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr}, DialerRetries: 1, ContextTimeoutEnabled: true})
	defer c.Close()
	ctx := t.Context()

	s := newRedisStore(t, c, RedisStoreConfig{})
	if err := s.PutTeam(ctx, &Team{ID: "t", Limits: Limits{RPM: 3}}); err != nil {
		t.Fatal(err)
	}
	secret, _ := GenerateSecret(nil)
	rec := NewKeyRecord(secret, t0)
	rec.TeamID, rec.Limits, rec.Budget = "t", Limits{RPM: 10, MaxParallel: 5}, Budget{Max: ptr(100)}
	if err := s.PutKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.ListKeys(ctx); err != nil || len(keys) != 1 {
		t.Fatalf("ListKeys = %v, %v", keys, err)
	}
	a := NewAuthenticator(AuthConfig{Store: s})
	k, err := a.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}

	l := newRedisLimiter(t, c, LimiterConfig{Clock: newFakeClock(t0).Now})
	dep := DeploymentLimit{ID: "d", Limits: Limits{RPM: 10, MaxParallel: 5}}
	req := Request{Key: k, ModelGroup: "g", ModelGroupLimits: Limits{TPM: 1000}, EstimatedTokens: 10, Deployments: []DeploymentLimit{dep}}
	for i := range 3 {
		adm, err := l.Admit(ctx, req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if err := adm.Done(ctx, Outcome{Tokens: 10, Cost: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// The team's RPM rejects the fourth request; the key's and the model
	// group's scripts (other slots) admitted it and must be rolled back.
	var le *LimitError
	if _, err := l.Admit(ctx, req); !errors.As(err, &le) || le.Scope != ScopeTeam {
		t.Fatalf("fourth request: %v, want the team's rpm limit", err)
	}
	v, err := c.HGet(ctx, l.rateKey(&scope{kind: ScopeKey, id: k.ID}, "", windowStart(t0.UnixMilli())), "r").Int64()
	if err != nil || v != 3 {
		t.Fatalf("key request count after a rejected request = %d, %v; want 3 (rolled back)", v, err)
	}
	depScope := &scope{kind: ScopeDeployment, id: dep.ID}
	v, err = c.HGet(ctx, l.rateKey(depScope, "g", windowStart(t0.UnixMilli())), "r").Int64()
	if err != nil || v != 3 {
		t.Fatalf("deployment request count after a rejected request = %d, %v; want 3 (rolled back)", v, err)
	}
	if n, err := c.ZCard(ctx, l.base(depScope, "g")+":par").Result(); err != nil || n != 0 {
		t.Fatalf("deployment slots in use = %d, %v; want 0", n, err)
	}
	// No deployment has capacity: the model group's script (another slot)
	// admitted the request and must be rolled back.
	full := Request{ModelGroup: "g2", ModelGroupLimits: Limits{RPM: 5}, Deployments: []DeploymentLimit{{ID: "e", Limits: Limits{RPM: 1}}}}
	if _, err := l.Admit(ctx, full); err != nil {
		t.Fatal(err)
	}
	var de *DeploymentsError
	if _, err := l.Admit(ctx, full); !errors.As(err, &de) {
		t.Fatalf("second request to a deployment with rpm 1: %v", err)
	}
	v, err = c.HGet(ctx, l.rateKey(&scope{kind: ScopeModelGroup, id: "g2"}, "", windowStart(t0.UnixMilli())), "r").Int64()
	if err != nil || v != 1 {
		t.Fatalf("model group request count after a rejected request = %d, %v; want 1 (rolled back)", v, err)
	}
	if s := l.Stats(); s.RedisErrors != 0 {
		t.Fatalf("redis errors on a cluster: %+v", s)
	}
	if err := s.DeleteKey(ctx, rec.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetKey(ctx, rec.Hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
}
