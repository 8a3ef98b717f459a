package loadgen

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

func testSequence(t *testing.T, stream bool) *Sequence {
	t.Helper()
	seq := &Sequence{
		RequestBody:  []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`),
		ResponseBody: []byte(`{"id":"x","choices":[]}`),
		Deployment:   "dep-a",
		APIKey:       "sk-test",
	}
	if stream {
		events, err := LoadSSE("../testdata/anthropic_messages.stream.sse")
		if err != nil {
			t.Fatal(err)
		}
		seq.StreamEvents = events
	}
	return seq
}

func kinds(msgs []*extprocv3.ProcessingRequest) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = requestKind(m)
	}
	return out
}

func headerValue(m *extprocv3.ProcessingRequest, key string) (string, bool) {
	var hs []*extprocv3.HttpHeaders
	hs = append(hs, m.GetRequestHeaders(), m.GetResponseHeaders())
	for _, h := range hs {
		for _, hv := range h.GetHeaders().GetHeaders() {
			if hv.GetKey() == key {
				return string(hv.GetRawValue()), true
			}
		}
	}
	return "", false
}

func tollgateMeta(m *extprocv3.ProcessingRequest) map[string]any {
	return m.GetMetadataContext().GetFilterMetadata()[Namespace].AsMap()
}

func TestSequence_Do(t *testing.T) {
	tests := []struct {
		name       string
		stream     bool
		streamed   bool
		attempts   int
		forward    bool
		wantRouter []string
	}{
		{
			name:       "non-stream buffered",
			wantRouter: []string{kindRequestHeaders, kindRequestBody, kindResponseHeaders, kindResponseBody},
		},
		{
			name:       "stream left buffered is one body message",
			stream:     true,
			wantRouter: []string{kindRequestHeaders, kindRequestBody, kindResponseHeaders, kindResponseBody},
		},
		{
			name:     "stream switched to STREAMED sends one chunk per event",
			stream:   true,
			streamed: true,
			attempts: 3,
		},
		{
			name:       "router-level filter forwarding the namespace",
			attempts:   3,
			forward:    true,
			wantRouter: []string{kindRequestHeaders, kindRequestBody, kindResponseHeaders, kindResponseBody},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &fakeServer{streamed: tt.streamed, replyAtEnd: tt.streamed}
			clients := serve(t, srv, 1)
			seq := testSequence(t, tt.stream)
			seq.Attempts = tt.attempts
			seq.RouterForwardsMetadata = tt.forward
			if err := seq.Do(t.Context(), clients[0], "req-1"); err != nil {
				t.Fatalf("Do: %v", err)
			}
			router, upstream := srv.recorded()
			if len(router) != 1 {
				t.Fatalf("router streams = %d, want 1", len(router))
			}
			want := tt.wantRouter
			if tt.streamed {
				want = []string{kindRequestHeaders, kindRequestBody, kindResponseHeaders}
				for range seq.StreamEvents {
					want = append(want, kindResponseBody)
				}
			}
			r := router[0]
			if got := kinds(r); !slices.Equal(got, want) {
				t.Fatalf("router messages = %v, want %v", got, want)
			}
			if len(upstream) != max(tt.attempts, 1) {
				t.Fatalf("upstream streams = %d, want %d", len(upstream), max(tt.attempts, 1))
			}

			// Router-level stream: protocol_config first only, client headers, no attributes.
			if r[0].GetProtocolConfig() == nil || slices.ContainsFunc(r[1:], func(m *extprocv3.ProcessingRequest) bool { return m.GetProtocolConfig() != nil }) {
				t.Error("protocol_config must be on the first router message only")
			}
			if v, _ := headerValue(r[0], "authorization"); v != "Bearer sk-test" {
				t.Errorf("router authorization = %q", v)
			}
			if v, _ := headerValue(r[0], "x-request-id"); v != "req-1" {
				t.Errorf("router x-request-id = %q", v)
			}
			if r[0].GetRequestHeaders().GetEndOfStream() || !r[1].GetRequestBody().GetEndOfStream() {
				t.Error("request headers must have eos false, the body eos true")
			}
			if len(r[0].GetAttributes()) != 0 {
				t.Error("router-level filter has no request_attributes")
			}

			for i, up := range upstream {
				if got := kinds(up); !slices.Equal(got, []string{kindRequestHeaders, kindRequestBody}) {
					t.Fatalf("upstream %d messages = %v", i, got)
				}
				if d := up[0].GetAttributes()[AttributesKey].GetFields()[DeploymentAttribute].GetStringValue(); d != "dep-a" {
					t.Errorf("upstream %d deployment attribute = %q", i, d)
				}
				if up[0].GetProtocolConfig() == nil || up[1].GetProtocolConfig() != nil {
					t.Errorf("upstream %d: protocol_config must be on the first message only", i)
				}
				if _, ok := headerValue(up[0], "authorization"); ok {
					t.Errorf("upstream %d still has authorization, removed by the router reply", i)
				}
				if v, _ := headerValue(up[0], "x-tollgate-pool"); v != "tollgate_pool_gpt-4o-mini" {
					t.Errorf("upstream %d x-tollgate-pool = %q (set by the router body reply)", i, v)
				}
				if v, _ := headerValue(up[0], "x-envoy-attempt-count"); v != string(rune('1'+i)) {
					t.Errorf("upstream %d x-envoy-attempt-count = %q", i, v)
				}
				if !bytes.Equal(up[1].GetRequestBody().GetBody(), seq.RequestBody) || !up[1].GetRequestBody().GetEndOfStream() {
					t.Errorf("upstream %d body is not the pristine body with eos", i)
				}
				md := tollgateMeta(up[0])
				if md["model_group"] != "gpt-4o-mini" || md["request_id"] != "r1" {
					t.Errorf("upstream %d metadata_context = %v, want the router's tollgate values", i, md)
				}
				if _, ok := up[0].GetMetadataContext().GetFilterMetadata()["other"]; ok {
					t.Errorf("upstream %d forwards a namespace that is not received", i)
				}
			}

			if tt.forward {
				// Response phase sees what the upstream filter wrote, merged per key.
				md := tollgateMeta(r[2])
				if md["deployment"] != "dep-a" || md["model_group"] != "gpt-4o-mini" {
					t.Errorf("response_headers metadata_context = %v", md)
				}
				if want := float64(max(tt.attempts, 1)); md["attempt"] != want {
					t.Errorf("attempt = %v, want last writer %v", md["attempt"], want)
				}
			} else {
				// envoy/envoy.yaml: the deployment as a response attribute, the
				// attempt count as a header, and no forwarded namespace.
				if d := r[2].GetAttributes()[AttributesKey].GetFields()[DeploymentAttribute].GetStringValue(); d != "dep-a" {
					t.Errorf("response_headers deployment attribute = %q", d)
				}
				if v, _ := headerValue(r[2], "x-envoy-attempt-count"); v != strconv.Itoa(max(tt.attempts, 1)) {
					t.Errorf("response x-envoy-attempt-count = %q", v)
				}
				for _, m := range r[2:] {
					if m.GetMetadataContext() != nil {
						t.Errorf("router response message carries metadata_context: %v", m.GetMetadataContext())
					}
				}
			}
			ct, _ := headerValue(r[2], "content-type")
			if (ct == "text/event-stream") != tt.stream {
				t.Errorf("response content-type = %q", ct)
			}

			var body []byte
			for i, m := range r[3:] {
				body = append(body, m.GetResponseBody().GetBody()...)
				if last := i == len(r)-4; m.GetResponseBody().GetEndOfStream() != last {
					t.Errorf("response_body %d eos = %v", i, !last)
				}
			}
			if !bytes.Equal(body, seq.bufferedResponse()) {
				t.Error("response body chunks do not add up to the fixture")
			}
		})
	}
}

func TestSequence_DoFailures(t *testing.T) {
	tests := []struct {
		name string
		srv  *fakeServer
		want Failure
	}{
		{
			name: "immediate response",
			srv:  &fakeServer{immediateOn: kindRequestBody},
			want: Failure{Kind: FailImmediate, Phase: PhaseRouterRequestBody, Status: 401},
		},
		{
			name: "wrong reply kind",
			srv:  &fakeServer{wrongKindOn: kindResponseHeaders},
			want: Failure{Kind: FailUnexpected, Phase: PhaseRouterResponseHeaders, Detail: "got request_trailers"},
		},
		{
			name: "immediate response while streaming",
			srv:  &fakeServer{streamed: true, immediateOn: kindResponseBody},
			want: Failure{Kind: FailImmediate, Phase: PhaseRouterResponseBody, Status: 401},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clients := serve(t, tt.srv, 1)
			err := testSequence(t, true).Do(t.Context(), clients[0], "req-1")
			var f *Failure
			if !errors.As(err, &f) {
				t.Fatalf("Do error = %v, want a *Failure", err)
			}
			if *f != tt.want {
				t.Errorf("failure = %+v, want %+v", *f, tt.want)
			}
		})
	}
}

func TestRun_CountsFailures(t *testing.T) {
	clients := serve(t, &fakeServer{immediateOn: kindRequestHeaders}, 2)
	r, err := Run(t.Context(), clients, testSequence(t, false), Load{Concurrency: 2, Requests: 20})
	if err != nil {
		t.Fatal(err)
	}
	if r.Completed != 20 || r.OK != 0 || r.Immediate["401"] != 20 || r.Errors() != 20 {
		t.Errorf("report = %+v, want 20 immediate 401s", r)
	}
}

func TestHold(t *testing.T) {
	srv := &fakeServer{streamed: true}
	clients := serve(t, srv, 2)
	r, err := Hold(t.Context(), clients, testSequence(t, true), HoldConfig{Streams: 50, Parallel: 8, Hold: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Opened != 50 || len(r.Failures) != 0 {
		t.Fatalf("report = %+v, want 50 opened and no failures", r)
	}
	router, _ := srv.recorded()
	for _, msgs := range router {
		want := []string{kindRequestHeaders, kindRequestBody, kindResponseHeaders, kindResponseBody}
		if got := kinds(msgs); !slices.Equal(got, want) {
			t.Fatalf("held stream messages = %v, want %v", got, want)
		}
	}
}

func TestHold_OpenTimeoutCutsStuckRequests(t *testing.T) {
	// replyAtEnd never answers a lone first chunk, so nothing ever opens.
	clients := serve(t, &fakeServer{streamed: true, replyAtEnd: true}, 1)
	start := time.Now()
	r, err := Hold(t.Context(), clients, testSequence(t, true), HoldConfig{Streams: 20, Parallel: 4, OpenTimeout: 300 * time.Millisecond, Hold: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Opened != 0 || r.Failures["not opened: open timeout"] != 16 {
		t.Errorf("report = %+v, want 16 never started and 4 cut", r)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %s; stuck requests must be cut at the open timeout", el)
	}
}
