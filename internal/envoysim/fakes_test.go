package envoysim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-gw/tollgate/internal/envoyconfig"
)

// errCloseOK makes the fake server end the stream with status OK.
var errCloseOK = errors.New("close ok")

// handlerFunc scripts the fake ext_proc server: it returns the replies to
// one message (none, one, or several), or an error to end the stream
// (errCloseOK for a clean close, a status error otherwise).
type handlerFunc func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error)

// fakeStream is one Process stream as the fake server saw it.
type fakeStream struct {
	srv      procv3.ExternalProcessor_ProcessServer
	upstream bool
	mu       sync.Mutex
	msgs     []*procv3.ProcessingRequest
	ended    chan struct{}
}

// sendNow sends a reply at once, before the handler returns.
func (s *fakeStream) sendNow(r *procv3.ProcessingResponse) {
	_ = s.srv.Send(r)
}

func (s *fakeStream) messages() []*procv3.ProcessingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*procv3.ProcessingRequest(nil), s.msgs...)
}

// fakeExtProc is a scriptable in-process ext_proc server.
type fakeExtProc struct {
	procv3.UnimplementedExternalProcessorServer
	handler handlerFunc
	addr    string

	mu      sync.Mutex
	streams []*fakeStream
}

func startExtProc(t *testing.T, h handlerFunc) *fakeExtProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeExtProc{handler: h, addr: ln.Addr().String()}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	procv3.RegisterExternalProcessorServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return f
}

func (f *fakeExtProc) Process(srv procv3.ExternalProcessor_ProcessServer) error {
	st := &fakeStream{srv: srv, ended: make(chan struct{})}
	defer close(st.ended)
	first := true
	for {
		req, err := srv.Recv()
		if err != nil {
			return nil
		}
		if first {
			first = false
			_, st.upstream = req.GetAttributes()[attributesKey].GetFields()["xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"]
			f.mu.Lock()
			f.streams = append(f.streams, st)
			f.mu.Unlock()
		}
		st.mu.Lock()
		st.msgs = append(st.msgs, req)
		st.mu.Unlock()
		replies, err := f.handler(st, req)
		if errors.Is(err, errCloseOK) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, r := range replies {
			if err := srv.Send(r); err != nil {
				return nil
			}
		}
	}
}

func (f *fakeExtProc) all() []*fakeStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeStream(nil), f.streams...)
}

// byKind splits the recorded streams into router-level and upstream ones.
func (f *fakeExtProc) byKind() (router, upstream []*fakeStream) {
	for _, s := range f.all() {
		if s.upstream {
			upstream = append(upstream, s)
		} else {
			router = append(router, s)
		}
	}
	return router, upstream
}

// cont answers any message with an empty reply of the matching kind.
func cont(req *procv3.ProcessingRequest) *procv3.ProcessingResponse {
	return reply(req, &procv3.CommonResponse{})
}

// reply answers req with cr in the matching oneof.
func reply(req *procv3.ProcessingRequest, cr *procv3.CommonResponse) *procv3.ProcessingResponse {
	switch req.GetRequest().(type) {
	case *procv3.ProcessingRequest_RequestHeaders:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestHeaders{RequestHeaders: &procv3.HeadersResponse{Response: cr}}}
	case *procv3.ProcessingRequest_ResponseHeaders:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &procv3.HeadersResponse{Response: cr}}}
	case *procv3.ProcessingRequest_RequestBody:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestBody{RequestBody: &procv3.BodyResponse{Response: cr}}}
	case *procv3.ProcessingRequest_ResponseBody:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseBody{ResponseBody: &procv3.BodyResponse{Response: cr}}}
	case *procv3.ProcessingRequest_RequestTrailers:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestTrailers{RequestTrailers: &procv3.TrailersResponse{}}}
	default:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &procv3.TrailersResponse{}}}
	}
}

func one(r *procv3.ProcessingResponse) ([]*procv3.ProcessingResponse, error) {
	return []*procv3.ProcessingResponse{r}, nil
}

// routeToPool is the usual router-level script: on the request body (or
// headers when there is no body) set x-tollgate-pool with clear_route_cache.
func routeToPool(pool string) *procv3.CommonResponse {
	return &procv3.CommonResponse{HeaderMutation: setHeaders("x-tollgate-pool", pool), ClearRouteCache: true}
}

func setHeaders(kv ...string) *procv3.HeaderMutation {
	hm := &procv3.HeaderMutation{}
	for i := 0; i+1 < len(kv); i += 2 {
		hm.SetHeaders = append(hm.SetHeaders, hv(kv[i], kv[i+1]))
	}
	return hm
}

// defaultHandler routes every request to pool on the request body, and
// continues everything else.
func defaultHandler(pool string) handlerFunc {
	return func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			return one(reply(req, routeToPool(pool)))
		}
		return one(cont(req))
	}
}

// upstreamRecorder is an httptest upstream that records requests.
type upstreamRecorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []recorded
}

type recorded struct {
	header http.Header
	host   string
	path   string
	body   string
}

func startUpstream(t *testing.T, h http.HandlerFunc) *upstreamRecorder {
	t.Helper()
	u := &upstreamRecorder{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got = append(u.got, recorded{r.Header.Clone(), r.Host, r.URL.RequestURI(), string(b)})
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("content-type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstreamRecorder) addr() string { return u.srv.Listener.Addr().String() }

func (u *upstreamRecorder) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.got...)
}

// status returns a handler answering with code.
func statusHandler(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, "status %d", code)
	}
}

// simConfig fills the test bootstrap template.
type simConfig struct {
	ListenerLimit  int
	RouterExtra    string // extra ExternalProcessor fields, router level
	RouterMode     string
	NoUpstreamProc bool
	UpstreamExtra  string
	UpstreamMode   string
	RouteExtra     string // extra RouteAction fields (retry_policy, timeout)
	RouteLimit     int
	PoolExtra      string // extra Cluster fields
	Endpoints      string // load_assignment.endpoints of tollgate_pool_a
	Overprov       int
	// ADS adds dynamic_resources (ADS with CDS) and an xds_cluster, and
	// leaves tollgate_pool_a to CDS.
	ADS bool
	// AttemptCountInResponse sets the virtual host's
	// include_attempt_count_in_response.
	AttemptCountInResponse bool
	// UpstreamMessageTimeout is the upstream filter's message_timeout
	// ("2s" when empty).
	UpstreamMessageTimeout string
}

const bootstrapTmpl = `
{{- if .ADS}}
node: {id: envoysim-test, cluster: tollgate}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services: [{envoy_grpc: {cluster_name: xds_cluster}}]
  cds_config: {resource_api_version: V3, ads: {}}
{{- end}}
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    per_connection_buffer_limit_bytes: {{.ListenerLimit}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              include_request_attempt_count: true
              include_attempt_count_in_response: {{.AttemptCountInResponse}}
              routes:
              - match: {prefix: /key/}
                route: {cluster: admin}
                typed_per_filter_config:
                  envoy.filters.http.ext_proc:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute
                    disabled: true
              - match: {prefix: /, headers: [{name: x-tollgate-pool, present_match: true}]}
                route:
                  cluster_header: x-tollgate-pool
                  auto_host_rewrite: true
{{.RouteExtra}}
{{- if .RouteLimit}}
                request_body_buffer_limit: {{.RouteLimit}}
{{- end}}
              - match: {prefix: /}
                direct_response: {status: 404, body: {inline_string: '{"error":{"message":"no route"}}'}}
                response_headers_to_add:
                - header: {key: content-type, value: application/json}
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
          http_filters:
          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              grpc_service: {envoy_grpc: {cluster_name: extproc}, timeout: 30s}
              message_timeout: 2s
              allow_mode_override: true
              processing_mode: {{.RouterMode}}
              metadata_options:
                receiving_namespaces: {untyped: [tollgate]}
                forwarding_namespaces: {untyped: [tollgate]}
{{.RouterExtra}}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: extproc
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: extproc
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]
  - name: admin
    type: STATIC
    load_assignment:
      cluster_name: admin
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]
{{- if .ADS}}
  - name: xds_cluster
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: xds_cluster
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]
{{- else}}
  - name: tollgate_pool_a
    type: STATIC
{{.PoolExtra}}
{{- if not .NoUpstreamProc}}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http_protocol_options: {}}
        http_filters:
        - name: envoy.filters.http.ext_proc
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
            grpc_service: {envoy_grpc: {cluster_name: extproc}, timeout: 30s}
            message_timeout: {{.UpstreamMessageTimeout}}
            processing_mode: {{.UpstreamMode}}
            request_attributes: ["xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"]
            metadata_options:
              receiving_namespaces: {untyped: [tollgate]}
              forwarding_namespaces: {untyped: [tollgate]}
{{.UpstreamExtra}}
        - name: envoy.filters.http.upstream_codec
          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec}
{{- end}}
    load_assignment:
      cluster_name: tollgate_pool_a
      policy: {overprovisioning_factor: {{.Overprov}}}
      endpoints:
{{.Endpoints}}
{{- end}}
`

// endpoint renders one priority with one endpoint per deployment id.
func endpoints(prios ...[]string) string {
	var b strings.Builder
	for p, deps := range prios {
		fmt.Fprintf(&b, "      - priority: %d\n        lb_endpoints:\n", p)
		for _, d := range deps {
			fmt.Fprintf(&b, "        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}, hostname: %s.example}\n", d)
			fmt.Fprintf(&b, "          metadata: {filter_metadata: {tollgate: {deployment: %s}}}\n", d)
		}
	}
	return b.String()
}

const (
	routerModeDefault   = "{request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SEND, response_body_mode: BUFFERED, request_trailer_mode: SKIP, response_trailer_mode: SKIP}"
	upstreamModeDefault = "{request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SKIP, response_body_mode: NONE}"
)

// testEnv is a running sim with its fake ext_proc server.
type testEnv struct {
	sim  *Sim
	proc *fakeExtProc
}

// renderBootstrap fills the test template, with defaults for what cfg
// leaves empty, and parses it.
func renderBootstrap(t *testing.T, cfg simConfig) *bootstrapv3.Bootstrap {
	t.Helper()
	if cfg.ListenerLimit == 0 {
		cfg.ListenerLimit = 1 << 20
	}
	if cfg.RouterMode == "" {
		cfg.RouterMode = routerModeDefault
	}
	if cfg.UpstreamMode == "" {
		cfg.UpstreamMode = upstreamModeDefault
	}
	if cfg.UpstreamMessageTimeout == "" {
		cfg.UpstreamMessageTimeout = "2s"
	}
	if cfg.Endpoints == "" {
		cfg.Endpoints = endpoints([]string{"dep-a"})
	}
	if cfg.Overprov == 0 {
		cfg.Overprov = 140
	}
	var buf bytes.Buffer
	if err := template.Must(template.New("b").Parse(bootstrapTmpl)).Execute(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	b, err := envoyconfig.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("test bootstrap: %v\n%s", err, buf.String())
	}
	return b
}

// startSim renders cfg, points extproc at proc and the pool endpoints at
// pool (one address per endpoint), and starts the sim.
func startSim(t *testing.T, cfg simConfig, proc *fakeExtProc, pool []string, mutate func(*Options)) *testEnv {
	t.Helper()
	b := renderBootstrap(t, cfg)
	o := Options{ListenAddr: "127.0.0.1:0", ClusterOverrides: map[string][]string{}, BackoffDisabled: true}
	if pool != nil {
		o.ClusterOverrides["tollgate_pool_a"] = pool
	}
	if proc != nil {
		o.ClusterOverrides["extproc"] = []string{proc.addr}
	}
	if mutate != nil {
		mutate(&o)
	}
	sim, err := New(b, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return &testEnv{sim: sim, proc: proc}
}

// post sends a chat-completions-like request and returns status, headers
// and body.
func (e *testEnv) post(t *testing.T, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.sim.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// grpcErr is a status error the fake server can end a stream with.
func grpcErr(c codes.Code) error { return status.Error(c, "scripted failure") }
