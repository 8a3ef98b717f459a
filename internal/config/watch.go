package config

import (
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// Watch follows a config file: it calls apply with the file's content
// whenever the content differs from what was last applied (checked every
// poll; zero disables polling) and two polls in a row read it the same, so
// a file caught in the middle of an in-place write is never applied; and
// on every value from reload (SIGHUP)
// even when unchanged, since referenced environment variables or secret
// files may have changed. applied is the content already in force when
// Watch starts. Read failures go to fail, once per distinct error, so a
// file missing for many polls (an editor's rename) is reported once. Watch
// returns when ctx is done.
//
// Both cmd/extproc and cmd/xds follow the same file this way, so one edit
// reaches Envoy's pools and every ext_proc replica within two polls.
func Watch(ctx context.Context, path string, poll time.Duration, reload <-chan os.Signal, applied []byte, apply func([]byte), fail func(error)) {
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	last := sha256.Sum256(applied)
	// seen is the changed content the previous poll read, not yet applied.
	var seen [sha256.Size]byte
	lastErr := ""
	read := func() ([]byte, bool) {
		data, err := os.ReadFile(path)
		if err != nil {
			if err.Error() != lastErr {
				lastErr = err.Error()
				fail(err)
			}
			return nil, false
		}
		lastErr = ""
		return data, true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			if data, ok := read(); ok {
				last = sha256.Sum256(data)
				seen = last
				apply(data)
			}
		case <-tick:
			data, ok := read()
			if !ok {
				continue
			}
			switch sum := sha256.Sum256(data); {
			case sum == last:
				seen = last
			case sum != seen:
				seen = sum
			default:
				last = sum
				apply(data)
			}
		}
	}
}
