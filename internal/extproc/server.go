// Package extproc is the ext_proc stream state machine. It serves both of
// Tollgate's Envoy filters on one gRPC service: each stream is told apart by
// its first message, owned by one goroutine, and turned into calls on
// pkg/routing, pkg/policy and pkg/transform, whose results become Envoy
// mutations. It holds no business rules of its own.
package extproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/pkg/accounting"
	"github.com/tollgate-gw/tollgate/pkg/policy"
	"github.com/tollgate-gw/tollgate/pkg/tracing"
)

// Server implements envoy.service.ext_proc.v3.ExternalProcessor.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	runtime atomic.Pointer[config.Runtime]
	log     *slog.Logger
	opts    Options
	avoided avoided
}

// Options are the Server's injected dependencies. Zero values take defaults.
type Options struct {
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NewRequestID makes an id for requests Envoy sent without
	// x-request-id; nil means 16 random hex bytes.
	NewRequestID func() string
	// LogBodies logs bodies at debug level. Off by default: bodies hold
	// user content.
	LogBodies bool
	// Metrics receives request and per-message observations; nil records
	// none.
	Metrics *accounting.Metrics
	// Spend receives one record per request; nil keeps none.
	Spend SpendRecorder
	// Auth authenticates virtual keys (static, cached, stored); nil checks
	// the config's static keys only.
	Auth KeyAuthenticator
	// Limiter admits requests against rate limits and budgets; nil admits
	// every request.
	Limiter policy.Limiter
	// Tracer records one span per request; nil traces nothing.
	Tracer *tracing.Tracer
}

// KeyAuthenticator finds the virtual key for a secret.
type KeyAuthenticator interface {
	Authenticate(ctx context.Context, secret string) (*policy.Key, error)
}

// SpendRecorder takes spend records without blocking; false means the
// record was dropped (and counted by the recorder).
type SpendRecorder interface {
	Record(accounting.Record) bool
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// New returns a Server serving rt.
func New(rt *config.Runtime, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewRequestID == nil {
		o.NewRequestID = randomID
	}
	s := &Server{log: o.Logger, opts: o}
	s.runtime.Store(rt)
	return s
}

// Runtime is the config new streams start with.
func (s *Server) Runtime() *config.Runtime { return s.runtime.Load() }

// SwapRuntime installs a new config for streams that start from now on;
// streams in flight finish on the config they started with.
func (s *Server) SwapRuntime(rt *config.Runtime) { s.runtime.Store(rt) }

// handler processes the messages of one stream, one at a time, and returns
// the reply to each. finish is called once when the stream ends, however it
// ends; the handler knows from its own state whether the exchange completed.
type handler interface {
	// use gives the handler the objects its next reply is built in.
	use(p *replies)
	handle(ctx context.Context, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse
	finish(ctx context.Context)
}

// Process serves one ext_proc stream: one HTTP request as one filter sees it.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	ctx := stream.Context()
	req, err := stream.Recv()
	if err != nil {
		return endOfStream(err)
	}
	rt := s.runtime.Load()
	var h handler
	filter := accounting.FilterRouter
	if id, ok := deploymentOf(req); ok {
		h = &upstreamStream{srv: s, rt: rt, deploymentID: id}
		filter = accounting.FilterUpstream
	} else {
		h = &routerStream{srv: s, rt: rt, start: s.opts.Now()}
	}
	for {
		start := time.Now()
		// Send marshals the reply before it returns, so its objects go back
		// to the pool right after: a stream waiting for its next message
		// (a router-level stream, for the whole upstream call) holds none.
		p := replyPool.Get().(*replies)
		h.use(p)
		resp := h.handle(ctx, req)
		if phase, ok := phaseOf(req); ok {
			s.opts.Metrics.ObserveExtProcMessage(filter, phase, time.Since(start))
		}
		if resp == nil {
			// A message kind Envoy never sends (e.g. a window update): no
			// reply is due.
			s.log.LogAttrs(ctx, slog.LevelWarn, "ignoring unexpected ext_proc message")
		} else if err := send(stream, p, resp); err != nil {
			h.use(nil)
			replyPool.Put(p)
			h.finish(ctx)
			return endOfStream(err)
		}
		h.use(nil)
		replyPool.Put(p)
		// Envoy closes or resets the stream once it needs nothing more, so
		// an end here is normal.
		if req, err = stream.Recv(); err != nil {
			h.finish(ctx)
			return endOfStream(err)
		}
	}
}

// send sends resp, in its own encoding when it is the reply built in p.
func send(stream extprocv3.ExternalProcessor_ProcessServer, p *replies, resp *extprocv3.ProcessingResponse) error {
	if resp == &p.resp {
		if m, ok := p.wire(); ok {
			return stream.SendMsg(m)
		}
	}
	return stream.Send(resp)
}

// replyPool holds reply objects (a few KB each, mostly header slabs)
// between replies.
var replyPool = sync.Pool{New: func() any { return new(replies) }}

// phaseOf names a message's phase for the per-message metric.
func phaseOf(req *extprocv3.ProcessingRequest) (accounting.ExtProcPhase, bool) {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return accounting.PhaseRequestHeaders, true
	case *extprocv3.ProcessingRequest_RequestBody:
		return accounting.PhaseRequestBody, true
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return accounting.PhaseRequestTrailers, true
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return accounting.PhaseResponseHeaders, true
	case *extprocv3.ProcessingRequest_ResponseBody:
		return accounting.PhaseResponseBody, true
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return accounting.PhaseResponseTrailers, true
	}
	return 0, false
}

// endOfStream treats Envoy's normal ways of ending a stream (EOF, cancel)
// as success and passes real errors up.
func endOfStream(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
		return nil
	}
	return err
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// GRPCOptions are the gRPC server options the ext_proc server is served
// with: Codec, and a stream worker pool. Every request opens at least two
// streams, and a fresh goroutine per stream grows its stack again each
// time (morestack was ~3 % of server CPU under load); workers keep their
// grown stacks. A few workers per core cover the streams a busy replica
// turns over quickly. A larger pool is slower: work goes to the
// longest-idle worker and the GC shrinks idle workers' stacks, so with 256
// workers stack growth was back at 4 % of CPU; with 32 it was gone.
// Longer-lived streams beyond the pool get their own goroutine.
func GRPCOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(Codec()),
		grpc.NumStreamWorkers(uint32(16 * runtime.GOMAXPROCS(0))),
	}
}

// MessageLimit is the gRPC message size the server must accept for a
// request body limit. Envoy sends whole BUFFERED bodies up to its own buffer
// limit, which is often larger; the gRPC cap sits well above the body limit
// so that Tollgate answers an oversized body with an OpenAI-shaped 413
// instead of a broken stream (which Envoy turns into a bare 500).
func MessageLimit(bodyLimit int64) int {
	return int(max(4*bodyLimit, 64<<20))
}
