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

// retryOnHeader retries on a marker header the upstream filter adds to a
// held response, the shape #41879 broke.
const retryOnHeader = `                  retry_policy:
                    retry_on: retriable-headers
                    retriable_headers: [{name: x-tollgate-retry, present_match: true}]
                    retry_priority:
                      name: envoy.retry_priorities.previous_priorities
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig
                        update_frequency: 1`

func TestVersionSwitch_RejectsHeldUpstreamResponseWithRetriesBelow137(t *testing.T) {
	for _, tt := range []struct {
		name, mode, extra, retry, setting string // setting "": accepted
	}{
		{"headers SEND", "{request_body_mode: BUFFERED, response_header_mode: SEND}", "", retryOnHeader, "response_header_mode SEND"},
		{"headers DEFAULT", "{request_body_mode: BUFFERED}", "", retryOnStatus, "response_header_mode DEFAULT (= SEND)"},
		{"body BUFFERED", "{request_body_mode: BUFFERED, response_header_mode: SKIP, response_body_mode: BUFFERED}", "", retryOnStatus, "response_body_mode BUFFERED"},
		{"body STREAMED", "{request_body_mode: BUFFERED, response_header_mode: SKIP, response_body_mode: STREAMED}", "", retryOnStatus, "response_body_mode STREAMED"},
		{"mode override may send", upstreamModeDefault, "            allow_mode_override: true", retryOnStatus, "allow_mode_override"},
		{"mode override limited to sending", upstreamModeDefault, "            allow_mode_override: true\n            allowed_override_modes: [{response_header_mode: SEND}]", retryOnStatus, "allowed_override_modes entry with response_header_mode SEND"},
		{"nothing held", upstreamModeDefault, "", retryOnStatus, ""},
		{"mode override limited to skipping", upstreamModeDefault, "            allow_mode_override: true\n            allowed_override_modes: [{response_header_mode: SKIP}]", retryOnStatus, ""},
		{"no retry policy", "{request_body_mode: BUFFERED, response_header_mode: SEND}", "", "", ""},
		{"zero retries", "{request_body_mode: BUFFERED, response_header_mode: SEND}", "", "                  retry_policy: {retry_on: 5xx, num_retries: 0}", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := renderBootstrap(t, simConfig{UpstreamMode: tt.mode, UpstreamExtra: tt.extra, RouteExtra: tt.retry})
			sim, err := New(b, Options{ListenAddr: "127.0.0.1:0", EnvoyVersion: "1.36"})
			if tt.setting == "" {
				if err != nil {
					t.Fatalf("rejected a safe config: %v", err)
				}
				_ = sim.Close()
				return
			}
			if err == nil {
				_ = sim.Close()
				t.Fatal("accepted a held upstream response with retries on 1.36")
			}
			for _, want := range []string{`cluster "tollgate_pool_a"`, tt.setting, "envoyproxy/envoy#41879", "Envoy 1.36"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

func TestVersionSwitch_AcceptsSameConfigFrom137(t *testing.T) {
	for _, v := range []string{"1.37", "1.37.0", "1.38.1", ""} {
		t.Run("version "+v, func(t *testing.T) {
			bad := startUpstream(t, nil) // 200, but the filter marks it for retry
			good := startUpstream(t, nil)
			proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
				if st.upstream && req.GetResponseHeaders() != nil && deploymentOf(st) == "dep-a" {
					return one(reply(req, &procv3.CommonResponse{HeaderMutation: setHeaders("x-tollgate-retry", "1")}))
				}
				return defaultHandler("tollgate_pool_a")(st, req)
			})
			cfg := simConfig{
				UpstreamMode: "{request_body_mode: BUFFERED, response_header_mode: SEND}",
				RouteExtra:   retryOnHeader,
				Endpoints:    endpoints([]string{"dep-a"}, []string{"dep-b"}),
			}
			e := startSim(t, cfg, proc, []string{bad.addr(), good.addr()}, withVersion(v))
			code, h, _ := e.post(t, "/v1/chat/completions", `{}`)
			if code != 200 || h.Get("x-tollgate-retry") != "" || len(good.requests()) != 1 {
				t.Fatalf("got %d marker %q, fallback hits %d: want the retried response discarded", code, h.Get("x-tollgate-retry"), len(good.requests()))
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
