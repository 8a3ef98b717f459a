package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Dial opens n HTTP/2 connections to an ext_proc server, as Envoy opens one
// per worker thread. target is host:port or unix:///path; there is no TLS,
// so use loopback or a unix socket. The send and receive limits are raised
// because Envoy's are unlimited and BUFFERED bodies travel whole.
func Dial(target string, n int) ([]extprocv3.ExternalProcessorClient, func(), error) {
	var conns []*grpc.ClientConn
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	clients := make([]extprocv3.ExternalProcessorClient, 0, n)
	for range max(n, 1) {
		c, err := grpc.NewClient(target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
		)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("dial %s: %w", target, err)
		}
		// Connect now, so the first requests do not pay for the handshake.
		c.Connect()
		conns = append(conns, c)
		clients = append(clients, extprocv3.NewExternalProcessorClient(c))
	}
	return clients, closeAll, nil
}

// Load is how hard and how long to drive a server.
type Load struct {
	// Concurrency is the number of closed-loop workers, each sending its
	// next request when the previous one ends. Used when Rate is 0; 0 means 1.
	Concurrency int
	// Rate, when > 0, runs an open loop: requests start at this many per
	// second whatever the server's latency, and latency counts from the
	// scheduled start, so a stalled server cannot hide its queueing.
	Rate float64
	// MaxInFlight caps open-loop requests in flight; requests over it are
	// counted as dropped, not sent. 0 means 10,000.
	MaxInFlight int
	// Duration bounds the measured window; Requests bounds its request
	// count. At least one must be set; the first reached ends the run.
	Duration time.Duration
	Requests int
	// Warmup runs the same load for this long before measuring; 0 skips it.
	Warmup time.Duration
	// Timeout bounds each request; 0 means 30s.
	Timeout time.Duration
	// ServerPID, when > 0, is the process whose CPU and RSS are measured.
	ServerPID int
	// RSSInterval is the RSS sampling period; 0 means 100ms.
	RSSInterval time.Duration
}

// Report is the outcome of one measured window.
type Report struct {
	Mode        string  `json:"mode"` // "closed" or "open"
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Streaming   bool    `json:"streaming"`
	Events      int     `json:"stream_events,omitempty"`
	Attempts    int     `json:"attempts"`
	// Completed counts requests that ended, successfully or not.
	Completed int `json:"completed"`
	OK        int `json:"ok"`
	// Failures counts failed requests by Failure.Key; immediate replies are
	// in Immediate, keyed by HTTP status.
	Failures  map[string]int `json:"failures"`
	Immediate map[string]int `json:"immediate_responses"`
	Dropped   int            `json:"dropped,omitempty"`
	ElapsedS  float64        `json:"elapsed_s"`
	// RPS is completed requests per second of the window.
	RPS     float64      `json:"rps"`
	Latency Latency      `json:"latency"`
	Server  *ServerStats `json:"server,omitempty"`
}

// Errors is the number of requests that did not complete cleanly.
func (r *Report) Errors() int { return r.Completed - r.OK }

// ServerStats is what the measured server spent in the window.
type ServerStats struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	// CPUPerRequestUS is CPU microseconds per completed request.
	CPUPerRequestUS float64 `json:"cpu_us_per_request"`
	// CPUCores is the average number of cores the server kept busy.
	CPUCores  float64 `json:"cpu_cores"`
	RSSStartK int64   `json:"rss_start_kib"`
	RSSPeakK  int64   `json:"rss_peak_kib"`
	RSSEndK   int64   `json:"rss_end_kib"`
}

// Run drives the server with seq under load: an optional warmup, then the
// measured window. Requests spread over clients round-robin.
func Run(ctx context.Context, clients []extprocv3.ExternalProcessorClient, seq *Sequence, load Load) (*Report, error) {
	if len(clients) == 0 {
		return nil, errors.New("run: no clients")
	}
	if load.Duration <= 0 && load.Requests <= 0 {
		return nil, errors.New("run: set a duration or a request count, so the run is bounded")
	}
	if load.Warmup > 0 {
		w := load
		w.Duration, w.Requests = load.Warmup, 0
		if _, _, err := drive(ctx, clients, seq, w, "warmup-"); err != nil {
			return nil, err
		}
	}

	var (
		sampler  *rssSampler
		cpuStart time.Duration
	)
	if load.ServerPID > 0 {
		var err error
		if cpuStart, err = ReadCPU(load.ServerPID); err != nil {
			return nil, err
		}
		sampler = startRSSSampler(load.ServerPID, orDefault(load.RSSInterval, 100*time.Millisecond))
	}
	rec, elapsed, err := drive(ctx, clients, seq, load, "")
	if err != nil {
		if sampler != nil {
			_, _, _ = sampler.finish()
		}
		return nil, err
	}

	r := &Report{
		Mode:      "closed",
		Streaming: seq.Streaming(),
		Events:    len(seq.StreamEvents),
		Attempts:  seq.attempts(),
		Completed: rec.completed,
		OK:        len(rec.latencies),
		Failures:  rec.failures,
		Immediate: map[string]int{},
		Dropped:   rec.dropped,
		ElapsedS:  elapsed.Seconds(),
		RPS:       float64(rec.completed) / elapsed.Seconds(),
		Latency:   Summarize(rec.latencies),
	}
	for code, n := range rec.immediate {
		r.Immediate[strconv.Itoa(code)] = n
	}
	if load.Rate > 0 {
		r.Mode, r.Rate = "open", load.Rate
	} else {
		r.Concurrency = max(load.Concurrency, 1)
	}
	if sampler != nil {
		cpuEnd, err := ReadCPU(load.ServerPID)
		rssEnd, rssPeak, serr := sampler.finish()
		if err = errors.Join(err, serr); err != nil {
			return nil, err
		}
		cpu := cpuEnd - cpuStart
		r.Server = &ServerStats{
			PID:        load.ServerPID,
			CPUSeconds: cpu.Seconds(),
			CPUCores:   cpu.Seconds() / elapsed.Seconds(),
			RSSPeakK:   rssPeak,
			RSSEndK:    rssEnd,
		}
		if rec.completed > 0 {
			r.Server.CPUPerRequestUS = float64(cpu.Microseconds()) / float64(rec.completed)
		}
		r.Server.RSSStartK = sampler.first
	}
	return r, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// drive runs one bounded phase and waits for every request it started.
func drive(ctx context.Context, clients []extprocv3.ExternalProcessorClient, seq *Sequence, load Load, idPrefix string) (*recorder, time.Duration, error) {
	rec := newRecorder()
	timeout := orDefault(load.Timeout, 30*time.Second)
	var ids atomic.Int64
	one := func(at time.Time) {
		n := ids.Add(1)
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		err := seq.Do(rctx, clients[int(n)%len(clients)], idPrefix+"bench-"+strconv.FormatInt(n, 10))
		rec.record(time.Since(at), err)
	}
	start := time.Now()
	var deadline time.Time
	if load.Duration > 0 {
		deadline = start.Add(load.Duration)
	}
	over := func(now time.Time) bool {
		return ctx.Err() != nil || (!deadline.IsZero() && !now.Before(deadline))
	}
	var wg sync.WaitGroup
	if load.Rate > 0 {
		interval := time.Duration(float64(time.Second) / load.Rate)
		maxInFlight := int64(load.MaxInFlight)
		if maxInFlight <= 0 {
			maxInFlight = 10000
		}
		var inFlight atomic.Int64
		timer := time.NewTimer(0)
		defer timer.Stop()
		for i := 0; load.Requests <= 0 || i < load.Requests; i++ {
			at := start.Add(time.Duration(i) * interval)
			if over(at) {
				break
			}
			if wait := time.Until(at); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
				}
			}
			if inFlight.Load() >= maxInFlight {
				rec.drop()
				continue
			}
			inFlight.Add(1)
			wg.Go(func() {
				defer inFlight.Add(-1)
				one(at)
			})
		}
	} else {
		var issued atomic.Int64
		for range max(load.Concurrency, 1) {
			wg.Go(func() {
				for !over(time.Now()) {
					if load.Requests > 0 && issued.Add(1) > int64(load.Requests) {
						return
					}
					one(time.Now())
				}
			})
		}
	}
	wg.Wait()
	return rec, time.Since(start), ctx.Err()
}
