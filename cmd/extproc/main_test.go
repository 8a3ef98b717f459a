package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const cfg = `
server: {grpc_address: "127.0.0.1:0", admin_address: "127.0.0.1:0", shutdown_timeout: 5s, max_request_body_bytes: 8388608}
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o, api_key: sk-x}
keys: [{key: sk-test}]
`

// syncBuffer collects logs written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun_ServesDrainsAndReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	reload := make(chan os.Signal, 1)
	ready := make(chan [2]string, 1)
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", path, "-poll", "10ms"}, &logs, reload, ready) }()
	var addrs [2]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}

	conn, err := grpc.NewClient(addrs[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", hc, err)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code := get(t, "http://"+addrs[1]+p); code != http.StatusOK {
			t.Errorf("%s = %d", p, code)
		}
	}
	resp, err := http.Get("http://" + addrs[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"tollgate_policy_degraded 0", "tollgate_policy_key_lookups_total", "tollgate_spend_queue_records", "go_goroutines"} {
		if !strings.Contains(string(metricsText), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// A body above grpc-go's 4 MiB default must still be accepted.
	big := `{"model":"m","messages":[],"pad":"` + strings.Repeat("x", 5<<20) + `"}`
	stream, err := extprocv3.NewExternalProcessorClient(conn).Process(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	send := func(m *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		t.Helper()
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
		Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
			{Key: "authorization", RawValue: []byte("Bearer sk-test")},
		}}}}})
	r := send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(big), EndOfStream: true}}})
	if r.GetRequestBody() == nil {
		t.Fatalf("large body rejected: %v", r.GetImmediateResponse())
	}

	// An edit is picked up by polling; a broken one is rejected and the
	// running config keeps serving; SIGHUP forces a reload.
	if err := os.WriteFile(path, []byte(strings.Replace(cfg, "sk-test}", "sk-test}, {key: sk-new}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "config reloaded") })
	if err := os.WriteFile(path, []byte("model_list: nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "config reload rejected") })
	reload <- syscall.SIGHUP
	waitFor(t, func() bool { return strings.Count(logs.String(), "config reload rejected") == 2 })

	// SIGTERM with a stream in flight: not ready any more, the stream can
	// still finish, and run returns once it has.
	cancel()
	waitFor(t, func() bool { return get(t, "http://"+addrs[1]+"/readyz") != http.StatusOK })
	r = send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
		Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: ":status", RawValue: []byte("200")}}}, EndOfStream: true}}})
	if r.GetResponseHeaders() == nil {
		t.Fatalf("in-flight stream cut during drain: %v", r)
	}
	select {
	case err := <-done:
		t.Fatalf("run returned with a stream in flight: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("stream end = %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after the last stream ended")
	}
	if strings.Contains(logs.String(), "sk-test") || strings.Contains(logs.String(), "sk-x") {
		t.Error("logs contain a key")
	}
}

func TestRun_RejectsInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("model_list: []\n"), 0o600)
	err := run(t.Context(), []string{"-config", path}, io.Discard, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "model_list") {
		t.Fatalf("run = %v", err)
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRun_AdminAPIKeysWorkOnTheRequestPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	withMaster := cfg + "general_settings: {master_key: sk-master-test}\n"
	if err := os.WriteFile(path, []byte(withMaster), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", path}, io.Discard, nil, ready) }()
	var addrs [2]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	admin := func(method, p, body, key string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+addrs[1]+p, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := admin("GET", "/spend/logs", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/spend/logs without the master key: %d", code)
	}
	if code, body := admin("GET", "/spend/logs", "", "sk-master-test"); code != http.StatusOK {
		t.Errorf("/spend/logs: %d %s", code, body)
	}
	code, body := admin("POST", "/key/generate", `{"models":["m"]}`, "sk-master-test")
	if code != http.StatusOK {
		t.Fatalf("/key/generate: %d %s", code, body)
	}
	var gen struct{ Key string }
	if err := json.Unmarshal([]byte(body), &gen); err != nil || gen.Key == "" {
		t.Fatalf("generated: %s", body)
	}

	conn, err := grpc.NewClient(addrs[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	auth := func(key string) *extprocv3.ProcessingResponse {
		stream, err := extprocv3.NewExternalProcessorClient(conn).Process(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer stream.CloseSend()
		stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
				{Key: "authorization", RawValue: []byte("Bearer " + key)},
			}}}}})
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := auth(gen.Key); r.GetImmediateResponse() != nil {
		t.Errorf("generated key rejected: %s", r.GetImmediateResponse().GetBody())
	}
	if code, body := admin("POST", "/key/block", fmt.Sprintf(`{"key":%q}`, gen.Key), "sk-master-test"); code != http.StatusOK {
		t.Fatalf("/key/block: %d %s", code, body)
	}
	waitFor(t, func() bool { return auth(gen.Key).GetImmediateResponse().GetStatus().GetCode() == 401 })
}
