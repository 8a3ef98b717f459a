package accounting_test

import (
	"context"
	"errors"
	"sync"

	"github.com/tollgate-gw/tollgate/pkg/accounting"
)

var errSinkDown = errors.New("sink down")

// blockingSink signals entered on its first Write and holds that Write until
// release is closed; later writes go straight through. It stands for a sink
// stuck on a slow network.
type blockingSink struct {
	*accounting.MemorySink
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlockingSink() *blockingSink {
	return &blockingSink{
		MemorySink: accounting.NewMemorySink(100000),
		entered:    make(chan struct{}),
		release:    make(chan struct{}),
	}
}

func (s *blockingSink) Write(ctx context.Context, b accounting.Batch) (accounting.Batch, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return s.MemorySink.Write(ctx, b)
}

// flakySink fails its first failures writes. When partial is set, a failing
// write still stores the first half of the records and none of the totals,
// and reports only the rest, as a Redis pipeline cut halfway does.
type flakySink struct {
	*accounting.MemorySink
	mu       sync.Mutex
	failures int
	partial  bool
	calls    int
}

func (s *flakySink) Write(ctx context.Context, b accounting.Batch) (accounting.Batch, error) {
	s.mu.Lock()
	s.calls++
	fail := s.failures > 0
	if fail {
		s.failures--
	}
	s.mu.Unlock()
	if !fail {
		return s.MemorySink.Write(ctx, b)
	}
	if !s.partial {
		return b, errSinkDown
	}
	half := len(b.Records) / 2
	if _, err := s.MemorySink.Write(ctx, accounting.Batch{Records: b.Records[:half]}); err != nil {
		return b, err
	}
	return accounting.Batch{Records: b.Records[half:], Deltas: b.Deltas}, errSinkDown
}

// downSink never stores anything.
type downSink struct{ *accounting.MemorySink }

func (*downSink) Write(_ context.Context, b accounting.Batch) (accounting.Batch, error) {
	return b, errSinkDown
}

// failingQuerier fails every query.
type failingQuerier struct{}

func (failingQuerier) Query(context.Context, accounting.Filter) ([]accounting.Record, error) {
	return nil, errSinkDown
}
