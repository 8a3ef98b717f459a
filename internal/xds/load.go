package xds

import (
	"fmt"
	"math"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// LoadConfig parses and builds a gateway config the way config.Load does,
// and also returns the deployments' LiteLLM limits, which config.Runtime
// does not carry.
func LoadConfig(data []byte, env func(string) (string, bool)) (*config.Runtime, map[string]Limits, error) {
	f, err := config.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	rt, err := f.Build(env)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid config:\n%w", err)
	}
	limits, err := LimitsFromFile(f, rt)
	if err != nil {
		return nil, nil, err
	}
	return rt, limits, nil
}

// LimitsFromFile reads weight, rpm and tpm of every model_list entry and
// keys them by the id of the deployment rt built from it. Ids may be derived
// by config (a hash), so entries are matched by model group and position:
// Build turns entries into deployments one by one, and a group lists its
// deployments in config order. A count mismatch means that no longer holds
// and is an error rather than a silent misattribution.
func LimitsFromFile(f *config.File, rt *config.Runtime) (map[string]Limits, error) {
	byGroup := make(map[string][]Limits)
	for i, m := range f.ModelList {
		p := m.LiteLLMParams
		if p.Weight < 0 || math.IsNaN(p.Weight) || math.IsInf(p.Weight, 0) || p.RPM < 0 || p.TPM < 0 {
			return nil, fmt.Errorf("model_list[%d].litellm_params: weight, rpm and tpm must be finite and not negative", i)
		}
		byGroup[m.ModelName] = append(byGroup[m.ModelName], Limits{Weight: p.Weight, RPM: p.RPM, TPM: p.TPM})
	}
	out := make(map[string]Limits)
	for _, g := range rt.Routes.Groups() {
		entries := byGroup[g.Name]
		if len(entries) != len(g.Deployments) {
			return nil, fmt.Errorf("model group %q: %d model_list entries but %d deployments", g.Name, len(entries), len(g.Deployments))
		}
		for i, d := range g.Deployments {
			if entries[i] != (Limits{}) {
				out[d.ID] = entries[i]
			}
		}
	}
	return out, nil
}
