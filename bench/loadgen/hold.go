package loadgen

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// HoldConfig sets up an open-streams run.
type HoldConfig struct {
	// Streams is how many streaming requests to hold open at once.
	Streams int
	// Parallel bounds how many requests are being opened at a time; 0 means 64.
	Parallel int
	// OpenTimeout bounds the opening phase; 0 means 60s. Requests not open
	// by then count as failed.
	OpenTimeout time.Duration
	// Hold is how long all streams stay open once opened; 0 means 5s.
	Hold time.Duration
	// ServerPID, when > 0, is the process whose RSS and CPU are measured.
	ServerPID int
}

// HoldReport is what holding many streams open cost the server.
type HoldReport struct {
	Requested int            `json:"requested"`
	Opened    int            `json:"opened"`
	Failures  map[string]int `json:"failures"`
	OpenS     float64        `json:"open_s"`
	HeldS     float64        `json:"held_s"`
	// RSS of the server before opening, with every stream open, and the
	// peak sampled while opening and holding, in KiB.
	RSSBeforeK int64 `json:"rss_before_kib,omitempty"`
	RSSOpenK   int64 `json:"rss_open_kib,omitempty"`
	RSSPeakK   int64 `json:"rss_peak_kib,omitempty"`
	// RSSPerStreamK is (peak - before) / opened.
	RSSPerStreamK float64 `json:"rss_per_stream_kib,omitempty"`
	// CPUOpenS is the server CPU spent opening the streams.
	CPUOpenS float64 `json:"cpu_open_s,omitempty"`
}

// Hold opens cfg.Streams streaming requests, each driven through
// response_headers (and the first chunk when the server switched the body to
// STREAMED), keeps them all open for cfg.Hold, then cancels them, as Envoy
// resets ext_proc streams when clients go away. It ends by itself within
// OpenTimeout + Hold plus the time to cancel.
func Hold(ctx context.Context, clients []extprocv3.ExternalProcessorClient, seq *Sequence, cfg HoldConfig) (*HoldReport, error) {
	if len(clients) == 0 || cfg.Streams <= 0 {
		return nil, errors.New("hold: need clients and a stream count")
	}
	parallel := max(cfg.Parallel, 1)
	if cfg.Parallel == 0 {
		parallel = 64
	}
	ctx, cancel := context.WithTimeout(ctx, orDefault(cfg.OpenTimeout, time.Minute)+orDefault(cfg.Hold, 5*time.Second)+10*time.Second)
	defer cancel()
	openCtx, openCancel := context.WithTimeout(ctx, orDefault(cfg.OpenTimeout, time.Minute))
	defer openCancel()

	r := &HoldReport{Requested: cfg.Streams, Failures: map[string]int{}}
	var (
		sampler  *rssSampler
		cpuStart time.Duration
	)
	if cfg.ServerPID > 0 {
		var err error
		if cpuStart, err = ReadCPU(cfg.ServerPID); err != nil {
			return nil, err
		}
		sampler = startRSSSampler(cfg.ServerPID, 100*time.Millisecond)
		r.RSSBeforeK = sampler.first
	}

	hold := make(chan struct{})
	slots := make(chan struct{}, parallel)
	var (
		mu      sync.Mutex
		opening sync.WaitGroup // done when a request is open or has failed
		all     sync.WaitGroup
	)
	start := time.Now()
	for i := range cfg.Streams {
		select {
		case slots <- struct{}{}:
		case <-openCtx.Done():
		}
		if openCtx.Err() != nil {
			mu.Lock()
			r.Failures["not opened: open timeout"] += cfg.Streams - i
			mu.Unlock()
			break
		}
		opening.Add(1)
		all.Go(func() {
			var once sync.Once
			release := func() { once.Do(func() { <-slots; opening.Done() }) }
			defer release()
			// A request still opening when the open phase times out is cut
			// then, not at the end of the whole run.
			reqCtx, reqCancel := context.WithCancel(ctx)
			defer reqCancel()
			stopCut := context.AfterFunc(openCtx, reqCancel)
			hk := hooks{hold: hold, opened: func() {
				stopCut()
				mu.Lock()
				r.Opened++
				mu.Unlock()
				release()
			}}
			err := seq.do(reqCtx, clients[i%len(clients)], "hold-"+strconv.Itoa(i), hk)
			if err != nil {
				var f *Failure
				key := err.Error()
				if errors.As(err, &f) {
					key = f.Key()
				}
				mu.Lock()
				r.Failures[key]++
				mu.Unlock()
			}
		})
	}
	opening.Wait()
	r.OpenS = time.Since(start).Seconds()
	if sampler != nil {
		if cpuEnd, err := ReadCPU(cfg.ServerPID); err == nil {
			r.CPUOpenS = (cpuEnd - cpuStart).Seconds()
		}
		sampler.sample(cfg.ServerPID)
		r.RSSOpenK, _ = sampler.current()
	}

	held := time.Now()
	select {
	case <-time.After(orDefault(cfg.Hold, 5*time.Second)):
	case <-ctx.Done():
	}
	r.HeldS = time.Since(held).Seconds()
	close(hold)
	all.Wait()
	if sampler != nil {
		_, peak, err := sampler.finish()
		if err != nil {
			return nil, err
		}
		r.RSSPeakK = peak
		if r.Opened > 0 {
			r.RSSPerStreamK = float64(peak-r.RSSBeforeK) / float64(r.Opened)
		}
	}
	return r, nil
}
