package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/tollgate-gw/tollgate/pkg/policy"
	"github.com/tollgate-gw/tollgate/pkg/routing"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// Runtime is the immutable view of a config that request handling reads.
type Runtime struct {
	Server Server
	Routes *routing.Table
	Keys   *policy.Keys
}

// providerDefaults are the base URLs used when api_base is empty.
var providerDefaults = map[transform.Provider]string{
	transform.ProviderOpenAI:    "https://api.openai.com/v1",
	transform.ProviderAnthropic: "https://api.anthropic.com",
}

// provider splits "provider/model" into the provider and its model name.
func (m ModelEntry) provider() (transform.Provider, string, error) {
	model := m.LiteLLMParams.Model
	if model == "" {
		return "", "", errors.New("required, as <provider>/<model>")
	}
	name := m.LiteLLMParams.CustomLLMProvider
	rest := model
	if name == "" {
		var ok bool
		name, rest, ok = strings.Cut(model, "/")
		if !ok {
			return "", "", fmt.Errorf("%q has no provider prefix; write it as <provider>/%s", model, model)
		}
	}
	p := transform.Provider(name)
	if _, ok := providerDefaults[p]; !ok {
		return "", "", fmt.Errorf("provider %q is not supported (supported: openai, anthropic)", name)
	}
	if rest == "" {
		return "", "", fmt.Errorf("%q names no model after the provider", model)
	}
	return p, rest, nil
}

// deploymentID is model_info.id, or a hash of the entry like LiteLLM's, so
// the id stays stable while the entry does not change.
func (m ModelEntry) deploymentID() string {
	if m.ModelInfo.ID != "" {
		return m.ModelInfo.ID
	}
	p := m.LiteLLMParams
	h := sha256.Sum256([]byte(strings.Join([]string{m.ModelName, p.Model, p.CustomLLMProvider, p.APIBase, p.APIKey}, "\x00")))
	return hex.EncodeToString(h[:8])
}

// Build validates the file and turns it into runtime values: field
// problems first, then cross-references (aliases, fallbacks, key models).
func (f *File) Build(env func(string) (string, bool)) (*Runtime, error) {
	if err := f.validate(env); err != nil {
		return nil, err
	}
	var errs []error
	deployments := make([]*routing.Deployment, 0, len(f.ModelList))
	for i, m := range f.ModelList {
		p, model, err := m.provider()
		if err != nil {
			errs = append(errs, fmt.Errorf("model_list[%d].litellm_params.model: %w", i, err))
			continue
		}
		base := m.LiteLLMParams.APIBase
		if base == "" {
			base = providerDefaults[p]
		}
		u, err := parseBase(base)
		if err != nil {
			errs = append(errs, fmt.Errorf("model_list[%d].litellm_params.api_base: %w", i, err))
			continue
		}
		key, err := resolveSecret(m.LiteLLMParams.APIKey, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("model_list[%d].litellm_params.api_key: %w", i, err))
			continue
		}
		deployments = append(deployments, &routing.Deployment{
			ID:         m.deploymentID(),
			ModelGroup: m.ModelName,
			Provider:   p,
			Model:      model,
			BaseURL:    base,
			BasePath:   strings.TrimRight(u.Path, "/"),
			Host:       u.Host,
			APIKey:     key,
			MaxTokens:  m.LiteLLMParams.MaxTokens,
			Weight:     m.LiteLLMParams.Weight,
			RPM:        m.LiteLLMParams.RPM,
			TPM:        m.LiteLLMParams.TPM,
			Order:      m.LiteLLMParams.Order,
		})
	}
	fallbacks := make(map[string][]string)
	for _, list := range [][]map[string][]string{f.LiteLLMSettings.Fallbacks, f.RouterSettings.Fallbacks} {
		for _, entry := range list {
			for group, to := range entry {
				fallbacks[group] = to
			}
		}
	}
	routes, err := routing.NewTable(routing.TableConfig{
		Deployments: deployments,
		Aliases:     f.RouterSettings.ModelGroupAlias,
		Fallbacks:   fallbacks,
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("model_list: %w", err))
	}

	static := make([]policy.StaticKey, 0, len(f.Keys)+1)
	for i, k := range f.Keys {
		secret, err := resolveSecret(k.Key, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys[%d].key: %w", i, err))
			continue
		}
		for _, m := range k.Models {
			if routes != nil {
				if _, err := routes.Resolve(m); err != nil {
					errs = append(errs, fmt.Errorf("keys[%d].models: %w", i, err))
				}
			}
		}
		static = append(static, policy.StaticKey{ID: k.ID, Secret: secret, Models: k.Models})
	}
	if f.GeneralSettings.MasterKey != "" {
		secret, err := resolveSecret(f.GeneralSettings.MasterKey, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("general_settings.master_key: %w", err))
		} else {
			static = append(static, policy.StaticKey{ID: "master", Secret: secret})
		}
	}
	keys, err := policy.NewKeys(static)
	if err != nil {
		errs = append(errs, fmt.Errorf("keys: %w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Runtime{Server: f.Server, Routes: routes, Keys: keys}, nil
}
