package fakeprovider_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/openai/openai-go/v3"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/credentials"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

const (
	awsKeyID  = "AKIDFAKE"
	awsSecret = "fake/secret/key"
	brModel   = "us.anthropic.claude-sonnet-4-20250514-v1:0"
)

func bedrockClient(srv *fakeprovider.Server, secret string, opts ...func(*bedrockruntime.Options)) *bedrockruntime.Client {
	o := bedrockruntime.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL()),
		Credentials:      awscreds.NewStaticCredentialsProvider(awsKeyID, secret, ""),
		RetryMaxAttempts: 1,
	}
	for _, fn := range opts {
		fn(&o)
	}
	return bedrockruntime.New(o)
}

// withHeader adds a request header to every call, for x-fake-* scripting.
func withHeader(name, value string) func(*bedrockruntime.Options) {
	return func(o *bedrockruntime.Options) {
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue(name, value))
	}
}

func brUser(text string) types.Message {
	return types.Message{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: text}}}
}

var brWeatherTool = &types.ToolConfiguration{Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{
	Name:        aws.String("get_weather"),
	InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(map[string]any{"type": "object"})},
}}}}

func TestBedrock_Converse(t *testing.T) {
	toolTurns := []types.Message{
		brUser("weather please"),
		{Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{&types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
			ToolUseId: aws.String("tooluse_1"), Name: aws.String("get_weather"), Input: document.NewLazyDocument(map[string]any{"city": "Paris"}),
		}}}},
		{Role: types.ConversationRoleUser, Content: []types.ContentBlock{
			&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{ToolUseId: aws.String("tooluse_1"), Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: "sunny and warm"}}}},
			&types.ContentBlockMemberText{Value: "thanks"},
		}},
	}
	tests := []struct {
		name      string
		in        bedrockruntime.ConverseInput
		opts      []func(*bedrockruntime.Options)
		wantText  string
		wantTool  string
		wantStop  types.StopReason
		wantUsage types.TokenUsage
	}{
		{"echo", bedrockruntime.ConverseInput{Messages: []types.Message{brUser("hello big world")}},
			nil, "echo: hello big world", "", types.StopReasonEndTurn, types.TokenUsage{InputTokens: aws.Int32(3), OutputTokens: aws.Int32(4), TotalTokens: aws.Int32(7)}},
		// be brief (2) + weather please (2) + {"city":"Paris"} (1) +
		// sunny and warm (3) + thanks (1)
		{"tool round trip", bedrockruntime.ConverseInput{Messages: toolTurns, ToolConfig: brWeatherTool,
			System: []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "be brief"}}},
			nil, "echo: thanks", "", types.StopReasonEndTurn, types.TokenUsage{InputTokens: aws.Int32(9), OutputTokens: aws.Int32(2), TotalTokens: aws.Int32(11)}},
		{"forced tool", bedrockruntime.ConverseInput{Messages: []types.Message{brUser("in Paris")},
			ToolConfig: &types.ToolConfiguration{Tools: brWeatherTool.Tools, ToolChoice: &types.ToolChoiceMemberAny{}}},
			nil, "", "get_weather", types.StopReasonToolUse, types.TokenUsage{InputTokens: aws.Int32(2), OutputTokens: aws.Int32(2), TotalTokens: aws.Int32(4)}},
		{"max tokens", bedrockruntime.ConverseInput{Messages: []types.Message{brUser("x y z")}, InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(2)}},
			nil, "echo: x", "", types.StopReasonMaxTokens, types.TokenUsage{InputTokens: aws.Int32(3), OutputTokens: aws.Int32(2), TotalTokens: aws.Int32(5)}},
		{"cache tokens", bedrockruntime.ConverseInput{Messages: []types.Message{brUser("a b c d e f")}},
			[]func(*bedrockruntime.Options){withHeader(fakeprovider.HeaderCachedTokens, "2"), withHeader(fakeprovider.HeaderCacheWriteTokens, "3")},
			"echo: a b c d e f", "", types.StopReasonEndTurn,
			types.TokenUsage{InputTokens: aws.Int32(1), OutputTokens: aws.Int32(7), TotalTokens: aws.Int32(13), CacheReadInputTokens: aws.Int32(2), CacheWriteInputTokens: aws.Int32(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Bedrock, fakeprovider.WithAPIKey(awsSecret))
			in := tt.in
			in.ModelId = aws.String(brModel)
			out, err := bedrockClient(srv, awsSecret, tt.opts...).Converse(t.Context(), &in)
			if err != nil {
				t.Fatal(err)
			}
			msg := out.Output.(*types.ConverseOutputMemberMessage).Value
			var text, tool string
			for _, b := range msg.Content {
				switch b := b.(type) {
				case *types.ContentBlockMemberText:
					text += b.Value
				case *types.ContentBlockMemberToolUse:
					tool = *b.Value.Name
					var args map[string]string
					if err := b.Value.Input.UnmarshalSmithyDocument(&args); err != nil || args["text"] != "in Paris" || !strings.HasPrefix(*b.Value.ToolUseId, "tooluse_") {
						t.Errorf("tool input %v (%v), id %s", args, err, *b.Value.ToolUseId)
					}
				}
			}
			if text != tt.wantText || tool != tt.wantTool || out.StopReason != tt.wantStop || msg.Role != types.ConversationRoleAssistant {
				t.Errorf("text %q tool %q stop %q", text, tool, out.StopReason)
			}
			if u := out.Usage; *u.InputTokens != *tt.wantUsage.InputTokens || *u.OutputTokens != *tt.wantUsage.OutputTokens || *u.TotalTokens != *tt.wantUsage.TotalTokens ||
				aws.ToInt32(u.CacheReadInputTokens) != aws.ToInt32(tt.wantUsage.CacheReadInputTokens) || aws.ToInt32(u.CacheWriteInputTokens) != aws.ToInt32(tt.wantUsage.CacheWriteInputTokens) {
				t.Errorf("usage in %d out %d total %d", *u.InputTokens, *u.OutputTokens, *u.TotalTokens)
			}
			recs := srv.Requests()
			if len(recs) != 1 || recs[0].Status != http.StatusOK || recs[0].Path != "/model/"+brModel+"/converse" {
				t.Errorf("records = %+v", recs)
			}
		})
	}
}

func TestBedrock_ConverseStream(t *testing.T) {
	tests := []struct {
		name          string
		in            bedrockruntime.ConverseStreamInput
		opts          []func(*bedrockruntime.Options)
		wantText      string
		wantToolInput string
		wantStop      types.StopReason
		wantErr       string
	}{
		{name: "text", in: bedrockruntime.ConverseStreamInput{Messages: []types.Message{brUser("one two three")}},
			wantText: "echo: one two three", wantStop: types.StopReasonEndTurn},
		{name: "tool", in: bedrockruntime.ConverseStreamInput{Messages: []types.Message{brUser("in Paris")},
			ToolConfig: &types.ToolConfiguration{Tools: brWeatherTool.Tools, ToolChoice: &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String("get_weather")}}}},
			wantToolInput: `{"text":"in Paris"}`, wantStop: types.StopReasonToolUse},
		{name: "exception mid-stream", in: bedrockruntime.ConverseStreamInput{Messages: []types.Message{brUser("one two three")}},
			opts:     []func(*bedrockruntime.Options){withHeader(fakeprovider.HeaderStreamException, "throttlingException")},
			wantText: "echo: one two three", wantErr: "ThrottlingException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Bedrock, fakeprovider.WithAPIKey(awsSecret))
			in := tt.in
			in.ModelId = aws.String(brModel)
			out, err := bedrockClient(srv, awsSecret, tt.opts...).ConverseStream(t.Context(), &in)
			if err != nil {
				t.Fatal(err)
			}
			stream := out.GetStream()
			defer stream.Close()
			var text, input strings.Builder
			var stop types.StopReason
			var usage *types.TokenUsage
			events := 0
			for ev := range stream.Events() {
				events++
				switch ev := ev.(type) {
				case *types.ConverseStreamOutputMemberMessageStart:
					if events != 1 || ev.Value.Role != types.ConversationRoleAssistant {
						t.Errorf("messageStart at %d", events)
					}
				case *types.ConverseStreamOutputMemberContentBlockStart:
					if tu, ok := ev.Value.Start.(*types.ContentBlockStartMemberToolUse); !ok || *tu.Value.Name != "get_weather" {
						t.Errorf("start = %+v", ev.Value.Start)
					}
				case *types.ConverseStreamOutputMemberContentBlockDelta:
					switch d := ev.Value.Delta.(type) {
					case *types.ContentBlockDeltaMemberText:
						text.WriteString(d.Value)
					case *types.ContentBlockDeltaMemberToolUse:
						input.WriteString(*d.Value.Input)
					}
				case *types.ConverseStreamOutputMemberMessageStop:
					stop = ev.Value.StopReason
				case *types.ConverseStreamOutputMemberMetadata:
					usage = ev.Value.Usage
				}
			}
			if tt.wantErr != "" {
				if err := stream.Err(); errorCode(err) != tt.wantErr {
					t.Errorf("stream error = %v, want %s", err, tt.wantErr)
				}
			} else if err := stream.Err(); err != nil || usage == nil || *usage.TotalTokens == 0 {
				t.Errorf("err %v usage %+v", err, usage)
			}
			if text.String() != tt.wantText || input.String() != tt.wantToolInput || stop != tt.wantStop {
				t.Errorf("text %q input %q stop %q", text.String(), input.String(), stop)
			}
			if recs := srv.Requests(); len(recs) != 1 || recs[0].Path != "/model/"+brModel+"/converse-stream" {
				t.Errorf("records = %+v", recs)
			}
		})
	}
}

func TestBedrock_Errors(t *testing.T) {
	valid := bedrockruntime.ConverseInput{Messages: []types.Message{brUser("hi")}}
	tests := []struct {
		name    string
		secret  string
		srvOpts []fakeprovider.Option
		step    *fakeprovider.Step
		in      bedrockruntime.ConverseInput
		want    string
		wantMsg string
	}{
		{name: "wrong secret", secret: "other", in: valid, want: "InvalidSignatureException", wantMsg: "signature we calculated does not match"},
		{name: "scripted throttling", secret: awsSecret, step: &fakeprovider.Step{Status: 429}, in: valid, want: "ThrottlingException"},
		{name: "scripted model error", secret: awsSecret, step: &fakeprovider.Step{Status: 424}, in: valid, want: "ModelErrorException"},
		{name: "scripted unavailable", secret: awsSecret, step: &fakeprovider.Step{Status: 503}, in: valid, want: "ServiceUnavailableException"},
		{name: "assistant first", secret: awsSecret, in: bedrockruntime.ConverseInput{Messages: []types.Message{
			{Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "x"}}}, brUser("hi")}},
			want: "ValidationException", wantMsg: "must start with a user message"},
		{name: "no alternation", secret: awsSecret, in: bedrockruntime.ConverseInput{Messages: []types.Message{brUser("a"), brUser("b")}},
			want: "ValidationException", wantMsg: "alternate"},
		{name: "blank text", secret: awsSecret, in: bedrockruntime.ConverseInput{Messages: []types.Message{brUser(" ")}},
			want: "ValidationException", wantMsg: "is blank"},
		{name: "tool use without tool config", secret: awsSecret, in: bedrockruntime.ConverseInput{Messages: []types.Message{
			brUser("a"),
			{Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{&types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{ToolUseId: aws.String("t1"), Name: aws.String("f"), Input: document.NewLazyDocument(map[string]any{})}}}},
			{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{ToolUseId: aws.String("t1"), Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: "r"}}}}}},
		}}, want: "ValidationException", wantMsg: "toolConfig field must be defined"},
		{name: "tool result for an unknown call", secret: awsSecret, in: bedrockruntime.ConverseInput{ToolConfig: brWeatherTool, Messages: []types.Message{
			brUser("a"),
			{Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "ok"}}},
			{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{ToolUseId: aws.String("t9"), Content: []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: "r"}}}}}},
		}}, want: "ValidationException", wantMsg: "not in the previous assistant turn"},
		{name: "empty tool name", secret: awsSecret, in: bedrockruntime.ConverseInput{Messages: []types.Message{brUser("a")}, ToolConfig: &types.ToolConfiguration{Tools: []types.Tool{
			&types.ToolMemberToolSpec{Value: types.ToolSpecification{Name: aws.String(""), InputSchema: brWeatherTool.Tools[0].(*types.ToolMemberToolSpec).Value.InputSchema}}}}},
			want: "ValidationException", wantMsg: "toolSpec.name"},
		{name: "context window", secret: awsSecret, srvOpts: []fakeprovider.Option{fakeprovider.WithContextWindow(2)}, in: bedrockruntime.ConverseInput{Messages: []types.Message{brUser("a b c")}},
			want: "ValidationException", wantMsg: "prompt is too long"},
		{name: "unknown model", secret: awsSecret, srvOpts: []fakeprovider.Option{fakeprovider.WithModels("other")}, in: valid,
			want: "ValidationException", wantMsg: "model identifier is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Bedrock, append([]fakeprovider.Option{fakeprovider.WithAPIKey(awsSecret)}, tt.srvOpts...)...)
			if tt.step != nil {
				srv.Enqueue(*tt.step)
			}
			in := tt.in
			in.ModelId = aws.String(brModel)
			_, err := bedrockClient(srv, tt.secret).Converse(t.Context(), &in)
			if err == nil {
				t.Fatal("no error")
			}
			if errorCode(err) != tt.want {
				t.Errorf("err = %v, want %s", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want %q", err, tt.wantMsg)
			}
		})
	}
}

// errorCode is the AWS error code the SDK read from a response: the
// modelled exceptions' and the codes it has no type for alike.
func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// TestBedrock_Translated drives the fake with Tollgate's own pieces: every
// translator request fixture, signed by the SigV4 source, must be accepted,
// and the fake's answers must translate into chat completions and chunks
// the OpenAI SDK reads.
func TestBedrock_Translated(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Bedrock, fakeprovider.WithAPIKey(awsSecret))
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := credentials.NewAWS(t.Context(), credentials.AWSOptions{Region: "us-east-1", AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, SessionToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob("../../pkg/transform/testdata/bedrock/*.request.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no request fixtures: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tr := transform.NewOpenAIToBedrockRequest(transform.Target{Model: brModel})
			req, err := tr.RequestBody(body)
			if err != nil {
				t.Fatal(err)
			}
			hreq, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+req.Path, bytes.NewReader(req.Body))
			for _, h := range req.SetHeaders {
				hreq.Header.Set(h.Key, h.Value)
			}
			auth, err := signer.Apply(t.Context(), &credentials.Request{Method: http.MethodPost, Host: u.Host, Path: req.Path, Body: req.Body})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range auth {
				hreq.Header.Set(h.Key, h.Value)
			}
			resp, err := http.DefaultClient.Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s\nrequest: %s", resp.StatusCode, out, req.Body)
			}
			rctx := transform.BedrockResponseContext{Model: brModel, ToolNames: tr.(transform.ToolNameMapper).ToolNames()}
			opts := transform.ResponseOptions{Stream: req.Stream, IncludeUsage: true, Created: 1}
			rt := transform.NewOpenAIToBedrockResponse(opts, rctx)
			if !req.Stream {
				res, err := rt.ResponseBody(out)
				if err != nil {
					t.Fatal(err)
				}
				var c openai.ChatCompletion
				if err := json.Unmarshal(res.Body, &c); err != nil || len(c.Choices) != 1 || res.Usage.InputTokens == 0 {
					t.Fatalf("%v: %s", err, res.Body)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.amazon.eventstream" {
				t.Errorf("content-type %q", ct)
			}
			res, err := rt.StreamChunk(out, true)
			if err != nil || !res.Done || res.Usage.InputTokens == 0 {
				t.Fatalf("%v %+v", err, res)
			}
			for _, line := range strings.Split(string(res.Body), "\n") {
				d, ok := strings.CutPrefix(line, "data: ")
				if !ok || d == "[DONE]" {
					continue
				}
				var c openai.ChatCompletionChunk
				if err := json.Unmarshal([]byte(d), &c); err != nil {
					t.Fatalf("%v: %s", err, d)
				}
			}
		})
	}
}

// TestBedrock_TranslatedErrors checks the translator maps the fake's error
// responses, status and body only as Envoy hands them over.
func TestBedrock_TranslatedErrors(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		reply    string
		wantType transform.ErrorType
		wantCode string
	}{
		{"throttled", 429, "", transform.ErrorTypeRateLimit, ""},
		{"unavailable", 503, "", transform.ErrorTypeOverloaded, ""},
		{"context window", 0, "a b c d", transform.ErrorTypeInvalidRequest, transform.CodeContextLengthExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Bedrock, fakeprovider.WithContextWindow(3))
			if tt.status != 0 {
				srv.Enqueue(fakeprovider.Step{Status: tt.status})
			}
			body := `{"messages":[{"role":"user","content":"hi"}]}`
			if tt.reply != "" {
				body = `{"messages":[{"role":"user","content":"` + tt.reply + `"}]}`
			}
			req, err := transform.NewOpenAIToBedrockRequest(transform.Target{Model: brModel}).RequestBody([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Post(srv.URL()+req.Path, "application/json", bytes.NewReader(req.Body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			out, _ := io.ReadAll(resp.Body)
			if resp.Header.Get("X-Amzn-Errortype") == "" {
				t.Error("no x-amzn-errortype header")
			}
			e := transform.NewOpenAIToBedrockResponse(transform.ResponseOptions{}, transform.BedrockResponseContext{}).ErrorBody(resp.StatusCode, out)
			if e.Type != tt.wantType || e.Code != tt.wantCode {
				t.Errorf("error = %+v from %d %s", e, resp.StatusCode, out)
			}
		})
	}
}
