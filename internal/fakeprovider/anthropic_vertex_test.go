package fakeprovider_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
)

const vertexClaudePath = "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"

// vertexMiddleware rewrites the SDK's Messages requests for Claude on
// Vertex AI the way anthropic-sdk-go's vertex package does (that package
// needs modules this one does not require): the model moves from the body
// to the path, anthropic_version goes into the body, and a bearer token
// replaces x-api-key.
func vertexMiddleware(token string) option.Middleware {
	return func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		model := gjson.GetBytes(body, "model").String()
		method := "rawPredict"
		if gjson.GetBytes(body, "stream").Bool() {
			method = "streamRawPredict"
		}
		body, _ = sjson.DeleteBytes(body, "model")
		body, _ = sjson.SetBytes(body, "anthropic_version", "vertex-2023-10-16")
		r.URL.Path = fmt.Sprintf("/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/%s:%s", model, method)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Del("X-Api-Key")
		r.Header.Set("Authorization", "Bearer "+token)
		return next(r)
	}
}

func TestAnthropicVertex_Messages(t *testing.T) {
	srv := fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey("vertex-token"))
	client := anthropic.NewClient(option.WithBaseURL(srv.URL()), option.WithAPIKey("unused"), option.WithMaxRetries(0),
		option.WithMiddleware(vertexMiddleware("vertex-token")))
	params := anthropic.MessageNewParams{Model: "claude-sonnet-4-5@20250929", MaxTokens: 100,
		System:   []anthropic.TextBlockParam{{Text: "be brief"}},
		Messages: []anthropic.MessageParam{anUser("hello big world")}}

	msg, err := client.Messages.New(t.Context(), params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Model != "claude-sonnet-4-5@20250929" {
		t.Errorf("model %q, want the path's", msg.Model)
	}
	checkAnthropicMessage(t, msg, "echo: hello big world", "", "", anthropic.StopReasonEndTurn, anUsageWant{in: 5, out: 4})

	stream := client.Messages.NewStreaming(t.Context(), params)
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	checkAnthropicMessage(t, &acc, "echo: hello big world", "", "", anthropic.StopReasonEndTurn, anUsageWant{in: 5, out: 4})

	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Path != vertexClaudePath+":rawPredict" || reqs[1].Path != vertexClaudePath+":streamRawPredict" {
		t.Errorf("requests %+v", reqs)
	}
	// /v1/messages keeps working on the same fake.
	plain := anthropicClient(srv, option.WithAPIKey("vertex-token"))
	if _, err := plain.Messages.New(t.Context(), params); err != nil {
		t.Errorf("/v1/messages: %v", err)
	}
}

func TestAnthropicVertex_Errors(t *testing.T) {
	const ok = `{"anthropic_version":"vertex-2023-10-16","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	bearer := http.Header{"Authorization": {"Bearer vertex-token"}}
	tests := []struct {
		name     string
		path     string
		body     string
		header   http.Header
		wantCode int
		wantType string
		wantErr  string
	}{
		{name: "ok", body: ok, header: bearer, wantCode: 200},
		{name: "model in the body is tolerated", body: `{"model":"other","anthropic_version":"vertex-2023-10-16","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			header: bearer, wantCode: 200},
		{name: "v1beta1", path: "/v1beta1/projects/p/locations/global/publishers/anthropic/models/claude-x:rawPredict", body: ok, header: bearer, wantCode: 200},
		{name: "no token", body: ok, wantCode: 401, wantType: "authentication_error", wantErr: "OAuth 2 access token"},
		{name: "x-api-key is no token", body: ok, header: http.Header{"X-Api-Key": {"vertex-token"}}, wantCode: 401, wantType: "authentication_error"},
		{name: "wrong token", body: ok, header: http.Header{"Authorization": {"Bearer nope"}}, wantCode: 401, wantType: "authentication_error"},
		{name: "missing anthropic_version", body: `{"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, header: bearer,
			wantCode: 400, wantType: "invalid_request_error", wantErr: "anthropic_version: Field required"},
		{name: "first-party anthropic_version", body: `{"anthropic_version":"2023-06-01","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, header: bearer,
			wantCode: 400, wantType: "invalid_request_error", wantErr: `anthropic_version: invalid version "2023-06-01"`},
		{name: "stream body on rawPredict", body: `{"anthropic_version":"vertex-2023-10-16","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			header: bearer, wantCode: 400, wantType: "invalid_request_error", wantErr: "stream: must be false"},
		{name: "non-stream body on streamRawPredict", path: vertexClaudePath + ":streamRawPredict", body: ok, header: bearer,
			wantCode: 400, wantType: "invalid_request_error", wantErr: "stream: must be true"},
		{name: "anthropic validation applies", body: `{"anthropic_version":"vertex-2023-10-16","max_tokens":10,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
			header: bearer, wantCode: 400, wantType: "invalid_request_error", wantErr: `multiple "user" roles in a row`},
		{name: "unknown field", body: `{"anthropic_version":"vertex-2023-10-16","max_tokens":10,"n":2,"messages":[{"role":"user","content":"a"}]}`,
			header: bearer, wantCode: 400, wantType: "invalid_request_error", wantErr: "n: Extra inputs are not permitted"},
		{name: "google publisher", path: "/v1/projects/p/locations/l/publishers/google/models/claude-x:rawPredict", body: ok, header: bearer,
			wantCode: 404, wantType: "not_found_error"},
		{name: "unknown method", path: "/v1/projects/p/locations/l/publishers/anthropic/models/claude-x:predict", body: ok, header: bearer,
			wantCode: 404, wantType: "not_found_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey("vertex-token"))
			path := tt.path
			if path == "" {
				path = vertexClaudePath + ":rawPredict"
			}
			code, body := postGemini(t, srv, path, tt.body, tt.header)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tt.wantCode, body)
			}
			if code == 200 {
				if gjson.GetBytes(body, "type").Str != "message" || !strings.HasPrefix(gjson.GetBytes(body, "model").Str, "claude-") {
					t.Errorf("body %s", body)
				}
				return
			}
			if typ := gjson.GetBytes(body, "error.type").Str; gjson.GetBytes(body, "type").Str != "error" || typ != tt.wantType {
				t.Errorf("error type %q, want %q: %s", typ, tt.wantType, body)
			}
			if msg := gjson.GetBytes(body, "error.message").Str; !strings.Contains(msg, tt.wantErr) {
				t.Errorf("message %q, want %q", msg, tt.wantErr)
			}
		})
	}
}
