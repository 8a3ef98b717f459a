package loadgen

import (
	"errors"
	"math"
	"slices"
	"sync"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order: the smallest value with at least
// p% of the samples at or below it. It returns 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// Latency summarises per-request latencies, in microseconds for JSON.
type Latency struct {
	P50  int64 `json:"p50_us"`
	P90  int64 `json:"p90_us"`
	P99  int64 `json:"p99_us"`
	Max  int64 `json:"max_us"`
	Mean int64 `json:"mean_us"`
}

// Summarize sorts samples in place and summarises them.
func Summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return Latency{
		P50:  Percentile(samples, 50).Microseconds(),
		P90:  Percentile(samples, 90).Microseconds(),
		P99:  Percentile(samples, 99).Microseconds(),
		Max:  samples[len(samples)-1].Microseconds(),
		Mean: (sum / time.Duration(len(samples))).Microseconds(),
	}
}

// recorder collects outcomes from many goroutines.
type recorder struct {
	mu        sync.Mutex
	latencies []time.Duration // successful requests only: a request cut short by an error would flatter the figures
	failures  map[string]int
	immediate map[int]int
	completed int
	dropped   int
}

func newRecorder() *recorder {
	return &recorder{failures: map[string]int{}, immediate: map[int]int{}}
}

func (r *recorder) record(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.completed++
	if err == nil {
		r.latencies = append(r.latencies, d)
		return
	}
	var f *Failure
	if !errors.As(err, &f) {
		r.failures["other "+err.Error()]++
		return
	}
	if f.Kind == FailImmediate {
		r.immediate[f.Status]++
		return
	}
	r.failures[f.Key()]++
}

func (r *recorder) drop() {
	r.mu.Lock()
	r.dropped++
	r.mu.Unlock()
}
