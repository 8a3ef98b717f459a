package transform_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// TestDropParams checks that every translator that refuses parameters its
// provider cannot honour leaves them out instead under drop_params, and
// still translates the rest of the request.
func TestDropParams(t *testing.T) {
	const body = `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.37,` +
		`"logprobs":true,"top_logprobs":2,"logit_bias":{"50256":-100},"n":3,"presence_penalty":0.5}`
	tests := []struct {
		provider transform.Provider
		target   transform.Target
		// refused is the parameter reported without drop_params.
		refused string
		// dropped are the parameters that must not reach the provider.
		dropped []string
	}{
		{transform.ProviderAnthropic, transform.Target{}, "logprobs", []string{"logprobs", "top_logprobs", "logit_bias", "presence_penalty", `"n"`}},
		{transform.ProviderBedrock, transform.Target{Model: "anthropic.claude-3-haiku-20240307-v1:0"}, "logprobs", []string{"logprobs", "logit_bias", "presence_penalty", `"n"`}},
		{transform.ProviderGemini, transform.Target{APIKey: "k"}, "logprobs", []string{"logprobs", "logit_bias"}},
		{transform.ProviderCohere, transform.Target{APIKey: "k"}, "logprobs", []string{"logprobs", "top_logprobs", "logit_bias", `"n"`}},
		{transform.ProviderOllama, transform.Target{}, "logprobs", []string{"logprobs", "top_logprobs", "logit_bias", `"n"`}},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider), func(t *testing.T) {
			strict, err := transform.NewRequestTranslator(transform.APIChatCompletions, tt.provider, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			_, err = strict.RequestBody([]byte(body))
			var ie *transform.InvalidRequestError
			if !errors.As(err, &ie) || ie.Param != tt.refused {
				t.Fatalf("without drop_params: err = %v, want a refusal of %s", err, tt.refused)
			}

			target := tt.target
			target.DropParams = true
			lenient, err := transform.NewRequestTranslator(transform.APIChatCompletions, tt.provider, target)
			if err != nil {
				t.Fatal(err)
			}
			res, err := lenient.RequestBody([]byte(body))
			if err != nil {
				t.Fatalf("with drop_params: %v", err)
			}
			out := string(res.Body)
			for _, p := range tt.dropped {
				if strings.Contains(out, p) {
					t.Errorf("%s reached the provider: %s", p, out)
				}
			}
			// The parameters the provider takes still go through.
			if !strings.Contains(out, "0.37") || !gjson.Valid(out) {
				t.Errorf("temperature lost or invalid body: %s", out)
			}
		})
	}
}
