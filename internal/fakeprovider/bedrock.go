package fakeprovider

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/tidwall/gjson"
)

// HeaderStreamException makes a streamed Bedrock reply end with an
// exception message of this type (for example throttlingException or
// modelStreamErrorException) in place of messageStop and metadata, after
// the content: Bedrock's way of failing mid-stream.
const HeaderStreamException = "X-Fake-Stream-Exception"

// bedrockAPI fakes the Bedrock Runtime Converse API. With WithAPIKey, the
// key is the secret access key requests must be signed with (SigV4, any
// access key id). The registered zero value only routes; forHTTPRequest
// returns a copy bound to one request, since the model is in the path and
// the signature covers the whole request.
type bedrockAPI struct {
	req *http.Request
	// key is the secret access key, kept by authenticate for parse, which
	// sees the body the signature covers.
	key string
}

// httpRouted is implemented by providers that need the whole HTTP request,
// not only its headers and body: ServeHTTP binds them to the request before
// authenticating and parsing.
type httpRouted interface {
	forHTTPRequest(r *http.Request) provider
}

// streamContentTyper is implemented by providers whose streams are not SSE.
type streamContentTyper interface {
	streamContentType() string
}

// errorHeaderSetter is implemented by providers that describe errors in
// response headers as well as in the body.
type errorHeaderSetter interface {
	setErrorHeaders(h http.Header, e *apiError)
}

var (
	_ provider           = (*bedrockAPI)(nil)
	_ httpRouted         = (*bedrockAPI)(nil)
	_ streamContentTyper = (*bedrockAPI)(nil)
	_ errorHeaderSetter  = (*bedrockAPI)(nil)
)

func (*bedrockAPI) forHTTPRequest(r *http.Request) provider { return &bedrockAPI{req: r} }

func (*bedrockAPI) streamContentType() string { return "application/vnd.amazon.eventstream" }

var (
	bedrockToolName        = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	bedrockDocumentName    = regexp.MustCompile(`^[a-zA-Z0-9\s\-()\[\]]+$`)
	bedrockImageFormats    = []string{"png", "jpeg", "gif", "webp"}
	bedrockDocumentFormats = []string{"pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"}
)

// Accepted keys of the request shapes the fake validates; Converse rejects
// others.
var (
	bedrockTopLevel = []string{"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
		"additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
		"requestMetadata", "performanceConfig", "serviceTier"}
	bedrockInference = []string{"maxTokens", "temperature", "topP", "stopSequences"}
	bedrockBlocks    = []string{"text", "image", "document", "video", "toolUse", "toolResult",
		"guardContent", "cachePoint", "reasoningContent", "citationsContent", "searchResult"}
)

// bedrockModelPath splits /model/{modelId}/converse[-stream].
func bedrockModelPath(path string) (model string, stream, ok bool) {
	rest, ok := strings.CutPrefix(path, "/model/")
	if !ok {
		return "", false, false
	}
	if m, ok := strings.CutSuffix(rest, "/converse-stream"); ok && m != "" {
		return m, true, true
	}
	if m, ok := strings.CutSuffix(rest, "/converse"); ok && m != "" {
		return m, false, true
	}
	return "", false, false
}

func (*bedrockAPI) handles(path string) bool {
	_, _, ok := bedrockModelPath(path)
	return ok
}

func (*bedrockAPI) idPrefix() string     { return "msg_" }
func (*bedrockAPI) toolIDPrefix() string { return "tooluse_" }

func (*bedrockAPI) setResponseHeaders(h http.Header, requestID string) {
	h.Set("X-Amzn-Requestid", requestID)
}

// setErrorHeaders names the error type the way AWS does; SDKs read it from
// this header, not from the body.
func (*bedrockAPI) setErrorHeaders(h http.Header, e *apiError) {
	h.Set("X-Amzn-Errortype", e.Type+":http://internal.amazon.com/coral/com.amazon.bedrock/")
}

func bedrockErr(status int, typ, msg string) *apiError {
	return &apiError{Status: status, Type: typ, Message: msg}
}

func brInvalid(msg string) *apiError {
	return bedrockErr(http.StatusBadRequest, "ValidationException", msg)
}

// authenticate checks that a signature is present when one is required;
// parse verifies it.
func (b *bedrockAPI) authenticate(h http.Header, key string) *apiError {
	b.key = key
	if key == "" {
		return nil
	}
	if !strings.HasPrefix(h.Get("Authorization"), "AWS4-HMAC-SHA256 ") || h.Get("X-Amz-Date") == "" {
		return bedrockErr(http.StatusForbidden, "UnrecognizedClientException", "Missing Authentication Token")
	}
	return nil
}

// verifySigV4 recomputes the request's signature with the SDK's signer over
// the headers the client says it signed.
func verifySigV4(r *http.Request, body []byte, secret string) *apiError {
	denied := bedrockErr(http.StatusForbidden, "InvalidSignatureException",
		"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	auth := r.Header.Get("Authorization")
	var keyID, scope, signed string
	for _, part := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			keyID, scope, _ = strings.Cut(v, "/")
		case "SignedHeaders":
			signed = v
		}
	}
	// scope is date/region/service/aws4_request.
	fields := strings.Split(scope, "/")
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if keyID == "" || len(fields) != 4 || fields[2] != "bedrock" || err != nil || !strings.Contains(signed, "host") {
		return denied
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return brInvalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	check, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return denied
	}
	for _, name := range strings.Split(signed, ";") {
		switch name {
		case "host":
		case "content-length":
			check.ContentLength = int64(len(body))
		default:
			if v, ok := r.Header[http.CanonicalHeaderKey(name)]; ok {
				check.Header[http.CanonicalHeaderKey(name)] = v
			}
		}
	}
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, check, payloadHash, fields[2], fields[1], at); err != nil {
		return denied
	}
	if check.Header.Get("Authorization") != auth {
		return denied
	}
	return nil
}

// parse verifies the signature and validates a Converse body as the real
// API would. The model and the stream flag come from the path.
func (b *bedrockAPI) parse(_ http.Header, body []byte) (*call, *apiError) {
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
	if e := onlyKeys(root, "", bedrockTopLevel); e != nil {
		return nil, e
	}
	c := &call{choices: 1}
	c.model, c.stream, _ = bedrockModelPath(b.req.URL.Path)
	if e := validateBedrockInference(root.Get("inferenceConfig"), c); e != nil {
		return nil, e
	}
	sys := root.Get("system")
	if sys.Exists() && !sys.IsArray() {
		return nil, brInvalid("system: expected a list")
	}
	for i, b := range sys.Array() {
		at := fmt.Sprintf("system.%d", i)
		if e := oneMember(b, at, []string{"text", "cachePoint", "guardContent"}); e != nil {
			return nil, e
		}
		if t := b.Get("text"); t.Exists() {
			if t.Type != gjson.String || strings.TrimSpace(t.Str) == "" {
				return nil, brInvalid("The text field in the SystemContentBlock object at " + at + " is blank. Add text to the text field, and try again.")
			}
			c.inputTokens += CountTokens(t.Str)
		}
	}
	usesTools, e := validateBedrockMessages(root.Get("messages"), c)
	if e != nil {
		return nil, e
	}
	tc := root.Get("toolConfig")
	if usesTools && !tc.Exists() {
		return nil, brInvalid("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
	}
	if tc.Exists() {
		if e := validateBedrockTools(tc, c); e != nil {
			return nil, e
		}
	}
	return c, nil
}

// onlyKeys rejects keys of obj outside allowed, as Converse's strict
// decoder does.
func onlyKeys(obj gjson.Result, at string, allowed []string) *apiError {
	var e *apiError
	obj.ForEach(func(k, _ gjson.Result) bool {
		if !slices.Contains(allowed, k.Str) {
			e = brInvalid(fmt.Sprintf("Malformed input request: extraneous key [%s] is not permitted%s", k.Str, atSuffix(at)))
		}
		return e == nil
	})
	return e
}

func atSuffix(at string) string {
	if at == "" {
		return ""
	}
	return " at " + at
}

// oneMember checks that a union value is an object with exactly one of
// members set.
func oneMember(v gjson.Result, at string, members []string) *apiError {
	if !v.IsObject() {
		return brInvalid(at + ": expected an object")
	}
	n := 0
	var e *apiError
	v.ForEach(func(k, _ gjson.Result) bool {
		if !slices.Contains(members, k.Str) {
			e = brInvalid(fmt.Sprintf("Malformed input request: extraneous key [%s] is not permitted at %s", k.Str, at))
			return false
		}
		n++
		return true
	})
	if e == nil && n != 1 {
		e = brInvalid(at + ": exactly one member of the union must be set")
	}
	return e
}

func validateBedrockInference(ic gjson.Result, c *call) *apiError {
	if !ic.Exists() {
		return nil
	}
	if !ic.IsObject() {
		return brInvalid("inferenceConfig: expected an object")
	}
	if e := onlyKeys(ic, "inferenceConfig", bedrockInference); e != nil {
		return e
	}
	if mt := ic.Get("maxTokens"); mt.Exists() {
		if mt.Type != gjson.Number || mt.Num != float64(int64(mt.Num)) || mt.Int() < 1 {
			return brInvalid("inferenceConfig.maxTokens: expected an integer of at least 1")
		}
		c.maxTokens = int(mt.Int())
	}
	for _, k := range []string{"temperature", "topP"} {
		if v := ic.Get(k); v.Exists() && (v.Type != gjson.Number || v.Num < 0 || v.Num > 1) {
			return brInvalid("inferenceConfig." + k + ": expected a number from 0 to 1")
		}
	}
	if s := ic.Get("stopSequences"); s.Exists() {
		if !s.IsArray() {
			return brInvalid("inferenceConfig.stopSequences: expected a list")
		}
		for _, v := range s.Array() {
			if v.Type != gjson.String || v.Str == "" {
				return brInvalid("inferenceConfig.stopSequences: stop sequences must be non-empty strings")
			}
		}
	}
	return nil
}

// validateBedrockMessages applies Converse's conversation rules and counts
// the input. It reports whether any toolUse or toolResult block appears.
func validateBedrockMessages(msgs gjson.Result, c *call) (bool, *apiError) {
	if !msgs.IsArray() || len(msgs.Array()) == 0 {
		return false, brInvalid("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
	}
	usesTools := false
	// prevUses holds the toolUse ids of the previous assistant turn.
	var prevUses []string
	prevRole := ""
	for i, m := range msgs.Array() {
		at := fmt.Sprintf("messages.%d", i)
		if !m.IsObject() {
			return false, brInvalid(at + ": expected an object")
		}
		if e := onlyKeys(m, at, []string{"role", "content"}); e != nil {
			return false, e
		}
		role := m.Get("role").Str
		switch {
		case role != "user" && role != "assistant":
			return false, brInvalid(at + ".role: expected user or assistant")
		case i == 0 && role != "user":
			return false, brInvalid("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
		case role == prevRole:
			return false, brInvalid("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.")
		}
		content := m.Get("content")
		if !content.IsArray() || len(content.Array()) == 0 {
			return false, brInvalid("The content field in the Message object at " + at + " is empty. Add a ContentBlock object to the content field and try again.")
		}
		var uses, results, texts []string
		for j, b := range content.Array() {
			bat := fmt.Sprintf("%s.content.%d", at, j)
			if e := oneMember(b, bat, bedrockBlocks); e != nil {
				return false, e
			}
			text, e := validateBedrockBlock(b, bat, role)
			if e != nil {
				return false, e
			}
			c.inputTokens += CountTokens(text)
			switch {
			case b.Get("toolUse").Exists():
				usesTools = true
				uses = append(uses, b.Get("toolUse.toolUseId").Str)
			case b.Get("toolResult").Exists():
				usesTools = true
				id := b.Get("toolResult.toolUseId").Str
				if !slices.Contains(prevUses, id) {
					return false, brInvalid(fmt.Sprintf("The toolResult block at %s references toolUseId %s, which is not in the previous assistant turn.", bat, id))
				}
				results = append(results, id)
			case b.Get("text").Exists():
				texts = append(texts, text)
			}
		}
		if role == "user" {
			var missing []string
			for _, id := range prevUses {
				if !slices.Contains(results, id) {
					missing = append(missing, id)
				}
			}
			if len(missing) > 0 {
				return false, brInvalid(fmt.Sprintf("Expected toolResult blocks at %s.content for the following Ids: %s", at, strings.Join(missing, ", ")))
			}
			c.lastUser = strings.Join(texts, " ")
		}
		prevUses, prevRole = uses, role
	}
	if prevRole != "user" && len(prevUses) > 0 {
		return false, brInvalid("The conversation ends with toolUse blocks that have no toolResult.")
	}
	return usesTools, nil
}

// validateBedrockBlock checks one content block and returns the text it
// contributes to the input.
func validateBedrockBlock(b gjson.Result, at, role string) (string, *apiError) {
	switch {
	case b.Get("text").Exists():
		t := b.Get("text")
		if t.Type != gjson.String || strings.TrimSpace(t.Str) == "" {
			return "", brInvalid("The text field in the ContentBlock object at " + at + " is blank. Add text to the text field, and try again.")
		}
		return t.Str, nil
	case b.Get("image").Exists():
		img := b.Get("image")
		if !slices.Contains(bedrockImageFormats, img.Get("format").Str) {
			return "", brInvalid(at + ".image.format: expected one of png, jpeg, gif, webp")
		}
		if e := validBytes(img.Get("source"), at+".image.source"); e != nil {
			return "", e
		}
	case b.Get("document").Exists():
		doc := b.Get("document")
		if !slices.Contains(bedrockDocumentFormats, doc.Get("format").Str) {
			return "", brInvalid(at + ".document.format: unsupported format")
		}
		if !bedrockDocumentName.MatchString(doc.Get("name").Str) {
			return "", brInvalid(at + ".document.name: names may contain only alphanumeric characters, whitespace, hyphens, parentheses and square brackets")
		}
		if e := validBytes(doc.Get("source"), at+".document.source"); e != nil {
			return "", e
		}
	case b.Get("toolUse").Exists():
		tu := b.Get("toolUse")
		if role != "assistant" {
			return "", brInvalid("toolUse blocks are allowed only in assistant messages (" + at + ").")
		}
		if tu.Get("toolUseId").Str == "" || !bedrockToolName.MatchString(tu.Get("name").Str) || !tu.Get("input").Exists() {
			return "", brInvalid(at + ".toolUse: toolUseId, a valid name and input are required")
		}
		return tu.Get("input").Raw, nil
	case b.Get("toolResult").Exists():
		tr := b.Get("toolResult")
		if role != "user" {
			return "", brInvalid("toolResult blocks are allowed only in user messages (" + at + ").")
		}
		if tr.Get("toolUseId").Str == "" || !tr.Get("content").IsArray() {
			return "", brInvalid(at + ".toolResult: toolUseId and content are required")
		}
		if s := tr.Get("status"); s.Exists() && s.Str != "success" && s.Str != "error" {
			return "", brInvalid(at + ".toolResult.status: expected success or error")
		}
		var parts []string
		for k, rc := range tr.Get("content").Array() {
			rat := fmt.Sprintf("%s.toolResult.content.%d", at, k)
			if e := oneMember(rc, rat, []string{"text", "json", "image", "document", "video", "searchResult"}); e != nil {
				return "", e
			}
			if t := rc.Get("text"); t.Exists() {
				if t.Type != gjson.String || strings.TrimSpace(t.Str) == "" {
					return "", brInvalid("The text field in the ToolResultContentBlock object at " + rat + " is blank. Add text to the text field, and try again.")
				}
				parts = append(parts, t.Str)
			}
			if j := rc.Get("json"); j.Exists() {
				parts = append(parts, j.Raw)
			}
		}
		return strings.Join(parts, " "), nil
	case b.Get("cachePoint").Exists():
		if b.Get("cachePoint.type").Str != "default" {
			return "", brInvalid(at + ".cachePoint.type: expected default")
		}
	case b.Get("reasoningContent").Exists():
		return b.Get("reasoningContent.reasoningText.text").Str, nil
	}
	return "", nil
}

// validBytes checks a {bytes: base64} source.
func validBytes(src gjson.Result, at string) *apiError {
	if e := oneMember(src, at, []string{"bytes", "s3Location", "text", "content"}); e != nil {
		return e
	}
	if b := src.Get("bytes"); b.Exists() {
		if _, err := base64.StdEncoding.DecodeString(b.Str); err != nil || b.Str == "" {
			return brInvalid(at + ".bytes: invalid base64")
		}
	}
	return nil
}

func validateBedrockTools(tc gjson.Result, c *call) *apiError {
	if e := onlyKeys(tc, "toolConfig", []string{"tools", "toolChoice"}); e != nil {
		return e
	}
	tools := tc.Get("tools")
	if !tools.IsArray() || len(tools.Array()) == 0 {
		return brInvalid("toolConfig.tools: at least one tool is required")
	}
	var names []string
	for i, t := range tools.Array() {
		at := fmt.Sprintf("toolConfig.tools.%d", i)
		if e := oneMember(t, at, []string{"toolSpec", "cachePoint", "systemTool"}); e != nil {
			return e
		}
		spec := t.Get("toolSpec")
		if !spec.Exists() {
			continue
		}
		if e := onlyKeys(spec, at+".toolSpec", []string{"name", "description", "inputSchema", "strict"}); e != nil {
			return e
		}
		name := spec.Get("name").Str
		if !bedrockToolName.MatchString(name) {
			return brInvalid(fmt.Sprintf("The value at %s.toolSpec.name failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+ and have length between 1 and 64", at))
		}
		if d := spec.Get("description"); d.Exists() && (d.Type != gjson.String || d.Str == "") {
			return brInvalid(at + ".toolSpec.description: expected a non-empty string")
		}
		if !spec.Get("inputSchema.json").IsObject() {
			return brInvalid(at + ".toolSpec.inputSchema.json: expected a JSON schema object")
		}
		if slices.Contains(names, name) {
			return brInvalid("The toolConfig field contains duplicate tool names: " + name)
		}
		names = append(names, name)
	}
	choice := tc.Get("toolChoice")
	if !choice.Exists() {
		return nil
	}
	if e := oneMember(choice, "toolConfig.toolChoice", []string{"auto", "any", "tool"}); e != nil {
		return e
	}
	switch {
	case choice.Get("any").Exists():
		if len(names) > 0 {
			c.forcedTool = names[0]
		}
	case choice.Get("tool").Exists():
		name := choice.Get("tool.name").Str
		if !slices.Contains(names, name) {
			return brInvalid("toolConfig.toolChoice.tool.name: tool " + name + " is not in toolConfig.tools")
		}
		c.forcedTool = name
	}
	return nil
}

func (*bedrockAPI) canonicalError(status int) *apiError {
	switch status {
	case http.StatusBadRequest:
		return brInvalid("Malformed input request, please reformat your input and try again.")
	case http.StatusForbidden:
		return bedrockErr(status, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
	case http.StatusNotFound:
		return bedrockErr(status, "ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier.")
	case http.StatusRequestTimeout:
		return bedrockErr(status, "ModelTimeoutException", "Model has timed out in processing the request. Try your request again.")
	case http.StatusRequestEntityTooLarge:
		return brInvalid("Input is too long for requested model.")
	case http.StatusFailedDependency:
		return bedrockErr(status, "ModelErrorException", "Received a bad response from the model.")
	case http.StatusTooManyRequests:
		return bedrockErr(status, "ThrottlingException", "Too many requests, please wait before trying again.")
	case http.StatusServiceUnavailable:
		return bedrockErr(status, "ServiceUnavailableException", "Bedrock is unable to process your request.")
	}
	if status >= 500 {
		return bedrockErr(status, "InternalServerException", "The server encountered an internal error while processing the request.")
	}
	return bedrockErr(status, "ValidationException", http.StatusText(status))
}

func (*bedrockAPI) notFound(_, _ string) *apiError {
	return bedrockErr(http.StatusNotFound, "UnknownOperationException", "Unknown operation")
}

func (*bedrockAPI) badMethod(_, _ string) *apiError {
	return bedrockErr(http.StatusNotFound, "UnknownOperationException", "Unknown operation")
}

func (*bedrockAPI) contextExceeded(tokens, window int) *apiError {
	return brInvalid(fmt.Sprintf("The model returned the following errors: prompt is too long: %d tokens > %d maximum", tokens, window))
}

func (*bedrockAPI) modelNotFound(string) *apiError {
	return brInvalid("The provided model identifier is invalid.")
}

func (*bedrockAPI) errorBody(e *apiError) []byte {
	return mustJSON(struct {
		Message string `json:"message"`
	}{e.Message})
}

// Wire types of the responses, in the field order Bedrock sends.
type (
	brResponse struct {
		Output     brOutput  `json:"output"`
		StopReason string    `json:"stopReason"`
		Usage      brUsage   `json:"usage"`
		Metrics    brMetrics `json:"metrics"`
	}
	brOutput struct {
		Message brMessage `json:"message"`
	}
	brMessage struct {
		Role    string    `json:"role"`
		Content []brBlock `json:"content"`
	}
	brBlock struct {
		Text    *string    `json:"text,omitempty"`
		ToolUse *brToolUse `json:"toolUse,omitempty"`
	}
	brToolUse struct {
		ToolUseID string          `json:"toolUseId"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input,omitempty"`
	}
	brUsage struct {
		InputTokens           int `json:"inputTokens"`
		OutputTokens          int `json:"outputTokens"`
		TotalTokens           int `json:"totalTokens"`
		CacheReadInputTokens  int `json:"cacheReadInputTokens,omitempty"`
		CacheWriteInputTokens int `json:"cacheWriteInputTokens,omitempty"`
	}
	brMetrics struct {
		LatencyMs int `json:"latencyMs"`
	}
	brDelta struct {
		Text    *string         `json:"text,omitempty"`
		ToolUse *brToolUseDelta `json:"toolUse,omitempty"`
	}
	brToolUseDelta struct {
		Input string `json:"input"`
	}
	brBlockEvent struct {
		ContentBlockIndex int      `json:"contentBlockIndex"`
		Start             any      `json:"start,omitempty"`
		Delta             *brDelta `json:"delta,omitempty"`
	}
)

// fakeLatencyMs is the latency every reply reports.
const fakeLatencyMs = 42

func bedrockStop(out outcome) string {
	switch out.stop {
	case stopLength:
		return "max_tokens"
	case stopToolUse:
		return "tool_use"
	}
	return "end_turn"
}

// bedrockUsage reports usage as Converse does: inputTokens excludes cache
// reads and writes.
func bedrockUsage(u Usage) brUsage {
	out := u.OutputTokens + u.ReasoningTokens
	return brUsage{
		InputTokens: u.InputTokens, OutputTokens: out,
		TotalTokens:          u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens + out,
		CacheReadInputTokens: u.CacheReadTokens, CacheWriteInputTokens: u.CacheWriteTokens,
	}
}

func (*bedrockAPI) body(_ *call, out outcome) []byte {
	var blocks []brBlock
	if out.text != "" || len(out.toolCalls) == 0 {
		blocks = append(blocks, brBlock{Text: &out.text})
	}
	for _, tc := range out.toolCalls {
		blocks = append(blocks, brBlock{ToolUse: &brToolUse{ToolUseID: tc.id, Name: tc.name, Input: toolInput(tc.args)}})
	}
	return mustJSON(brResponse{
		Output:     brOutput{Message: brMessage{Role: "assistant", Content: blocks}},
		StopReason: bedrockStop(out), Usage: bedrockUsage(out.usage), Metrics: brMetrics{LatencyMs: fakeLatencyMs},
	})
}

// converseEvents renders the reply as Converse stream events: the name is
// the :event-type and the data the JSON payload.
func converseEvents(out outcome) []sseEvent {
	var events []sseEvent
	add := func(name string, v any) { events = append(events, sseEvent{name: name, data: mustJSON(v)}) }
	add("messageStart", map[string]string{"role": "assistant"})
	i := 0
	if out.text != "" || len(out.toolCalls) == 0 {
		for _, piece := range splitWords(out.text) {
			add("contentBlockDelta", brBlockEvent{ContentBlockIndex: i, Delta: &brDelta{Text: &piece}})
		}
		add("contentBlockStop", brBlockEvent{ContentBlockIndex: i})
		i++
	}
	for _, tc := range out.toolCalls {
		add("contentBlockStart", brBlockEvent{ContentBlockIndex: i, Start: map[string]any{
			"toolUse": brToolUse{ToolUseID: tc.id, Name: tc.name},
		}})
		for _, piece := range splitRunes(string(toolInput(tc.args)), 8) {
			add("contentBlockDelta", brBlockEvent{ContentBlockIndex: i, Delta: &brDelta{ToolUse: &brToolUseDelta{Input: piece}}})
		}
		add("contentBlockStop", brBlockEvent{ContentBlockIndex: i})
		i++
	}
	add("messageStop", map[string]string{"stopReason": bedrockStop(out)})
	add("metadata", map[string]any{"usage": bedrockUsage(out.usage), "metrics": brMetrics{LatencyMs: fakeLatencyMs}})
	return events
}

// streamExceptionMessages are the messages Bedrock sends with stream
// exceptions.
var streamExceptionMessages = map[string]string{
	"throttlingException":         "Too many tokens, please wait before trying again.",
	"validationException":         "Input is too long for requested model.",
	"modelStreamErrorException":   "The model stream returned an error.",
	"internalServerException":     "The system encountered an unexpected error during processing. Try your request again.",
	"serviceUnavailableException": "Bedrock is unable to process your request.",
	"modelTimeoutException":       "Model has timed out in processing the request. Try your request again.",
}

// streamEvents renders the reply as binary event stream messages (with
// their CRCs), ending with an exception instead when the request scripts
// one (HeaderStreamException).
func (b *bedrockAPI) streamEvents(_ *call, out outcome) []sseEvent {
	events := converseEvents(out)
	exception := -1
	if exc := b.req.Header.Get(HeaderStreamException); exc != "" {
		msg, ok := streamExceptionMessages[exc]
		if !ok {
			msg = "The stream failed."
		}
		// The exception takes the place of messageStop and metadata.
		events = append(events[:len(events)-2], sseEvent{name: exc, data: mustJSON(map[string]string{"message": msg})})
		exception = len(events) - 1
	}
	enc := eventstream.NewEncoder()
	frames := make([]sseEvent, len(events))
	for i, ev := range events {
		msg := eventstream.Message{Payload: ev.data}
		if i == exception {
			msg.Headers.Set(":exception-type", eventstream.StringValue(ev.name))
			msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
			msg.Headers.Set(":message-type", eventstream.StringValue("exception"))
		} else {
			msg.Headers.Set(":event-type", eventstream.StringValue(ev.name))
			msg.Headers.Set(":content-type", eventstream.StringValue("application/json"))
			msg.Headers.Set(":message-type", eventstream.StringValue("event"))
		}
		var buf bytes.Buffer
		if err := enc.Encode(&buf, msg); err != nil {
			panic(fmt.Sprintf("fakeprovider: encode event stream message: %v", err))
		}
		frames[i] = sseEvent{raw: buf.Bytes()}
	}
	return frames
}
