package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
)

// WriteText writes the report for people; use encoding/json for scripts.
func (r *Report) WriteText(w io.Writer) {
	load := fmt.Sprintf("closed loop, concurrency %d", r.Concurrency)
	if r.Mode == "open" {
		load = fmt.Sprintf("open loop, %.0f req/s offered", r.Rate)
	}
	kind := "non-stream"
	if r.Streaming {
		kind = fmt.Sprintf("stream of %d events", r.Events)
	}
	fmt.Fprintf(w, "load:      %s; %s; %d upstream attempt(s)\n", load, kind, r.Attempts)
	fmt.Fprintf(w, "requests:  %d completed, %d ok, %d errors in %.2fs = %.0f req/s\n",
		r.Completed, r.OK, r.Errors(), r.ElapsedS, r.RPS)
	if r.Dropped > 0 {
		fmt.Fprintf(w, "dropped:   %d (over max in-flight, never sent)\n", r.Dropped)
	}
	l := r.Latency
	fmt.Fprintf(w, "latency:   p50 %s  p90 %s  p99 %s  max %s  mean %s (ok requests, whole sequence)\n",
		us(l.P50), us(l.P90), us(l.P99), us(l.Max), us(l.Mean))
	writeCounts(w, "immediate", r.Immediate)
	writeCounts(w, "error", r.Failures)
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server:    pid %d  cpu %.2fs = %.1f µs/request (%.2f cores)  rss start %d KiB  peak %d KiB  end %d KiB\n",
			s.PID, s.CPUSeconds, s.CPUPerRequestUS, s.CPUCores, s.RSSStartK, s.RSSPeakK, s.RSSEndK)
	}
}

// WriteText writes the report for people; use encoding/json for scripts.
func (r *HoldReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "streams:   %d of %d opened in %.2fs, held %.2fs\n", r.Opened, r.Requested, r.OpenS, r.HeldS)
	writeCounts(w, "error", r.Failures)
	if r.RSSBeforeK > 0 {
		fmt.Fprintf(w, "server:    rss before %d KiB  all open %d KiB  peak %d KiB = %.2f KiB/stream; cpu opening %.2fs\n",
			r.RSSBeforeK, r.RSSOpenK, r.RSSPeakK, r.RSSPerStreamK, r.CPUOpenS)
	}
}

func writeCounts(w io.Writer, label string, counts map[string]int) {
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(w, "%-10s %6d  %s\n", label+":", counts[k], k)
	}
}

func us(v int64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1fms", float64(v)/1000)
	}
	return fmt.Sprintf("%dµs", v)
}

// Comparison is a target server's cost above the no-op floor under the same
// message sequence and load.
type Comparison struct {
	Floor  *Report `json:"floor"`
	Target *Report `json:"target"`
	// CPUAboveFloorUS is target minus floor server CPU µs per request; 0
	// when either run lacks server CPU figures.
	CPUAboveFloorUS float64 `json:"cpu_us_per_request_above_floor"`
	// RPSRatio is target req/s over floor req/s.
	RPSRatio float64 `json:"rps_ratio"`
	// P99DeltaUS is target p99 minus floor p99.
	P99DeltaUS int64 `json:"p99_delta_us"`
	// RSSPeakDeltaK is target minus floor peak RSS.
	RSSPeakDeltaK int64 `json:"rss_peak_delta_kib"`
}

// Compare computes the target's cost above the floor.
func Compare(floor, target *Report) Comparison {
	c := Comparison{Floor: floor, Target: target, P99DeltaUS: target.Latency.P99 - floor.Latency.P99}
	if floor.RPS > 0 {
		c.RPSRatio = target.RPS / floor.RPS
	}
	if floor.Server != nil && target.Server != nil {
		c.CPUAboveFloorUS = target.Server.CPUPerRequestUS - floor.Server.CPUPerRequestUS
		c.RSSPeakDeltaK = target.Server.RSSPeakK - floor.Server.RSSPeakK
	}
	return c
}

// WriteText writes both runs and the difference.
func (c Comparison) WriteText(w io.Writer) {
	fmt.Fprintln(w, "== floor (no-op server)")
	c.Floor.WriteText(w)
	fmt.Fprintln(w, "== target")
	c.Target.WriteText(w)
	fmt.Fprintln(w, "== target above floor")
	if c.Floor.Server != nil && c.Target.Server != nil {
		fmt.Fprintf(w, "cpu:       %+.1f µs/request (floor %.1f, target %.1f)\n",
			c.CPUAboveFloorUS, c.Floor.Server.CPUPerRequestUS, c.Target.Server.CPUPerRequestUS)
		fmt.Fprintf(w, "rss peak:  %+d KiB\n", c.RSSPeakDeltaK)
	}
	fmt.Fprintf(w, "req/s:     %.2fx of floor (%.0f vs %.0f)\n", c.RPSRatio, c.Target.RPS, c.Floor.RPS)
	fmt.Fprintf(w, "p99:       %+dµs (floor %s, target %s)\n", c.P99DeltaUS, us(c.Floor.Latency.P99), us(c.Target.Latency.P99))
	if c.Floor.Errors() > 0 || c.Target.Errors() > 0 {
		fmt.Fprintf(w, "WARNING:   errors in the runs (floor %d, target %d); the comparison is not like for like\n",
			c.Floor.Errors(), c.Target.Errors())
	}
}
