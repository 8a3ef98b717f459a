package xds

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	gcplog "github.com/envoyproxy/go-control-plane/pkg/log"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"
)

// nodeGroup is the single snapshot key: every Envoy gets the same pools,
// whatever its node id or cluster, because the pools come from the one
// gateway config all replicas share.
const nodeGroup = "tollgate"

// allNodes maps every node to nodeGroup.
type allNodes struct{}

// ID implements cachev3.NodeHash.
func (allNodes) ID(*corev3.Node) string { return nodeGroup }

var _ cachev3.NodeHash = allNodes{}

// Options configure a Server. Zero values are usable.
type Options struct {
	// Logger receives JSON-friendly structured logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the server's metrics; nil leaves them
	// unregistered (still counted).
	Registerer prometheus.Registerer
}

// Server serves the pool clusters to Envoy over ADS (and plain CDS) from a
// go-control-plane snapshot cache. Its methods are safe for concurrent use.
type Server struct {
	log     *slog.Logger
	metrics *metrics
	cache   cachev3.SnapshotCache
	xds     serverv3.Server

	mu sync.Mutex
	// version is the served snapshot's version; "" before the first.
	version string
	// applied is the last config content applied, good or bad, so a poll
	// does not reject the same bad edit again.
	applied []byte
}

// NewServer builds a Server with no snapshot: Envoy's requests wait until
// the first SetClusters or Reload. Its streams end when ctx is done, which
// lets grpc.Server.GracefulStop return (xDS streams never end by
// themselves).
func NewServer(ctx context.Context, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	cache := cachev3.NewSnapshotCache(true, allNodes{}, cacheLogger(log))
	watcher := &nackParker{SnapshotCache: cache, log: log, metrics: m}
	s := &Server{log: log, metrics: m, cache: cache}
	s.xds = serverv3.NewServer(ctx, watcher, s.callbacks())
	return s, nil
}

// Register adds the ADS and CDS services to gs.
func (s *Server) Register(gs *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(gs, s.xds)
}

// Version is the version of the served snapshot, "" before the first.
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// SetClusters serves clusters as the new snapshot. The version is a hash of
// the resources, so the same clusters change nothing (changed is false)
// and no watch is answered. A snapshot that fails Consistent() is refused
// and the previous one keeps serving.
func (s *Server) SetClusters(ctx context.Context, clusters []types.Resource) (version string, changed bool, err error) {
	version, err = Version(clusters)
	if err != nil {
		return "", false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if version == s.version {
		return version, false, nil
	}
	// The other types are served empty so an Envoy subscribing to them
	// gets an answer instead of waiting out its initial_fetch_timeout.
	snap, err := cachev3.NewSnapshot(version, map[resourcev3.Type][]types.Resource{
		resourcev3.ClusterType:  clusters,
		resourcev3.EndpointType: nil,
		resourcev3.ListenerType: nil,
		resourcev3.RouteType:    nil,
	})
	if err != nil {
		return "", false, fmt.Errorf("build snapshot: %w", err)
	}
	if err := snap.Consistent(); err != nil {
		return "", false, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	if err := s.cache.SetSnapshot(ctx, nodeGroup, snap); err != nil {
		return "", false, fmt.Errorf("set snapshot: %w", err)
	}
	s.version = version
	return version, true, nil
}

// Version is the snapshot version of resources: a hash of their
// deterministic encoding, in order.
func Version(resources []types.Resource) (string, error) {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	var n [8]byte
	for _, r := range resources {
		b, err := opts.Marshal(r)
		if err != nil {
			return "", fmt.Errorf("encode resource: %w", err)
		}
		// Length-prefixed, so two resource lists cannot encode alike.
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}

// callbacks log the stream lifecycle and every push, and count them.
// NACKs are logged and counted by nackParker, which knows what was
// rejected.
func (s *Server) callbacks() serverv3.CallbackFuncs {
	open := func(ctx context.Context, id int64, typeURL string) error {
		s.metrics.streams.Inc()
		addr := ""
		if p, ok := peer.FromContext(ctx); ok {
			addr = p.Addr.String()
		}
		s.log.Info("xds stream opened", slog.Int64("stream_id", id), slog.String("peer", addr), slog.String("type_url", typeURL))
		return nil
	}
	closed := func(id int64, node *corev3.Node) {
		s.metrics.streams.Dec()
		s.log.Info("xds stream closed", slog.Int64("stream_id", id), slog.String("node", node.GetId()))
	}
	return serverv3.CallbackFuncs{
		StreamOpenFunc:        open,
		StreamClosedFunc:      closed,
		DeltaStreamOpenFunc:   open,
		DeltaStreamClosedFunc: closed,
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			if req.GetResponseNonce() != "" && req.GetErrorDetail() == nil {
				s.log.Debug("xds ACK", slog.Int64("stream_id", id), slog.String("node", req.GetNode().GetId()),
					slog.String("type_url", req.GetTypeUrl()), slog.String("pool_version", req.GetVersionInfo()))
			}
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, req *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			s.metrics.responses.WithLabelValues(typeLabel(resp.GetTypeUrl())).Inc()
			s.log.Info("xds push", slog.Int64("stream_id", id), slog.String("node", req.GetNode().GetId()),
				slog.String("type_url", resp.GetTypeUrl()), slog.String("pool_version", resp.GetVersionInfo()),
				slog.Int("resources", len(resp.GetResources())), slog.String("nonce", resp.GetNonce()))
		},
	}
}

// cacheLogger sends go-control-plane's own logging to log at debug level
// (warnings and errors at theirs); its messages are printf-formatted.
func cacheLogger(log *slog.Logger) gcplog.Logger {
	at := func(level slog.Level) func(string, ...any) {
		return func(format string, args ...any) {
			if log.Enabled(context.Background(), level) {
				log.Log(context.Background(), level, "go-control-plane: "+fmt.Sprintf(format, args...))
			}
		}
	}
	return gcplog.LoggerFuncs{
		DebugFunc: at(slog.LevelDebug),
		InfoFunc:  at(slog.LevelDebug),
		WarnFunc:  at(slog.LevelWarn),
		ErrorFunc: at(slog.LevelError),
	}
}
