package policy

import (
	"sync"
	"sync/atomic"
	"time"
)

// queuedSpend is spend waiting for Redis; updates to one counter are
// summed, so the queue grows with distinct counters, not requests.
type queuedSpend struct {
	amount float64
	ttl    int64
	scope  scope
	start  time.Time
}

// spendQueue holds updates the RedisLimiter could not write. Its zero value
// is unbounded until limit is set.
type spendQueue struct {
	limit int

	mu       sync.Mutex
	spends   map[string]queuedSpend
	releases map[[2]string]struct{}

	queued, flushed, dropped atomic.Uint64
}

func (q *spendQueue) lenLocked() int { return len(q.spends) + len(q.releases) }

func (q *spendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lenLocked()
}

// addSpend queues an amount; it reports false (and counts a drop) only
// when the queue is full and the counter is not already queued.
func (q *spendQueue) addSpend(name string, s queuedSpend) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spends == nil {
		q.spends = map[string]queuedSpend{}
	}
	if cur, ok := q.spends[name]; ok {
		cur.amount += s.amount
		q.spends[name] = cur
		q.queued.Add(1)
		return true
	}
	if q.limit > 0 && q.lenLocked() >= q.limit {
		q.dropped.Add(1)
		return false
	}
	q.spends[name] = s
	q.queued.Add(1)
	return true
}

// addRelease queues a parallel-slot release. A dropped release is not
// lost for good: the slot's lease expires it.
func (q *spendQueue) addRelease(zset, member string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.releases == nil {
		q.releases = map[[2]string]struct{}{}
	}
	if q.limit > 0 && q.lenLocked() >= q.limit {
		q.dropped.Add(1)
		return
	}
	q.releases[[2]string{zset, member}] = struct{}{}
	q.queued.Add(1)
}

// restore puts back updates a flush could not write; they were counted
// and admitted under the limit when first queued.
func (q *spendQueue) restore(spends map[string]queuedSpend, releases map[[2]string]struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(spends) > 0 && q.spends == nil {
		q.spends = map[string]queuedSpend{}
	}
	for name, s := range spends {
		if cur, ok := q.spends[name]; ok {
			s.amount += cur.amount
		}
		q.spends[name] = s
	}
	if len(releases) > 0 && q.releases == nil {
		q.releases = map[[2]string]struct{}{}
	}
	for r := range releases {
		q.releases[r] = struct{}{}
	}
}

// take empties the queue and returns what it held.
func (q *spendQueue) take() (map[string]queuedSpend, map[[2]string]struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s, r := q.spends, q.releases
	q.spends, q.releases = nil, nil
	return s, r
}

func (q *spendQueue) stats() (queued, flushed, dropped uint64, n int) {
	return q.queued.Load(), q.flushed.Load(), q.dropped.Load(), q.len()
}
