package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("v1")
	var mu sync.Mutex
	var applied []string
	var failures []error
	got := func() ([]string, int) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), applied...), len(failures)
	}
	reload := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(t.Context(), path, 5*time.Millisecond, reload, []byte("v1"),
			func(b []byte) { mu.Lock(); applied = append(applied, string(b)); mu.Unlock() },
			func(err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() })
	}()
	waitUntil := func(cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				a, f := got()
				t.Fatalf("timed out: applied %v, failures %d", a, f)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	time.Sleep(30 * time.Millisecond)
	if a, _ := got(); len(a) != 0 {
		t.Fatalf("unchanged content applied: %v", a)
	}
	write("v2")
	waitUntil(func() bool { a, _ := got(); return len(a) == 1 && a[0] == "v2" })

	// A missing file is reported once, however many polls see it missing.
	os.Remove(path)
	waitUntil(func() bool { _, f := got(); return f == 1 })
	time.Sleep(30 * time.Millisecond)
	if _, f := got(); f != 1 {
		t.Fatalf("missing file reported %d times", f)
	}
	mu.Lock()
	if !errors.Is(failures[0], fs.ErrNotExist) {
		t.Errorf("failure = %v", failures[0])
	}
	mu.Unlock()

	// Coming back with the same content is not a change; SIGHUP forces it.
	write("v2")
	time.Sleep(30 * time.Millisecond)
	if a, _ := got(); len(a) != 1 {
		t.Fatalf("same content reapplied: %v", a)
	}
	reload <- syscall.SIGHUP
	waitUntil(func() bool { a, _ := got(); return len(a) == 2 && a[1] == "v2" })
}
