package xds_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/envoyconfig"
	"github.com/tollgate-gw/tollgate/internal/xds"
)

const repoRoot = "../.."

// fakeEnv resolves every os.environ/ reference to a placeholder secret.
func fakeEnv(name string) (string, bool) { return "test-" + strings.ToLower(name), true }

// render loads config YAML and renders its pools with default options.
func render(t *testing.T, yaml string) []*clusterv3.Cluster {
	t.Helper()
	out, err := renderErr(yaml)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func renderErr(yaml string) ([]*clusterv3.Cluster, error) {
	rt, err := config.FromBytes([]byte(yaml), fakeEnv)
	if err != nil {
		return nil, err
	}
	res, err := xds.Render(rt, xds.RenderOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]*clusterv3.Cluster, len(res))
	for i, r := range res {
		out[i] = r.(*clusterv3.Cluster)
	}
	return out, nil
}

// toMap turns a message into generic JSON with every Any expanded, so two
// messages compare field by field whatever the bytes inside their Anys.
func toMap(t *testing.T, m proto.Message) map[string]any {
	t.Helper()
	js, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// diff lists the paths at which got and want differ.
func diff(path string, got, want any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		var out []string
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range keys {
				if !yield(k) {
					return
				}
			}
		}) {
			gv, gok := g[k]
			wv, wok := w[k]
			switch {
			case !gok:
				out = append(out, fmt.Sprintf("%s.%s: missing, want %v", path, k, wv))
			case !wok:
				out = append(out, fmt.Sprintf("%s.%s: got %v, not in want", path, k, gv))
			default:
				out = append(out, diff(path+"."+k, gv, wv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
		}
		var out []string
		for i := range w {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(got, want) {
		return []string{fmt.Sprintf("%s: got %v, want %v", path, got, want)}
	}
	return nil
}

func TestRender_ProductionExampleMatchesEnvoyYAML(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "examples/production/tollgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, string(data))
	boot, err := envoyconfig.Load(filepath.Join(repoRoot, "envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*clusterv3.Cluster{}
	for _, c := range boot.GetStaticResources().GetClusters() {
		if strings.HasPrefix(c.GetName(), "tollgate_pool_") {
			want[c.GetName()] = c
		}
	}
	if len(got) != len(want) {
		t.Errorf("rendered %d pools, envoy.yaml has %d", len(got), len(want))
	}
	for _, c := range got {
		w, ok := want[c.GetName()]
		if !ok {
			t.Errorf("rendered pool %s is not in envoy.yaml", c.GetName())
			continue
		}
		for _, d := range diff(c.GetName(), toMap(t, c), toMap(t, w)) {
			t.Error(d)
		}
	}
}

// TestRender_PassesStrictBootstrapValidation puts rendered pools into a
// bootstrap and loads it through internal/envoyconfig: strict protojson,
// ValidateAll, and ValidateAll on every message packed in an Any.
func TestRender_PassesStrictBootstrapValidation(t *testing.T) {
	prod, err := os.ReadFile(filepath.Join(repoRoot, "examples/production/tollgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml string
	}{
		{"production example", string(prod)},
		{"mixed tls, ip literals, weights, three priorities", cfg(
			dep("a", "a1", "openai/gpt-4o", "https://api.openai.com/v1", "weight: 3"),
			dep("a", "a2", "openai/gpt-4o", "http://10.0.0.1:8080/v1", "weight: 1"),
			dep("b", "b1", "anthropic/claude", "http://[::1]:9000", "rpm: 600"),
			dep("c", "c1", "openai/gpt-4o-mini", "http://127.0.0.1:8081/v1", ""),
		) + "router_settings:\n  fallbacks:\n    - a: [b, c]\n"},
		{"pinned pools", cfg(
			dep("a", "a1", "openai/gpt-4o", "https://api.openai.com/v1", "max_parallel_requests: 3"),
			dep("a", "a2", "openai/gpt-4o", "http://10.0.0.1:8080/v1", "rpm: 60"),
			dep("b", "b1", "anthropic/claude", "http://[::1]:9000", ""),
		) + "router_settings:\n  enable_pre_call_checks: true\n  fallbacks:\n    - a: [b]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pools := render(t, tt.yaml)
			boot := &bootstrapv3.Bootstrap{StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: pools}}
			js, err := protojson.Marshal(boot)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := envoyconfig.Parse(js); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// dep is one model_list entry; extra is a litellm_params line or "".
func dep(group, id, model, base, extra string) string {
	s := fmt.Sprintf("  - model_name: %s\n    litellm_params:\n      model: %s\n      api_key: sk-x\n      api_base: %q\n", group, model, base)
	if extra != "" {
		s += "      " + extra + "\n"
	}
	return s + fmt.Sprintf("    model_info: {id: %s}\n", id)
}

func cfg(deps ...string) string {
	return "general_settings: {master_key: sk-master}\nmodel_list:\n" + strings.Join(deps, "")
}

// ep is the part of a rendered endpoint the table tests look at.
type ep struct {
	Priority  uint32
	ID        string
	Host      string
	Port      uint32
	Weight    uint32
	Plaintext bool
}

// pool summarises a rendered cluster.
type pool struct {
	Type      string
	DNS       string
	TLS       bool
	Matches   int
	Endpoints []ep
}

func summarise(t *testing.T, c *clusterv3.Cluster) pool {
	t.Helper()
	p := pool{
		Type:    c.GetType().String(),
		TLS:     c.GetTransportSocket() != nil,
		Matches: len(c.GetTransportSocketMatches()),
	}
	if c.GetType() == clusterv3.Cluster_STRICT_DNS {
		p.DNS = c.GetDnsLookupFamily().String()
	}
	for _, l := range c.GetLoadAssignment().GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			md := e.GetMetadata().GetFilterMetadata()
			p.Endpoints = append(p.Endpoints, ep{
				Priority:  l.GetPriority(),
				ID:        md["tollgate"].GetFields()["deployment"].GetStringValue(),
				Host:      e.GetEndpoint().GetHostname(),
				Port:      e.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(),
				Weight:    e.GetLoadBalancingWeight().GetValue(),
				Plaintext: md["envoy.transport_socket_match"].GetFields()["tollgate_plaintext"].GetBoolValue(),
			})
			if a := e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress(); a != e.GetEndpoint().GetHostname() {
				t.Errorf("%s: address %q differs from hostname %q", c.GetName(), a, e.GetEndpoint().GetHostname())
			}
		}
	}
	return p
}

func TestRender_Pools(t *testing.T) {
	const openai, anthropic = "https://api.openai.com/v1", "https://api.anthropic.com"
	tests := []struct {
		name string
		yaml string
		want map[string]pool
	}{
		{
			name: "fallbacks become priorities in order, each group once",
			yaml: cfg(
				dep("a", "a1", "openai/gpt-4o", openai, ""),
				dep("a", "a2", "openai/gpt-4o", openai, ""),
				dep("b", "b1", "anthropic/claude", anthropic, ""),
				dep("c", "c1", "openai/gpt-4o-mini", openai, ""),
			) + "router_settings:\n  fallbacks:\n    - a: [c, b, c]\n",
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{
					{0, "a1", "api.openai.com", 443, 0, false},
					{0, "a2", "api.openai.com", 443, 0, false},
					{1, "c1", "api.openai.com", 443, 0, false},
					{2, "b1", "api.anthropic.com", 443, 0, false},
				}},
				"tollgate_pool_b": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{{0, "b1", "api.anthropic.com", 443, 0, false}}},
				"tollgate_pool_c": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{{0, "c1", "api.openai.com", 443, 0, false}}},
			},
		},
		{
			name: "plain http only: no transport socket, port 80 by default",
			yaml: cfg(dep("a", "a1", "openai/gpt-4o", "http://fake.internal/v1", "")),
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", Endpoints: []ep{{0, "a1", "fake.internal", 80, 0, false}}},
			},
		},
		{
			name: "ip literals only: STATIC, explicit ports",
			yaml: cfg(
				dep("a", "a1", "openai/gpt-4o", "http://127.0.0.1:8080/v1", ""),
				dep("a", "a2", "openai/gpt-4o", "https://[::1]:8443/v1", ""),
			),
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STATIC", TLS: true, Matches: 1, Endpoints: []ep{
					{0, "a1", "127.0.0.1", 8080, 0, true},
					{0, "a2", "::1", 8443, 0, false},
				}},
			},
		},
		{
			name: "one name among ip literals: STRICT_DNS",
			yaml: cfg(
				dep("a", "a1", "openai/gpt-4o", "http://127.0.0.1:8080/v1", ""),
				dep("a", "a2", "openai/gpt-4o", "http://fake.internal:8080/v1", ""),
			),
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", Endpoints: []ep{
					{0, "a1", "127.0.0.1", 8080, 0, false},
					{0, "a2", "fake.internal", 8080, 0, false},
				}},
			},
		},
		{
			name: "mixed schemes across priorities: TLS by default, plaintext endpoints matched out",
			yaml: cfg(
				dep("a", "a1", "openai/gpt-4o", openai, ""),
				dep("local", "l1", "openai/llama", "http://localhost:11434/v1", ""),
			) + "router_settings:\n  fallbacks:\n    - a: [local]\n",
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Matches: 1, Endpoints: []ep{
					{0, "a1", "api.openai.com", 443, 0, false},
					{1, "l1", "localhost", 11434, 0, true},
				}},
				"tollgate_pool_local": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", Endpoints: []ep{{0, "l1", "localhost", 11434, 0, false}}},
			},
		},
		{
			name: "weights: weight wins over rpm, scaled to the heaviest, missing gets 1",
			yaml: cfg(
				dep("a", "a1", "openai/gpt-4o", openai, "weight: 2"),
				dep("a", "a2", "openai/gpt-4o", openai, "weight: 0.5"),
				dep("a", "a3", "openai/gpt-4o", openai, "rpm: 100"),
			),
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{
					{0, "a1", "api.openai.com", 443, 1000, false},
					{0, "a2", "api.openai.com", 443, 250, false},
					{0, "a3", "api.openai.com", 443, 1, false},
				}},
			},
		},
		{
			name: "pinned pools: the deployment alone, then its weighted siblings, then the fallbacks",
			yaml: cfg(
				dep("a", "a1", "openai/gpt-4o", openai, "rpm: 900"),
				dep("a", "a2", "openai/gpt-4o", openai, "rpm: 300"),
				dep("a", "a3", "openai/gpt-4o", openai, "max_parallel_requests: 2"),
				dep("b", "b1", "anthropic/claude", anthropic, ""),
			) + "router_settings:\n  fallbacks:\n    - a: [b]\n",
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{
					{0, "a1", "api.openai.com", 443, 1000, false},
					{0, "a2", "api.openai.com", 443, 333, false},
					{0, "a3", "api.openai.com", 443, 1, false},
					{1, "b1", "api.anthropic.com", 443, 0, false},
				}},
				"tollgate_pool_a_pin_a1": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{
					{0, "a1", "api.openai.com", 443, 0, false},
					{1, "a2", "api.openai.com", 443, 333, false},
					{1, "a3", "api.openai.com", 443, 1, false},
					{2, "b1", "api.anthropic.com", 443, 0, false},
				}},
				"tollgate_pool_a_pin_a2": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{
					{0, "a2", "api.openai.com", 443, 0, false},
					{1, "a1", "api.openai.com", 443, 1000, false},
					{1, "a3", "api.openai.com", 443, 1, false},
					{2, "b1", "api.anthropic.com", 443, 0, false},
				}},
				"tollgate_pool_a_pin_a3": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{
					{0, "a3", "api.openai.com", 443, 0, false},
					{1, "a1", "api.openai.com", 443, 1000, false},
					{1, "a2", "api.openai.com", 443, 333, false},
					{2, "b1", "api.anthropic.com", 443, 0, false},
				}},
				"tollgate_pool_b": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{{0, "b1", "api.anthropic.com", 443, 0, false}}},
			},
		},
		{
			name: "pinned pool of a single deployment: the fallbacks follow at priority 1",
			yaml: cfg(
				dep("a", "a1", "openai/gpt-4o", "http://127.0.0.1:8080/v1", "max_parallel_requests: 1"),
				dep("b", "b1", "anthropic/claude", anthropic, ""),
			) + "router_settings:\n  fallbacks:\n    - a: [b]\n",
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Matches: 1, Endpoints: []ep{
					{0, "a1", "127.0.0.1", 8080, 0, true},
					{1, "b1", "api.anthropic.com", 443, 0, false},
				}},
				"tollgate_pool_a_pin_a1": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Matches: 1, Endpoints: []ep{
					{0, "a1", "127.0.0.1", 8080, 0, true},
					{1, "b1", "api.anthropic.com", 443, 0, false},
				}},
				"tollgate_pool_b": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{{0, "b1", "api.anthropic.com", 443, 0, false}}},
			},
		},
		{
			name: "rpm is a weight only without pre-call checks: no pinned pools",
			yaml: cfg(dep("a", "a1", "openai/gpt-4o", openai, "rpm: 10")),
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{{0, "a1", "api.openai.com", 443, 1000, false}}},
			},
		},
		{
			name: "rpm is a hard limit under usage-based routing: pinned pools",
			yaml: cfg(dep("a", "a1", "openai/gpt-4o", openai, "rpm: 10")) + "router_settings: {routing_strategy: usage-based-routing-v2}\n",
			want: map[string]pool{
				"tollgate_pool_a":        {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{{0, "a1", "api.openai.com", 443, 1000, false}}},
				"tollgate_pool_a_pin_a1": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{{0, "a1", "api.openai.com", 443, 0, false}}},
			},
		},
		{
			name: "weights: rpm, then tpm, per priority",
			yaml: cfg(
				dep("a", "a1", "openai/gpt-4o", openai, "rpm: 900"),
				dep("a", "a2", "openai/gpt-4o", openai, "rpm: 100"),
				dep("b", "b1", "anthropic/claude", anthropic, "tpm: 3000"),
				dep("b", "b2", "anthropic/claude", anthropic, "tpm: 1000"),
			) + "router_settings:\n  fallbacks:\n    - a: [b]\n",
			want: map[string]pool{
				"tollgate_pool_a": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{
					{0, "a1", "api.openai.com", 443, 1000, false},
					{0, "a2", "api.openai.com", 443, 111, false},
					{1, "b1", "api.anthropic.com", 443, 1000, false},
					{1, "b2", "api.anthropic.com", 443, 333, false},
				}},
				"tollgate_pool_b": {Type: "STRICT_DNS", DNS: "V4_PREFERRED", TLS: true, Endpoints: []ep{
					{0, "b1", "api.anthropic.com", 443, 1000, false},
					{0, "b2", "api.anthropic.com", 443, 333, false},
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]pool{}
			for _, c := range render(t, tt.yaml) {
				got[c.GetName()] = summarise(t, c)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pools:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRender_Rejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{
			name: "two groups sanitised to one cluster name",
			yaml: cfg(dep("a/b", "x", "openai/gpt-4o", "https://api.openai.com/v1", ""), dep("a_b", "y", "openai/gpt-4o", "https://api.openai.com/v1", "")),
			want: "both map to Envoy cluster",
		},
		{
			name: "a pinned pool named like another group's pool",
			yaml: cfg(dep("a", "x", "openai/gpt-4o", "https://api.openai.com/v1", "max_parallel_requests: 1"), dep("a_pin_x", "y", "openai/gpt-4o", "https://api.openai.com/v1", "")),
			want: "both map to Envoy cluster \"tollgate_pool_a_pin_x\"",
		},
		{
			name: "negative weight",
			yaml: cfg(dep("a", "x", "openai/gpt-4o", "https://api.openai.com/v1", "weight: -1")),
			want: "litellm_params.weight: must be a finite number",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderErr(tt.yaml)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRender_Deterministic(t *testing.T) {
	var deps []string
	for i := range 12 {
		deps = append(deps, dep(fmt.Sprintf("g%d", i%4), fmt.Sprintf("d%d", i), "openai/gpt-4o", fmt.Sprintf("https://host%d.example/v1", i%3), fmt.Sprintf("rpm: %d", 100+i)))
	}
	yaml := cfg(deps...) + "router_settings:\n  fallbacks:\n    - g0: [g1, g2, g3]\n    - g1: [g3, g0]\n"
	encode := func() ([][]byte, string) {
		rt, err := config.FromBytes([]byte(yaml), fakeEnv)
		if err != nil {
			t.Fatal(err)
		}
		res, err := xds.Render(rt, xds.RenderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, r := range res {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		v, err := xds.Version(res)
		if err != nil {
			t.Fatal(err)
		}
		return out, v
	}
	first, v1 := encode()
	names := poolNames(t, yaml)
	if !sort.StringsAreSorted(names) || len(names) != 4 {
		t.Fatalf("pools %v, want 4 in name order", names)
	}
	for range 20 {
		again, v2 := encode()
		if v1 != v2 || len(again) != len(first) {
			t.Fatalf("version %s then %s", v1, v2)
		}
		for i := range first {
			if !bytes.Equal(first[i], again[i]) {
				t.Fatalf("resource %d encodes differently between renders", i)
			}
		}
	}
}

func poolNames(t *testing.T, yaml string) []string {
	t.Helper()
	var out []string
	for _, c := range render(t, yaml) {
		out = append(out, c.GetName())
	}
	return out
}

func TestVersion_ChangesWithAnyField(t *testing.T) {
	base := render(t, cfg(dep("a", "a1", "openai/gpt-4o", "https://api.openai.com/v1", "")))
	tests := []struct {
		name   string
		mutate func(c *clusterv3.Cluster)
	}{
		{"port", func(c *clusterv3.Cluster) {
			c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress().PortSpecifier = nil
		}},
		{"name", func(c *clusterv3.Cluster) { c.Name += "x" }},
		{"dropped tls", func(c *clusterv3.Cluster) { c.TransportSocket = nil }},
	}
	v0, err := xds.Version(toResources(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := proto.Clone(base[0]).(*clusterv3.Cluster)
			tt.mutate(c)
			v, err := xds.Version(toResources([]*clusterv3.Cluster{c}))
			if err != nil {
				t.Fatal(err)
			}
			if v == v0 {
				t.Errorf("version %s did not change", v)
			}
		})
	}
}

func toResources(cs []*clusterv3.Cluster) []types.Resource {
	out := make([]types.Resource, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

// TestDocs_BootstrapSnippetIsValid keeps the dynamic_resources example in
// docs/xds.md loadable by Envoy's schema.
func TestDocs_BootstrapSnippetIsValid(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs/xds.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- xds-bootstrap")
	if !ok {
		t.Fatal("docs/xds.md has no xds-bootstrap marker")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	block, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("no yaml block after the xds-bootstrap marker")
	}
	boot, err := envoyconfig.Parse([]byte(block))
	if err != nil {
		t.Fatal(err)
	}
	ads := boot.GetDynamicResources().GetAdsConfig().GetGrpcServices()
	if len(ads) != 1 || boot.GetDynamicResources().GetCdsConfig().GetAds() == nil {
		t.Fatalf("snippet does not take CDS over ADS: %v", boot.GetDynamicResources())
	}
	name := ads[0].GetEnvoyGrpc().GetClusterName()
	if !slices.ContainsFunc(boot.GetStaticResources().GetClusters(), func(c *clusterv3.Cluster) bool { return c.GetName() == name }) {
		t.Errorf("ADS cluster %q is not defined", name)
	}
}
