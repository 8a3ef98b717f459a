package envoysim

import (
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// host is one endpoint of a cluster. Like Envoy's Host, it has its own
// outlier state, active-request count and connection pool.
type host struct {
	cluster  *cluster
	addr     string // dial address host:port
	hostname string // Endpoint.hostname: auto_host_rewrite and auto_host_sni
	metadata *corev3.Metadata
	weight   uint32
	priority int
	health   corev3.HealthStatus // EDS health status

	active    atomic.Int64
	transport *http.Transport

	// Outlier state, guarded by cluster.mu.
	consecutive5xx int
	ejections      int
	ejectedUntil   time.Time
}

// outlierConfig holds the consecutive-5xx part of OutlierDetection.
type outlierConfig struct {
	consecutive5xx     int
	enforcing          uint32
	baseEjection       time.Duration
	maxEjection        time.Duration
	maxEjectionPercent uint32
	alwaysEjectOne     bool
}

func newOutlierConfig(od *clusterv3.OutlierDetection) *outlierConfig {
	if od == nil {
		return nil
	}
	c := &outlierConfig{
		consecutive5xx:     5,
		enforcing:          100,
		baseEjection:       30 * time.Second,
		maxEjection:        300 * time.Second,
		maxEjectionPercent: 10,
		alwaysEjectOne:     od.GetAlwaysEjectOneHost().GetValue(),
	}
	if v := od.GetConsecutive_5Xx(); v != nil {
		c.consecutive5xx = int(v.GetValue())
	}
	if v := od.GetEnforcingConsecutive_5Xx(); v != nil {
		c.enforcing = v.GetValue()
	}
	if v := od.GetBaseEjectionTime(); v != nil {
		c.baseEjection = v.AsDuration()
	}
	if v := od.GetMaxEjectionTime(); v != nil {
		c.maxEjection = v.AsDuration()
	}
	if v := od.GetMaxEjectionPercent(); v != nil {
		c.maxEjectionPercent = v.GetValue()
	}
	return c
}

// lbPolicy names the supported cluster load-balancing policies.
type lbPolicy int

const (
	lbRoundRobin lbPolicy = iota
	lbRandom
	lbLeastRequest
)

// cluster is a resolved upstream cluster.
type cluster struct {
	name       string
	sim        *Sim
	policy     lbPolicy
	choices    int     // LEAST_REQUEST choice_count
	bias       float64 // LEAST_REQUEST active_request_bias
	overprov   uint32  // overprovisioning factor in percent (140 = 1.4)
	panicPct   uint32
	outlier    *outlierConfig
	metadata   *corev3.Metadata
	tls        *tlsSettings
	upstream   []*extProcConfig // upstream http_filters before upstream_codec
	http2      bool
	connectTTL time.Duration
	edsName    string // EDS service name; "" for clusters with a load_assignment

	mu    sync.Mutex
	hosts [][]*host // by priority
	rr    map[rrKey]*rrState
}

// closeIdle closes the idle connections of every host, as Envoy drains the
// connection pools of a removed or replaced cluster.
func (c *cluster) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, hs := range c.hosts {
		for _, h := range hs {
			h.transport.CloseIdleConnections()
		}
	}
}

type rrKey struct {
	priority int
	source   hostSource
}

// rrState is the per host-set round-robin cursor: plain for equal weights,
// smooth weighted otherwise.
type rrState struct {
	next    int
	current map[*host]float64
}

type hostSource int

const (
	sourceHealthy hostSource = iota
	sourceDegraded
	sourceAll // the priority is in panic
)

// hostState classifies a host the way Envoy's host sets do.
type hostState int

const (
	stateHealthy hostState = iota
	stateDegraded
	stateUnhealthy
	stateExcluded
)

func (c *cluster) stateOf(h *host, now time.Time) hostState {
	switch h.health {
	case corev3.HealthStatus_DRAINING:
		return stateExcluded
	case corev3.HealthStatus_UNHEALTHY, corev3.HealthStatus_TIMEOUT:
		return stateUnhealthy
	}
	if now.Before(h.ejectedUntil) {
		return stateUnhealthy
	}
	if h.health == corev3.HealthStatus_DEGRADED {
		return stateDegraded
	}
	return stateHealthy
}

// priorityState is the per-priority availability Envoy computes in
// LoadBalancerBase::recalculatePerPriorityState.
type priorityState struct {
	health, degraded []uint32 // 0..100 each
	healthyHosts     [][]*host
	degradedHosts    [][]*host
	panic            []bool
	healthyLoad      []uint32
	degradedLoad     []uint32
}

// computeState derives health, panic and the per-priority load.
// Caller holds c.mu.
func (c *cluster) computeState(now time.Time) *priorityState {
	n := len(c.hosts)
	ps := &priorityState{
		health: make([]uint32, n), degraded: make([]uint32, n),
		healthyHosts: make([][]*host, n), degradedHosts: make([][]*host, n),
		panic: make([]bool, n), healthyLoad: make([]uint32, n), degradedLoad: make([]uint32, n),
	}
	counted := make([]int, n)
	for p, hs := range c.hosts {
		for _, h := range hs {
			switch c.stateOf(h, now) {
			case stateHealthy:
				ps.healthyHosts[p] = append(ps.healthyHosts[p], h)
			case stateDegraded:
				ps.degradedHosts[p] = append(ps.degradedHosts[p], h)
			case stateExcluded:
				continue
			}
			counted[p]++
		}
		if counted[p] > 0 {
			ps.health[p] = uint32(min(100, uint64(c.overprov)*uint64(len(ps.healthyHosts[p]))/uint64(counted[p])))
			ps.degraded[p] = uint32(min(100, uint64(c.overprov)*uint64(len(ps.degradedHosts[p]))/uint64(counted[p])))
		}
	}
	total := normalizedAvailability(ps.health, ps.degraded)
	if total > 0 {
		remaining, firstH := distributeLoad(ps.healthyLoad, ps.health, 100, total)
		remaining, firstD := distributeLoad(ps.degradedLoad, ps.degraded, remaining, total)
		if remaining > 0 {
			if firstH >= 0 {
				ps.healthyLoad[firstH] += remaining
			} else if firstD >= 0 {
				ps.degradedLoad[firstD] += remaining
			}
		}
	}
	// recalculatePerPriorityPanic.
	if c.panicPct == 0 && total == 0 {
		if n > 0 {
			ps.healthyLoad[0] = 100
		}
		return ps
	}
	allPanic := n > 0
	for p := range n {
		if total < 100 && counted[p] >= 0 {
			healthyPct := 0.0
			if counted[p] > 0 {
				healthyPct = 100 * float64(len(ps.healthyHosts[p])+len(ps.degradedHosts[p])) / float64(counted[p])
			}
			ps.panic[p] = healthyPct < float64(c.panicPct)
		}
		allPanic = allPanic && ps.panic[p]
	}
	if allPanic {
		// recalculateLoadInTotalPanic: load by host count.
		totalHosts := 0
		for _, hs := range c.hosts {
			totalHosts += len(hs)
		}
		if totalHosts == 0 {
			return ps
		}
		left, first := uint32(100), -1
		for p, hs := range c.hosts {
			if first < 0 && len(hs) > 0 {
				first = p
			}
			ps.healthyLoad[p] = uint32(100 * len(hs) / totalHosts)
			ps.degradedLoad[p] = 0
			left -= ps.healthyLoad[p]
		}
		ps.healthyLoad[first] += left
	}
	return ps
}

func normalizedAvailability(health, degraded []uint32) uint32 {
	var t uint32
	for i := range health {
		t += health[i] + degraded[i]
	}
	return min(t, 100)
}

// distributeLoad assigns load to priorities in order, as much as each
// priority's availability allows; it returns what is left and the first
// available priority.
func distributeLoad(load, avail []uint32, total, normalized uint32) (uint32, int) {
	first := -1
	for i := range avail {
		if first < 0 && avail[i] > 0 {
			first = i
		}
		load[i] = min(total, avail[i]*100/normalized)
		total -= load[i]
	}
	return total, first
}

// choosePriority maps a hash to a priority by cumulative load, healthy
// loads first (LoadBalancerBase::choosePriority).
func choosePriority(hash uint64, healthy, degraded []uint32) (int, hostSource) {
	x := uint32(hash%100) + 1
	var agg uint32
	for p, l := range healthy {
		agg += l
		if x <= agg {
			return p, sourceHealthy
		}
	}
	for p, l := range degraded {
		agg += l
		if x <= agg {
			return p, sourceDegraded
		}
	}
	return 0, sourceHealthy
}

// chooseHost picks an endpoint for one attempt. rs carries the retry state
// (previous_priorities, previous_hosts); nil on the first attempt.
func (c *cluster) chooseHost(rs *retryState) *host {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.sim.now()
	ps := c.computeState(now)
	healthy, degraded := ps.healthyLoad, ps.degradedLoad
	if rs != nil && rs.priorityUpdateFrequency > 0 {
		healthy, degraded = rs.determinePriorityLoad(ps, healthy, degraded)
	}
	tries := 1
	if rs != nil && rs.previousHosts {
		tries = max(1, rs.hostSelectionMaxAttempts)
	}
	var h *host
	for i := range tries {
		p, src := choosePriority(c.sim.randUint64(), healthy, degraded)
		var cands []*host
		switch {
		case p >= len(c.hosts):
		case ps.panic[p]:
			src, cands = sourceAll, c.hosts[p]
		case src == sourceHealthy:
			cands = ps.healthyHosts[p]
		default:
			cands = ps.degradedHosts[p]
		}
		h = c.pick(rrKey{p, src}, cands)
		if h == nil {
			return nil
		}
		if rs == nil || !rs.previousHosts || !rs.attempted(h) || i == tries-1 {
			break
		}
	}
	return h
}

// pick applies the cluster's lb_policy within one host set.
func (c *cluster) pick(key rrKey, cands []*host) *host {
	if len(cands) == 0 {
		return nil
	}
	equal := true
	for _, h := range cands[1:] {
		equal = equal && h.weight == cands[0].weight
	}
	switch c.policy {
	case lbRandom:
		return cands[c.sim.randUint64()%uint64(len(cands))]
	case lbLeastRequest:
		if equal {
			// Power of N choices: the fewest active requests wins.
			var best *host
			for range max(2, c.choices) {
				h := cands[c.sim.randUint64()%uint64(len(cands))]
				if best == nil || h.active.Load() < best.active.Load() {
					best = h
				}
			}
			return best
		}
		return c.weighted(key, cands, func(h *host) float64 {
			return float64(h.weight) / math.Pow(float64(h.active.Load()+1), c.bias)
		})
	default:
		if equal {
			st := c.rrFor(key)
			h := cands[st.next%len(cands)]
			st.next++
			return h
		}
		return c.weighted(key, cands, func(h *host) float64 { return float64(h.weight) })
	}
}

func (c *cluster) rrFor(key rrKey) *rrState {
	if c.rr == nil {
		c.rr = map[rrKey]*rrState{}
	}
	st := c.rr[key]
	if st == nil {
		// Envoy starts each round-robin at a random host.
		st = &rrState{next: int(c.sim.randUint64() % 1024), current: map[*host]float64{}}
		c.rr[key] = st
	}
	return st
}

// weighted is smooth weighted round robin: the same long-run shares as
// Envoy's EDF scheduler, though not the same order.
func (c *cluster) weighted(key rrKey, cands []*host, weight func(*host) float64) *host {
	st := c.rrFor(key)
	var best *host
	var total float64
	for _, h := range cands {
		w := weight(h)
		total += w
		st.current[h] += w
		if best == nil || st.current[h] > st.current[best] {
			best = h
		}
	}
	st.current[best] -= total
	return best
}

// recordResult feeds the outlier detector with a response code (after the
// upstream filters) or, for resets and connect failures, 503.
func (c *cluster) recordResult(h *host, status int) {
	if c.outlier == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if status < 500 {
		h.consecutive5xx = 0
		return
	}
	h.consecutive5xx++
	now := c.sim.now()
	if h.consecutive5xx < c.outlier.consecutive5xx || now.Before(h.ejectedUntil) {
		return
	}
	if c.outlier.enforcing < 100 && c.sim.randUint64()%100 >= uint64(c.outlier.enforcing) {
		return
	}
	// max_ejection_percent is per cluster, not per priority.
	total, ejected := 0, 0
	for _, hs := range c.hosts {
		for _, o := range hs {
			total++
			if now.Before(o.ejectedUntil) {
				ejected++
			}
		}
	}
	pct := 100 * float64(ejected+1) / float64(total)
	if pct > float64(c.outlier.maxEjectionPercent) && (!c.outlier.alwaysEjectOne || ejected > 0) {
		return
	}
	h.ejections++
	d := time.Duration(h.ejections) * c.outlier.baseEjection
	d = min(d, max(c.outlier.maxEjection, c.outlier.baseEjection))
	h.ejectedUntil = now.Add(d)
	h.consecutive5xx = 0
	c.sim.count("outlier_detection.ejections_enforced_consecutive_5xx")
}
