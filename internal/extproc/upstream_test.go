package extproc

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/tollgate-gw/tollgate/pkg/credentials"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

func TestUpstream_OpenAIPassThroughNeedsNoBodyCopy(t *testing.T) {
	c := startServer(t)
	body := `{"model":"gpt-4o-2024-08-06","messages":[{"role":"user","content":"hi"}]}`
	out := exchange(t, c, upstreamHeaders("openai-1", ":method", "POST", ":path", "/v1/chat/completions", "x-envoy-attempt-count", "1"), reqBody(body))
	if out[0].GetRequestHeaders() == nil {
		t.Fatalf("reply to request_headers = %v", out[0])
	}
	br := out[1].GetRequestBody().GetResponse()
	if br.GetBodyMutation() != nil {
		t.Errorf("body rewritten although the model name matches: %s", br.GetBodyMutation().GetBody())
	}
	if br.GetClearRouteCache() {
		t.Error("clear_route_cache is ignored upstream; it must not be sent")
	}
	set, removed := headers(br.GetHeaderMutation())
	if set[":path"] != "/v1/chat/completions" || set["authorization"] != "Bearer sk-openai" {
		t.Errorf("headers = %v", set)
	}
	for _, h := range []string{"x-api-key", headerPool, headerRequestID, "accept-encoding"} {
		if !removed[h] {
			t.Errorf("%s not removed", h)
		}
	}
	if out[1].GetDynamicMetadata() != nil {
		t.Errorf("the upstream filter writes metadata Envoy logs itself: %v", out[1].GetDynamicMetadata())
	}
}

func TestUpstream_ModelRewrittenWithLength(t *testing.T) {
	c := startServer(t)
	out := exchange(t, c, upstreamHeaders("openai-1", ":path", "/v1/chat/completions"), reqBody(chatBody))
	br := out[1].GetRequestBody().GetResponse()
	newBody := br.GetBodyMutation().GetBody()
	var got struct{ Model string }
	if err := json.Unmarshal(newBody, &got); err != nil || got.Model != "gpt-4o-2024-08-06" {
		t.Fatalf("body %s (%v)", newBody, err)
	}
	if set, _ := headers(br.GetHeaderMutation()); set["content-length"] != strconv.Itoa(len(newBody)) {
		t.Errorf("content-length %q for %d bytes", set["content-length"], len(newBody))
	}
}

func TestUpstream_AnthropicAttemptTranslates(t *testing.T) {
	c := startServer(t)
	body := `{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}`
	// A second attempt after the OpenAI deployment failed: it sees the
	// headers the first attempt left.
	out := exchange(t, c, upstreamHeaders("anthropic-1", ":path", "/v1/chat/completions", "authorization", "Bearer sk-openai", "x-envoy-attempt-count", "2"), reqBody(body))
	br := out[1].GetRequestBody().GetResponse()
	set, removed := headers(br.GetHeaderMutation())
	if set[":path"] != "/v1/messages" || set["x-api-key"] != "sk-ant" || set["anthropic-version"] == "" {
		t.Errorf("headers = %v", set)
	}
	if !removed["authorization"] {
		t.Error("the previous attempt's authorization header survives")
	}
	var params anthropic.MessageNewParams
	newBody := br.GetBodyMutation().GetBody()
	if err := json.Unmarshal(newBody, &params); err != nil {
		t.Fatalf("%s: %v", newBody, err)
	}
	if params.Model != "claude-sonnet-4-5" || params.MaxTokens != 100 || len(params.System) != 1 || params.System[0].Text != "be brief" {
		t.Errorf("translated = %s", newBody)
	}
	if set["content-length"] != strconv.Itoa(len(newBody)) {
		t.Errorf("content-length %q for %d bytes", set["content-length"], len(newBody))
	}

}

func TestUpstream_SameInputSameOutputAcrossAttempts(t *testing.T) {
	c := startServer(t)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}`
	a := exchange(t, c, upstreamHeaders("anthropic-1", ":path", "/v1/chat/completions"), reqBody(body))
	b := exchange(t, c, upstreamHeaders("anthropic-1", ":path", "/v1/chat/completions"), reqBody(body))
	if string(a[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody()) != string(b[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody()) {
		t.Error("two attempts over the same body translate differently")
	}
}

func TestUpstream_Errors(t *testing.T) {
	c := startServer(t)
	for _, tc := range []struct {
		name       string
		deployment string
		body       string
		status     int
	}{
		{"unknown deployment", "nope", "", 500},
		{"untranslatable body", "anthropic-1", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"n":3}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := exchange(t, c, upstreamHeaders(tc.deployment, ":path", "/v1/chat/completions"), reqBody(tc.body))
			imm := msgs[len(msgs)-1].GetImmediateResponse()
			if imm == nil || int(imm.GetStatus().GetCode()) != tc.status {
				t.Fatalf("reply %v", msgs[len(msgs)-1])
			}
			if set, _ := headers(imm.GetHeaders()); set[headerErrorSource] != "gateway" {
				t.Error("upstream local reply lacks the marker the router-level filter passes on")
			}
		})
	}
}

// fakeCredentials signs by echoing what it was asked to sign.
type fakeCredentials struct {
	got *credentials.Request
	err error
}

func (f *fakeCredentials) Apply(_ context.Context, r *credentials.Request) ([]transform.Header, error) {
	f.got = r
	if f.err != nil {
		return nil, f.err
	}
	return []transform.Header{{Key: "authorization", Value: "Signed " + r.Host + r.Path}}, nil
}

func TestUpstream_CredentialsSourceSignsTranslatedRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		wantErr bool
	}{{"signs", nil, false}, {"source fails", errors.New("token endpoint down"), true}} {
		t.Run(tc.name, func(t *testing.T) {
			rt := testRuntime(t)
			d, _ := rt.Routes.Deployment("anthropic-1")
			creds := &fakeCredentials{err: tc.err}
			d.Credentials = creds
			t.Cleanup(func() { d.Credentials = nil })
			srv := New(rt, Options{})
			u := &upstreamStream{srv: srv, rt: rt, deploymentID: "anthropic-1", replies: new(replies)}
			u.handle(t.Context(), upstreamHeaders("anthropic-1", ":path", "/v1/chat/completions"))
			resp := u.handle(t.Context(), reqBody(chatBody))
			if tc.wantErr {
				imm := resp.GetImmediateResponse()
				if imm.GetStatus().GetCode() != 503 || strings.Contains(string(imm.GetBody()), "token endpoint") {
					t.Fatalf("reply = %v", resp)
				}
				return
			}
			set, _ := headers(resp.GetRequestBody().GetResponse().GetHeaderMutation())
			if set["authorization"] != "Signed anthropic.test/v1/messages" {
				t.Errorf("authorization = %q", set["authorization"])
			}
			if string(creds.got.Body) != string(resp.GetRequestBody().GetResponse().GetBodyMutation().GetBody()) {
				t.Error("the source did not see the translated body")
			}
		})
	}
}
