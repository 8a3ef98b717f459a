package fakeprovider

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"google.golang.org/genai"
)

// The Gemini fake serves generateContent and streamGenerateContent on both
// Google endpoints:
//
//	AI Studio: POST /{v1,v1beta,v1alpha}/models/{model}:{method}
//	           authorized by x-goog-api-key
//	Vertex AI: POST /{v1,v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}
//	           authorized by Authorization: Bearer <token>
//
// WithAPIKey sets the expected API key or bearer token. Streams are SSE
// with ?alt=sse and a JSON array without it, as the real API does. Usage
// is reported as promptTokenCount = Input + CacheRead + CacheWrite,
// cachedContentTokenCount = CacheRead, candidatesTokenCount = Output and
// thoughtsTokenCount = Reasoning.
//
// Besides the common Step scripting, requests may carry Gemini-only
// headers that script a safety block or a mid-stream error.
const (
	// HeaderGeminiBlock blocks the prompt: the reply has no candidates and
	// promptFeedback.blockReason is the header's value (e.g. SAFETY).
	HeaderGeminiBlock = "X-Fake-Gemini-Block"
	// HeaderGeminiFinishReason ends the candidate with this finishReason
	// (e.g. SAFETY, RECITATION) and no content.
	HeaderGeminiFinishReason = "X-Fake-Gemini-Finish-Reason"
	// HeaderGeminiStreamError makes a stream send an error object with
	// this HTTP code after its first event, and end.
	HeaderGeminiStreamError = "X-Fake-Gemini-Stream-Error"
)

// pathRouted is implemented by providers whose request path, not body,
// names the model and the method. ServeHTTP binds such a provider to the
// request URL before authenticating and parsing.
type pathRouted interface {
	forRequest(u *url.URL) provider
}

// geminiAPI fakes the Gemini API. The zero value only routes; forRequest
// returns a copy bound to one request, which parse fills with the
// request's scripting.
type geminiAPI struct {
	route geminiRoute
	// Scripted by the Gemini-only headers.
	block, finishReason string
	streamError         int
}

var (
	_ provider   = (*geminiAPI)(nil)
	_ pathRouted = (*geminiAPI)(nil)
)

// geminiRoute is what a request path says.
type geminiRoute struct {
	ok      bool
	vertex  bool
	version string
	model   string
	// resource is the model's resource name, for errors.
	resource string
	stream   bool
	sse      bool
}

func parseGeminiRoute(u *url.URL) geminiRoute {
	rest, method, ok := strings.Cut(u.Path, ":")
	if !ok || method != "generateContent" && method != "streamGenerateContent" {
		return geminiRoute{}
	}
	segs := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	r := geminiRoute{stream: method == "streamGenerateContent", sse: u.Query().Get("alt") == "sse"}
	switch {
	case len(segs) == 3 && segs[1] == "models" && slices.Contains([]string{"v1", "v1beta", "v1alpha"}, segs[0]):
		r.version, r.model = segs[0], segs[2]
		r.resource = "models/" + r.model
	case len(segs) == 9 && segs[1] == "projects" && segs[3] == "locations" && segs[5] == "publishers" &&
		segs[6] == "google" && segs[7] == "models" && (segs[0] == "v1" || segs[0] == "v1beta1"):
		r.vertex, r.version, r.model = true, segs[0], segs[8]
		r.resource = strings.Join(segs[1:], "/")
	default:
		return geminiRoute{}
	}
	r.ok = r.model != "" && !slices.Contains(segs, "")
	return r
}

func (*geminiAPI) handles(path string) bool {
	return parseGeminiRoute(&url.URL{Path: path}).ok
}

func (*geminiAPI) forRequest(u *url.URL) provider {
	if r, _, ok := parseGeminiEmbedRoute(u.Path); ok {
		return &geminiAPI{route: r}
	}
	return &geminiAPI{route: parseGeminiRoute(u)}
}

func (*geminiAPI) idPrefix() string     { return "resp-" }
func (*geminiAPI) toolIDPrefix() string { return "fc-" }

func (*geminiAPI) setResponseHeaders(h http.Header, _ string) {
	h.Set("Server", "scaffolding on HTTPServer2")
}

func geminiErr(status int, name, msg string) *apiError {
	return &apiError{Status: status, Type: name, Message: msg}
}

func gmInvalid(msg string) *apiError {
	return geminiErr(http.StatusBadRequest, "INVALID_ARGUMENT", msg)
}

func (g *geminiAPI) authenticate(h http.Header, key string) *apiError {
	if key == "" {
		return nil
	}
	if g.route.vertex {
		if h.Get("Authorization") != "Bearer "+key {
			return geminiErr(http.StatusUnauthorized, "UNAUTHENTICATED",
				"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		}
		return nil
	}
	switch got := h.Get("X-Goog-Api-Key"); {
	case got == "":
		return geminiErr(http.StatusForbidden, "PERMISSION_DENIED",
			"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
	case got != key:
		return &apiError{Status: http.StatusBadRequest, Type: "INVALID_ARGUMENT", Code: "API_KEY_INVALID",
			Message: "API key not valid. Please pass a valid API key."}
	}
	return nil
}

// Accepted field names, from the genai SDK's wire types.
var (
	geminiTopLevel = map[string]bool{
		"contents": true, "systemInstruction": true, "tools": true, "toolConfig": true,
		"generationConfig": true, "safetySettings": true, "cachedContent": true, "labels": true,
	}
	geminiPartKeys      = jsonKeys(reflect.TypeFor[genai.Part]())
	geminiGenConfigKeys = jsonKeys(reflect.TypeFor[genai.GenerationConfig]())
	geminiSchemaKeys    = jsonKeys(reflect.TypeFor[genai.Schema]())
	geminiDeclKeys      = jsonKeys(reflect.TypeFor[genai.FunctionDeclaration]())
	geminiToolKeys      = jsonKeys(reflect.TypeFor[genai.Tool]())
)

// geminiDataFields are the part fields of which a part holds exactly one.
var geminiDataFields = []string{"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"}

func unknownName(at string) func(string) *apiError {
	return func(k string) *apiError {
		return gmInvalid(fmt.Sprintf("Invalid JSON payload received. Unknown name %q at '%s': Cannot find field.", k, at))
	}
}

func (g *geminiAPI) parse(h http.Header, body []byte) (*call, *apiError) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, gmInvalid("Invalid JSON payload received. Expected an object.")
	}
	root := gjson.ParseBytes(body)
	if e := unknownKey(root, geminiTopLevel, unknownName("")); e != nil {
		return nil, e
	}
	c := &call{model: g.route.model, stream: g.route.stream && g.route.sse, choices: 1}
	sys := root.Get("systemInstruction")
	for _, p := range sys.Get("parts").Array() {
		c.inputTokens += CountTokens(p.Get("text").String())
	}
	if e := g.validateContents(root.Get("contents"), c); e != nil {
		return nil, e
	}
	decls, e := validateGeminiTools(root.Get("tools"))
	if e != nil {
		return nil, e
	}
	if e := g.generationConfig(root.Get("generationConfig"), c); e != nil {
		return nil, e
	}
	fc := root.Get("toolConfig.functionCallingConfig")
	allowed := fc.Get("allowedFunctionNames").Array()
	for _, a := range allowed {
		if !slices.Contains(decls, a.String()) {
			return nil, gmInvalid(fmt.Sprintf("* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: %s is not a declared function.", a.String()))
		}
	}
	switch mode := fc.Get("mode").String(); mode {
	case "", "AUTO", "NONE", "VALIDATED", "MODE_UNSPECIFIED":
	case "ANY":
		if len(decls) == 0 {
			return nil, gmInvalid("* GenerateContentRequest.tool_config.function_calling_config.mode: specified as ANY but no function declarations were provided.")
		}
		c.forcedTool = decls[0]
		if len(allowed) > 0 {
			c.forcedTool = allowed[0].String()
		}
	default:
		return nil, gmInvalid(fmt.Sprintf("Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), %q", mode))
	}

	g.block = h.Get(HeaderGeminiBlock)
	g.finishReason = h.Get(HeaderGeminiFinishReason)
	if v := h.Get(HeaderGeminiStreamError); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 400 || n > 599 {
			return nil, gmInvalid("fakeprovider: header " + strings.ToLower(HeaderGeminiStreamError) + ": want 400-599")
		}
		g.streamError = n
	}
	return c, nil
}

// validateContents applies the API's rules on turns: roles user and model,
// non-empty parts, alternation, and function responses matching the
// function calls of the turn before.
func (g *geminiAPI) validateContents(contents gjson.Result, c *call) *apiError {
	all := contents.Array()
	if !contents.IsArray() || len(all) == 0 {
		return gmInvalid("* GenerateContentRequest.contents: contents is not specified")
	}
	prevRole := ""
	prevCalls := 0
	for i, content := range all {
		at := fmt.Sprintf("contents[%d]", i)
		if !content.IsObject() {
			return gmInvalid(fmt.Sprintf("Invalid value at '%s': expected an object", at))
		}
		role := content.Get("role").String()
		if role == "" {
			role = "user"
		}
		if role != "user" && role != "model" {
			return gmInvalid("Please use a valid role: user, model.")
		}
		if role == prevRole {
			return gmInvalid("Please ensure that multiturn requests alternate between user and model.")
		}
		parts := content.Get("parts").Array()
		if len(parts) == 0 {
			return gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.parts: contents.parts must not be empty.", at))
		}
		calls, responses := 0, 0
		var userText []string
		for j, p := range parts {
			pat := fmt.Sprintf("%s.parts[%d]", at, j)
			kind, e := validateGeminiPart(pat, p)
			if e != nil {
				return e
			}
			switch kind {
			case "text":
				c.inputTokens += CountTokens(p.Get("text").String())
				if role == "user" && !p.Get("thought").Bool() {
					userText = append(userText, p.Get("text").String())
				}
			case "functionCall":
				calls++
				c.inputTokens += CountTokens(p.Get("functionCall.args").Raw)
			case "functionResponse":
				responses++
				c.inputTokens += CountTokens(p.Get("functionResponse.response").Raw)
			}
		}
		switch {
		case calls > 0 && role != "model":
			return gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s: function calls are only allowed in model turns.", at))
		case responses > 0 && prevCalls == 0:
			return gmInvalid("Please ensure that function response turn comes immediately after a function call turn.")
		case responses > 0 && responses != prevCalls:
			return gmInvalid("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.")
		case prevCalls > 0 && responses == 0:
			return gmInvalid("Please ensure that function call turn comes immediately before a function response turn.")
		}
		if role == "user" {
			c.lastUser = strings.Join(userText, " ")
		}
		prevRole, prevCalls = role, calls
	}
	return nil
}

// validateGeminiPart checks one part and returns its data field.
func validateGeminiPart(at string, p gjson.Result) (string, *apiError) {
	if !p.IsObject() {
		return "", gmInvalid(fmt.Sprintf("Invalid value at '%s': expected an object", at))
	}
	if e := unknownKey(p, geminiPartKeys, unknownName(at)); e != nil {
		return "", e
	}
	var kinds []string
	for _, f := range geminiDataFields {
		if p.Get(f).Exists() {
			kinds = append(kinds, f)
		}
	}
	if len(kinds) != 1 {
		return "", gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.data: required oneof field 'data' must have one initialized field", at))
	}
	if sig := p.Get("thoughtSignature"); sig.Exists() && !validBase64(sig.String()) {
		return "", gmInvalid(fmt.Sprintf("Invalid value at '%s.thought_signature' (TYPE_BYTES), Base64 decoding failed for %q", at, sig.String()))
	}
	switch kinds[0] {
	case "text":
		if p.Get("text").Type != gjson.String {
			return "", gmInvalid(fmt.Sprintf("Invalid value at '%s.text' (TYPE_STRING)", at))
		}
		if p.Get("text").String() == "" {
			return "", gmInvalid("Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again.")
		}
	case "inlineData":
		if p.Get("inlineData.mimeType").String() == "" || !validBase64(p.Get("inlineData.data").String()) {
			return "", gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.inline_data: mime_type and base64 data are required", at))
		}
	case "fileData":
		if p.Get("fileData.fileUri").String() == "" || p.Get("fileData.mimeType").String() == "" {
			return "", gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.file_data: file_uri and mime_type are required", at))
		}
	case "functionCall":
		if p.Get("functionCall.name").String() == "" {
			return "", gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.function_call.name: Name cannot be empty.", at))
		}
		if a := p.Get("functionCall.args"); a.Exists() && !a.IsObject() {
			return "", gmInvalid(fmt.Sprintf("Invalid value at '%s.function_call.args' (type.googleapis.com/google.protobuf.Struct)", at))
		}
	case "functionResponse":
		if p.Get("functionResponse.name").String() == "" {
			return "", gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.function_response.name: Name cannot be empty.", at))
		}
		if !p.Get("functionResponse.response").IsObject() {
			return "", gmInvalid(fmt.Sprintf("Invalid value at '%s.function_response.response' (type.googleapis.com/google.protobuf.Struct)", at))
		}
	}
	return kinds[0], nil
}

// validBase64 accepts the standard and URL-safe alphabets, as the API's
// JSON decoding of bytes fields does.
func validBase64(s string) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if _, err := enc.DecodeString(s); err == nil {
			return true
		}
	}
	return false
}

// validateGeminiTools checks tools and returns the declared function names.
func validateGeminiTools(tools gjson.Result) ([]string, *apiError) {
	if tools.Exists() && !tools.IsArray() {
		return nil, gmInvalid("Invalid value at 'tools': expected a list")
	}
	var names []string
	for i, t := range tools.Array() {
		at := fmt.Sprintf("tools[%d]", i)
		if e := unknownKey(t, geminiToolKeys, unknownName(at)); e != nil {
			return nil, e
		}
		for j, d := range t.Get("functionDeclarations").Array() {
			dat := fmt.Sprintf("%s.function_declarations[%d]", at, j)
			if e := unknownKey(d, geminiDeclKeys, unknownName(dat)); e != nil {
				return nil, e
			}
			name := d.Get("name").String()
			if name == "" {
				return nil, gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.name: Name cannot be empty.", dat))
			}
			names = append(names, name)
			if p := d.Get("parameters"); p.Exists() {
				if e := validateGeminiSchema(dat+".parameters", p); e != nil {
					return nil, e
				}
			}
		}
	}
	return names, nil
}

// geminiTypes are the Schema type names; the API reads enum names case-
// insensitively.
var geminiTypes = []string{"TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}

// validateGeminiSchema applies the API's Schema rules: only the subset's
// keywords (so $ref, $defs, additionalProperties, const are rejected),
// known types, non-empty OBJECT properties, items on ARRAY, enums on
// STRING only.
func validateGeminiSchema(at string, s gjson.Result) *apiError {
	if !s.IsObject() {
		return gmInvalid(fmt.Sprintf("Invalid value at '%s': expected an object", at))
	}
	if e := unknownKey(s, geminiSchemaKeys, unknownName(at)); e != nil {
		return e
	}
	typ := strings.ToUpper(s.Get("type").String())
	if t := s.Get("type"); t.Exists() && !slices.Contains(geminiTypes, typ) {
		return gmInvalid(fmt.Sprintf("Invalid value at '%s.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), %s", at, t.Raw))
	}
	props := s.Get("properties")
	switch {
	case props.Exists() && typ != "OBJECT":
		return gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.properties: only allowed for OBJECT type", at))
	case props.Exists() && len(props.Map()) == 0:
		return gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.properties: should be non-empty for OBJECT type", at))
	case typ == "ARRAY" && !s.Get("items").Exists():
		return gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.items: missing field.", at))
	case s.Get("enum").Exists() && typ != "STRING":
		return gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.enum: only allowed for STRING type", at))
	}
	for _, r := range s.Get("required").Array() {
		if !props.Get(gjson.Escape(r.String())).Exists() {
			return gmInvalid(fmt.Sprintf("* GenerateContentRequest.%s.required[%s]: property is not defined", at, r.String()))
		}
	}
	var err *apiError
	props.ForEach(func(k, v gjson.Result) bool {
		err = validateGeminiSchema(at+".properties["+k.String()+"].value", v)
		return err == nil
	})
	if err != nil {
		return err
	}
	if it := s.Get("items"); it.Exists() {
		if e := validateGeminiSchema(at+".items", it); e != nil {
			return e
		}
	}
	for i, a := range s.Get("anyOf").Array() {
		if e := validateGeminiSchema(fmt.Sprintf("%s.any_of[%d]", at, i), a); e != nil {
			return e
		}
	}
	return nil
}

func (g *geminiAPI) generationConfig(gc gjson.Result, c *call) *apiError {
	if !gc.Exists() {
		return nil
	}
	if e := unknownKey(gc, geminiGenConfigKeys, unknownName("generation_config")); e != nil {
		return e
	}
	if mt := gc.Get("maxOutputTokens"); mt.Exists() {
		if mt.Int() < 1 {
			return gmInvalid("* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens must be positive.")
		}
		c.maxTokens = int(mt.Int())
	}
	if n := gc.Get("candidateCount"); n.Exists() {
		if n.Int() < 1 || n.Int() > 8 {
			return gmInvalid("* GenerateContentRequest.generation_config.candidate_count: must be in the range [1, 8].")
		}
		c.choices = int(n.Int())
	}
	if s := gc.Get("responseSchema"); s.Exists() {
		if e := validateGeminiSchema("generation_config.response_schema", s); e != nil {
			return e
		}
	}
	if len(gc.Get("stopSequences").Array()) > 5 {
		return gmInvalid("* GenerateContentRequest.generation_config.stop_sequences: the number of stop sequences must not exceed 5.")
	}
	return nil
}

func (*geminiAPI) canonicalError(status int) *apiError {
	switch status {
	case http.StatusBadRequest:
		return gmInvalid("Request contains an invalid argument.")
	case http.StatusUnauthorized:
		return geminiErr(status, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
	case http.StatusForbidden:
		return geminiErr(status, "PERMISSION_DENIED", "The caller does not have permission")
	case http.StatusNotFound:
		return geminiErr(status, "NOT_FOUND", "Requested entity was not found.")
	case http.StatusRequestEntityTooLarge:
		return geminiErr(status, "INVALID_ARGUMENT", "Request payload size exceeds the limit: 20971520 bytes.")
	case http.StatusTooManyRequests:
		return geminiErr(status, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
	case http.StatusInternalServerError:
		return geminiErr(status, "INTERNAL", "An internal error has occurred. Please retry or report it.")
	case http.StatusServiceUnavailable:
		return geminiErr(status, "UNAVAILABLE", "The model is overloaded. Please try again later.")
	case http.StatusGatewayTimeout:
		return geminiErr(status, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")
	}
	if status >= 500 {
		return geminiErr(status, "INTERNAL", http.StatusText(status))
	}
	return geminiErr(status, "FAILED_PRECONDITION", http.StatusText(status))
}

func (*geminiAPI) notFound(_, path string) *apiError {
	return geminiErr(http.StatusNotFound, "NOT_FOUND", "The requested URL "+path+" was not found on this server.")
}

func (*geminiAPI) badMethod(method, _ string) *apiError {
	return geminiErr(http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "Method "+method+" is not allowed.")
}

func (*geminiAPI) contextExceeded(tokens, window int) *apiError {
	return gmInvalid(fmt.Sprintf("The input token count (%d) exceeds the maximum number of tokens allowed (%d).", tokens, window))
}

func (g *geminiAPI) modelNotFound(string) *apiError {
	if g.route.vertex {
		return geminiErr(http.StatusNotFound, "NOT_FOUND", "Publisher Model `"+g.route.resource+"` was not found or your project does not have access to it.")
	}
	return geminiErr(http.StatusNotFound, "NOT_FOUND", g.route.resource+" is not found for API version "+g.route.version+", or is not supported for generateContent.")
}

func (*geminiAPI) errorBody(e *apiError) []byte {
	type info struct {
		Type   string `json:"@type"`
		Reason string `json:"reason"`
		Domain string `json:"domain"`
	}
	type body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []info `json:"details,omitempty"`
	}
	b := body{Code: e.Status, Message: e.Message, Status: e.Type}
	if e.Code != "" {
		b.Details = []info{{"type.googleapis.com/google.rpc.ErrorInfo", e.Code, "googleapis.com"}}
	}
	return mustJSON(struct {
		Error body `json:"error"`
	}{b})
}

// Wire types of the responses, in the field order Gemini sends.
type (
	gmResponse struct {
		Candidates     []gmCandidate `json:"candidates,omitempty"`
		PromptFeedback *gmFeedback   `json:"promptFeedback,omitempty"`
		UsageMetadata  gmUsage       `json:"usageMetadata"`
		ModelVersion   string        `json:"modelVersion"`
		ResponseID     string        `json:"responseId"`
	}
	gmCandidate struct {
		Content      *gmContent `json:"content,omitempty"`
		FinishReason string     `json:"finishReason,omitempty"`
		Index        int        `json:"index"`
	}
	gmContent struct {
		Parts []gmPart `json:"parts"`
		Role  string   `json:"role"`
	}
	gmPart struct {
		Text         string          `json:"text,omitempty"`
		FunctionCall *gmFunctionCall `json:"functionCall,omitempty"`
	}
	gmFunctionCall struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	}
	gmFeedback struct {
		BlockReason string `json:"blockReason"`
	}
	gmUsage struct {
		PromptTokenCount        int             `json:"promptTokenCount"`
		CandidatesTokenCount    int             `json:"candidatesTokenCount,omitempty"`
		TotalTokenCount         int             `json:"totalTokenCount"`
		CachedContentTokenCount int             `json:"cachedContentTokenCount,omitempty"`
		ThoughtsTokenCount      int             `json:"thoughtsTokenCount,omitempty"`
		PromptTokensDetails     []gmModalityCnt `json:"promptTokensDetails"`
	}
	gmModalityCnt struct {
		Modality   string `json:"modality"`
		TokenCount int    `json:"tokenCount"`
	}
	gmError struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
)

// usage renders u; final is false for the prompt-only usage of a stream's
// earlier events.
func geminiUsage(u Usage, final bool) gmUsage {
	prompt := u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens
	g := gmUsage{PromptTokenCount: prompt, TotalTokenCount: prompt, PromptTokensDetails: []gmModalityCnt{{"TEXT", prompt}}}
	if final {
		g.CandidatesTokenCount = u.OutputTokens
		g.ThoughtsTokenCount = u.ReasoningTokens
		g.CachedContentTokenCount = u.CacheReadTokens
		g.TotalTokenCount += u.OutputTokens + u.ReasoningTokens
	}
	return g
}

func (g *geminiAPI) finish(out outcome) string {
	if g.finishReason != "" {
		return g.finishReason
	}
	if out.stop == stopLength {
		return "MAX_TOKENS"
	}
	return "STOP"
}

// parts renders the reply; a scripted finish reason (a safety stop)
// withholds the content, as the API does.
func (g *geminiAPI) parts(out outcome) []gmPart {
	if g.finishReason != "" {
		return nil
	}
	var ps []gmPart
	if out.text != "" || len(out.toolCalls) == 0 {
		ps = append(ps, gmPart{Text: out.text})
	}
	for _, tc := range out.toolCalls {
		ps = append(ps, gmPart{FunctionCall: &gmFunctionCall{Name: tc.name, Args: toolInput(tc.args)}})
	}
	return ps
}

func (g *geminiAPI) candidates(c *call, parts []gmPart, finish string) []gmCandidate {
	cands := make([]gmCandidate, c.choices)
	for i := range cands {
		cands[i] = gmCandidate{FinishReason: finish, Index: i}
		if parts != nil {
			cands[i].Content = &gmContent{Parts: parts, Role: "model"}
		}
	}
	return cands
}

func (g *geminiAPI) response(c *call, out outcome) gmResponse {
	r := gmResponse{UsageMetadata: geminiUsage(out.usage, true), ModelVersion: c.model, ResponseID: out.id}
	if g.block != "" {
		r.PromptFeedback = &gmFeedback{BlockReason: g.block}
		r.UsageMetadata = geminiUsage(out.usage, false)
		return r
	}
	r.Candidates = g.candidates(c, g.parts(out), g.finish(out))
	return r
}

func (g *geminiAPI) body(c *call, out outcome) []byte {
	if g.route.stream {
		// streamGenerateContent without alt=sse answers one JSON array
		// of the stream's responses.
		var items []json.RawMessage
		for _, ev := range g.streamEvents(c, out) {
			items = append(items, ev.data)
		}
		return mustJSON(items)
	}
	return mustJSON(g.response(c, out))
}

// streamEvents sends the text a few words per event, each function call
// whole in its own event, and the finish reason with the final usage in
// the last one.
func (g *geminiAPI) streamEvents(c *call, out outcome) []sseEvent {
	var events []sseEvent
	add := func(r gmResponse) { events = append(events, sseEvent{data: mustJSON(r)}) }
	if g.block != "" {
		add(g.response(c, out))
		return events
	}
	head := func() gmResponse {
		return gmResponse{UsageMetadata: geminiUsage(out.usage, false), ModelVersion: c.model, ResponseID: out.id}
	}
	var chunks [][]gmPart
	for _, p := range g.parts(out) {
		if p.FunctionCall != nil {
			chunks = append(chunks, []gmPart{p})
			continue
		}
		words := splitWords(p.Text)
		for j := 0; j < len(words); j += 2 {
			chunks = append(chunks, []gmPart{{Text: strings.Join(words[j:min(j+2, len(words))], "")}})
		}
	}
	for i, parts := range chunks {
		r := head()
		finish := ""
		if i == len(chunks)-1 {
			finish, r.UsageMetadata = g.finish(out), geminiUsage(out.usage, true)
		}
		r.Candidates = g.candidates(c, parts, finish)
		add(r)
		if i == 0 && g.streamError != 0 {
			e := g.canonicalError(g.streamError)
			var ge gmError
			ge.Error.Code, ge.Error.Message, ge.Error.Status = e.Status, e.Message, e.Type
			events = append(events, sseEvent{data: mustJSON(ge)})
			return events
		}
	}
	if len(chunks) == 0 {
		// A withheld candidate: only its finish reason and usage.
		r := head()
		r.UsageMetadata = geminiUsage(out.usage, true)
		r.Candidates = g.candidates(c, nil, g.finish(out))
		add(r)
	}
	return events
}
