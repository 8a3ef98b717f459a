package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// syncBuffer collects log output written from the server's goroutines.
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

func productionConfig(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOLLGATE_MASTER_KEY", "TOLLGATE_TEAM_A_KEY"} {
		t.Setenv(name, "test-"+strings.ToLower(name))
	}
	data, err := os.ReadFile("../../examples/production/tollgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRun_RefusesToStart(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("model_list: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no config", []string{"-addr", "127.0.0.1:0"}, "-config is required"},
		{"missing file", []string{"-config", filepath.Join(t.TempDir(), "nope.yaml")}, "read config"},
		{"invalid config", []string{"-config", bad, "-addr", "127.0.0.1:0"}, "invalid config"},
		{"negative poll", []string{"-config", bad, "-poll", "-1s"}, "-poll"},
		{"bad log level", []string{"-config", bad, "-log-level", "loud"}, "-log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), tt.args, io.Discard, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRun_ServesPoolsHealthAndMetricsThenStops(t *testing.T) {
	path := productionConfig(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &syncBuffer{}
	reload := make(chan os.Signal, 1)
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-config", path, "-addr", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-poll", "10ms"}, logs, reload, ready)
	}()
	var bound addrs
	select {
	case bound = <-ready:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}

	conn, err := grpc.NewClient(bound.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, service := range []string{"", discoveryv3.AggregatedDiscoveryService_ServiceDesc.ServiceName} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v", service, resp.GetStatus(), err)
		}
	}

	// The stream outlives ctx so that its end shows the server closed it.
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "envoy"}, TypeUrl: resourcev3.ClusterType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range resp.GetResources() {
		c := &clusterv3.Cluster{}
		if err := a.UnmarshalTo(c); err != nil {
			t.Fatal(err)
		}
		names = append(names, c.GetName())
	}
	// The snapshot cache keeps resources in a map: their order is not fixed.
	sort.Strings(names)
	if got := strings.Join(names, ","); got != "tollgate_pool_claude-sonnet,tollgate_pool_gpt-4o" {
		t.Errorf("pools %s", got)
	}

	reload <- syscall.SIGHUP
	waitFor(t, "reload after SIGHUP", func() bool { return strings.Contains(logs.String(), "config loaded; pools unchanged") })

	res, err := http.Get("http://" + bound.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`tollgate_xds_config_loads_total{result="applied"} 1`, `tollgate_xds_config_loads_total{result="unchanged"} 1`, `tollgate_xds_streams 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	cancel()
	// Open xDS streams never end by themselves; shutdown must end them
	// rather than wait out its deadline.
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(shutdownTimeout - time.Second):
		t.Fatal("run did not stop before the shutdown deadline")
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("stream still open after shutdown")
	}
	if strings.Contains(logs.String(), "shutdown deadline reached") {
		t.Error("shutdown waited for the deadline")
	}
	if !strings.Contains(logs.String(), `"level":"INFO","msg":"serving"`) {
		t.Errorf("no JSON serving line:\n%s", logs)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
