// Package e2e proves Tollgate end to end the way users run it: a real
// OpenAI SDK → the Envoy stand-in (reading examples/local/envoy.yaml) →
// the ext_proc server → fake providers that check requests against the
// providers' real schemas.
package e2e

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/envoysim"
	"github.com/tollgate-gw/tollgate/internal/extproc"
	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

const (
	demoKey = "sk-tollgate-demo"
	// restrictedKey may call claude-sonnet only.
	restrictedKey = "sk-restricted"
)

// stack is one running gateway with its fakes.
type stack struct {
	openai    *fakeprovider.Server
	anthropic *fakeprovider.Server
	sim       *envoysim.Sim
	logs      *syncBuffer
	client    openai.Client
	registry  *prometheus.Registry
	spend     *accounting.Recorder
}

// syncBuffer collects the ext_proc server's logs across goroutines.
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

// startStack runs the embedded demo config behind examples/local/envoy.yaml,
// with every address the bootstrap names rewritten to this test's servers.
func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackWith(t, "../../examples/local/envoy.yaml", nil)
}

// startStackWith runs the stack behind another bootstrap; extra rewrites
// more of the addresses it names (an xDS server's, say).
func startStackWith(t *testing.T, bootstrap string, extra map[string]string) *stack {
	t.Helper()
	s := &stack{
		openai:    fakeprovider.Start(t, fakeprovider.OpenAI, fakeprovider.WithAPIKey("sk-fake-openai")),
		anthropic: fakeprovider.Start(t, fakeprovider.Anthropic, fakeprovider.WithAPIKey("sk-ant-fake")),
		logs:      &syncBuffer{},
	}
	f, err := config.Parse(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	f.Keys = append(f.Keys, config.KeyEntry{ID: "restricted", Key: restrictedKey, Models: []string{"claude-sonnet"}})
	rt, err := f.Build(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	s.registry = prometheus.NewPedanticRegistry()
	metrics, err := accounting.NewMetrics(s.registry)
	if err != nil {
		t.Fatal(err)
	}
	metrics.SetBounds(rt.LabelBounds())
	s.spend = accounting.NewRecorder(accounting.RecorderConfig{Metrics: metrics, FlushInterval: 10 * time.Millisecond})
	t.Cleanup(func() { s.spend.Close(context.Background()) })
	addr := startExtProc(t, rt, extproc.Options{Logger: slog.New(slog.NewJSONHandler(s.logs, nil)), Metrics: metrics, Spend: s.spend})

	hostOf := func(raw string) string { u, _ := url.Parse(raw); return u.Host }
	rewrite := map[string]string{
		"127.0.0.1:50051": addr,
		"127.0.0.1:18081": hostOf(s.openai.URL()),
		"127.0.0.1:18082": hostOf(s.anthropic.URL()),
	}
	for from, to := range extra {
		rewrite[from] = to
	}
	s.sim = startSim(t, bootstrap, rewrite)
	s.client = openai.NewClient(
		option.WithBaseURL(s.sim.URL()+"/v1/"),
		option.WithAPIKey(demoKey),
		option.WithMaxRetries(0),
	)
	return s
}

// startExtProc serves the ext_proc server for rt on loopback and returns
// its address.
func startExtProc(t *testing.T, rt *config.Runtime, o extproc.Options) string {
	t.Helper()
	srv := extproc.New(rt, o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(append(extproc.GRPCOptions(), grpc.MaxRecvMsgSize(extproc.MessageLimit(rt.Server.MaxRequestBodyBytes)))...)
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

// startSim runs the Envoy stand-in on a bootstrap, with the addresses it
// names rewritten to this test's servers, and waits until its clusters are
// warm (those from xDS included).
func startSim(t *testing.T, bootstrap string, rewrite map[string]string) *envoysim.Sim {
	t.Helper()
	sim, err := envoysim.LoadFile(bootstrap, envoysim.Options{
		ListenAddr:      "127.0.0.1:0",
		BackoffDisabled: true,
		RewriteAddress: func(_, addr string) string {
			if to, ok := rewrite[addr]; ok {
				return to
			}
			return addr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ready, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := sim.WaitReady(ready); err != nil {
		t.Fatalf("stand-in not ready: %v", err)
	}
	return sim
}

func userMessage(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)}}
}

// lastBody is the body the fake provider received last.
func lastBody(t *testing.T, f *fakeprovider.Server) string {
	t.Helper()
	reqs := f.Requests()
	if len(reqs) == 0 {
		t.Fatal("the provider received no request")
	}
	return string(reqs[len(reqs)-1].Body)
}
