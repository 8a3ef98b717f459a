package routing

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestPoolName(t *testing.T) {
	for in, want := range map[string]string{
		"gpt-4o":                  "tollgate_pool_gpt-4o",
		"claude-3.5":              "tollgate_pool_claude-3.5",
		"openai/gpt-4o mini:beta": "tollgate_pool_openai_gpt-4o_mini_beta",
	} {
		if got := PoolName(in); got != want {
			t.Errorf("PoolName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTable_Resolve(t *testing.T) {
	tab, err := NewTable(TableConfig{
		Deployments: []*Deployment{{ID: "a", ModelGroup: "g1"}, {ID: "b", ModelGroup: "g1"}, {ID: "c", ModelGroup: "g2"}},
		Aliases:     map[string]string{"alias": "g1"},
		Fallbacks:   map[string][]string{"g1": {"g2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := tab.Resolve("alias")
	if err != nil || g.Name != "g1" || len(g.Deployments) != 2 || g.Fallbacks[0] != "g2" {
		t.Fatalf("Resolve(alias) = %+v, %v", g, err)
	}
	if _, err := tab.Resolve("nope"); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Resolve(nope) err = %v", err)
	}
	if _, err := tab.Deployment("zz"); !errors.Is(err, ErrUnknownDeployment) {
		t.Errorf("Deployment(zz) err = %v", err)
	}
	if names := strings.Join(tab.GroupNames(), ","); names != "g1,g2" {
		t.Errorf("GroupNames = %s", names)
	}
}

func TestDeployment_LogValueHidesKey(t *testing.T) {
	d := &Deployment{ID: "a", APIKey: "sk-secret"}
	if strings.Contains(d.LogValue().String(), "sk-secret") {
		t.Error("api key in log value")
	}
}

func TestNewTable_RejectsPoolNameClash(t *testing.T) {
	_, err := NewTable(TableConfig{Deployments: []*Deployment{{ID: "a", ModelGroup: "a/b"}, {ID: "b", ModelGroup: "a_b"}}})
	if err == nil || !strings.Contains(err.Error(), `both map to Envoy cluster "tollgate_pool_a_b"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewTable_PinnedPools(t *testing.T) {
	tab, err := NewTable(TableConfig{Deployments: []*Deployment{
		{ID: "a/1", ModelGroup: "g", MaxParallel: 2}, {ID: "b", ModelGroup: "g"}, {ID: "c", ModelGroup: "h", RPM: 5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := tab.Resolve("g")
	if !g.Pinned || g.Deployments[0].PinnedPool != "tollgate_pool_g_pin_a_1" || g.Deployments[1].PinnedPool != "tollgate_pool_g_pin_b" {
		t.Errorf("group g: pinned %v, pools %q %q", g.Pinned, g.Deployments[0].PinnedPool, g.Deployments[1].PinnedPool)
	}
	// rpm alone is a weight unless config made it a hard limit.
	if h, _ := tab.Resolve("h"); h.Pinned || h.Deployments[0].PinnedPool != "" {
		t.Errorf("group h without hard limits is pinned")
	}
	_, err = NewTable(TableConfig{Deployments: []*Deployment{
		{ID: "x", ModelGroup: "g", HardRPM: 1}, {ID: "y", ModelGroup: "g_pin_x"},
	}})
	if err == nil || !strings.Contains(err.Error(), `the pinned pool of deployment "x" both map to Envoy cluster "tollgate_pool_g_pin_x"`) {
		t.Fatalf("clash of a pinned pool with a pool: %v", err)
	}
}

func TestWeights(t *testing.T) {
	for _, tc := range []struct {
		name string
		ds   []*Deployment
		want []uint32
	}{
		{"weight wins", []*Deployment{{Weight: 2, RPM: 1}, {Weight: 1, RPM: 100}}, []uint32{1000, 500}},
		{"rpm, missing gets 1", []*Deployment{{RPM: 600}, {}}, []uint32{1000, 1}},
		{"tpm", []*Deployment{{TPM: 3}, {TPM: 1}}, []uint32{1000, 333}},
		{"none", []*Deployment{{}, {}}, []uint32{0, 0}},
	} {
		if got := Weights(tc.ds); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
