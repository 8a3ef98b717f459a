// Package loadgen plays Envoy's side of ext_proc against any server that
// follows the Envoy contract, to measure what one gateway request costs the
// server. Command bench/cmd/loadgen wraps it; bench/noop is the floor.
//
// # What one request sends
//
// Following docs/design.md and the shared envoy-contract notes:
//
//  1. A router-level stream: request_headers (with protocol_config, eos
//     false), then the whole request body (BUFFERED, eos true), each awaiting
//     its reply.
//  2. Per upstream attempt, a new stream: request_headers carrying the
//     deployment in attributes["envoy.filters.http.ext_proc"] under
//     xds.upstream_host_metadata.filter_metadata['tollgate']['deployment'],
//     x-envoy-attempt-count, and the request headers as the router-level
//     replies left them; then the router's body. The stream is then
//     half-closed and drained.
//  3. Back on the router-level stream: response_headers, then the body:
//     BUFFERED in one message unless the reply's mode_override switched the
//     response body to STREAMED, in which case one chunk per SSE event is sent
//     without waiting for replies (pipelined, as Envoy does) and every reply is
//     collected.
//
// The `tollgate` namespace of every reply's dynamic_metadata is merged per
// key and forwarded in metadata_context on every later message, on both
// streams, like receiving_namespaces and forwarding_namespaces; other
// namespaces are dropped. Each reply must have the oneof of its message; an
// immediate_response is counted by HTTP status, anything else is a *Failure
// counted by kind and phase. Nothing is retried or hidden.
//
// # Measuring
//
// Run drives a closed loop (Load.Concurrency workers) or an open loop
// (Load.Rate requests/s, latency measured from the scheduled start) and
// reads the server's CPU (utime+stime of /proc/<pid>/stat around the
// measured window) and RSS (VmRSS of /proc/<pid>/status, sampled for the
// peak). Hold keeps many streaming requests open to measure memory per
// stream. Compare subtracts the no-op floor from a target's figures.
//
// CPU comes from /proc at 10 ms resolution: use windows of seconds. On a
// small machine the load generator competes with the server for cores;
// compare runs made with the same flags on the same machine, and keep the
// server's cpu_cores well under the machine's core count.
//
// # Profiling the server
//
// Profile the server itself, not the load generator (-cpuprofile and
// -memprofile only cover the latter). Serve net/http/pprof on a loopback
// port in the server (bench/noop has -pprof 127.0.0.1:6061), start a long
// enough run, and fetch a profile while it runs:
//
//	go run ./bench/cmd/loadgen -server-pid $PID -duration 30s &
//	go tool pprof -seconds 20 http://127.0.0.1:6061/debug/pprof/profile
//	go tool pprof http://127.0.0.1:6061/debug/pprof/heap   # e.g. during -open-streams
//
// A server without a pprof endpoint can be profiled from outside with
// `perf record -g -p $PID`.
package loadgen
