package transform_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/tollgate-gw/tollgate/pkg/transform"
	"google.golang.org/genai"
)

// embedDirs are the embeddings fixture directories, each with the provider
// and target its requests are translated for.
var embedDirs = []struct {
	dir      string
	provider transform.Provider
	target   transform.Target
}{
	{"openai", transform.ProviderOpenAI, transform.Target{BasePath: "/v1", APIKey: "sk-test"}},
	{"azure", transform.ProviderAzure, transform.Target{APIKey: "az-key"}},
	{"bedrock", transform.ProviderBedrock, transform.Target{Region: "us-east-1"}},
	{"gemini", transform.ProviderGemini, transform.Target{APIKey: "g-key"}},
	{"vertex", transform.ProviderVertexAI, transform.Target{Project: "proj", Region: "europe-west4"}},
	{"cohere", transform.ProviderCohere, transform.Target{APIKey: "co-key"}},
}

func embedPath(dir, name, kind string) string {
	return filepath.Join("testdata", "embeddings", dir, name+"."+kind)
}

func newEmbedRequest(t testing.TB, p transform.Provider, tg transform.Target) transform.RequestTranslator {
	t.Helper()
	tr, err := transform.NewRequestTranslator(transform.APIEmbeddings, p, tg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newEmbedResponse(t testing.TB, p transform.Provider, o transform.ResponseOptions) transform.ResponseTranslator {
	t.Helper()
	tr, err := transform.NewResponseTranslator(transform.APIEmbeddings, p, o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestEmbeddings_RequestBodyGolden(t *testing.T) {
	for _, d := range embedDirs {
		for _, name := range fixtures(t, filepath.Join("embeddings", d.dir), "request") {
			t.Run(d.dir+"/"+name, func(t *testing.T) {
				body := readFile(t, embedPath(d.dir, name, "request.json"))
				pristine := bytes.Clone(body)
				tr := newEmbedRequest(t, d.provider, d.target)
				res, err := tr.RequestBody(body)
				if err != nil {
					t.Fatal(err)
				}
				if res.Stream {
					t.Error("embeddings request marked as a stream")
				}
				checkGolden(t, embedPath(d.dir, name, "request.golden.json"), requestGolden(t, res))
				again, _ := tr.RequestBody(body)
				if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(body, pristine) {
					t.Error("translation is not repeatable over an untouched body")
				}
			})
		}
	}
}

func TestEmbeddings_RequestBodyPassThrough(t *testing.T) {
	body := []byte(`{"model":"text-embedding-3-small","input":"hi"}`)
	tests := []struct {
		name     string
		provider transform.Provider
		target   transform.Target
		path     string
		model    string // "" when the body must pass uncopied
	}{
		{"openai same model", transform.ProviderOpenAI, transform.Target{BasePath: "/v1", Model: "text-embedding-3-small"}, "/v1/embeddings", ""},
		{"openai model rewrite", transform.ProviderOpenAI, transform.Target{BasePath: "/v1", Model: "text-embedding-3-large"}, "/v1/embeddings", "text-embedding-3-large"},
		{"compat prefix", "fireworks_ai", transform.Target{BasePath: "/inference/v1"}, "/inference/v1/embeddings", "accounts/fireworks/models/text-embedding-3-small"},
		{"compat", "mistral", transform.Target{BasePath: "/v1", Model: "mistral-embed"}, "/v1/embeddings", "mistral-embed"},
		{"azure deployment", transform.ProviderAzure, transform.Target{Model: "my dep", APIVersion: "2024-10-21"}, "/openai/deployments/my%20dep/embeddings?api-version=2024-10-21", "my dep"},
		{"azure client model", transform.ProviderAzure, transform.Target{}, "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21", ""},
		{"azure v1", transform.ProviderAzure, transform.Target{APIVersion: "v1"}, "/openai/v1/embeddings", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newEmbedRequest(t, tt.provider, tt.target).RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.path {
				t.Errorf("path = %s, want %s", res.Path, tt.path)
			}
			switch {
			case tt.model == "" && res.Body != nil:
				t.Errorf("body copied: %s", res.Body)
			case tt.model != "":
				var got struct{ Model, Input string }
				if err := json.Unmarshal(res.Body, &got); err != nil || got.Model != tt.model || got.Input != "hi" {
					t.Errorf("body = %s (%v), want model %s", res.Body, err, tt.model)
				}
			}
		})
	}
}

func TestEmbeddings_RequestBodyHeaders(t *testing.T) {
	tests := []struct {
		provider transform.Provider
		target   transform.Target
		set      string // header carrying the key, "" for none
		removed  string
	}{
		{transform.ProviderOpenAI, transform.Target{APIKey: "k"}, "authorization", "api-key"},
		{transform.ProviderOpenAI, transform.Target{}, "", "authorization"},
		{transform.ProviderAzure, transform.Target{APIKey: "k"}, "api-key", "authorization"},
		{transform.ProviderAzure, transform.Target{}, "", "api-key"},
		{transform.ProviderBedrock, transform.Target{APIKey: "k"}, "", "x-amz-security-token"},
		{transform.ProviderGemini, transform.Target{APIKey: "k"}, "x-goog-api-key", "authorization"},
		{transform.ProviderVertexAI, transform.Target{APIKey: "k", Project: "p"}, "", "x-goog-api-key"},
		{transform.ProviderCohere, transform.Target{APIKey: "k"}, "authorization", "x-api-key"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s key %t", tt.provider, tt.target.APIKey != ""), func(t *testing.T) {
			model := "m"
			if tt.provider == transform.ProviderBedrock {
				model = "amazon.titan-embed-text-v2:0"
			}
			res, err := newEmbedRequest(t, tt.provider, tt.target).RequestBody([]byte(`{"model":"` + model + `","input":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			var keyHeaders []string
			for _, h := range res.SetHeaders {
				if h.Key != "content-type" && h.Key != "accept" {
					keyHeaders = append(keyHeaders, h.Key)
					if !strings.HasSuffix(h.Value, "k") {
						t.Errorf("%s = %q does not carry the key", h.Key, h.Value)
					}
				}
			}
			if want := strings.Fields(tt.set); fmt.Sprint(keyHeaders) != fmt.Sprint(want) {
				t.Errorf("credential headers = %v, want %v", keyHeaders, want)
			}
			if !containsString(res.RemoveHeaders, tt.removed) {
				t.Errorf("remove headers %v lack %s", res.RemoveHeaders, tt.removed)
			}
		})
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestEmbeddings_RequestBodyFields(t *testing.T) {
	tests := []struct {
		name     string
		provider transform.Provider
		target   transform.Target
		body     string
		path     string
		want     string
	}{
		{"titan v1 no dimensions", transform.ProviderBedrock, transform.Target{}, `{"model":"amazon.titan-embed-text-v1","input":"a \"b\""}`,
			"/model/amazon.titan-embed-text-v1/invoke", `{"inputText":"a \"b\""}`},
		{"titan v1 dimensions dropped", transform.ProviderBedrock, transform.Target{DropParams: true}, `{"model":"amazon.titan-embed-text-v1","input":"a","dimensions":256}`,
			"/model/amazon.titan-embed-text-v1/invoke", `{"inputText":"a"}`},
		{"titan v2 one-item array", transform.ProviderBedrock, transform.Target{Model: "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"}, `{"model":"x","input":["only"],"dimensions":512}`,
			"/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Famazon.titan-embed-text-v2%3A0/invoke", `{"inputText":"only","dimensions":512,"normalize":true}`},
		{"bedrock cohere v3", transform.ProviderBedrock, transform.Target{}, `{"model":"cohere.embed-multilingual-v3","input":["a","b"]}`,
			"/model/cohere.embed-multilingual-v3/invoke", `{"texts":["a","b"],"input_type":"search_document","embedding_types":["float"],"truncate":"NONE"}`},
		{"bedrock cohere v4 dims", transform.ProviderBedrock, transform.Target{}, `{"model":"cohere.embed-v4:0","input":"a","dimensions":1024}`,
			"/model/cohere.embed-v4%3A0/invoke", `{"texts":["a"],"input_type":"search_document","embedding_types":["float"],"output_dimension":1024,"truncate":"NONE"}`},
		{"cohere v3", transform.ProviderCohere, transform.Target{BasePath: "/proxy"}, `{"model":"embed-english-v3.0","input":"x","user":"u"}`,
			"/proxy/v2/embed", `{"model":"embed-english-v3.0","texts":["x"],"input_type":"search_document","embedding_types":["float"]}`},
		{"cohere target model", transform.ProviderCohere, transform.Target{Model: "embed-v4.0"}, `{"model":"alias","input":["x"],"dimensions":512}`,
			"/v2/embed", `{"model":"embed-v4.0","texts":["x"],"input_type":"search_document","embedding_types":["float"],"output_dimension":512}`},
		{"gemini models/ prefix", transform.ProviderGemini, transform.Target{}, `{"model":"models/text-embedding-004","input":"x"}`,
			"/v1beta/models/text-embedding-004:batchEmbedContents", `{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"x"}]}}]}`},
		{"gemini base path", transform.ProviderGemini, transform.Target{BasePath: "/v1"}, `{"model":"gemini-embedding-001","input":"x","dimensions":768}`,
			"/v1/models/gemini-embedding-001:batchEmbedContents", `{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"x"}]},"outputDimensionality":768}]}`},
		{"vertex gemini-embedding-001 predict", transform.ProviderVertexAI, transform.Target{Project: "p"}, `{"model":"gemini-embedding-001","input":"x"}`,
			"/v1/projects/p/locations/us-central1/publishers/google/models/gemini-embedding-001:predict", `{"instances":[{"content":"x"}]}`},
		{"vertex embedContent", transform.ProviderVertexAI, transform.Target{Project: "p", Region: "global", APIVersion: "v1beta1"}, `{"model":"gemini-embedding-2-preview","input":"x"}`,
			"/v1beta1/projects/p/locations/global/publishers/google/models/gemini-embedding-2-preview:embedContent", `{"content":{"parts":[{"text":"x"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := newEmbedRequest(t, tt.provider, tt.target).RequestBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if res.Path != tt.path {
				t.Errorf("path = %s, want %s", res.Path, tt.path)
			}
			if string(res.Body) != tt.want {
				t.Errorf("body:\n got %s\nwant %s", res.Body, tt.want)
			}
		})
	}
}

// TestEmbeddings_RequestBodyGenAI decodes translated Google requests into
// the SDK's types, strictly, so a misspelt field fails.
func TestEmbeddings_RequestBodyGenAI(t *testing.T) {
	strict := func(t *testing.T, raw json.RawMessage, v any) {
		t.Helper()
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
	}
	body := []byte(`{"model":"gemini-embedding-001","input":["one","two"],"dimensions":8}`)
	res, err := newEmbedRequest(t, transform.ProviderGemini, transform.Target{}).RequestBody(body)
	if err != nil {
		t.Fatal(err)
	}
	var batch struct {
		Requests []struct {
			Model                string          `json:"model"`
			Content              json.RawMessage `json:"content"`
			OutputDimensionality int32           `json:"outputDimensionality"`
		} `json:"requests"`
	}
	strict(t, res.Body, &batch)
	if len(batch.Requests) != 2 {
		t.Fatalf("requests = %d, want 2", len(batch.Requests))
	}
	for i, r := range batch.Requests {
		var c genai.Content
		strict(t, r.Content, &c)
		if want := []string{"one", "two"}[i]; len(c.Parts) != 1 || c.Parts[0].Text != want || r.Model != "models/gemini-embedding-001" || r.OutputDimensionality != 8 {
			t.Errorf("request %d = %+v, content %+v", i, r, c)
		}
	}

	res, err = newEmbedRequest(t, transform.ProviderVertexAI, transform.Target{Project: "p"}).
		RequestBody([]byte(`{"model":"gemini-embedding-2","input":"one","dimensions":8}`))
	if err != nil {
		t.Fatal(err)
	}
	var single struct {
		Content            json.RawMessage          `json:"content"`
		EmbedContentConfig genai.EmbedContentConfig `json:"embedContentConfig"`
	}
	strict(t, res.Body, &single)
	var c genai.Content
	strict(t, single.Content, &c)
	if d := single.EmbedContentConfig.OutputDimensionality; c.Parts[0].Text != "one" || d == nil || *d != 8 {
		t.Errorf("embedContent body %s", res.Body)
	}
}

func TestEmbeddings_RequestBodyInvalid(t *testing.T) {
	many := func(n int) string {
		return `["` + strings.Repeat(`x","`, n-1) + `x"]`
	}
	tests := []struct {
		name     string
		provider transform.Provider
		model    string
		body     string // input and options, after the model
		param    string
	}{
		{"not json", transform.ProviderOpenAI, "m", `,`, ""},
		{"missing input", transform.ProviderOpenAI, "m", ``, "input"},
		{"empty string", transform.ProviderOpenAI, "m", `,"input":""`, "input"},
		{"empty array", transform.ProviderAzure, "m", `,"input":[]`, "input"},
		{"input object", transform.ProviderOpenAI, "m", `,"input":{"text":"x"}`, "input"},
		{"input number", transform.ProviderCohere, "m", `,"input":3`, "input"},
		{"mixed array", transform.ProviderOpenAI, "m", `,"input":["a",1]`, "input"},
		{"empty item", transform.ProviderGemini, "m", `,"input":["a",""]`, "input"},
		{"bad token", transform.ProviderOpenAI, "m", `,"input":[1,2.5]`, "input"},
		{"negative token", transform.ProviderOpenAI, "m", `,"input":[[1],[-2]]`, "input"},
		{"empty token array", transform.ProviderOpenAI, "m", `,"input":[[]]`, "input"},
		{"too many", transform.ProviderOpenAI, "m", `,"input":` + many(2049), "input"},
		{"dimensions float", transform.ProviderOpenAI, "m", `,"input":"x","dimensions":2.5`, "dimensions"},
		{"dimensions string", transform.ProviderGemini, "m", `,"input":"x","dimensions":"256"`, "dimensions"},
		{"dimensions zero", transform.ProviderCohere, "embed-v4.0", `,"input":"x","dimensions":0`, "dimensions"},
		{"dimensions exponent", transform.ProviderOpenAI, "m", `,"input":"x","dimensions":1e3`, "dimensions"},
		{"encoding_format", transform.ProviderOpenAI, "m", `,"input":"x","encoding_format":"int8"`, "encoding_format"},
		{"user not string", transform.ProviderOpenAI, "m", `,"input":"x","user":7`, "user"},
		{"tokens to bedrock", transform.ProviderBedrock, "amazon.titan-embed-text-v2:0", `,"input":[1,2]`, "input"},
		{"tokens to gemini", transform.ProviderGemini, "m", `,"input":[[1,2]]`, "input"},
		{"titan batch", transform.ProviderBedrock, "amazon.titan-embed-text-v2:0", `,"input":["a","b"]`, "input"},
		{"titan v2 dimensions", transform.ProviderBedrock, "amazon.titan-embed-text-v2:0", `,"input":"a","dimensions":300`, "dimensions"},
		{"titan v1 dimensions", transform.ProviderBedrock, "amazon.titan-embed-text-v1", `,"input":"a","dimensions":256`, "dimensions"},
		{"bedrock chat model", transform.ProviderBedrock, "anthropic.claude-3", `,"input":"a"`, "model"},
		{"bedrock cohere too many", transform.ProviderBedrock, "cohere.embed-english-v3", `,"input":` + many(97), "input"},
		{"cohere too many", transform.ProviderCohere, "embed-english-v3.0", `,"input":` + many(97), "input"},
		{"cohere v3 dimensions", transform.ProviderCohere, "embed-english-v3.0", `,"input":"x","dimensions":256`, "dimensions"},
		{"cohere v4 dimensions", transform.ProviderCohere, "embed-v4.0", `,"input":"x","dimensions":300`, "dimensions"},
		{"gemini too many", transform.ProviderGemini, "gemini-embedding-001", `,"input":` + many(101), "input"},
		{"vertex 001 batch", transform.ProviderVertexAI, "gemini-embedding-001", `,"input":["a","b"]`, "input"},
		{"vertex embedContent batch", transform.ProviderVertexAI, "gemini-embedding-2", `,"input":["a","b"]`, "input"},
		{"vertex predict too many", transform.ProviderVertexAI, "text-embedding-005", `,"input":` + many(251), "input"},
		{"model not string", transform.ProviderOpenAI, "", `,"model":5,"input":"x"`, "model"},
		{"model missing", transform.ProviderCohere, "", `,"input":"x"`, "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body string
			switch {
			case tt.body == ",":
				body = `{"model":`
			case tt.model == "":
				body = `{"x":0` + tt.body + `}`
			default:
				body = `{"model":"` + tt.model + `"` + tt.body + `}`
			}
			tg := transform.Target{}
			if tt.provider == transform.ProviderVertexAI {
				tg.Project = "p"
			}
			_, err := newEmbedRequest(t, tt.provider, tg).RequestBody([]byte(body))
			var inv *transform.InvalidRequestError
			if !errors.As(err, &inv) || !errors.Is(err, transform.ErrInvalidRequest) {
				t.Fatalf("err = %v, want an InvalidRequestError", err)
			}
			if inv.Param != tt.param {
				t.Errorf("param = %q, want %q (%v)", inv.Param, tt.param, err)
			}
		})
	}
}

// embedWant is what a translated response must say.
type embedWant struct {
	n, dims int
	tokens  int64
	model   string
}

var embedResponseWants = map[string]embedWant{
	"openai/string":         {1, 4, 11, "text-embedding-3-small"},
	"openai/batch_base64":   {2, 4, 5, "text-embedding-3-large"},
	"azure/batch":           {2, 4, 3, "text-embedding-3-small"},
	"bedrock/titan":         {1, 4, 4, "amazon.titan-embed-text-v2:0"},
	"bedrock/titan_base64":  {1, 4, 4, "amazon.titan-embed-text-v2:0"},
	"bedrock/cohere":        {2, 3, 0, "cohere.embed-english-v3"},
	"bedrock/cohere_floats": {1, 3, 0, "us.cohere.embed-v4:0"},
	"gemini/batch":          {2, 4, 0, "gemini-embedding-001"},
	"vertex/predict":        {2, 3, 5, "text-embedding-005"},
	"vertex/embed_content":  {1, 3, 3, "gemini-embedding-2"},
	"cohere/v4":             {2, 3, 3, "embed-v4.0"},
	"cohere/base64":         {1, 2, 2, "embed-english-v3.0"},
}

func TestEmbeddings_ResponseBodyGolden(t *testing.T) {
	seen := 0
	for _, d := range embedDirs {
		for _, name := range fixtures(t, filepath.Join("embeddings", d.dir), "response") {
			t.Run(d.dir+"/"+name, func(t *testing.T) {
				want, ok := embedResponseWants[d.dir+"/"+name]
				if !ok {
					t.Fatal("no expectations for this fixture")
				}
				seen++
				req := readFile(t, embedPath(d.dir, name, "request.json"))
				body := readFile(t, embedPath(d.dir, name, "response.json"))
				res, err := newEmbedResponse(t, d.provider, transform.ResponseOptions{Request: req}).ResponseBody(body)
				if err != nil {
					t.Fatal(err)
				}
				if res.Usage.InputTokens != want.tokens || res.Usage.OutputTokens != 0 || res.Model != want.model {
					t.Errorf("usage %+v model %q, want %d tokens, model %s", res.Usage, res.Model, want.tokens, want.model)
				}
				out := res.Body
				if out == nil {
					out = body
				} else {
					checkGolden(t, embedPath(d.dir, name, "response.golden.json"), indentJSON(t, out))
				}
				checkEmbeddingList(t, out, want, bytes.Contains(req, []byte(`"base64"`)))
			})
		}
	}
	if seen != len(embedResponseWants) {
		t.Errorf("checked %d fixtures, expected %d", seen, len(embedResponseWants))
	}
}

// checkEmbeddingList parses an OpenAI embeddings response as the OpenAI
// SDK does and checks its shape.
func checkEmbeddingList(t *testing.T, body []byte, want embedWant, b64 bool) {
	t.Helper()
	var got openai.CreateEmbeddingResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Object != "list" || got.Model != want.model || len(got.Data) != want.n ||
		got.Usage.PromptTokens != want.tokens || got.Usage.TotalTokens != want.tokens {
		t.Errorf("response %s, want %+v", body, want)
	}
	// The SDK leaves a base64 embedding to the caller.
	var raw struct {
		Data []struct {
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for i, d := range got.Data {
		if d.Index != int64(i) || d.Object != "embedding" {
			t.Errorf("data[%d] = index %d object %s", i, d.Index, d.Object)
		}
		vec := d.Embedding
		if b64 {
			vec = decodeBase64Embedding(t, raw.Data[i].Embedding)
		}
		if len(vec) != want.dims {
			t.Errorf("data[%d] has %d dimensions, want %d", i, len(vec), want.dims)
		}
	}
}

func decodeBase64Embedding(t *testing.T, raw json.RawMessage) []float64 {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("embedding %s is not a base64 string", raw)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("embedding %q: %v", s, err)
	}
	out := make([]float64, len(b)/4)
	for i := range out {
		out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[i*4:])))
	}
	return out
}

func TestEmbeddings_ResponseBodyBase64Values(t *testing.T) {
	req := []byte(`{"model":"m","input":"x","encoding_format":"base64"}`)
	res, err := newEmbedResponse(t, transform.ProviderBedrock, transform.ResponseOptions{Request: req}).
		ResponseBody([]byte(`{"embedding":[1.5,-0.25,3.4028235e38,0],"inputTextTokenCount":1}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data []struct {
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(res.Body, &got); err != nil {
		t.Fatal(err)
	}
	vec := decodeBase64Embedding(t, got.Data[0].Embedding)
	if want := []float64{1.5, -0.25, float64(math.MaxFloat32), 0}; fmt.Sprint(vec) != fmt.Sprint(want) {
		t.Errorf("decoded %v, want %v", vec, want)
	}
}

func TestEmbeddings_ResponseBodyModel(t *testing.T) {
	body := []byte(`{"embedding":[0.5],"inputTextTokenCount":1}`)
	req := []byte(`{"model":"client-alias","input":"x"}`)
	for _, tt := range []struct {
		opts transform.ResponseOptions
		want string
	}{
		{transform.ResponseOptions{Model: "amazon.titan-embed-text-v2:0", Request: req}, "amazon.titan-embed-text-v2:0"},
		{transform.ResponseOptions{Request: req}, "client-alias"},
		{transform.ResponseOptions{}, ""},
	} {
		res, err := newEmbedResponse(t, transform.ProviderBedrock, tt.opts).ResponseBody(body)
		if err != nil {
			t.Fatal(err)
		}
		var got openai.CreateEmbeddingResponse
		if err := json.Unmarshal(res.Body, &got); err != nil || got.Model != tt.want || res.Model != tt.want {
			t.Errorf("model %q / %q, want %q (%v)", got.Model, res.Model, tt.want, err)
		}
	}
}

func TestEmbeddings_ResponseBodyBad(t *testing.T) {
	tests := []struct {
		name     string
		provider transform.Provider
		request  string
		body     string
		status   int // of the ProviderError; 0 for a malformed response
	}{
		{"not json", transform.ProviderOpenAI, ``, `{`, 0},
		{"array", transform.ProviderGemini, ``, `[1]`, 0},
		{"openai no data", transform.ProviderOpenAI, ``, `{"object":"list"}`, 0},
		{"openai error", transform.ProviderOpenAI, ``, `{"error":{"message":"bad","type":"invalid_request_error"}}`, 500},
		{"azure error", transform.ProviderAzure, ``, `{"error":{"message":"x","code":"content_filter"}}`, 400},
		{"bedrock nothing", transform.ProviderBedrock, ``, `{"foo":1}`, 0},
		{"bedrock message", transform.ProviderBedrock, ``, `{"message":"Malformed input request"}`, 500},
		{"titan not array", transform.ProviderBedrock, ``, `{"embedding":"x"}`, 0},
		{"cohere nested not array", transform.ProviderCohere, ``, `{"embeddings":{"float":[1]}}`, 0},
		{"cohere message", transform.ProviderCohere, ``, `{"message":"invalid api token"}`, 500},
		{"gemini error", transform.ProviderGemini, ``, `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}`, 429},
		{"gemini missing values", transform.ProviderGemini, ``, `{"embeddings":[{}]}`, 0},
		{"base64 of strings", transform.ProviderGemini, `{"encoding_format":"base64"}`, `{"embeddings":[{"values":["a"]}]}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newEmbedResponse(t, tt.provider, transform.ResponseOptions{Request: []byte(tt.request)})
			_, err := tr.ResponseBody([]byte(tt.body))
			var pe *transform.ProviderError
			switch {
			case tt.status == 0 && !errors.Is(err, transform.ErrMalformedResponse):
				t.Errorf("err = %v, want a malformed response", err)
			case tt.status != 0 && (!errors.As(err, &pe) || pe.Status != tt.status):
				t.Errorf("err = %#v, want a provider error with status %d", err, tt.status)
			}
		})
	}
}

func TestEmbeddings_ErrorBody(t *testing.T) {
	tests := []struct {
		name     string
		provider transform.Provider
		status   int
		body     string
		want     transform.ProviderError
	}{
		{"openai", transform.ProviderOpenAI, 400, `{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":null,"code":null}}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: "This model's maximum context length is 8192 tokens"}},
		{"compat capacity", "mistral", 400, `{"message":"Service tier capacity exceeded for this model."}`,
			transform.ProviderError{Status: 429, Type: transform.ErrorTypeRateLimit, Message: "Service tier capacity exceeded for this model."}},
		{"bedrock throttling", transform.ProviderBedrock, 429, `{"message":"Too many requests, please wait before trying again."}`,
			transform.ProviderError{Status: 429, Type: transform.ErrorTypeRateLimit, Message: "Too many requests, please wait before trying again."}},
		{"bedrock too long", transform.ProviderBedrock, 400, `{"message":"400 Bad Request: Too many input tokens. Max input tokens: 8192, request input token count: 9000"}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: "400 Bad Request: Too many input tokens. Max input tokens: 8192, request input token count: 9000"}},
		{"gemini bad key", transform.ProviderGemini, 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}`,
			transform.ProviderError{Status: 401, Type: transform.ErrorTypeAuthentication, Message: "API key not valid. Please pass a valid API key."}},
		{"cohere", transform.ProviderCohere, 401, `{"id":"x","message":"invalid api token"}`,
			transform.ProviderError{Status: 401, Type: transform.ErrorTypeAuthentication, Message: "invalid api token"}},
		{"html", transform.ProviderCohere, 502, `<html>`,
			transform.ProviderError{Status: 502, Type: transform.ErrorTypeServer, Message: "provider returned status 502 with an unreadable error body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newEmbedResponse(t, tt.provider, transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body))
			if *got != tt.want {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestEmbeddings_StreamChunk(t *testing.T) {
	for _, d := range embedDirs {
		res, err := newEmbedResponse(t, d.provider, transform.ResponseOptions{}).StreamChunk([]byte("data: {}\n\n"), true)
		if !errors.Is(err, transform.ErrMalformedResponse) {
			t.Errorf("%s: err = %v, want a malformed response", d.dir, err)
		}
		if lines := sseDataLines(res.Body); len(lines) != 1 || !strings.Contains(lines[0], `"error"`) {
			t.Errorf("%s: body %q is not one error event", d.dir, res.Body)
		}
	}
}

func TestEmbeddings_Unsupported(t *testing.T) {
	for _, p := range []transform.Provider{transform.ProviderAnthropic, transform.ProviderOllama, "nope"} {
		if _, err := transform.NewRequestTranslator(transform.APIEmbeddings, p, transform.Target{}); !errors.Is(err, transform.ErrUnsupported) {
			t.Errorf("%s request: err = %v", p, err)
		}
		if _, err := transform.NewResponseTranslator(transform.APIEmbeddings, p, transform.ResponseOptions{}); !errors.Is(err, transform.ErrUnsupported) {
			t.Errorf("%s response: err = %v", p, err)
		}
	}
}

func FuzzEmbeddings_RequestBody(f *testing.F) {
	for _, d := range embedDirs {
		for _, name := range fixtures(f, filepath.Join("embeddings", d.dir), "request") {
			f.Add(readFile(f, embedPath(d.dir, name, "request.json")))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		for _, d := range embedDirs {
			tr := newEmbedRequest(t, d.provider, d.target)
			res, err := tr.RequestBody(body)
			if err != nil {
				if !errors.Is(err, transform.ErrInvalidRequest) {
					t.Fatalf("%s: error is not an invalid request: %v", d.dir, err)
				}
				continue
			}
			if res.Body != nil && !json.Valid(res.Body) {
				t.Fatalf("%s: invalid JSON from %q:\n%s", d.dir, body, res.Body)
			}
			again, _ := tr.RequestBody(body)
			if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(body, pristine) {
				t.Fatalf("%s: translation is not repeatable over an untouched body", d.dir)
			}
		}
	})
}

func FuzzEmbeddings_ResponseBody(f *testing.F) {
	for _, d := range embedDirs {
		for _, name := range fixtures(f, filepath.Join("embeddings", d.dir), "response") {
			f.Add(readFile(f, embedPath(d.dir, name, "response.json")), true)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, b64 bool) {
		req := []byte(`{"model":"m","input":"x"}`)
		if b64 {
			req = []byte(`{"model":"m","input":"x","encoding_format":"base64"}`)
		}
		for _, d := range embedDirs {
			tr := newEmbedResponse(t, d.provider, transform.ResponseOptions{Request: req})
			res, err := tr.ResponseBody(body)
			var pe *transform.ProviderError
			switch {
			case err == nil && res.Body != nil:
				var got openai.CreateEmbeddingResponse
				if !json.Valid(res.Body) || json.Unmarshal(res.Body, &got) != nil && !b64 {
					t.Fatalf("%s: unreadable output from %q:\n%s", d.dir, body, res.Body)
				}
			case err != nil && !errors.Is(err, transform.ErrMalformedResponse) && !errors.As(err, &pe):
				t.Fatalf("%s: unexpected error %v", d.dir, err)
			}
			tr.ErrorBody(400, body)
		}
	})
}

// embedBenchBody builds an embeddings request with n inputs.
func embedBenchBody(n int) []byte {
	inputs := make([]string, n)
	for i := range inputs {
		inputs[i] = fmt.Sprintf("document %d about the quarterly report and its figures", i)
	}
	b, _ := json.Marshal(map[string]any{"model": "m", "input": inputs})
	return b
}

func BenchmarkEmbeddings_RequestBody(b *testing.B) {
	for _, bc := range []struct {
		name     string
		provider transform.Provider
		target   transform.Target
		n        int
	}{
		{"openai/96", transform.ProviderOpenAI, transform.Target{APIKey: "k", Model: "m"}, 96},
		{"openai_rewrite/96", transform.ProviderOpenAI, transform.Target{APIKey: "k", Model: "text-embedding-3-small"}, 96},
		{"bedrock_titan/1", transform.ProviderBedrock, transform.Target{Model: "amazon.titan-embed-text-v2:0"}, 1},
		{"bedrock_cohere/96", transform.ProviderBedrock, transform.Target{Model: "cohere.embed-english-v3"}, 96},
		{"gemini/96", transform.ProviderGemini, transform.Target{APIKey: "k"}, 96},
		{"vertex/96", transform.ProviderVertexAI, transform.Target{Project: "p"}, 96},
		{"cohere/96", transform.ProviderCohere, transform.Target{APIKey: "k"}, 96},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := embedBenchBody(bc.n)
			tr := newEmbedRequest(b, bc.provider, bc.target)
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

// embedBenchVector is a provider's JSON array of dims floats.
func embedBenchVector(dims int) string {
	vals := make([]float32, dims)
	for i := range vals {
		vals[i] = float32(math.Sin(float64(i))) / 40
	}
	b, _ := json.Marshal(vals)
	return string(b)
}

func BenchmarkEmbeddings_ResponseBody(b *testing.B) {
	vec := embedBenchVector(1024)
	batch := func(prefix, item, sep, suffix string, n int) []byte {
		items := make([]string, n)
		for i := range items {
			items[i] = strings.ReplaceAll(item, "VEC", vec)
		}
		return []byte(prefix + strings.Join(items, sep) + suffix)
	}
	openaiBody := batch(`{"object":"list","data":[`, `{"object":"embedding","index":0,"embedding":VEC}`, ",", `],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}`, 8)
	titanBody := []byte(`{"embedding":` + vec + `,"inputTextTokenCount":9}`)
	geminiBody := batch(`{"embeddings":[`, `{"values":VEC}`, ",", `]}`, 8)
	cohereBody := batch(`{"id":"x","embeddings":{"float":[`, `VEC`, ",", `]},"meta":{"billed_units":{"input_tokens":8}}}`, 8)
	for _, bc := range []struct {
		name     string
		provider transform.Provider
		body     []byte
		b64      bool
	}{
		{"openai/8x1024", transform.ProviderOpenAI, openaiBody, false},
		{"bedrock_titan/1x1024", transform.ProviderBedrock, titanBody, false},
		{"bedrock_titan_base64/1x1024", transform.ProviderBedrock, titanBody, true},
		{"gemini/8x1024", transform.ProviderGemini, geminiBody, false},
		{"gemini_base64/8x1024", transform.ProviderGemini, geminiBody, true},
		{"cohere/8x1024", transform.ProviderCohere, cohereBody, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := []byte(`{"model":"m","input":"x"}`)
			if bc.b64 {
				req = []byte(`{"model":"m","input":"x","encoding_format":"base64"}`)
			}
			tr := newEmbedResponse(b, bc.provider, transform.ResponseOptions{Request: req})
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if _, err := tr.ResponseBody(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
