package extproc

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

const testConfig = `
server: {max_request_body_bytes: 4096}
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o-2024-08-06, api_base: "http://openai.test/v1", api_key: sk-openai}
    model_info: {id: openai-1}
  - model_name: claude
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_base: "http://anthropic.test", api_key: sk-ant}
    model_info: {id: anthropic-1}
router_settings:
  model_group_alias: {gpt4: gpt-4o}
  fallbacks: [{gpt-4o: [claude]}]
keys:
  - {id: all, key: sk-all}
  - {id: claude-only, key: sk-claude, models: [claude]}
  - {id: limited, key: sk-limited, rpm_limit: 2}
  - {id: budgeted, key: sk-budget, max_budget: 0.000001}
  - {id: single, key: sk-single, max_parallel_requests: 1}
`

func testRuntime(t testing.TB) *config.Runtime {
	t.Helper()
	f, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := f.Build(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// startServer serves a Server on a real loopback gRPC connection, as Envoy
// would reach it.
func startServer(t testing.TB) extprocv3.ExternalProcessorClient {
	return startServerWith(t, Options{})
}

// startServerWith is startServer with options; the clock and request ids
// are fixed.
func startServerWith(t testing.TB, o Options) extprocv3.ExternalProcessorClient {
	t.Helper()
	return startServerOn(t, testRuntime(t), o)
}

// startServerOn is startServerWith on another config.
func startServerOn(t testing.TB, rt *config.Runtime, o Options) extprocv3.ExternalProcessorClient {
	t.Helper()
	o.Now = func() time.Time { return time.Unix(1700000000, 0) }
	o.NewRequestID = func() string { return "generated-id" }
	srv := New(rt, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(GRPCOptions()...)
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn)
}

// exchange plays one filter's stream: it sends each message and waits for
// its reply, as Envoy does outside STREAMED bodies. It stops early after an
// immediate response, as Envoy does.
func exchange(t *testing.T, c extprocv3.ExternalProcessorClient, msgs ...*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	t.Helper()
	stream, err := c.Process(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*extprocv3.ProcessingResponse
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			t.Fatalf("send: %v", err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		out = append(out, resp)
		if resp.GetImmediateResponse() != nil {
			break
		}
	}
	stream.CloseSend()
	return out
}

func headerMap(kv ...string) *corev3.HeaderMap {
	hm := &corev3.HeaderMap{}
	for i := 0; i < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return hm
}

func reqHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...), EndOfStream: eos}}}
}

func reqBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}
}

func respHeaders(kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv...)}}}
}

// respHeadersFromAttempt is a response_headers message as the router-level
// filter gets it from Envoy: the answering deployment as a response
// attribute and the attempt count as a header.
func respHeadersFromAttempt(deployment string, attempts int, kv ...string) *extprocv3.ProcessingRequest {
	r := respHeaders(append(kv, headerAttemptCnt, strconv.Itoa(attempts))...)
	r.Attributes = map[string]*structpb.Struct{attributesKey: {Fields: map[string]*structpb.Value{
		deploymentAttribute: structpb.NewStringValue(deployment),
	}}}
	return r
}

func respBody(body string, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: eos}}}
}

// upstreamHeaders is the first message of an upstream-filter stream: it
// carries the deployment attribute Envoy evaluated on the chosen endpoint
// and the forwarded tollgate namespace.
func upstreamHeaders(deployment string, kv ...string) *extprocv3.ProcessingRequest {
	r := reqHeaders(false, kv...)
	r.Attributes = map[string]*structpb.Struct{attributesKey: {Fields: map[string]*structpb.Value{
		deploymentAttribute: structpb.NewStringValue(deployment),
	}}}
	md, _ := structpb.NewStruct(map[string]any{mdAPI: "chat_completions", mdKeyID: "all"})
	r.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{metadataNamespace: md}}
	return r
}

// headers flattens a mutation for assertions: set headers by key, and the
// removed names.
func headers(m *extprocv3.HeaderMutation) (set map[string]string, removed map[string]bool) {
	set, removed = map[string]string{}, map[string]bool{}
	for _, h := range m.GetSetHeaders() {
		set[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
	for _, r := range m.GetRemoveHeaders() {
		removed[r] = true
	}
	return set, removed
}

// spendLog is a SpendRecorder that keeps what it is given.
type spendLog struct {
	mu      sync.Mutex
	records []accounting.Record
}

func (l *spendLog) Record(r accounting.Record) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
	return true
}

// wait returns the records once n have arrived; streams end (and record)
// after the client's last message.
func (l *spendLog) wait(t *testing.T, n int) []accounting.Record {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		got := append([]accounting.Record(nil), l.records...)
		l.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spend records, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
