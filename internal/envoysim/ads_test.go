package envoysim

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-gw/tollgate/internal/envoyconfig"
)

const testNode = "envoysim-test"

// parkingCache is go-control-plane's SnapshotCache minus its NACK loop
// (prior-art.md §4): a NACKed watch waits for the next snapshot instead of
// getting the rejected version again at once.
type parkingCache struct {
	cachev3.SnapshotCache
}

func (c parkingCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) (func(), error) {
	if req.GetErrorDetail() != nil {
		if snap, err := c.GetSnapshot(req.GetNode().GetId()); err == nil {
			req = proto.Clone(req).(*discoveryv3.DiscoveryRequest)
			req.VersionInfo = snap.GetVersion(req.GetTypeUrl())
		}
	}
	return c.SnapshotCache.CreateWatch(req, sub, ch)
}

// xdsServer is go-control-plane's ADS server on 127.0.0.1 with a snapshot
// cache, recording what the stand-in sends and receives.
type xdsServer struct {
	cache cachev3.SnapshotCache
	node  string // snapshot key: the node id
	addr  string
	srv   *grpc.Server

	mu        sync.Mutex
	streams   int
	requests  []xdsRequest
	responses []*discoveryv3.DiscoveryResponse
}

// xdsRequest is a DiscoveryRequest and the stream (1-based) it came on.
type xdsRequest struct {
	stream int
	req    *discoveryv3.DiscoveryRequest
}

func startXDS(t *testing.T) *xdsServer {
	t.Helper()
	x := &xdsServer{cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil), node: testNode}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	x.addr = ln.Addr().String()
	x.serve(t, ln)
	return x
}

func (x *xdsServer) serve(t *testing.T, ln net.Listener) {
	cb := serverv3.CallbackFuncs{
		StreamResponseFunc: func(_ context.Context, _ int64, _ *discoveryv3.DiscoveryRequest, r *discoveryv3.DiscoveryResponse) {
			x.mu.Lock()
			x.responses = append(x.responses, r)
			x.mu.Unlock()
		},
	}
	// Requests are recorded as they come off the wire: the server fills in
	// a missing node before any callback runs.
	srv := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		x.mu.Lock()
		x.streams++
		n := x.streams
		x.mu.Unlock()
		return h(srv, &recordingStream{ServerStream: ss, x: x, n: n})
	}))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, serverv3.NewServer(t.Context(), parkingCache{x.cache}, cb))
	x.srv = srv
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
}

// recordingStream records every DiscoveryRequest received on it.
type recordingStream struct {
	grpc.ServerStream
	x *xdsServer
	n int
}

func (s *recordingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if r, ok := m.(*discoveryv3.DiscoveryRequest); ok {
		s.x.mu.Lock()
		s.x.requests = append(s.x.requests, xdsRequest{s.n, proto.Clone(r).(*discoveryv3.DiscoveryRequest)})
		s.x.mu.Unlock()
	}
	return nil
}

// restart drops every stream and serves again on the same address.
func (x *xdsServer) restart(t *testing.T) {
	t.Helper()
	x.srv.Stop()
	ln, err := net.Listen("tcp", x.addr)
	if err != nil {
		t.Fatal(err)
	}
	x.serve(t, ln)
}

func (x *xdsServer) set(t *testing.T, version string, clusters []*clusterv3.Cluster, clas ...*endpointv3.ClusterLoadAssignment) {
	t.Helper()
	var cs, es []types.Resource
	for _, c := range clusters {
		cs = append(cs, c)
	}
	for _, la := range clas {
		es = append(es, la)
	}
	snap, err := cachev3.NewSnapshot(version, map[resourcev3.Type][]types.Resource{resourcev3.ClusterType: cs, resourcev3.EndpointType: es})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.cache.SetSnapshot(t.Context(), x.node, snap); err != nil {
		t.Fatal(err)
	}
}

// requestsOf returns the recorded requests of one type.
func (x *xdsServer) requestsOf(typeURL string) []xdsRequest {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []xdsRequest
	for _, r := range x.requests {
		if r.req.GetTypeUrl() == typeURL {
			out = append(out, r)
		}
	}
	return out
}

// response returns the last response of a type with the given version.
func (x *xdsServer) response(typeURL, version string) *discoveryv3.DiscoveryResponse {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := len(x.responses) - 1; i >= 0; i-- {
		if r := x.responses[i]; r.GetTypeUrl() == typeURL && r.GetVersionInfo() == version {
			return r
		}
	}
	return nil
}

// answer waits for the stand-in's reply to the response of typeURL at
// version and returns it.
func (x *xdsServer) answer(t *testing.T, typeURL, version string) *discoveryv3.DiscoveryRequest {
	t.Helper()
	var got *discoveryv3.DiscoveryRequest
	waitFor(t, typeURL+" answer to version "+version, func() bool {
		resp := x.response(typeURL, version)
		if resp == nil {
			return false
		}
		for _, r := range x.requestsOf(typeURL) {
			if r.req.GetResponseNonce() == resp.GetNonce() {
				got = r.req
				return true
			}
		}
		return false
	})
	return got
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// poolSpec describes a pool cluster sent over CDS.
type poolSpec struct {
	Name           string
	EDS            bool
	ConnectTimeout string // default 1s
	MessageTimeout string // the upstream ext_proc's; default 2s
	Outlier        bool
	eps            [][]testEP // STATIC endpoints by priority
}

// testEP is one endpoint: its address and tollgate.deployment metadata.
type testEP struct{ addr, dep string }

const poolClusterTmpl = `
name: {{.Name}}
connect_timeout: {{.ConnectTimeout}}
{{- if .EDS}}
type: EDS
eds_cluster_config: {eds_config: {resource_api_version: V3, ads: {}}}
{{- else}}
type: STATIC
{{- end}}
{{- if .Outlier}}
outlier_detection: {consecutive_5xx: 1, base_ejection_time: 60s, max_ejection_percent: 100}
common_lb_config: {healthy_panic_threshold: {value: 0}}
{{- end}}
typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config: {http_protocol_options: {}}
    http_filters:
    - name: envoy.filters.http.ext_proc
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
        grpc_service: {envoy_grpc: {cluster_name: extproc}, timeout: 30s}
        message_timeout: {{.MessageTimeout}}
        processing_mode: {request_header_mode: SEND, request_body_mode: BUFFERED, response_header_mode: SKIP, response_body_mode: NONE}
        request_attributes: ["xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"]
        metadata_options:
          receiving_namespaces: {untyped: [tollgate]}
          forwarding_namespaces: {untyped: [tollgate]}
    - name: envoy.filters.http.upstream_codec
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec}
`

// pool builds a Cluster the way an xDS server would send it.
func pool(t *testing.T, p poolSpec) *clusterv3.Cluster {
	t.Helper()
	if p.ConnectTimeout == "" {
		p.ConnectTimeout = "1s"
	}
	if p.MessageTimeout == "" {
		p.MessageTimeout = "2s"
	}
	var buf bytes.Buffer
	if err := template.Must(template.New("c").Parse(poolClusterTmpl)).Execute(&buf, p); err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	c := &clusterv3.Cluster{}
	if err := protojson.Unmarshal(js, c); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !p.EDS {
		c.LoadAssignment = cla(t, p.Name, p.eps...)
	}
	return c
}

// cla builds a ClusterLoadAssignment with one locality per priority.
func cla(t *testing.T, name string, prios ...[]testEP) *endpointv3.ClusterLoadAssignment {
	t.Helper()
	la := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	for p, eps := range prios {
		lle := &endpointv3.LocalityLbEndpoints{Priority: uint32(p)}
		for _, ep := range eps {
			host, port, err := net.SplitHostPort(ep.addr)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := strconv.Atoi(port)
			lle.LbEndpoints = append(lle.LbEndpoints, &endpointv3.LbEndpoint{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(n)}}}}}},
				Metadata: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
					"tollgate": {Fields: map[string]*structpb.Value{"deployment": structpb.NewStringValue(ep.dep)}}}},
			})
		}
		la.Endpoints = append(la.Endpoints, lle)
	}
	return la
}

// poolFromPath is the router-level script for ADS tests: the pool is the
// last segment of the request path.
func poolFromPath(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
	if st.upstream || req.GetRequestBody() == nil {
		return one(cont(req))
	}
	var path string
	for _, h := range st.messages()[0].GetRequestHeaders().GetHeaders().GetHeaders() {
		if h.GetKey() == ":path" {
			path = string(h.GetRawValue())
		}
	}
	return one(reply(req, routeToPool(path[strings.LastIndex(path, "/")+1:])))
}

// adsEnv is a sim fed by an in-process xDS server.
type adsEnv struct {
	*testEnv
	xds *xdsServer
}

// startADS starts the xDS server with a first snapshot, then the sim.
func startADS(t *testing.T, version string, clusters []*clusterv3.Cluster, clas ...*endpointv3.ClusterLoadAssignment) *adsEnv {
	t.Helper()
	x := startXDS(t)
	if version != "" {
		x.set(t, version, clusters, clas...)
	}
	proc := startExtProc(t, poolFromPath)
	e := startSim(t, simConfig{ADS: true}, proc, nil, func(o *Options) {
		o.ClusterOverrides["xds_cluster"] = []string{x.addr}
	})
	return &adsEnv{testEnv: e, xds: x}
}

func (e *adsEnv) waitReady(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e.sim.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// send posts to the pool named by the path and returns status and body.
func (e *adsEnv) send(t *testing.T, pool string) (int, string) {
	t.Helper()
	code, _, body := e.post(t, "/v1/chat/completions/"+pool, `{"model":"m"}`)
	return code, body
}

// deployments returns the deployment each upstream ext_proc stream saw.
func (e *adsEnv) deployments() []string {
	_, up := e.proc.byKind()
	var out []string
	for _, st := range up {
		attrs := st.messages()[0].GetAttributes()[attributesKey].GetFields()
		out = append(out, attrs["xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"].GetStringValue())
	}
	return out
}

func TestADS_ClustersArriveOverCDS(t *testing.T) {
	up := startUpstream(t, nil)
	e := startADS(t, "v1", []*clusterv3.Cluster{pool(t, poolSpec{Name: "tollgate_pool_a", eps: [][]testEP{{{up.addr(), "dep-a"}}}})})
	e.waitReady(t)
	if code, body := e.send(t, "tollgate_pool_a"); code != 200 {
		t.Fatalf("status %d %s, want 200 through the CDS cluster", code, body)
	}
	if len(up.requests()) != 1 {
		t.Fatalf("upstream got %d requests, want 1", len(up.requests()))
	}
	if got := e.deployments(); len(got) != 1 || got[0] != "dep-a" {
		t.Fatalf("upstream ext_proc saw deployments %q, want [dep-a] from the endpoint metadata", got)
	}
	first := e.xds.requestsOf(resourcev3.ClusterType)[0].req
	if first.GetNode().GetId() != testNode || len(first.GetResourceNames()) != 0 || first.GetVersionInfo() != "" {
		t.Fatalf("first CDS request = %v, want the bootstrap node, a wildcard and no version", first)
	}
}

func TestADS_ACKCarriesVersionAndNonce(t *testing.T) {
	up := startUpstream(t, nil)
	clusters := func(timeout string) []*clusterv3.Cluster {
		return []*clusterv3.Cluster{pool(t, poolSpec{Name: "tollgate_pool_a", EDS: true, ConnectTimeout: timeout})}
	}
	e := startADS(t, "v1", clusters("1s"), cla(t, "tollgate_pool_a", []testEP{{up.addr(), "dep-a"}}))
	e.waitReady(t)
	e.xds.set(t, "v2", clusters("2s"), cla(t, "tollgate_pool_a", []testEP{{up.addr(), "dep-b"}}))
	for _, typeURL := range []string{resourcev3.ClusterType, resourcev3.EndpointType} {
		for _, v := range []string{"v1", "v2"} {
			t.Run(typeURL[strings.LastIndex(typeURL, ".")+1:]+"/"+v, func(t *testing.T) {
				ack := e.xds.answer(t, typeURL, v)
				if ack.GetVersionInfo() != v || ack.GetErrorDetail() != nil {
					t.Fatalf("answer to %s = version %q error %v, want an ACK of %s", v, ack.GetVersionInfo(), ack.GetErrorDetail(), v)
				}
				if ack.GetNode() != nil {
					t.Fatal("node sent again: set_node_on_first_message_only sends it on the first message only")
				}
				if typeURL == resourcev3.EndpointType && (len(ack.GetResourceNames()) != 1 || ack.GetResourceNames()[0] != "tollgate_pool_a") {
					t.Fatalf("EDS ACK names %v, want [tollgate_pool_a]", ack.GetResourceNames())
				}
			})
		}
	}
}

func TestADS_InvalidClusterIsNACKedAndPreviousKept(t *testing.T) {
	tests := []struct {
		name string
		bad  func(t *testing.T) *clusterv3.Cluster
		// wantApplied: the valid update in the same response is applied.
		// Envoy rejects the whole response when a resource fails its own
		// proto constraints (decoding), but applies the other clusters
		// when one fails to build (CdsApiHelper::onConfigUpdate).
		wantApplied bool
		wantErr     string
	}{
		{
			name: "proto constraint violation rejects the whole response",
			bad: func(t *testing.T) *clusterv3.Cluster {
				return pool(t, poolSpec{Name: "tollgate_pool_b", ConnectTimeout: "-1s"})
			},
			wantErr: "ConnectTimeout",
		},
		{
			name: "invalid packed typed_config skips only that cluster",
			bad: func(t *testing.T) *clusterv3.Cluster {
				return pool(t, poolSpec{Name: "tollgate_pool_b", MessageTimeout: "7200s"})
			},
			wantApplied: true,
			wantErr:     "tollgate_pool_b: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upA, upB := startUpstream(t, nil), startUpstream(t, nil)
			a := func(addr string) *clusterv3.Cluster {
				return pool(t, poolSpec{Name: "tollgate_pool_a", eps: [][]testEP{{{addr, "dep"}}}})
			}
			e := startADS(t, "v1", []*clusterv3.Cluster{a(upA.addr())})
			e.waitReady(t)
			e.xds.set(t, "v2", []*clusterv3.Cluster{a(upB.addr()), tt.bad(t)})
			nack := e.xds.answer(t, resourcev3.ClusterType, "v2")
			if nack.GetVersionInfo() != "v1" || nack.GetErrorDetail() == nil || !strings.Contains(nack.GetErrorDetail().GetMessage(), tt.wantErr) {
				t.Fatalf("answer to v2 = version %q error %v, want a NACK keeping v1 and mentioning %q", nack.GetVersionInfo(), nack.GetErrorDetail(), tt.wantErr)
			}
			if code, body := e.send(t, "tollgate_pool_b"); code != 503 {
				t.Fatalf("rejected cluster: status %d %s, want 503", code, body)
			}
			if code, _ := e.send(t, "tollgate_pool_a"); code != 200 {
				t.Fatalf("pool a: status %d, want 200", code)
			}
			if got := len(upB.requests()) == 1; got != tt.wantApplied {
				t.Fatalf("valid update applied = %v, want %v", got, tt.wantApplied)
			}
			if e.sim.Counter("cluster_manager.cds.update_rejected") != 1 {
				t.Fatalf("update_rejected = %d, want 1", e.sim.Counter("cluster_manager.cds.update_rejected"))
			}
			// A later valid version is ACKed.
			e.xds.set(t, "v3", []*clusterv3.Cluster{a(upA.addr())})
			if ack := e.xds.answer(t, resourcev3.ClusterType, "v3"); ack.GetVersionInfo() != "v3" || ack.GetErrorDetail() != nil {
				t.Fatalf("answer to v3 = %v, want an ACK", ack)
			}
		})
	}
}

func TestADS_ClusterRemoved(t *testing.T) {
	up := startUpstream(t, nil)
	spec := func(name string) *clusterv3.Cluster {
		return pool(t, poolSpec{Name: name, eps: [][]testEP{{{up.addr(), "dep"}}}})
	}
	e := startADS(t, "v1", []*clusterv3.Cluster{spec("tollgate_pool_a"), spec("tollgate_pool_b")})
	e.waitReady(t)
	if code, _ := e.send(t, "tollgate_pool_b"); code != 200 {
		t.Fatalf("before removal: status %d, want 200", code)
	}
	e.xds.set(t, "v2", []*clusterv3.Cluster{spec("tollgate_pool_a")})
	e.xds.answer(t, resourcev3.ClusterType, "v2")
	if code, _ := e.send(t, "tollgate_pool_b"); code != 503 {
		t.Fatalf("removed cluster: status %d, want 503 (cluster not found)", code)
	}
	if code, _ := e.send(t, "tollgate_pool_a"); code != 200 {
		t.Fatalf("kept cluster: status %d, want 200", code)
	}
	if n := e.sim.Counter("cluster_manager.cluster_removed"); n != 1 {
		t.Fatalf("cluster_removed = %d, want 1", n)
	}
}

func TestADS_ClusterUpdatedRebuilds(t *testing.T) {
	tests := []struct {
		name        string
		timeout     string // connect_timeout of the second version
		wantRebuilt bool
	}{
		{name: "changed cluster is rebuilt", timeout: "2s", wantRebuilt: true},
		// Envoy skips a cluster whose config hash is unchanged.
		{name: "unchanged cluster is kept", timeout: "1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, nil)
			spec := func(timeout string) []*clusterv3.Cluster {
				return []*clusterv3.Cluster{pool(t, poolSpec{Name: "tollgate_pool_a", ConnectTimeout: timeout, Outlier: true, eps: [][]testEP{{{up.addr(), "dep"}}}})}
			}
			e := startADS(t, "v1", spec("1s"))
			e.waitReady(t)
			old := e.sim.cluster("tollgate_pool_a")
			old.recordResult(old.hosts[0][0], 500) // consecutive_5xx: 1 ejects it
			if code, _ := e.send(t, "tollgate_pool_a"); code != 503 {
				t.Fatalf("ejected host: status %d, want 503", code)
			}
			e.xds.set(t, "v2", spec(tt.timeout))
			e.xds.answer(t, resourcev3.ClusterType, "v2")
			cl := e.sim.cluster("tollgate_pool_a")
			if rebuilt := cl != old; rebuilt != tt.wantRebuilt {
				t.Fatalf("rebuilt = %v, want %v", rebuilt, tt.wantRebuilt)
			}
			wantCode := 503
			if tt.wantRebuilt {
				wantCode = 200 // outlier state reset with the cluster
			}
			if code, _ := e.send(t, "tollgate_pool_a"); code != wantCode {
				t.Fatalf("after v2: status %d, want %d", code, wantCode)
			}
		})
	}
}

func TestEDS_EndpointsArriveAndWarmCluster(t *testing.T) {
	upA, upB := startUpstream(t, nil), startUpstream(t, nil)
	clusters := []*clusterv3.Cluster{pool(t, poolSpec{Name: "tollgate_pool_a", EDS: true, Outlier: true})}
	e := startADS(t, "v1", clusters)
	// The cache holds no endpoints for the cluster yet: it stays warming.
	waitFor(t, "EDS subscription", func() bool { return len(e.xds.requestsOf(resourcev3.EndpointType)) > 0 })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := e.sim.WaitReady(ctx); err == nil {
		t.Fatal("WaitReady returned before the EDS cluster was warm")
	}
	if names := e.xds.requestsOf(resourcev3.EndpointType)[0].req.GetResourceNames(); len(names) != 1 || names[0] != "tollgate_pool_a" {
		t.Fatalf("EDS subscription %v, want [tollgate_pool_a] (the cluster name without service_name)", names)
	}

	e.xds.set(t, "v2", clusters, cla(t, "tollgate_pool_a", []testEP{{upA.addr(), "dep-a"}}))
	e.waitReady(t)
	if code, _ := e.send(t, "tollgate_pool_a"); code != 200 || len(upA.requests()) != 1 {
		t.Fatalf("warm cluster: status %d, upstream a got %d, want 200 and 1", code, len(upA.requests()))
	}
	cl := e.sim.cluster("tollgate_pool_a")
	cl.recordResult(cl.hosts[0][0], 500) // eject dep-a

	// dep-a stays; dep-b joins in a priority of its own.
	e.xds.set(t, "v3", clusters, cla(t, "tollgate_pool_a", []testEP{{upA.addr(), "dep-a"}}, []testEP{{upB.addr(), "dep-b"}}))
	e.xds.answer(t, resourcev3.EndpointType, "v3")
	if e.sim.cluster("tollgate_pool_a") != cl {
		t.Fatal("an EDS update rebuilt the cluster")
	}
	// dep-a kept its ejection, so the request spills to dep-b.
	if code, _ := e.send(t, "tollgate_pool_a"); code != 200 || len(upB.requests()) != 1 {
		t.Fatalf("after the EDS update: status %d, upstream b got %d, want 200 and 1", code, len(upB.requests()))
	}
}

func TestADS_DuplicateClusterIsSkippedAndNACKed(t *testing.T) {
	// go-control-plane's snapshots cannot hold a duplicate, so the response
	// goes straight to the client, whose stream is never started.
	sim, err := New(renderBootstrap(t, simConfig{ADS: true}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: resourcev3.ClusterType, VersionInfo: "v1"}
	for _, timeout := range []string{"1s", "3s"} {
		a, err := anypb.New(pool(t, poolSpec{Name: "tollgate_pool_a", ConnectTimeout: timeout, eps: [][]testEP{{{"127.0.0.1:1", "dep"}}}}))
		if err != nil {
			t.Fatal(err)
		}
		resp.Resources = append(resp.Resources, a)
	}
	err = sim.ads.onClusters(resp)
	if err == nil || !strings.Contains(err.Error(), "duplicate cluster tollgate_pool_a found") {
		t.Fatalf("onClusters = %v, want the duplicate reported", err)
	}
	if cl := sim.cluster("tollgate_pool_a"); cl == nil || cl.connectTTL != time.Second {
		t.Fatal("want the first of the duplicates applied, as Envoy does")
	}
}

func TestEDS_RebuiltClusterWarmsFromLastAssignment(t *testing.T) {
	up := startUpstream(t, nil)
	spec := func(timeout string) []*clusterv3.Cluster {
		return []*clusterv3.Cluster{pool(t, poolSpec{Name: "tollgate_pool_a", EDS: true, ConnectTimeout: timeout})}
	}
	la := cla(t, "tollgate_pool_a", []testEP{{up.addr(), "dep-a"}})
	e := startADS(t, "v1", spec("1s"), la)
	e.waitReady(t)
	old := e.sim.cluster("tollgate_pool_a")
	// Only CDS changes: the server has nothing new to send for EDS.
	snap, err := cachev3.NewSnapshot("v2", map[resourcev3.Type][]types.Resource{resourcev3.ClusterType: {spec("2s")[0]}})
	if err != nil {
		t.Fatal(err)
	}
	snap.Resources[types.Endpoint] = cachev3.NewResources("v1", []types.Resource{la})
	if err := e.xds.cache.SetSnapshot(t.Context(), testNode, snap); err != nil {
		t.Fatal(err)
	}
	e.xds.answer(t, resourcev3.ClusterType, "v2")
	if cl := e.sim.cluster("tollgate_pool_a"); cl == old || cl.connectTTL != 2*time.Second {
		t.Fatal("the changed EDS cluster is not active: it should warm from the last accepted assignment")
	}
	if code, _ := e.send(t, "tollgate_pool_a"); code != 200 {
		t.Fatalf("status %d, want 200", code)
	}
}

func TestEDS_KeepsOnlyFirstEndpointPerAddress(t *testing.T) {
	upA, upB := startUpstream(t, nil), startUpstream(t, nil)
	e := startADS(t, "v1", []*clusterv3.Cluster{pool(t, poolSpec{Name: "tollgate_pool_a", EDS: true})},
		cla(t, "tollgate_pool_a",
			[]testEP{{upA.addr(), "dep-a"}, {upA.addr(), "dep-a-twin"}},
			[]testEP{{upA.addr(), "dep-a-fallback"}, {upB.addr(), "dep-b"}}))
	e.waitReady(t)
	cl := e.sim.cluster("tollgate_pool_a")
	cl.mu.Lock()
	counts := []int{len(cl.hosts[0]), len(cl.hosts[1])}
	cl.mu.Unlock()
	if counts[0] != 1 || counts[1] != 1 {
		t.Fatalf("hosts per priority %v, want [1 1]: duplicates across priorities dropped", counts)
	}
	if n := e.sim.Counter("eds.duplicate_endpoint_dropped"); n != 2 {
		t.Fatalf("duplicates dropped = %d, want 2", n)
	}
	for range 3 {
		if code, _ := e.send(t, "tollgate_pool_a"); code != 200 {
			t.Fatalf("status %d, want 200", code)
		}
	}
	for _, d := range e.deployments() {
		if d != "dep-a" {
			t.Fatalf("deployments %q, want only dep-a (the first endpoint at its address)", e.deployments())
		}
	}
}

func TestADS_ReconnectResubscribes(t *testing.T) {
	up := startUpstream(t, nil)
	clusters := []*clusterv3.Cluster{pool(t, poolSpec{Name: "tollgate_pool_a", EDS: true})}
	e := startADS(t, "v1", clusters, cla(t, "tollgate_pool_a", []testEP{{up.addr(), "dep-a"}}))
	e.waitReady(t)
	e.xds.answer(t, resourcev3.EndpointType, "v1")

	e.xds.restart(t)
	// Clusters survive the outage.
	if code, _ := e.send(t, "tollgate_pool_a"); code != 200 {
		t.Fatalf("during the reconnect: status %d, want 200", code)
	}
	onStream2 := func(typeURL string) *discoveryv3.DiscoveryRequest {
		for _, r := range e.xds.requestsOf(typeURL) {
			if r.stream == 2 {
				return r.req
			}
		}
		return nil
	}
	waitFor(t, "both subscriptions on the new stream", func() bool {
		return onStream2(resourcev3.ClusterType) != nil && onStream2(resourcev3.EndpointType) != nil
	})
	cds, eds := onStream2(resourcev3.ClusterType), onStream2(resourcev3.EndpointType)
	if cds.GetNode().GetId() != testNode || cds.GetVersionInfo() != "v1" || cds.GetResponseNonce() != "" {
		t.Fatalf("first CDS request on the new stream = %v, want the node, version v1 and no nonce", cds)
	}
	if eds.GetVersionInfo() != "v1" || eds.GetResponseNonce() != "" || len(eds.GetResourceNames()) != 1 {
		t.Fatalf("first EDS request on the new stream = %v, want version v1, no nonce, [tollgate_pool_a]", eds)
	}
	if n := e.sim.Counter("control_plane.stream_closed"); n < 1 {
		t.Fatalf("stream_closed = %d, want at least 1", n)
	}
	// Updates flow on the new stream.
	e.xds.set(t, "v2", clusters, cla(t, "tollgate_pool_a", []testEP{{up.addr(), "dep-b"}}))
	if ack := e.xds.answer(t, resourcev3.EndpointType, "v2"); ack.GetVersionInfo() != "v2" {
		t.Fatalf("answer to v2 = %v, want an ACK", ack)
	}
}

func TestWarming_UnwarmedClusterIs503(t *testing.T) {
	tests := []struct {
		name string
		pool string
	}{
		{name: "EDS cluster before its first assignment", pool: "tollgate_pool_a"},
		{name: "cluster not (yet) sent over CDS", pool: "tollgate_pool_z"},
	}
	e := startADS(t, "v1", []*clusterv3.Cluster{pool(t, poolSpec{Name: "tollgate_pool_a", EDS: true})})
	e.xds.answer(t, resourcev3.ClusterType, "v1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := e.send(t, tt.pool); code != 503 {
				t.Fatalf("status %d %s, want 503 like an unknown cluster", code, body)
			}
		})
	}
}

func TestADS_ExampleBootstrapTakesThePoolsOverCDS(t *testing.T) {
	local, err := envoyconfig.Load("../../examples/local/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := envoyconfig.Load("../../examples/xds/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The xDS server sends the pools examples/local/envoy.yaml has static.
	var pools []*clusterv3.Cluster
	for _, c := range local.GetStaticResources().GetClusters() {
		if strings.HasPrefix(c.GetName(), "tollgate_pool_") {
			pools = append(pools, c)
		}
	}
	x := startXDS(t)
	x.node = b.GetNode().GetId()
	x.set(t, "v1", pools)
	sim, err := New(b, Options{ListenAddr: "127.0.0.1:0", ClusterOverrides: map[string][]string{"xds_cluster": {x.addr}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := sim.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range pools {
		if cl := sim.cluster(c.GetName()); cl == nil || len(cl.upstream) != 1 {
			t.Errorf("pool %s missing or without its upstream ext_proc filter", c.GetName())
		}
	}
	if n := sim.Counter("cluster_manager.cds.update_success"); n != 1 {
		t.Fatalf("cds update_success = %d, want 1", n)
	}
}
