package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/policy"
	"github.com/tollgate-gw/tollgate/pkg/routing"
	"github.com/tollgate-gw/tollgate/pkg/tracing"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// Runtime is the immutable view of a config that request handling reads.
type Runtime struct {
	Server Server
	Routes *routing.Table
	Keys   *policy.Keys
	// Prices holds the price table with per-deployment overrides.
	Prices *accounting.PriceTable
	// Accounting and Redis are read once at start; changing them needs a
	// restart.
	Accounting Accounting
	Redis      Redis
	// RedisPassword is the resolved redis.password.
	RedisPassword string
	// MasterKey is the resolved general_settings.master_key; "" when none
	// (then the admin API is off).
	MasterKey string
	// GroupLimits are the model groups' limits by group name.
	GroupLimits map[string]policy.Limits
	// DeploymentLimits are, for each group with a hard-limited deployment
	// (and only those), all its deployments with their hard limits and
	// weights, for admission to pick from.
	DeploymentLimits map[string][]policy.DeploymentLimit
	Policy           Policy
	// Tracing is the tracer's configuration; Endpoint "" means off. Read
	// once at start.
	Tracing tracing.Config
}

// LabelBounds are the metric label values this config can produce.
func (rt *Runtime) LabelBounds() accounting.LabelBounds {
	var b accounting.LabelBounds
	providers := map[string]bool{}
	for _, g := range rt.Routes.Groups() {
		b.ModelGroups = append(b.ModelGroups, g.Name)
		for _, d := range g.Deployments {
			b.Deployments = append(b.Deployments, d.ID)
			b.Models = append(b.Models, d.Model)
			if !providers[string(d.Provider)] {
				providers[string(d.Provider)] = true
				b.Providers = append(b.Providers, string(d.Provider))
			}
		}
	}
	b.ModelGroups = append(b.ModelGroups, rt.Routes.AliasNames()...)
	return b
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
	p, ok := providerByName(name)
	if !ok {
		return "", "", fmt.Errorf("provider %q is not supported (supported: %s)", name, supportedProviders())
	}
	if rest == "" {
		return "", "", fmt.Errorf("%q names no model after the provider", model)
	}
	return p, rest, nil
}

// deploymentID is model_info.id, or a hash of the entry like LiteLLM's, so
// the id stays stable while the entry does not change. Credentials enter
// the hash as written (the secret reference), never resolved. Cloud
// credential and location fields enter it only when set, named, so entries
// without them keep their ids and entries differing only in them do not
// share one.
func (m ModelEntry) deploymentID() string {
	if m.ModelInfo.ID != "" {
		return m.ModelInfo.ID
	}
	p := m.LiteLLMParams
	parts := []string{m.ModelName, p.Model, p.CustomLLMProvider, p.APIBase, p.APIKey}
	for _, f := range []struct{ name, value string }{
		{"aws_region_name", p.AWSRegionName}, {"aws_access_key_id", p.AWSAccessKeyID},
		{"aws_secret_access_key", p.AWSSecretAccessKey}, {"aws_session_token", p.AWSSessionToken},
		{"aws_profile_name", p.AWSProfileName},
		{"vertex_project", p.VertexProject}, {"vertex_location", p.VertexLocation},
		{"vertex_credentials", p.VertexCredentials},
		{"azure_ad_token", p.AzureADToken}, {"tenant_id", p.TenantID}, {"client_id", p.ClientID},
		{"client_secret", p.ClientSecret}, {"azure_authority_host", p.AzureAuthorityHost},
	} {
		if f.value != "" {
			parts = append(parts, f.name+"="+f.value)
		}
	}
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
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
	var overrides []accounting.DeploymentPrice
	for i, m := range f.ModelList {
		p, model, err := m.provider()
		if err != nil {
			errs = append(errs, fmt.Errorf("model_list[%d].litellm_params.model: %w", i, err))
			continue
		}
		cl, err := m.cloudFor(p, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("model_list[%d].litellm_params: %w", i, err))
			continue
		}
		base := m.LiteLLMParams.APIBase
		if base == "" {
			base = defaultBase(p, cl.region)
		}
		if base == "" {
			errs = append(errs, fmt.Errorf("model_list[%d].litellm_params.api_base: required for provider %s", i, p))
			continue
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
		d := &routing.Deployment{
			ID:         m.deploymentID(),
			ModelGroup: m.ModelName,
			Provider:   p,
			Model:      model,
			BaseURL:    base,
			BasePath:   strings.TrimRight(u.Path, "/"),
			Host:       u.Hostname(),
			APIKey:     key,
			MaxTokens:  m.LiteLLMParams.MaxTokens,
			APIVersion: m.LiteLLMParams.APIVersion,
			Region:     cl.region,
			Project:    cl.project,
			DropParams: f.LiteLLMSettings.DropParams,
			Weight:     m.LiteLLMParams.Weight,
			RPM:        m.LiteLLMParams.RPM,
			TPM:        m.LiteLLMParams.TPM,
			Order:      m.LiteLLMParams.Order,

			MaxParallel: m.LiteLLMParams.MaxParallelRequests,
		}
		if f.RouterSettings.hardRateLimits() {
			d.HardRPM, d.HardTPM = d.RPM, d.TPM
		}
		d.Credentials = cl.creds
		if dp := m.LiteLLMParams.DropParams; dp != nil {
			d.DropParams = *dp
		}
		deployments = append(deployments, d)
		if o := m.priceOverride(); o != (accounting.PriceOverride{}) {
			overrides = append(overrides, accounting.DeploymentPrice{Deployment: d.ID, Provider: string(d.Provider), Model: d.Model, Override: o})
		}
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
		budget, _ := k.budget() // validated above
		static = append(static, policy.StaticKey{ID: k.ID, Secret: secret, Models: k.Models, Budget: budget,
			Limits: policy.Limits{RPM: k.RPMLimit, TPM: k.TPMLimit, MaxParallel: k.MaxParallelRequests}})
	}
	var masterKey string
	if f.GeneralSettings.MasterKey != "" {
		secret, err := resolveSecret(f.GeneralSettings.MasterKey, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("general_settings.master_key: %w", err))
		} else {
			masterKey = secret
			static = append(static, policy.StaticKey{ID: "master", Secret: secret})
		}
	}
	groupLimits := make(map[string]policy.Limits, len(f.RouterSettings.ModelGroupLimits))
	for group, l := range f.RouterSettings.ModelGroupLimits {
		if routes != nil {
			if _, err := routes.Resolve(group); err != nil {
				errs = append(errs, fmt.Errorf("router_settings.model_group_limits: %w", err))
			}
		}
		groupLimits[group] = policy.Limits{RPM: l.RPMLimit, TPM: l.TPMLimit, MaxParallel: l.MaxParallelRequests}
	}
	var deploymentLimits map[string][]policy.DeploymentLimit
	if routes != nil {
		deploymentLimits = deploymentLimitsOf(routes)
	}
	keys, err := policy.NewKeys(static)
	if err != nil {
		errs = append(errs, fmt.Errorf("keys: %w", err))
	}
	prices, err := f.priceTable(overrides)
	if err != nil {
		errs = append(errs, err)
	}
	redisPassword, err := resolveSecret(f.Redis.Password, env)
	if err != nil {
		errs = append(errs, fmt.Errorf("redis.password: %w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var tc tracing.Config
	if f.Tracing.OTLPEndpoint != "" {
		tc, _ = f.Tracing.config(env) // validated above
	}
	return &Runtime{Tracing: tc, Server: f.Server, Routes: routes, Keys: keys, Prices: prices,
		Accounting: f.Accounting, Redis: f.Redis, RedisPassword: redisPassword,
		MasterKey: masterKey, GroupLimits: groupLimits, DeploymentLimits: deploymentLimits, Policy: f.Policy}, nil
}

// deploymentLimitsOf lists the deployments of each pinned group, weighted
// as their Envoy endpoints are.
func deploymentLimitsOf(routes *routing.Table) map[string][]policy.DeploymentLimit {
	out := map[string][]policy.DeploymentLimit{}
	for _, g := range routes.Groups() {
		if !g.Pinned {
			continue
		}
		weights := routing.Weights(g.Deployments)
		ds := make([]policy.DeploymentLimit, len(g.Deployments))
		for i, d := range g.Deployments {
			ds[i] = policy.DeploymentLimit{ID: d.ID, Weight: weights[i],
				Limits: policy.Limits{RPM: d.HardRPM, TPM: d.HardTPM, MaxParallel: d.MaxParallel}}
		}
		out[g.Name] = ds
	}
	return out
}

// priceTable builds the price table: built-in prices, the prices file, and
// the deployments' overrides.
func (f *File) priceTable(overrides []accounting.DeploymentPrice) (*accounting.PriceTable, error) {
	var file []byte
	if path := f.Accounting.PricesFile; path != "" {
		var err error
		if file, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("accounting.prices_file: %w", err)
		}
	}
	t, err := accounting.NewPriceTable(accounting.PriceTableConfig{File: file, Deployments: overrides})
	if err != nil {
		return nil, fmt.Errorf("accounting: %w", err)
	}
	return t, nil
}

// priceOverride is the entry's price settings; zero when it sets none.
func (m ModelEntry) priceOverride() accounting.PriceOverride {
	p := m.LiteLLMParams
	return accounting.PriceOverride{
		InputPerToken: p.InputCostPerToken, OutputPerToken: p.OutputCostPerToken,
		CachedInputPerToken: p.CacheReadInputTokenCost, CacheWritePerToken: p.CacheCreationInputTokenCost,
		ReasoningPerToken: p.OutputCostPerReasoningToken, PerRequest: p.InputCostPerRequest,
		MaxInputTokens: m.ModelInfo.MaxInputTokens,
	}
}
