package envoysim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func hv(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}

func headerValue(msgs *procv3.HttpHeaders, k string) (string, bool) {
	for _, h := range msgs.GetHeaders().GetHeaders() {
		if h.GetKey() == k {
			return string(h.GetRawValue()), true
		}
	}
	return "", false
}

// kinds lists the oneof case of each message.
func kinds(msgs []*procv3.ProcessingRequest) string {
	var out []string
	for _, m := range msgs {
		switch r := m.GetRequest().(type) {
		case *procv3.ProcessingRequest_RequestHeaders:
			out = append(out, "request_headers")
		case *procv3.ProcessingRequest_RequestBody:
			out = append(out, "request_body")
			if r.RequestBody.GetEndOfStream() {
				out[len(out)-1] += "(eos)"
			}
		case *procv3.ProcessingRequest_ResponseHeaders:
			out = append(out, "response_headers")
		case *procv3.ProcessingRequest_ResponseBody:
			out = append(out, "response_body")
			if r.ResponseBody.GetEndOfStream() {
				out[len(out)-1] += "(eos)"
			}
		default:
			out = append(out, "other")
		}
	}
	return strings.Join(out, ",")
}

func TestRouting_DirectResponseCatchAll(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, []string{"127.0.0.1:1"}, nil)
	code, h, body := e.post(t, "/v1/chat/completions", `{}`)
	if code != 404 || h.Get("content-type") != "application/json" || !strings.Contains(body, "no route") {
		t.Fatalf("got %d %q %q, want the 404 direct response with JSON content type", code, h.Get("content-type"), body)
	}
	// The router-level filter sees the direct response's headers.
	router, _ := proc.byKind()
	if len(router) != 1 || !strings.Contains(kinds(router[0].messages()), "response_headers") {
		t.Fatalf("router stream messages = %v", kinds(router[0].messages()))
	}
}

func TestMessageOrder_BufferedIsOneBodyMessage(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	code, _, body := e.post(t, "/v1/chat/completions", strings.Repeat("x", 100_000))
	if code != 200 || body != `{"ok":true}` {
		t.Fatalf("got %d %q", code, body)
	}
	router, upstream := proc.byKind()
	if got, want := kinds(router[0].messages()), "request_headers,request_body(eos),response_headers,response_body(eos)"; got != want {
		t.Errorf("router-level order = %s, want %s", got, want)
	}
	if got, want := kinds(upstream[0].messages()), "request_headers,request_body(eos)"; got != want {
		t.Errorf("upstream order = %s, want %s", got, want)
	}
	if n := len(router[0].messages()[1].GetRequestBody().GetBody()); n != 100_000 {
		t.Errorf("buffered body has %d bytes, want all 100000 in one message", n)
	}
}

func TestMessageOrder_EndOfStreamHeadersMeansNoBodyMessage(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, nil, nil)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.sim.URL()+"/v1/models", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	router, _ := proc.byKind()
	msgs := router[0].messages()
	if !msgs[0].GetRequestHeaders().GetEndOfStream() || strings.Contains(kinds(msgs), "request_body") {
		t.Fatalf("messages = %s, want request_headers with end_of_stream and no request_body", kinds(msgs))
	}
}

func TestStream_ProtocolConfigOnlyOnFirstMessage(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{"model":"a"}`)
	for _, st := range proc.all() {
		for i, m := range st.messages() {
			if (m.GetProtocolConfig() != nil) != (i == 0) {
				t.Errorf("message %d protocol_config present = %v", i, m.GetProtocolConfig() != nil)
			}
		}
		if pc := st.messages()[0].GetProtocolConfig(); pc.GetRequestBodyMode() != extprocv3.ProcessingMode_BUFFERED {
			t.Errorf("protocol_config = %v", pc)
		}
	}
}

func TestStream_HeaderKeysLowercaseInRawValue(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`, "X-Mixed-Case", "Value")
	router, _ := proc.byKind()
	for _, h := range router[0].messages()[0].GetRequestHeaders().GetHeaders().GetHeaders() {
		if h.GetKey() != strings.ToLower(h.GetKey()) || h.GetValue() != "" {
			t.Errorf("header %q value=%q: want a lowercase key and raw_value only", h.GetKey(), h.GetValue())
		}
	}
	if v, ok := headerValue(router[0].messages()[0].GetRequestHeaders(), "x-mixed-case"); !ok || v != "Value" {
		t.Errorf("x-mixed-case = %q, %v", v, ok)
	}
	for _, k := range []string{":method", ":path", ":authority", ":scheme", "x-request-id"} {
		if _, ok := headerValue(router[0].messages()[0].GetRequestHeaders(), k); !ok {
			t.Errorf("request_headers lacks %s", k)
		}
	}
}

func TestAttributes_OnlyOnFirstMessagePerDirection(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{RouterExtra: "              request_attributes: [request.path]\n              response_attributes: [response.code]"}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	router, _ := proc.byKind()
	var with []string
	for _, m := range router[0].messages() {
		if a := m.GetAttributes()[attributesKey]; a != nil {
			with = append(with, kinds([]*procv3.ProcessingRequest{m}))
			if m.GetRequestHeaders() != nil && a.GetFields()["request.path"].GetStringValue() != "/v1/chat/completions" {
				t.Errorf("request.path = %v", a.GetFields()["request.path"])
			}
			if m.GetResponseHeaders() != nil && a.GetFields()["response.code"].GetNumberValue() != 200 {
				t.Errorf("response.code = %v", a.GetFields()["response.code"])
			}
		}
	}
	if got := strings.Join(with, ","); got != "request_headers,response_headers" {
		t.Fatalf("attributes on %s, want request_headers,response_headers", got)
	}
}

func TestUpstreamAttributes_HostMetadataLeafIsString(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	_, upstream := proc.byKind()
	if len(upstream) != 1 {
		t.Fatalf("%d upstream streams", len(upstream))
	}
	msgs := upstream[0].messages()
	v := msgs[0].GetAttributes()[attributesKey].GetFields()["xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"]
	if v.GetStringValue() != "dep-a" {
		t.Fatalf("attribute = %v, want string dep-a", v)
	}
	if msgs[1].GetAttributes() != nil {
		t.Errorf("attributes repeated on the body message")
	}
}

func TestModeOverride_OmittedBodyModeMeansNone(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		switch {
		case st.upstream:
			return one(cont(req))
		case req.GetRequestHeaders() != nil:
			r := reply(req, routeToPool("tollgate_pool_a"))
			// Only the request body mode is named: the response body mode
			// becomes NONE.
			r.ModeOverride = &extprocv3.ProcessingMode{RequestBodyMode: extprocv3.ProcessingMode_BUFFERED}
			return one(r)
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	code, _, body := e.post(t, "/v1/chat/completions", `{}`)
	router, _ := proc.byKind()
	if got := kinds(router[0].messages()); code != 200 || body != `{"ok":true}` || got != "request_headers,request_body(eos),response_headers" {
		t.Fatalf("got %d %q, messages %s; want no response_body message", code, body, got)
	}
}

func TestModeOverride_IgnoredWithoutAllowModeOverride(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestHeaders() != nil {
			r := cont(req)
			r.ModeOverride = &extprocv3.ProcessingMode{}
			return one(r)
		}
		return defaultHandler("tollgate_pool_a")(st, req)
	})
	e := startSim(t, simConfig{RouterExtra: "              allow_mode_override: false"}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	router, _ := proc.byKind()
	if got := kinds(router[0].messages()); got != "request_headers,request_body(eos),response_headers,response_body(eos)" {
		t.Fatalf("messages %s: the override must be ignored", got)
	}
}

func TestModeOverride_IgnoredInBodyReply(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			r := reply(req, routeToPool("tollgate_pool_a"))
			r.ModeOverride = &extprocv3.ProcessingMode{}
			return one(r)
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	router, _ := proc.byKind()
	if got := kinds(router[0].messages()); got != "request_headers,request_body(eos),response_headers,response_body(eos)" {
		t.Fatalf("messages %s: a body reply's mode_override must be ignored", got)
	}
}

func TestStreamed_ChunksReinjectedFIFO(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "text/event-stream")
		for _, c := range []string{"data: a\n\n", "data: b\n\n", "data: c\n\n"} {
			_, _ = w.Write([]byte(c))
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
	})
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		switch {
		case st.upstream:
			return one(cont(req))
		case req.GetRequestBody() != nil:
			return one(reply(req, routeToPool("tollgate_pool_a")))
		case req.GetResponseHeaders() != nil:
			r := cont(req)
			r.ModeOverride = &extprocv3.ProcessingMode{RequestBodyMode: extprocv3.ProcessingMode_BUFFERED, ResponseBodyMode: extprocv3.ProcessingMode_STREAMED}
			return one(r)
		case req.GetResponseBody() != nil:
			b := strings.ToUpper(string(req.GetResponseBody().GetBody()))
			return one(reply(req, &procv3.CommonResponse{BodyMutation: &procv3.BodyMutation{Mutation: &procv3.BodyMutation_Body{Body: []byte(b)}}}))
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	code, h, body := e.post(t, "/v1/chat/completions", `{}`)
	if code != 200 || body != "DATA: A\n\nDATA: B\n\nDATA: C\n\n" {
		t.Fatalf("got %d %q", code, body)
	}
	if h.Get("content-length") != "" {
		t.Errorf("content-length %q kept in STREAMED mode", h.Get("content-length"))
	}
	router, _ := proc.byKind()
	if n := strings.Count(kinds(router[0].messages()), "response_body"); n < 3 {
		t.Errorf("%d response_body messages, want one per chunk (>= 3)", n)
	}
}

func TestReply_WrongOneofIsStatusOnError(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		// Answer request_headers with a request_body reply.
		return one(&procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestBody{RequestBody: &procv3.BodyResponse{}}})
	})
	e := startSim(t, simConfig{}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 500 {
		t.Fatalf("status %d, want 500", code)
	}
	if e.sim.Counter("ext_proc.spurious_msgs_received") != 1 {
		t.Errorf("spurious_msgs_received = %d", e.sim.Counter("ext_proc.spurious_msgs_received"))
	}
}

func TestReply_StatusOnErrorConfigurable(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, _ *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		return nil, grpcErr(codes.Internal)
	})
	e := startSim(t, simConfig{RouterExtra: "              status_on_error: {code: 503}"}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 503 {
		t.Fatalf("status %d, want status_on_error 503", code)
	}
}

func TestReply_SpuriousWithFailureModeAllowContinues(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			return one(&procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseBody{ResponseBody: &procv3.BodyResponse{}}})
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{RouterExtra: "              failure_mode_allow: true"}, proc, []string{up.addr()}, nil)
	// ext_proc is dropped, so the pool header is never set: catch-all 404.
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 404 {
		t.Fatalf("status %d, want the request to continue (404 catch-all)", code)
	}
}

func TestHeaderMutation_AppendFlagOnly(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			cr := routeToPool("tollgate_pool_a")
			appendAction := hv("x-action", "new")
			appendAction.AppendAction = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD // ignored
			appendFlag := hv("x-flag", "new")
			//lint:ignore SA1019 the deprecated flag is the one Envoy's ext_proc honours.
			appendFlag.Append = wrapperspb.Bool(true)
			cr.HeaderMutation.SetHeaders = append(cr.HeaderMutation.SetHeaders, appendAction, appendFlag)
			return one(reply(req, cr))
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`, "x-action", "old", "x-flag", "old")
	got := up.requests()[0].header
	if v := got.Values("x-action"); len(v) != 1 || v[0] != "new" {
		t.Errorf("x-action = %v, want [new] (append_action ignored)", v)
	}
	if v := got.Values("x-flag"); len(v) != 2 {
		t.Errorf("x-flag = %v, want [old new]", v)
	}
}

func TestHeaderMutation_ValueOnlySetsEmpty(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			cr := routeToPool("tollgate_pool_a")
			cr.HeaderMutation.SetHeaders = append(cr.HeaderMutation.SetHeaders, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-v", Value: "lost"}})
			return one(reply(req, cr))
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	if v, ok := up.requests()[0].header["X-V"]; !ok || len(v) != 1 || v[0] != "" {
		t.Fatalf("x-v = %v (present %v), want an empty value", v, ok)
	}
}

func TestHeaderMutation_RawValueAndValueIs500(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		hm := &procv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-v", Value: "a", RawValue: []byte("b")}}}}
		return one(reply(req, &procv3.CommonResponse{HeaderMutation: hm}))
	})
	e := startSim(t, simConfig{RouterExtra: "              failure_mode_allow: true"}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 500 {
		t.Fatalf("status %d, want 500 even with failure_mode_allow", code)
	}
}

func TestMutationRules_DefaultTable(t *testing.T) {
	tests := []struct {
		key, value string
		allowed    bool
	}{
		{"host", "evil", false},
		{":authority", "evil", false},
		{":method", "DELETE", false},
		{":scheme", "https", false},
		{"x-envoy-foo", "1", false},
		{":path", "/rewritten", true},
		{"x-custom", "1", true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			up := startUpstream(t, nil)
			proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
				if !st.upstream && req.GetRequestBody() != nil {
					cr := routeToPool("tollgate_pool_a")
					cr.HeaderMutation.SetHeaders = append(cr.HeaderMutation.SetHeaders, hv(tt.key, tt.value))
					return one(reply(req, cr))
				}
				return one(cont(req))
			})
			e := startSim(t, simConfig{NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
			if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 200 {
				t.Fatalf("status %d", code)
			}
			r := up.requests()[0]
			var got string
			switch tt.key {
			case "host", ":authority":
				got = r.host
			case ":path":
				got = r.path
			case ":method", ":scheme":
				got = "" // the upstream request still used POST/http
			default:
				got = r.header.Get(tt.key)
			}
			if (got == tt.value) != tt.allowed {
				t.Errorf("%s applied = %v, want %v", tt.key, got == tt.value, tt.allowed)
			}
			if !tt.allowed && e.sim.Counter("ext_proc.rejected_header_mutations") != 1 {
				t.Errorf("rejected_header_mutations = %d", e.sim.Counter("ext_proc.rejected_header_mutations"))
			}
		})
	}
}

func TestMutationRules_RemoveNeverRemovesPseudoHeadersOrHost(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			cr := routeToPool("tollgate_pool_a")
			cr.HeaderMutation.RemoveHeaders = []string{":path", ":authority", "host", "x-gone"}
			return one(reply(req, cr))
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`, "x-gone", "1")
	r := up.requests()[0]
	if r.path != "/v1/chat/completions" || r.host == "" || r.header.Get("x-gone") != "" {
		t.Fatalf("path %q host %q x-gone %q", r.path, r.host, r.header.Get("x-gone"))
	}
}

func TestContentLength_KeptForBufferedSend(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{"a":1}`)
	router, _ := proc.byKind()
	if v, ok := headerValue(router[0].messages()[0].GetRequestHeaders(), "content-length"); !ok || v != "7" {
		t.Fatalf("content-length in request_headers = %q, %v", v, ok)
	}
}

func TestContentLength_MismatchIs500(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if req.GetRequestBody() != nil {
			cr := routeToPool("tollgate_pool_a")
			cr.BodyMutation = &procv3.BodyMutation{Mutation: &procv3.BodyMutation_Body{Body: []byte("longer body")}}
			return one(reply(req, cr))
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 500 {
		t.Fatalf("status %d, want 500", code)
	}
}

func TestContentLength_FixedInSameReplyPasses(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			cr := routeToPool("tollgate_pool_a")
			cr.HeaderMutation.SetHeaders = append(cr.HeaderMutation.SetHeaders, hv("content-length", "11"))
			cr.BodyMutation = &procv3.BodyMutation{Mutation: &procv3.BodyMutation_Body{Body: []byte("longer body")}}
			return one(reply(req, cr))
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got := up.requests()[0].body; got != "longer body" {
		t.Fatalf("upstream body %q", got)
	}
}

func TestContentLength_StrippedForStreamed(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(_ *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if req.GetRequestHeaders() != nil {
			// A STREAMED body reply cannot mutate headers: route here.
			return one(reply(req, routeToPool("tollgate_pool_a")))
		}
		return one(cont(req))
	})
	mode := "{request_header_mode: SEND, request_body_mode: STREAMED, response_header_mode: SKIP}"
	e := startSim(t, simConfig{RouterMode: mode, NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{"a":1}`)
	router, _ := proc.byKind()
	if _, ok := headerValue(router[0].messages()[0].GetRequestHeaders(), "content-length"); ok {
		t.Fatal("content-length sent with a STREAMED body mode")
	}
	if up.requests()[0].body != `{"a":1}` {
		t.Fatalf("upstream body %q", up.requests()[0].body)
	}
}

func TestBodyReplyHeaderMutation_AppliedOnlyWhileHeadersHeld(t *testing.T) {
	for _, tt := range []struct {
		mode    string
		applied bool
	}{
		{"BUFFERED", true},
		{"STREAMED", false},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			up := startUpstream(t, nil)
			proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
				if req.GetResponseBody() != nil {
					return one(reply(req, &procv3.CommonResponse{HeaderMutation: setHeaders("x-late", "1")}))
				}
				return defaultHandler("tollgate_pool_a")(st, req)
			})
			mode := "{request_body_mode: BUFFERED, response_body_mode: " + tt.mode + "}"
			e := startSim(t, simConfig{RouterMode: mode, NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
			_, h, _ := e.post(t, "/v1/chat/completions", `{}`)
			if (h.Get("x-late") == "1") != tt.applied {
				t.Fatalf("x-late applied = %v, want %v", h.Get("x-late") == "1", tt.applied)
			}
		})
	}
}

func TestContinueAndReplace_DropsContentLengthAndStopsBodyMessages(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestHeaders() != nil {
			cr := routeToPool("tollgate_pool_a")
			cr.Status = procv3.CommonResponse_CONTINUE_AND_REPLACE
			cr.HeaderMutation.SetHeaders = append(cr.HeaderMutation.SetHeaders, hv("content-length", "8"))
			cr.BodyMutation = &procv3.BodyMutation{Mutation: &procv3.BodyMutation_Body{Body: []byte("replaced")}}
			return one(reply(req, cr))
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{"original":true}`); code != 200 {
		t.Fatalf("status %d", code)
	}
	r := up.requests()[0]
	if r.body != "replaced" || r.header.Get("content-length") != "" {
		t.Fatalf("upstream got body %q content-length %q", r.body, r.header.Get("content-length"))
	}
	router, _ := proc.byKind()
	if strings.Contains(kinds(router[0].messages()), "request_body") {
		t.Errorf("request_body sent after CONTINUE_AND_REPLACE: %s", kinds(router[0].messages()))
	}
}

func TestContinueAndReplace_IgnoredInBodyReply(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			cr := routeToPool("tollgate_pool_a")
			cr.Status = procv3.CommonResponse_CONTINUE_AND_REPLACE
			return one(reply(req, cr))
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	router, _ := proc.byKind()
	if got := kinds(router[0].messages()); got != "request_headers,request_body(eos),response_headers,response_body(eos)" {
		t.Fatalf("messages %s", got)
	}
}

func TestClearRouteCache_ReroutesWithHeaderMutation(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 200 || len(up.requests()) != 1 {
		t.Fatalf("status %d, upstream requests %d", code, len(up.requests()))
	}
}

func TestClearRouteCache_IgnoredWithoutHeaderMutation(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if req.GetRequestHeaders() != nil {
			return one(reply(req, &procv3.CommonResponse{HeaderMutation: setHeaders("x-tollgate-pool", "tollgate_pool_a")}))
		}
		if req.GetRequestBody() != nil {
			return one(reply(req, &procv3.CommonResponse{ClearRouteCache: true}))
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 404 {
		t.Fatalf("status %d, want the cached catch-all 404", code)
	}
	if e.sim.Counter("ext_proc.clear_route_cache_ignored") != 1 {
		t.Errorf("clear_route_cache_ignored = %d", e.sim.Counter("ext_proc.clear_route_cache_ignored"))
	}
}

func TestClearRouteCache_IgnoredInResponseDirection(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if req.GetResponseHeaders() != nil {
			return one(reply(req, &procv3.CommonResponse{HeaderMutation: setHeaders("x-a", "1"), ClearRouteCache: true}))
		}
		return defaultHandler("tollgate_pool_a")(st, req)
	})
	e := startSim(t, simConfig{NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	if e.sim.Counter("ext_proc.route_cache_cleared") != 1 || e.sim.Counter("ext_proc.clear_route_cache_ignored") != 1 {
		t.Fatalf("cleared %d ignored %d", e.sim.Counter("ext_proc.route_cache_cleared"), e.sim.Counter("ext_proc.clear_route_cache_ignored"))
	}
}

func TestClusterHeader_UnknownClusterIs503(t *testing.T) {
	proc := startExtProc(t, defaultHandler("tollgate_pool_nosuch"))
	e := startSim(t, simConfig{}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 503 {
		t.Fatalf("status %d, want 503", code)
	}
}

func TestExtProcPerRoute_DisabledSkipsFilter(t *testing.T) {
	admin := startUpstream(t, nil)
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{}, proc, []string{"127.0.0.1:1"}, func(o *Options) {
		o.ClusterOverrides["admin"] = []string{admin.addr()}
	})
	if code, _, _ := e.post(t, "/key/generate", `{}`); code != 200 {
		t.Fatalf("status %d", code)
	}
	if n := len(proc.all()); n != 0 {
		t.Fatalf("%d ext_proc streams on a disabled route", n)
	}
}

func TestImmediateResponse_StatusBelow200Is200(t *testing.T) {
	for _, tt := range []struct {
		name string
		code typev3.StatusCode
		want int
	}{
		{"missing", 0, 200},
		{"informational", typev3.StatusCode_Continue, 200},
		{"401", typev3.StatusCode_Unauthorized, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proc := startExtProc(t, func(_ *fakeStream, _ *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
				ir := &procv3.ImmediateResponse{Body: []byte(`{"error":{}}`), Headers: setHeaders("content-type", "application/json")}
				if tt.code != 0 {
					ir.Status = &typev3.HttpStatus{Code: tt.code}
				}
				return one(&procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: ir}})
			})
			e := startSim(t, simConfig{}, proc, nil, nil)
			code, h, body := e.post(t, "/v1/chat/completions", `{}`)
			if code != tt.want || body != `{"error":{}}` || h.Get("content-type") != "application/json" {
				t.Fatalf("got %d %q %q", code, body, h.Get("content-type"))
			}
		})
	}
}

func TestDynamicMetadata_OnlyReceivingNamespacesMergedAndForwarded(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			r := reply(req, routeToPool("tollgate_pool_a"))
			md, _ := structpb.NewStruct(map[string]any{
				"tollgate": map[string]any{"key_id": "k1", "model_group": "a"},
				"other":    map[string]any{"x": "dropped"},
			})
			r.DynamicMetadata = md
			return one(r)
		}
		if st.upstream && req.GetRequestBody() != nil {
			r := cont(req)
			md, _ := structpb.NewStruct(map[string]any{"tollgate": map[string]any{"deployment": "dep-a", "model_group": "a2"}})
			r.DynamicMetadata = md
			return one(r)
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{}, proc, []string{up.addr()}, nil)
	e.post(t, "/v1/chat/completions", `{}`)
	router, upstream := proc.byKind()
	fwd := upstream[0].messages()[0].GetMetadataContext().GetFilterMetadata()
	if fwd["tollgate"].GetFields()["key_id"].GetStringValue() != "k1" || fwd["other"] != nil {
		t.Fatalf("upstream metadata_context = %v", fwd)
	}
	var resp *procv3.ProcessingRequest
	for _, m := range router[0].messages() {
		if m.GetResponseHeaders() != nil {
			resp = m
		}
	}
	got := resp.GetMetadataContext().GetFilterMetadata()["tollgate"].AsMap()
	want := map[string]any{"key_id": "k1", "model_group": "a2", "deployment": "dep-a"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("response_headers metadata %s = %v, want %v (merged per key)", k, got[k], v)
		}
	}
}

func TestMessageTimeout_Is504(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, _ *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		return nil, nil // never answer
	})
	e := startSim(t, simConfig{RouterExtra: "              message_timeout: 0.1s"}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 504 {
		t.Fatalf("status %d, want 504", code)
	}
}

func TestFailureModeAllow_TimeoutContinues(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, _ *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		return nil, nil
	})
	e := startSim(t, simConfig{RouterExtra: "              message_timeout: 0.1s\n              failure_mode_allow: true"}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 404 {
		t.Fatalf("status %d, want the request to continue to the catch-all 404", code)
	}
}

func TestOverrideMessageTimeout_ExtendsOncePerState(t *testing.T) {
	tests := []struct {
		name      string
		overrides []time.Duration
		want      int
	}{
		{"none", nil, 504},
		{"one override extends", []time.Duration{2 * time.Second}, 404},
		{"over max_message_timeout ignored", []time.Duration{10 * time.Second}, 504},
		{"second override in the same state ignored", []time.Duration{300 * time.Millisecond, 2 * time.Second}, 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
				if req.GetRequestHeaders() == nil {
					return one(cont(req))
				}
				for _, d := range tt.overrides {
					st.sendNow(&procv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(d)})
				}
				time.Sleep(600 * time.Millisecond) // past message_timeout
				return one(cont(req))
			})
			e := startSim(t, simConfig{RouterExtra: "              message_timeout: 0.2s\n              max_message_timeout: 5s"}, proc, nil, nil)
			if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != tt.want {
				t.Fatalf("status %d, want %d", code, tt.want)
			}
		})
	}
}

func TestGrpcError_IsStatusOnError500(t *testing.T) {
	proc := startExtProc(t, func(_ *fakeStream, _ *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		return nil, grpcErr(codes.Unavailable)
	})
	e := startSim(t, simConfig{}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 500 {
		t.Fatalf("status %d, want 500", code)
	}
}

func TestStreamOpenFailure_Is500(t *testing.T) {
	e := startSim(t, simConfig{}, nil, nil, func(o *Options) {
		o.ClusterOverrides["extproc"] = []string{"127.0.0.1:1"}
	})
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 500 {
		t.Fatalf("status %d, want 500", code)
	}
}

func TestServerCloseOK_ContinuesWithoutExtProc(t *testing.T) {
	up := startUpstream(t, nil)
	proc := startExtProc(t, func(st *fakeStream, req *procv3.ProcessingRequest) ([]*procv3.ProcessingResponse, error) {
		if !st.upstream && req.GetRequestBody() != nil {
			return one(reply(req, routeToPool("tollgate_pool_a")))
		}
		if req.GetResponseHeaders() != nil {
			return nil, errCloseOK
		}
		return one(cont(req))
	})
	e := startSim(t, simConfig{NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	code, _, body := e.post(t, "/v1/chat/completions", `{}`)
	if code != 200 || body != `{"ok":true}` {
		t.Fatalf("got %d %q, want the upstream response unprocessed", code, body)
	}
}

func TestBufferLimit_BufferedRequestOverLimitIs413(t *testing.T) {
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{ListenerLimit: 1000}, proc, nil, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", strings.Repeat("x", 1001)); code != 413 {
		t.Fatalf("status %d, want 413", code)
	}
}

func TestBufferLimit_BufferedResponseOverLimitIs500(t *testing.T) {
	up := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("y", 2000)))
	})
	proc := startExtProc(t, defaultHandler("tollgate_pool_a"))
	e := startSim(t, simConfig{ListenerLimit: 1000, NoUpstreamProc: true}, proc, []string{up.addr()}, nil)
	if code, _, _ := e.post(t, "/v1/chat/completions", `{}`); code != 500 {
		t.Fatalf("status %d, want 500", code)
	}
}
