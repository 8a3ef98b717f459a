package loadgen

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// fakeServer plays a Tollgate-like server and records every stream: the
// router-level filter writes request context to metadata and strips the
// client key, the upstream filter writes its deployment, and the response
// body can be switched to STREAMED.
type fakeServer struct {
	extprocv3.UnimplementedExternalProcessorServer

	// streamed makes the response_headers reply switch the body to STREAMED.
	streamed bool
	// replyAtEnd holds STREAMED chunk replies until the last chunk arrived.
	replyAtEnd bool
	// immediateOn, when set, answers that router message kind with a 401
	// immediate_response.
	immediateOn string
	// wrongKindOn, when set, answers that router message kind with a
	// request_trailers reply.
	wrongKindOn string

	mu       sync.Mutex
	router   [][]*extprocv3.ProcessingRequest
	upstream [][]*extprocv3.ProcessingRequest
}

func isUpstream(req *extprocv3.ProcessingRequest) bool {
	_, ok := req.GetAttributes()[AttributesKey].GetFields()[DeploymentAttribute]
	return ok
}

func metaReply(fields map[string]any) *structpb.Struct {
	ns, err := structpb.NewStruct(fields)
	if err != nil {
		panic(err)
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		Namespace: structpb.NewStructValue(ns),
		// Not in receiving_namespaces: Envoy drops it.
		"other": structpb.NewStringValue("dropped"),
	}}
}

func (f *fakeServer) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	var got []*extprocv3.ProcessingRequest
	var pending []*extprocv3.ProcessingResponse // STREAMED replies held until the last chunk
	defer func() {
		if len(got) == 0 {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if isUpstream(got[0]) {
			f.upstream = append(f.upstream, got)
		} else {
			f.router = append(f.router, got)
		}
	}()
	for {
		req, err := s.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		got = append(got, req)
		upstream := isUpstream(got[0])
		kind := requestKind(req)
		resp := &extprocv3.ProcessingResponse{}
		switch {
		case !upstream && kind == f.immediateOn:
			resp.Response = &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			}}
			return s.Send(resp)
		case !upstream && kind == f.wrongKindOn:
			resp.Response = &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}
			return s.Send(resp)
		}
		switch kind {
		case kindRequestHeaders:
			hr := &extprocv3.HeadersResponse{}
			if !upstream {
				hr.Response = &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
					RemoveHeaders: []string{"authorization"},
				}}
			}
			resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: hr}
		case kindRequestBody:
			br := &extprocv3.BodyResponse{}
			if upstream {
				resp.DynamicMetadata = metaReply(map[string]any{"deployment": "dep-a", "attempt": float64(len(f.upstreamSoFar()) + 1)})
			} else {
				resp.DynamicMetadata = metaReply(map[string]any{"request_id": "r1", "model_group": "gpt-4o-mini", "stream": f.streamed})
				br.Response = &extprocv3.CommonResponse{
					HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{
						Header: &corev3.HeaderValue{Key: "x-tollgate-pool", RawValue: []byte("tollgate_pool_gpt-4o-mini")},
					}}},
					ClearRouteCache: true,
				}
			}
			resp.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: br}
		case kindResponseHeaders:
			if f.streamed {
				resp.ModeOverride = &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_STREAMED}
			}
			resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}
		case kindResponseBody:
			resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}
			if f.replyAtEnd {
				// Replying only after the last chunk deadlocks a client that
				// waits for each reply, so it proves the chunks are pipelined.
				pending = append(pending, resp)
				if !req.GetResponseBody().GetEndOfStream() {
					continue
				}
				for _, p := range pending {
					if err := s.Send(p); err != nil {
						return err
					}
				}
				pending = nil
				continue
			}
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

func (f *fakeServer) upstreamSoFar() [][]*extprocv3.ProcessingRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.upstream
}

// recorded returns the finished streams; call it after the requests ended.
func (f *fakeServer) recorded() (router, upstream [][]*extprocv3.ProcessingRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.router, f.upstream
}

// serve starts srv on a loopback port and returns clients for it.
func serve(t *testing.T, srv extprocv3.ExternalProcessorServer, conns int) []extprocv3.ExternalProcessorClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	clients, closeConns, err := Dial(lis.Addr().String(), conns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeConns)
	return clients
}
