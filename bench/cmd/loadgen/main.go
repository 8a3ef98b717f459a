// Command loadgen drives an ext_proc server the way Envoy does through
// Tollgate's two filters; see package bench/loadgen for what it sends and
// how to profile the server. Run it from the repository root so the default
// fixture paths resolve.
//
//	go run ./bench/cmd/loadgen -addr 127.0.0.1:50099 -server-pid $PID -concurrency 16 -duration 5s
//	go run ./bench/cmd/loadgen -compare -floor-cmd '/tmp/noop -addr 127.0.0.1:50099' -server-cmd '/tmp/extproc ...'
//	go run ./bench/cmd/loadgen -open-streams 10000 -hold 10s -stream-events bench/testdata/anthropic_messages.stream.sse
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tollgate-gw/tollgate/bench/loadgen"
)

type options struct {
	addr        string
	conns       int
	serverPID   int
	serverCmd   string
	floorCmd    string
	compare     bool
	startWait   time.Duration
	jsonOut     bool
	cpuprofile  string
	memprofile  string
	load        loadgen.Load
	hold        loadgen.HoldConfig
	reqBody     string
	respBody    string
	streamFile  string
	streamRep   int
	contentType string
	deployment  string
	apiKey      string
	attempts    int
	routerFwd   bool
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:50099", "ext_proc server: host:port on loopback, or unix:///path")
	flag.IntVar(&o.conns, "conns", 1, "HTTP/2 connections to the server (Envoy opens one per worker thread)")
	flag.IntVar(&o.serverPID, "server-pid", 0, "measure CPU and RSS of this running server process")
	flag.StringVar(&o.serverCmd, "server-cmd", "", "start this server command (via sh -c 'exec ...'), measure it, stop it with SIGTERM; use a built binary, not 'go run', or the go tool is measured")
	flag.StringVar(&o.floorCmd, "floor-cmd", "", "with -compare: the floor server command, normally the no-op server listening on -addr")
	flag.BoolVar(&o.compare, "compare", false, "run -floor-cmd then -server-cmd with the same sequence and load, and report the target's cost above the floor")
	flag.DurationVar(&o.startWait, "server-start-timeout", 15*time.Second, "how long a started server may take to accept connections")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON object instead of text")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write the load generator's CPU profile here")
	flag.StringVar(&o.memprofile, "memprofile", "", "write the load generator's heap profile here at exit")

	flag.IntVar(&o.load.Concurrency, "concurrency", 8, "closed-loop workers (ignored with -rate)")
	flag.Float64Var(&o.load.Rate, "rate", 0, "open loop: start this many requests per second")
	flag.IntVar(&o.load.MaxInFlight, "max-inflight", 10000, "open loop: requests over this many in flight are dropped and counted")
	flag.DurationVar(&o.load.Duration, "duration", 5*time.Second, "measured window (0 = until -requests)")
	flag.IntVar(&o.load.Requests, "requests", 0, "measured request count (0 = until -duration)")
	flag.DurationVar(&o.load.Warmup, "warmup", time.Second, "unmeasured warmup before the window")
	flag.DurationVar(&o.load.Timeout, "timeout", 10*time.Second, "per-request timeout")

	flag.IntVar(&o.hold.Streams, "open-streams", 0, "instead of a load run, hold this many streaming requests open and report server RSS")
	flag.DurationVar(&o.hold.Hold, "hold", 10*time.Second, "with -open-streams: how long to keep them all open")
	flag.DurationVar(&o.hold.OpenTimeout, "open-timeout", time.Minute, "with -open-streams: bound on the opening phase")
	flag.IntVar(&o.hold.Parallel, "open-parallel", 64, "with -open-streams: requests being opened at a time")

	flag.StringVar(&o.reqBody, "request-body", "", "request body fixture (default bench/testdata/openai_chat.request.json, or openai_chat_stream.request.json with -stream-events)")
	flag.StringVar(&o.respBody, "response-body", "bench/testdata/openai_chat.response.json", "upstream response body fixture for non-stream requests")
	flag.StringVar(&o.streamFile, "stream-events", "", "SSE fixture: makes the response a stream, one response_body chunk per event")
	flag.IntVar(&o.streamRep, "stream-repeat", 0, "cycle the stream's content-delta events until there are this many (e.g. 1000)")
	flag.StringVar(&o.contentType, "upstream-response-content-type", "", "upstream response content-type (default application/json, text/event-stream for streams)")
	flag.StringVar(&o.deployment, "deployment", "openai-gpt-4o-mini", "value of the upstream host's tollgate.deployment metadata attribute")
	flag.StringVar(&o.apiKey, "api-key", "sk-bench-0000000000000000", "virtual key sent as authorization: Bearer <key>")
	flag.IntVar(&o.attempts, "attempts", 1, "upstream attempts per request, one upstream ext_proc stream each")
	flag.BoolVar(&o.routerFwd, "router-forward-metadata", false, "play a router-level filter with forwarding_namespaces (the tollgate namespace on every router message) instead of envoy/envoy.yaml's response attribute")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	seq, err := sequence(o)
	if err != nil {
		return err
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.memprofile != "" {
		defer writeHeapProfile(o.memprofile)
	}

	var result interface{ WriteText(io.Writer) }
	switch {
	case o.compare:
		if o.floorCmd == "" || o.serverCmd == "" {
			return errors.New("-compare needs -floor-cmd and -server-cmd")
		}
		floor, err := measure(ctx, o, seq, o.floorCmd)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		target, err := measure(ctx, o, seq, o.serverCmd)
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		result = loadgen.Compare(floor, target)
	case o.hold.Streams > 0:
		r, err := withServer(ctx, o, o.serverCmd, func(clients clientSet, pid int) (*loadgen.HoldReport, error) {
			cfg := o.hold
			cfg.ServerPID = pid
			return loadgen.Hold(ctx, clients, seq, cfg)
		})
		if err != nil {
			return err
		}
		result = r
	default:
		r, err := measure(ctx, o, seq, o.serverCmd)
		if err != nil {
			return err
		}
		result = r
	}
	if o.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(result)
	}
	result.WriteText(out)
	return nil
}

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: memprofile:", err)
		return
	}
	defer f.Close()
	runtime.GC() // profile live objects, not garbage
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: memprofile:", err)
	}
}

func sequence(o options) (*loadgen.Sequence, error) {
	reqPath := o.reqBody
	if reqPath == "" {
		reqPath = "bench/testdata/openai_chat.request.json"
		if o.streamFile != "" {
			reqPath = "bench/testdata/openai_chat_stream.request.json"
		}
	}
	req, err := os.ReadFile(reqPath)
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	seq := &loadgen.Sequence{
		RequestBody:            req,
		ResponseContentType:    o.contentType,
		Deployment:             o.deployment,
		APIKey:                 o.apiKey,
		Attempts:               o.attempts,
		RouterForwardsMetadata: o.routerFwd,
	}
	if o.streamFile == "" {
		if seq.ResponseBody, err = os.ReadFile(o.respBody); err != nil {
			return nil, fmt.Errorf("response body: %w", err)
		}
		return seq, nil
	}
	events, err := loadgen.LoadSSE(o.streamFile)
	if err != nil {
		return nil, err
	}
	if seq.StreamEvents, err = loadgen.RepeatStream(events, o.streamRep); err != nil {
		return nil, err
	}
	return seq, nil
}

type clientSet = []extprocv3.ExternalProcessorClient

// measure runs one load run against the server on o.addr, started from cmd
// when cmd is set.
func measure(ctx context.Context, o options, seq *loadgen.Sequence, cmd string) (*loadgen.Report, error) {
	return withServer(ctx, o, cmd, func(clients clientSet, pid int) (*loadgen.Report, error) {
		load := o.load
		load.ServerPID = pid
		return loadgen.Run(ctx, clients, seq, load)
	})
}

// withServer starts cmd (if set), dials o.addr and calls f with the server
// pid to measure (o.serverPID when nothing was started), stopping the server
// afterwards.
func withServer[R any](ctx context.Context, o options, cmd string, f func(clientSet, int) (R, error)) (R, error) {
	var zero R
	pid := o.serverPID
	if cmd != "" {
		srv, err := startServer(ctx, cmd, o.addr, o.startWait)
		if err != nil {
			return zero, err
		}
		defer srv.stop()
		pid = srv.cmd.Process.Pid
	}
	clients, closeConns, err := loadgen.Dial(o.addr, o.conns)
	if err != nil {
		return zero, err
	}
	defer closeConns()
	return f(clients, pid)
}

type server struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func startServer(ctx context.Context, command, addr string, wait time.Duration) (*server, error) {
	// exec keeps the measured pid the server's own, not a shell's.
	cmd := exec.Command("sh", "-c", "exec "+command)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// The server must not outlive the load generator if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.exited) }()

	network, address := "tcp", addr
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		network, address = "unix", p
	}
	deadline := time.Now().Add(wait)
	for {
		c, err := net.DialTimeout(network, address, time.Second)
		if err == nil {
			_ = c.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("start server: %q exited before accepting connections", command)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("start server: %s not accepting connections after %s: %w", addr, wait, err)
		}
	}
}

// stop sends SIGTERM and, if the server has not exited within 10s, kills it.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}
