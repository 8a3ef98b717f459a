package transform_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

const cohereModel = "command-a-03-2025"

func newCohereResponse(opts transform.ResponseOptions) transform.ResponseTranslator {
	return transform.NewOpenAIToCohereResponse(opts, cohereModel)
}

func TestCohere_RequestBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "cohere", "request") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "cohere", name+".request.json"))
			pristine := bytes.Clone(body)
			tr := transform.NewOpenAIToCohereRequest(transform.Target{APIKey: "co-key"})
			res, err := tr.RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "cohere", name+".request.golden.json"), requestGolden(t, res))
			again, _ := tr.RequestBody(body)
			if !bytes.Equal(again.Body, res.Body) || !bytes.Equal(body, pristine) {
				t.Error("translation is not repeatable over an untouched body")
			}
		})
	}
}

func TestCohere_RequestBodyFields(t *testing.T) {
	tests := []struct {
		name   string
		target transform.Target
		body   string
		want   string
	}{
		{"minimal", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"hi"}]}`,
			`{"model":"c","messages":[{"role":"user","content":"hi"}]}`},
		{"target model", transform.Target{Model: "command-r"}, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`,
			`{"model":"command-r","messages":[{"role":"user","content":"hi"}]}`},
		{"max_tokens and sampling", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"max_tokens":9,"top_p":0.5,"top_k":40,"seed":3}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"max_tokens":9,"p":0.5,"k":40,"seed":3}`},
		{"max_completion_tokens wins", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"max_tokens":9,"max_completion_tokens":4}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"max_tokens":4}`},
		{"tool_choice none", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],"tool_choice":"NONE"}`},
		{"tool_choice auto omitted", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto"}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`},
		{"tool_choice without tools", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"tool_choice":"required"}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}]}`},
		{"named tool_choice without tools", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{"name":"f"}}}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}]}`},
		{"json_object", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}`},
		{"text format omitted", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"response_format":{"type":"text"},"stream":false}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}]}`},
		{"empty messages skipped", transform.Target{}, `{"model":"c","messages":[{"role":"system","content":""},{"role":"user","content":"x"},{"role":"assistant","content":""}]}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}]}`},
		{"empty tool result", transform.Target{}, `{"model":"c","messages":[{"role":"tool","tool_call_id":"t1","content":null}]}`,
			`{"model":"c","messages":[{"role":"tool","tool_call_id":"t1","content":""}]}`},
		{"object arguments", transform.Target{}, `{"model":"c","messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":{"x": 1}}}]}]}`,
			`{"model":"c","messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]}]}`},
		{"reasoning_effort sets the thinking budget", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high"}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","token_budget":4096}}`},
		{"reasoning_effort minimal", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"reasoning_effort":"minimal"}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","token_budget":128}}`},
		{"reasoning_effort none turns thinking off", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"reasoning_effort":"none","stream":true}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"disabled"},"stream":true}`},
		{"thinking budget kept exactly", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":31999}}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","token_budget":31999}}`},
		{"thinking disabled", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"disabled"}}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"disabled"}}`},
		{"thinking wins over reasoning_effort", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high","thinking":{"type":"disabled"}}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"disabled"}}`},
		{"tags not sent", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"user":"u","safety_identifier":"s","store":true,"metadata":{"k":"v"},"service_tier":"flex","prompt_cache_key":"p","modalities":["text"]}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}]}`},
		{"parallel_tool_calls true is what Cohere does", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"parallel_tool_calls":true}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}]}`},
		{"web image URL passed with its detail", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}},{"type":"image_url","image_url":"https://example.com/dog.jpg"}]}]}`,
			`{"model":"c","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}},{"type":"image_url","image_url":{"url":"https://example.com/dog.jpg"}}]}]}`},
		{"nulls ignored", transform.Target{}, `{"model":"c","messages":[{"role":"user","content":"x"}],"temperature":null,"n":1,"logprobs":false}`,
			`{"model":"c","messages":[{"role":"user","content":"x"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := transform.NewOpenAIToCohereRequest(tt.target).RequestBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Body) != tt.want {
				t.Errorf("body = %s\nwant   %s", res.Body, tt.want)
			}
			if !json.Valid(res.Body) {
				t.Error("invalid JSON")
			}
		})
	}
}

func TestCohere_RequestBodyHeaders(t *testing.T) {
	body := []byte(`{"model":"c","messages":[{"role":"user","content":"x"}]}`)
	res, err := transform.NewOpenAIToCohereRequest(transform.Target{BasePath: "/base", APIKey: "k"}).RequestBody(body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != "/base/v2/chat" || res.SetHeaders[1] != (transform.Header{Key: "authorization", Value: "Bearer k"}) {
		t.Errorf("path %q headers %v", res.Path, res.SetHeaders)
	}
	res, _ = transform.NewOpenAIToCohereRequest(transform.Target{}).RequestBody(body)
	if len(res.SetHeaders) != 1 || !strings.Contains(strings.Join(res.RemoveHeaders, ","), "authorization") {
		t.Errorf("keyless headers %v remove %v", res.SetHeaders, res.RemoveHeaders)
	}
}

func TestCohere_RequestBodyInvalid(t *testing.T) {
	tests := []struct {
		name, body, wantParam string
	}{
		{"malformed", `{"model"`, ""},
		{"not object", `[1]`, ""},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, "model"},
		{"no messages", `{"model":"c"}`, "messages"},
		{"only empty messages", `{"model":"c","messages":[{"role":"user","content":""}]}`, "messages"},
		{"bad role", `{"model":"c","messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
		{"n", `{"model":"c","messages":[],"n":2}`, "n"},
		{"logprobs", `{"model":"c","messages":[],"logprobs":true}`, "logprobs"},
		{"logit_bias", `{"model":"c","messages":[],"logit_bias":{"1":1}}`, "logit_bias"},
		{"image in system", `{"model":"c","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "messages[0].content[0]"},
		{"audio part", `{"model":"c","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "messages[0].content[0]"},
		{"tool without id", `{"model":"c","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
		{"call without name", `{"model":"c","messages":[{"role":"assistant","tool_calls":[{"id":"a"}]}]}`, "messages[0].tool_calls[0]"},
		{"named tool missing", `{"model":"c","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, "tool_choice"},
		{"bad tool_choice", `{"model":"c","messages":[{"role":"user","content":"x"}],"tool_choice":"any"}`, "tool_choice"},
		{"hosted tool", `{"model":"c","messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]}`, "tools[0].type"},
		{"temperature string", `{"model":"c","messages":[{"role":"user","content":"x"}],"temperature":"hot"}`, "temperature"},
		{"fractional max_tokens", `{"model":"c","messages":[{"role":"user","content":"x"}],"max_tokens":1.5}`, "max_tokens"},
		{"stop number", `{"model":"c","messages":[{"role":"user","content":"x"}],"stop":[1]}`, "stop"},
		{"bad reasoning_effort", `{"model":"c","messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"}`, "reasoning_effort"},
		{"numeric reasoning_effort", `{"model":"c","messages":[{"role":"user","content":"x"}],"reasoning_effort":2}`, "reasoning_effort"},
		{"parallel_tool_calls false", `{"model":"c","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}`, "parallel_tool_calls"},
		{"schema missing", `{"model":"c","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{}}}`, "response_format"},
		{"adaptive thinking", `{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"adaptive"}}`, "thinking.type"},
		{"thinking without budget", `{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled"}}`, "thinking.budget_tokens"},
		{"thinking not an object", `{"model":"c","messages":[{"role":"user","content":"x"}],"thinking":true}`, "thinking"},
		{"web_search_options", `{"model":"c","messages":[{"role":"user","content":"x"}],"web_search_options":{}}`, "web_search_options"},
		{"verbosity", `{"model":"c","messages":[{"role":"user","content":"x"}],"verbosity":"high"}`, "verbosity"},
		{"prediction", `{"model":"c","messages":[{"role":"user","content":"x"}],"prediction":{"type":"content","content":"x"}}`, "prediction"},
		{"image output", `{"model":"c","messages":[{"role":"user","content":"x"}],"modalities":["image"]}`, "modalities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := transform.NewOpenAIToCohereRequest(transform.Target{}).RequestBody([]byte(tt.body))
			var ie *transform.InvalidRequestError
			if !errors.Is(err, transform.ErrInvalidRequest) || !errors.As(err, &ie) || ie.Param != tt.wantParam {
				t.Errorf("err = %v, want param %q", err, tt.wantParam)
			}
		})
	}
}

func TestCohere_ResponseBodyGolden(t *testing.T) {
	for _, name := range fixtures(t, "cohere", "response") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "cohere", name+".response.json"))
			res, err := newCohereResponse(transform.ResponseOptions{Created: created}).ResponseBody(body)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "cohere", name+".response.golden.json"), indentJSON(t, res.Body))
		})
	}
}

func TestCohere_ResponseBodyFields(t *testing.T) {
	tests := []struct {
		name       string
		wantText   string
		wantReason string
		wantFinish string
		wantCall   string
		wantUsage  transform.Usage
	}{
		{"text", `Teal. Or "blue".`, "", "stop", "", transform.Usage{InputTokens: 71, OutputTokens: 4, CachedInputTokens: 64}},
		{"tool_call", "", "", "tool_calls", `get_weather {"city":"Paris"}`, transform.Usage{InputTokens: 1020, OutputTokens: 52}},
		{"max_tokens", "One, two", "The user wants a list.", "length", "", transform.Usage{InputTokens: 210, OutputTokens: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "cohere", tt.name+".response.json"))
			res, err := newCohereResponse(transform.ResponseOptions{Created: created}).ResponseBody(body)
			if err != nil {
				t.Fatal(err)
			}
			var c openai.ChatCompletion
			if err := json.Unmarshal(res.Body, &c); err != nil {
				t.Fatal(err)
			}
			ch := c.Choices[0]
			call := ""
			if len(ch.Message.ToolCalls) > 0 {
				call = ch.Message.ToolCalls[0].Function.Name + " " + ch.Message.ToolCalls[0].Function.Arguments
			}
			var extra struct {
				Choices []struct {
					Message struct {
						ReasoningContent string `json:"reasoning_content"`
					} `json:"message"`
				} `json:"choices"`
			}
			_ = json.Unmarshal(res.Body, &extra)
			if ch.Message.Content != tt.wantText || string(ch.FinishReason) != tt.wantFinish || call != tt.wantCall ||
				extra.Choices[0].Message.ReasoningContent != tt.wantReason {
				t.Errorf("message %+v finish %q call %q", ch.Message, ch.FinishReason, call)
			}
			if c.Model != cohereModel || c.Created != created || c.Object != "chat.completion" || c.ID == "" {
				t.Errorf("envelope %q %d %q %q", c.Model, c.Created, c.Object, c.ID)
			}
			if res.Usage != tt.wantUsage || c.Usage.PromptTokens != tt.wantUsage.InputTokens || c.Usage.TotalTokens != tt.wantUsage.TotalTokens() || res.Model != cohereModel {
				t.Errorf("usage %+v / %+v", res.Usage, c.Usage)
			}
		})
	}
}

func TestCohere_ResponseBodyBad(t *testing.T) {
	tr := newCohereResponse(transform.ResponseOptions{})
	for _, body := range []string{`nope`, `{"id":"x"}`, `[]`} {
		if _, err := tr.ResponseBody([]byte(body)); !errors.Is(err, transform.ErrMalformedResponse) {
			t.Errorf("%s: %v", body, err)
		}
	}
	_, err := tr.ResponseBody([]byte(`{"id":"x","message":"internal error"}`))
	var pe *transform.ProviderError
	if !errors.As(err, &pe) || pe.Status != 500 || pe.Message != "internal error" {
		t.Errorf("error in 2xx body: %v", err)
	}
}

func TestCohere_StreamChunkGolden(t *testing.T) {
	checkStreamGoldens(t, "cohere", func(o transform.ResponseOptions) transform.ResponseTranslator { return newCohereResponse(o) })
}

// checkStreamGoldens translates every stream fixture of a provider with and
// without include_usage, compares with the goldens, checks the chunks parse
// as the SDK's, and replays the stream whole, split at every byte and byte
// by byte.
func checkStreamGoldens(t *testing.T, provider string, newTr func(transform.ResponseOptions) transform.ResponseTranslator) {
	for _, name := range fixtures(t, provider, "stream") {
		for _, includeUsage := range []bool{false, true} {
			golden := name + ".stream.golden.sse"
			if includeUsage {
				golden = name + ".stream.usage.golden.sse"
			}
			t.Run(golden, func(t *testing.T) {
				pieces := streamPieces(t, filepath.Join("testdata", provider, name+".stream.json"))
				opts := transform.ResponseOptions{Stream: true, IncludeUsage: includeUsage, Created: created}
				want, last := runStream(t, newTr(opts), pieces)
				checkGolden(t, filepath.Join("testdata", provider, golden), want)
				checkChunks(t, want)
				whole := bytes.Join(pieces, nil)
				var bytewise [][]byte
				for i := range whole {
					bytewise = append(bytewise, whole[i:i+1])
				}
				runs := append(splitEverywhere(whole), [][]byte{whole}, bytewise)
				for _, run := range runs {
					got, gotLast := runStream(t, newTr(opts), run)
					if !bytes.Equal(got, want) || gotLast.Usage != last.Usage || gotLast.Done != last.Done || (gotLast.Err == nil) != (last.Err == nil) {
						t.Fatalf("replay differs:\n got: %s\nwant: %s", got, want)
					}
				}
			})
		}
	}
}

// decodeChunks translates a stream fixture and decodes its chunks.
func decodeChunks(t *testing.T, tr transform.ResponseTranslator, path string) ([]openai.ChatCompletionChunk, transform.StreamResult) {
	t.Helper()
	out, last := runStream(t, tr, streamPieces(t, path))
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
	return chunks, last
}

func TestCohere_StreamChunkFields(t *testing.T) {
	opts := transform.ResponseOptions{Stream: true, IncludeUsage: true, Created: created}
	t.Run("text", func(t *testing.T) {
		chunks, last := decodeChunks(t, newCohereResponse(opts), filepath.Join("testdata", "cohere", "text.stream.json"))
		var text strings.Builder
		finish := ""
		for _, c := range chunks {
			if len(c.Choices) > 0 {
				text.WriteString(c.Choices[0].Delta.Content)
				finish += c.Choices[0].FinishReason
			}
		}
		u := chunks[len(chunks)-1].Usage
		if text.String() != `Hello there, "friend"!` || finish != "stop" || u.PromptTokens != 69 || u.CompletionTokens != 5 {
			t.Errorf("text %q finish %q usage %+v", text.String(), finish, u)
		}
		if chunks[0].ID != "29f14a5a-11de-4cae-9800-25e4747408ea" || chunks[0].Choices[0].Delta.Role != "assistant" {
			t.Errorf("first chunk %+v", chunks[0])
		}
		if !last.Done || last.Usage != (transform.Usage{InputTokens: 69, OutputTokens: 5}) || last.Model != cohereModel {
			t.Errorf("last %+v", last)
		}
	})
	t.Run("tool calls", func(t *testing.T) {
		chunks, last := decodeChunks(t, newCohereResponse(opts), filepath.Join("testdata", "cohere", "tool_use.stream.json"))
		args := map[int64]string{}
		ids := map[int64]string{}
		finish := ""
		for _, c := range chunks {
			if len(c.Choices) == 0 {
				continue
			}
			finish += c.Choices[0].FinishReason
			for _, tc := range c.Choices[0].Delta.ToolCalls {
				args[tc.Index] += tc.Function.Arguments
				if tc.ID != "" {
					ids[tc.Index] = tc.ID + " " + tc.Function.Name
				}
			}
		}
		if args[0] != "{\n    \"city\": \"Paris\"\n}" || args[1] != "{}" || ids[0] != "get_weather_abc123 get_weather" || ids[1] != "get_time_def456 get_time" || finish != "tool_calls" {
			t.Errorf("args %v ids %v finish %q", args, ids, finish)
		}
		if last.Usage != (transform.Usage{InputTokens: 793, OutputTokens: 61, CachedInputTokens: 176}) {
			t.Errorf("usage %+v", last.Usage)
		}
	})
	t.Run("thinking", func(t *testing.T) {
		out, last := runStream(t, newCohereResponse(opts), streamPieces(t, filepath.Join("testdata", "cohere", "thinking.stream.json")))
		var reasoning, text strings.Builder
		for _, d := range sseDataLines(out) {
			var c struct {
				Choices []struct {
					Delta struct {
						Content          string `json:"content"`
						ReasoningContent string `json:"reasoning_content"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if d == "[DONE]" {
				continue
			}
			if err := json.Unmarshal([]byte(d), &c); err != nil {
				t.Fatal(err)
			}
			if len(c.Choices) > 0 {
				reasoning.WriteString(c.Choices[0].Delta.ReasoningContent)
				text.WriteString(c.Choices[0].Delta.Content)
			}
		}
		if reasoning.String() != `Alice has 2 sisters, so her brother has "3".` || text.String() != "Three sisters." {
			t.Errorf("reasoning %q text %q", reasoning.String(), text.String())
		}
		if !last.Done || last.Usage != (transform.Usage{InputTokens: 530, OutputTokens: 40}) {
			t.Errorf("last %+v", last)
		}
	})
	t.Run("error", func(t *testing.T) {
		_, last := decodeChunks(t, newCohereResponse(opts), filepath.Join("testdata", "cohere", "error.stream.json"))
		if last.Err == nil || last.Err.Message != "internal server error, please try again" || last.Err.Status != 500 || last.Done {
			t.Errorf("last %+v", last)
		}
	})
}

func TestCohere_StreamChunkMalformed(t *testing.T) {
	tr := newCohereResponse(transform.ResponseOptions{Stream: true})
	res, err := tr.StreamChunk([]byte("event: content-delta\ndata: {\"type\":\"content-delta\",\"delta\":{\"message\":{\"content\":{\"text\":\"a\"}}}}\n\ndata: {oops\n\n"), false)
	if !errors.Is(err, transform.ErrMalformedResponse) || !bytes.Contains(res.Body, []byte(`"content":"a"`)) || !bytes.Contains(res.Body, []byte(`{"error"`)) {
		t.Errorf("err %v body %s", err, res.Body)
	}
	res, _ = tr.StreamChunk([]byte("data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\"}}\n\n"), true)
	if len(res.Body) != 0 || res.Done {
		t.Errorf("input after the error was translated: %s", res.Body)
	}
}

func TestCohere_ErrorBody(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   transform.ProviderError
	}{
		{"bad request", 400, `{"id":"a1","message":"invalid request: message must be at least 1 token long or tool results must be specified."}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Message: "invalid request: message must be at least 1 token long or tool results must be specified."}},
		{"too many tokens", 400, `{"id":"a2","message":"too many tokens: size limit exceeded by 1181 tokens. Try using shorter or fewer inputs."}`,
			transform.ProviderError{Status: 400, Type: transform.ErrorTypeInvalidRequest, Code: transform.CodeContextLengthExceeded, Message: "too many tokens: size limit exceeded by 1181 tokens. Try using shorter or fewer inputs."}},
		{"unauthorized", 401, `{"id":"a3","message":"invalid api token"}`,
			transform.ProviderError{Status: 401, Type: transform.ErrorTypeAuthentication, Message: "invalid api token"}},
		{"rate limit", 429, `{"id":"a4","message":"You are using a Trial key, which is limited to 10 API calls / minute."}`,
			transform.ProviderError{Status: 429, Type: transform.ErrorTypeRateLimit, Message: "You are using a Trial key, which is limited to 10 API calls / minute."}},
		{"model not found", 404, `{"id":"a5","message":"model 'command-z' not found, make sure the correct model ID was used and that you have access to the model."}`,
			transform.ProviderError{Status: 404, Type: transform.ErrorTypeNotFound, Message: "model 'command-z' not found, make sure the correct model ID was used and that you have access to the model."}},
		{"unavailable", 503, `{"message":"service unavailable"}`,
			transform.ProviderError{Status: 503, Type: transform.ErrorTypeOverloaded, Message: "service unavailable"}},
		{"html", 502, `<html>bad gateway</html>`,
			transform.ProviderError{Status: 502, Type: transform.ErrorTypeServer, Message: "provider returned status 502 with an unreadable error body"}},
		{"empty", 500, `{}`,
			transform.ProviderError{Status: 500, Type: transform.ErrorTypeServer, Message: "provider returned status 500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newCohereResponse(transform.ResponseOptions{}).ErrorBody(tt.status, []byte(tt.body)); *got != tt.want {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func FuzzCohere_RequestBody(f *testing.F) {
	addFixtures(f, "cohere", "request")
	addFixtures(f, "anthropic", "request")
	f.Fuzz(func(t *testing.T, body []byte) {
		pristine := bytes.Clone(body)
		tr := transform.NewOpenAIToCohereRequest(transform.Target{Model: "command", APIKey: "k"})
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

func FuzzCohere_ResponseBody(f *testing.F) {
	addFixtures(f, "cohere", "response")
	f.Fuzz(func(t *testing.T, body []byte) {
		tr := newCohereResponse(transform.ResponseOptions{Created: created})
		res, err := tr.ResponseBody(body)
		if err == nil && !json.Valid(res.Body) {
			t.Fatalf("invalid JSON from %q:\n%s", body, res.Body)
		}
		tr.ErrorBody(400, body)
	})
}

func FuzzCohere_StreamChunk(f *testing.F) {
	addFixtures(f, "cohere", "stream")
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		opts := transform.ResponseOptions{Stream: true, IncludeUsage: cut%2 == 0, Created: created}
		got := translateSplit(newCohereResponse(opts), stream, cut)
		for _, d := range sseDataLines(got) {
			if d != "[DONE]" && !json.Valid([]byte(d)) {
				t.Fatalf("invalid event %s from %q", d, stream)
			}
		}
		if whole := translateSplit(newCohereResponse(opts), stream, len(stream)); !bytes.Equal(got, whole) {
			t.Fatalf("output depends on the cut:\n split: %q\n whole: %q", got, whole)
		}
	})
}

func BenchmarkCohere_RequestBody(b *testing.B) {
	for _, name := range []string{"text", "tools"} {
		body := readFile(b, filepath.Join("testdata", "cohere", name+".request.json"))
		b.Run(name, func(b *testing.B) {
			tr := transform.NewOpenAIToCohereRequest(transform.Target{APIKey: "k"})
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := tr.RequestBody(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	body := readFile(b, filepath.Join("testdata", "anthropic", "chat_2k.request.json"))
	b.Run("chat_2k", func(b *testing.B) {
		tr := transform.NewOpenAIToCohereRequest(transform.Target{APIKey: "k"})
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := tr.RequestBody(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCohere_ResponseBody(b *testing.B) {
	body := readFile(b, filepath.Join("testdata", "cohere", "tool_call.response.json"))
	tr := newCohereResponse(transform.ResponseOptions{Created: created})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := tr.ResponseBody(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCohere_StreamChunk measures one content-delta event per
// operation.
func BenchmarkCohere_StreamChunk(b *testing.B) {
	ev := []byte("event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\" there\"}}}}\n\n")
	tr := newCohereResponse(transform.ResponseOptions{Stream: true, Created: created})
	b.ReportAllocs()
	b.SetBytes(int64(len(ev)))
	for b.Loop() {
		if _, err := tr.StreamChunk(ev, false); err != nil {
			b.Fatal(err)
		}
	}
}
