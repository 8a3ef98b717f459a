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

// TestDropParams_NoEquivalent checks parameters some providers have no
// equivalent for: each is refused with a 400 naming it, as LiteLLM's
// UnsupportedParamsError is, and left out under drop_params while the rest
// of the request still goes through.
func TestDropParams_NoEquivalent(t *testing.T) {
	const (
		msgs  = `"messages":[{"role":"user","content":"hi"}],"temperature":0.37`
		tools = `"tools":[{"type":"function","function":{"name":"lookup"}}]`
	)
	claude := transform.Target{Model: "anthropic.claude-3-haiku-20240307-v1:0"}
	vertexClaude := transform.Target{Model: "claude-sonnet-4-5@20250929", Project: "p"}
	vertexGemini := transform.Target{Model: "gemini-2.5-flash", Project: "p"}
	tests := []struct {
		name     string
		provider transform.Provider
		target   transform.Target
		body     string
		refused  string
		// dropped must not reach the provider under drop_params.
		dropped string
	}{
		{"anthropic seed", transform.ProviderAnthropic, transform.Target{}, `{"model":"m",` + msgs + `,"seed":7}`, "seed", `"seed"`},
		{"vertex claude seed", transform.ProviderVertexAI, vertexClaude, `{"model":"m",` + msgs + `,"seed":7}`, "seed", `"seed"`},
		{"bedrock seed", transform.ProviderBedrock, claude, `{` + msgs + `,"seed":7}`, "seed", `"seed"`},
		{"bedrock parallel_tool_calls", transform.ProviderBedrock, claude, `{` + msgs + `,` + tools + `,"parallel_tool_calls":false}`, "parallel_tool_calls", `parallel`},
		{"gemini parallel_tool_calls", transform.ProviderGemini, transform.Target{Model: "gemini-2.5-flash"}, `{` + msgs + `,` + tools + `,"parallel_tool_calls":false}`, "parallel_tool_calls", `parallel`},
		{"vertex gemini parallel_tool_calls", transform.ProviderVertexAI, vertexGemini, `{` + msgs + `,` + tools + `,"parallel_tool_calls":false}`, "parallel_tool_calls", `parallel`},
		{"cohere parallel_tool_calls", transform.ProviderCohere, transform.Target{}, `{"model":"m",` + msgs + `,` + tools + `,"parallel_tool_calls":false}`, "parallel_tool_calls", `parallel`},
		{"ollama parallel_tool_calls", transform.ProviderOllama, transform.Target{}, `{"model":"m",` + msgs + `,` + tools + `,"parallel_tool_calls":false}`, "parallel_tool_calls", `parallel`},
		{"ollama tool_choice required", transform.ProviderOllama, transform.Target{}, `{"model":"m",` + msgs + `,` + tools + `,"tool_choice":"required"}`, "tool_choice", `tool_choice`},
		{"ollama named tool_choice", transform.ProviderOllama, transform.Target{}, `{"model":"m",` + msgs + `,` + tools + `,"tool_choice":{"type":"function","function":{"name":"lookup"}}}`, "tool_choice", `tool_choice`},
		{"bedrock web_search_options", transform.ProviderBedrock, claude, `{` + msgs + `,"web_search_options":{"search_context_size":"low"}}`, "web_search_options", `search`},
		{"cohere web_search_options", transform.ProviderCohere, transform.Target{}, `{"model":"m",` + msgs + `,"web_search_options":{}}`, "web_search_options", `search`},
		{"ollama web_search_options", transform.ProviderOllama, transform.Target{}, `{"model":"m",` + msgs + `,"web_search_options":{}}`, "web_search_options", `search`},
		{"bedrock top_k on llama", transform.ProviderBedrock, transform.Target{Model: "meta.llama3-70b-instruct-v1:0"}, `{` + msgs + `,"top_k":20}`, "top_k", `20`},
		{"anthropic prediction", transform.ProviderAnthropic, transform.Target{}, `{"model":"m",` + msgs + `,"prediction":{"type":"content","content":"draft"}}`, "prediction", `draft`},
		{"vertex claude verbosity", transform.ProviderVertexAI, vertexClaude, `{"model":"m",` + msgs + `,"verbosity":"low"}`, "verbosity", `verbosity`},
		{"vertex gemini audio output", transform.ProviderVertexAI, vertexGemini, `{` + msgs + `,"modalities":["text","audio"]}`, "modalities", `audio`},
		{"bedrock prediction", transform.ProviderBedrock, claude, `{` + msgs + `,"prediction":{"type":"content","content":"draft"}}`, "prediction", `draft`},
		{"gemini verbosity", transform.ProviderGemini, transform.Target{Model: "gemini-2.5-flash"}, `{` + msgs + `,"verbosity":"high"}`, "verbosity", `verbosity`},
		{"cohere image output", transform.ProviderCohere, transform.Target{}, `{"model":"m",` + msgs + `,"modalities":["image"]}`, "modalities", `image`},
		{"ollama prediction", transform.ProviderOllama, transform.Target{}, `{"model":"m",` + msgs + `,"prediction":{"type":"content","content":"draft"}}`, "prediction", `draft`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strict, err := transform.NewRequestTranslator(transform.APIChatCompletions, tt.provider, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			_, err = strict.RequestBody([]byte(tt.body))
			var ie *transform.InvalidRequestError
			if !errors.As(err, &ie) || ie.Param != tt.refused || !strings.Contains(ie.Message, tt.refused) {
				t.Fatalf("without drop_params: err = %v, want a refusal naming %s", err, tt.refused)
			}

			target := tt.target
			target.DropParams = true
			lenient, err := transform.NewRequestTranslator(transform.APIChatCompletions, tt.provider, target)
			if err != nil {
				t.Fatal(err)
			}
			res, err := lenient.RequestBody([]byte(tt.body))
			if err != nil {
				t.Fatalf("with drop_params: %v", err)
			}
			out := string(res.Body)
			if strings.Contains(out, tt.dropped) || !strings.Contains(out, "0.37") || !gjson.Valid(out) {
				t.Errorf("%s reached the provider, or the rest was lost: %s", tt.dropped, out)
			}
			if strings.Contains(tt.body, tools) && !strings.Contains(out, "lookup") {
				t.Errorf("the tools were lost: %s", out)
			}
		})
	}
}

// TestDropParams_DefaultsAccepted checks that the values naming what every
// provider does anyway are taken without drop_params: parallel tool calls
// on, and tool_choice auto.
func TestDropParams_DefaultsAccepted(t *testing.T) {
	const body = `{"model":"m","messages":[{"role":"user","content":"hi"}],` +
		`"tools":[{"type":"function","function":{"name":"lookup"}}],"tool_choice":"auto","parallel_tool_calls":true}`
	for _, tt := range []struct {
		provider transform.Provider
		target   transform.Target
	}{
		{transform.ProviderAnthropic, transform.Target{}},
		{transform.ProviderBedrock, transform.Target{Model: "anthropic.claude-3-haiku-20240307-v1:0"}},
		{transform.ProviderGemini, transform.Target{}},
		{transform.ProviderVertexAI, transform.Target{Model: "claude-sonnet-4-5@20250929", Project: "p"}},
		{transform.ProviderCohere, transform.Target{}},
		{transform.ProviderOllama, transform.Target{}},
	} {
		t.Run(string(tt.provider)+" "+tt.target.Model, func(t *testing.T) {
			tr, err := transform.NewRequestTranslator(transform.APIChatCompletions, tt.provider, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			res, err := tr.RequestBody([]byte(body))
			if err != nil || !strings.Contains(string(res.Body), "lookup") {
				t.Errorf("err = %v, body %s", err, res.Body)
			}
		})
	}
}

// TestDropParams_NoOutputEffect checks the parameters that tag or route a
// request without changing the answer: every translating provider takes
// them without drop_params, and only the ones a provider has a field for
// reach it (safety_identifier as Anthropic's metadata.user_id, metadata as
// Bedrock's requestMetadata, service_tier as Bedrock's serviceTier).
// Refusing them would break OpenAI SDK clients for nothing.
func TestDropParams_NoOutputEffect(t *testing.T) {
	const body = `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.37,` +
		`"user":"u-42","safety_identifier":"sid-42","store":true,"metadata":{"team":"t-42"},` +
		`"service_tier":"flex","prompt_cache_key":"pck-42","modalities":["text"],"logprobs":false,"n":1}`
	claude := transform.Target{Model: "anthropic.claude-3-haiku-20240307-v1:0"}
	tests := []struct {
		name     string
		provider transform.Provider
		target   transform.Target
		// sent are the values that reach the provider, in its fields.
		sent []string
	}{
		{"anthropic", transform.ProviderAnthropic, transform.Target{}, []string{`"metadata":{"user_id":"sid-42"}`}},
		{"vertex claude", transform.ProviderVertexAI, transform.Target{Model: "claude-sonnet-4-5@20250929", Project: "p"}, []string{`"metadata":{"user_id":"sid-42"}`}},
		{"bedrock", transform.ProviderBedrock, claude, []string{`"requestMetadata":{"team":"t-42"}`, `"serviceTier":{"type":"flex"}`}},
		{"gemini", transform.ProviderGemini, transform.Target{}, nil},
		{"vertex gemini", transform.ProviderVertexAI, transform.Target{Model: "gemini-2.5-flash", Project: "p"}, nil},
		{"cohere", transform.ProviderCohere, transform.Target{}, nil},
		{"ollama", transform.ProviderOllama, transform.Target{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := transform.NewRequestTranslator(transform.APIChatCompletions, tt.provider, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			res, err := tr.RequestBody([]byte(body))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			out := string(res.Body)
			if !gjson.Valid(out) || !strings.Contains(out, "0.37") {
				t.Fatalf("invalid body or temperature lost: %s", out)
			}
			rest := out
			for _, s := range tt.sent {
				if !strings.Contains(rest, s) {
					t.Errorf("body lacks %s: %s", s, out)
				}
				rest = strings.Replace(rest, s, "", 1)
			}
			for _, s := range []string{"u-42", "sid-42", "store", "t-42", "flex", "pck-42", "modalities", "logprobs"} {
				if strings.Contains(rest, s) {
					t.Errorf("%s reached the provider: %s", s, out)
				}
			}
		})
	}
}

// TestDropParams_WebSearch checks web_search_options on the providers that
// run a search of their own: Anthropic's server tool (on Vertex too) and
// Google Search grounding (AI Studio and Vertex).
func TestDropParams_WebSearch(t *testing.T) {
	const body = `{"model":"m","messages":[{"role":"user","content":"news?"}],` +
		`"web_search_options":{"search_context_size":"medium","user_location":{"type":"approximate","approximate":{"country":"GB"}}}}`
	tests := []struct {
		name     string
		provider transform.Provider
		target   transform.Target
		tools    string
	}{
		{"anthropic", transform.ProviderAnthropic, transform.Target{},
			`[{"type":"web_search_20250305","name":"web_search","max_uses":5,"user_location":{"type":"approximate","country":"GB"}}]`},
		{"vertex claude", transform.ProviderVertexAI, transform.Target{Model: "claude-sonnet-4-5@20250929", Project: "p"},
			`[{"type":"web_search_20250305","name":"web_search","max_uses":5,"user_location":{"type":"approximate","country":"GB"}}]`},
		{"gemini", transform.ProviderGemini, transform.Target{}, `[{"googleSearch":{}}]`},
		{"vertex gemini", transform.ProviderVertexAI, transform.Target{Model: "gemini-2.5-flash", Project: "p"}, `[{"googleSearch":{}}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := transform.NewRequestTranslator(transform.APIChatCompletions, tt.provider, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			res, err := tr.RequestBody([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(res.Body, "tools").Raw; got != tt.tools {
				t.Errorf("tools = %s, want %s", got, tt.tools)
			}
		})
	}
}
