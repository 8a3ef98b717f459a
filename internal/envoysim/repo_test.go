package envoysim

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestRepoBootstraps_AreAcceptedByTheStandIn(t *testing.T) {
	paths := []string{"../../envoy/envoy.yaml"}
	err := filepath.WalkDir("../../examples", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), "envoy") && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			// An ADS bootstrap's xDS server is not running: the stand-in
			// starts and keeps retrying until Close.
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
