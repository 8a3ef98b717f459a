package transform

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/tidwall/gjson"
)

// openAIToGeminiRequest translates chat completions requests into Gemini
// generateContent requests, for Google AI Studio or Vertex AI.
type openAIToGeminiRequest struct {
	target Target
}

var _ RequestTranslator = (*openAIToGeminiRequest)(nil)

// NewOpenAIToGeminiRequest returns the chat completions to Gemini request
// translator. A Target with a Project addresses Vertex AI:
//
//	{BasePath}/{APIVersion or v1}/projects/{Project}/locations/{Region or us-central1}/publishers/google/models/{model}:generateContent
//
// with no credential header (a credentials.Source sets authorization).
// Without a Project it addresses Google AI Studio:
//
//	{BasePath, or /{APIVersion or v1beta}}/models/{model}:generateContent
//
// with x-goog-api-key set to APIKey. Streams use :streamGenerateContent?alt=sse.
func NewOpenAIToGeminiRequest(t Target) RequestTranslator {
	return &openAIToGeminiRequest{target: t}
}

// NewOpenAIToGeminiResponse returns the translator of Gemini responses,
// streams and errors (AI Studio and Vertex AI alike) into chat
// completions.
func NewOpenAIToGeminiResponse(o ResponseOptions) ResponseTranslator {
	return &openAIToGeminiResponse{opts: o}
}

// RequestBody implements RequestTranslator.
func (t *openAIToGeminiRequest) RequestBody(body []byte) (RequestResult, error) {
	var f chatRequest
	if err := f.parse(body, &t.target, geminiUnsupported); err != nil {
		return RequestResult{}, err
	}
	model, err := modelName(&t.target, &f)
	if err != nil {
		return RequestResult{}, err
	}
	b := geminiRequestBuilder{out: make([]byte, 0, len(body)+256)}
	if err := b.build(&f); err != nil {
		return RequestResult{}, err
	}
	stream := f.stream.Type == gjson.True
	res := RequestResult{
		Path:   t.path(model, stream),
		Body:   b.out,
		Stream: stream,
		SetHeaders: []Header{
			{Key: "content-type", Value: "application/json"},
		},
		// Envoy hands each attempt the headers the previous attempt
		// left; Vertex's authorization is set by its credentials.Source
		// after translation.
		RemoveHeaders: []string{"authorization", "x-api-key", "api-key", "anthropic-version"},
	}
	if t.target.Project == "" && t.target.APIKey != "" {
		res.SetHeaders = append(res.SetHeaders, Header{Key: "x-goog-api-key", Value: t.target.APIKey})
	} else {
		res.RemoveHeaders = append(res.RemoveHeaders, "x-goog-api-key")
	}
	return res, nil
}

// defaultVertexRegion is LiteLLM's vertex_location default.
const defaultVertexRegion = "us-central1"

// vertexModelPath is the Vertex AI path of a publisher's model, up to the
// method; model comes escaped.
func vertexModelPath(tg *Target, publisher, model string) string {
	version := tg.APIVersion
	if version == "" {
		version = "v1"
	}
	region := tg.Region
	if region == "" {
		region = defaultVertexRegion
	}
	return tg.BasePath + "/" + url.PathEscape(version) +
		"/projects/" + url.PathEscape(tg.Project) +
		"/locations/" + url.PathEscape(region) +
		"/publishers/" + publisher + "/models/" + model
}

// path builds the upstream :path. Path segments taken from config are
// escaped so that a model name cannot reach another endpoint.
func (t *openAIToGeminiRequest) path(model string, stream bool) string {
	// AI Studio names models "models/x"; Vertex takes the bare name.
	model = url.PathEscape(strings.TrimPrefix(model, "models/"))
	method := ":generateContent"
	if stream {
		method = ":streamGenerateContent?alt=sse"
	}
	tg := &t.target
	if tg.Project != "" {
		return vertexModelPath(tg, "google", model) + method
	}
	base := tg.BasePath
	if base == "" {
		version := tg.APIVersion
		if version == "" {
			version = "v1beta"
		}
		base = "/" + url.PathEscape(version)
	}
	return base + "/models/" + model + method
}

// geminiUnsupported rejects parameters Gemini cannot honour (or this
// translator cannot carry back) and whose silent loss the client would
// notice. Gemini has n (candidateCount) and penalties, but its
// functionCallingConfig (mode, allowedFunctionNames) cannot limit a reply
// to one call.
func geminiUnsupported(key string, v gjson.Result) error {
	if key == "n" {
		return nil
	}
	if err := unsupportedSerialToolCalls(key, v, "gemini"); err != nil {
		return err
	}
	return unsupportedParam(key, v, "gemini")
}

// geminiRequestBuilder appends a generateContent body to out.
type geminiRequestBuilder struct {
	out []byte
	// turn is the role of the open content ("" when none); consecutive
	// parts of one role share a content so that roles alternate.
	turn  string
	turns int
	// calls maps tool call ids to function names: Gemini's
	// functionResponse names its function, OpenAI's tool message only the
	// call id.
	calls    []toolCallName
	callsBuf [8]toolCallName
	// lastCall is set while the open content ends with a functionCall.
	lastCall bool
	// sys holds the system and developer messages, written after contents.
	sys    []systemMessage
	sysBuf [4]systemMessage
}

type systemMessage struct{ index, content gjson.Result }

type toolCallName struct{ id, name string }

func (b *geminiRequestBuilder) build(f *chatRequest) error {
	if !f.messages.IsArray() {
		return invalidf("messages", "messages must be an array")
	}
	b.out = append(b.out, '{')
	if err := b.messages(f.messages); err != nil {
		return err
	}
	if err := b.system(); err != nil {
		return err
	}
	if err := b.tools(f); err != nil {
		return err
	}
	if f.safetySettings.IsArray() {
		b.out = append(b.out, `,"safetySettings":`...)
		b.out = append(b.out, f.safetySettings.Raw...)
	}
	if err := b.generationConfig(f); err != nil {
		return err
	}
	b.out = append(b.out, '}')
	return nil
}

// system writes the system and developer messages' text as
// systemInstruction. It runs after contents, so that the messages are
// scanned once.
func (b *geminiRequestBuilder) system() error {
	n := 0
	var err error
	add := func(text gjson.Result) {
		if text.Str == "" {
			return
		}
		if n == 0 {
			b.out = append(b.out, `,"systemInstruction":{"parts":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, `{"text":`...)
		b.out = append(b.out, text.Raw...)
		b.out = append(b.out, '}')
	}
	for _, m := range b.sys {
		switch {
		case m.content.Type == gjson.String:
			add(m.content)
		case m.content.IsArray():
			m.content.ForEach(func(j, part gjson.Result) bool {
				text := part.Get("text")
				if part.Get("type").Str != "text" || text.Type != gjson.String {
					err = invalidf(partParam(m.index, j), "system messages may contain only text parts")
					return false
				}
				add(text)
				return true
			})
		default:
			err = invalidf(contentParam(m.index), "content must be a string or an array of content parts")
		}
		if err != nil {
			return err
		}
	}
	if n > 0 {
		b.out = append(b.out, "]}"...)
	}
	return nil
}

// messages writes the conversation as contents: assistant turns become
// model turns, tool results user turns of functionResponse parts, and
// consecutive parts of one role share a content.
func (b *geminiRequestBuilder) messages(msgs gjson.Result) error {
	b.out = append(b.out, `"contents":[`...)
	b.calls = b.callsBuf[:0]
	b.sys = b.sysBuf[:0]
	var err error
	msgs.ForEach(func(i, v gjson.Result) bool {
		var m chatMessage
		m.read(v)
		switch role := m.role.Str; role {
		case "system", "developer":
			b.sys = append(b.sys, systemMessage{index: i, content: m.content})
		case "user":
			err = b.userContent(i, m.content)
		case "assistant":
			err = b.assistant(i, &m)
		case "tool":
			err = b.toolResult(i, &m)
		default:
			err = invalidf(fmt.Sprintf("messages[%d].role", i.Int()), "role %q is not supported for gemini models", role)
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if b.turns == 0 {
		return invalidf("messages", "messages must contain at least one user or assistant message with content")
	}
	b.out = append(b.out, "]}]"...)
	return nil
}

// part starts a part in a content of role, opening the content if the
// previous part had another role.
func (b *geminiRequestBuilder) part(role string) {
	b.lastCall = false
	if b.turn == role {
		b.out = append(b.out, ',')
		return
	}
	if b.turn != "" {
		b.out = append(b.out, "]},"...)
	}
	b.out = append(b.out, `{"role":"`...)
	b.out = append(b.out, role...)
	b.out = append(b.out, `","parts":[`...)
	b.turn = role
	b.turns++
}

// textPart writes a text part; text is a raw JSON string literal. Gemini
// rejects empty text parts, so they are skipped.
func (b *geminiRequestBuilder) textPart(role string, text gjson.Result) {
	if text.Str == "" {
		return
	}
	b.part(role)
	b.out = append(b.out, `{"text":`...)
	b.out = append(b.out, text.Raw...)
	b.out = append(b.out, '}')
}

func (b *geminiRequestBuilder) userContent(i, content gjson.Result) error {
	switch {
	case !content.Exists() || content.Type == gjson.Null:
		return nil
	case content.Type == gjson.String:
		b.textPart("user", content)
		return nil
	case content.IsArray():
		var err error
		content.ForEach(func(j, part gjson.Result) bool {
			err = b.userPart(i, j, part)
			return err == nil
		})
		return err
	}
	return invalidf(contentParam(i), "content must be a string or an array of content parts")
}

func (b *geminiRequestBuilder) userPart(i, j, v gjson.Result) error {
	var typ, text, image, audio, file gjson.Result
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			typ = v
		case "text":
			text = v
		case "image_url":
			image = v
		case "input_audio":
			audio = v
		case "file":
			file = v
		}
		return true
	})
	param := partParam(i, j)
	switch typ.Str {
	case "text":
		if text.Type != gjson.String {
			return invalidf(param, "text parts must have a string text")
		}
		b.textPart("user", text)
		return nil
	case "image_url":
		u, format := image, gjson.Result{}
		if image.IsObject() {
			u, format = image.Get("url"), image.Get("format")
		}
		if u.Type != gjson.String {
			return invalidf(param, "image_url parts must have a string url")
		}
		return b.media(u.Str, format.Str, "image/jpeg", param)
	case "input_audio":
		data, format := audio.Get("data"), audio.Get("format")
		if data.Type != gjson.String || format.Type != gjson.String || format.Str == "" {
			return invalidf(param, "input_audio parts must have string data and format")
		}
		b.part("user")
		b.out = append(b.out, `{"inlineData":{"mimeType":`...)
		b.out = appendJSONString(b.out, "audio/"+format.Str)
		b.out = append(b.out, `,"data":`...)
		b.out = append(b.out, data.Raw...)
		b.out = append(b.out, "}}"...)
		return nil
	case "file":
		if d := file.Get("file_data"); d.Type == gjson.String {
			return b.media(d.Str, file.Get("format").Str, "application/pdf", param)
		}
		if id := file.Get("file_id"); id.Type == gjson.String {
			return b.media(id.Str, file.Get("format").Str, "application/pdf", param)
		}
		return invalidf(param, "file parts must have file_data or file_id")
	}
	return invalidf(param, "content part type %q is not supported for gemini models", typ.Str)
}

// media writes a user part for a data URL (inlineData) or a URI Gemini
// fetches itself (fileData). The MIME type is the client's format, else
// the data URL's, else guessed from the extension, else def.
func (b *geminiRequestBuilder) media(u, format, def, param string) error {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, base64 := strings.CutSuffix(meta, ";base64")
		if !ok || !base64 || mediaType == "" {
			return invalidf(param, "data URLs must be base64 with a media type")
		}
		if format != "" {
			mediaType = format
		}
		b.part("user")
		b.out = append(b.out, `{"inlineData":{"mimeType":`...)
		b.out = appendJSONString(b.out, mediaType)
		b.out = append(b.out, `,"data":`...)
		b.out = appendJSONString(b.out, data)
		b.out = append(b.out, "}}"...)
		return nil
	}
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "gs://") {
		return invalidf(param, "media urls must be http(s), gs:// or base64 data URLs")
	}
	mime := format
	if mime == "" {
		mime = mimeFromExtension(u, def)
	}
	b.part("user")
	b.out = append(b.out, `{"fileData":{"mimeType":`...)
	b.out = appendJSONString(b.out, mime)
	b.out = append(b.out, `,"fileUri":`...)
	b.out = appendJSONString(b.out, u)
	b.out = append(b.out, "}}"...)
	return nil
}

// mimeFromExtension guesses a media type from a URL's file extension;
// Gemini requires one for fileData.
func mimeFromExtension(u, def string) string {
	p := u
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".webp":
		return "image/webp"
	case ".gif":
		return "image/gif"
	case ".heic":
		return "image/heic"
	case ".heif":
		return "image/heif"
	case ".pdf":
		return "application/pdf"
	case ".txt":
		return "text/plain"
	case ".mp3":
		return "audio/mp3"
	case ".wav":
		return "audio/wav"
	case ".flac":
		return "audio/flac"
	case ".mp4":
		return "video/mp4"
	case ".mov":
		return "video/mov"
	case ".webm":
		return "video/webm"
	}
	return def
}

// assistant writes an assistant message: text, then tool calls as
// functionCall parts.
func (b *geminiRequestBuilder) assistant(i gjson.Result, m *chatMessage) error {
	err := eachAssistantText(i, m.content, gjson.Result{}, func(text, _ gjson.Result) {
		b.textPart("model", text)
	})
	if err != nil {
		return err
	}
	return eachToolCall(i, m.toolCalls, b.functionCall)
}

func (b *geminiRequestBuilder) functionCall(i, j, c gjson.Result) error {
	var id, fn, extra gjson.Result
	c.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			id = v
		case "function":
			fn = v
		case "extra_content":
			extra = v
		}
		return true
	})
	name := fn.Get("name")
	if name.Type != gjson.String || name.Str == "" {
		return invalidf(toolCallParam(i, j, ""), "tool calls must have a function.name")
	}
	args, err := toolCallInput(i, j, fn.Get("arguments"))
	if err != nil {
		return err
	}
	if id.Type == gjson.String {
		b.calls = append(b.calls, toolCallName{id: id.Str, name: name.Str})
	}
	first := b.turn != "model" || !b.lastCall
	b.part("model")
	b.out = append(b.out, `{"functionCall":{"name":`...)
	b.out = append(b.out, name.Raw...)
	b.out = append(b.out, `,"args":`...)
	b.out = append(b.out, args...)
	b.out = append(b.out, '}')
	// The signature Gemini returned rides on the tool call the way
	// Google's OpenAI-compatible endpoint carries it; without one, the
	// first call of a step gets the documented skip value.
	sig := extra.Get("google.thought_signature")
	switch {
	case sig.Type == gjson.String && sig.Str != "":
		b.out = append(b.out, `,"thoughtSignature":`...)
		b.out = append(b.out, sig.Raw...)
	case first:
		b.out = append(b.out, `,"thoughtSignature":"`+geminiSkipSignature+`"`...)
	}
	b.out = append(b.out, '}')
	b.lastCall = true
	return nil
}

// toolResult writes a tool message as a functionResponse part of a user
// turn. Gemini wants the response as an object: JSON object content is
// sent as is, anything else wrapped as {"content": ...}.
func (b *geminiRequestBuilder) toolResult(i gjson.Result, m *chatMessage) error {
	id := m.toolCallID
	if id.Type != gjson.String {
		return invalidf(fmt.Sprintf("messages[%d].tool_call_id", i.Int()), "tool messages must have a string tool_call_id")
	}
	name := ""
	for _, c := range b.calls {
		if c.id == id.Str {
			name = c.name
		}
	}
	if name == "" {
		return invalidf(fmt.Sprintf("messages[%d].tool_call_id", i.Int()), "tool_call_id %q matches no earlier assistant tool call", id.Str)
	}
	b.part("user")
	b.out = append(b.out, `{"functionResponse":{"name":`...)
	b.out = appendJSONString(b.out, name)
	b.out = append(b.out, `,"response":`...)
	content := m.content
	switch {
	case content.Type == gjson.String:
		if s := strings.TrimSpace(content.Str); strings.HasPrefix(s, "{") && gjson.Valid(s) {
			b.out = append(b.out, s...)
		} else {
			b.out = append(b.out, `{"content":`...)
			b.out = append(b.out, content.Raw...)
			b.out = append(b.out, '}')
		}
	case content.IsArray():
		b.out = append(b.out, `{"content":"`...)
		var err error
		n := 0
		content.ForEach(func(j, part gjson.Result) bool {
			text := part.Get("text")
			if part.Get("type").Str != "text" || text.Type != gjson.String {
				err = invalidf(partParam(i, j), "tool messages may contain only text parts for gemini models")
				return false
			}
			if n > 0 {
				b.out = append(b.out, `\n`...)
			}
			n++
			b.out = append(b.out, rawInner(text.Raw)...)
			return true
		})
		if err != nil {
			return err
		}
		b.out = append(b.out, `"}`...)
	case !content.Exists() || content.Type == gjson.Null:
		b.out = append(b.out, `{"content":""}`...)
	default:
		return invalidf(contentParam(i), "content must be a string or an array of content parts")
	}
	b.out = append(b.out, "}}"...)
	return nil
}

// geminiHostedTools are Gemini's built-in tools, passed through when a
// client sends them in Gemini's own shape ({"googleSearch": {}}).
var geminiHostedTools = [...]string{"googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext", "enterpriseWebSearch"}

// geminiHostedTool reports whether a typeless tool is one of Gemini's own.
func geminiHostedTool(tool gjson.Result) bool {
	for _, h := range geminiHostedTools {
		if tool.Get(h).Exists() {
			return true
		}
	}
	return false
}

// tools writes tools as function declarations plus any hosted tools, and
// tool_choice as toolConfig. web_search_options becomes Google Search
// grounding, as in LiteLLM; its search_context_size and user_location have
// no equivalent there (Gemini's retrieval location is a latitude and
// longitude) and only tune the search, so they are left out.
func (b *geminiRequestBuilder) tools(f *chatRequest) error {
	search := f.webSearchOptions.Exists()
	if search && !f.webSearchOptions.IsObject() {
		return invalidf("web_search_options", "web_search_options must be an object")
	}
	if !f.tools.Exists() && !search {
		return nil
	}
	if f.tools.Exists() && !f.tools.IsArray() {
		return invalidf("tools", "tools must be an array")
	}
	decls := 0
	var hosted []gjson.Result
	var err error
	f.tools.ForEach(func(i, v gjson.Result) bool {
		t := chatTool{index: i.Int()}
		t.read(v)
		if !t.typ.Exists() && geminiHostedTool(v) {
			hosted = append(hosted, v)
			// The client's own googleSearch wins over a bare one.
			search = search && !v.Get("googleSearch").Exists()
			return true
		}
		// Unlike the other providers, Gemini takes no tool whose type is
		// present but empty.
		if t.typ.Exists() && t.typ.Str != "function" {
			err = invalidf(t.param(".type"), "tool type %q is not supported by gemini models", t.typ.Str)
			return false
		}
		if err = t.check("gemini"); err != nil {
			return false
		}
		if decls == 0 {
			b.out = append(b.out, `,"tools":[{"functionDeclarations":[`...)
		} else {
			b.out = append(b.out, ',')
		}
		decls++
		b.out = append(b.out, `{"name":`...)
		b.out = append(b.out, t.name.Raw...)
		if t.description.Type == gjson.String {
			b.out = append(b.out, `,"description":`...)
			b.out = append(b.out, t.description.Raw...)
		}
		if !geminiParamsEmpty(t.parameters) {
			b.out = append(b.out, `,"parameters":`...)
			b.out = appendGeminiSchema(b.out, t.parameters, false)
		}
		b.out = append(b.out, '}')
		return true
	})
	if err != nil {
		return err
	}
	switch {
	case decls > 0:
		b.out = append(b.out, "]}"...)
	case len(hosted) > 0 || search:
		b.out = append(b.out, `,"tools":[`...)
	default:
		return nil
	}
	for i, h := range hosted {
		if decls > 0 || i > 0 {
			b.out = append(b.out, ',')
		}
		b.out = append(b.out, h.Raw...)
	}
	if search {
		if decls > 0 || len(hosted) > 0 {
			b.out = append(b.out, ',')
		}
		b.out = append(b.out, `{"googleSearch":{}}`...)
	}
	b.out = append(b.out, ']')
	if decls == 0 {
		return nil
	}
	return b.toolChoice(f.toolChoice)
}

// toolChoice writes tool_choice as functionCallingConfig.
func (b *geminiRequestBuilder) toolChoice(tc gjson.Result) error {
	if !tc.Exists() {
		return nil
	}
	b.out = append(b.out, `,"toolConfig":{"functionCallingConfig":{"mode":`...)
	switch {
	case tc.Str == "auto":
		b.out = append(b.out, `"AUTO"`...)
	case tc.Str == "none":
		b.out = append(b.out, `"NONE"`...)
	case tc.Str == "required":
		b.out = append(b.out, `"ANY"`...)
	case tc.IsObject() && tc.Get("function.name").Type == gjson.String:
		b.out = append(b.out, `"ANY","allowedFunctionNames":[`...)
		b.out = append(b.out, tc.Get("function.name").Raw...)
		b.out = append(b.out, ']')
	default:
		return invalidf("tool_choice", `tool_choice must be "auto", "required", "none" or {"type":"function","function":{"name":...}}`)
	}
	b.out = append(b.out, "}}"...)
	return nil
}

// generationConfig writes the sampling, length, format and thinking
// parameters.
func (b *geminiRequestBuilder) generationConfig(f *chatRequest) error {
	mark := len(b.out)
	b.out = append(b.out, `,"generationConfig":{`...)
	n := 0
	key := func(name string) {
		if n > 0 {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, '"')
		b.out = append(b.out, name...)
		b.out = append(b.out, '"', ':')
	}

	if name, v := f.maxTokensParam(); v.Exists() {
		if !isPositiveInt(v) {
			return invalidf(name, "%s must be a positive integer", name)
		}
		key("maxOutputTokens")
		b.out = append(b.out, v.Raw...)
	}
	for _, p := range [...]struct {
		name, gemini string
		v            gjson.Result
	}{
		{"temperature", "temperature", f.temperature},
		{"top_p", "topP", f.topP},
		{"top_k", "topK", f.topK},
		{"presence_penalty", "presencePenalty", f.presencePenalty},
		{"frequency_penalty", "frequencyPenalty", f.frequencyPenalty},
	} {
		if !p.v.Exists() {
			continue
		}
		if p.v.Type != gjson.Number {
			return invalidf(p.name, "%s must be a number", p.name)
		}
		key(p.gemini)
		b.out = append(b.out, p.v.Raw...)
	}
	if f.n.Exists() {
		if !isPositiveInt(f.n) {
			return invalidf("n", "n must be a positive integer")
		}
		if f.n.Int() > 1 {
			key("candidateCount")
			b.out = append(b.out, f.n.Raw...)
		}
	}
	if f.seed.Exists() {
		if f.seed.Type != gjson.Number || f.seed.Num != float64(int64(f.seed.Num)) {
			return invalidf("seed", "seed must be an integer")
		}
		key("seed")
		b.out = append(b.out, f.seed.Raw...)
	}
	if err := b.stop(f.stop, key); err != nil {
		return err
	}
	if err := b.responseFormat(f.responseFormat, key); err != nil {
		return err
	}
	if err := b.thinking(f, key); err != nil {
		return err
	}
	if n == 0 {
		b.out = b.out[:mark]
		return nil
	}
	b.out = append(b.out, '}')
	return nil
}

func isPositiveInt(v gjson.Result) bool {
	return v.Type == gjson.Number && v.Num >= 1 && v.Num == float64(int64(v.Num))
}

// stop writes stop sequences. Empty ones are dropped: Gemini rejects them.
func (b *geminiRequestBuilder) stop(stop gjson.Result, key func(string)) error {
	n := 0
	add := func(s gjson.Result) {
		if s.Str == "" {
			return
		}
		if n == 0 {
			key("stopSequences")
			b.out = append(b.out, '[')
		} else {
			b.out = append(b.out, ',')
		}
		n++
		b.out = append(b.out, s.Raw...)
	}
	if err := eachStop(stop, add); err != nil {
		return err
	}
	if n > 0 {
		b.out = append(b.out, ']')
	}
	return nil
}

// responseFormat writes JSON mode as responseMimeType and, for a schema,
// responseSchema in Gemini's subset (accepted by AI Studio and by every
// Vertex API version, unlike responseJsonSchema).
func (b *geminiRequestBuilder) responseFormat(rf gjson.Result, key func(string)) error {
	if !rf.Exists() {
		return nil
	}
	switch rf.Get("type").Str {
	case "text":
		return nil
	case "json_object":
		key("responseMimeType")
		b.out = append(b.out, `"application/json"`...)
		return nil
	case "json_schema":
		key("responseMimeType")
		b.out = append(b.out, `"application/json"`...)
		s := rf.Get("json_schema.schema")
		if !s.Exists() {
			return nil
		}
		if !s.IsObject() {
			return invalidf("response_format.json_schema.schema", "schema must be an object")
		}
		key("responseSchema")
		b.out = appendGeminiSchema(b.out, s, true)
		return nil
	}
	return invalidf("response_format", `response_format type must be "text", "json_object" or "json_schema"`)
}

// thinking writes Anthropic-style thinking, or reasoning_effort, as
// thinkingConfig; thinking wins, as on Anthropic, since its budget is
// exact. Thoughts are asked for whenever thinking is on, so that they
// reach the client as reasoning_content.
func (b *geminiRequestBuilder) thinking(f *chatRequest, key func(string)) error {
	var budget int64
	var err error
	switch {
	case f.thinking.Exists():
		if _, budget, err = chatThinking(f.thinking); err != nil {
			return err
		}
	case f.reasoningEffort.Exists():
		if budget, err = reasoningBudget(f.reasoningEffort); err != nil {
			return err
		}
	default:
		return nil
	}
	key("thinkingConfig")
	b.out = append(b.out, `{"thinkingBudget":`...)
	b.out = appendInt(b.out, budget)
	if budget > 0 {
		b.out = append(b.out, `,"includeThoughts":true`...)
	}
	b.out = append(b.out, '}')
	return nil
}

// openAIToGeminiResponse translates Gemini responses, event streams and
// errors into chat completions.
type openAIToGeminiResponse struct {
	opts ResponseOptions

	// Stream state.
	carry lineCarry
	out   []byte
	// head is the start of every chunk, up to and including `"choices":[`.
	head  []byte
	usage Usage
	model string
	// cands is the state of each candidate (choice) by index.
	cands []geminiCandidate
	// finished is set once a candidate finished or the prompt was blocked:
	// the end of the input then ends the stream normally.
	finished bool
	// ended is set after the end or an error: later input is ignored.
	ended bool
	done  bool
	err   *ProviderError
}

var _ ResponseTranslator = (*openAIToGeminiResponse)(nil)

// geminiCandidate is the stream state of one choice.
type geminiCandidate struct {
	started  bool
	finished bool
	calls    int
}

// maxGeminiCandidates bounds candidate indexes (candidateCount is at most
// 8) so that a hostile index cannot allocate.
const maxGeminiCandidates = 16

// geminiUsage reads usageMetadata in OpenAI's terms: tool-use prompt
// tokens are input, thoughts are output.
func geminiUsage(u gjson.Result) Usage {
	var prompt, toolPrompt, candidates, thoughts, cached int64
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "promptTokenCount":
			prompt = v.Int()
		case "toolUsePromptTokenCount":
			toolPrompt = v.Int()
		case "candidatesTokenCount":
			candidates = v.Int()
		case "thoughtsTokenCount":
			thoughts = v.Int()
		case "cachedContentTokenCount":
			cached = v.Int()
		}
		return true
	})
	return Usage{
		InputTokens:       prompt + toolPrompt,
		OutputTokens:      candidates + thoughts,
		CachedInputTokens: cached,
		ReasoningTokens:   thoughts,
	}
}

// appendGeminiUsage appends u as an OpenAI usage object with reasoning
// tokens.
func appendGeminiUsage(out []byte, u Usage) []byte {
	out = append(out, `{"prompt_tokens":`...)
	out = appendInt(out, u.InputTokens)
	out = append(out, `,"completion_tokens":`...)
	out = appendInt(out, u.OutputTokens)
	out = append(out, `,"total_tokens":`...)
	out = appendInt(out, u.TotalTokens())
	out = append(out, `,"prompt_tokens_details":{"cached_tokens":`...)
	out = appendInt(out, u.CachedInputTokens)
	out = append(out, `},"completion_tokens_details":{"reasoning_tokens":`...)
	out = appendInt(out, u.ReasoningTokens)
	return append(out, "}}"...)
}

// geminiResponse holds the fields of a GenerateContentResponse, read in
// one scan.
type geminiResponse struct {
	candidates, promptFeedback, usage, modelVersion, responseID, err gjson.Result
}

func (g *geminiResponse) read(v gjson.Result) {
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "candidates":
			g.candidates = v
		case "promptFeedback":
			g.promptFeedback = v
		case "usageMetadata":
			g.usage = v
		case "modelVersion":
			g.modelVersion = v
		case "responseId":
			g.responseID = v
		case "error":
			g.err = v
		}
		return true
	})
}

// geminiCandidateFields holds the fields of a candidate.
type geminiCandidateFields struct {
	index        int64
	parts        gjson.Result
	finishReason string
}

func (c *geminiCandidateFields) read(i int64, v gjson.Result) {
	c.index = i
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "index":
			c.index = v.Int()
		case "content":
			c.parts = v.Get("parts")
		case "finishReason":
			c.finishReason = v.Str
		}
		return true
	})
}

// fallbackResponseID names responses whose provider gave no responseId.
const fallbackResponseID = "chatcmpl-gemini"

// appendResponseID appends the response id as a JSON string.
func appendResponseID(out []byte, id gjson.Result) []byte {
	if id.Type != gjson.String || id.Str == "" {
		return append(out, `"`+fallbackResponseID+`"`...)
	}
	return append(out, id.Raw...)
}

// appendToolCallID appends the id of a candidate's n-th function call:
// Gemini's own id when it sends one, else one derived from the response
// id, so that translation stays deterministic and ids differ across turns.
func appendToolCallID(out []byte, fc, responseID gjson.Result, cand int64, n int) []byte {
	if id := fc.Get("id"); id.Type == gjson.String && id.Str != "" {
		return append(out, id.Raw...)
	}
	out = append(out, `"call_`...)
	if responseID.Type == gjson.String && responseID.Str != "" {
		out = append(out, rawInner(responseID.Raw)...)
		out = append(out, '_')
	}
	if cand > 0 {
		out = appendInt(out, cand)
		out = append(out, '_')
	}
	out = appendInt(out, int64(n))
	return append(out, '"')
}

// appendJoinedText appends the text of the parts whose thought flag is
// thought, joined into one string literal, after prefix; it appends
// nothing and reports false when there is none. Joining the still-escaped
// literals avoids unescaping and escaping again.
func appendJoinedText(out []byte, parts gjson.Result, thought bool, prefix string) ([]byte, bool) {
	n := 0
	parts.ForEach(func(_, p gjson.Result) bool {
		var text gjson.Result
		isThought := false
		p.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "text":
				text = v
			case "thought":
				isThought = v.Type == gjson.True
			}
			return true
		})
		if text.Type != gjson.String || isThought != thought || len(text.Raw) <= 2 {
			return true
		}
		if n == 0 {
			out = append(out, prefix...)
			out = append(out, '"')
		}
		n++
		out = append(out, rawInner(text.Raw)...)
		return true
	})
	if n > 0 {
		out = append(out, '"')
	}
	return out, n > 0
}

// appendToolCalls appends the functionCall parts as OpenAI tool calls,
// after prefix, numbering them from first; streamed calls carry their
// index. It returns the number appended.
func appendToolCalls(out []byte, parts, responseID gjson.Result, cand int64, first int, stream bool, prefix string) ([]byte, int) {
	n := 0
	parts.ForEach(func(_, p gjson.Result) bool {
		var fc, sig gjson.Result
		p.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "functionCall":
				fc = v
			case "thoughtSignature":
				sig = v
			}
			return true
		})
		if !fc.IsObject() {
			return true
		}
		if n == 0 {
			out = append(out, prefix...)
			out = append(out, '[')
		} else {
			out = append(out, ',')
		}
		idx := first + n
		n++
		out = append(out, '{')
		if stream {
			out = append(out, `"index":`...)
			out = appendInt(out, int64(idx))
			out = append(out, ',')
		}
		out = append(out, `"id":`...)
		out = appendToolCallID(out, fc, responseID, cand, idx)
		out = append(out, `,"type":"function","function":{"name":`...)
		out = appendRawString(out, fc.Get("name"))
		out = append(out, `,"arguments":`...)
		if args := fc.Get("args"); args.IsObject() {
			out = appendCompactAsString(out, args.Raw)
		} else {
			out = append(out, `"{}"`...)
		}
		out = append(out, '}')
		if sig.Type == gjson.String && sig.Str != "" {
			out = append(out, `,"extra_content":{"google":{"thought_signature":`...)
			out = append(out, sig.Raw...)
			out = append(out, "}}"...)
		}
		out = append(out, '}')
		return true
	})
	if n > 0 {
		out = append(out, ']')
	}
	return out, n
}

// ResponseBody implements ResponseTranslator.
func (r *openAIToGeminiResponse) ResponseBody(body []byte) (ResponseResult, error) {
	if !gjson.ValidBytes(body) {
		return ResponseResult{}, fmt.Errorf("read gemini response: %w: not JSON", ErrMalformedResponse)
	}
	doc := gjson.Parse(stringView(body))
	if !doc.IsObject() {
		return ResponseResult{}, fmt.Errorf("read gemini response: %w: not an object", ErrMalformedResponse)
	}
	var g geminiResponse
	g.read(doc)
	if g.err.IsObject() {
		return ResponseResult{}, geminiError(0, g.err)
	}
	if !g.candidates.IsArray() && !g.promptFeedback.IsObject() {
		return ResponseResult{}, fmt.Errorf("read gemini response: %w: no candidates", ErrMalformedResponse)
	}
	usage := geminiUsage(g.usage)

	out := make([]byte, 0, len(body)+256)
	out = append(out, `{"id":`...)
	out = appendResponseID(out, g.responseID)
	out = append(out, `,"object":"chat.completion","created":`...)
	out = appendInt(out, r.opts.Created)
	out = append(out, `,"model":`...)
	out = appendRawString(out, g.modelVersion)
	out = append(out, `,"choices":[`...)
	n := 0
	g.candidates.ForEach(func(i, v gjson.Result) bool {
		var c geminiCandidateFields
		c.read(i.Int(), v)
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, `{"index":`...)
		out = appendInt(out, c.index)
		out = append(out, `,"message":{"role":"assistant"`...)
		var hasText bool
		out, hasText = appendJoinedText(out, c.parts, false, `,"content":`)
		mark := len(out)
		out, _ = appendJoinedText(out, c.parts, true, `,"reasoning_content":`)
		var calls int
		out, calls = appendToolCalls(out, c.parts, g.responseID, c.index, 0, false, `,"tool_calls":`)
		if !hasText {
			// OpenAI sends null content beside tool calls and "" for an
			// empty answer (a filtered candidate).
			content := `,"content":""`
			if calls > 0 {
				content = `,"content":null`
			}
			out = append(out[:mark], append([]byte(content), out[mark:]...)...)
		}
		out = append(out, `},"finish_reason":"`...)
		out = append(out, geminiFinishReason(c.finishReason, calls > 0)...)
		out = append(out, `"}`...)
		return true
	})
	if n == 0 {
		// No candidates: the prompt itself was blocked.
		out = append(out, `{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"`...)
		if g.promptFeedback.Get("blockReason").Exists() {
			out = append(out, "content_filter"...)
		} else {
			out = append(out, "stop"...)
		}
		out = append(out, `"}`...)
	}
	out = append(out, `],"usage":`...)
	out = appendGeminiUsage(out, usage)
	out = append(out, '}')
	return ResponseResult{Body: out, Usage: usage, Model: strings.Clone(g.modelVersion.Str)}, nil
}

// StreamChunk implements ResponseTranslator. Body is a buffer reused by the
// next call.
func (r *openAIToGeminiResponse) StreamChunk(chunk []byte, final bool) (StreamResult, error) {
	r.out = r.out[:0]
	err := eachSSELine(&r.carry, chunk, final, r)
	if final && err == nil && !r.ended && r.finished {
		// Gemini ends a stream by closing it; the last event carried the
		// finish reason and final usage.
		if r.opts.IncludeUsage {
			r.out = append(r.out, "data: "...)
			r.out = append(r.out, r.head...)
			r.out = append(r.out, `],"usage":`...)
			r.out = appendGeminiUsage(r.out, r.usage)
			r.out = append(r.out, "}\n\n"...)
		}
		r.out = append(r.out, "data: [DONE]\n\n"...)
		r.ended, r.done = true, true
	}
	return StreamResult{
		Body:  r.out,
		Usage: r.usage,
		Model: r.model,
		Done:  r.done,
		Err:   r.err,
	}, err
}

// line translates one complete SSE line; each data line is a whole
// GenerateContentResponse.
func (r *openAIToGeminiResponse) line(line []byte) error {
	if r.ended {
		return nil
	}
	data, ok := sseData(line)
	if !ok || len(data) == 0 {
		return nil
	}
	if !gjson.ValidBytes(data) {
		r.ended = true
		r.out = appendErrorEvent(r.out, unreadableEvent())
		return fmt.Errorf("read gemini stream: %w: event is not JSON", ErrMalformedResponse)
	}
	var g geminiResponse
	g.read(gjson.Parse(stringView(data)))
	if g.err.Exists() {
		r.err = geminiError(0, g.err)
		r.out = appendErrorEvent(r.out, r.err)
		r.ended = true
		return nil
	}
	if g.usage.IsObject() {
		r.usage = geminiUsage(g.usage)
	}
	if r.model == "" && g.modelVersion.Type == gjson.String {
		r.model = strings.Clone(g.modelVersion.Str)
	}
	if len(r.head) == 0 {
		r.head = append(r.head, `{"id":`...)
		r.head = appendResponseID(r.head, g.responseID)
		r.head = append(r.head, `,"object":"chat.completion.chunk","created":`...)
		r.head = appendInt(r.head, r.opts.Created)
		r.head = append(r.head, `,"model":`...)
		r.head = appendRawString(r.head, g.modelVersion)
		r.head = append(r.head, `,"choices":[`...)
	}
	seen := false
	g.candidates.ForEach(func(i, v gjson.Result) bool {
		seen = true
		var c geminiCandidateFields
		c.read(i.Int(), v)
		r.candidate(&c, g.responseID)
		return true
	})
	if !seen && g.promptFeedback.Get("blockReason").Exists() {
		st := r.state(0)
		if st != nil && !st.finished {
			r.chunkStart(0)
			r.out = append(r.out, `{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n"...)
			st.started = true
			r.finish(0, st, "content_filter")
		}
	}
	return nil
}

func (r *openAIToGeminiResponse) state(index int64) *geminiCandidate {
	if index < 0 || index >= maxGeminiCandidates {
		return nil
	}
	for int64(len(r.cands)) <= index {
		r.cands = append(r.cands, geminiCandidate{})
	}
	return &r.cands[index]
}

// chunkStart appends a chunk of choice index up to its delta value.
func (r *openAIToGeminiResponse) chunkStart(index int64) {
	r.out = append(r.out, "data: "...)
	r.out = append(r.out, r.head...)
	r.out = append(r.out, `{"index":`...)
	r.out = appendInt(r.out, index)
	r.out = append(r.out, `,"delta":`...)
}

// candidate appends one chunk with the candidate's new content, reasoning
// and complete tool calls, then one with its finish reason.
func (r *openAIToGeminiResponse) candidate(c *geminiCandidateFields, responseID gjson.Result) {
	st := r.state(c.index)
	if st == nil || st.finished {
		return
	}
	mark := len(r.out)
	r.chunkStart(c.index)
	open := len(r.out)
	r.out = append(r.out, '{')
	if !st.started {
		r.out = append(r.out, `"role":"assistant",`...)
	}
	body := len(r.out)
	var calls int
	r.out, _ = appendJoinedText(r.out, c.parts, false, `"content":`)
	r.out, _ = appendJoinedText(r.out, c.parts, true, commaIf(len(r.out) > body)+`"reasoning_content":`)
	r.out, calls = appendToolCalls(r.out, c.parts, responseID, c.index, st.calls, true, commaIf(len(r.out) > body)+`"tool_calls":`)
	st.calls += calls
	switch {
	case len(r.out) > body:
		r.out = append(r.out, `},"finish_reason":null}]}`+"\n\n"...)
		st.started = true
	case !st.started:
		// Nothing but the role: send it alone, as OpenAI does first.
		r.out = append(r.out[:open], `{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n"...)
		st.started = true
	default:
		r.out = r.out[:mark]
	}
	if c.finishReason != "" {
		r.finish(c.index, st, geminiFinishReason(c.finishReason, st.calls > 0))
	}
}

// commaIf returns "," when a field precedes.
func commaIf(b bool) string {
	if b {
		return ","
	}
	return ""
}

// finish appends the chunk that ends choice index.
func (r *openAIToGeminiResponse) finish(index int64, st *geminiCandidate, reason string) {
	r.chunkStart(index)
	r.out = append(r.out, `{},"finish_reason":"`...)
	r.out = append(r.out, reason...)
	r.out = append(r.out, `"}]}`+"\n\n"...)
	st.finished = true
	r.finished = true
}

// ErrorBody implements ResponseTranslator.
func (r *openAIToGeminiResponse) ErrorBody(status int, body []byte) *ProviderError {
	return geminiErrorBody(status, body)
}
