package envoysim

import (
	"testing"
)

func TestRepoBootstraps_AreAcceptedByTheStandIn(t *testing.T) {
	for _, p := range []string{"../../envoy/envoy.yaml", "../../examples/local/envoy.yaml"} {
		t.Run(p, func(t *testing.T) {
			sim, err := LoadFile(p, Options{ListenAddr: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			if err := sim.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := sim.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
