package envoysim

import (
	"context"
	"errors"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
)

// adsConfig is the bootstrap's dynamic_resources (ADS only).
type adsConfig struct {
	ready chan struct{}
}

func newADSConfig(b *bootstrapv3.Bootstrap) (*adsConfig, error) {
	if b.GetDynamicResources() == nil {
		return nil, nil
	}
	return nil, errors.New("dynamic_resources are not supported by envoysim yet")
}

func (s *Sim) runADS(ctx context.Context) { <-ctx.Done() }
