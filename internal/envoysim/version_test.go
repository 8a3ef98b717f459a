package envoysim

import (
	"strings"
	"testing"
	"time"

	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
)

func withVersion(v string) func(*Options) {
	return func(o *Options) { o.EnvoyVersion = v }
}

func immediate503() *procv3.ProcessingResponse {
	return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &procv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}, Body: []byte("local")},
	}}
}

// timedPost posts and reports how long the reply took.
func timedPost(t *testing.T, e *testEnv) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	code, _, body := e.post(t, "/v1/chat/completions", `{}`)
	return code, body, time.Since(start)
}

func TestUpstreamImmediateResponse_PreFixIsIgnoredAndRequestHangsUntilTimeout(t *testing.T) {
	// Short, so hung requests end quickly.
	routeTO := "                  timeout: 0.5s"
	t.Run("request phase waits for the route timeout", func(t *testing.T) {
		up := startUpstream(t, nil)
		proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
			if st.upstream {
				return one(immediate503())
			}
			return defaultHandler("tollgate_pool_a")(st, req)
		})
		e := startSim(t, simConfig{RouteExtra: routeTO}, proc, []string{up.addr()}, withVersion("1.36"))
		code, body, took := timedPost(t, e)
		if code != 504 || body != "upstream request timeout" || took < 450*time.Millisecond {
			t.Fatalf("got %d %q after %v, want the route timeout's 504, not the ignored reply", code, body, took)
		}
		if n := e.sim.Counter("ext_proc.send_immediate_resp_upstream_ignored"); n != 1 {
			t.Errorf("send_immediate_resp_upstream_ignored = %d, want 1", n)
		}
		if len(up.requests()) != 0 {
			t.Error("the stopped attempt reached the upstream")
		}
	})
	t.Run("response phase holds the response until the route timeout", func(t *testing.T) {
		up := startUpstream(t, nil)
		proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
			if st.upstream && req.GetResponseHeaders() != nil {
				return one(immediate503())
			}
			return defaultHandler("tollgate_pool_a")(st, req)
		})
		cfg := simConfig{RouteExtra: routeTO, UpstreamMode: "{request_body_mode: BUFFERED, response_header_mode: SEND}"}
		e := startSim(t, cfg, proc, []string{up.addr()}, withVersion("1.36"))
		if code, body, took := timedPost(t, e); code != 504 || body != "upstream request timeout" || took < 450*time.Millisecond {
			t.Fatalf("got %d %q after %v, want the route timeout's 504", code, body, took)
		}
		if len(up.requests()) != 1 || e.sim.Counter("ext_proc.send_immediate_resp_upstream_ignored") != 1 {
			t.Fatalf("%d upstream requests, ignored counter %d: want 1 and 1", len(up.requests()), e.sim.Counter("ext_proc.send_immediate_resp_upstream_ignored"))
		}
	})
	t.Run("per-try timeout then retries", func(t *testing.T) {
		up := startUpstream(t, nil)
		proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
			if st.upstream && deploymentOf(st) == "dep-a" {
				return one(immediate503())
			}
			return defaultHandler("tollgate_pool_a")(st, req)
		})
		cfg := simConfig{
			RouteExtra: retryOnStatus + "\n                    per_try_timeout: 0.3s\n                  timeout: 5s",
			Overprov:   100000, Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"}),
		}
		e := startSim(t, cfg, proc, []string{up.addr(), up.addr()}, withVersion("1.36.4"))
		code, body, took := timedPost(t, e)
		if code != 200 || body != `{"ok":true}` || took < 250*time.Millisecond {
			t.Fatalf("got %d %q after %v, want dep-b's 200 after dep-a's per-try timeout", code, body, took)
		}
		if _, ups := proc.byKind(); len(ups) != 2 || len(up.requests()) != 1 {
			t.Fatalf("%d upstream streams, %d upstream requests: want 2 and 1", len(ups), len(up.requests()))
		}
	})
	// The same script from 1.37 is the terminal local reply.
	for _, v := range []string{"1.37", ""} {
		t.Run("sent from "+v, func(t *testing.T) {
			up := startUpstream(t, nil)
			proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
				if st.upstream {
					return one(immediate503())
				}
				return defaultHandler("tollgate_pool_a")(st, req)
			})
			e := startSim(t, simConfig{RouteExtra: routeTO}, proc, []string{up.addr()}, withVersion(v))
			if code, body, _ := timedPost(t, e); code != 503 || body != "local" {
				t.Fatalf("got %d %q, want the ImmediateResponse", code, body)
			}
			if n := e.sim.Counter("ext_proc.send_immediate_resp_upstream_ignored"); n != 0 {
				t.Errorf("send_immediate_resp_upstream_ignored = %d, want 0", n)
			}
		})
	}
}

func TestUpstreamGrpcError_PreFixSwallowedUntilTimeout(t *testing.T) {
	failing := func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if st.upstream {
			return nil, grpcErr(codes.Unavailable)
		}
		return defaultHandler("tollgate_pool_a")(st, req)
	}
	silent := func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if st.upstream {
			return nil, nil // never answers: message_timeout fires
		}
		return defaultHandler("tollgate_pool_a")(st, req)
	}
	for _, tt := range []struct {
		name    string
		handler handlerFunc
		version string
		code    int
		body    string
	}{
		{"gRPC error pre-fix", failing, "1.36", 504, "upstream request timeout"},
		{"message timeout pre-fix", silent, "1.36", 504, "upstream request timeout"},
		{"gRPC error from 1.37", failing, "1.37", 500, ""},
		{"message timeout from 1.37", silent, "1.37", 504, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := startUpstream(t, nil)
			proc := startExtProc(t, tt.handler)
			cfg := simConfig{RouteExtra: "                  timeout: 0.5s", UpstreamMessageTimeout: "0.1s"}
			e := startSim(t, cfg, proc, []string{up.addr()}, withVersion(tt.version))
			code, body, took := timedPost(t, e)
			if code != tt.code || body != tt.body {
				t.Fatalf("got %d %q, want %d %q", code, body, tt.code, tt.body)
			}
			ignored := e.sim.Counter("ext_proc.send_immediate_resp_upstream_ignored")
			if tt.version == "1.36" && (ignored != 1 || took < 450*time.Millisecond) {
				t.Fatalf("ignored counter %d, reply after %v: want 1 and the route timeout", ignored, took)
			}
			if tt.version != "1.36" && (ignored != 0 || took >= 450*time.Millisecond) {
				t.Fatalf("ignored counter %d, reply after %v: want 0 and an error reply before the route timeout", ignored, took)
			}
			if len(up.requests()) != 0 {
				t.Error("the failed attempt reached the upstream")
			}
		})
	}
}

func TestOptions_BadEnvoyVersion(t *testing.T) {
	b := renderBootstrap(t, simConfig{})
	for _, v := range []string{"1", "1.x", "v1.37", "2.0", "0.37", "1.37.0.1", "1.-3", " 1.37", "1.037", "1..37", "latest"} {
		if _, err := New(b, Options{EnvoyVersion: v}); err == nil || !strings.Contains(err.Error(), "Options.EnvoyVersion") {
			t.Errorf("EnvoyVersion %q: error %v, want one naming Options.EnvoyVersion", v, err)
		}
	}
	for _, v := range []string{"1.36", "1.37.2"} {
		sim, err := New(b, Options{EnvoyVersion: v})
		if err != nil {
			t.Errorf("EnvoyVersion %q: %v", v, err)
			continue
		}
		_ = sim.Close()
	}
}
