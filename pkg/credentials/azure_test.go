package credentials_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/credentials"
)

// entraServer is a fake Entra ID token endpoint for tenant "tenant-1". It
// checks client-credentials requests as Entra ID does and answers tokens
// "aad-1", "aad-2", ... valid for an hour, in the v2.0 shape.
type entraServer struct {
	srv   *httptest.Server
	calls atomic.Int32
	// fail, when positive, answers that many requests with 503.
	fail atomic.Int32
	// gate, when set, holds each request until it is closed.
	gate chan struct{}

	mu    sync.Mutex
	forms []url.Values
}

func newEntraServer(t *testing.T) *entraServer {
	es := &entraServer{}
	es.srv = httptest.NewServer(http.HandlerFunc(es.handle))
	t.Cleanup(es.srv.Close)
	return es
}

// tokenURL is the tenant's v2.0 token endpoint on the fake.
func (es *entraServer) tokenURL() string { return es.srv.URL + "/tenant-1/oauth2/v2.0/token" }

func (es *entraServer) handle(w http.ResponseWriter, r *http.Request) {
	if es.gate != nil {
		<-es.gate
	}
	n := es.calls.Add(1)
	_ = r.ParseForm()
	es.mu.Lock()
	es.forms = append(es.forms, r.PostForm)
	es.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if es.fail.Load() > 0 {
		es.fail.Add(-1)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":"temporarily_unavailable","error_description":"AADSTS50196: try later"}`)
		return
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/tenant-1/oauth2/v2.0/token" ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded":
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"invalid_request","error_description":"AADSTS90002: Tenant not found."}`)
	case r.PostForm.Get("grant_type") != "client_credentials":
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"unsupported_grant_type","error_description":"AADSTS70003"}`)
	case r.PostForm.Get("client_id") != "app-1" || r.PostForm.Get("client_secret") != "s3cret":
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
	case r.PostForm.Get("scope") != credentials.CognitiveServicesScope:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_scope","error_description":"AADSTS70011"}`)
	default:
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"aad-%d"}`, n)
	}
}

func (es *entraServer) form(i int) url.Values {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.forms[i]
}

func setupAzure(t *testing.T, mutate ...func(*credentials.AzureConfig)) (*fakeClock, *entraServer, *credentials.AzureSource) {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	es := newEntraServer(t)
	cfg := credentials.AzureConfig{TenantID: "tenant-1", ClientID: "app-1", ClientSecret: "s3cret", TokenURL: es.tokenURL(), Now: clock.Now}
	for _, m := range mutate {
		m(&cfg)
	}
	src, err := credentials.NewAzure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return clock, es, src
}

func azureBearer(t *testing.T, s credentials.Source) string {
	t.Helper()
	h, err := s.Apply(t.Context(), &credentials.Request{Method: "POST", Path: "/openai/deployments/d/chat/completions"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].Key != "authorization" {
		t.Fatalf("headers = %+v", h)
	}
	return h[0].Value
}

func TestAzureSource_Apply(t *testing.T) {
	_, es, src := setupAzure(t)
	if got := azureBearer(t, src); got != "Bearer aad-1" {
		t.Fatalf("first = %q, Err %v", got, src.Err())
	}
	f := es.form(0)
	want := url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-1"}, "client_secret": {"s3cret"},
		"scope": {"https://cognitiveservices.azure.com/.default"}}
	if f.Encode() != want.Encode() {
		t.Errorf("form = %v, want %v", f, want)
	}
	if got := azureBearer(t, src); got != "Bearer aad-1" || es.calls.Load() != 1 {
		t.Errorf("cached = %q after %d token calls", got, es.calls.Load())
	}
}

func TestAzureSource_ConcurrentFirstUseMintsOnce(t *testing.T) {
	_, es, src := setupAzure(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := src.Token(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := es.calls.Load(); n != 1 {
		t.Errorf("%d token calls, want 1", n)
	}
}

func TestAzureSource_RefreshBeforeExpiry(t *testing.T) {
	clock, es, src := setupAzure(t)
	azureBearer(t, src)
	clock.Advance(50 * time.Minute) // 9 minutes left: no refresh yet
	if got := azureBearer(t, src); got != "Bearer aad-1" || es.calls.Load() != 1 {
		t.Fatalf("%q after %d calls", got, es.calls.Load())
	}
	clock.Advance(6 * time.Minute) // 3 minutes left: refresh in the background
	es.gate = make(chan struct{})
	start := time.Now()
	for range 2 {
		if got := azureBearer(t, src); got != "Bearer aad-1" {
			t.Fatalf("during refresh = %q", got)
		}
	}
	if time.Since(start) > time.Second {
		t.Error("Apply waited for the token endpoint while a valid token existed")
	}
	close(es.gate)
	eventually(t, "the refreshed token", func() bool { return azureBearer(t, src) == "Bearer aad-2" })
	if n := es.calls.Load(); n != 2 {
		t.Errorf("%d token calls, want one refresh", n)
	}
}

func TestAzureSource_RefreshFailureKeepsToken(t *testing.T) {
	clock, es, src := setupAzure(t)
	azureBearer(t, src)
	clock.Advance(56 * time.Minute)
	es.fail.Store(1)
	if got := azureBearer(t, src); got != "Bearer aad-1" {
		t.Fatalf("got %q", got)
	}
	eventually(t, "the failed refresh", func() bool { return src.Err() != nil })
	if err := src.Err(); !strings.Contains(err.Error(), "azure token: endpoint returned status 503 temporarily_unavailable AADSTS50196") {
		t.Errorf("Err = %v", err)
	}
	// Within the backoff the old, still valid token is used, with no new
	// attempt.
	for range 3 {
		if got := azureBearer(t, src); got != "Bearer aad-1" {
			t.Fatalf("during backoff = %q", got)
		}
	}
	if n := es.calls.Load(); n != 2 {
		t.Fatalf("%d token calls during backoff", n)
	}
	clock.Advance(2 * time.Second) // past the backoff: retried, succeeds
	eventually(t, "the retried refresh", func() bool { return azureBearer(t, src) == "Bearer aad-3" })
	if src.Err() != nil {
		t.Errorf("Err after recovery = %v", src.Err())
	}
}

func TestAzureSource_Errors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*credentials.AzureConfig)
		advance time.Duration
		want    string
	}{
		{name: "wrong secret", mutate: func(c *credentials.AzureConfig) { c.ClientSecret = "nope" },
			want: "status 401 invalid_client AADSTS7000215"},
		{name: "unknown tenant", mutate: func(c *credentials.AzureConfig) { c.TokenURL = strings.Replace(c.TokenURL, "tenant-1", "tenant-2", 1) },
			want: "status 404 invalid_request"},
		{name: "other scope", mutate: func(c *credentials.AzureConfig) { c.Scope = "api://x/.default" },
			want: "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, src := setupAzure(t, tt.mutate)
			_, err := src.Apply(t.Context(), &credentials.Request{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAzureSource_ExpiredTokenIsNotUsed(t *testing.T) {
	clock, es, src := setupAzure(t)
	azureBearer(t, src)
	es.fail.Store(100)
	clock.Advance(time.Hour)
	if _, err := src.Apply(t.Context(), &credentials.Request{}); err == nil {
		t.Fatal("an expired token was used")
	}
}

func TestAzureSource_ContextCancelWhileWaiting(t *testing.T) {
	_, es, src := setupAzure(t)
	es.gate = make(chan struct{})
	defer close(es.gate)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := src.Apply(ctx, &credentials.Request{}); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "azure token") {
		t.Errorf("err = %v", err)
	}
}

func TestNewAzure_Invalid(t *testing.T) {
	_, err := credentials.NewAzure(credentials.AzureConfig{ClientID: "app-1"})
	if err == nil || !strings.Contains(err.Error(), "tenant_id, client_secret required") {
		t.Errorf("err = %v", err)
	}
}

func TestAzureBearer_Apply(t *testing.T) {
	if got := azureBearer(t, credentials.AzureBearer("static-tok")); got != "Bearer static-tok" {
		t.Errorf("got %q", got)
	}
	if _, err := credentials.AzureBearer("").Apply(t.Context(), &credentials.Request{}); err == nil {
		t.Error("an empty token was sent")
	}
}
