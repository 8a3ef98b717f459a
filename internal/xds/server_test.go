package xds_test

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/internal/xds"
)

// syncBuffer collects log output written from server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness runs an xDS server on the config file at path, watched every
// few milliseconds, and plays Envoy on one or more ADS streams.
type harness struct {
	t      *testing.T
	srv    *xds.Server
	reg    *prometheus.Registry
	path   string
	reload chan os.Signal
	addr   string
	logs   *syncBuffer
}

const (
	// quiet is how long a stream must stay silent to count as "nothing
	// pushed"; a re-send loop answers within microseconds.
	quiet = 300 * time.Millisecond
	// patience bounds every wait for something that should happen.
	patience = 5 * time.Second
)

func newHarness(t *testing.T, yaml string) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		reg:    prometheus.NewPedanticRegistry(),
		path:   filepath.Join(t.TempDir(), "tollgate.yaml"),
		reload: make(chan os.Signal, 1),
		logs:   &syncBuffer{},
	}
	h.write(yaml)
	srv, err := xds.NewServer(t.Context(), xds.Options{
		Logger:     slog.New(slog.NewJSONHandler(h.logs, nil)),
		Registerer: h.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	src := xds.Source{Path: h.path, Env: fakeEnv}
	if err := srv.Reload(t.Context(), src); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Watch(t.Context(), src, 10*time.Millisecond, h.reload) }()

	gs := grpc.NewServer()
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	h.addr = lis.Addr().String()
	return h
}

// write replaces the config file atomically, so a poll never reads half a
// file.
func (h *harness) write(yaml string) {
	h.t.Helper()
	tmp := h.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.path); err != nil {
		h.t.Fatal(err)
	}
}

// counter reads a counter or gauge from the registry; 0 when absent.
func (h *harness) counter(name, label, value string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == label && l.GetValue() == value
			}) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// waitCounter waits until the counter reaches want.
func (h *harness) waitCounter(name, label, value string, want float64) {
	h.t.Helper()
	deadline := time.Now().Add(patience)
	for h.counter(name, label, value) < want {
		if time.Now().After(deadline) {
			h.t.Fatalf("%s{%s=%q} = %v, want %v", name, label, value, h.counter(name, label, value), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// envoy is one ADS stream subscribed to CDS the way Envoy subscribes.
type envoy struct {
	t      *testing.T
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *corev3.Node
	resps  chan *discoveryv3.DiscoveryResponse
	// accepted is the last version this client ACKed.
	accepted string
}

func (h *harness) connect(nodeID string) *envoy {
	h.t.Helper()
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	e := &envoy{t: h.t, stream: stream, node: &corev3.Node{Id: nodeID, Cluster: "tollgate"}, resps: make(chan *discoveryv3.DiscoveryResponse, 64)}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case e.resps <- r:
			case <-h.t.Context().Done():
				return
			}
		}
	}()
	// Like Envoy with set_node_on_first_message_only: the node only here.
	e.send(&discoveryv3.DiscoveryRequest{Node: e.node, TypeUrl: resourcev3.ClusterType})
	return e
}

func (e *envoy) send(req *discoveryv3.DiscoveryRequest) {
	e.t.Helper()
	if err := e.stream.Send(req); err != nil {
		e.t.Fatal(err)
	}
}

func (e *envoy) next() *discoveryv3.DiscoveryResponse {
	e.t.Helper()
	select {
	case r := <-e.resps:
		return r
	case <-time.After(patience):
		e.t.Fatal("no xDS response")
		return nil
	}
}

// none asserts that nothing arrives for the quiet period.
func (e *envoy) none() {
	e.t.Helper()
	n := 0
	timeout := time.After(quiet)
	for {
		select {
		case r := <-e.resps:
			n++
			e.t.Errorf("unexpected push %d: version %s nonce %s", n, r.GetVersionInfo(), r.GetNonce())
		case <-timeout:
			return
		}
	}
}

func (e *envoy) ack(r *discoveryv3.DiscoveryResponse) {
	e.t.Helper()
	e.accepted = r.GetVersionInfo()
	e.send(&discoveryv3.DiscoveryRequest{TypeUrl: r.GetTypeUrl(), VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()})
}

// nack rejects r as Envoy does: the last accepted version, r's nonce, and
// the reason.
func (e *envoy) nack(r *discoveryv3.DiscoveryResponse, reason string) {
	e.t.Helper()
	e.send(&discoveryv3.DiscoveryRequest{
		TypeUrl:       r.GetTypeUrl(),
		VersionInfo:   e.accepted,
		ResponseNonce: r.GetNonce(),
		ErrorDetail:   &status.Status{Code: int32(codes.InvalidArgument), Message: reason},
	})
}

// pools decodes a CDS response into cluster name → endpoint count.
func pools(t *testing.T, r *discoveryv3.DiscoveryResponse) map[string]int {
	t.Helper()
	if r.GetTypeUrl() != resourcev3.ClusterType {
		t.Fatalf("type %s, want CDS", r.GetTypeUrl())
	}
	out := map[string]int{}
	for _, a := range r.GetResources() {
		c := &clusterv3.Cluster{}
		if err := a.UnmarshalTo(c); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range c.GetLoadAssignment().GetEndpoints() {
			n += len(l.GetLbEndpoints())
		}
		out[c.GetName()] = n
	}
	return out
}

var twoGroups = cfg(
	dep("a", "a1", "openai/gpt-4o", "https://api.openai.com/v1", ""),
	dep("b", "b1", "anthropic/claude", "https://api.anthropic.com", ""),
) + "router_settings:\n  fallbacks:\n    - a: [b]\n"

func TestServer_FirstResponseCarriesAllPoolsToEveryNode(t *testing.T) {
	h := newHarness(t, twoGroups)
	want := map[string]int{"tollgate_pool_a": 2, "tollgate_pool_b": 1}
	for _, node := range []string{"envoy-1", "envoy-2"} {
		e := h.connect(node)
		r := e.next()
		if got := pools(t, r); !mapsEqual(got, want) {
			t.Errorf("%s: pools %v, want %v", node, got, want)
		}
		if r.GetVersionInfo() == "" || r.GetVersionInfo() != h.srv.Version() {
			t.Errorf("%s: version %q, server serves %q", node, r.GetVersionInfo(), h.srv.Version())
		}
	}
	h.waitCounter("tollgate_xds_streams", "", "", 2)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestServer_ACKPushesNothing(t *testing.T) {
	h := newHarness(t, twoGroups)
	e := h.connect("envoy-1")
	e.ack(e.next())
	e.none()
	if n := h.counter("tollgate_xds_responses_total", "type", "cluster"); n != 1 {
		t.Errorf("%v CDS responses, want 1", n)
	}
}

func TestServer_ConfigEdits(t *testing.T) {
	tests := []struct {
		name string
		edit string
		// sighup sends a reload signal instead of relying on the poll.
		sighup bool
		result string
		// pushed is the pools of the new version; nil when nothing may be
		// pushed.
		pushed map[string]int
	}{
		{
			name:   "comment only: same pools, nothing pushed",
			edit:   "# edited\n" + twoGroups,
			result: "unchanged",
		},
		{
			name:   "sighup with unchanged content: reloaded, nothing pushed",
			edit:   twoGroups,
			sighup: true,
			result: "unchanged",
		},
		{
			name: "new deployment: new version pushed",
			edit: cfg(
				dep("a", "a1", "openai/gpt-4o", "https://api.openai.com/v1", ""),
				dep("b", "b1", "anthropic/claude", "https://api.anthropic.com", ""),
				dep("b", "b2", "anthropic/claude", "https://api.anthropic.com", ""),
			) + "router_settings:\n  fallbacks:\n    - a: [b]\n",
			result: "applied",
			pushed: map[string]int{"tollgate_pool_a": 3, "tollgate_pool_b": 2},
		},
		{
			name:   "weight change: new version pushed",
			edit:   strings.Replace(twoGroups, "api_key: sk-x\n", "api_key: sk-x\n      weight: 2\n", 1),
			result: "applied",
			pushed: map[string]int{"tollgate_pool_a": 2, "tollgate_pool_b": 1},
		},
		{
			name:   "invalid yaml: last good version stays",
			edit:   twoGroups + "model_list: [\n",
			result: "rejected",
		},
		{
			name:   "fallback to an unknown group: last good version stays",
			edit:   strings.Replace(twoGroups, "a: [b]", "a: [nope]", 1),
			result: "rejected",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, twoGroups)
			e := h.connect("envoy-1")
			first := e.next()
			e.ack(first)
			before := h.counter("tollgate_xds_config_loads_total", "result", tt.result)
			if tt.sighup {
				h.reload <- syscall.SIGHUP
			} else {
				h.write(tt.edit)
			}
			h.waitCounter("tollgate_xds_config_loads_total", "result", tt.result, before+1)
			if tt.pushed == nil {
				e.none()
				if v := h.srv.Version(); v != first.GetVersionInfo() {
					t.Errorf("server version %s, want the last good %s", v, first.GetVersionInfo())
				}
				// A new Envoy still gets the last good pools.
				if r := h.connect("envoy-late").next(); r.GetVersionInfo() != first.GetVersionInfo() {
					t.Errorf("new stream got version %s, want %s", r.GetVersionInfo(), first.GetVersionInfo())
				}
				return
			}
			r := e.next()
			if r.GetVersionInfo() == first.GetVersionInfo() || r.GetVersionInfo() != h.srv.Version() {
				t.Errorf("pushed version %s (first %s, server %s)", r.GetVersionInfo(), first.GetVersionInfo(), h.srv.Version())
			}
			if got := pools(t, r); !mapsEqual(got, tt.pushed) {
				t.Errorf("pools %v, want %v", got, tt.pushed)
			}
			e.ack(r)
			e.none()
		})
	}
}

func TestServer_NACKParksTheWatch(t *testing.T) {
	h := newHarness(t, twoGroups)
	e := h.connect("envoy-1")
	r1 := e.next()
	e.nack(r1, "cluster tollgate_pool_a: bad thing")
	e.none()
	h.waitCounter("tollgate_xds_nacks_total", "type", "cluster", 1)
	logs := h.logs.String()
	for _, want := range []string{`"msg":"xds NACK`, `"node":"envoy-1"`, `"rejected_version":"` + r1.GetVersionInfo() + `"`, `bad thing`, `"parked":true`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}

	// A later config change still reaches the parked stream.
	h.write(strings.Replace(twoGroups, "a: [b]", "a: []", 1))
	r2 := e.next()
	if r2.GetVersionInfo() == r1.GetVersionInfo() {
		t.Fatalf("pushed the rejected version %s again", r1.GetVersionInfo())
	}
	if got, want := pools(t, r2), map[string]int{"tollgate_pool_a": 1, "tollgate_pool_b": 1}; !mapsEqual(got, want) {
		t.Errorf("pools %v, want %v", got, want)
	}
	e.ack(r2)
	e.none()
}

func TestServer_NACKOfAnOlderVersionGetsTheCurrentOne(t *testing.T) {
	h := newHarness(t, twoGroups)
	e := h.connect("envoy-1")
	r1 := e.next()
	// The config moves on before Envoy answers r1; no watch is open, so
	// nothing is pushed yet.
	h.write(strings.Replace(twoGroups, "a: [b]", "a: []", 1))
	h.waitCounter("tollgate_xds_config_loads_total", "result", "applied", 2)
	e.nack(r1, "rejected")
	r2 := e.next()
	if r2.GetVersionInfo() != h.srv.Version() || r2.GetVersionInfo() == r1.GetVersionInfo() {
		t.Errorf("got version %s, want the current %s", r2.GetVersionInfo(), h.srv.Version())
	}
}
