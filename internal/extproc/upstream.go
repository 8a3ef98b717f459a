package extproc

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/pkg/credentials"
	"github.com/tollgate-gw/tollgate/pkg/routing"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// upstreamRemovedHeaders never reach a provider: gateway-internal headers,
// and accept-encoding so providers answer uncompressed bytes the
// translators can read.
var upstreamRemovedHeaders = []string{headerPool, headerRequestID, "accept-encoding"}

// upstreamStream is the upstream filter's view of one attempt: Envoy has
// picked the deployment; the request is translated for it.
type upstreamStream struct {
	srv          *Server
	rt           *config.Runtime
	deploymentID string

	deployment *routing.Deployment
	api        transform.API
	translator transform.RequestTranslator
	body       []byte

	// replies holds the reply being built; Process hands it over per
	// message.
	replies *replies
}

func (u *upstreamStream) use(p *replies) { u.replies = p }

func (u *upstreamStream) handle(ctx context.Context, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch m := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return u.requestHeaders(ctx, req, m.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		return u.requestBody(ctx, m.RequestBody)
	}
	return replyInKind(req)
}

// reject ends the attempt with a local reply. Envoy never retries those, so
// only errors that no other deployment would fix belong here.
func (u *upstreamStream) reject(ctx context.Context, err error) *extprocv3.ProcessingResponse {
	e, known := classify(err)
	if !known {
		u.srv.log.LogAttrs(ctx, slog.LevelError, "attempt failed",
			slog.String("deployment", u.deploymentID), slog.Any("error", err))
	}
	resp := immediateError(u.api, e)
	imm := resp.GetImmediateResponse()
	imm.Headers.SetHeaders = append(imm.Headers.SetHeaders, setHeader(headerErrorSource, "gateway"))
	return resp
}

func (u *upstreamStream) requestHeaders(ctx context.Context, req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	d, err := u.rt.Routes.Deployment(u.deploymentID)
	if err != nil {
		return u.reject(ctx, err)
	}
	u.deployment = d
	u.api = transform.API(metadataFields(req)[mdAPI].GetStringValue())
	target := d.Target()
	// The router-level filter writes the api only once it has checked that
	// the body is a JSON object, and the body reaches this filter as it
	// was: validating it again here would be a second pass for nothing.
	target.BodyValidated = u.api != ""
	if u.api == "" {
		u.api = transform.APIChatCompletions
	}
	if u.translator, err = transform.NewRequestTranslator(u.api, d.Provider, target); err != nil {
		return u.reject(ctx, err)
	}
	if h.GetEndOfStream() {
		return u.reject(ctx, badRequest("", "missing_body", "the request has no body"))
	}
	// Mutations wait for the body reply: in BUFFERED mode Envoy still holds
	// the headers then, and path, auth and length are all known at once.
	u.replies.begin()
	return u.replies.requestHeaders(nil)
}

func (u *upstreamStream) requestBody(ctx context.Context, b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	if u.translator == nil {
		return u.reject(ctx, errNoHeaders)
	}
	body := b.GetBody()
	if !b.GetEndOfStream() || u.body != nil {
		u.body = append(u.body, body...)
		if !b.GetEndOfStream() {
			u.replies.begin()
			return u.replies.requestBody(nil)
		}
		body = u.body
	}
	res, err := u.translator.RequestBody(body)
	if err != nil {
		return u.reject(ctx, err)
	}
	if creds := u.deployment.Credentials; creds != nil {
		sent := res.Body
		if sent == nil {
			sent = body
		}
		// Signatures cover the exact path, headers and bytes sent, so the
		// source sees the translated request.
		auth, err := creds.Apply(ctx, &credentials.Request{
			Method: http.MethodPost, Host: u.deployment.Host, Path: res.Path, Headers: res.SetHeaders, Body: sent,
		})
		if err != nil {
			// A local reply from an upstream filter is final in Envoy (no
			// retry), so this attempt's failure is the client's answer.
			return u.reject(ctx, fmt.Errorf("%w: deployment %s: %w", errCredentials, u.deployment.ID, err))
		}
		res.SetHeaders = append(res.SetHeaders, auth...)
	}
	// Attempt k sees the headers attempt k-1 left: every header this filter
	// may have set is set or removed again.
	m := u.replies.begin()
	m.remove(upstreamRemovedHeaders...)
	m.remove(res.RemoveHeaders...)
	m.set(":path", res.Path)
	m.setTranslated(res.SetHeaders)
	if res.Body != nil {
		// Envoy keeps content-length in BUFFERED mode and fails the request
		// when the new body does not match it.
		m.setInt(headerContentLen, int64(len(res.Body)))
		u.replies.replaceBody(res.Body)
	}
	return u.replies.requestBody(u.replies.common())
}

func (u *upstreamStream) finish(context.Context) {}
