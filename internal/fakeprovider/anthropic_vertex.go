package fakeprovider

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// The Anthropic fake also serves Claude on Vertex AI, which is the Messages
// API behind a Google path:
//
//	POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict
//	POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:streamRawPredict
//
// authorized by Authorization: Bearer <token> (WithAPIKey sets the expected
// token) instead of x-api-key. The body carries
// "anthropic_version":"vertex-2023-10-16" instead of the anthropic-version
// header, and the path, not the body, names the model. Everything else
// (validation, replies, streams, errors) is the Anthropic fake's.

// vertexAnthropicVersions are the anthropic_version values Vertex accepts.
var vertexAnthropicVersions = []string{"vertex-2023-10-16"}

// anthropicVertexRoute is what a Claude-on-Vertex path says.
type anthropicVertexRoute struct {
	ok     bool
	model  string
	stream bool
}

func parseAnthropicVertexRoute(path string) anthropicVertexRoute {
	rest, method, ok := strings.Cut(path, ":")
	if !ok || method != "rawPredict" && method != "streamRawPredict" {
		return anthropicVertexRoute{}
	}
	segs := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if len(segs) != 9 || segs[0] != "v1" && segs[0] != "v1beta1" || segs[1] != "projects" || segs[3] != "locations" ||
		segs[5] != "publishers" || segs[6] != "anthropic" || segs[7] != "models" {
		return anthropicVertexRoute{}
	}
	for _, s := range segs {
		if s == "" {
			return anthropicVertexRoute{}
		}
	}
	return anthropicVertexRoute{ok: true, model: segs[8], stream: method == "streamRawPredict"}
}

var (
	_ pathRouted = (*anthropicAPI)(nil)
	_ provider   = (*anthropicVertexAPI)(nil)
)

// forRequest implements pathRouted: Vertex paths get the Vertex flavour.
func (a *anthropicAPI) forRequest(u *url.URL) provider {
	if r := parseAnthropicVertexRoute(u.Path); r.ok {
		return &anthropicVertexAPI{route: r}
	}
	return a
}

// anthropicVertexAPI is the Anthropic fake bound to one Vertex request.
type anthropicVertexAPI struct {
	anthropicAPI
	route anthropicVertexRoute
}

func (*anthropicVertexAPI) authenticate(h http.Header, key string) *apiError {
	if key != "" && h.Get("Authorization") != "Bearer "+key {
		return &apiError{Status: http.StatusUnauthorized, Type: "authentication_error",
			Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."}
	}
	return nil
}

// parse checks what Vertex adds, then hands the Anthropic validation a body
// with the path's model in place of anthropic_version.
func (v *anthropicVertexAPI) parse(h http.Header, body []byte) (*call, *apiError) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return nil, anInvalid("There was an issue with your request body: it must be a valid JSON object")
	}
	switch av := gjson.GetBytes(body, "anthropic_version"); {
	case !av.Exists():
		return nil, anInvalid("anthropic_version: Field required")
	case av.Type != gjson.String || !slices.Contains(vertexAnthropicVersions, av.Str):
		return nil, anInvalid(fmt.Sprintf("anthropic_version: invalid version %s", av.Raw))
	}
	if s := gjson.GetBytes(body, "stream"); (s.Type == gjson.True) != v.route.stream {
		return nil, anInvalid(fmt.Sprintf("stream: must be %v for this method", v.route.stream))
	}
	inner, err := sjson.DeleteBytes(body, "anthropic_version")
	if err == nil {
		inner, err = sjson.SetBytes(inner, "model", v.route.model)
	}
	if err != nil {
		return nil, anInvalid("There was an issue with your request body: " + err.Error())
	}
	return v.anthropicAPI.parse(h, inner)
}
