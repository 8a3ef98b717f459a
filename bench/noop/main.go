// Command noop is a no-op ext_proc server: it answers every ProcessingRequest
// with an empty reply of the same kind, so a load run against it measures
// what the ext_proc protocol itself costs (gRPC, HTTP/2, protobuf) and gives
// the floor that bench/cmd/loadgen -compare subtracts from a real server.
//
//	go run ./bench/noop -addr 127.0.0.1:50099
//	go run ./bench/noop -addr unix:///tmp/noop.sock -pprof 127.0.0.1:6061
//
// With -tollgate-grpc it serves with cmd/extproc's gRPC options (codec,
// stream workers), which make the protocol itself cheaper than this floor.
//
// SIGTERM or SIGINT stops it gracefully: open streams get -grace to finish,
// then they are cut.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only when -pprof is set, on its own listener
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-gw/tollgate/internal/extproc"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50099", "listen address: host:port (loopback) or unix:///path")
	maxRecv := flag.Int("max-recv-bytes", 64<<20, "gRPC max receive message size; Envoy sends BUFFERED bodies whole, so the 4 MiB default is too small")
	grace := flag.Duration("grace", 5*time.Second, "how long open streams may run after SIGTERM before they are cut")
	pprofAddr := flag.String("pprof", "", "if set, serve net/http/pprof on this loopback address")
	streamSSE := flag.Bool("stream-sse", false, "switch text/event-stream response bodies to STREAMED with mode_override, as Tollgate does, so the floor sees the same chunked sequence as the target")
	tollgateGRPC := flag.Bool("tollgate-grpc", false, "serve with Tollgate's gRPC options (its codec and stream workers), so a comparison leaves out what they save")
	flag.Parse()

	var opts []grpc.ServerOption
	if *tollgateGRPC {
		opts = extproc.GRPCOptions()
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(*addr, noop{streamSSE: *streamSSE}, *maxRecv, *grace, *pprofAddr, opts, log); err != nil {
		log.Error("noop server failed", "error", err.Error())
		os.Exit(1)
	}
}

func run(addr string, handler noop, maxRecv int, grace time.Duration, pprofAddr string, opts []grpc.ServerOption, log *slog.Logger) error {
	lis, err := listen(addr)
	if err != nil {
		return err
	}
	srv := newServer(handler, maxRecv, opts...)

	if pprofAddr != "" {
		pl, err := net.Listen("tcp", pprofAddr)
		if err != nil {
			return fmt.Errorf("listen pprof: %w", err)
		}
		// DefaultServeMux carries the pprof handlers registered by the import.
		go func() { _ = http.Serve(pl, nil) }()
		defer pl.Close()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	log.Info("noop ext_proc server listening", "addr", addr, "pid", os.Getpid())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", grace.String())
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace):
		srv.Stop()
	}
	return nil
}

// listen accepts "unix:///path" (or "unix:/path") for a unix socket, and
// anything else as a TCP address.
func listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		_ = os.Remove(path) // a stale socket from a killed run would block the bind
		return net.Listen("unix", path)
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		_ = os.Remove(path)
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

func newServer(handler noop, maxRecv int, opts ...grpc.ServerOption) *grpc.Server {
	srv := grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(maxRecv))...)
	extprocv3.RegisterExternalProcessorServer(srv, handler)
	return srv
}

// noop implements ExternalProcessorServer with empty replies.
type noop struct {
	extprocv3.UnimplementedExternalProcessorServer
	// streamSSE switches SSE response bodies to STREAMED; see -stream-sse.
	streamSSE bool
}

var _ extprocv3.ExternalProcessorServer = noop{}

// Process answers each message with an empty reply of the same oneof case.
func (n noop) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			// EOF and Canceled are how Envoy ends a stream normally.
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		resp, err := n.reply(req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (n noop) reply(req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	resp := &extprocv3.ProcessingResponse{}
	switch r := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}
	case *extprocv3.ProcessingRequest_RequestBody:
		resp.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}
	case *extprocv3.ProcessingRequest_RequestTrailers:
		resp.Response = &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}
		if n.streamSSE && isSSE(r.ResponseHeaders) {
			// Body modes in an override are literal, so both are set.
			resp.ModeOverride = &filterv3.ProcessingMode{
				RequestBodyMode:  filterv3.ProcessingMode_BUFFERED,
				ResponseBodyMode: filterv3.ProcessingMode_STREAMED,
			}
		}
	case *extprocv3.ProcessingRequest_ResponseBody:
		resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		resp.Response = &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "unknown request kind %T", req.Request)
	}
	return resp, nil
}

func isSSE(h *extprocv3.HttpHeaders) bool {
	for _, hv := range h.GetHeaders().GetHeaders() {
		if hv.GetKey() == "content-type" {
			return strings.HasPrefix(string(hv.GetRawValue()), "text/event-stream")
		}
	}
	return false
}
