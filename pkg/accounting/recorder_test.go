package accounting_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

const (
	loadRecords = 10000
	loadKeys    = 20
	loadTeams   = 4
)

var baseTime = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// loadRecord is record i of a load test. Costs are multiples of 1/1024, so
// every sum is exact in float64 and in Redis's long doubles: totals must
// match to the last bit, not approximately.
func loadRecord(i int) accounting.Record {
	return accounting.Record{
		Time:       baseTime.Add(time.Duration(i) * time.Millisecond),
		RequestID:  fmt.Sprintf("req-%05d", i),
		KeyID:      fmt.Sprintf("key-%02d", i%loadKeys),
		Team:       fmt.Sprintf("team-%d", i%loadTeams),
		ModelGroup: []string{"gpt-4o", "claude"}[i%2],
		Deployment: "d1",
		Provider:   "openai",
		Model:      "gpt-4o",
		Usage:      transform.Usage{InputTokens: int64(i % 100), OutputTokens: int64(i % 7)},
		Cost:       float64(i%8+1) / 1024,
		Latency:    time.Second,
		Status:     200,
	}
}

// recordConcurrently records loadRecords records from 50 goroutines and
// reports how many were refused.
func recordConcurrently(t *testing.T, r *accounting.Recorder) int {
	t.Helper()
	const workers = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for w := range workers {
		wg.Go(func() {
			for i := w; i < loadRecords; i += workers {
				if !r.Record(loadRecord(i)) {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return refused
}

// wantTotals sums the load records by key and team.
func wantTotals() map[accounting.TotalsKey]accounting.Totals {
	want := map[accounting.TotalsKey]accounting.Totals{}
	for i := range loadRecords {
		r := loadRecord(i)
		for _, k := range []accounting.TotalsKey{{Scope: accounting.ScopeKey, ID: r.KeyID}, {Scope: accounting.ScopeTeam, ID: r.Team}} {
			t := want[k]
			t.Spend += r.Cost
			t.Requests++
			t.InputTokens += r.Usage.InputTokens
			t.OutputTokens += r.Usage.OutputTokens
			want[k] = t
		}
	}
	return want
}

// checkLoad verifies that the totals and the stored records of every key
// add up exactly to what was recorded, each record stored once.
func checkLoad(t *testing.T, r *accounting.Recorder) {
	t.Helper()
	ctx := t.Context()
	var grand accounting.Totals
	for k, want := range wantTotals() {
		var got accounting.Totals
		var err error
		if k.Scope == accounting.ScopeKey {
			got, err = r.Totals(ctx, k.ID)
		} else {
			got, err = r.TeamTotals(ctx, k.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("totals of %v = %+v, want %+v", k, got, want)
		}
		if k.Scope == accounting.ScopeKey {
			grand.Spend += want.Spend
			grand.Requests += want.Requests
		}
	}
	seen := map[string]bool{}
	var stored accounting.Totals
	for k := range loadKeys {
		recs, err := r.Query(ctx, accounting.Filter{KeyID: fmt.Sprintf("key-%02d", k), Limit: accounting.MaxQueryLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if seen[rec.RequestID] {
				t.Errorf("record %s stored twice", rec.RequestID)
			}
			seen[rec.RequestID] = true
			stored.Spend += rec.Cost
			stored.Requests++
		}
	}
	if stored != grand || grand.Requests != loadRecords {
		t.Errorf("sink holds %d records costing %v, want %d costing %v", stored.Requests, stored.Spend, grand.Requests, grand.Spend)
	}
}

func TestRecorder_ConcurrentTotals(t *testing.T) {
	r := accounting.NewRecorder(accounting.RecorderConfig{
		Sink:          accounting.NewMemorySink(2 * loadRecords),
		FlushInterval: 10 * time.Millisecond,
		BatchSize:     256,
		QueueSize:     loadRecords,
	})
	if refused := recordConcurrently(t, r); refused != 0 {
		t.Fatalf("%d records refused", refused)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkLoad(t, r)
	if r.Dropped() != 0 {
		t.Errorf("dropped %d", r.Dropped())
	}
}

func TestRecorder_CloseFlushes(t *testing.T) {
	m, reg := newTestMetrics(t)
	sink := accounting.NewMemorySink(0)
	// Nothing would be written before Close: batches never fill and the
	// flush interval never passes.
	r := accounting.NewRecorder(accounting.RecorderConfig{
		Sink: sink, BatchSize: 5000, FlushInterval: time.Hour, Metrics: m,
	})
	const n = 777
	for i := range n {
		if !r.Record(loadRecord(i)) {
			t.Fatalf("record %d refused", i)
		}
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs, err := sink.Query(t.Context(), accounting.Filter{Limit: accounting.MaxQueryLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Errorf("sink holds %d records after Close, want %d", len(recs), n)
	}
	if recs[0].RequestID != "req-00776" || recs[n-1].RequestID != "req-00000" {
		t.Errorf("query order: first %s last %s, want newest first", recs[0].RequestID, recs[n-1].RequestID)
	}
	if got := metric(t, reg, "tollgate_spend_records_written_total", nil).GetCounter().GetValue(); got != n {
		t.Errorf("written counter = %v, want %d", got, n)
	}
	if got := metric(t, reg, "tollgate_spend_queue_records", nil).GetGauge().GetValue(); got != 0 {
		t.Errorf("queue depth after Close = %v, want 0", got)
	}

	// Closed: records are refused and counted; Close again is harmless.
	if r.Record(loadRecord(0)) {
		t.Error("Record after Close accepted")
	}
	if err := r.Close(t.Context()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if r.Dropped() != 1 {
		t.Errorf("dropped %d, want 1", r.Dropped())
	}
}

func TestRecorder_FullQueueDrops(t *testing.T) {
	m, reg := newTestMetrics(t)
	sink := newBlockingSink()
	r := accounting.NewRecorder(accounting.RecorderConfig{
		Sink: sink, QueueSize: 10, BatchSize: 1, MaxPending: 1, Metrics: m,
	})
	r.Record(loadRecord(0))
	<-sink.entered // the writer is stuck in Write with record 0

	start := time.Now()
	accepted := 0
	for i := 1; i <= 100; i++ {
		if r.Record(loadRecord(i)) {
			accepted++
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("100 Record calls on a full queue took %v; Record must not block", d)
	}
	if accepted != 10 || r.Dropped() != 90 {
		t.Errorf("accepted %d, dropped %d; want 10 and 90", accepted, r.Dropped())
	}
	const want = `
# HELP tollgate_spend_records_dropped_total Spend records lost, by reason (queue_full, closed, shutdown_timeout).
# TYPE tollgate_spend_records_dropped_total counter
tollgate_spend_records_dropped_total{reason="closed"} 0
tollgate_spend_records_dropped_total{reason="queue_full"} 90
tollgate_spend_records_dropped_total{reason="shutdown_timeout"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tollgate_spend_records_dropped_total"); err != nil {
		t.Error(err)
	}

	close(sink.release)
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs, _ := sink.Query(t.Context(), accounting.Filter{})
	if len(recs) != 11 {
		t.Errorf("sink holds %d records, want the 11 accepted", len(recs))
	}
}

func TestRecorder_RetriesFailingSink(t *testing.T) {
	tests := []struct {
		name    string
		partial bool
	}{
		{"whole batches fail", false},
		{"half of each batch is stored", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &flakySink{MemorySink: accounting.NewMemorySink(2 * loadRecords), failures: 5, partial: tt.partial}
			r := accounting.NewRecorder(accounting.RecorderConfig{
				Sink: sink, FlushInterval: time.Millisecond, BatchSize: 300,
				RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, QueueSize: loadRecords,
			})
			if refused := recordConcurrently(t, r); refused != 0 {
				t.Fatalf("%d records refused", refused)
			}
			if err := r.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if sink.failures != 0 {
				t.Fatalf("sink still had %d failures to give; the test did not exercise retries", sink.failures)
			}
			checkLoad(t, r)
		})
	}
}

// While the sink is down the writer holds at most MaxPending records and
// the queue at most QueueSize; everything past that is dropped, so an
// outage cannot grow memory without bound.
func TestRecorder_BacklogBounded(t *testing.T) {
	r := accounting.NewRecorder(accounting.RecorderConfig{
		Sink: &downSink{accounting.NewMemorySink(0)}, QueueSize: 50, MaxPending: 100,
		RetryMin: time.Millisecond, FlushInterval: time.Millisecond,
	})
	accepted := 0
	for i := range 1000 {
		if r.Record(loadRecord(i)) {
			accepted++
		}
		if i%25 == 0 {
			time.Sleep(time.Millisecond) // let the writer drain the queue
		}
	}
	if accepted > 150 || accepted+int(r.Dropped()) != 1000 {
		t.Errorf("accepted %d, dropped %d; want at most 150 accepted and the rest dropped", accepted, r.Dropped())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); err == nil {
		t.Error("Close with the sink down succeeded")
	}
	if r.Dropped() != 1000 {
		t.Errorf("after Close dropped %d, want all 1000", r.Dropped())
	}
}

func TestRecorder_CloseTimeout(t *testing.T) {
	m, reg := newTestMetrics(t)
	r := accounting.NewRecorder(accounting.RecorderConfig{
		Sink: &downSink{accounting.NewMemorySink(0)}, RetryMin: time.Millisecond, Metrics: m,
	})
	for i := range 25 {
		r.Record(loadRecord(i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := r.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "25 records") {
		t.Errorf("Close = %v, want an error counting 25 lost records", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v after its context ended", d)
	}
	if r.Dropped() != 25 {
		t.Errorf("dropped %d, want 25", r.Dropped())
	}
	m2 := metric(t, reg, "tollgate_spend_records_dropped_total", map[string]string{"reason": "shutdown_timeout"})
	if m2.GetCounter().GetValue() != 25 {
		t.Errorf("shutdown_timeout drops = %v, want 25", m2.GetCounter().GetValue())
	}
}

func TestRecorder_BadCost(t *testing.T) {
	sink := accounting.NewMemorySink(0)
	r := accounting.NewRecorder(accounting.RecorderConfig{Sink: sink})
	for i, c := range []float64{math.NaN(), math.Inf(1), -1} {
		rec := loadRecord(i)
		rec.Cost = c
		r.Record(rec)
	}
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs, _ := sink.Query(t.Context(), accounting.Filter{})
	for _, rec := range recs {
		if rec.Cost != 0 || !rec.Unpriced {
			t.Errorf("%s: cost %v unpriced %v, want 0 and unpriced", rec.RequestID, rec.Cost, rec.Unpriced)
		}
	}
	tot, _ := r.TeamTotals(t.Context(), "team-0")
	if tot.Spend != 0 || tot.Requests != 1 {
		t.Errorf("team totals %+v", tot)
	}
}

func TestMemorySink_Query(t *testing.T) {
	sink := accounting.NewMemorySink(50)
	var b accounting.Batch
	for i := range 80 { // wraps the ring: records 30..79 remain
		b.Records = append(b.Records, loadRecord(i))
	}
	if _, err := sink.Write(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		f         accounting.Filter
		wantFirst string
		wantLen   int
	}{
		{"all, newest first", accounting.Filter{}, "req-00079", 50},
		{"limit", accounting.Filter{Limit: 3}, "req-00079", 3},
		{"key", accounting.Filter{KeyID: "key-05"}, "req-00065", 2},
		{"team and model group", accounting.Filter{Team: "team-1", ModelGroup: "claude"}, "req-00077", 12},
		{"team and other model group", accounting.Filter{Team: "team-1", ModelGroup: "gpt-4o"}, "", 0},
		{"time range", accounting.Filter{From: baseTime.Add(40 * time.Millisecond), To: baseTime.Add(45 * time.Millisecond)}, "req-00044", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := sink.Query(t.Context(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.wantLen {
				t.Fatalf("%d records, want %d", len(recs), tt.wantLen)
			}
			if len(recs) > 0 && recs[0].RequestID != tt.wantFirst {
				t.Errorf("first %s, want %s", recs[0].RequestID, tt.wantFirst)
			}
		})
	}
}

func BenchmarkRecorder_Record(b *testing.B) {
	r := accounting.NewRecorder(accounting.RecorderConfig{QueueSize: 1 << 16})
	rec := loadRecord(1)
	b.ReportAllocs()
	for b.Loop() {
		r.Record(rec)
	}
	b.StopTimer()
	if err := r.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}
