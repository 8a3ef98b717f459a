package xds

import (
	"fmt"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the xDS server's counters. Labels come from bounded sets:
// load results and known resource types.
type metrics struct {
	loads     *prometheus.CounterVec
	nacks     *prometheus.CounterVec
	responses *prometheus.CounterVec
	streams   prometheus.Gauge
}

// Results of a config load, the values of tollgate_xds_config_loads_total's
// result label.
const (
	loadApplied   = "applied"
	loadUnchanged = "unchanged"
	loadRejected  = "rejected"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_xds_config_loads_total",
			Help: "Config loads by result: applied (new pool version), unchanged (same rendered pools), rejected (last good version kept).",
		}, []string{"result"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_xds_nacks_total",
			Help: "xDS responses Envoy rejected, by resource type.",
		}, []string{"type"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_xds_responses_total",
			Help: "xDS responses sent, by resource type.",
		}, []string{"type"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_xds_streams",
			Help: "Open xDS streams.",
		}),
	}
	// Pre-create the children so every series exists from the start.
	for _, r := range []string{loadApplied, loadUnchanged, loadRejected} {
		m.loads.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.loads, m.nacks, m.responses, m.streams} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register xds metrics: %w", err)
			}
		}
	}
	return m, nil
}

// typeLabel names a type URL for a metric label; unknown URLs (sent by any
// client) collapse into "other" to keep the label set bounded.
func typeLabel(typeURL string) string {
	switch typeURL {
	case resourcev3.ClusterType:
		return "cluster"
	case resourcev3.EndpointType:
		return "endpoint"
	case resourcev3.ListenerType:
		return "listener"
	case resourcev3.RouteType:
		return "route"
	}
	return "other"
}
