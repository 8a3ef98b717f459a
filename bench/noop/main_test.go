package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/bench/loadgen"
)

func start(t *testing.T, network, addr string) string {
	t.Helper()
	lis, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(noop{streamSSE: true}, 64<<20)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	if network == "unix" {
		return "unix://" + addr
	}
	return lis.Addr().String()
}

func TestNoop_UnderLoadgen(t *testing.T) {
	events, err := loadgen.LoadSSE("../testdata/anthropic_messages.stream.sse")
	if err != nil {
		t.Fatal(err)
	}
	req, err := os.ReadFile("../testdata/openai_chat.request.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		network string
		seq     *loadgen.Sequence
		load    loadgen.Load
	}{
		{
			name:    "closed loop non-stream over tcp",
			network: "tcp",
			seq:     &loadgen.Sequence{RequestBody: req, ResponseBody: []byte(`{}`), Deployment: "d"},
			load:    loadgen.Load{Concurrency: 4, Requests: 200},
		},
		{
			name:    "open loop stream over unix socket, two attempts",
			network: "unix",
			seq:     &loadgen.Sequence{RequestBody: req, StreamEvents: events, Deployment: "d", Attempts: 2},
			load:    loadgen.Load{Rate: 1000, Requests: 200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if tt.network == "unix" {
				addr = filepath.Join(t.TempDir(), "noop.sock")
			}
			clients, closeConns, err := loadgen.Dial(start(t, tt.network, addr), 2)
			if err != nil {
				t.Fatal(err)
			}
			defer closeConns()
			load := tt.load
			// The server runs in this process, so its CPU is ours too.
			load.ServerPID = os.Getpid()
			load.Timeout = 10 * time.Second
			r, err := loadgen.Run(t.Context(), clients, tt.seq, load)
			if err != nil {
				t.Fatal(err)
			}
			if r.Completed != 200 || r.OK != 200 || r.Errors() != 0 || len(r.Failures) != 0 || len(r.Immediate) != 0 || r.Dropped != 0 {
				t.Fatalf("report = %+v, want 200 clean requests", r)
			}
			l := r.Latency
			if l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
				t.Errorf("latency not ordered: %+v", l)
			}
			if r.RPS <= 0 || r.Server == nil || r.Server.RSSPeakK <= 0 || r.Server.CPUSeconds < 0 {
				t.Errorf("stats missing: rps %v server %+v", r.RPS, r.Server)
			}
		})
	}
}
