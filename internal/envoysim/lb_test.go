package envoysim

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// seqSource is a rand.Source that replays vals, then repeats the last.
type seqSource struct {
	vals []uint64
	i    int
}

func (s *seqSource) Uint64() uint64 {
	v := s.vals[min(s.i, len(s.vals)-1)]
	s.i++
	return v
}

var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testCluster builds a cluster with the given host counts per priority;
// ejected lists "priority/index" hosts that are outlier-ejected.
func testCluster(overprov, panicPct uint32, counts []int, ejected ...[2]int) *cluster {
	s := &Sim{rnd: rand.New(rand.NewPCG(1, 2)), stats: map[string]int64{}, opts: Options{Now: func() time.Time { return testNow }}}
	c := &cluster{name: "c", sim: s, overprov: overprov, panicPct: panicPct, choices: 2, bias: 1}
	for p, n := range counts {
		var hs []*host
		for range n {
			hs = append(hs, &host{cluster: c, addr: "h", priority: p, weight: 1, health: corev3.HealthStatus_HEALTHY})
		}
		c.hosts = append(c.hosts, hs)
	}
	for _, e := range ejected {
		c.hosts[e[0]][e[1]].ejectedUntil = testNow.Add(time.Minute)
	}
	return c
}

func TestPriorityLoad_OneOfTwoHealthySpills70_30(t *testing.T) {
	c := testCluster(140, 50, []int{2, 1}, [2]int{0, 1})
	ps := c.computeState(testNow)
	if !slices.Equal(ps.healthyLoad, []uint32{70, 30}) {
		t.Fatalf("healthy load = %v, want [70 30]", ps.healthyLoad)
	}
}

func TestPriorityLoad_HugeOverprovisioningKeepsTrafficOnPriority(t *testing.T) {
	c := testCluster(100000, 0, []int{2, 1}, [2]int{0, 1})
	if got := c.computeState(testNow).healthyLoad; !slices.Equal(got, []uint32{100, 0}) {
		t.Fatalf("healthy load = %v, want [100 0]", got)
	}
}

func TestPriorityLoad_AllUnhealthyPrioritySpillsFully(t *testing.T) {
	c := testCluster(140, 0, []int{1, 1}, [2]int{0, 0})
	if got := c.computeState(testNow).healthyLoad; !slices.Equal(got, []uint32{0, 100}) {
		t.Fatalf("healthy load = %v, want [0 100]", got)
	}
}

func TestPriorityLoad_TotalPanicSplitsByHostCount(t *testing.T) {
	c := testCluster(140, 50, []int{3, 1}, [2]int{0, 0}, [2]int{0, 1}, [2]int{1, 0})
	ps := c.computeState(testNow)
	if !slices.Equal(ps.healthyLoad, []uint32{75, 25}) || !ps.panic[0] || !ps.panic[1] {
		t.Fatalf("load %v panic %v, want [75 25] with both priorities in panic", ps.healthyLoad, ps.panic)
	}
	// In panic a priority picks among all its hosts, ejected ones included.
	seen := map[*host]bool{}
	for range 50 {
		seen[c.chooseHost(nil)] = true
	}
	if len(seen) != 4 {
		t.Fatalf("picked %d distinct hosts in panic, want all 4", len(seen))
	}
}

func TestPriorityLoad_PanicThresholdZeroNeverPanics(t *testing.T) {
	c := testCluster(140, 0, []int{1}, [2]int{0, 0})
	ps := c.computeState(testNow)
	if !slices.Equal(ps.healthyLoad, []uint32{100}) || ps.panic[0] {
		t.Fatalf("load %v panic %v", ps.healthyLoad, ps.panic)
	}
	if h := c.chooseHost(nil); h != nil {
		t.Fatal("chose an ejected host with healthy_panic_threshold 0")
	}
}

func TestPreviousPriorities_ExcludesAttemptedAndResetsWhenAllExcluded(t *testing.T) {
	c := testCluster(140, 50, []int{1, 1})
	ps := c.computeState(testNow)
	rs := newRetryState(&retryPolicy{priorityUpdateFrequency: 1, numRetries: 3})
	rs.attemptedHosts = []*host{c.hosts[0][0]}
	h, _ := rs.determinePriorityLoad(ps, ps.healthyLoad, ps.degradedLoad)
	if !slices.Equal(h, []uint32{0, 100}) {
		t.Fatalf("after P0 attempted: %v, want [0 100]", h)
	}
	rs.attemptedHosts = append(rs.attemptedHosts, c.hosts[1][0])
	h, _ = rs.determinePriorityLoad(ps, ps.healthyLoad, ps.degradedLoad)
	if !slices.Equal(h, []uint32{100, 0}) {
		t.Fatalf("after every priority attempted: %v, want the reset load [100 0]", h)
	}
}

func TestPreviousPriorities_UpdateFrequency(t *testing.T) {
	c := testCluster(140, 50, []int{1, 1})
	ps := c.computeState(testNow)
	rs := newRetryState(&retryPolicy{priorityUpdateFrequency: 2, numRetries: 3})
	rs.attemptedHosts = []*host{c.hosts[0][0]}
	if h, _ := rs.determinePriorityLoad(ps, ps.healthyLoad, ps.degradedLoad); !slices.Equal(h, []uint32{100, 0}) {
		t.Fatalf("one attempt with update_frequency 2: %v, want unchanged [100 0]", h)
	}
}

func TestLB_WeightedRoundRobinShares(t *testing.T) {
	c := testCluster(140, 50, []int{2})
	c.hosts[0][1].weight = 3
	got := map[*host]int{}
	for range 400 {
		got[c.chooseHost(nil)]++
	}
	if got[c.hosts[0][0]] != 100 || got[c.hosts[0][1]] != 300 {
		t.Fatalf("picks %d/%d, want 100/300", got[c.hosts[0][0]], got[c.hosts[0][1]])
	}
}

func TestLB_RoundRobinAlternates(t *testing.T) {
	c := testCluster(140, 50, []int{2})
	a, b := c.chooseHost(nil), c.chooseHost(nil)
	if a == b || c.chooseHost(nil) != a {
		t.Fatal("round robin does not alternate")
	}
}

func TestLB_LeastRequestPrefersFewerActive(t *testing.T) {
	c := testCluster(140, 50, []int{2})
	c.policy = lbLeastRequest
	c.choices = 10
	c.hosts[0][0].active.Store(5)
	for range 20 {
		if c.chooseHost(nil) != c.hosts[0][1] {
			t.Fatal("picked the busier host")
		}
	}
}

func TestOutlier_EjectsAfterConsecutive5xx(t *testing.T) {
	c := testCluster(140, 0, []int{1, 1})
	c.outlier = &outlierConfig{consecutive5xx: 3, enforcing: 100, baseEjection: 30 * time.Second, maxEjection: 300 * time.Second, maxEjectionPercent: 100}
	h := c.hosts[0][0]
	c.recordResult(h, 503)
	c.recordResult(h, 200) // a success resets the count
	c.recordResult(h, 503)
	c.recordResult(h, 500)
	if c.stateOf(h, testNow) != stateHealthy {
		t.Fatal("ejected before 3 consecutive 5xx")
	}
	c.recordResult(h, 502)
	if c.stateOf(h, testNow) != stateUnhealthy {
		t.Fatal("not ejected after 3 consecutive 5xx")
	}
	if got := c.chooseHost(nil); got != c.hosts[1][0] {
		t.Fatal("traffic did not move to priority 1")
	}
	if c.stateOf(h, testNow.Add(31*time.Second)) != stateHealthy {
		t.Fatal("not back after base_ejection_time")
	}
}

func TestOutlier_MaxEjectionPercentIsPerCluster(t *testing.T) {
	c := testCluster(140, 0, []int{1, 1})
	c.outlier = &outlierConfig{consecutive5xx: 1, enforcing: 100, baseEjection: time.Minute, maxEjection: time.Hour, maxEjectionPercent: 50}
	c.recordResult(c.hosts[0][0], 500)
	c.recordResult(c.hosts[1][0], 500)
	if c.stateOf(c.hosts[0][0], testNow) != stateUnhealthy || c.stateOf(c.hosts[1][0], testNow) != stateHealthy {
		t.Fatal("want exactly one of two hosts ejected at max_ejection_percent 50")
	}
}
