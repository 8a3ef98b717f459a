package transform_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/openai/openai-go/v3"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

const bedrockModel = "us.anthropic.claude-sonnet-4-20250514-v1:0"

var bedrockTarget = transform.Target{Model: bedrockModel, Region: "us-east-1"}

// bedrockContext is the response context the fixtures were written for:
// the tools fixture renames web.search to web_search.
var bedrockContext = transform.BedrockResponseContext{
	Model:     bedrockModel,
	ID:        "chatcmpl-test",
	ToolNames: map[string]string{"web_search": "web.search"},
}

func bedrockFixture(name string) string { return filepath.Join("testdata", "bedrock", name) }

func newBedrockResponse(opts transform.ResponseOptions) transform.ResponseTranslator {
	return transform.NewOpenAIToBedrockResponse(opts, bedrockContext)
}

// TestOpenAIToBedrock_RequestBodyGolden translates every request fixture,
// compares it with its golden file, and checks that translating again gives
// the same bytes from an untouched input.
func TestOpenAIToBedrock_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "bedrock", "request") {
		t.Run(name, func(t *testing.T) {
			in := readFile(t, bedrockFixture(name+".request.json"))
			pristine := bytes.Clone(in)
			tr := transform.NewOpenAIToBedrockRequest(bedrockTarget)
			res, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, bedrockFixture(name+".request.golden.json"), requestGolden(t, res))
			again, err := tr.RequestBody(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(in, pristine) {
				t.Error("translation is not repeatable over an untouched body")
			}
		})
	}
}

// sdkConverse sends in with the official bedrockruntime client to a test
// server and returns the escaped path and body the SDK produced.
func sdkConverse(t *testing.T, in *bedrockruntime.ConverseInput) (string, []byte) {
	t.Helper()
	var path string
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2},"metrics":{"latencyMs":1}}`)
	}))
	defer srv.Close()
	client := bedrockruntime.New(bedrockruntime.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		RetryMaxAttempts: 1,
	})
	if _, err := client.Converse(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	return path, body
}

// jsonApprox compares decoded JSON values, allowing for the float32
// rounding of the SDK's inference parameters.
func jsonApprox(a, b any) bool {
	switch av := a.(type) {
	case float64:
		bv, ok := b.(float64)
		return ok && math.Abs(av-bv) < 1e-6
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, v := range av {
			if !jsonApprox(v, bv[k]) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !jsonApprox(av[i], bv[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

func text(s string) *types.ContentBlockMemberText { return &types.ContentBlockMemberText{Value: s} }

var cachePoint = types.CachePointBlock{Type: types.CachePointTypeDefault}

// TestOpenAIToBedrock_RequestBodyMatchesSDK checks translated requests
// against what the official SDK sends for the same conversation: the same
// escaped path and the same JSON.
func TestOpenAIToBedrock_RequestBodyMatchesSDK(t *testing.T) {
	objectSchema := func(props map[string]any) document.Interface {
		return document.NewLazyDocument(map[string]any{"type": "object", "properties": props})
	}
	tests := []struct {
		name string
		in   bedrockruntime.ConverseInput
	}{
		{"system_developer", bedrockruntime.ConverseInput{
			System: []types.SystemContentBlock{
				&types.SystemContentBlockMemberText{Value: "You are a terse assistant."},
				&types.SystemContentBlockMemberText{Value: "Answer in French."},
				&types.SystemContentBlockMemberCachePoint{Value: cachePoint},
			},
			Messages: []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{text("What is the capital of Italy?")}}},
			InferenceConfig: &types.InferenceConfiguration{
				MaxTokens: aws.Int32(256), Temperature: aws.Float32(0.2), TopP: aws.Float32(0.9),
				StopSequences: []string{"\n\nHuman:"},
			},
		}},
		{"tool_results", bedrockruntime.ConverseInput{
			System: []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Use tools when needed."}},
			Messages: []types.Message{
				{Role: types.ConversationRoleUser, Content: []types.ContentBlock{text("Weather in Paris and Tokyo?")}},
				{Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{
					text("Checking both."),
					&types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{ToolUseId: aws.String("call_01A"), Name: aws.String("get_weather"), Input: document.NewLazyDocument(map[string]any{"city": "Paris"})}},
					&types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{ToolUseId: aws.String("call_01B"), Name: aws.String("get_weather"), Input: document.NewLazyDocument(map[string]any{"city": "Tokyo"})}},
				}},
				{Role: types.ConversationRoleUser, Content: []types.ContentBlock{
					&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{ToolUseId: aws.String("call_01A"), Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: "18°C, cloudy"}}}},
					&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{ToolUseId: aws.String("call_01B"), Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: "22°C, sunny"}}}},
					text("Which is warmer?"),
				}},
			},
			ToolConfig: &types.ToolConfiguration{Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{
				Name:        aws.String("get_weather"),
				InputSchema: &types.ToolInputSchemaMemberJson{Value: objectSchema(map[string]any{"city": map[string]any{"type": "string"}})},
			}}}},
		}},
		{"tools", bedrockruntime.ConverseInput{
			Messages: []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{text("Search the web for the weather in Paris.")}}},
			ToolConfig: &types.ToolConfiguration{
				Tools: []types.Tool{
					&types.ToolMemberToolSpec{Value: types.ToolSpecification{
						Name: aws.String("get_weather"), Description: aws.String("Current weather for a city."),
						InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(map[string]any{
							"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []any{"city"},
						})},
					}},
					&types.ToolMemberToolSpec{Value: types.ToolSpecification{
						Name:        aws.String("web_search"),
						InputSchema: &types.ToolInputSchemaMemberJson{Value: objectSchema(map[string]any{"q": map[string]any{"type": "string"}})},
					}},
					&types.ToolMemberCachePoint{Value: cachePoint},
					&types.ToolMemberToolSpec{Value: types.ToolSpecification{
						Name:        aws.String("get_time"),
						InputSchema: &types.ToolInputSchemaMemberJson{Value: objectSchema(map[string]any{})},
					}},
				},
				ToolChoice: &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String("web_search")}},
			},
		}},
		{"images", bedrockruntime.ConverseInput{
			Messages: []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{
				text("Compare these."),
				&types.ContentBlockMemberImage{Value: types.ImageBlock{Format: types.ImageFormatPng, Source: &types.ImageSourceMemberBytes{Value: mustBase64(t, "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")}}},
				&types.ContentBlockMemberImage{Value: types.ImageBlock{Format: types.ImageFormatJpeg, Source: &types.ImageSourceMemberBytes{Value: mustBase64(t, "/9j/4AAQSkZJRgABAQ==")}}},
				&types.ContentBlockMemberCachePoint{Value: cachePoint},
				&types.ContentBlockMemberDocument{Value: types.DocumentBlock{Format: types.DocumentFormatPdf, Name: aws.String("document-1"), Source: &types.DocumentSourceMemberBytes{Value: mustBase64(t, "JVBERi0xLjQK")}}},
			}}},
			InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(300)},
		}},
		// top_k goes where AWS's Converse example for Claude puts it;
		// metadata entries outside Bedrock's pattern ("#") are left out.
		{"sampling_metadata", bedrockruntime.ConverseInput{
			Messages:                     []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{text("Name three rivers in France.")}}},
			InferenceConfig:              &types.InferenceConfiguration{MaxTokens: aws.Int32(200), Temperature: aws.Float32(0.8)},
			AdditionalModelRequestFields: document.NewLazyDocument(map[string]any{"top_k": 40}),
			RequestMetadata:              map[string]string{"team": "geo-search", "ticket": "GEO-42", "owner": "a.b@example.com"},
			ServiceTier:                  &types.ServiceTier{Type: types.ServiceTierTypeFlex},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := transform.NewOpenAIToBedrockRequest(bedrockTarget).RequestBody(readFile(t, bedrockFixture(tt.name+".request.json")))
			if err != nil {
				t.Fatal(err)
			}
			in := tt.in
			in.ModelId = aws.String(bedrockModel)
			path, body := sdkConverse(t, &in)
			if res.Path != path {
				t.Errorf("path = %s, SDK sends %s", res.Path, path)
			}
			if got, want := decodeJSON(t, res.Body), decodeJSON(t, body); !jsonApprox(got, want) {
				t.Errorf("body differs from the SDK's:\n got: %s\nwant: %s", res.Body, body)
			}
		})
	}
}

func mustBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenAIToBedrock_RequestBodyTarget(t *testing.T) {
	body := []byte(`{"model":"client-model","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	tests := []struct {
		name     string
		target   transform.Target
		wantPath string
	}{
		{"client model", transform.Target{}, "/model/client-model/converse-stream"},
		{"versioned id", transform.Target{Model: "anthropic.claude-3-haiku-20240307-v1:0"}, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream"},
		{"arn", transform.Target{Model: "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0", BasePath: "/proxy"},
			"/proxy/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.amazon.nova-pro-v1%3A0/converse-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := transform.NewOpenAIToBedrockRequest(tt.target).RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.wantPath || !res.Stream {
				t.Errorf("path %q stream %v", res.Path, res.Stream)
			}
			if bytes.Contains(res.Body, []byte("stream")) || bytes.Contains(res.Body, []byte("model")) {
				t.Errorf("body carries stream or model: %s", res.Body)
			}
			for _, h := range res.SetHeaders {
				if h.Key != "content-type" {
					t.Errorf("translator sets %s; signing is the credentials source's job", h.Key)
				}
			}
			if got := strings.Join(res.RemoveHeaders, ","); got != "authorization,x-api-key,api-key,anthropic-version,x-amz-security-token" {
				t.Errorf("removes %s", got)
			}
		})
	}
}

func TestOpenAIToBedrock_ToolNames(t *testing.T) {
	tests := []struct {
		name  string
		tools []string
		want  map[string]string
	}{
		{"valid names are kept", []string{"get_weather", "a-b"}, nil},
		{"invalid bytes", []string{"web.search", "ns/tool name"}, map[string]string{"web_search": "web.search", "ns_tool_name": "ns/tool name"}},
		{"collision with a valid name", []string{"a_b", "a.b"}, map[string]string{"a_b_108bf50c": "a.b"}},
		{"too long", []string{strings.Repeat("x", 70)}, map[string]string{strings.Repeat("x", 55) + "_77f3c97d": strings.Repeat("x", 70)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tools []string
			for _, n := range tt.tools {
				tools = append(tools, `{"type":"function","function":{"name":`+strconvQuote(n)+`}}`)
			}
			body := `{"messages":[{"role":"user","content":"hi"}],"tools":[` + strings.Join(tools, ",") + `]}`
			tr := transform.NewOpenAIToBedrockRequest(bedrockTarget)
			res, err := tr.RequestBody([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			got := tr.(transform.ToolNameMapper).ToolNames()
			if len(got) != len(tt.want) {
				t.Fatalf("names = %v, want %v", got, tt.want)
			}
			for p, c := range tt.want {
				if got[p] != c || !bytes.Contains(res.Body, []byte(`"name":"`+p+`"`)) {
					t.Errorf("names = %v, want %v; body %s", got, tt.want, res.Body)
				}
			}
		})
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestOpenAIToBedrock_RequestBodyOptions(t *testing.T) {
	tests := []struct {
		name    string
		target  transform.Target
		body    string
		want    []string
		notWant []string
	}{
		{"tool_choice required", bedrockTarget, `{"tool_choice":"required","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"toolChoice":{"any":{}}`}, nil},
		{"tool_choice auto", bedrockTarget, `{"tool_choice":"auto","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"toolChoice":{"auto":{}}`}, nil},
		{"parallel_tool_calls true is what Converse does", bedrockTarget, `{"parallel_tool_calls":true,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"toolChoice":{"auto":{}}`}, []string{`parallel`}},
		{"tool_choice none offers no tools", bedrockTarget, `{"tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`toolConfig`, `toolSpec`}},
		{"tool_choice none declares only the history's tools", bedrockTarget, `{"tool_choice":"none","tools":[{"type":"function","function":{"name":"f","description":"real"}},{"type":"function","function":{"name":"g"}}],"messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"t","content":"r"}]}`,
			[]string{`"toolConfig":{"tools":[{"toolSpec":{"name":"f","description":"real"`}, []string{`"name":"g"`, `toolChoice`}},
		{"tool_choice none with response_format forces the json tool", bedrockTarget, `{"tool_choice":"none","response_format":{"type":"json_object"},"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"toolChoice":{"tool":{"name":"json_tool_call"}}`}, []string{`"name":"f"`}},
		{"tool_choice without tools is dropped", bedrockTarget, `{"tool_choice":"required","messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`toolConfig`}},
		{"json_object", bedrockTarget, `{"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"inputSchema":{"json":{"type":"object","additionalProperties":true,"properties":{}}}`, `"toolChoice":{"tool":{"name":"json_tool_call"}}`}, nil},
		{"json mode with thinking is not forced", bedrockTarget, `{"reasoning_effort":"high","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"toolChoice":{"auto":{}}`, `"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":4096}}`, `"maxTokens":8192`}, nil},
		{"thinking passes through", bedrockTarget, `{"max_tokens":5000,"thinking":{"type":"enabled","budget_tokens":3000},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":3000}}`, `"maxTokens":5000`}, nil},
		{"reasoning uses the deployment's max tokens", transform.Target{Model: bedrockModel, DefaultMaxTokens: 9000}, `{"reasoning_effort":"low","messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"maxTokens":9000`, `"budget_tokens":1024`}, nil},
		{"budget shrinks to fit max_tokens", bedrockTarget, `{"reasoning_effort":"high","max_tokens":2000,"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"maxTokens":2000`, `"budget_tokens":1999`}, nil},
		{"no thinking when max_tokens is under the minimum budget", bedrockTarget, `{"reasoning_effort":"high","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"maxTokens":100`}, []string{`additionalModelRequestFields`}},
		{"reasoning none", bedrockTarget, `{"reasoning_effort":"none","messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`additionalModelRequestFields`, `inferenceConfig`}},
		{"consecutive users merge", bedrockTarget, `{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
			[]string{`{"messages":[{"role":"user","content":[{"text":"a"},{"text":"b"}]}]}`}, nil},
		{"tool results go before user text", bedrockTarget, `{"messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"user","content":"note"},{"role":"tool","tool_call_id":"t","content":"r"}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
			[]string{`{"role":"user","content":[{"toolResult":{"toolUseId":"t","content":[{"text":"r"}]}},{"text":"note"}]}`}, nil},
		{"assistant text before tool use when merged", bedrockTarget, `{"messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"assistant","content":"b"}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
			[]string{`{"role":"assistant","content":[{"text":"b"},{"toolUse":{"toolUseId":"t","name":"f","input":{}}}]}`}, nil},
		{"object tool result becomes json", bedrockTarget, `{"messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"t","content":{"temp":18}}]}`,
			[]string{`"content":[{"json":{"temp":18}}]`}, nil},
		{"history tool names are sanitised like tools", bedrockTarget, `{"messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"web.search","arguments":"{}"}}]},{"role":"tool","tool_call_id":"t","content":"r"}],"tools":[{"type":"function","function":{"name":"web.search"}}]}`,
			[]string{`"toolUse":{"toolUseId":"t","name":"web_search"`, `{"toolSpec":{"name":"web_search"`}, nil},
		{"null fields ignored", bedrockTarget, `{"temperature":null,"stop":null,"tools":null,"messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`inferenceConfig`, `toolConfig`}},
		{"blank text dropped", bedrockTarget, `{"messages":[{"role":"system","content":" "},{"role":"user","content":[{"type":"text","text":"\n"},{"type":"text","text":"hi"}]},{"role":"assistant","content":"  "},{"role":"user","content":"again"}]}`,
			[]string{`{"messages":[{"role":"user","content":[{"text":"hi"},{"text":"again"}]}]}`}, []string{`system`}},
		{"blank tool result replaced", bedrockTarget, `{"messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"t","content":" \n"}],"tools":[{"type":"function","function":{"name":"f"}}]}`,
			[]string{`"content":[{"text":"(empty)"}]`}, nil},
		{"whitespace stop kept, empty dropped", bedrockTarget, `{"stop":[""," "],"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"stopSequences":[" "]`}, nil},
		{"top_k beside thinking", bedrockTarget, `{"top_k":5,"thinking":{"type":"enabled","budget_tokens":2000},"max_tokens":3000,"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":2000},"top_k":5}`}, nil},
		{"top_k on nova", transform.Target{Model: "us.amazon.nova-pro-v1:0"}, `{"top_k":20,"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"additionalModelRequestFields":{"inferenceConfig":{"topK":20}}`}, []string{`top_k`}},
		{"top_k dropped on llama", transform.Target{Model: "meta.llama3-70b-instruct-v1:0", DropParams: true}, `{"top_k":20,"temperature":0.37,"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"temperature":0.37`}, []string{`top_k`, `topK`, `additionalModelRequestFields`}},
		{"service tiers Bedrock lacks are not sent", bedrockTarget, `{"service_tier":"scale","metadata":{"bad key!":"v","k":"` + strings.Repeat("v", 257) + `"},"messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`serviceTier`, `requestMetadata`}},
		{"service_tier auto is Bedrock's default", bedrockTarget, `{"service_tier":"auto","metadata":"not an object","messages":[{"role":"user","content":"hi"}]}`,
			nil, []string{`serviceTier`, `requestMetadata`}},
		{"service_tier priority", bedrockTarget, `{"service_tier":"priority","metadata":{"empty":""},"messages":[{"role":"user","content":"hi"}]}`,
			[]string{`"requestMetadata":{"empty":""},"serviceTier":{"type":"priority"}`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := transform.NewOpenAIToBedrockRequest(tt.target).RequestBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(res.Body) {
				t.Fatalf("invalid JSON: %s", res.Body)
			}
			for _, w := range tt.want {
				if !bytes.Contains(res.Body, []byte(w)) {
					t.Errorf("body lacks %s:\n%s", w, res.Body)
				}
			}
			for _, w := range tt.notWant {
				if bytes.Contains(res.Body, []byte(w)) {
					t.Errorf("body has %s:\n%s", w, res.Body)
				}
			}
		})
	}
}

func TestOpenAIToBedrock_RequestBodyInvalid(t *testing.T) {
	user := `{"role":"user","content":"hi"}`
	tests := []struct {
		name      string
		target    transform.Target
		body      string
		wantParam string
	}{
		{"malformed JSON", bedrockTarget, `{"messages":[`, ""},
		{"not an object", bedrockTarget, `[1]`, ""},
		{"no model", transform.Target{}, `{"messages":[` + user + `]}`, "model"},
		{"messages not array", bedrockTarget, `{"messages":"hi"}`, "messages"},
		{"only system", bedrockTarget, `{"messages":[{"role":"system","content":"x"}]}`, "messages"},
		{"assistant first", bedrockTarget, `{"messages":[{"role":"assistant","content":"x"},` + user + `]}`, "messages[0].role"},
		{"tool first", bedrockTarget, `{"messages":[{"role":"tool","tool_call_id":"t","content":"x"}]}`, "messages[0]"},
		{"web image", bedrockTarget, `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`, "messages[0].content[0]"},
		{"bmp image", bedrockTarget, `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]}`, "messages[0].content[0]"},
		{"audio part", bedrockTarget, `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`, "messages[0].content[0]"},
		{"bad tool arguments", bedrockTarget, `{"messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{nope"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"empty tool call name", bedrockTarget, `{"messages":[` + user + `,{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"","arguments":"{}"}}]}]}`, "messages[1].tool_calls[0]"},
		{"tool without name", bedrockTarget, `{"tools":[{"type":"function","function":{"name":""}}],"messages":[` + user + `]}`, "tools[0].function.name"},
		{"hosted tool", bedrockTarget, `{"tools":[{"type":"web_search"}],"messages":[` + user + `]}`, "tools[0].type"},
		{"reserved tool name", bedrockTarget, `{"tools":[{"type":"function","function":{"name":"json_tool_call"}}],"messages":[` + user + `]}`, "tools[0].function.name"},
		{"bad tool_choice", bedrockTarget, `{"tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + user + `]}`, "tool_choice"},
		{"n > 1", bedrockTarget, `{"n":2,"messages":[` + user + `]}`, "n"},
		{"seed", bedrockTarget, `{"seed":7,"messages":[` + user + `]}`, "seed"},
		{"parallel_tool_calls false", bedrockTarget, `{"parallel_tool_calls":false,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[` + user + `]}`, "parallel_tool_calls"},
		{"logprobs", bedrockTarget, `{"logprobs":true,"messages":[` + user + `]}`, "logprobs"},
		{"max_tokens fraction", bedrockTarget, `{"max_tokens":1.5,"messages":[` + user + `]}`, "max_tokens"},
		{"temperature string", bedrockTarget, `{"temperature":"hot","messages":[` + user + `]}`, "temperature"},
		{"stop number", bedrockTarget, `{"stop":[1],"messages":[` + user + `]}`, "stop"},
		{"reasoning on nova", transform.Target{Model: "us.amazon.nova-pro-v1:0"}, `{"reasoning_effort":"low","messages":[` + user + `]}`, "reasoning_effort"},
		{"bad reasoning effort", bedrockTarget, `{"reasoning_effort":"max","messages":[` + user + `]}`, "reasoning_effort"},
		{"thinking on nova", transform.Target{Model: "us.amazon.nova-pro-v1:0"}, `{"thinking":{"type":"enabled"},"messages":[` + user + `]}`, "thinking"},
		{"top_k on llama", transform.Target{Model: "meta.llama3-70b-instruct-v1:0"}, `{"top_k":20,"messages":[` + user + `]}`, "top_k"},
		{"fractional top_k", bedrockTarget, `{"top_k":2.5,"messages":[` + user + `]}`, "top_k"},
		{"web_search_options", bedrockTarget, `{"web_search_options":{},"messages":[` + user + `]}`, "web_search_options"},
		{"verbosity", bedrockTarget, `{"verbosity":"low","messages":[` + user + `]}`, "verbosity"},
		{"prediction", bedrockTarget, `{"prediction":{"type":"content","content":"x"},"messages":[` + user + `]}`, "prediction"},
		{"audio output", bedrockTarget, `{"modalities":["text","audio"],"messages":[` + user + `]}`, "modalities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := transform.NewOpenAIToBedrockRequest(tt.target)
			res, err := tr.RequestBody([]byte(tt.body))
			var ie *transform.InvalidRequestError
			if !errors.As(err, &ie) || !errors.Is(err, transform.ErrInvalidRequest) {
				t.Fatalf("err = %v, body %s", err, res.Body)
			}
			if ie.Param != tt.wantParam || ie.Message == "" {
				t.Errorf("error = %#v, want param %q", ie, tt.wantParam)
			}
			if tr.(transform.ToolNameMapper).ToolNames() != nil {
				t.Error("a failed translation left tool names")
			}
		})
	}
}

func TestOpenAIToBedrock_ResponseBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "bedrock", "response") {
		t.Run(name, func(t *testing.T) {
			res, err := newBedrockResponse(transform.ResponseOptions{Created: created}).ResponseBody(readFile(t, bedrockFixture(name+".response.json")))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, bedrockFixture(name+".response.golden.json"), indentJSON(t, res.Body))
			var c openai.ChatCompletion
			if err := json.Unmarshal(res.Body, &c); err != nil {
				t.Fatal(err)
			}
			if c.Object != "chat.completion" || c.Created != created || len(c.Choices) != 1 || c.Model != bedrockModel || c.ID != "chatcmpl-test" || res.Model != bedrockModel {
				t.Errorf("completion = %+v", c)
			}
		})
	}
}

func bedrockCompletion(t *testing.T, name string) (transform.ResponseResult, openai.ChatCompletion) {
	t.Helper()
	res, err := newBedrockResponse(transform.ResponseOptions{Created: created}).ResponseBody(readFile(t, bedrockFixture(name+".response.json")))
	if err != nil {
		t.Fatal(err)
	}
	var c openai.ChatCompletion
	if err := json.Unmarshal(res.Body, &c); err != nil {
		t.Fatal(err)
	}
	return res, c
}

func reasoningOf(t *testing.T, body []byte) string {
	t.Helper()
	var raw struct {
		Choices []struct {
			Message struct {
				ReasoningContent string `json:"reasoning_content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || len(raw.Choices) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	return raw.Choices[0].Message.ReasoningContent
}

func TestOpenAIToBedrock_ResponseBodyFields(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		res, c := bedrockCompletion(t, "text")
		ch := c.Choices[0]
		if ch.Message.Content != "La capitale de l'Italie est \"Rome\".\nBonne journée !" || ch.FinishReason != "stop" || ch.Message.Role != "assistant" {
			t.Errorf("choice = %+v", ch)
		}
		if c.Usage.PromptTokens != 4221 || c.Usage.CompletionTokens != 14 || c.Usage.TotalTokens != 4235 ||
			c.Usage.PromptTokensDetails.CachedTokens != 3000 || c.Usage.PromptTokensDetails.CacheWriteTokens != 1200 {
			t.Errorf("usage = %+v", c.Usage)
		}
		want := transform.Usage{InputTokens: 4221, OutputTokens: 14, CachedInputTokens: 3000, CacheCreationInputTokens: 1200}
		if res.Usage != want {
			t.Errorf("result usage %+v", res.Usage)
		}
	})
	t.Run("tool_use", func(t *testing.T) {
		_, c := bedrockCompletion(t, "tool_use")
		ch := c.Choices[0]
		if ch.FinishReason != "tool_calls" || ch.Message.Content != "I'll check both." || len(ch.Message.ToolCalls) != 2 {
			t.Fatalf("choice = %+v", ch)
		}
		if tc := ch.Message.ToolCalls[0]; tc.ID != "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q" || tc.Function.Name != "get_weather" || tc.Function.Arguments != `{"city":"Paris"}` {
			t.Errorf("tool call 0 = %+v", tc)
		}
		tc := ch.Message.ToolCalls[1]
		if tc.Function.Name != "web.search" || tc.Type != "function" {
			t.Errorf("renamed tool not mapped back: %+v", tc)
		}
		if tc.Function.Arguments != `{"q":"Tokyo \"JP\" weather","nested":{"a":[1,2,{"b":null}]}}` {
			t.Errorf("arguments = %s", tc.Function.Arguments)
		}
	})
	t.Run("json_schema unwrapped", func(t *testing.T) {
		_, c := bedrockCompletion(t, "json_schema")
		ch := c.Choices[0]
		if ch.Message.Content != `{"name":"Alice","age":30}` || ch.FinishReason != "stop" || len(ch.Message.ToolCalls) != 0 {
			t.Errorf("choice = %+v", ch)
		}
	})
	t.Run("reasoning", func(t *testing.T) {
		res, c := bedrockCompletion(t, "reasoning")
		if c.Choices[0].Message.Content != "27 × 453 = 12,231." {
			t.Errorf("content = %q", c.Choices[0].Message.Content)
		}
		if r := reasoningOf(t, res.Body); r != "27 * 453: 27*400=10800, 27*53=1431, total 12231." {
			t.Errorf("reasoning_content = %q", r)
		}
	})
	for name, want := range map[string]string{"max_tokens": "length", "guardrail": "content_filter"} {
		t.Run(name, func(t *testing.T) {
			if _, c := bedrockCompletion(t, name); c.Choices[0].FinishReason != want {
				t.Errorf("finish = %q, want %q", c.Choices[0].FinishReason, want)
			}
		})
	}
}

func TestOpenAIToBedrock_ResponseBodyBad(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int // 0: malformed
	}{
		{"not JSON", `<html>`, 0},
		{"no output", `{"stopReason":"end_turn"}`, 0},
		{"error in 2xx", `{"message":"The security token included in the request is invalid."}`, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newBedrockResponse(transform.ResponseOptions{}).ResponseBody([]byte(tt.body))
			var pe *transform.ProviderError
			switch {
			case tt.wantStatus == 0 && !errors.Is(err, transform.ErrMalformedResponse):
				t.Errorf("err = %v, want malformed", err)
			case tt.wantStatus != 0 && (!errors.As(err, &pe) || pe.Status != tt.wantStatus):
				t.Errorf("err = %v, want status %d", err, tt.wantStatus)
			}
		})
	}
}

func TestOpenAIToBedrock_ErrorBody(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		want     transform.ProviderError
		wantCode string
	}{
		{"validation", 400, `{"message":"Malformed input request: #: required key [messages] not found"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest}, ""},
		{"input too long", 400, `{"message":"Input is too long for requested model."}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest}, transform.CodeContextLengthExceeded},
		{"too many input tokens", 400, `{"message":"The model returned the following errors: too many input tokens"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest}, transform.CodeContextLengthExceeded},
		{"prompt too long", 400, `{"message":"The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest}, transform.CodeContextLengthExceeded},
		{"access denied", 403, `{"message":"You don't have access to the model with the specified model ID."}`,
			transform.ProviderError{Status: 403, Type: transform.ErrorTypePermission}, ""},
		{"not found", 404, `{"message":"Could not resolve the foundation model from the provided model identifier."}`,
			transform.ProviderError{Status: 404, Type: transform.ErrorTypeNotFound}, ""},
		{"throttled", 429, `{"message":"Too many requests, please wait before trying again."}`,
			transform.ProviderError{Status: 429, Type: transform.ErrorTypeRateLimit}, ""},
		{"model error", 424, `{"message":"Received a bad response from the model."}`,
			transform.ProviderError{Status: 500, Type: transform.ErrorTypeServer}, ""},
		{"internal", 500, `{"message":"The server encountered an internal error."}`,
			transform.ProviderError{Status: 500, Type: transform.ErrorTypeServer}, ""},
		{"unavailable", 503, `{"message":"Bedrock is unable to process your request."}`,
			transform.ProviderError{Status: 503, Type: transform.ErrorTypeOverloaded}, ""},
		{"quota named in body", 400, `{"__type":"com.amazon.bedrock#ServiceQuotaExceededException","message":"Too many tokens per day"}`,
			transform.ProviderError{Status: 429, Type: transform.ErrorTypeRateLimit}, ""},
		{"capitalised message", 403, `{"Message":"User is not authorized"}`,
			transform.ProviderError{Status: 403, Type: transform.ErrorTypePermission}, ""},
		{"html", 502, `<html>bad gateway</html>`,
			transform.ProviderError{Status: 502, Type: transform.ErrorTypeServer}, ""},
		{"openai-shaped proxy", 401, `{"error":{"message":"bad key","type":"authentication_error"}}`,
			transform.ProviderError{Status: 401, Type: transform.ErrorTypeAuthentication}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newBedrockResponse(transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body))
			if e.Status != tt.want.Status || e.Type != tt.want.Type || e.Code != tt.wantCode || e.Message == "" {
				t.Errorf("error = %+v", e)
			}
		})
	}
}

// streamFixture is a stream fixture: the events in readable form and the
// bytes Bedrock sends for them, which the test checks are what the SDK's
// own encoder produces.
type streamFixture struct {
	Events []streamEvent `json:"events"`
	Base64 string        `json:"base64"`
}

// streamEvent is an event, or with Exception an exception, and its payload.
type streamEvent struct {
	Event     string          `json:"event,omitempty"`
	Exception string          `json:"exception,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

// encodeEvents encodes events with the SDK's event stream encoder, with the
// headers Bedrock sends.
func encodeEvents(t testing.TB, fx *streamFixture) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, ev := range fx.Events {
		// Payloads are compacted as Bedrock sends them; the fuzzer's
		// invalid ones go as they are.
		var compact bytes.Buffer
		payload := []byte(ev.Payload)
		if json.Compact(&compact, ev.Payload) == nil {
			payload = compact.Bytes()
		}
		msg := eventstream.Message{Payload: payload}
		if ev.Exception != "" {
			msg.Headers.Set(":exception-type", eventstream.StringValue(ev.Exception))
			msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
			msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
		} else {
			msg.Headers.Set(":event-type", eventstream.StringValue(ev.Event))
			msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
		}
		if err := enc.Encode(&buf, msg); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// bedrockStream reads a stream fixture and returns its bytes, rewriting the
// recorded bytes with -update.
func bedrockStream(t testing.TB, name string) []byte {
	t.Helper()
	path := bedrockFixture(name + ".stream.json")
	var fx streamFixture
	if err := json.Unmarshal(readFile(t, path), &fx); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	encoded := encodeEvents(t, &fx)
	if *update {
		if tt, ok := t.(*testing.T); ok {
			fx.Base64 = base64.StdEncoding.EncodeToString(encoded)
			b, err := json.MarshalIndent(fx, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(tt, path, append(b, '\n'))
		}
		return encoded
	}
	recorded, err := base64.StdEncoding.DecodeString(fx.Base64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !bytes.Equal(recorded, encoded) {
		t.Fatalf("%s: recorded bytes differ from the SDK encoding of the events (run go test -update after checking)", path)
	}
	return recorded
}

func TestOpenAIToBedrock_StreamChunkGolden(t *testing.T) {
	for _, name := range fixtures(t, "bedrock", "stream") {
		whole := bedrockStream(t, name)
		for _, includeUsage := range []bool{false, true} {
			golden := name + ".stream.golden.sse"
			if includeUsage {
				golden = name + ".stream.usage.golden.sse"
			}
			t.Run(golden, func(t *testing.T) {
				opts := transform.ResponseOptions{Stream: true, IncludeUsage: includeUsage, Created: created}
				want, last := runStream(t, newBedrockResponse(opts), [][]byte{whole})
				checkGolden(t, bedrockFixture(golden), want)
				checkChunks(t, want)
				if !bytes.HasSuffix(want, []byte("data: [DONE]\n\n")) != (last.Err != nil) || last.Done == (last.Err != nil) {
					t.Errorf("done %v err %v, output %s", last.Done, last.Err, want)
				}
				var bytewise [][]byte
				for i := range whole {
					bytewise = append(bytewise, whole[i:i+1])
				}
				replays := map[string][][][]byte{"split": splitEverywhere(whole), "byte by byte": {bytewise}}
				for how, runs := range replays {
					for _, run := range runs {
						got, gotLast := runStream(t, newBedrockResponse(opts), run)
						if !bytes.Equal(got, want) || gotLast.Usage != last.Usage || gotLast.Done != last.Done || (gotLast.Err == nil) != (last.Err == nil) {
							t.Fatalf("%s replay differs:\n got: %s\nwant: %s", how, got, want)
						}
					}
				}
			})
		}
	}
}

func bedrockChunks(t *testing.T, name string, includeUsage bool) ([]openai.ChatCompletionChunk, transform.StreamResult, []byte) {
	t.Helper()
	out, last := runStream(t, newBedrockResponse(transform.ResponseOptions{Stream: true, IncludeUsage: includeUsage, Created: created}), [][]byte{bedrockStream(t, name)})
	var chunks []openai.ChatCompletionChunk
	for _, d := range sseDataLines(out) {
		if d == "[DONE]" || strings.HasPrefix(d, `{"error"`) {
			continue
		}
		var c openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, c)
	}
	return chunks, last, out
}

func TestOpenAIToBedrock_StreamChunkFields(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		chunks, last, _ := bedrockChunks(t, "text", true)
		var content strings.Builder
		finish := ""
		for _, c := range chunks[:len(chunks)-1] {
			content.WriteString(c.Choices[0].Delta.Content)
			if c.Choices[0].FinishReason != "" {
				finish = c.Choices[0].FinishReason
			}
		}
		if chunks[0].Choices[0].Delta.Role != "assistant" || content.String() != "La capitale est \"Rome\".\nBonne journée !" || finish != "stop" {
			t.Errorf("role %q content %q finish %q", chunks[0].Choices[0].Delta.Role, content.String(), finish)
		}
		u := chunks[len(chunks)-1]
		if len(u.Choices) != 0 || u.Usage.PromptTokens != 4221 || u.Usage.CompletionTokens != 14 || u.Usage.PromptTokensDetails.CachedTokens != 3000 {
			t.Errorf("usage chunk = %+v", u)
		}
		want := transform.Usage{InputTokens: 4221, OutputTokens: 14, CachedInputTokens: 3000, CacheCreationInputTokens: 1200}
		if last.Usage != want || !last.Done || last.Model != bedrockModel {
			t.Errorf("last = %+v", last)
		}
	})
	t.Run("no usage chunk unless asked", func(t *testing.T) {
		chunks, last, _ := bedrockChunks(t, "text", false)
		for _, c := range chunks {
			if len(c.Choices) == 0 {
				t.Fatal("usage chunk sent though the client did not ask")
			}
		}
		if last.Usage.InputTokens != 4221 {
			t.Errorf("usage not reported: %+v", last.Usage)
		}
	})
	t.Run("tool_use", func(t *testing.T) {
		chunks, _, _ := bedrockChunks(t, "tool_use", false)
		type call struct{ id, name, args string }
		calls := map[int64]*call{}
		finish := ""
		for _, c := range chunks {
			for _, tc := range c.Choices[0].Delta.ToolCalls {
				if calls[tc.Index] == nil {
					calls[tc.Index] = &call{}
				}
				cl := calls[tc.Index]
				cl.id += tc.ID
				cl.name += tc.Function.Name
				cl.args += tc.Function.Arguments
			}
			if c.Choices[0].FinishReason != "" {
				finish = c.Choices[0].FinishReason
			}
		}
		if len(calls) != 2 || *calls[0] != (call{"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", `{"city": "Paris"}`}) ||
			*calls[1] != (call{"tooluse_2QY3Mx1pR8e5Q0bF6kTq9w", "web.search", `{"q":"Tokyo"}`}) || finish != "tool_calls" {
			t.Errorf("calls %+v %+v finish %q", calls[0], calls[1], finish)
		}
	})
	t.Run("json_schema", func(t *testing.T) {
		chunks, _, _ := bedrockChunks(t, "json_schema", false)
		var content strings.Builder
		finish := ""
		for _, c := range chunks {
			content.WriteString(c.Choices[0].Delta.Content)
			if len(c.Choices[0].Delta.ToolCalls) > 0 {
				t.Error("json tool leaked as a tool call")
			}
			if c.Choices[0].FinishReason != "" {
				finish = c.Choices[0].FinishReason
			}
		}
		if content.String() != `{"name":"Alice","age":30}` || finish != "stop" {
			t.Errorf("content %q finish %q", content.String(), finish)
		}
	})
	t.Run("reasoning", func(t *testing.T) {
		_, _, out := bedrockChunks(t, "reasoning", false)
		var reasoning strings.Builder
		for _, d := range sseDataLines(out) {
			var c struct {
				Choices []struct {
					Delta struct {
						ReasoningContent string `json:"reasoning_content"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if d != "[DONE]" && json.Unmarshal([]byte(d), &c) == nil && len(c.Choices) > 0 {
				reasoning.WriteString(c.Choices[0].Delta.ReasoningContent)
			}
		}
		if reasoning.String() != "27*400=10800, 27*53=1431." || !bytes.Contains(out, []byte(`"finish_reason":"length"`)) {
			t.Errorf("reasoning %q in %s", reasoning.String(), out)
		}
	})
	t.Run("exception mid-stream", func(t *testing.T) {
		chunks, last, out := bedrockChunks(t, "exception", true)
		if last.Err == nil || last.Err.Status != 429 || last.Err.Type != transform.ErrorTypeRateLimit || last.Done {
			t.Fatalf("last = %+v", last)
		}
		if len(chunks) != 2 || bytes.Contains(out, []byte("ignored")) || bytes.Contains(out, []byte("[DONE]")) {
			t.Errorf("output %s", out)
		}
		var ev struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		lines := sseDataLines(out)
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil || ev.Error.Type != "rate_limit_error" || !strings.Contains(ev.Error.Message, "Too many tokens") {
			t.Errorf("error event %s (%v)", lines[len(lines)-1], err)
		}
	})
	t.Run("no metadata", func(t *testing.T) {
		_, last, out := bedrockChunks(t, "no_metadata", true)
		if !last.Done || !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) || !bytes.Contains(out, []byte(`"finish_reason":"stop"`)) {
			t.Errorf("last %+v output %s", last, out)
		}
	})
}

func TestOpenAIToBedrock_StreamChunkBroken(t *testing.T) {
	good := bedrockStream(t, "text")
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name   string
		stream []byte
	}{
		{"corrupt byte", corrupt},
		{"truncated", good[:len(good)-5]},
		{"garbage", []byte("data: {\"not\":\"eventstream\"}\n\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newBedrockResponse(transform.ResponseOptions{Stream: true, Created: created})
			res, err := tr.StreamChunk(tt.stream, true)
			if !errors.Is(err, transform.ErrMalformedResponse) || res.Done {
				t.Fatalf("err = %v done %v", err, res.Done)
			}
			lines := sseDataLines(res.Body)
			if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], `{"error"`) {
				t.Errorf("no error event at the end: %s", res.Body)
			}
			if again, err := tr.StreamChunk(good, true); err != nil || len(again.Body) != 0 {
				t.Errorf("input after the error was not ignored: %s %v", again.Body, err)
			}
		})
	}
}

func FuzzOpenAIToBedrock_RequestBody(f *testing.F) {
	addFixtures(f, "bedrock", "request")
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		tr := transform.NewOpenAIToBedrockRequest(bedrockTarget)
		res, err := tr.RequestBody(body)
		if err != nil {
			if !errors.Is(err, transform.ErrInvalidRequest) {
				t.Fatalf("error is not an invalid request: %v", err)
			}
			return
		}
		if !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		again, _ := tr.RequestBody(body)
		if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(body, pristine) {
			t.Fatal("translation is not repeatable over an untouched body")
		}
	})
}

func FuzzOpenAIToBedrock_ResponseBody(f *testing.F) {
	addFixtures(f, "bedrock", "response")
	f.Fuzz(func(t *testing.T, body []byte) {
		tr := newBedrockResponse(transform.ResponseOptions{Created: created})
		res, err := tr.ResponseBody(body)
		if err == nil && !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		tr.ErrorBody(400, body)
	})
}

func FuzzOpenAIToBedrock_StreamChunk(f *testing.F) {
	for _, name := range fixtures(f, "bedrock", "stream") {
		f.Add(bedrockStream(f, name), 17)
	}
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		opts := transform.ResponseOptions{Stream: true, IncludeUsage: cut%2 == 0, Created: created}
		got := translateSplit(newBedrockResponse(opts), stream, cut)
		for _, d := range sseDataLines(got) {
			if d != "[DONE]" && !json.Valid([]byte(d)) {
				t.Fatalf("invalid event %s from %q", d, stream)
			}
		}
		if whole := translateSplit(newBedrockResponse(opts), stream, len(stream)); !bytes.Equal(got, whole) {
			t.Fatalf("output depends on the cut:\n split: %q\n whole: %q", got, whole)
		}
	})
}

// FuzzOpenAIToBedrock_StreamEvents fuzzes the events inside well-framed
// streams, which random bytes rarely reach past the CRCs. Each input line
// is an event: its type, a tab, and its payload; an "!" before the type
// makes it an exception.
func FuzzOpenAIToBedrock_StreamEvents(f *testing.F) {
	for _, name := range fixtures(f, "bedrock", "stream") {
		var fx streamFixture
		if err := json.Unmarshal(readFile(f, bedrockFixture(name+".stream.json")), &fx); err != nil {
			f.Fatal(err)
		}
		var lines []string
		for _, ev := range fx.Events {
			typ := ev.Event
			if ev.Exception != "" {
				typ = "!" + ev.Exception
			}
			lines = append(lines, typ+"\t"+string(ev.Payload))
		}
		f.Add(strings.Join(lines, "\n"), 5)
	}
	f.Fuzz(func(t *testing.T, events string, cut int) {
		var fx streamFixture
		for _, line := range strings.Split(events, "\n") {
			typ, payload, _ := strings.Cut(line, "\t")
			ev := streamEvent{Event: typ, Payload: json.RawMessage(payload)}
			if exc, ok := strings.CutPrefix(typ, "!"); ok {
				ev = streamEvent{Exception: exc, Payload: json.RawMessage(payload)}
			}
			fx.Events = append(fx.Events, ev)
		}
		stream := encodeEvents(t, &fx)
		opts := transform.ResponseOptions{Stream: true, IncludeUsage: cut%2 == 0, Created: created}
		got := translateSplit(newBedrockResponse(opts), stream, cut)
		for _, d := range sseDataLines(got) {
			if d != "[DONE]" && !json.Valid([]byte(d)) {
				t.Fatalf("invalid event %s from %q", d, events)
			}
		}
		if whole := translateSplit(newBedrockResponse(opts), stream, len(stream)); !bytes.Equal(got, whole) {
			t.Fatalf("output depends on the cut:\n split: %q\n whole: %q", got, whole)
		}
	})
}

func BenchmarkOpenAIToBedrock_RequestBody(b *testing.B) {
	for _, name := range []string{"system_developer", "tool_results", "chat_2k"} {
		body := readFile(b, bedrockFixture(name+".request.json"))
		b.Run(name, func(b *testing.B) {
			tr := transform.NewOpenAIToBedrockRequest(bedrockTarget)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := tr.RequestBody(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenAIToBedrock_ResponseBody(b *testing.B) {
	for _, name := range []string{"text", "tool_use"} {
		body := readFile(b, bedrockFixture(name+".response.json"))
		b.Run(name, func(b *testing.B) {
			tr := newBedrockResponse(transform.ResponseOptions{Created: created})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.ResponseBody(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenAIToBedrock_StreamChunk measures one text delta event, the
// bulk of every stream, fed to a translator that is mid-stream.
func BenchmarkOpenAIToBedrock_StreamChunk(b *testing.B) {
	var fx streamFixture
	if err := json.Unmarshal([]byte(`{"events":[{"event":"contentBlockDelta","payload":{"contentBlockIndex":0,"delta":{"text":" the quick brown fox"}}}]}`), &fx); err != nil {
		b.Fatal(err)
	}
	event := encodeEvents(b, &fx)
	tr := newBedrockResponse(transform.ResponseOptions{Stream: true, Created: created})
	if _, err := tr.StreamChunk(bedrockStream(b, "text")[:0], false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(event)))
	for b.Loop() {
		if _, err := tr.StreamChunk(event, false); err != nil {
			b.Fatal(err)
		}
	}
}
