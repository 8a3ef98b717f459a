package fakeprovider

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"
)

// Every fake also serves its provider's embeddings endpoint:
//
//	OpenAI:  POST /v1/embeddings, /embeddings
//	Azure:   POST /openai/deployments/{deployment}/embeddings, /openai/v1/embeddings
//	Bedrock: POST /model/{modelId}/invoke for amazon.titan-embed-* and cohere.embed-*
//	Gemini:  POST /{version}/models/{model}:batchEmbedContents (AI Studio),
//	         .../publishers/google/models/{model}:predict and :embedContent (Vertex AI)
//	Cohere:  POST /v2/embed
//
// with the chat path's authentication and scripting. Vectors are
// deterministic: each text's vector is seeded by a hash of the text and
// scaled to unit length, so equal texts embed equally; its size is the
// requested one or the model's default. Input tokens are counted with
// [CountTokens] (a token-id input counts its ids) and recorded as
// Usage.InputTokens.

// embedder is implemented by providers that serve embeddings. ServeHTTP
// hands it requests for its embeddings paths after authenticating them.
type embedder interface {
	// embedsPath reports whether path is an embeddings endpoint.
	embedsPath(path string) bool
	// parseEmbeddings validates an embeddings body as the real API would.
	parseEmbeddings(path string, body []byte) (*embedCall, *apiError)
	// embeddingsBody renders the reply.
	embeddingsBody(c *embedCall) []byte
}

var (
	_ embedder = (*openAI)(nil)
	_ embedder = (*azureOpenAI)(nil)
	_ embedder = (*bedrockAPI)(nil)
	_ embedder = (*geminiAPI)(nil)
	_ embedder = (*cohereAPI)(nil)
)

// embedCall is a validated embeddings request.
type embedCall struct {
	model string
	// texts are the inputs; a token-id input is its ids joined by spaces.
	texts []string
	// tokens is the input token count of each input.
	tokens []int
	dims   int
	base64 bool
	// format selects a provider's response variant (Bedrock Cohere's
	// by-type answer, Vertex's embedContent).
	format string
}

func (c *embedCall) addText(s string) {
	c.texts = append(c.texts, s)
	c.tokens = append(c.tokens, CountTokens(s))
}

func (c *embedCall) inputTokens() int {
	n := 0
	for _, t := range c.tokens {
		n += t
	}
	return n
}

// servesEmbeddings reports whether p serves path as embeddings.
func servesEmbeddings(p provider, path string) bool {
	em, ok := p.(embedder)
	return ok && em.embedsPath(path)
}

// serveEmbeddings answers an authenticated embeddings request.
func (s *Server) serveEmbeddings(ex *exchange, prov provider, em embedder, path string, body []byte) {
	c, e := em.parseEmbeddings(path, body)
	if e != nil {
		ex.fail(e)
		return
	}
	in := c.inputTokens()
	if s.cfg.contextWindow > 0 && in > s.cfg.contextWindow {
		ex.fail(prov.contextExceeded(in, s.cfg.contextWindow))
		return
	}
	if len(s.cfg.models) > 0 && !slices.Contains(s.cfg.models, c.model) {
		ex.fail(prov.modelNotFound(c.model))
		return
	}
	ex.setUsage(Usage{InputTokens: in})
	ex.send(http.StatusOK, "application/json", em.embeddingsBody(c))
}

// FakeEmbedding is the vector the fakes return for text with dims
// dimensions: pseudo-random values seeded by a hash of the text, scaled to
// unit length.
func FakeEmbedding(text string, dims int) []float32 {
	h := fnv.New64a()
	h.Write([]byte(text))
	x := h.Sum64() | 1
	v := make([]float32, dims)
	var norm float64
	for i := range v {
		// xorshift64: cheap and deterministic.
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		f := float64(x>>11)/float64(1<<53)*2 - 1
		v[i] = float32(f)
		norm += f * f
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) / norm)
	}
	return v
}

// vectors are the embeddings of a call's texts.
func (c *embedCall) vectors() [][]float32 {
	out := make([][]float32, len(c.texts))
	for i, t := range c.texts {
		out[i] = FakeEmbedding(t, c.dims)
	}
	return out
}

// base64Vector encodes v as OpenAI does: little-endian float32s.
func base64Vector(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[i*4:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// --- OpenAI and Azure ---

// openAIEmbeddingKeys are the fields EmbeddingNewParams defines.
var openAIEmbeddingKeys = jsonKeys(reflect.TypeFor[openai.EmbeddingNewParams]())

// openAIMaxInputs is OpenAI's limit on inputs per request.
const openAIMaxInputs = 2048

func (*openAI) embedsPath(path string) bool {
	return path == "/v1/embeddings" || path == "/embeddings"
}

func (*azureOpenAI) embedsPath(path string) bool {
	return path == "/openai/v1/embeddings" || azureDeployment(path) != ""
}

// azureDeployment is the deployment of an embeddings path, "" for none.
func azureDeployment(path string) string {
	rest, ok := strings.CutPrefix(path, "/openai/deployments/")
	d, ok2 := strings.CutSuffix(rest, "/embeddings")
	if !ok || !ok2 || strings.Contains(d, "/") {
		return ""
	}
	return d
}

func (*openAI) parseEmbeddings(_ string, body []byte) (*embedCall, *apiError) {
	return parseOpenAIEmbeddings(body, "")
}

// parseEmbeddings takes the deployment from the path, where the body's
// model is optional.
func (*azureOpenAI) parseEmbeddings(path string, body []byte) (*embedCall, *apiError) {
	return parseOpenAIEmbeddings(body, azureDeployment(path))
}

// parseOpenAIEmbeddings validates an OpenAI embeddings body; deployment,
// when set, names the model instead of the body.
func parseOpenAIEmbeddings(body []byte, deployment string) (*embedCall, *apiError) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, oaInvalid("", "", "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
	}
	root := gjson.ParseBytes(body)
	if e := unknownKey(root, openAIEmbeddingKeys, func(k string) *apiError {
		return oaInvalid("", "", "Unrecognized request argument supplied: "+k)
	}); e != nil {
		return nil, e
	}
	c := &embedCall{model: deployment}
	switch m := root.Get("model"); {
	case m.Exists() && m.Type != gjson.String:
		return nil, oaType("model", "a string", m)
	case m.Exists() && deployment == "":
		c.model = m.Str
	case deployment == "":
		return nil, oaInvalid("", "", "you must provide a model parameter")
	}
	in := root.Get("input")
	invalid := oaInvalid("input", "", "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.")
	switch {
	case !in.Exists():
		return nil, oaInvalid("input", "missing_required_parameter", "Missing required parameter: 'input'.")
	case in.Type == gjson.String:
		if in.Str == "" {
			return nil, invalid
		}
		c.addText(in.Str)
	case !in.IsArray() || len(in.Array()) == 0:
		return nil, invalid
	case len(in.Array()) > openAIMaxInputs:
		return nil, oaInvalid("input", "", fmt.Sprintf("'$.input' is invalid: at most %d inputs are allowed per request.", openAIMaxInputs))
	case in.Array()[0].Type == gjson.Number:
		if !tokenIDs(in) {
			return nil, invalid
		}
		c.addTokens(in)
	default:
		for _, v := range in.Array() {
			switch {
			case v.Type == gjson.String && v.Str != "":
				c.addText(v.Str)
			case v.IsArray() && len(v.Array()) > 0 && tokenIDs(v):
				c.addTokens(v)
			default:
				return nil, invalid
			}
		}
	}
	switch f := root.Get("encoding_format"); {
	case !f.Exists() || f.Str == "float":
	case f.Str == "base64":
		c.base64 = true
	default:
		return nil, oaInvalid("encoding_format", "invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'float' and 'base64'.", f.String()))
	}
	c.dims = 1536
	if strings.Contains(c.model, "-large") {
		c.dims = 3072
	}
	if d := root.Get("dimensions"); d.Exists() {
		switch {
		case d.Type != gjson.Number || d.Num != math.Trunc(d.Num):
			return nil, oaType("dimensions", "an integer", d)
		case strings.Contains(c.model, "ada-002"):
			return nil, oaInvalid("dimensions", "", "This model does not support specifying dimensions.")
		case d.Num < 1 || int(d.Num) > c.dims:
			return nil, oaInvalid("dimensions", "invalid_value", fmt.Sprintf("Invalid value for 'dimensions' = %d. Must be between 1 and %d.", int(d.Num), c.dims))
		}
		c.dims = int(d.Num)
	}
	return c, nil
}

// tokenIDs reports whether every item of arr is a non-negative integer.
func tokenIDs(arr gjson.Result) bool {
	for _, t := range arr.Array() {
		if t.Type != gjson.Number || t.Num < 0 || t.Num != math.Trunc(t.Num) {
			return false
		}
	}
	return true
}

// addTokens adds a token-id input: its text is the ids, its tokens their
// count.
func (c *embedCall) addTokens(arr gjson.Result) {
	ids := make([]string, 0, len(arr.Array()))
	for _, t := range arr.Array() {
		ids = append(ids, t.Raw)
	}
	c.texts = append(c.texts, strings.Join(ids, " "))
	c.tokens = append(c.tokens, len(ids))
}

func (*openAI) embeddingsBody(c *embedCall) []byte {
	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}
	data := make([]item, len(c.texts))
	for i, v := range c.vectors() {
		data[i] = item{Object: "embedding", Index: i, Embedding: v}
		if c.base64 {
			data[i].Embedding = base64Vector(v)
		}
	}
	n := c.inputTokens()
	return mustJSON(map[string]any{
		"object": "list",
		"data":   data,
		"model":  c.model,
		"usage":  map[string]int{"prompt_tokens": n, "total_tokens": n},
	})
}

// --- Bedrock InvokeModel ---

// bedrockInvokeModel splits /model/{modelId}/invoke.
func bedrockInvokeModel(path string) string {
	rest, ok := strings.CutPrefix(path, "/model/")
	m, ok2 := strings.CutSuffix(rest, "/invoke")
	if !ok || !ok2 {
		return ""
	}
	return m
}

func (*bedrockAPI) embedsPath(path string) bool {
	m := bedrockInvokeModel(path)
	return strings.Contains(m, "amazon.titan-embed") || strings.Contains(m, "cohere.embed")
}

// Request keys of Bedrock's embedding models
// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html,
// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html).
var (
	titanV1Keys       = withKeys(map[string]bool{}, "inputText")
	titanV2Keys       = withKeys(map[string]bool{}, "inputText", "dimensions", "normalize", "embeddingTypes")
	bedrockCohereKeys = withKeys(map[string]bool{}, "texts", "images", "input_type", "truncate", "embedding_types", "output_dimension", "max_tokens")
)

// cohereInputTypes are the input_type values Cohere's embed models take.
var cohereInputTypes = []string{"search_document", "search_query", "classification", "clustering", "image"}

// parseEmbeddings verifies the signature and validates the body for the
// model the path names.
func (b *bedrockAPI) parseEmbeddings(path string, body []byte) (*embedCall, *apiError) {
	if b.req == nil {
		return nil, brInvalid("Unknown operation")
	}
	if b.key != "" {
		if e := verifySigV4(b.req, body, b.key); e != nil {
			return nil, e
		}
	}
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, brInvalid("Malformed input request, please reformat your input and try again.")
	}
	root := gjson.ParseBytes(body)
	model := bedrockInvokeModel(path)
	c := &embedCall{model: model}
	extraneous := func(k string) *apiError {
		return brInvalid("Malformed input request: #: extraneous key [" + k + "] is not permitted, please reformat your input and try again.")
	}
	if strings.Contains(model, "amazon.titan-embed") {
		v2 := strings.Contains(model, "titan-embed-text-v2")
		keys, dims := titanV1Keys, 1536
		if v2 {
			keys, dims = titanV2Keys, 1024
		}
		if e := unknownKey(root, keys, extraneous); e != nil {
			return nil, e
		}
		text := root.Get("inputText")
		if text.Type != gjson.String || text.Str == "" {
			return nil, brInvalid("Malformed input request: #/inputText: expected minLength: 1, please reformat your input and try again.")
		}
		c.addText(text.Str)
		c.dims = dims
		if d := root.Get("dimensions"); d.Exists() {
			if !slices.Contains([]float64{256, 512, 1024}, d.Num) || d.Type != gjson.Number {
				return nil, brInvalid("Malformed input request: #/dimensions: " + d.Raw + " is not a valid enum value, please reformat your input and try again.")
			}
			c.dims = int(d.Num)
		}
		if n := root.Get("normalize"); n.Exists() && n.Type != gjson.True && n.Type != gjson.False {
			return nil, brInvalid("Malformed input request: #/normalize: expected type: Boolean, found: " + jsonTypeName(n) + ", please reformat your input and try again.")
		}
		c.format = "titan-v1"
		if v2 {
			c.format = "titan-v2"
		}
		return c, nil
	}
	if e := unknownKey(root, bedrockCohereKeys, extraneous); e != nil {
		return nil, e
	}
	if e := cohereEmbedFields(c, root, model, brInvalid); e != nil {
		return nil, e
	}
	if t := root.Get("truncate"); t.Exists() && !slices.Contains([]string{"NONE", "START", "END"}, t.Str) {
		return nil, brInvalid("Malformed input request: #/truncate: " + t.Raw + " is not a valid enum value, please reformat your input and try again.")
	}
	if root.Get("embedding_types").Exists() {
		c.format = "by_type"
	}
	return c, nil
}

// cohereEmbedFields validates the body fields Cohere's embed API shares on
// its own API and on Bedrock, reporting errors with mkErr.
func cohereEmbedFields(c *embedCall, root gjson.Result, model string, mkErr func(string) *apiError) *apiError {
	texts := root.Get("texts")
	switch {
	case !texts.IsArray():
		return mkErr("texts must be an array of strings")
	case len(texts.Array()) == 0 || len(texts.Array()) > 96:
		return mkErr(fmt.Sprintf("texts must have between 1 and 96 items, got %d", len(texts.Array())))
	}
	for i, t := range texts.Array() {
		if t.Type != gjson.String {
			return mkErr(fmt.Sprintf("texts[%d] must be a string", i))
		}
		c.addText(t.Str)
	}
	if it := root.Get("input_type"); !slices.Contains(cohereInputTypes, it.Str) {
		return mkErr("input_type must be one of " + strings.Join(cohereInputTypes, ", "))
	}
	if et := root.Get("embedding_types"); et.Exists() {
		if !et.IsArray() || !slices.ContainsFunc(et.Array(), func(v gjson.Result) bool { return v.Str == "float" }) {
			return mkErr("embedding_types must be an array including float (the fake serves floats only)")
		}
	}
	c.dims = 1024
	v4 := strings.Contains(model, "embed-v4")
	if v4 {
		c.dims = 1536
	}
	if d := root.Get("output_dimension"); d.Exists() {
		if !v4 {
			return mkErr("output_dimension is only supported by embed-v4 models")
		}
		if !slices.Contains([]float64{256, 512, 1024, 1536}, d.Num) || d.Type != gjson.Number {
			return mkErr("output_dimension must be one of 256, 512, 1024, 1536")
		}
		c.dims = int(d.Num)
	}
	return nil
}

func (b *bedrockAPI) embeddingsBody(c *embedCall) []byte {
	vecs := c.vectors()
	switch c.format {
	case "titan-v1":
		return mustJSON(map[string]any{"embedding": vecs[0], "inputTextTokenCount": c.inputTokens()})
	case "titan-v2":
		return mustJSON(map[string]any{"embedding": vecs[0], "inputTextTokenCount": c.inputTokens(),
			"embeddingsByType": map[string]any{"float": vecs[0]}})
	case "by_type":
		return mustJSON(map[string]any{"id": "fake-embed", "texts": c.texts,
			"embeddings": map[string]any{"float": vecs}, "response_type": "embeddings_by_type"})
	}
	return mustJSON(map[string]any{"id": "fake-embed", "texts": c.texts, "embeddings": vecs, "response_type": "embeddings_floats"})
}

// --- Gemini and Vertex AI ---

// parseGeminiEmbedRoute reads an embeddings path: the model part is
// routed as generateContent's, and the method must be one the endpoint
// serves.
func parseGeminiEmbedRoute(path string) (geminiRoute, string, bool) {
	rest, method, ok := strings.Cut(path, ":")
	if !ok {
		return geminiRoute{}, "", false
	}
	r := parseGeminiRoute(&url.URL{Path: rest + ":generateContent"})
	r.stream = false
	ok = r.ok && (r.vertex && (method == "predict" || method == "embedContent") || !r.vertex && method == "batchEmbedContents")
	return r, method, ok
}

func (*geminiAPI) embedsPath(path string) bool {
	_, _, ok := parseGeminiEmbedRoute(path)
	return ok
}

// Google's per-call limits: batchEmbedContents takes 100 requests, Vertex
// predict 250 instances (one for gemini-embedding-001).
const (
	geminiMaxBatch   = 100
	vertexMaxPredict = 250
)

// geminiDefaultDims is a Google embedding model's full vector size.
func geminiDefaultDims(model string) int {
	if strings.Contains(model, "gemini") {
		return 3072
	}
	return 768
}

// Request keys of Google's embedding methods.
var (
	geminiBatchKeys   = withKeys(map[string]bool{}, "requests")
	geminiEmbedKeys   = withKeys(map[string]bool{}, "model", "content", "taskType", "title", "outputDimensionality")
	vertexPredictKeys = withKeys(map[string]bool{}, "instances", "parameters")
	vertexInstKeys    = withKeys(map[string]bool{}, "content", "task_type", "title", "mimeType")
	vertexParamKeys   = withKeys(map[string]bool{}, "outputDimensionality", "autoTruncate")
	vertexECKeys      = withKeys(map[string]bool{}, "content", "embedContentConfig")
	vertexECConfig    = withKeys(map[string]bool{}, "taskType", "title", "outputDimensionality", "autoTruncate")
)

func (g *geminiAPI) parseEmbeddings(path string, body []byte) (*embedCall, *apiError) {
	route, method, _ := parseGeminiEmbedRoute(path)
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, gmInvalid("Invalid JSON payload received. Expected an object.")
	}
	root := gjson.ParseBytes(body)
	c := &embedCall{model: route.model, dims: geminiDefaultDims(route.model), format: method}
	unknown := func(at string) func(string) *apiError {
		return func(k string) *apiError {
			return gmInvalid(fmt.Sprintf("Invalid JSON payload received. Unknown name %q at '%s': Cannot find field.", k, at))
		}
	}
	dims := func(d gjson.Result, at string) *apiError {
		if !d.Exists() {
			return nil
		}
		if d.Type != gjson.Number || d.Num != math.Trunc(d.Num) {
			return gmInvalid(fmt.Sprintf("Invalid value at '%s' (TYPE_INT32), %s", at, d.Raw))
		}
		if d.Num < 1 || int(d.Num) > geminiDefaultDims(route.model) {
			return gmInvalid("outputDimensionality must be between 1 and " + fmt.Sprint(geminiDefaultDims(route.model)))
		}
		c.dims = int(d.Num)
		return nil
	}
	switch method {
	case "batchEmbedContents":
		if e := unknownKey(root, geminiBatchKeys, unknown("")); e != nil {
			return nil, e
		}
		reqs := root.Get("requests")
		if !reqs.IsArray() || len(reqs.Array()) == 0 {
			return nil, gmInvalid("* BatchEmbedContentsRequest.requests: must not be empty")
		}
		if n := len(reqs.Array()); n > geminiMaxBatch {
			return nil, gmInvalid(fmt.Sprintf("* BatchEmbedContentsRequest.requests: at most %d requests can be in one batch", geminiMaxBatch))
		}
		for i, r := range reqs.Array() {
			at := fmt.Sprintf("requests[%d]", i)
			if e := unknownKey(r, geminiEmbedKeys, unknown(at)); e != nil {
				return nil, e
			}
			if m := r.Get("model").Str; m != route.resource {
				return nil, gmInvalid(fmt.Sprintf("* BatchEmbedContentsRequest.%s.model: the model %q must match the model in the URL, %s", at, m, route.resource))
			}
			text, e := geminiEmbedText(r.Get("content"), at+".content")
			if e != nil {
				return nil, e
			}
			if e := dims(r.Get("outputDimensionality"), at+".output_dimensionality"); e != nil {
				return nil, e
			}
			c.addText(text)
		}
	case "predict":
		if e := unknownKey(root, vertexPredictKeys, unknown("")); e != nil {
			return nil, e
		}
		inst := root.Get("instances")
		limit := vertexMaxPredict
		if strings.HasPrefix(route.model, "gemini-embedding-001") {
			limit = 1
		}
		if !inst.IsArray() || len(inst.Array()) == 0 || len(inst.Array()) > limit {
			return nil, gmInvalid(fmt.Sprintf("Unable to submit request because the model supports up to %d instances per request.", limit))
		}
		for i, in := range inst.Array() {
			if e := unknownKey(in, vertexInstKeys, unknown(fmt.Sprintf("instances[%d]", i))); e != nil {
				return nil, e
			}
			if ct := in.Get("content"); ct.Type != gjson.String || ct.Str == "" {
				return nil, gmInvalid(fmt.Sprintf("instances[%d].content must be a non-empty string", i))
			}
			c.addText(in.Get("content").Str)
		}
		params := root.Get("parameters")
		if e := unknownKey(params, vertexParamKeys, unknown("parameters")); e != nil {
			return nil, e
		}
		if e := dims(params.Get("outputDimensionality"), "parameters.outputDimensionality"); e != nil {
			return nil, e
		}
	default: // embedContent
		if e := unknownKey(root, vertexECKeys, unknown("")); e != nil {
			return nil, e
		}
		text, e := geminiEmbedText(root.Get("content"), "content")
		if e != nil {
			return nil, e
		}
		c.addText(text)
		cfg := root.Get("embedContentConfig")
		if e := unknownKey(cfg, vertexECConfig, unknown("embed_content_config")); e != nil {
			return nil, e
		}
		if e := dims(cfg.Get("outputDimensionality"), "embed_content_config.output_dimensionality"); e != nil {
			return nil, e
		}
	}
	return c, nil
}

// geminiEmbedText joins the text parts of an embedded Content.
func geminiEmbedText(content gjson.Result, at string) (string, *apiError) {
	parts := content.Get("parts")
	if !content.IsObject() || !parts.IsArray() || len(parts.Array()) == 0 {
		return "", gmInvalid("* " + at + ".parts: contents.parts must not be empty.")
	}
	var texts []string
	for _, p := range parts.Array() {
		t := p.Get("text")
		if t.Type != gjson.String {
			return "", gmInvalid("* " + at + ".parts: only text parts can be embedded")
		}
		texts = append(texts, t.Str)
	}
	return strings.Join(texts, " "), nil
}

func (g *geminiAPI) embeddingsBody(c *embedCall) []byte {
	vecs := c.vectors()
	switch c.format {
	case "batchEmbedContents":
		items := make([]map[string]any, len(vecs))
		for i, v := range vecs {
			items[i] = map[string]any{"values": v}
		}
		return mustJSON(map[string]any{"embeddings": items})
	case "predict":
		preds := make([]map[string]any, len(vecs))
		chars := 0
		for i, v := range vecs {
			chars += len(strings.ReplaceAll(c.texts[i], " ", ""))
			preds[i] = map[string]any{"embeddings": map[string]any{
				"values":     v,
				"statistics": map[string]any{"truncated": false, "token_count": c.tokens[i]},
			}}
		}
		return mustJSON(map[string]any{"predictions": preds, "metadata": map[string]any{"billableCharacterCount": chars}})
	}
	n := c.inputTokens()
	return mustJSON(map[string]any{
		"embedding":     map[string]any{"values": vecs[0]},
		"usageMetadata": map[string]any{"promptTokenCount": n, "totalTokenCount": n},
		"truncated":     false,
	})
}

// --- Cohere v2 ---

func (*cohereAPI) embedsPath(path string) bool { return path == "/v2/embed" }

// cohereEmbedKeys are the fields v2 embed documents
// (https://docs.cohere.com/reference/embed).
var cohereEmbedKeys = withKeys(map[string]bool{}, "model", "texts", "images", "inputs", "input_type",
	"embedding_types", "output_dimension", "max_tokens", "truncate", "priority")

func (*cohereAPI) parseEmbeddings(_ string, body []byte) (*embedCall, *apiError) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, coInvalid("body must be a JSON object")
	}
	root := gjson.ParseBytes(body)
	if e := unknownKey(root, cohereEmbedKeys, func(k string) *apiError {
		return coInvalid("unknown field: parameter %s is not a valid field", k)
	}); e != nil {
		return nil, e
	}
	model := root.Get("model")
	if model.Type != gjson.String || model.Str == "" {
		return nil, coInvalid("model must be a string")
	}
	c := &embedCall{model: model.Str}
	if e := cohereEmbedFields(c, root, model.Str, func(msg string) *apiError { return coInvalid("%s", msg) }); e != nil {
		return nil, e
	}
	if t := root.Get("truncate"); t.Exists() && !slices.Contains([]string{"NONE", "START", "END"}, t.Str) {
		return nil, coInvalid("truncate must be one of NONE, START, END")
	}
	return c, nil
}

func (*cohereAPI) embeddingsBody(c *embedCall) []byte {
	return mustJSON(map[string]any{
		"id":            "fake-embed",
		"embeddings":    map[string]any{"float": c.vectors()},
		"texts":         c.texts,
		"meta":          map[string]any{"api_version": map[string]any{"version": "2"}, "billed_units": map[string]any{"input_tokens": c.inputTokens()}},
		"response_type": "embeddings_by_type",
	})
}
