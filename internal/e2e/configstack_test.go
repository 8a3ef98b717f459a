package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/extproc"
	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

// configStack is a gateway run from a test's own config, with the pools
// rendered by the xDS server as in production, and both SDKs pointed at
// it.
type configStack struct {
	client    openai.Client
	anthropic anthropic.Client
	spend     *accounting.Recorder
}

// startConfigStack runs cfg behind examples/xds/envoy.yaml. Each tweak
// adjusts the runtime config before the ext_proc server gets it (Vertex
// credentials, say).
func startConfigStack(t *testing.T, cfg string, tweaks ...func(*config.Runtime)) *configStack {
	t.Helper()
	rt, err := config.FromBytes([]byte(cfg), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	for _, tweak := range tweaks {
		tweak(rt)
	}
	s := &configStack{spend: accounting.NewRecorder(accounting.RecorderConfig{FlushInterval: 5 * time.Millisecond})}
	t.Cleanup(func() { s.spend.Close(context.Background()) })
	extprocAddr := startExtProc(t, rt, extproc.Options{Spend: s.spend})
	xdsAddr := startXDS(t, []byte(cfg))
	sim := startSim(t, "../../examples/xds/envoy.yaml", map[string]string{"127.0.0.1:50051": extprocAddr, "127.0.0.1:18000": xdsAddr})
	s.client = openai.NewClient(option.WithBaseURL(sim.URL()+"/v1/"), option.WithAPIKey(demoKey), option.WithMaxRetries(0))
	s.anthropic = anthropic.NewClient(anthropicopt.WithBaseURL(sim.URL()), anthropicopt.WithAPIKey(demoKey), anthropicopt.WithMaxRetries(0))
	return s
}

// records waits for n spend records of a model group and returns them,
// newest first.
func (s *configStack) records(t *testing.T, group string, n int) []accounting.Record {
	t.Helper()
	var recs []accounting.Record
	for deadline := time.Now().Add(5 * time.Second); len(recs) < n && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		recs, _ = s.spend.Query(context.Background(), accounting.Filter{ModelGroup: group})
	}
	if len(recs) < n {
		t.Fatalf("%d spend records for %s, want %d", len(recs), group, n)
	}
	return recs
}
