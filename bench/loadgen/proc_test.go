package loadgen

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{
			name: "plain",
			stat: "1234 (noop) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 8 0 100 1000000 500 18446744073709551615",
			want: 3800 * time.Millisecond,
		},
		{
			name: "command with spaces and parentheses",
			stat: "99 (my (odd) srv) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0",
			want: 100 * time.Millisecond,
		},
		{name: "truncated", stat: "99 (x) R 1 2 3", wantErr: true},
		{name: "no command", stat: "99 x R", wantErr: true},
		{name: "not a number", stat: "99 (x) R 1 99 99 0 -1 0 0 0 0 0 a 3 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("cpu = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{name: "present", status: "Name:\tnoop\nVmHWM:\t   30000 kB\nVmRSS:\t   22376 kB\nThreads:\t8\n", want: 22376},
		{name: "missing (zombie)", status: "Name:\tnoop\nState:\tZ (zombie)\n", wantErr: true},
		{name: "malformed", status: "VmRSS:\t12 MB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusRSS([]byte(tt.status))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("rss = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestReadSelf(t *testing.T) {
	if _, err := ReadCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	kb, err := ReadRSS(os.Getpid())
	if err != nil || kb <= 0 {
		t.Fatalf("ReadRSS = %d, %v", kb, err)
	}
}
