package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// Azure Entra ID defaults.
const (
	// AzureAuthorityHost is Entra ID's public-cloud login host.
	AzureAuthorityHost = "https://login.microsoftonline.com"
	// CognitiveServicesScope is the scope Azure OpenAI accepts.
	CognitiveServicesScope = "https://cognitiveservices.azure.com/.default"
)

// AzureBearer authorizes Azure OpenAI requests with a fixed Entra ID
// token (LiteLLM's azure_ad_token). It never refreshes: the operator
// replaces the token, by config reload, before it expires.
type AzureBearer string

var _ Source = AzureBearer("")

// Apply implements Source with authorization: Bearer <token>.
func (b AzureBearer) Apply(context.Context, *Request) ([]transform.Header, error) {
	if b == "" {
		return nil, errors.New("azure token: empty azure_ad_token")
	}
	return []transform.Header{{Key: "authorization", Value: "Bearer " + string(b)}}, nil
}

// AzureConfig configures an AzureSource: an Entra ID app registration's
// client credentials. TenantID, ClientID and ClientSecret are required.
type AzureConfig struct {
	TenantID     string
	ClientID     string
	ClientSecret string
	// TokenURL replaces the token endpoint,
	// AzureAuthorityHost/{TenantID}/oauth2/v2.0/token. Sovereign clouds
	// set their own login host here; tests point it at a fake.
	TokenURL string
	// Scope is the scope asked for. Empty means CognitiveServicesScope.
	Scope string
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

// AzureSource authorizes Azure OpenAI requests with an Entra ID access
// token minted by the OAuth 2.0 client credentials grant. The first Apply
// mints a token; later calls return the cached token at once and, within
// RefreshBefore of its expiry, start one refresh in the background. A
// failed refresh is retried with backoff while the old token stays in use;
// once no valid token is left Apply returns the last error. It is safe for
// concurrent use.
type AzureSource struct {
	cache *tokenCache
}

var _ Source = (*AzureSource)(nil)

// NewAzure builds an AzureSource. It checks the configuration but makes no
// network call.
func NewAzure(cfg AzureConfig) (*AzureSource, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{{"tenant_id", cfg.TenantID}, {"client_id", cfg.ClientID}, {"client_secret", cfg.ClientSecret}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("azure credentials: %s required", strings.Join(missing, ", "))
	}
	tokenURL := cfg.TokenURL
	if tokenURL == "" {
		tokenURL = AzureAuthorityHost + "/" + url.PathEscape(cfg.TenantID) + "/oauth2/v2.0/token"
	}
	scope := cfg.Scope
	if scope == "" {
		scope = CognitiveServicesScope
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: mintTimeout}
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {cfg.ClientID},
		"client_secret": {cfg.ClientSecret},
		"scope":         {scope},
	}
	mint := func(ctx context.Context) (string, time.Duration, error) {
		req, err := formRequest(ctx, tokenURL, "azure token", form)
		if err != nil {
			return "", 0, err
		}
		return postToken(client, req, "azure token")
	}
	return &AzureSource{cache: newTokenCache("azure token", mint, cfg.RefreshBefore, cfg.Now, cfg.Logger)}, nil
}

// Apply implements Source with authorization: Bearer <token>.
func (s *AzureSource) Apply(ctx context.Context, _ *Request) ([]transform.Header, error) {
	tok, err := s.Token(ctx)
	if err != nil {
		return nil, err
	}
	return []transform.Header{{Key: "authorization", Value: "Bearer " + tok}}, nil
}

// Token returns a valid access token, waiting for one only when none is
// cached.
func (s *AzureSource) Token(ctx context.Context) (string, error) { return s.cache.get(ctx) }

// Err returns the error of the last token request, nil once one
// succeeds. While it is set a still-valid older token may be in use.
func (s *AzureSource) Err() error { return s.cache.err() }
