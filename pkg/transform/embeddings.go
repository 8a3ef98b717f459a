package transform

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/url"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// OpenAI's embeddings API (POST /v1/embeddings) takes a model, an input
// (a string, an array of strings, an array of token ids, or an array of
// such arrays), encoding_format float or base64, dimensions and user, and
// answers {"object":"list","data":[{"object":"embedding","index",
// "embedding"}],"model","usage":{"prompt_tokens","total_tokens"}}.
// OpenAI-format providers take the body as it is; the others get their own
// embedding request and their answer is rebuilt in OpenAI's shape, with
// base64 vectors encoded here as little-endian float32, as OpenAI does.
// Truncation of over-long input follows each provider's default. Embeddings
// never stream.

// maxEmbeddingInputs is OpenAI's limit on inputs per request.
const maxEmbeddingInputs = 2048

// embeddingsFields are the fields of an embeddings request the
// translators read.
type embeddingsFields struct {
	model, input, dimensions gjson.Result
	// base64 reports encoding_format "base64".
	base64 bool
	// tokens reports that the input is token ids rather than text.
	tokens bool
	// n is the number of inputs.
	n int
}

// parseEmbeddings reads and validates an embeddings request body, whatever
// the provider, so that a malformed request is refused before it costs an
// upstream call.
func parseEmbeddings(body []byte) (embeddingsFields, error) {
	var f embeddingsFields
	if !gjson.ValidBytes(body) {
		return f, invalidf("", "request body is not valid JSON")
	}
	// A view, not a copy: nothing read from it outlives the call unless
	// copied into the output.
	doc := gjson.Parse(stringView(body))
	if !doc.IsObject() {
		return f, invalidf("", "request body must be a JSON object")
	}
	var format, user gjson.Result
	doc.ForEach(func(k, v gjson.Result) bool {
		if v.Type == gjson.Null {
			return true
		}
		switch k.Str {
		case "model":
			f.model = v
		case "input":
			f.input = v
		case "encoding_format":
			format = v
		case "dimensions":
			f.dimensions = v
		case "user":
			user = v
		}
		return true
	})
	if f.model.Exists() && f.model.Type != gjson.String {
		return f, invalidf("model", "model must be a string")
	}
	if err := f.readInput(); err != nil {
		return f, err
	}
	switch {
	case !format.Exists():
	case format.Type == gjson.String && format.Str == "float":
	case format.Type == gjson.String && format.Str == "base64":
		f.base64 = true
	default:
		return f, invalidf("encoding_format", "encoding_format must be \"float\" or \"base64\"")
	}
	if f.dimensions.Exists() && !positiveInt(f.dimensions) {
		return f, invalidf("dimensions", "dimensions must be a positive integer")
	}
	if user.Exists() && user.Type != gjson.String {
		return f, invalidf("user", "user must be a string")
	}
	return f, nil
}

// readInput validates the input shape and counts the inputs.
func (f *embeddingsFields) readInput() error {
	in := f.input
	switch {
	case !in.Exists():
		return invalidf("input", "input is required")
	case in.Type == gjson.String:
		if in.Str == "" {
			return invalidf("input", "input must not be an empty string")
		}
		f.n = 1
		return nil
	case !in.IsArray():
		return invalidf("input", "input must be a string, an array of strings, or an array of token arrays")
	}
	// The element type of the first item decides; mixed arrays are refused
	// as OpenAI refuses them.
	var kind gjson.Type
	var nested bool
	var err error
	in.ForEach(func(_, v gjson.Result) bool {
		if f.n == 0 {
			kind, nested = v.Type, v.IsArray()
		}
		f.n++
		switch {
		case f.n > maxEmbeddingInputs:
			err = invalidf("input", "input must have at most %d items", maxEmbeddingInputs)
		case nested:
			if !v.IsArray() || !tokenArray(v) {
				err = invalidf("input", "input[%d] must be a non-empty array of token ids", f.n-1)
			}
		case kind == gjson.String:
			if v.Type != gjson.String || v.Str == "" {
				err = invalidf("input", "input[%d] must be a non-empty string", f.n-1)
			}
		case kind == gjson.Number:
			if !tokenID(v) {
				err = invalidf("input", "input[%d] must be a token id", f.n-1)
			}
		default:
			err = invalidf("input", "input must be a string, an array of strings, or an array of token arrays")
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	switch {
	case f.n == 0:
		return invalidf("input", "input must not be an empty array")
	case kind == gjson.Number:
		// One token array is one input.
		f.n, f.tokens = 1, true
	case nested:
		f.tokens = true
	}
	return nil
}

// tokenArray reports whether v is a non-empty array of token ids.
func tokenArray(v gjson.Result) bool {
	n := 0
	ok := true
	v.ForEach(func(_, t gjson.Result) bool {
		n++
		ok = tokenID(t)
		return ok
	})
	return ok && n > 0
}

// tokenID reports whether v is a non-negative integer.
func tokenID(v gjson.Result) bool {
	return v.Type == gjson.Number && v.Num >= 0 && v.Num == math.Trunc(v.Num) && !strings.ContainsAny(v.Raw, ".eE")
}

// positiveInt reports whether v is an integer above zero.
func positiveInt(v gjson.Result) bool {
	return v.Type == gjson.Number && v.Num >= 1 && v.Num <= math.MaxInt32 && !strings.ContainsAny(v.Raw, ".eE")
}

// texts calls fn with the raw JSON string literal of each input in order.
// It must only be used when the input is text.
func (f *embeddingsFields) texts(fn func(raw string)) {
	if f.input.Type == gjson.String {
		fn(f.input.Raw)
		return
	}
	f.input.ForEach(func(_, v gjson.Result) bool {
		fn(v.Raw)
		return true
	})
}

// modelName is the provider model: the target's, else the client's.
func (f *embeddingsFields) modelName(t *Target) (string, error) {
	if t.Model != "" {
		return t.Model, nil
	}
	if f.model.Str == "" {
		return "", invalidf("model", "model is required")
	}
	return f.model.Str, nil
}

// requireText refuses token-id input, which only OpenAI-format providers
// take.
func (f *embeddingsFields) requireText(provider string) error {
	if f.tokens {
		return invalidf("input", "%s embedding models take text input, not token arrays", provider)
	}
	return nil
}

// requireAtMost refuses more inputs than a provider takes in one call.
func (f *embeddingsFields) requireAtMost(limit int, model string) error {
	if f.n > limit {
		if limit == 1 {
			return invalidf("input", "%s takes one input per request, not %d; send one request per input", model, f.n)
		}
		return invalidf("input", "%s takes at most %d inputs per request, not %d", model, limit, f.n)
	}
	return nil
}

// dimensionsFor is the output size to send a model, 0 for none. allowed
// lists the sizes the model takes (empty: any); nil means the model has no
// size setting, and dimensions are then refused unless drop removes them.
func (f *embeddingsFields) dimensionsFor(model string, allowed []int64, drop bool) (int64, error) {
	if !f.dimensions.Exists() {
		return 0, nil
	}
	d := f.dimensions.Int()
	if allowed == nil {
		if drop {
			return 0, nil
		}
		return 0, invalidf("dimensions", "dimensions is not supported by %s; set drop_params to remove it", model)
	}
	if len(allowed) == 0 {
		return d, nil
	}
	for _, a := range allowed {
		if a == d {
			return d, nil
		}
	}
	return 0, invalidf("dimensions", "dimensions must be one of %s for %s", joinInts(allowed), model)
}

func joinInts(v []int64) string {
	var b []byte
	for i, n := range v {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendInt(b, n)
	}
	return string(b)
}

// anyDimensions allows any positive dimensions in dimensionsFor.
var anyDimensions = []int64{}

// embeddingsRequest forwards an embeddings request to an OpenAI-format
// provider, copying the body only to rewrite the model.
type embeddingsRequest struct {
	target Target
	kind   embeddingsKind
	compat compatProvider
}

// embeddingsKind is the wire format of an embeddings provider.
type embeddingsKind int

const (
	embedOpenAI embeddingsKind = iota
	embedAzure
	embedBedrock
	embedGemini
	embedCohere
)

var _ RequestTranslator = (*embeddingsRequest)(nil)

// NewEmbeddingsRequest returns the translator of OpenAI embeddings
// requests for a provider:
//
//   - openai and the OpenAI-compatible providers: {BasePath}/embeddings,
//     bearer auth, the body forwarded as it is (model rewritten when the
//     target names another).
//   - azure: {BasePath}/openai/deployments/{Model}/embeddings?api-version=...
//     (or /openai/v1/embeddings when APIVersion is "v1"), api-key.
//   - bedrock: InvokeModel, {BasePath}/model/{Model}/invoke, for Amazon
//     Titan (amazon.titan-embed-*, one input per request) and Cohere Embed
//     (cohere.embed-*, up to 96 inputs); signed afterwards.
//   - gemini: AI Studio {base}/models/{m}:batchEmbedContents, up to 100
//     inputs, x-goog-api-key.
//   - vertex_ai (Target.Project set): {base}/projects/.../models/{m}:predict,
//     or :embedContent for the Gemini embedding models after
//     gemini-embedding-001, which take one input, as Google's SDK does;
//     authorization is set by the credentials source.
//   - cohere: {BasePath}/v2/embed, up to 96 inputs, bearer auth.
//
// Token-id input is refused for all but the OpenAI-format providers.
func NewEmbeddingsRequest(p Provider, t Target) (RequestTranslator, error) {
	k, cp, ok := embeddingsProvider(p)
	if !ok {
		return nil, fmt.Errorf("%w: %s to %s", ErrUnsupported, APIEmbeddings, p)
	}
	return &embeddingsRequest{target: t, kind: k, compat: cp}, nil
}

// NewEmbeddingsResponse returns the translator of a provider's embeddings
// responses and errors. OpenAI-format responses pass through; the others
// are rebuilt as an OpenAI list, named by o.Model (else the model of
// o.Request), encoded as o.Request's encoding_format asks. StreamChunk
// always fails: embeddings never stream.
func NewEmbeddingsResponse(p Provider, o ResponseOptions) (ResponseTranslator, error) {
	k, _, ok := embeddingsProvider(p)
	if !ok {
		return nil, fmt.Errorf("%w: %s to %s", ErrUnsupported, APIEmbeddings, p)
	}
	r := &embeddingsResponse{kind: k, opts: o}
	// Errors are mapped by the provider's chat translator, which knows
	// its error shapes.
	switch k {
	case embedOpenAI:
		r.errs = &openAIToOpenAIResponse{}
		if p != ProviderOpenAI {
			r.errs = &compatResponse{}
		}
	case embedAzure:
		r.errs = &azureResponse{}
	case embedBedrock:
		r.errs = &openAIToBedrockResponse{}
	case embedGemini:
		r.errs = &openAIToGeminiResponse{}
	case embedCohere:
		r.errs = &cohereResponse{}
	}
	return r, nil
}

func embeddingsProvider(p Provider) (embeddingsKind, compatProvider, bool) {
	switch p {
	case ProviderOpenAI:
		return embedOpenAI, compatProvider{}, true
	case ProviderAzure:
		return embedAzure, compatProvider{}, true
	case ProviderBedrock:
		return embedBedrock, compatProvider{}, true
	case ProviderGemini, ProviderVertexAI:
		return embedGemini, compatProvider{}, true
	case ProviderCohere:
		return embedCohere, compatProvider{}, true
	}
	if cp, ok := compatLookup(string(p)); ok {
		return embedOpenAI, cp, true
	}
	return 0, compatProvider{}, false
}

// RequestBody implements RequestTranslator.
func (t *embeddingsRequest) RequestBody(body []byte) (RequestResult, error) {
	f, err := parseEmbeddings(body)
	if err != nil {
		return RequestResult{}, err
	}
	switch t.kind {
	case embedOpenAI, embedAzure:
		return t.passThrough(body, &f)
	case embedBedrock:
		return t.bedrock(&f)
	case embedGemini:
		return t.gemini(&f)
	default:
		return t.cohere(&f)
	}
}

// passThrough forwards the body to an OpenAI-format provider.
func (t *embeddingsRequest) passThrough(body []byte, f *embeddingsFields) (RequestResult, error) {
	target := t.target
	if t.kind == embedOpenAI {
		target = compatTarget(t.compat, target, body)
	}
	var res RequestResult
	if target.Model != "" && f.model.Str != target.Model {
		// sjson copies, so the client's body stays pristine for the next
		// attempt.
		b, err := sjson.SetBytes(body, "model", target.Model)
		if err != nil {
			return RequestResult{}, invalidf("model", "cannot set model: %v", err)
		}
		res.Body = b
	}
	res.SetHeaders = []Header{{Key: "content-type", Value: "application/json"}}
	if t.kind == embedOpenAI {
		res.Path = target.BasePath + "/embeddings"
		// A previous attempt may have left another provider's credential.
		res.RemoveHeaders = []string{"x-api-key", "api-key", "x-goog-api-key", "anthropic-version", "anthropic-beta"}
		bearer(&res, target.APIKey)
		return res, nil
	}
	if target.APIVersion == azureV1 {
		res.Path = target.BasePath + "/openai/v1/embeddings"
	} else {
		deployment, err := f.modelName(&target)
		if err != nil {
			return RequestResult{}, invalidf("model", "model is required to name the azure deployment")
		}
		version := target.APIVersion
		if version == "" {
			version = azureDefaultAPIVersion
		}
		res.Path = target.BasePath + "/openai/deployments/" + url.PathEscape(deployment) +
			"/embeddings?api-version=" + url.QueryEscape(version)
	}
	res.RemoveHeaders = []string{"authorization", "x-api-key", "x-goog-api-key", "anthropic-version", "anthropic-beta"}
	if target.APIKey != "" {
		res.SetHeaders = append(res.SetHeaders, Header{Key: "api-key", Value: target.APIKey})
	} else {
		res.RemoveHeaders = append(res.RemoveHeaders, "api-key")
	}
	return res, nil
}

// bearer sets or removes the bearer credential.
func bearer(res *RequestResult, key string) {
	if key != "" {
		res.SetHeaders = append(res.SetHeaders, Header{Key: "authorization", Value: "Bearer " + key})
	} else {
		res.RemoveHeaders = append(res.RemoveHeaders, "authorization")
	}
}

// appendTextArray appends the inputs as a JSON array of strings.
func appendTextArray(dst []byte, f *embeddingsFields) []byte {
	dst = append(dst, '[')
	first := true
	f.texts(func(raw string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, raw...)
	})
	return append(dst, ']')
}

// Cohere's embedding output sizes
// (https://docs.cohere.com/reference/embed, output_dimension): embed-v4
// takes these, earlier models none.
var cohereDimensions = []int64{256, 512, 1024, 1536}

// cohereDimensionsFor is the output_dimension to send a Cohere model.
func cohereDimensionsFor(f *embeddingsFields, model string, drop bool) (int64, error) {
	if strings.Contains(model, "embed-v4") {
		return f.dimensionsFor(model, cohereDimensions, drop)
	}
	return f.dimensionsFor(model, nil, drop)
}

// maxCohereTexts is Cohere's limit on texts per embed call, on its own API
// and on Bedrock.
const maxCohereTexts = 96

// appendCohereBody appends the shared part of Cohere's embed bodies.
// input_type is required by v3 and later; search_document is what a
// client storing OpenAI embeddings means.
func appendCohereBody(dst []byte, f *embeddingsFields, dims int64) []byte {
	dst = append(dst, `"texts":`...)
	dst = appendTextArray(dst, f)
	dst = append(dst, `,"input_type":"search_document","embedding_types":["float"]`...)
	if dims > 0 {
		dst = append(dst, `,"output_dimension":`...)
		dst = appendInt(dst, dims)
	}
	return dst
}

// cohere builds a Cohere v2 embed request.
func (t *embeddingsRequest) cohere(f *embeddingsFields) (RequestResult, error) {
	model, err := f.modelName(&t.target)
	if err != nil {
		return RequestResult{}, err
	}
	if err := f.requireText("cohere"); err != nil {
		return RequestResult{}, err
	}
	if err := f.requireAtMost(maxCohereTexts, model); err != nil {
		return RequestResult{}, err
	}
	dims, err := cohereDimensionsFor(f, model, t.target.DropParams)
	if err != nil {
		return RequestResult{}, err
	}
	out := make([]byte, 0, len(f.input.Raw)+128)
	out = append(out, `{"model":`...)
	out = appendJSONString(out, model)
	out = append(out, ',')
	out = appendCohereBody(out, f, dims)
	out = append(out, '}')
	res := RequestResult{
		Path:          t.target.BasePath + "/v2/embed",
		Body:          out,
		SetHeaders:    []Header{{Key: "content-type", Value: "application/json"}},
		RemoveHeaders: []string{"x-api-key", "api-key", "x-goog-api-key", "anthropic-version", "anthropic-beta"},
	}
	bearer(&res, t.target.APIKey)
	return res, nil
}

// titanV2Dimensions are the output sizes Titan Text Embeddings v2 takes
// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html).
var titanV2Dimensions = []int64{256, 512, 1024}

// bedrock builds an InvokeModel request for an embedding model, whose
// body shape depends on the model family.
func (t *embeddingsRequest) bedrock(f *embeddingsFields) (RequestResult, error) {
	model, err := f.modelName(&t.target)
	if err != nil {
		return RequestResult{}, err
	}
	if err := f.requireText("bedrock"); err != nil {
		return RequestResult{}, err
	}
	out := make([]byte, 0, len(f.input.Raw)+128)
	switch {
	case strings.Contains(model, "amazon.titan-embed"):
		// Titan embeds one text per call
		// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html).
		if err := f.requireAtMost(1, model); err != nil {
			return RequestResult{}, err
		}
		v2 := strings.Contains(model, "titan-embed-text-v2")
		allowed := []int64(nil)
		if v2 {
			allowed = titanV2Dimensions
		}
		dims, err := f.dimensionsFor(model, allowed, t.target.DropParams)
		if err != nil {
			return RequestResult{}, err
		}
		out = append(out, `{"inputText":`...)
		f.texts(func(raw string) { out = append(out, raw...) })
		if dims > 0 {
			out = append(out, `,"dimensions":`...)
			out = appendInt(out, dims)
		}
		if v2 {
			// OpenAI's vectors are unit length, which clients rely on when
			// they rank by dot product.
			out = append(out, `,"normalize":true`...)
		}
		out = append(out, '}')
	case strings.Contains(model, "cohere.embed"):
		if err := f.requireAtMost(maxCohereTexts, model); err != nil {
			return RequestResult{}, err
		}
		dims, err := cohereDimensionsFor(f, model, t.target.DropParams)
		if err != nil {
			return RequestResult{}, err
		}
		out = append(out, '{')
		out = appendCohereBody(out, f, dims)
		// NONE, Bedrock's documented default, made explicit: an over-long
		// text fails as it does on OpenAI instead of being cut.
		out = append(out, `,"truncate":"NONE"}`...)
	default:
		return RequestResult{}, invalidf("model", "bedrock embeddings support amazon.titan-embed-* and cohere.embed-* models, not %q", model)
	}
	return RequestResult{
		// The Converse path with its escaping, ending in /invoke instead.
		Path:       strings.TrimSuffix(bedrockPath(t.target.BasePath, model, false), "/converse") + "/invoke",
		Body:       out,
		SetHeaders: []Header{{Key: "content-type", Value: "application/json"}, {Key: "accept", Value: "application/json"}},
		// The signer adds Bedrock's own credentials; a token left by an
		// earlier attempt would spoil its signature.
		RemoveHeaders: []string{"authorization", "x-api-key", "api-key", "x-goog-api-key", "anthropic-version", "x-amz-security-token"},
	}, nil
}

// Google's per-call input limits: AI Studio's batchEmbedContents takes 100
// requests, Vertex's predict 250 instances for text-embedding models
// (https://cloud.google.com/vertex-ai/generative-ai/docs/embeddings/get-text-embeddings)
// and one for gemini-embedding-001.
const (
	maxGeminiBatch   = 100
	maxVertexPredict = 250
)

// gemini builds a Google embedding request: batchEmbedContents on AI
// Studio; on Vertex AI, predict, or embedContent for the newer Gemini
// embedding models, chosen as google.golang.org/genai chooses.
func (t *embeddingsRequest) gemini(f *embeddingsFields) (RequestResult, error) {
	model, err := f.modelName(&t.target)
	if err != nil {
		return RequestResult{}, err
	}
	if err := f.requireText("gemini"); err != nil {
		return RequestResult{}, err
	}
	// Output sizes are truncations of the full vector, so any size up to
	// the model's is accepted.
	dims, err := f.dimensionsFor(model, anyDimensions, t.target.DropParams)
	if err != nil {
		return RequestResult{}, err
	}
	bare := strings.TrimPrefix(model, "models/")
	out := make([]byte, 0, len(f.input.Raw)*2+128)
	var method string
	vertex := t.target.Project != ""
	switch {
	case !vertex:
		if err := f.requireAtMost(maxGeminiBatch, model); err != nil {
			return RequestResult{}, err
		}
		method = ":batchEmbedContents"
		out = append(out, `{"requests":[`...)
		first := true
		f.texts(func(raw string) {
			if !first {
				out = append(out, ',')
			}
			first = false
			out = append(out, `{"model":`...)
			out = appendJSONString(out, "models/"+bare)
			out = append(out, `,"content":{"parts":[{"text":`...)
			out = append(out, raw...)
			out = append(out, `}]}`...)
			if dims > 0 {
				out = append(out, `,"outputDimensionality":`...)
				out = appendInt(out, dims)
			}
			out = append(out, '}')
		})
		out = append(out, `]}`...)
	case vertexEmbedContent(bare):
		if err := f.requireAtMost(1, model); err != nil {
			return RequestResult{}, err
		}
		method = ":embedContent"
		out = append(out, `{"content":{"parts":[{"text":`...)
		f.texts(func(raw string) { out = append(out, raw...) })
		out = append(out, `}]}`...)
		if dims > 0 {
			out = append(out, `,"embedContentConfig":{"outputDimensionality":`...)
			out = appendInt(out, dims)
			out = append(out, '}')
		}
		out = append(out, '}')
	default:
		limit := maxVertexPredict
		if strings.HasPrefix(bare, "gemini-embedding-001") {
			limit = 1
		}
		if err := f.requireAtMost(limit, model); err != nil {
			return RequestResult{}, err
		}
		method = ":predict"
		out = append(out, `{"instances":[`...)
		first := true
		f.texts(func(raw string) {
			if !first {
				out = append(out, ',')
			}
			first = false
			out = append(out, `{"content":`...)
			out = append(out, raw...)
			out = append(out, '}')
		})
		out = append(out, ']')
		if dims > 0 {
			out = append(out, `,"parameters":{"outputDimensionality":`...)
			out = appendInt(out, dims)
			out = append(out, '}')
		}
		out = append(out, '}')
	}
	chat := openAIToGeminiRequest{target: t.target}
	res := RequestResult{
		// The generateContent path with its escaping and defaults, with the
		// embedding method instead.
		Path:       strings.TrimSuffix(chat.path(model, false), ":generateContent") + method,
		Body:       out,
		SetHeaders: []Header{{Key: "content-type", Value: "application/json"}},
		// Vertex's authorization is set by its credentials source after
		// translation.
		RemoveHeaders: []string{"authorization", "x-api-key", "api-key", "anthropic-version"},
	}
	if !vertex && t.target.APIKey != "" {
		res.SetHeaders = append(res.SetHeaders, Header{Key: "x-goog-api-key", Value: t.target.APIKey})
	} else {
		res.RemoveHeaders = append(res.RemoveHeaders, "x-goog-api-key")
	}
	return res, nil
}

// vertexEmbedContent reports whether a Vertex model is served by
// embedContent rather than predict: Gemini embedding models after
// gemini-embedding-001, per google.golang.org/genai's
// tIsVertexEmbedContentModel.
func vertexEmbedContent(model string) bool {
	return strings.Contains(model, "gemini") && model != "gemini-embedding-001"
}

// embeddingsResponse reads embeddings responses: OpenAI-format ones pass
// through, others are rebuilt as an OpenAI list.
type embeddingsResponse struct {
	kind embeddingsKind
	opts ResponseOptions
	// errs maps the provider's errors.
	errs ResponseTranslator
}

var _ ResponseTranslator = (*embeddingsResponse)(nil)

// ResponseBody implements ResponseTranslator.
func (r *embeddingsResponse) ResponseBody(body []byte) (ResponseResult, error) {
	if !gjson.ValidBytes(body) {
		return ResponseResult{}, fmt.Errorf("read embeddings response: %w: not JSON", ErrMalformedResponse)
	}
	doc := gjson.Parse(stringView(body))
	if !doc.IsObject() {
		return ResponseResult{}, fmt.Errorf("read embeddings response: %w: not an object", ErrMalformedResponse)
	}
	var vecs []gjson.Result
	var usage Usage
	switch r.kind {
	case embedOpenAI, embedAzure:
		if doc.Get("error").Exists() && !doc.Get("data").Exists() {
			return ResponseResult{}, r.errs.ErrorBody(0, body)
		}
		if !doc.Get("data").IsArray() {
			return ResponseResult{}, fmt.Errorf("read embeddings response: %w: no data", ErrMalformedResponse)
		}
		return ResponseResult{
			Usage: Usage{InputTokens: doc.Get("usage.prompt_tokens").Int()},
			Model: strings.Clone(doc.Get("model").String()),
		}, nil
	case embedBedrock:
		if e := doc.Get("embedding"); e.Exists() {
			// Titan.
			vecs = []gjson.Result{e}
			usage.InputTokens = doc.Get("inputTextTokenCount").Int()
		} else {
			// Cohere: by type when embedding_types was sent, a bare list
			// otherwise. Bedrock reports its token count only in the
			// x-amzn-bedrock-input-token-count header.
			vecs = cohereVectors(doc.Get("embeddings"))
		}
	case embedGemini:
		switch {
		case doc.Get("embeddings").IsArray():
			// AI Studio reports no usage for embeddings.
			doc.Get("embeddings").ForEach(func(_, e gjson.Result) bool {
				vecs = append(vecs, e.Get("values"))
				return true
			})
		case doc.Get("predictions").IsArray():
			doc.Get("predictions").ForEach(func(_, p gjson.Result) bool {
				e := p.Get("embeddings")
				vecs = append(vecs, e.Get("values"))
				usage.InputTokens += e.Get("statistics.token_count").Int()
				return true
			})
		case doc.Get("embedding").IsObject():
			vecs = []gjson.Result{doc.Get("embedding.values")}
			usage.InputTokens = doc.Get("usageMetadata.promptTokenCount").Int()
		}
	case embedCohere:
		vecs = cohereVectors(doc.Get("embeddings"))
		usage.InputTokens = doc.Get("meta.billed_units.input_tokens").Int()
	}
	if vecs == nil {
		if doc.Get("message").Exists() || doc.Get("error").Exists() || doc.Get("Message").Exists() {
			return ResponseResult{}, r.errs.ErrorBody(0, body)
		}
		return ResponseResult{}, fmt.Errorf("read embeddings response: %w: no embeddings", ErrMalformedResponse)
	}
	model := r.opts.Model
	if model == "" {
		model = gjson.GetBytes(r.opts.Request, "model").String()
	}
	b64 := gjson.GetBytes(r.opts.Request, "encoding_format").String() == "base64"
	out, err := appendEmbeddingsList(make([]byte, 0, len(body)+128), vecs, model, usage, b64)
	if err != nil {
		return ResponseResult{}, err
	}
	return ResponseResult{Body: out, Usage: usage, Model: model}, nil
}

// cohereVectors returns the float vectors of a Cohere embeddings field.
func cohereVectors(e gjson.Result) []gjson.Result {
	if e.IsObject() {
		e = e.Get("float")
	}
	if !e.IsArray() {
		return nil
	}
	vecs := []gjson.Result{}
	e.ForEach(func(_, v gjson.Result) bool {
		vecs = append(vecs, v)
		return true
	})
	return vecs
}

// appendEmbeddingsList appends the OpenAI list response.
func appendEmbeddingsList(dst []byte, vecs []gjson.Result, model string, u Usage, b64 bool) ([]byte, error) {
	dst = append(dst, `{"object":"list","data":[`...)
	var scratch []byte
	for i, v := range vecs {
		if !v.IsArray() {
			return nil, fmt.Errorf("read embeddings response: %w: embedding %d is not an array", ErrMalformedResponse, i)
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"object":"embedding","index":`...)
		dst = appendInt(dst, int64(i))
		dst = append(dst, `,"embedding":`...)
		if !b64 {
			dst = append(dst, v.Raw...)
			dst = append(dst, '}')
			continue
		}
		var err error
		scratch, err = appendFloat32LE(scratch[:0], v)
		if err != nil {
			return nil, fmt.Errorf("read embeddings response: %w: embedding %d: %v", ErrMalformedResponse, i, err)
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, scratch)
		dst = append(dst, `"}`...)
	}
	dst = append(dst, `],"model":`...)
	dst = appendJSONString(dst, model)
	dst = append(dst, `,"usage":{"prompt_tokens":`...)
	dst = appendInt(dst, u.InputTokens)
	dst = append(dst, `,"total_tokens":`...)
	dst = appendInt(dst, u.InputTokens)
	return append(dst, "}}"...), nil
}

// appendFloat32LE appends each number of a JSON array as a little-endian
// float32, the bytes OpenAI base64-encodes.
func appendFloat32LE(dst []byte, arr gjson.Result) ([]byte, error) {
	var err error
	arr.ForEach(func(_, v gjson.Result) bool {
		if v.Type != gjson.Number {
			err = fmt.Errorf("value %s is not a number", v.Raw)
			return false
		}
		bits := math.Float32bits(float32(v.Num))
		dst = append(dst, byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24))
		return true
	})
	return dst, err
}

// errEmbeddingsStream is returned by StreamChunk: no provider streams
// embeddings, so a stream is a provider fault.
var errEmbeddingsStream = fmt.Errorf("embeddings response: %w: embeddings are never streamed", ErrMalformedResponse)

// StreamChunk implements ResponseTranslator. It always fails.
func (r *embeddingsResponse) StreamChunk([]byte, bool) (StreamResult, error) {
	e := &ProviderError{Status: 500, Type: ErrorTypeServer, Message: "provider streamed an embeddings response"}
	return StreamResult{Body: appendErrorEvent(nil, e)}, errEmbeddingsStream
}

// ErrorBody implements ResponseTranslator.
func (r *embeddingsResponse) ErrorBody(status int, body []byte) *ProviderError {
	return r.errs.ErrorBody(status, body)
}
