package fakeprovider_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/credentials"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// embedFakes pairs each transform embeddings fixture directory with the
// fake that serves it.
var embedFakes = []struct {
	dir      string
	kind     fakeprovider.Kind
	provider transform.Provider
	target   transform.Target
}{
	{"openai", fakeprovider.OpenAI, transform.ProviderOpenAI, transform.Target{BasePath: "/v1", APIKey: testKey}},
	{"azure", fakeprovider.AzureOpenAI, transform.ProviderAzure, transform.Target{APIKey: testKey}},
	{"bedrock", fakeprovider.Bedrock, transform.ProviderBedrock, transform.Target{}},
	{"gemini", fakeprovider.Gemini, transform.ProviderGemini, transform.Target{APIKey: testKey}},
	{"vertex", fakeprovider.Gemini, transform.ProviderVertexAI, transform.Target{Project: "proj-1", Region: "us-central1"}},
	{"cohere", fakeprovider.Cohere, transform.ProviderCohere, transform.Target{APIKey: testKey}},
}

// TestEmbeddings_Translated sends every embeddings request fixture,
// translated by the gateway, to its fake and translates the answer back:
// the fakes and the translators agree on the wire format.
func TestEmbeddings_Translated(t *testing.T) {
	for _, f := range embedFakes {
		paths, err := filepath.Glob(filepath.Join("../../pkg/transform/testdata/embeddings", f.dir, "*.request.json"))
		if err != nil || len(paths) == 0 {
			t.Fatalf("%s: no request fixtures: %v", f.dir, err)
		}
		secret := testKey
		if f.kind == fakeprovider.Bedrock {
			secret = awsSecret
		}
		srv := fakeprovider.Start(t, f.kind, fakeprovider.WithAPIKey(secret))
		for _, path := range paths {
			t.Run(f.dir+"/"+filepath.Base(path), func(t *testing.T) {
				body, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				rt, err := transform.NewRequestTranslator(transform.APIEmbeddings, f.provider, f.target)
				if err != nil {
					t.Fatal(err)
				}
				req, err := rt.RequestBody(body)
				if err != nil {
					t.Fatal(err)
				}
				sent := req.Body
				if sent == nil {
					sent = body
				}
				status, out := postTranslated(t, srv, f.provider, req, sent)
				if status != http.StatusOK {
					t.Fatalf("status %d: %s\nrequest: %s", status, out, sent)
				}
				tr, err := transform.NewResponseTranslator(transform.APIEmbeddings, f.provider, transform.ResponseOptions{Request: body})
				if err != nil {
					t.Fatal(err)
				}
				res, err := tr.ResponseBody(out)
				if err != nil {
					t.Fatal(err)
				}
				if res.Body == nil {
					res.Body = out
				}
				checkTranslatedEmbeddings(t, srv, body, res)
			})
		}
	}
}

// postTranslated sends a translated request as the gateway would: with its
// headers, and signed for Bedrock or with a bearer token for Vertex.
func postTranslated(t *testing.T, srv *fakeprovider.Server, p transform.Provider, req transform.RequestResult, body []byte) (int, []byte) {
	t.Helper()
	hreq, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+req.Path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range req.SetHeaders {
		hreq.Header.Set(h.Key, h.Value)
	}
	switch p {
	case transform.ProviderBedrock:
		u, _ := url.Parse(srv.URL())
		signer, err := credentials.NewAWS(t.Context(), credentials.AWSOptions{Region: "us-east-1", AccessKeyID: awsKeyID, SecretAccessKey: awsSecret})
		if err != nil {
			t.Fatal(err)
		}
		auth, err := signer.Apply(t.Context(), &credentials.Request{Method: http.MethodPost, Host: u.Host, Path: req.Path, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range auth {
			hreq.Header.Set(h.Key, h.Value)
		}
	case transform.ProviderVertexAI:
		hreq.Header.Set("Authorization", "Bearer "+testKey)
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// checkTranslatedEmbeddings checks a translated answer against the
// client's request and what the fake recorded.
func checkTranslatedEmbeddings(t *testing.T, srv *fakeprovider.Server, request []byte, res transform.ResponseResult) {
	t.Helper()
	var req struct {
		Input          json.RawMessage `json:"input"`
		Dimensions     int             `json:"dimensions"`
		EncodingFormat string          `json:"encoding_format"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		t.Fatal(err)
	}
	var texts []string
	if err := json.Unmarshal(req.Input, &texts); err != nil {
		var one string
		if json.Unmarshal(req.Input, &one) == nil {
			texts = []string{one}
		} else {
			var tokens [][]int
			_ = json.Unmarshal(req.Input, &tokens)
			texts = make([]string, len(tokens))
		}
	}
	var got openai.CreateEmbeddingResponse
	if err := json.Unmarshal(res.Body, &got); err != nil && req.EncodingFormat != "base64" {
		t.Fatalf("%v: %s", err, res.Body)
	}
	if len(got.Data) != len(texts) {
		t.Fatalf("%d embeddings for %d inputs: %s", len(got.Data), len(texts), res.Body)
	}
	recs := srv.Requests()
	want := recs[len(recs)-1].Usage.InputTokens
	if want == 0 || res.Usage.InputTokens != int64(want) && res.Usage.InputTokens != 0 {
		t.Errorf("usage %d, fake counted %d", res.Usage.InputTokens, want)
	}
	for i, d := range got.Data {
		if d.Index != int64(i) {
			t.Errorf("data[%d].index = %d", i, d.Index)
		}
		if req.EncodingFormat == "base64" {
			continue
		}
		if req.Dimensions > 0 && len(d.Embedding) != req.Dimensions {
			t.Errorf("data[%d] has %d dimensions, want %d", i, len(d.Embedding), req.Dimensions)
		}
		if texts[i] != "" {
			fake := fakeprovider.FakeEmbedding(texts[i], len(d.Embedding))
			if math.Abs(float64(fake[0])-d.Embedding[0]) > 1e-6 {
				t.Errorf("data[%d] = %v..., want the fake's vector for %q", i, d.Embedding[0], texts[i])
			}
		}
	}
}

func TestEmbeddings_OpenAIClient(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey(testKey))
	client := openai.NewClient(option.WithBaseURL(srv.URL()+"/v1"), option.WithAPIKey(testKey), option.WithMaxRetries(0))
	res, err := client.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
		Model:      "text-embedding-3-small",
		Input:      openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one two", "three"}},
		Dimensions: openai.Int(64),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || len(res.Data[0].Embedding) != 64 || res.Usage.PromptTokens != 3 || res.Usage.TotalTokens != 3 {
		t.Fatalf("response %+v", res)
	}
	var norm float64
	for _, v := range res.Data[0].Embedding {
		norm += v * v
	}
	if math.Abs(norm-1) > 1e-4 {
		t.Errorf("vector norm² = %v, want 1", norm)
	}
	again, err := client.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
		Model: "text-embedding-3-large",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("one two")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Data) != 1 || len(again.Data[0].Embedding) != 3072 {
		t.Fatalf("large model answered %d vectors", len(again.Data))
	}
	// float32 values survive the round trip exactly, float64s do not.
	if a, b := float32(again.Data[0].Embedding[0]), fakeprovider.FakeEmbedding("one two", 3072)[0]; a != b {
		t.Errorf("first value %v, want %v", a, b)
	}
}

func TestEmbeddings_FakeValidation(t *testing.T) {
	vertexPath := "/v1/projects/p/locations/l/publishers/google/models/"
	tests := []struct {
		name   string
		kind   fakeprovider.Kind
		path   string
		header http.Header
		body   string
		status int
		want   string
	}{
		{"openai ok", fakeprovider.OpenAI, "/v1/embeddings", bearer(testKey), `{"model":"m","input":[[1,2],[3]]}`, 200, `"prompt_tokens":3`},
		{"openai no key", fakeprovider.OpenAI, "/v1/embeddings", nil, `{"model":"m","input":"x"}`, 401, "API key"},
		{"openai missing input", fakeprovider.OpenAI, "/v1/embeddings", bearer(testKey), `{"model":"m"}`, 400, "Missing required parameter: 'input'"},
		{"openai empty string", fakeprovider.OpenAI, "/embeddings", bearer(testKey), `{"model":"m","input":""}`, 400, "'$.input' is invalid"},
		{"openai object input", fakeprovider.OpenAI, "/v1/embeddings", bearer(testKey), `{"model":"m","input":{"a":1}}`, 400, "'$.input' is invalid"},
		{"openai unknown field", fakeprovider.OpenAI, "/v1/embeddings", bearer(testKey), `{"model":"m","input":"x","foo":1}`, 400, "Unrecognized request argument supplied: foo"},
		{"openai dimensions float", fakeprovider.OpenAI, "/v1/embeddings", bearer(testKey), `{"model":"m","input":"x","dimensions":1.5}`, 400, "expected an integer"},
		{"openai ada dimensions", fakeprovider.OpenAI, "/v1/embeddings", bearer(testKey), `{"model":"text-embedding-ada-002","input":"x","dimensions":8}`, 400, "does not support specifying dimensions"},
		{"openai too many", fakeprovider.OpenAI, "/v1/embeddings", bearer(testKey), `{"model":"m","input":["x"` + strings.Repeat(`,"x"`, 2048) + `]}`, 400, "at most 2048"},
		{"azure deployment", fakeprovider.AzureOpenAI, "/openai/deployments/emb/embeddings", http.Header{"Api-Key": {testKey}}, `{"input":"x","dimensions":2}`, 200, `"model":"emb"`},
		{"azure bad key", fakeprovider.AzureOpenAI, "/openai/deployments/emb/embeddings", http.Header{"Api-Key": {"no"}}, `{"input":"x"}`, 401, "Access denied"},
		{"gemini ok", fakeprovider.Gemini, "/v1beta/models/gemini-embedding-001:batchEmbedContents", http.Header{"X-Goog-Api-Key": {testKey}},
			`{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"hi"}]},"outputDimensionality":2}]}`, 200, `"values"`},
		{"gemini model mismatch", fakeprovider.Gemini, "/v1beta/models/gemini-embedding-001:batchEmbedContents", http.Header{"X-Goog-Api-Key": {testKey}},
			`{"requests":[{"model":"models/other","content":{"parts":[{"text":"hi"}]}}]}`, 400, "must match the model in the URL"},
		{"gemini empty", fakeprovider.Gemini, "/v1beta/models/gemini-embedding-001:batchEmbedContents", http.Header{"X-Goog-Api-Key": {testKey}},
			`{"requests":[]}`, 400, "must not be empty"},
		{"gemini no key", fakeprovider.Gemini, "/v1beta/models/gemini-embedding-001:batchEmbedContents", nil,
			`{"requests":[]}`, 403, "PERMISSION_DENIED"},
		{"vertex predict on ai studio", fakeprovider.Gemini, "/v1beta/models/text-embedding-005:predict", http.Header{"X-Goog-Api-Key": {testKey}},
			`{"instances":[{"content":"x"}]}`, 404, ""},
		{"vertex 001 two instances", fakeprovider.Gemini, vertexPath + "gemini-embedding-001:predict", bearer(testKey),
			`{"instances":[{"content":"x"},{"content":"y"}]}`, 400, "up to 1 instances"},
		{"vertex content type", fakeprovider.Gemini, vertexPath + "text-embedding-005:predict", bearer(testKey),
			`{"instances":[{"content":["x"]}]}`, 400, "non-empty string"},
		{"vertex dims too big", fakeprovider.Gemini, vertexPath + "text-embedding-005:predict", bearer(testKey),
			`{"instances":[{"content":"x"}],"parameters":{"outputDimensionality":769}}`, 400, "between 1 and 768"},
		{"vertex wrong auth", fakeprovider.Gemini, vertexPath + "gemini-embedding-2:embedContent", http.Header{"X-Goog-Api-Key": {testKey}},
			`{"content":{"parts":[{"text":"x"}]}}`, 401, "UNAUTHENTICATED"},
		{"vertex embedContent", fakeprovider.Gemini, vertexPath + "gemini-embedding-2:embedContent", bearer(testKey),
			`{"content":{"parts":[{"text":"a b"}]}}`, 200, `"promptTokenCount":2`},
		{"cohere ok", fakeprovider.Cohere, "/v2/embed", bearer(testKey), `{"model":"embed-v4.0","texts":["a b c"],"input_type":"search_query","output_dimension":256}`, 200, `"input_tokens":3`},
		{"cohere no input_type", fakeprovider.Cohere, "/v2/embed", bearer(testKey), `{"model":"embed-v4.0","texts":["a"]}`, 400, "input_type must be one of"},
		{"cohere texts type", fakeprovider.Cohere, "/v2/embed", bearer(testKey), `{"model":"embed-v4.0","texts":"a","input_type":"search_query"}`, 400, "texts must be an array"},
		{"cohere too many", fakeprovider.Cohere, "/v2/embed", bearer(testKey), `{"model":"m","texts":["a"` + strings.Repeat(`,"a"`, 96) + `],"input_type":"search_query"}`, 400, "between 1 and 96"},
		{"cohere v3 dimension", fakeprovider.Cohere, "/v2/embed", bearer(testKey), `{"model":"embed-english-v3.0","texts":["a"],"input_type":"search_query","output_dimension":256}`, 400, "only supported by embed-v4"},
		{"cohere bad key", fakeprovider.Cohere, "/v2/embed", bearer("no"), `{"model":"m","texts":["a"],"input_type":"search_query"}`, 401, "invalid api token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, tt.kind, fakeprovider.WithAPIKey(testKey))
			status, body, _ := sendRaw(t, srv, tt.path, tt.body, tt.header)
			if status != tt.status || !strings.Contains(string(body), tt.want) {
				t.Errorf("status %d body %s, want %d containing %q", status, body, tt.status, tt.want)
			}
		})
	}
}

func TestEmbeddings_BedrockValidation(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Bedrock, fakeprovider.WithAPIKey(awsSecret))
	tests := []struct {
		name, model, body string
		status            int
		want              string
	}{
		{"titan v2", "amazon.titan-embed-text-v2:0", `{"inputText":"a b","dimensions":256,"normalize":true}`, 200, `"inputTextTokenCount":2`},
		{"titan batch field", "amazon.titan-embed-text-v2:0", `{"inputText":"a","texts":["b"]}`, 400, "extraneous key [texts]"},
		{"titan missing text", "amazon.titan-embed-text-v2:0", `{"dimensions":256}`, 400, "inputText"},
		{"titan bad dimensions", "amazon.titan-embed-text-v2:0", `{"inputText":"a","dimensions":300}`, 400, "not a valid enum value"},
		{"titan v1 dimensions", "amazon.titan-embed-text-v1", `{"inputText":"a","dimensions":256}`, 400, "extraneous key [dimensions]"},
		{"cohere floats", "cohere.embed-english-v3", `{"texts":["a"],"input_type":"search_document"}`, 200, `"embeddings_floats"`},
		{"cohere by type", "cohere.embed-english-v3", `{"texts":["a"],"input_type":"search_document","embedding_types":["float"]}`, 200, `"embeddings_by_type"`},
		{"cohere truncate", "cohere.embed-english-v3", `{"texts":["a"],"input_type":"search_document","truncate":"MIDDLE"}`, 400, "truncate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := transform.RequestResult{Path: "/model/" + url.PathEscape(tt.model) + "/invoke"}
			status, out := postTranslated(t, srv, transform.ProviderBedrock, req, []byte(tt.body))
			if status != tt.status || !strings.Contains(string(out), tt.want) {
				t.Errorf("status %d body %s, want %d containing %q", status, out, tt.status, tt.want)
			}
		})
	}
}

func TestFakeEmbedding(t *testing.T) {
	a, b := fakeprovider.FakeEmbedding("same text", 16), fakeprovider.FakeEmbedding("same text", 16)
	c := fakeprovider.FakeEmbedding("other text", 16)
	var norm float64
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("equal texts embed differently")
		}
		norm += float64(a[i]) * float64(a[i])
	}
	if a[0] == c[0] && a[1] == c[1] {
		t.Error("different texts embed alike")
	}
	if math.Abs(norm-1) > 1e-5 {
		t.Errorf("norm² = %v, want 1", norm)
	}
}
