package loadgen

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p90 of 1..100", ms(hundred...), 90, 90 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is max", ms(hundred...), 100, 100 * time.Millisecond},
		{"nearest rank rounds up", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 4 is the max", ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{"tiny p is the min", ms(1, 2, 3, 4), 0.1, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	got := Summarize([]time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond})
	want := Latency{P50: 2000, P90: 4000, P99: 4000, Max: 4000, Mean: 2500}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
}

func TestCompare(t *testing.T) {
	floor := &Report{RPS: 1000, Latency: Latency{P99: 800}, Server: &ServerStats{CPUPerRequestUS: 100, RSSPeakK: 20000}}
	target := &Report{RPS: 500, Latency: Latency{P99: 2000}, Server: &ServerStats{CPUPerRequestUS: 250, RSSPeakK: 50000}}
	c := Compare(floor, target)
	if c.CPUAboveFloorUS != 150 || c.RPSRatio != 0.5 || c.P99DeltaUS != 1200 || c.RSSPeakDeltaK != 30000 {
		t.Errorf("Compare = %+v", c)
	}
}
