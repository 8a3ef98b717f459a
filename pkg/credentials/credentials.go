// Package credentials authorizes upstream requests whose provider needs
// more than a static API key header: request signing (AWS SigV4) and
// short-lived tokens (Google OAuth, Azure Entra ID).
//
// A Source is built once per deployment from config and shared by every
// stream, so implementations are safe for concurrent use. Tokens are
// minted and refreshed off the request path where possible; Apply must not
// block on the network when a valid cached credential exists.
package credentials

import (
	"context"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// Request is the translated upstream request a Source authorizes. Body is
// the exact body that will be sent (signatures cover it).
type Request struct {
	Method string
	// Host is the upstream authority (the deployment's base URL host).
	Host string
	// Path is the :path, query included.
	Path    string
	Headers []transform.Header
	Body    []byte
}

// Source returns the headers that authorize a request, replacing any
// credential headers the translator set. Errors mean the request cannot be
// authorized now (for example, a token endpoint is down); the caller fails
// the attempt so Envoy can try another deployment.
type Source interface {
	Apply(ctx context.Context, r *Request) ([]transform.Header, error)
}
