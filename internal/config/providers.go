package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/tollgate-gw/tollgate/pkg/credentials"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// providerAliases are LiteLLM's other names for providers Tollgate serves.
var providerAliases = map[string]transform.Provider{
	"ollama":         transform.ProviderOllama,
	"cohere_chat":    transform.ProviderCohere,
	"vertex_ai_beta": transform.ProviderVertexAI,
}

// fixedBases are the default base URLs of providers with one public
// endpoint. Azure and self-hosted providers need api_base; Bedrock and
// Vertex derive theirs from the region.
var fixedBases = map[transform.Provider]string{
	transform.ProviderOpenAI:    "https://api.openai.com/v1",
	transform.ProviderAnthropic: "https://api.anthropic.com",
	transform.ProviderGemini:    "https://generativelanguage.googleapis.com",
	transform.ProviderCohere:    "https://api.cohere.com",
	transform.ProviderOllama:    "http://localhost:11434",
}

// regional are the providers whose endpoint follows from a region.
var regional = map[transform.Provider]bool{transform.ProviderBedrock: true, transform.ProviderVertexAI: true}

// providerByName resolves a LiteLLM provider name.
func providerByName(name string) (transform.Provider, bool) {
	if p, ok := providerAliases[name]; ok {
		return p, true
	}
	p := transform.Provider(name)
	if _, ok := fixedBases[p]; ok || regional[p] || p == transform.ProviderAzure {
		return p, true
	}
	_, ok := transform.CompatDefaultBase(name)
	return p, ok
}

// supportedProviders lists every accepted provider name, for errors.
func supportedProviders() string {
	names := []string{string(transform.ProviderAzure), string(transform.ProviderBedrock), string(transform.ProviderVertexAI)}
	for p := range fixedBases {
		names = append(names, string(p))
	}
	for a := range providerAliases {
		names = append(names, a)
	}
	names = append(names, transform.CompatProviders()...)
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// defaultBase is the provider's base URL when api_base is empty; "" means
// api_base is required.
func defaultBase(p transform.Provider, region string) string {
	if b, ok := fixedBases[p]; ok {
		return b
	}
	switch p {
	case transform.ProviderBedrock:
		return "https://bedrock-runtime." + region + ".amazonaws.com"
	case transform.ProviderVertexAI:
		if region == "global" {
			return "https://aiplatform.googleapis.com"
		}
		return "https://" + region + "-aiplatform.googleapis.com"
	}
	b, _ := transform.CompatDefaultBase(string(p))
	return b
}

// cloud holds what a regional provider's deployment needs beyond a key:
// its region, project and credentials source.
type cloud struct {
	region, project string
	creds           credentials.Source
}

// cloudFor builds the credentials source of a Bedrock, Vertex or Azure
// deployment. Bedrock's SigV4 credentials come from the entry or AWS's
// default chain; Vertex's OAuth tokens from vertex_credentials or Google's
// Application Default Credentials; Azure's Entra ID tokens from
// azure_ad_token or the client credentials (none: api_key alone).
func (m ModelEntry) cloudFor(p transform.Provider, env func(string) (string, bool)) (cloud, error) {
	lp := m.LiteLLMParams
	switch p {
	case transform.ProviderAzure:
		src, err := m.azureCredentials(env)
		if err != nil || src == nil {
			return cloud{}, err
		}
		return cloud{creds: src}, nil
	case transform.ProviderBedrock:
		region := lp.AWSRegionName
		for _, name := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
			if region == "" {
				region, _ = env(name)
			}
		}
		if region == "" {
			return cloud{}, errors.New("aws_region_name is required for bedrock (or AWS_REGION in the environment)")
		}
		var keys [3]string
		for i, f := range [...]struct{ name, ref string }{
			{"aws_access_key_id", lp.AWSAccessKeyID}, {"aws_secret_access_key", lp.AWSSecretAccessKey}, {"aws_session_token", lp.AWSSessionToken},
		} {
			v, err := resolveSecret(f.ref, env)
			if err != nil {
				return cloud{}, fmt.Errorf("%s: %w", f.name, err)
			}
			keys[i] = v
		}
		src, err := credentials.NewAWS(context.Background(), credentials.AWSOptions{
			Region: region, AccessKeyID: keys[0], SecretAccessKey: keys[1], SessionToken: keys[2], Profile: lp.AWSProfileName,
		})
		if err != nil {
			return cloud{}, fmt.Errorf("aws credentials: %w", err)
		}
		return cloud{region: region, creds: src}, nil
	case transform.ProviderVertexAI:
		location := lp.VertexLocation
		if location == "" {
			location = "us-central1"
		}
		creds, err := resolveSecret(lp.VertexCredentials, env)
		if err != nil {
			return cloud{}, fmt.Errorf("vertex_credentials: %w", err)
		}
		src, err := credentials.NewGoogle(credentials.GoogleConfig{Credentials: creds})
		if err != nil {
			return cloud{}, fmt.Errorf("vertex credentials: %w", err)
		}
		project := lp.VertexProject
		if project == "" {
			project = src.ProjectID()
		}
		if project == "" {
			return cloud{}, errors.New("vertex_project is required (the credentials name no project)")
		}
		return cloud{region: location, project: project, creds: src}, nil
	}
	return cloud{}, nil
}

// azureAuthFields are the Entra ID settings, in config order.
func (lp LiteLLMParams) azureAuthFields() [4]struct{ name, ref string } {
	return [...]struct{ name, ref string }{
		{"azure_ad_token", lp.AzureADToken}, {"tenant_id", lp.TenantID}, {"client_id", lp.ClientID}, {"client_secret", lp.ClientSecret},
	}
}

// validateAzureAuth reports every problem with the Entra ID settings:
// only azure deployments take them, azure_ad_token excludes the client
// credentials, those three come together, neither goes with api_key, each
// reference resolves to a value, and azure_authority_host is an http(s)
// URL set only beside the client credentials.
func (m ModelEntry) validateAzureAuth(env func(string) (string, bool)) error {
	lp := m.LiteLLMParams
	fields := lp.azureAuthFields()
	var set, missing []string
	var errs []error
	for i, f := range fields {
		if f.ref == "" {
			if i > 0 {
				missing = append(missing, f.name)
			}
			continue
		}
		set = append(set, f.name)
		if v, err := resolveSecret(f.ref, env); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		} else if v == "" {
			errs = append(errs, fmt.Errorf("%s: resolves to an empty secret", f.name))
		}
	}
	client := len(fields) - 1 - len(missing)
	if lp.AzureAuthorityHost != "" {
		if client == 0 {
			errs = append(errs, errors.New("azure_authority_host: only allowed with tenant_id/client_id/client_secret (the client credentials grant)"))
		} else if _, err := parseBase(lp.AzureAuthorityHost); err != nil {
			errs = append(errs, fmt.Errorf("azure_authority_host: %w", err))
		}
	}
	if len(set) == 0 {
		return errors.Join(errs...)
	}
	if p, _, err := m.provider(); err == nil && p != transform.ProviderAzure {
		return fmt.Errorf("%s: only provider azure takes Entra ID credentials", strings.Join(set, ", "))
	}
	switch {
	case lp.AzureADToken != "" && client > 0:
		errs = append(errs, errors.New("azure_ad_token and tenant_id/client_id/client_secret are mutually exclusive"))
	case client > 0 && len(missing) > 0:
		errs = append(errs, fmt.Errorf("tenant_id, client_id and client_secret are required together (missing %s)", strings.Join(missing, ", ")))
	}
	if lp.APIKey != "" {
		errs = append(errs, fmt.Errorf("api_key and %s are mutually exclusive: Azure takes one credential", strings.Join(set, ", ")))
	}
	return errors.Join(errs...)
}

// azureCredentials builds an Azure deployment's Entra ID source, nil when
// it authenticates with api_key; azure_authority_host replaces the login
// host of the token endpoint. The settings are validated already.
func (m ModelEntry) azureCredentials(env func(string) (string, bool)) (credentials.Source, error) {
	var v [4]string
	for i, f := range m.LiteLLMParams.azureAuthFields() {
		s, err := resolveSecret(f.ref, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		v[i] = s
	}
	switch {
	case v[0] != "":
		return credentials.AzureBearer(v[0]), nil
	case v[1] != "" || v[2] != "" || v[3] != "":
		cfg := credentials.AzureConfig{TenantID: v[1], ClientID: v[2], ClientSecret: v[3]}
		if host := m.LiteLLMParams.AzureAuthorityHost; host != "" {
			cfg.TokenURL = strings.TrimRight(host, "/") + "/" + url.PathEscape(v[1]) + "/oauth2/v2.0/token"
		}
		src, err := credentials.NewAzure(cfg)
		if err != nil {
			return nil, fmt.Errorf("azure credentials: %w", err)
		}
		return src, nil
	}
	return nil, nil
}
