package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// Linux fixes it at 100 for every user-visible interface on all mainstream
// architectures, and reading sysconf(_SC_CLK_TCK) would need cgo.
const clockTicks = 100

// ReadCPU returns a process's user+system CPU time, all threads included,
// from /proc/<pid>/stat. The resolution is 10 ms, so measure windows of
// seconds, not milliseconds.
func ReadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu: %w", err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of proc(5). The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat: no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat: %d fields after command name", len(f))
	}
	utime, err := strconv.ParseInt(string(f[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse stat utime: %w", err)
	}
	stime, err := strconv.ParseInt(string(f[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse stat stime: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// ReadRSS returns a process's resident set size in KiB (VmRSS of
// /proc/<pid>/status).
func ReadRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	return parseStatusRSS(b)
}

func parseStatusRSS(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("parse status: malformed VmRSS line %q", sc.Text())
		}
		return strconv.ParseInt(string(f[0]), 10, 64)
	}
	return 0, fmt.Errorf("parse status: no VmRSS line")
}

// rssSampler polls a process's RSS and keeps the peak, since VmHWM would
// also count whatever ran before the measured window.
type rssSampler struct {
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	first int64 // taken before the sampler starts, so read without the lock
	peak  int64
	last  int64
	err   error
}

func startRSSSampler(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.sample(pid)
	s.first = s.last
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.sample(pid)
				return
			case <-t.C:
				s.sample(pid)
			}
		}
	}()
	return s
}

func (s *rssSampler) sample(pid int) {
	kb, err := ReadRSS(pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	s.last = kb
	s.peak = max(s.peak, kb)
}

// current returns the latest sample and the peak so far.
func (s *rssSampler) current() (last, peak int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.peak
}

// finish stops sampling and returns the last and peak samples.
func (s *rssSampler) finish() (last, peak int64, err error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.peak, s.err
}
