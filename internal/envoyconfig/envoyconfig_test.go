package envoyconfig_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate-gw/tollgate/internal/envoyconfig"
)

const repoRoot = "../.."

// repoBootstraps lists every file under envoy/ and every examples/**/envoy*.yaml.
func repoBootstraps(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(repoRoot, "envoy"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk envoy/: %v", err)
	}
	err = filepath.WalkDir(filepath.Join(repoRoot, "examples"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if !d.IsDir() && strings.HasPrefix(name, "envoy") && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("walk examples/: %v", err)
	}
	return files
}

func TestLoad_EveryRepoBootstrapIsValid(t *testing.T) {
	files := repoBootstraps(t)
	if len(files) < 2 {
		t.Fatalf("found %d bootstrap files, want envoy/envoy.yaml and examples/local/envoy.yaml at least", len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			b, err := envoyconfig.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.GetStaticResources().GetListeners()) == 0 {
				t.Errorf("no listeners")
			}
		})
	}
}

// minimal is a valid bootstrap the bad-input cases are derived from.
const minimal = `
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: 10000}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: t
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /}
                direct_response: {status: 404}
          http_filters:
          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              grpc_service: {envoy_grpc: {cluster_name: x}}
              message_timeout: 10s
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`

func TestParse_Minimal(t *testing.T) {
	if _, err := envoyconfig.Parse([]byte(minimal)); err != nil {
		t.Fatal(err)
	}
}

func TestParse_RejectsBadInput(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		wantAll  []string
	}{
		{
			name:    "unknown field",
			old:     "stat_prefix: t",
			new:     "stat_prefix: t\n          stat_prefixx: t",
			wantAll: []string{"unknown field", "stat_prefixx", "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"},
		},
		{
			name:    "bad enum",
			old:     "codec_type: AUTO",
			new:     "codec_type: auto",
			wantAll: []string{"codec_type", "invalid enum value", `"auto"`},
		},
		{
			name:    "invalid value inside typed_config",
			old:     "message_timeout: 10s",
			new:     "message_timeout: 7200s",
			wantAll: []string{"MessageTimeout", "http_filters[0].typed_config", "ExternalProcessor"},
		},
		{
			name:    "empty domains inside the HCM",
			old:     `domains: ["*"]`,
			new:     `domains: []`,
			wantAll: []string{"Domains", "at least 1 item"},
		},
		{
			name:    "unresolvable type",
			old:     "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
			new:     "type.googleapis.com/envoy.extensions.filters.http.nosuch.v3.Nope",
			wantAll: []string{"unresolvable", "nosuch", "http_filters[1].typed_config"},
		},
		{
			name:    "invalid top-level value",
			old:     "name: l\n",
			new:     "name: l\n    per_connection_buffer_limit_bytes: -1\n",
			wantAll: []string{"per_connection_buffer_limit_bytes"},
		},
		{
			name:    "not yaml",
			old:     "static_resources:",
			new:     "static_resources: [",
			wantAll: []string{"yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Replace(minimal, tt.old, tt.new, 1)
			if in == minimal {
				t.Fatalf("test case did not change the input")
			}
			_, err := envoyconfig.Parse([]byte(in))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, w := range tt.wantAll {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			t.Log(err)
		})
	}
}

func TestParse_EmptyAnyIsSkipped(t *testing.T) {
	in := strings.Replace(minimal, `typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router`, "typed_config: {}", 1)
	if _, err := envoyconfig.Parse([]byte(in)); err != nil {
		t.Fatal(err)
	}
}

func TestLoad_ErrorNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("nosuchfield: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := envoyconfig.Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "nosuchfield") {
		t.Fatalf("Load error = %v, want it to name %s and the field", err, p)
	}
}

func TestValidateTypedConfigs(t *testing.T) {
	opts := func(msgTimeout *durationpb.Duration) *clusterv3.Cluster {
		ep := &extprocv3.ExternalProcessor{
			GrpcService:    &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "x"}}},
			MessageTimeout: msgTimeout,
		}
		po := &upstreamhttpv3.HttpProtocolOptions{UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}}}},
		}
		po.HttpFilters = []*hcmv3.HttpFilter{
			{Name: "envoy.filters.http.ext_proc", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, ep)}},
		}
		return &clusterv3.Cluster{Name: "c", TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(t, po),
		}}
	}
	tests := []struct {
		name    string
		msg     *clusterv3.Cluster
		wantErr []string
	}{
		{name: "valid nested typed_config", msg: opts(durationpb.New(time.Second))},
		{name: "invalid nested typed_config", msg: opts(durationpb.New(2 * time.Hour)),
			wantErr: []string{`typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http_filters[0].typed_config`, "MessageTimeout"}},
		// The message's own constraints are the caller's job (an empty name
		// fails Cluster.ValidateAll, not this).
		{name: "own constraints not checked", msg: &clusterv3.Cluster{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := envoyconfig.ValidateTypedConfigs(tt.msg)
			if (err != nil) != (len(tt.wantErr) > 0) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
