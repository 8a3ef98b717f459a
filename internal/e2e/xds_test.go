package e2e

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/openai/openai-go/v3/option"
	"google.golang.org/grpc"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/fakeprovider"
	"github.com/tollgate-gw/tollgate/internal/xds"
)

// TestXDS_PoolsFromTheXDSServer runs the dynamic setup of
// examples/xds/envoy.yaml: the pools are not in the bootstrap but rendered
// by Tollgate's xDS server from the gateway config and received over ADS,
// as real Envoy would; requests and fallbacks then work as with static
// pools.
func TestXDS_PoolsFromTheXDSServer(t *testing.T) {
	xdsAddr := startXDS(t, config.Default())
	s := startStackWith(t, "../../examples/xds/envoy.yaml", map[string]string{"127.0.0.1:18000": xdsAddr})
	for _, model := range []string{"gpt-4o", "claude-sonnet"} {
		params := userMessage("pools over ads")
		params.Model = model
		cc, err := s.client.Chat.Completions.New(t.Context(), params)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if cc.Choices[0].Message.Content != "echo: pools over ads" {
			t.Errorf("%s: content %q", model, cc.Choices[0].Message.Content)
		}
	}

	// The rendered gpt-4o pool holds claude-sonnet as its fallback priority.
	s.openai.Enqueue(fakeprovider.Step{Status: 503})
	var resp *http.Response
	params := userMessage("fall back over ads")
	params.Model = "gpt-4o"
	if _, err := s.client.Chat.Completions.New(t.Context(), params, option.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("x-tollgate-deployment"); got != "anthropic-claude-sonnet" {
		t.Errorf("x-tollgate-deployment = %q, want the fallback", got)
	}
}

// startXDS serves Tollgate's xDS server for a gateway config on loopback
// and returns its address.
func startXDS(t *testing.T, cfg []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	xs, err := xds.NewServer(t.Context(), xds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := xs.Reload(t.Context(), xds.Source{Path: path, Env: func(string) (string, bool) { return "", false }}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	xs.Register(gs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}
