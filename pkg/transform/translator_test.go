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

// TestBodyValidated_SameTranslation: skipping the validity pass on a body
// the caller has checked changes nothing in what any chat translator sends.
func TestBodyValidated_SameTranslation(t *testing.T) {
	providers := []transform.Provider{transform.ProviderOpenAI, transform.ProviderAnthropic, transform.ProviderAzure,
		transform.ProviderBedrock, transform.ProviderGemini, transform.ProviderCohere, transform.ProviderOllama, "groq"}
	bodies := []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","stream":true,"max_tokens":20,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`,
		`{"model":"m","messages":"not an array"}`,
		`[1,2]`,
	}
	for _, p := range providers {
		for _, body := range bodies {
			target := transform.Target{Model: "provider-model", APIKey: "k", Region: "us-east-1", APIVersion: "2024-10-21"}
			checked, err := transform.NewRequestTranslator(transform.APIChatCompletions, p, target)
			if err != nil {
				t.Fatal(err)
			}
			target.BodyValidated = true
			trusted, _ := transform.NewRequestTranslator(transform.APIChatCompletions, p, target)
			want, werr := checked.RequestBody([]byte(body))
			got, gerr := trusted.RequestBody([]byte(body))
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Errorf("%s %s: error %v, want %v", p, body, gerr, werr)
			}
			if string(got.Body) != string(want.Body) || got.Path != want.Path || got.Stream != want.Stream {
				t.Errorf("%s %s: translated differently:\n%s\n%s", p, body, got.Body, want.Body)
			}
		}
	}
}
