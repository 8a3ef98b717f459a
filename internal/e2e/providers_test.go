package e2e

import (
	"context"
	"fmt"
	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/extproc"
	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/credentials"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// vertexUser is an authorized_user credential: parsing it needs no key or
// network; staticToken replaces it before any request.
const vertexUser = `{"type":"authorized_user","client_id":"cid","client_secret":"s","refresh_token":"r","quota_project_id":"qp"}`

// staticToken authorizes Vertex requests with a fixed bearer token, in
// place of minting one from a service account.
type staticToken string

func (s staticToken) Apply(context.Context, *credentials.Request) ([]transform.Header, error) {
	return []transform.Header{{Key: "authorization", Value: "Bearer " + string(s)}}, nil
}

// TestProviders_EndToEnd: the OpenAI SDK reaches every provider through
// the stand-in, with the pools rendered by the xDS server from one gateway
// config, each provider's fake checking its own wire format and auth
// (Bedrock's SigV4 signature included), stream and non-stream.
func TestProviders_EndToEnd(t *testing.T) {
	fakes := map[string]*fakeprovider.Server{
		"openai":    fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey("k-openai")),
		"anthropic": fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey("k-anthropic")),
		"azure":     fakeprovider.Start(t, fakeprovider.AzureOpenAI, fakeprovider.WithAPIKey("k-azure")),
		"bedrock":   fakeprovider.Start(t, fakeprovider.Bedrock, fakeprovider.WithAPIKey("aws-secret")),
		"gemini":    fakeprovider.Start(t, fakeprovider.Gemini, fakeprovider.WithAPIKey("k-gemini")),
		"vertex":    fakeprovider.Start(t, fakeprovider.Gemini, fakeprovider.WithAPIKey("vertex-token")),
		// Claude on Vertex AI: the Anthropic fake's Vertex paths, which
		// take the same bearer token.
		"vertex-claude": fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey("vertex-token")),
		"cohere":        fakeprovider.Start(t, fakeprovider.Cohere, fakeprovider.WithAPIKey("k-cohere")),
		"ollama":        fakeprovider.Start(t, fakeprovider.Ollama),
		"groq":          fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey("k-groq")),
	}
	u := func(name string) string { return fakes[name].URL() }
	cfg := fmt.Sprintf(`
model_list:
  - {model_name: p-openai, litellm_params: {model: openai/gpt-4o, api_base: "%s/v1", api_key: k-openai}, model_info: {id: d-openai}}
  - {model_name: p-anthropic, litellm_params: {model: anthropic/claude-sonnet-4-5, api_base: "%s", api_key: k-anthropic}, model_info: {id: d-anthropic}}
  - {model_name: p-azure, litellm_params: {model: azure/my-gpt4o, api_base: "%s", api_key: k-azure, api_version: "2024-10-21"}, model_info: {id: d-azure}}
  - {model_name: p-bedrock, litellm_params: {model: bedrock/anthropic.claude-3-5-haiku-20241022-v1:0, api_base: "%s", aws_region_name: us-east-1, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: aws-secret}, model_info: {id: d-bedrock}}
  - {model_name: p-gemini, litellm_params: {model: gemini/gemini-2.5-flash, api_base: "%s", api_key: k-gemini}, model_info: {id: d-gemini}}
  - {model_name: p-vertex, litellm_params: {model: vertex_ai/gemini-2.5-pro, api_base: "%s", vertex_project: proj-1, vertex_location: us-central1, vertex_credentials: '%s'}, model_info: {id: d-vertex}}
  - {model_name: p-vertex-claude, litellm_params: {model: vertex_ai/claude-sonnet-4-5@20250929, api_base: "%s", vertex_project: proj-1, vertex_location: us-east5, vertex_credentials: '%s'}, model_info: {id: d-vertex-claude}}
  - {model_name: p-cohere, litellm_params: {model: cohere/command-r-plus, api_base: "%s", api_key: k-cohere}, model_info: {id: d-cohere}}
  - {model_name: p-ollama, litellm_params: {model: ollama_chat/llama3.1, api_base: "%s"}, model_info: {id: d-ollama}}
  - {model_name: p-groq, litellm_params: {model: groq/llama-3.3-70b-versatile, api_base: "%s/v1", api_key: k-groq}, model_info: {id: d-groq}}
keys: [{id: demo, key: sk-tollgate-demo}]
`, u("openai"), u("anthropic"), u("azure"), u("bedrock"), u("gemini"), u("vertex"), vertexUser, u("vertex-claude"), vertexUser, u("cohere"), u("ollama"), u("groq"))
	// The rest of the OpenAI-compatible family, each by config alone, served
	// by the same OpenAI-format fake.
	compat := []string{}
	for _, name := range transform.CompatProviders() {
		if name == "groq" {
			continue
		}
		compat = append(compat, name)
		cfg = strings.Replace(cfg, "keys:", fmt.Sprintf("  - {model_name: p-%s, litellm_params: {model: %s/some-model, api_base: \"%s/v1\", api_key: k-groq}, model_info: {id: d-%s}}\nkeys:", name, name, u("groq"), name), 1)
		fakes[name] = fakes["groq"]
	}

	// Embedding deployments on the same fakes.
	cfg = strings.Replace(cfg, "keys:", fmt.Sprintf(`  - {model_name: e-openai, litellm_params: {model: openai/text-embedding-3-small, api_base: "%s/v1", api_key: k-openai}, model_info: {id: de-openai}}
  - {model_name: e-azure, litellm_params: {model: azure/my-embedder, api_base: "%s", api_key: k-azure}, model_info: {id: de-azure}}
  - {model_name: e-bedrock, litellm_params: {model: bedrock/amazon.titan-embed-text-v2:0, api_base: "%s", aws_region_name: us-east-1, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: aws-secret}, model_info: {id: de-bedrock}}
  - {model_name: e-bedrock-cohere, litellm_params: {model: bedrock/cohere.embed-english-v3, api_base: "%s", aws_region_name: us-east-1, aws_access_key_id: AKIDEXAMPLE, aws_secret_access_key: aws-secret}, model_info: {id: de-bedrock-cohere}}
  - {model_name: e-gemini, litellm_params: {model: gemini/text-embedding-004, api_base: "%s", api_key: k-gemini}, model_info: {id: de-gemini}}
  - {model_name: e-vertex, litellm_params: {model: vertex_ai/text-embedding-005, api_base: "%s", vertex_project: proj-1, vertex_credentials: '%s'}, model_info: {id: de-vertex}}
  - {model_name: e-cohere, litellm_params: {model: cohere/embed-v4.0, api_base: "%s", api_key: k-cohere}, model_info: {id: de-cohere}}
keys:`, u("openai"), u("azure"), u("bedrock"), u("bedrock"), u("gemini"), u("vertex"), vertexUser, u("cohere")), 1)
	// Compat providers whose docs name an embeddings API (sources in
	// docs/providers.md [e7]), passed through to the OpenAI-format fake.
	compatEmbed := []string{"mistral", "fireworks_ai", "deepinfra", "hosted_vllm"}
	for _, name := range compatEmbed {
		cfg = strings.Replace(cfg, "keys:", fmt.Sprintf("  - {model_name: e-%s, litellm_params: {model: %s/some-embedder, api_base: \"%s/v1\", api_key: k-groq}, model_info: {id: de-%s}}\nkeys:", name, name, u("groq"), name), 1)
	}

	// Known prices on every deployment, so each request's cost is exact.
	cfg = strings.ReplaceAll(cfg, "litellm_params: {", "litellm_params: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002, ")
	rt, err := config.FromBytes([]byte(cfg), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"d-vertex", "d-vertex-claude", "de-vertex"} {
		d, _ := rt.Routes.Deployment(id)
		d.Credentials = staticToken("vertex-token")
	}
	spend := accounting.NewRecorder(accounting.RecorderConfig{FlushInterval: 5 * time.Millisecond})
	t.Cleanup(func() { spend.Close(context.Background()) })
	extprocAddr := startExtProc(t, rt, extproc.Options{Spend: spend})
	// recorded waits for the spend record of the newest request to a group
	// and checks it against the usage the SDK received.
	// waitRecords waits for n spend records of a group, newest first.
	waitRecords := func(t *testing.T, group string, n int) []accounting.Record {
		t.Helper()
		var recs []accounting.Record
		for deadline := time.Now().Add(5 * time.Second); len(recs) < n && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			recs, _ = spend.Query(context.Background(), accounting.Filter{ModelGroup: group})
		}
		if len(recs) < n {
			t.Fatalf("%d spend records for %s, want %d", len(recs), group, n)
		}
		return recs
	}
	recorded := func(t *testing.T, group string, n int, u openai.CompletionUsage) {
		t.Helper()
		r := waitRecords(t, group, n)[0]
		want := float64(u.PromptTokens)*0.000001 + float64(u.CompletionTokens)*0.000002
		if r.Usage.InputTokens != u.PromptTokens || r.Usage.OutputTokens != u.CompletionTokens || math.Abs(r.Cost-want) > 1e-12 || r.Estimated || r.Unpriced {
			t.Errorf("record usage %+v cost %v estimated %v; SDK usage %d/%d, want cost %v",
				r.Usage, r.Cost, r.Estimated, u.PromptTokens, u.CompletionTokens, want)
		}
	}
	xdsAddr := startXDS(t, []byte(cfg))
	sim := startSim(t, "../../examples/xds/envoy.yaml", map[string]string{"127.0.0.1:50051": extprocAddr, "127.0.0.1:18000": xdsAddr})
	client := openai.NewClient(option.WithBaseURL(sim.URL()+"/v1/"), option.WithAPIKey(demoKey), option.WithMaxRetries(0))

	for _, name := range append([]string{"openai", "anthropic", "azure", "bedrock", "gemini", "vertex", "vertex-claude", "cohere", "ollama", "groq"}, compat...) {
		params := userMessage("hello " + name + " provider")
		params.Model = "p-" + name
		want := "echo: hello " + name + " provider"
		t.Run(name+"/non-stream", func(t *testing.T) {
			cc, err := client.Chat.Completions.New(t.Context(), params)
			if err != nil {
				t.Fatal(err)
			}
			if got := cc.Choices[0].Message.Content; got != want || cc.Choices[0].FinishReason != "stop" {
				t.Errorf("content %q finish %q", got, cc.Choices[0].FinishReason)
			}
			if cc.Usage.PromptTokens == 0 || cc.Usage.CompletionTokens == 0 {
				t.Errorf("usage = %+v", cc.Usage)
			}
			recorded(t, params.Model, 1, cc.Usage)
		})
		t.Run(name+"/stream", func(t *testing.T) {
			p := params
			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: param.NewOpt(true)}
			stream := client.Chat.Completions.NewStreaming(t.Context(), p)
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if got := acc.Choices[0].Message.Content; got != want {
				t.Errorf("streamed %q", got)
			}
			// Mistral reports stream usage unasked, so its translator drops
			// stream_options; the OpenAI-format fake only reports it when
			// asked, so there is no usage to check for it here.
			if acc.Usage.CompletionTokens == 0 && name != "mistral" {
				t.Errorf("stream usage = %+v", acc.Usage)
			}
			if name != "mistral" {
				recorded(t, params.Model, 2, acc.Usage)
			}
		})
		t.Run(name+"/cut", func(t *testing.T) {
			// The provider drops the connection mid-stream, before any
			// usage: the request is still metered, for what was delivered.
			// The delay lets the first events reach the client before the
			// reset; chunks in flight at the reset are never delivered.
			fakes[name].Enqueue(fakeprovider.Step{DropAfterEvents: 4, EventDelay: 20 * time.Millisecond})
			p := userMessage("cut this stream somewhere in the middle please")
			p.Model = params.Model
			stream := client.Chat.Completions.NewStreaming(t.Context(), p)
			for stream.Next() {
			}
			if r := waitRecords(t, params.Model, 3)[0]; r.Usage.InputTokens == 0 || r.Usage.OutputTokens == 0 || r.Cost <= 0 {
				t.Errorf("cut stream record: usage %+v cost %v estimated %v", r.Usage, r.Cost, r.Estimated)
			}
		})
	}
	// Anthropic's Messages API in front of every provider (Claude Code
	// pointed at any deployment).
	ac := anthropic.NewClient(anthropicopt.WithBaseURL(sim.URL()), anthropicopt.WithAPIKey(demoKey), anthropicopt.WithMaxRetries(0))
	// checkCompatUpstream checks that the newest request to a compat
	// provider's fake is the chat request its translator builds.
	checkCompatUpstream := func(t *testing.T, name string, stream bool) {
		t.Helper()
		if name != "groq" && !slices.Contains(compat, name) {
			return
		}
		reqs := fakes[name].Requests()
		last := reqs[len(reqs)-1]
		wantModel := "some-model"
		switch name {
		case "groq":
			wantModel = "llama-3.3-70b-versatile"
		case "fireworks_ai":
			wantModel = "accounts/fireworks/models/some-model"
		}
		if last.Path != "/v1/chat/completions" || last.Status != 200 || gjson.GetBytes(last.Body, "model").Str != wantModel ||
			gjson.GetBytes(last.Body, "stream").Bool() != stream || gjson.GetBytes(last.Body, "messages.0.content.0.text").Str != "messages to "+name {
			t.Errorf("upstream %s %d %s", last.Path, last.Status, last.Body)
		}
		// The chain asks for stream usage, to fill message_delta; the
		// mistral translator drops stream_options (Mistral sends usage
		// unasked).
		if asked := gjson.GetBytes(last.Body, "stream_options.include_usage").Bool(); asked != (stream && name != "mistral") {
			t.Errorf("include_usage %v upstream: %s", asked, last.Body)
		}
	}
	for _, name := range append([]string{"openai", "azure", "bedrock", "gemini", "vertex", "vertex-claude", "cohere", "ollama", "groq"}, compat...) {
		t.Run(name+"/messages", func(t *testing.T) {
			mp := anthropic.MessageNewParams{Model: anthropic.Model("p-" + name), MaxTokens: 100,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("messages to " + name))}}
			msg, err := ac.Messages.New(t.Context(), mp)
			if err != nil {
				t.Fatal(err)
			}
			if len(msg.Content) != 1 || msg.Content[0].Text != "echo: messages to "+name || msg.Usage.OutputTokens == 0 {
				t.Errorf("message = %+v", msg)
			}
			checkCompatUpstream(t, name, false)
			stream := ac.Messages.NewStreaming(t.Context(), mp)
			var acc anthropic.Message
			for stream.Next() {
				if err := acc.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(acc.Content) != 1 || acc.Content[0].Text != "echo: messages to "+name {
				t.Errorf("streamed message = %+v", acc)
			}
			checkCompatUpstream(t, name, true)
		})
	}

	for _, name := range append([]string{"openai", "azure", "bedrock", "bedrock-cohere", "gemini", "vertex", "cohere"}, compatEmbed...) {
		t.Run(name+"/embeddings", func(t *testing.T) {
			res, err := client.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
				Model: "e-" + name,
				Input: openai.EmbeddingNewParamsInputUnion{OfString: param.NewOpt("embed this for " + name)},
			})
			if err != nil {
				t.Fatal(err)
			}
			want := fakeprovider.FakeEmbedding("embed this for "+name, len(res.Data[0].Embedding))
			if len(res.Data) != 1 || len(res.Data[0].Embedding) == 0 || float32(res.Data[0].Embedding[0]) != want[0] {
				t.Errorf("embedding = %d vectors, first %v", len(res.Data), res.Data)
			}
			// Gemini AI Studio and Cohere on Bedrock report no usage: the
			// gateway meters the input with its tokenizer instead.
			if res.Usage.PromptTokens == 0 {
				recs := waitRecords(t, "e-"+name, 1)
				tokens := accounting.EstimateTokens("embed this for " + name)
				if len(recs) != 1 || !recs[0].Estimated || recs[0].Usage.InputTokens != tokens || math.Abs(recs[0].Cost-float64(tokens)*0.000001) > 1e-12 {
					t.Errorf("records %+v, want one estimated at %d input tokens", recs, tokens)
				}
				return
			}
			recorded(t, "e-"+name, 1, openai.CompletionUsage{PromptTokens: res.Usage.PromptTokens})
		})
	}

	// The Bedrock fake verifies SigV4 and answers 403 to a bad signature.
	for _, r := range fakes["bedrock"].Requests() {
		if r.Status == 403 {
			t.Errorf("bedrock refused a signature: %s %s", r.Method, r.Path)
		}
	}
	if path := fakes["azure"].Requests()[0].Path; !strings.HasPrefix(path, "/openai/deployments/my-gpt4o/") {
		t.Errorf("azure path %q", path)
	}
	// Claude on Vertex: Google's path and token, Anthropic's body without
	// its model or first-party credentials, for chat and /v1/messages alike.
	const vertexClaude = "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:"
	var raw, streamed int
	for _, r := range fakes["vertex-claude"].Requests() {
		switch r.Path {
		case vertexClaude + "rawPredict":
			raw++
		case vertexClaude + "streamRawPredict":
			streamed++
		default:
			t.Errorf("vertex-claude path %q", r.Path)
		}
		if r.Header.Get("Authorization") != "Bearer vertex-token" || r.Header.Get("X-Api-Key") != "" || r.Header.Get("Anthropic-Version") != "" || r.Header.Get("X-Goog-Api-Key") != "" {
			t.Errorf("vertex-claude headers %v", r.Header)
		}
		if gjson.GetBytes(r.Body, "model").Exists() || gjson.GetBytes(r.Body, "anthropic_version").Str != "vertex-2023-10-16" {
			t.Errorf("vertex-claude body %s", r.Body)
		}
		if r.Status != 200 {
			t.Errorf("vertex-claude answered %d to %s", r.Status, r.Body)
		}
	}
	if raw < 2 || streamed < 3 {
		t.Errorf("vertex-claude saw %d rawPredict and %d streamRawPredict requests", raw, streamed)
	}
}
