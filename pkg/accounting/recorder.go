package accounting

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Batch is work for a Sink: records to store and increments to add to
// running totals. The increments are kept apart from the records because a
// sink may store a record and fail to add its increment, or the reverse;
// retrying each part alone counts every record exactly once when the sink
// reports which parts it stored.
type Batch struct {
	Records []Record
	Deltas  map[TotalsKey]Totals
}

// Empty reports whether b holds no work.
func (b *Batch) Empty() bool { return len(b.Records) == 0 && len(b.Deltas) == 0 }

// Sink stores spend records and running totals. Implementations are safe
// for concurrent use; the Recorder calls Write from one goroutine.
type Sink interface {
	// Write stores b and returns what it could not store. A non-nil error
	// means rest holds work to retry later; rest must be empty when the
	// error is nil.
	Write(ctx context.Context, b Batch) (rest Batch, err error)
	// Query returns the records matching f, newest first.
	Query(ctx context.Context, f Filter) ([]Record, error)
	// Totals returns the running totals of a key or team; zero when none.
	Totals(ctx context.Context, k TotalsKey) (Totals, error)
}

// MemorySink keeps the most recent records in a bounded ring and totals in
// memory. It is the default sink when Redis is not configured; totals then
// cover only this process and are lost on restart.
type MemorySink struct {
	mu     sync.RWMutex
	ring   []Record
	next   int
	full   bool
	totals map[TotalsKey]Totals
}

var _ Sink = (*MemorySink)(nil)

// DefaultMemorySinkSize is the ring size of NewMemorySink(0).
const DefaultMemorySinkSize = 10000

// NewMemorySink returns a sink that keeps the last size records
// (DefaultMemorySinkSize when size <= 0).
func NewMemorySink(size int) *MemorySink {
	if size <= 0 {
		size = DefaultMemorySinkSize
	}
	return &MemorySink{ring: make([]Record, size), totals: make(map[TotalsKey]Totals)}
}

// Write stores everything in b; it never fails.
func (s *MemorySink) Write(_ context.Context, b Batch) (Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range b.Records {
		s.ring[s.next] = b.Records[i]
		s.next++
		if s.next == len(s.ring) {
			s.next, s.full = 0, true
		}
	}
	for k, d := range b.Deltas {
		t := s.totals[k]
		t.merge(d)
		s.totals[k] = t
	}
	return Batch{}, nil
}

// Query scans the ring, newest first.
func (s *MemorySink) Query(_ context.Context, f Filter) ([]Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.next
	if s.full {
		n = len(s.ring)
	}
	limit := f.limit()
	var out []Record
	for i := 1; i <= n && len(out) < limit; i++ {
		r := &s.ring[(s.next-i+len(s.ring))%len(s.ring)]
		if f.match(r) {
			out = append(out, *r)
		}
	}
	return out, nil
}

// Totals returns the in-memory totals of k.
func (s *MemorySink) Totals(_ context.Context, k TotalsKey) (Totals, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.totals[k], nil
}

// RecorderConfig configures a Recorder. Zero values take the defaults.
type RecorderConfig struct {
	// Sink stores the records. Nil: NewMemorySink(0).
	Sink Sink
	// QueueSize bounds the records waiting for the writer; when it is full
	// Record drops the record and counts it. Default 10000.
	QueueSize int
	// BatchSize is the most records per Sink.Write. Default 500.
	BatchSize int
	// FlushInterval is the longest a record waits for a batch to fill.
	// Default 1s.
	FlushInterval time.Duration
	// MaxPending bounds the records held by the writer while the sink
	// fails; past it the queue fills and records are dropped. Default
	// 50000, so five minutes of a 150 requests/s gateway survive a Redis
	// restart.
	MaxPending int
	// RetryMin and RetryMax bound the backoff between failed writes.
	// Defaults 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// WriteTimeout bounds one Sink.Write. Default 5s.
	WriteTimeout time.Duration
	// Metrics receives queue depth, drops and writes. Nil: none.
	Metrics *Metrics
	// Logger logs sink failures. Nil: discard.
	Logger *slog.Logger
}

func (c *RecorderConfig) defaults() {
	if c.Sink == nil {
		c.Sink = NewMemorySink(0)
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 10000
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 50000
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(10*time.Second, c.RetryMin)
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Recorder takes spend records on the request path without blocking and
// writes them to a Sink in batches from one background goroutine. While the
// sink fails it keeps up to MaxPending records and retries with
// exponential backoff, so spend survives a Redis restart; records it must
// drop are counted. Running totals per key and team are added by the same
// writes. Its methods are safe for concurrent use.
type Recorder struct {
	cfg   RecorderConfig
	queue chan Record
	// full wakes the writer when a batch is waiting; otherwise it wakes
	// only on its flush tick, so recording a request costs no goroutine
	// wake-up (the writer never blocks receiving from queue).
	full chan struct{}

	// mu orders Record against Close: once closed is set under the write
	// lock, no record can enter the queue behind the final drain.
	mu     sync.RWMutex
	closed bool

	dropped atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	// stopCtx is set before stop is closed and read by the writer after.
	stopCtx  context.Context
	closeErr error
}

// NewRecorder starts a Recorder; Close stops it.
func NewRecorder(c RecorderConfig) *Recorder {
	c.defaults()
	r := &Recorder{
		cfg:   c,
		queue: make(chan Record, c.QueueSize),
		full:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go r.run()
	return r
}

// Record queues rec and reports whether it was accepted. It never blocks:
// when the queue is full, or the recorder is closed, the record is dropped
// and counted (Dropped, tollgate_spend_records_dropped_total). A cost that
// is negative or not finite is recorded as 0 and marked Unpriced.
func (r *Recorder) Record(rec Record) bool {
	if math.IsNaN(rec.Cost) || math.IsInf(rec.Cost, 0) || rec.Cost < 0 {
		// A broken cost must not poison totals or make the record
		// unencodable; it is kept as an unpriced request.
		rec.Cost, rec.Unpriced = 0, true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.drop(dropClosed, 1)
		return false
	}
	select {
	case r.queue <- rec:
		if len(r.queue) >= r.cfg.BatchSize {
			select {
			case r.full <- struct{}{}:
			default:
			}
		}
		return true
	default:
		r.drop(dropQueueFull, 1)
		return false
	}
}

func (r *Recorder) drop(reason string, n int) {
	r.dropped.Add(int64(n))
	r.cfg.Metrics.spendDrop(reason, n)
}

// Dropped is the number of records lost so far.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Query returns the sink's records matching f, newest first. Records still
// queued are not included.
func (r *Recorder) Query(ctx context.Context, f Filter) ([]Record, error) {
	return r.cfg.Sink.Query(ctx, f)
}

// Totals returns the running totals of a key. They lag Record by up to
// FlushInterval (longer while the sink fails).
func (r *Recorder) Totals(ctx context.Context, keyID string) (Totals, error) {
	return r.cfg.Sink.Totals(ctx, TotalsKey{Scope: ScopeKey, ID: keyID})
}

// TeamTotals returns the running totals of a team, as Totals does for keys.
func (r *Recorder) TeamTotals(ctx context.Context, team string) (Totals, error) {
	return r.cfg.Sink.Totals(ctx, TotalsKey{Scope: ScopeTeam, ID: team})
}

// Close stops taking records and writes every pending one. If ctx ends
// first, the records still pending are dropped, counted and reported in
// the error. Close is for shutdown; later calls return the first result.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	first := !r.closed
	r.closed = true
	r.mu.Unlock()
	if first {
		r.stopCtx = ctx
		close(r.stop)
	}
	<-r.done
	return r.closeErr
}

// pending is the writer's own state: records not yet stored and totals
// increments not yet added.
type pending struct {
	Batch
}

func (p *pending) add(rec Record) {
	p.Records = append(p.Records, rec)
	if p.Deltas == nil {
		p.Deltas = make(map[TotalsKey]Totals)
	}
	if rec.KeyID != "" {
		p.addDelta(TotalsKey{Scope: ScopeKey, ID: rec.KeyID}, &rec)
	}
	if rec.Team != "" {
		p.addDelta(TotalsKey{Scope: ScopeTeam, ID: rec.Team}, &rec)
	}
}

func (p *pending) addDelta(k TotalsKey, rec *Record) {
	t := p.Deltas[k]
	t.add(rec)
	p.Deltas[k] = t
}

func (r *Recorder) run() {
	defer close(r.done)
	var p pending
	ticker := time.NewTicker(r.cfg.FlushInterval)
	defer ticker.Stop()
	var backoff time.Duration
	var retryAt time.Time

	for {
		// fill stops taking from the queue while the writer holds its
		// maximum: the queue then fills and Record drops, instead of memory
		// growing without bound during a long outage.
		tick := false
		select {
		case <-r.full:
			r.fill(&p)
		case <-ticker.C:
			tick = true
			r.fill(&p)
		case <-r.stop:
			r.shutdown(&p, backoff)
			return
		}
		due := tick || len(p.Records) >= r.cfg.BatchSize
		if due && !p.Empty() && !time.Now().Before(retryAt) {
			if err := r.flush(context.Background(), &p); err != nil {
				backoff = min(max(2*backoff, r.cfg.RetryMin), r.cfg.RetryMax)
				retryAt = time.Now().Add(backoff)
				r.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "spend sink write failed; will retry",
					slog.Int("pending_records", len(p.Records)), slog.Duration("retry_in", backoff), slog.Any("error", err))
			} else {
				backoff, retryAt = 0, time.Time{}
			}
		}
		r.cfg.Metrics.setSpendQueue(len(r.queue) + len(p.Records))
	}
}

// fill moves what is queued into p without blocking, up to MaxPending.
func (r *Recorder) fill(p *pending) {
	for len(p.Records) < r.cfg.MaxPending {
		select {
		case rec := <-r.queue:
			p.add(rec)
		default:
			return
		}
	}
}

// flush writes p in batches of BatchSize until it is empty or a write
// fails.
func (r *Recorder) flush(ctx context.Context, p *pending) error {
	for !p.Empty() {
		n := min(len(p.Records), r.cfg.BatchSize)
		b := Batch{Records: p.Records[:n], Deltas: p.Deltas}
		wctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
		rest, err := r.cfg.Sink.Write(wctx, b)
		cancel()
		written := n - len(rest.Records)
		r.cfg.Metrics.spendWrote(written)
		// Unwritten records go back in front, in their order; the slice is
		// rebuilt so the written records' memory can be freed.
		remaining := make([]Record, 0, len(rest.Records)+len(p.Records)-n)
		remaining = append(append(remaining, rest.Records...), p.Records[n:]...)
		p.Records = remaining
		p.Deltas = rest.Deltas
		if err != nil {
			return err
		}
	}
	return nil
}

// shutdown drains the queue and writes everything before stopCtx ends.
func (r *Recorder) shutdown(p *pending, backoff time.Duration) {
	ctx := r.stopCtx
	for drained := false; !drained; {
		select {
		case rec := <-r.queue:
			p.add(rec)
		default:
			drained = true
		}
	}
	for !p.Empty() {
		err := r.flush(ctx, p)
		if err == nil {
			break
		}
		backoff = min(max(2*backoff, r.cfg.RetryMin), r.cfg.RetryMax)
		select {
		case <-ctx.Done():
			n := len(p.Records)
			r.drop(dropShutdown, n)
			r.closeErr = fmt.Errorf("close spend recorder: %d records and %d totals not written: %w", n, len(p.Deltas), err)
			r.cfg.Metrics.setSpendQueue(0)
			return
		case <-time.After(backoff):
		}
	}
	r.cfg.Metrics.setSpendQueue(0)
}
