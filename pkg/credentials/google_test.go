package credentials_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/credentials"
)

// testKey is generated once: RSA key generation dominates the test time.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tokenServer is a fake Google token endpoint. It verifies JWT bearer
// assertions with the test key against the clock, and refresh-token and
// metadata requests by their fields, and answers tokens "tok-1", "tok-2",
// ... valid for an hour.
type tokenServer struct {
	t     *testing.T
	clock *fakeClock
	srv   *httptest.Server
	calls atomic.Int32
	// fail, when positive, answers that many requests with 503.
	fail atomic.Int32
	// gate, when set, holds each request until it is closed.
	gate chan struct{}
	// seen receives the grant of each request.
	seen chan string
}

func newTokenServer(t *testing.T, clock *fakeClock) *tokenServer {
	ts := &tokenServer{t: t, clock: clock, seen: make(chan string, 100)}
	ts.srv = httptest.NewServer(http.HandlerFunc(ts.handle))
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *tokenServer) handle(w http.ResponseWriter, r *http.Request) {
	if ts.gate != nil {
		<-ts.gate
	}
	n := ts.calls.Add(1)
	grant := r.FormValue("grant_type")
	if r.Method == http.MethodGet {
		grant = "metadata"
	}
	ts.seen <- grant
	if ts.fail.Load() > 0 {
		ts.fail.Add(-1)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":"temporarily_unavailable","error_description":"try later"}`)
		return
	}
	if err := ts.check(r, grant); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":"tok-%d","expires_in":3599,"token_type":"Bearer"}`, n)
}

// check validates a token request as Google would.
func (ts *tokenServer) check(r *http.Request, grant string) error {
	switch grant {
	case "metadata":
		if r.Header.Get("Metadata-Flavor") != "Google" || !strings.Contains(r.URL.Query().Get("scopes"), "cloud-platform") {
			return errors.New("bad metadata request")
		}
		return nil
	case "refresh_token":
		if r.FormValue("refresh_token") != "1//refresh" || r.FormValue("client_id") != "cid" || r.FormValue("client_secret") != "secret" {
			return errors.New("bad refresh token")
		}
		return nil
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		return ts.checkAssertion(r.FormValue("assertion"))
	}
	return fmt.Errorf("unsupported grant %q", grant)
}

func (ts *tokenServer) checkAssertion(jwt string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&testKey().PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	var header struct{ Alg, Typ, Kid string }
	var claims struct {
		Iss, Scope, Aud string
		Iat, Exp        int64
	}
	for i, v := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return err
		}
	}
	now := ts.clock.Now().Unix()
	switch {
	case header.Alg != "RS256" || header.Kid != "kid-1":
		return fmt.Errorf("header %+v", header)
	case claims.Iss != "svc@proj-1.iam.gserviceaccount.com" || claims.Scope != credentials.CloudPlatformScope || claims.Aud != ts.srv.URL+"/token":
		return fmt.Errorf("claims %+v", claims)
	case claims.Iat != now || claims.Exp != now+3600:
		return fmt.Errorf("iat %d exp %d, now %d", claims.Iat, claims.Exp, now)
	}
	return nil
}

// serviceAccountJSON is a key file for the test key whose token_uri is
// the fake.
func serviceAccountJSON(t *testing.T, tokenURI string) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(testKey())
	if err != nil {
		t.Fatal(err)
	}
	key := map[string]string{
		"type": "service_account", "project_id": "proj-1", "private_key_id": "kid-1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "svc@proj-1.iam.gserviceaccount.com", "token_uri": tokenURI,
	}
	b, err := json.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newSource(t *testing.T, cfg credentials.GoogleConfig) *credentials.GoogleSource {
	t.Helper()
	s, err := credentials.NewGoogle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bearer(t *testing.T, s *credentials.GoogleSource) string {
	t.Helper()
	h, err := s.Apply(t.Context(), &credentials.Request{Method: "POST", Path: "/v1/x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].Key != "authorization" {
		t.Fatalf("headers = %+v", h)
	}
	return h[0].Value
}

// eventually polls cond until it holds; background refreshes finish on
// their own goroutine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func setup(t *testing.T) (*fakeClock, *tokenServer, *credentials.GoogleSource) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	ts := newTokenServer(t, clock)
	src := newSource(t, credentials.GoogleConfig{Credentials: serviceAccountJSON(t, ts.srv.URL+"/token"), Now: clock.Now})
	return clock, ts, src
}

func TestGoogle_ServiceAccount(t *testing.T) {
	_, ts, src := setup(t)
	if src.ProjectID() != "proj-1" {
		t.Errorf("project = %q", src.ProjectID())
	}
	if got := bearer(t, src); got != "Bearer tok-1" {
		t.Fatalf("first = %q", got)
	}
	if got := bearer(t, src); got != "Bearer tok-1" || ts.calls.Load() != 1 {
		t.Errorf("cached = %q after %d token calls", got, ts.calls.Load())
	}
}

func TestGoogle_ConcurrentFirstUseMintsOnce(t *testing.T) {
	_, ts, src := setup(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := src.Token(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := ts.calls.Load(); n != 1 {
		t.Errorf("%d token calls, want 1", n)
	}
}

func TestGoogle_RefreshBeforeExpiry(t *testing.T) {
	clock, ts, src := setup(t)
	bearer(t, src)
	clock.Advance(50 * time.Minute) // 9 minutes left: no refresh yet
	if got := bearer(t, src); got != "Bearer tok-1" || ts.calls.Load() != 1 {
		t.Fatalf("%q after %d calls", got, ts.calls.Load())
	}

	clock.Advance(6 * time.Minute) // 3 minutes left: refresh in the background
	ts.gate = make(chan struct{})
	start := time.Now()
	if got := bearer(t, src); got != "Bearer tok-1" {
		t.Fatalf("during refresh = %q", got)
	}
	if got := bearer(t, src); got != "Bearer tok-1" {
		t.Fatalf("second call during refresh = %q", got)
	}
	if time.Since(start) > time.Second {
		t.Error("Apply waited for the token endpoint while a valid token existed")
	}
	close(ts.gate)
	eventually(t, "the refreshed token", func() bool { return bearer(t, src) == "Bearer tok-2" })
	if n := ts.calls.Load(); n != 2 {
		t.Errorf("%d token calls, want one refresh", n)
	}
}

func TestGoogle_RefreshFailureKeepsTokenAndRetries(t *testing.T) {
	clock, ts, src := setup(t)
	bearer(t, src)
	clock.Advance(56 * time.Minute)
	ts.fail.Store(2)
	if got := bearer(t, src); got != "Bearer tok-1" {
		t.Fatalf("got %q", got)
	}
	eventually(t, "the failed refresh", func() bool { return src.Err() != nil })
	first := src.Err()
	if !strings.Contains(first.Error(), "status 503") {
		t.Errorf("Err = %v", first)
	}
	// Within the backoff the old token is used and no new attempt made.
	for range 3 {
		if got := bearer(t, src); got != "Bearer tok-1" {
			t.Fatalf("during backoff = %q", got)
		}
	}
	if n := ts.calls.Load(); n != 2 {
		t.Fatalf("%d token calls during backoff", n)
	}
	clock.Advance(2 * time.Second) // past the first backoff: retried, fails again
	eventually(t, "the second failure", func() bool { bearer(t, src); return src.Err() != first })
	clock.Advance(3 * time.Second) // past the doubled backoff: succeeds
	eventually(t, "the retried refresh", func() bool { return bearer(t, src) != "Bearer tok-1" })
	if got := bearer(t, src); got != "Bearer tok-4" || src.Err() != nil {
		t.Errorf("after recovery = %q, Err %v", got, src.Err())
	}
}

func TestGoogle_EndpointDownWithoutValidToken(t *testing.T) {
	clock, ts, src := setup(t)
	ts.fail.Store(100)
	_, err := src.Apply(t.Context(), &credentials.Request{})
	if err == nil || !strings.Contains(err.Error(), "status 503") || !strings.Contains(err.Error(), "temporarily_unavailable") {
		t.Fatalf("err = %v", err)
	}
	// Backing off: the error is returned without another call.
	if _, err2 := src.Apply(t.Context(), &credentials.Request{}); err2 == nil || ts.calls.Load() != 1 {
		t.Fatalf("err %v after %d calls", err2, ts.calls.Load())
	}
	ts.fail.Store(0)
	clock.Advance(2 * time.Second)
	if got := bearer(t, src); got != "Bearer tok-2" {
		t.Errorf("after recovery = %q", got)
	}
}

func TestGoogle_ExpiredTokenIsNotUsed(t *testing.T) {
	clock, ts, src := setup(t)
	bearer(t, src)
	ts.fail.Store(100)
	clock.Advance(time.Hour)
	if _, err := src.Apply(t.Context(), &credentials.Request{}); err == nil {
		t.Fatal("an expired token was used")
	}
}

func TestGoogle_ContextCancelWhileWaiting(t *testing.T) {
	_, ts, src := setup(t)
	ts.gate = make(chan struct{})
	defer close(ts.gate)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := src.Apply(ctx, &credentials.Request{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

func TestGoogle_CredentialKinds(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	ts := newTokenServer(t, clock)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(keyFile, []byte(serviceAccountJSON(t, ts.srv.URL+"/token")), 0o600); err != nil {
		t.Fatal(err)
	}
	userFile := filepath.Join(dir, "user.json")
	user := `{"type":"authorized_user","client_id":"cid","client_secret":"secret","refresh_token":"1//refresh","quota_project_id":"qp"}`
	if err := os.WriteFile(userFile, []byte(user), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		cfg       credentials.GoogleConfig
		env       string
		wantGrant string
		project   string
	}{
		{"key file path", credentials.GoogleConfig{Credentials: keyFile}, "", "urn:ietf:params:oauth:grant-type:jwt-bearer", "proj-1"},
		{"inline authorized user with token URL", credentials.GoogleConfig{Credentials: user, TokenURL: ts.srv.URL + "/token"}, "", "refresh_token", "qp"},
		{"ADC from GOOGLE_APPLICATION_CREDENTIALS", credentials.GoogleConfig{}, keyFile, "urn:ietf:params:oauth:grant-type:jwt-bearer", "proj-1"},
		{"ADC from the metadata server", credentials.GoogleConfig{MetadataURL: ts.srv.URL + "/metadata"}, "", "metadata", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", tt.env)
			t.Setenv("HOME", t.TempDir())
			tt.cfg.Now = clock.Now
			src := newSource(t, tt.cfg)
			if got := bearer(t, src); !strings.HasPrefix(got, "Bearer tok-") {
				t.Errorf("bearer = %q", got)
			}
			if g := <-ts.seen; g != tt.wantGrant {
				t.Errorf("grant = %q, want %q", g, tt.wantGrant)
			}
			if src.ProjectID() != tt.project {
				t.Errorf("project = %q", src.ProjectID())
			}
		})
	}
}

func TestNewGoogle_Invalid(t *testing.T) {
	tests := []struct {
		name, creds, want string
	}{
		{"missing file", "/nonexistent/key.json", "no such file"},
		{"not JSON", "{oops", "not a JSON key"},
		{"unknown type", `{"type":"external_account"}`, "unsupported type"},
		{"bad private key", `{"type":"service_account","client_email":"a@b","private_key":"nope"}`, "private_key"},
		{"no client email", `{"type":"service_account","private_key":"` + strings.ReplaceAll(pkcs1PEM(t), "\n", `\n`) + `"}`, "client_email"},
		{"user without refresh token", `{"type":"authorized_user","client_id":"c"}`, "refresh_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := credentials.NewGoogle(credentials.GoogleConfig{Credentials: tt.creds})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func pkcs1PEM(t *testing.T) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey())}))
}
