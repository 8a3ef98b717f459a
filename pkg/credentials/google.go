package credentials

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
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// Google OAuth defaults.
const (
	// GoogleTokenURL is Google's OAuth 2.0 token endpoint.
	GoogleTokenURL = "https://oauth2.googleapis.com/token"
	// GoogleMetadataTokenURL is the GCE/GKE metadata server's token endpoint
	// for the default service account.
	GoogleMetadataTokenURL = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
	// CloudPlatformScope is the scope Vertex AI accepts.
	CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
)

// GoogleConfig configures a GoogleSource. Only Credentials is usually set.
type GoogleConfig struct {
	// Credentials is a service account or authorized_user key, either as
	// JSON (LiteLLM's vertex_credentials may be inline) or as the path of
	// a key file. Empty means Application Default Credentials: the file
	// named by GOOGLE_APPLICATION_CREDENTIALS, else gcloud's
	// application_default_credentials.json, else the metadata server.
	Credentials string
	// TokenURL replaces the token endpoint of key credentials (by default
	// the key's token_uri, else GoogleTokenURL). Tests point it at a fake.
	TokenURL string
	// MetadataURL replaces GoogleMetadataTokenURL for ADC on Google Cloud.
	MetadataURL string
	// Scopes are the OAuth scopes asked for. Nil means CloudPlatformScope.
	Scopes []string
	// RefreshBefore is how long before expiry a token is replaced. Zero
	// means 5 minutes.
	RefreshBefore time.Duration
	// HTTPClient sends token requests. Nil means a client with a 30 second
	// timeout.
	HTTPClient *http.Client
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger reports refresh failures while a valid token is still in
	// use. Nil logs nothing.
	Logger *slog.Logger
}

// GoogleSource authorizes Vertex AI requests with an OAuth access token.
// The first Apply mints a token; later calls return the cached token at
// once and, within RefreshBefore of its expiry, start one refresh in the
// background. A failed refresh is retried with backoff while the old token
// stays in use; once no valid token is left Apply returns the last error.
// It is safe for concurrent use.
type GoogleSource struct {
	cache     *tokenCache
	projectID string
}

var _ Source = (*GoogleSource)(nil)

// jwtLifetime is the assertion lifetime Google allows at most.
const jwtLifetime = time.Hour

// googleKey is the subset of a Google credentials file this package reads.
type googleKey struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RefreshToken string `json:"refresh_token"`
	// QuotaProjectID is set on gcloud user credentials.
	QuotaProjectID string `json:"quota_project_id"`
}

// NewGoogle builds a GoogleSource. It reads and checks the credentials but
// makes no network call.
func NewGoogle(cfg GoogleConfig) (*GoogleSource, error) {
	s := &GoogleSource{}
	// The minters fill in s.cache.mint; until then the cache only holds
	// the defaulted clock that the service account minter signs with.
	s.cache = newTokenCache("google token", nil, cfg.RefreshBefore, cfg.Now, cfg.Logger)
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: mintTimeout}
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{CloudPlatformScope}
	}

	raw, err := googleCredentials(cfg.Credentials)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		metadata := cfg.MetadataURL
		if metadata == "" {
			metadata = GoogleMetadataTokenURL
		}
		s.cache.mint = metadataMinter(client, metadata, scopes)
		return s, nil
	}
	var key googleKey
	if err := json.Unmarshal(raw, &key); err != nil {
		return nil, fmt.Errorf("google credentials: not a JSON key: %w", err)
	}
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		tokenURL = key.TokenURI
	}
	if tokenURL == "" {
		tokenURL = GoogleTokenURL
	}
	switch key.Type {
	case "service_account":
		pk, err := parseRSAKey(key.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("google credentials: service account private_key: %w", err)
		}
		if key.ClientEmail == "" {
			return nil, errors.New("google credentials: service account has no client_email")
		}
		s.projectID = key.ProjectID
		s.cache.mint = serviceAccountMinter(client, tokenURL, &key, pk, strings.Join(scopes, " "), s.cache.now)
	case "authorized_user":
		if key.RefreshToken == "" || key.ClientID == "" {
			return nil, errors.New("google credentials: authorized_user needs client_id and refresh_token")
		}
		s.projectID = key.QuotaProjectID
		s.cache.mint = refreshTokenMinter(client, tokenURL, &key)
	default:
		return nil, fmt.Errorf("google credentials: unsupported type %q (want service_account or authorized_user)", key.Type)
	}
	return s, nil
}

// googleCredentials returns the key JSON that creds names, or nil for the
// metadata server.
func googleCredentials(creds string) ([]byte, error) {
	creds = strings.TrimSpace(creds)
	if strings.HasPrefix(creds, "{") {
		return []byte(creds), nil
	}
	path := creds
	if path == "" {
		path = os.Getenv("GOOGLE_APPLICATION_CREDENTIALS")
	}
	if path == "" {
		// gcloud auth application-default login writes here.
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		well := filepath.Join(home, ".config", "gcloud", "application_default_credentials.json")
		if _, err := os.Stat(well); err != nil {
			return nil, nil
		}
		path = well
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("google credentials: %w", err)
	}
	return b, nil
}

// ProjectID is the project named by the credentials (a service account's
// project_id, a user's quota_project_id), "" when they name none: the
// default for a deployment without vertex_project.
func (s *GoogleSource) ProjectID() string { return s.projectID }

// Err returns the error of the last token request, nil once one
// succeeds. While it is set a still-valid older token may be in use.
func (s *GoogleSource) Err() error { return s.cache.err() }

// Apply implements Source with authorization: Bearer <token>.
func (s *GoogleSource) Apply(ctx context.Context, _ *Request) ([]transform.Header, error) {
	tok, err := s.Token(ctx)
	if err != nil {
		return nil, err
	}
	return []transform.Header{{Key: "authorization", Value: "Bearer " + tok}}, nil
}

// Token returns a valid access token, waiting for one only when none is
// cached.
func (s *GoogleSource) Token(ctx context.Context) (string, error) { return s.cache.get(ctx) }

// serviceAccountMinter exchanges a signed JWT assertion for a token (the
// OAuth 2.0 JWT bearer grant, RFC 7523).
func serviceAccountMinter(client *http.Client, tokenURL string, key *googleKey, pk *rsa.PrivateKey, scope string, now func() time.Time) func(context.Context) (string, time.Duration, error) {
	email, kid := key.ClientEmail, key.PrivateKeyID
	return func(ctx context.Context) (string, time.Duration, error) {
		iat := now()
		assertion, err := signJWT(pk, kid, map[string]any{
			"iss":   email,
			"scope": scope,
			"aud":   tokenURL,
			"iat":   iat.Unix(),
			"exp":   iat.Add(jwtLifetime).Unix(),
		})
		if err != nil {
			return "", 0, err
		}
		req, err := formRequest(ctx, tokenURL, "google token", url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
			"assertion":  {assertion},
		})
		if err != nil {
			return "", 0, err
		}
		return postToken(client, req, "google token")
	}
}

// refreshTokenMinter redeems a user's refresh token (gcloud ADC).
func refreshTokenMinter(client *http.Client, tokenURL string, key *googleKey) func(context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {key.ClientID},
		"client_secret": {key.ClientSecret},
		"refresh_token": {key.RefreshToken},
	}
	return func(ctx context.Context) (string, time.Duration, error) {
		req, err := formRequest(ctx, tokenURL, "google token", form)
		if err != nil {
			return "", 0, err
		}
		return postToken(client, req, "google token")
	}
}

// metadataMinter asks the metadata server for the attached service
// account's token.
func metadataMinter(client *http.Client, metadataURL string, scopes []string) func(context.Context) (string, time.Duration, error) {
	u := metadataURL + "?scopes=" + url.QueryEscape(strings.Join(scopes, ","))
	return func(ctx context.Context) (string, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", 0, fmt.Errorf("google token: %w", err)
		}
		req.Header.Set("Metadata-Flavor", "Google")
		return postToken(client, req, "google token")
	}
}

// signJWT returns a compact RS256 JWT.
func signJWT(pk *rsa.PrivateKey, kid string, claims map[string]any) (string, error) {
	header := map[string]string{"alg": "RS256", "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("google token: %w", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("google token: %w", err)
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, pk, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("google token: sign assertion: %w", err)
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// parseRSAKey reads a PEM private key in PKCS#8 (what Google issues) or
// PKCS#1 form.
func parseRSAKey(pemKey string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemKey))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, not RSA", k)
	}
	return rk, nil
}
