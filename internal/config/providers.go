package config

import (
	"context"
	"errors"
	"fmt"
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

// cloudFor builds the credentials source of a Bedrock or Vertex deployment.
// Bedrock's SigV4 credentials come from the entry or AWS's default chain;
// Vertex's OAuth tokens from vertex_credentials or Google's Application
// Default Credentials.
func (m ModelEntry) cloudFor(p transform.Provider, env func(string) (string, bool)) (cloud, error) {
	lp := m.LiteLLMParams
	switch p {
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
