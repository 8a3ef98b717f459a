package envoysim

import (
	"bufio"
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

const retryOnStatus = `                  retry_policy:
                    retry_on: connect-failure,refused-stream,reset,retriable-status-codes
                    retriable_status_codes: [429, 500, 502, 503, 504]
                    num_retries: 2
                    retry_priority:
                      name: envoy.retry_priorities.previous_priorities
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig
                        update_frequency: 1
                    retry_host_predicate:
                    - name: envoy.retry_host_predicates.previous_hosts
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate
                    host_selection_retry_max_attempts: 3`

// deploymentOf reads the upstream attribute from a stream's first message.
func deploymentOf(st *fakeStream) string {
	return st.messages()[0].GetAttributes()[attributesKey].GetFields()["xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"].GetStringValue()
}

func TestUpstream_FreshStreamPerAttemptSeesPreviousHeadersAndPristineBody(t *testing.T) {
	bad := startUpstream(t, statusHandler(503))
	good := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if st.upstream && req.GetRequestBody() != nil {
			dep := deploymentOf(st)
			body := "for " + dep
			cr := &procv3.CommonResponse{
				HeaderMutation: setHeaders("x-set-by-"+dep, "1", "content-length", strconv.Itoa(len(body))),
				BodyMutation:   &procv3.BodyMutation{Mutation: &procv3.BodyMutation_Body{Body: []byte(body)}},
			}
			return one(reply(req, cr))
		}
		return defaultHandler("tollgate_pool_a")(st, req)
	})
	cfg := simConfig{RouteExtra: retryOnStatus, Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"})}
	e := startSim(t, cfg, proc, []string{bad.addr(), good.addr()}, nil)
	code, _, body := e.post(t, "/v1/chat/completions", `{"original":true}`)
	if code != 200 || body != `{"ok":true}` {
		t.Fatalf("got %d %q, want the fallback's 200", code, body)
	}
	_, ups := proc.byKind()
	if len(ups) != 2 {
		t.Fatalf("%d upstream streams, want one per attempt", len(ups))
	}
	if deploymentOf(ups[0]) != "dep-a" || deploymentOf(ups[1]) != "dep-b" {
		t.Fatalf("attempts went to %s then %s", deploymentOf(ups[0]), deploymentOf(ups[1]))
	}
	second := ups[1].messages()
	if _, ok := headerValue(second[0].GetRequestHeaders(), "x-set-by-dep-a"); !ok {
		t.Error("attempt 2 does not see the headers attempt 1 left")
	}
	if got := string(second[1].GetRequestBody().GetBody()); got != `{"original":true}` {
		t.Errorf("attempt 2 body = %q, want the pristine client body", got)
	}
	if got := good.requests()[0].body; got != "for dep-b" {
		t.Errorf("fallback upstream got %q", got)
	}
}

func TestUpstream_ImmediateResponseIsFinalNotRetried(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if st.upstream {
			return one(&procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ImmediateResponse{
				ImmediateResponse: &procv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable}, Body: []byte("local")},
			}})
		}
		return defaultHandler("tollgate_pool_a")(st, req)
	})
	cfg := simConfig{RouteExtra: retryOnStatus, Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"})}
	e := startSim(t, cfg, proc, []string{up.addr(), up.addr()}, nil)
	code, _, body := e.post(t, "/v1/chat/completions", `{}`)
	if code != 503 || body != "local" {
		t.Fatalf("got %d %q", code, body)
	}
	if _, ups := proc.byKind(); len(ups) != 1 || len(up.requests()) != 0 {
		t.Fatalf("%d upstream streams, %d upstream requests: want 1 and 0", len(ups), len(up.requests()))
	}
}

func TestUpstream_AttemptCountHeader(t *testing.T) {
	bad := startUpstream(t, statusHandler(500))
	good := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	cfg := simConfig{RouteExtra: retryOnStatus, Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"})}
	e := startSim(t, cfg, proc, []string{bad.addr(), good.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	_, ups := proc.byKind()
	for i, st := range ups {
		if v, _ := headerValue(st.messages()[0].GetRequestHeaders(), "x-envoy-attempt-count"); v != strconv.Itoa(i+1) {
			t.Errorf("attempt %d: x-envoy-attempt-count = %q", i+1, v)
		}
	}
	if v := good.requests()[0].header.Get("x-envoy-attempt-count"); v != "2" {
		t.Errorf("upstream saw x-envoy-attempt-count %q", v)
	}
}

func TestUpstream_AutoHostRewriteUsesEndpointHostname(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	if h := up.requests()[0].host; h != "dep-a.example" {
		t.Fatalf("upstream Host = %q, want dep-a.example", h)
	}
}

func TestClearRouteCache_IgnoredUpstream(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if st.upstream && req.GetRequestBody() != nil {
			return one(reply(req, routeToPool("tollgate_pool_other")))
		}
		return defaultHandler("tollgate_pool_a")(st, req)
	})
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 200 {
		t.Fatalf("status %d", code)
	}
	if e.sim.Counter("ext_proc.clear_route_cache_upstream_ignored") != 1 {
		t.Fatal("clear_route_cache_upstream_ignored not counted")
	}
}

func TestUpstream_TLSWithAutoHostSNI(t *testing.T) {
	var sni string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni = r.TLS.ServerName
		_, _ = w.Write([]byte("tls ok"))
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	cfg := simConfig{
		PoolExtra: `    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        auto_host_sni: true
        auto_sni_san_validation: true`,
		Endpoints: "      - lb_endpoints:\n        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}, hostname: example.com}\n          metadata: {filter_metadata: {tollgate: {deployment: d}}}\n",
	}
	e := startSim(t, cfg, proc, []string{srv.Listener.Addr().String()}, func(o *Options) { o.UpstreamRootCAs = pool })
	code, _, body := e.post(t, "/v1/chat/completions", `{}`)
	if code != 200 || body != "tls ok" || sni != "example.com" {
		t.Fatalf("got %d %q sni %q", code, body, sni)
	}
}

func TestRetry_DecisionUsesHeadersAfterUpstreamFilter(t *testing.T) {
	bad := startUpstream(t, nil) // 200, but the filter marks it for retry
	good := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("good")) })
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if st.upstream && req.GetResponseHeaders() != nil && deploymentOf(st) == "dep-a" {
			return one(reply(req, &procv3.CommonResponse{HeaderMutation: setHeaders("x-tollgate-retry", "1")}))
		}
		return defaultHandler("tollgate_pool_a")(st, req)
	})
	cfg := simConfig{
		UpstreamMode: "{request_body_mode: BUFFERED, response_header_mode: SEND}",
		RouteExtra: `                  retry_policy:
                    retry_on: retriable-headers
                    retriable_headers: [{name: x-tollgate-retry, present_match: true}]
                    retry_priority:
                      name: envoy.retry_priorities.previous_priorities
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig
                        update_frequency: 1`,
		Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"}),
	}
	e := startSim(t, cfg, proc, []string{bad.addr(), good.addr()}, nil)
	code, h, body := e.post(t, "/v1/chat/completions", `{}`)
	if code != 200 || body != "good" || h.Get("x-tollgate-retry") != "" {
		t.Fatalf("got %d %q marker %q: the marked response must be retried and discarded", code, body, h.Get("x-tollgate-retry"))
	}
}

func TestRetry_RetriableStatusCodes(t *testing.T) {
	for _, tt := range []struct {
		status  int
		retried bool
	}{{429, true}, {503, true}, {404, false}, {501, false}} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			first := startUpstream(t, statusHandler(tt.status))
			second := startUpstream(t, nil)
			proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
			cfg := simConfig{RouteExtra: retryOnStatus, Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"})}
			e := startSim(t, cfg, proc, []string{first.addr(), second.addr()}, nil)
			code, _, _ := e.post(t, "/v1/chat/completions", `{}`)
			if (code == 200) != tt.retried || (len(second.requests()) == 1) != tt.retried {
				t.Fatalf("status %d, second upstream hit %d times; retried want %v", code, len(second.requests()), tt.retried)
			}
		})
	}
}

func TestRetry_PreviousPrioritiesFallsBack(t *testing.T) {
	a := startUpstream(t, statusHandler(503))
	b := startUpstream(t, statusHandler(503))
	c := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	cfg := simConfig{RouteExtra: retryOnStatus, Overprov: 100000, Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"}, []string{"dep-c"})}
	e := startSim(t, cfg, proc, []string{a.addr(), b.addr(), c.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(a.requests()) != 1 || len(b.requests()) != 1 || len(c.requests()) != 1 {
		t.Fatalf("hits a=%d b=%d c=%d, want one per priority in order", len(a.requests()), len(b.requests()), len(c.requests()))
	}
}

func TestRetry_ExhaustedReturnsLastResponse(t *testing.T) {
	a := startUpstream(t, statusHandler(503))
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{RouteExtra: retryOnStatus}, proc, []string{a.addr()}, nil)
	code, _, body := e.post(t, "/v1/chat/completions", `{}`)
	if code != 503 || body != "status 503" || len(a.requests()) != 3 {
		t.Fatalf("got %d %q after %d attempts, want the upstream's 503 after 3", code, body, len(a.requests()))
	}
}

func TestRetry_ConnectFailure(t *testing.T) {
	good := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	cfg := simConfig{RouteExtra: retryOnStatus, Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"})}
	e := startSim(t, cfg, proc, []string{"127.0.0.1:1", good.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 200 {
		t.Fatalf("status %d", code)
	}
}

func TestRetry_ConnectFailureWithoutRetryIs503(t *testing.T) {
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{}, proc, []string{"127.0.0.1:1"}, nil)
	code, _, body := e.post(t, "/v1/chat/completions", `{}`)
	if code != 503 || !strings.Contains(body, "connection failure") {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestRetry_PerTryTimeoutRetriesOnReset(t *testing.T) {
	slow := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	good := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	cfg := simConfig{RouteExtra: retryOnStatus + "\n                    per_try_timeout: 0.3s", Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"})}
	e := startSim(t, cfg, proc, []string{slow.addr(), good.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 200 {
		t.Fatalf("status %d", code)
	}
}

func TestRouteTimeout_Is504(t *testing.T) {
	slow := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{RouteExtra: "                  timeout: 0.3s"}, proc, []string{slow.addr()}, nil)
	if code, _, body := e.post(t, "/v1/chat/completions", `{}`); code != 504 || body != "upstream request timeout" {
		t.Fatalf("got %d %q", code, body)
	}
}

func TestRetry_NoRetriesWhenBodyExceedsBufferLimit(t *testing.T) {
	a := startUpstream(t, statusHandler(503))
	b := startUpstream(t, nil)
	proc := startExtProc(t, func(_ *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if req.GetRequestHeaders() != nil {
			return one(reply(req, routeToPool("tollgate_pool_a")))
		}
		return one(cont(req))
	})
	cfg := simConfig{
		RouterMode: "{request_body_mode: NONE, response_header_mode: SKIP}", NoUpstreamProc: true,
		RouteExtra: retryOnStatus, RouteLimit: 10, Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"}),
	}
	e := startSim(t, cfg, proc, []string{a.addr(), b.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", strings.Repeat("z", 100)); code != 503 || len(b.requests()) != 0 {
		t.Fatalf("status %d, fallback hits %d: want no retry", code, len(b.requests()))
	}
	if e.sim.Counter("retry_or_shadow_abandoned") != 1 {
		t.Error("retry_or_shadow_abandoned not counted")
	}
}

func TestRetry_PreviousHostsAvoidsAttemptedHost(t *testing.T) {
	for _, tt := range []struct {
		name      string
		predicate bool
	}{{"with previous_hosts", true}, {"without", false}} {
		t.Run(tt.name, func(t *testing.T) {
			a := startUpstream(t, statusHandler(503))
			b := startUpstream(t, nil)
			proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
			retry := "                  retry_policy: {retry_on: 5xx, num_retries: 1}"
			if tt.predicate {
				retry = `                  retry_policy:
                    retry_on: 5xx
                    num_retries: 1
                    retry_host_predicate:
                    - name: envoy.retry_host_predicates.previous_hosts
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate
                    host_selection_retry_max_attempts: 5`
			}
			// Draws are (priority, host) pairs: the first host three times,
			// then the second.
			cfg := simConfig{RouteExtra: retry, PoolExtra: "    lb_policy: RANDOM", Endpoints: endpoints([]string{"dep-a", "dep-b"})}
			e := startSim(t, cfg, proc, []string{a.addr(), b.addr()}, func(o *Options) { o.Rand = &seqSource{vals: []uint64{0, 0, 0, 0, 0, 1}} })
			code, _, _ := e.post(t, "/v1/chat/completions", `{}`)
			if (code == 200) != tt.predicate {
				t.Fatalf("status %d, a hits %d, b hits %d", code, len(a.requests()), len(b.requests()))
			}
		})
	}
}

func TestStreaming_ChunksReachClientAsProduced(t *testing.T) {
	for _, mode := range []string{"NONE", "STREAMED"} {
		t.Run(mode, func(t *testing.T) {
			gotFirst := make(chan struct{})
			up := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("content-type", "text/event-stream")
				_, _ = w.Write([]byte("data: 1\n\n"))
				w.(http.Flusher).Flush()
				select {
				case <-gotFirst: // the client saw chunk 1 before chunk 2 exists
				case <-time.After(5 * time.Second):
				}
				_, _ = w.Write([]byte("data: 2\n\n"))
			})
			proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
				if !st.upstream && req.GetResponseHeaders() != nil {
					r := cont(req)
					r.ModeOverride = &extprocv3.ProcessingMode{RequestBodyMode: bodyMode("BUFFERED"), ResponseBodyMode: bodyMode(mode)}
					return one(r)
				}
				return defaultHandler("tollgate_pool_a")(st, req)
			})
			e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.sim.URL()+"/v1/chat/completions", strings.NewReader(`{}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			start := time.Now()
			line, err := br.ReadString('\n')
			if err != nil || line != "data: 1\n" || time.Since(start) > 3*time.Second {
				t.Fatalf("first line %q err %v after %v", line, err, time.Since(start))
			}
			close(gotFirst)
		})
	}
}

func TestClientDisconnect_CancelsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("data: 1\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(5 * time.Second):
		}
	})
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetResponseHeaders() != nil {
			r := cont(req)
			r.ModeOverride = &extprocv3.ProcessingMode{RequestBodyMode: bodyMode("BUFFERED"), ResponseBodyMode: bodyMode("STREAMED")}
			return one(r)
		}
		return defaultHandler("tollgate_pool_a")(st, req)
	})
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.sim.URL()+"/v1/chat/completions", strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = bufio.NewReader(resp.Body).ReadString('\n')
	cancel()
	resp.Body.Close()
	select {
	case <-canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("upstream request not cancelled after the client went away")
	}
}

func bodyMode(s string) extprocv3.ProcessingMode_BodySendMode {
	return extprocv3.ProcessingMode_BodySendMode(extprocv3.ProcessingMode_BodySendMode_value[s])
}

// The router-level filter's response attributes read the stream's upstream
// host, which Envoy updates per attempt: the response names the deployment
// that answered, not the first one tried.
func TestResponseAttributes_UpstreamHostOfFinalAttempt(t *testing.T) {
	a := startUpstream(t, statusHandler(503))
	b := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	cfg := simConfig{
		RouteExtra:  retryOnStatus,
		Overprov:    100000,
		Endpoints:   endpoints([]string{"dep-a"}, []string{"dep-b"}),
		RouterExtra: "              response_attributes: [\"xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']\"]",
	}
	e := startSim(t, cfg, proc, []string{a.addr(), b.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 200 {
		t.Fatalf("status %d", code)
	}
	router, _ := proc.byKind()
	for _, m := range router[0].messages() {
		if m.GetResponseHeaders() == nil {
			continue
		}
		v := m.GetAttributes()[attributesKey].GetFields()["xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"]
		if v.GetStringValue() != "dep-b" {
			t.Fatalf("response attribute = %v, want dep-b (the final attempt)", v)
		}
		return
	}
	t.Fatal("no response_headers message")
}

func TestIncludeAttemptCountInResponse_CountsAttempts(t *testing.T) {
	for _, on := range []bool{true, false} {
		a := startUpstream(t, statusHandler(503))
		b := startUpstream(t, nil)
		proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
		cfg := simConfig{RouteExtra: retryOnStatus, Overprov: 100000, Endpoints: endpoints([]string{"dep-a"}, []string{"dep-b"}), AttemptCountInResponse: on}
		e := startSim(t, cfg, proc, []string{a.addr(), b.addr()}, nil)
		_, hdr, _ := e.post(t, "/v1/chat/completions", `{}`)
		want := ""
		if on {
			want = "2"
		}
		if got := hdr.Get("x-envoy-attempt-count"); got != want {
			t.Errorf("include_attempt_count_in_response %v: x-envoy-attempt-count = %q, want %q", on, got, want)
		}
	}
}
