package transform_test

import (
	"errors"
	"testing"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// TestConstructors_EveryProviderHasBothDirections: every provider the table
// names translates chat requests and responses; unknown pairs are
// ErrUnsupported.
func TestConstructors_EveryProviderHasBothDirections(t *testing.T) {
	providers := []transform.Provider{transform.ProviderOpenAI, transform.ProviderAnthropic, transform.ProviderAzure,
		transform.ProviderBedrock, transform.ProviderGemini, transform.ProviderVertexAI, transform.ProviderCohere, transform.ProviderOllama}
	for _, name := range transform.CompatProviders() {
		providers = append(providers, transform.Provider(name))
	}
	for _, p := range providers {
		for _, api := range []transform.API{transform.APIChatCompletions, transform.APIMessages} {
			if _, err := transform.NewRequestTranslator(api, p, transform.Target{}); err != nil {
				t.Errorf("%s request to %s: %v", api, p, err)
			}
			if _, err := transform.NewResponseTranslator(api, p, transform.ResponseOptions{}); err != nil {
				t.Errorf("%s response from %s: %v", api, p, err)
			}
		}
	}
	for _, tc := range []struct {
		api transform.API
		p   transform.Provider
	}{{transform.APIChatCompletions, "acme"}, {transform.APICompletions, transform.ProviderAnthropic}, {"images", transform.ProviderOpenAI}} {
		if _, err := transform.NewRequestTranslator(tc.api, tc.p, transform.Target{}); !errors.Is(err, transform.ErrUnsupported) {
			t.Errorf("%s to %s: err = %v", tc.api, tc.p, err)
		}
		if _, err := transform.NewResponseTranslator(tc.api, tc.p, transform.ResponseOptions{}); !errors.Is(err, transform.ErrUnsupported) {
			t.Errorf("%s from %s: err = %v", tc.api, tc.p, err)
		}
	}
}
