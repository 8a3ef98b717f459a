package envoysim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/internal/envoyconfig"
)

// Envoy's default xDS reconnect backoff: jittered exponential from 500 ms,
// capped at 30 s (source/common/config/utility.h, RETRY_INITIAL_DELAY_MS
// and RETRY_MAX_DELAY_MS).
const (
	adsBackoffBase = 500 * time.Millisecond
	adsBackoffMax  = 30 * time.Second
)

// adsClient is Envoy's state-of-the-world ADS client (GrpcMuxImpl) with the
// CDS and EDS subscriptions on it.
type adsClient struct {
	sim           *Sim
	cluster       string // the static cluster the ADS grpc_service names
	node          *corev3.Node
	nodeFirstOnly bool // set_node_on_first_message_only
	cds           bool // cds_config: {ads: {}}

	ready     chan struct{} // closed once initialised (WaitReady)
	readyOnce sync.Once
	conn      *grpc.ClientConn

	// Owned by the run goroutine.
	accepted map[string]string // type URL → last accepted version_info
	nonce    map[string]string // type URL → last response nonce on this stream
	edsNames []string          // the ClusterLoadAssignment subscription, sorted
	cdsDone  bool              // the first CDS response has been applied or rejected
	sentNode bool              // the node went out on this stream
	// dynamic holds the accepted CDS clusters by name, to tell updates from
	// unchanged re-sends.
	dynamic map[string]*clusterv3.Cluster
	// cla is the last accepted ClusterLoadAssignment per EDS service name:
	// Envoy's ADS EDS resources cache, from which a rebuilt EDS cluster warms
	// without waiting for the server to re-send.
	cla map[string]*endpointv3.ClusterLoadAssignment
}

// newADS checks dynamic_resources against what envoysim emulates. The
// ADS cluster itself is checked once the static clusters are compiled.
func newADS(s *Sim, b *bootstrapv3.Bootstrap) (*adsClient, error) {
	dr := b.GetDynamicResources()
	if dr.GetLdsConfig() != nil || dr.GetLdsResourcesLocator() != "" {
		return nil, errors.New("lds_config is not supported by envoysim (listeners must be static)")
	}
	if dr.GetCdsResourcesLocator() != "" {
		return nil, errors.New("cds_resources_locator is not supported by envoysim")
	}
	if cds := dr.GetCdsConfig(); cds != nil && cds.GetAds() == nil {
		return nil, errors.New("cds_config must be {ads: {}} in envoysim")
	}
	ac := dr.GetAdsConfig()
	if ac == nil {
		return nil, errors.New("dynamic_resources without ads_config are not supported by envoysim")
	}
	if ac.GetApiType() != corev3.ApiConfigSource_GRPC {
		return nil, fmt.Errorf("ads_config api_type %s is not supported by envoysim (state-of-the-world GRPC only)", ac.GetApiType())
	}
	if ac.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		return nil, errors.New("ads_config transport_api_version must be V3")
	}
	gs := ac.GetGrpcServices()
	if len(gs) != 1 || gs[0].GetEnvoyGrpc() == nil {
		return nil, errors.New("ads_config needs exactly one grpc_service with envoy_grpc in envoysim")
	}
	return &adsClient{
		sim: s, cluster: gs[0].GetEnvoyGrpc().GetClusterName(), node: b.GetNode(),
		nodeFirstOnly: ac.GetSetNodeOnFirstMessageOnly(), cds: dr.GetCdsConfig() != nil,
		ready: make(chan struct{}), accepted: map[string]string{}, nonce: map[string]string{},
		dynamic: map[string]*clusterv3.Cluster{}, cla: map[string]*endpointv3.ClusterLoadAssignment{},
	}, nil
}

// dial opens the connection to the ADS cluster's first endpoint (after
// ClusterOverrides and RewriteAddress): HTTP/2 without TLS.
func (a *adsClient) dial() error {
	cl := a.sim.clusters[a.cluster]
	if cl == nil {
		return fmt.Errorf("ads_config names unknown static cluster %q", a.cluster)
	}
	if !cl.http2 {
		return fmt.Errorf("ads cluster %q must use HTTP/2 (http2_protocol_options)", a.cluster)
	}
	if cl.tls != nil {
		return fmt.Errorf("ads cluster %q: TLS to the xDS server is not supported by envoysim", a.cluster)
	}
	var target string
	for _, hs := range cl.hosts {
		if len(hs) > 0 {
			target = hs[0].addr
			break
		}
	}
	if target == "" {
		return fmt.Errorf("ads cluster %q has no endpoints", a.cluster)
	}
	c, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Envoy's gRPC client has no receive limit; grpc-go's default is 4 MiB.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err != nil {
		return err
	}
	a.conn = c
	return nil
}

// run keeps one ADS stream open until ctx ends, reconnecting with backoff.
func (a *adsClient) run(ctx context.Context) {
	a.edsNames = a.sim.edsServiceNames()
	a.checkReady()
	retry := 0
	for {
		got, err := a.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		if got {
			retry = 0 // Envoy resets the backoff once a response arrives
		}
		retry++
		d := a.backoff(retry)
		a.sim.count("control_plane.stream_closed")
		a.sim.log.Warn("envoysim: ads stream closed; reconnecting", "error", err, "backoff", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// backoff is a random wait in [base, min(base·2^retry, max)).
func (a *adsClient) backoff(retry int) time.Duration {
	hi := min(adsBackoffBase<<min(retry, 16), adsBackoffMax)
	return adsBackoffBase + time.Duration(a.sim.randUint64()%uint64(hi-adsBackoffBase+1))
}

// stream runs one ADS stream; it reports whether any response arrived.
func (a *adsClient) stream(ctx context.Context) (bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(a.conn).StreamAggregatedResources(sctx)
	if err != nil {
		return false, err
	}
	a.sentNode = false
	a.nonce = map[string]string{}
	// A new stream re-sends every subscription, oldest first, with the last
	// accepted version and no nonce (GrpcMuxImpl::onStreamEstablished).
	if a.cds {
		if err := a.send(st, resourcev3.ClusterType, nil); err != nil {
			return false, err
		}
	}
	if len(a.edsNames) > 0 {
		if err := a.send(st, resourcev3.EndpointType, nil); err != nil {
			return false, err
		}
	}
	got := false
	for {
		resp, err := st.Recv()
		if err != nil {
			return got, err
		}
		got = true
		if err := a.handle(st, resp); err != nil {
			return got, err
		}
	}
}

// handle applies one response and answers it: ACK with its version and
// nonce, or NACK with the last accepted version, its nonce and the reason.
func (a *adsClient) handle(st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, resp *discoveryv3.DiscoveryResponse) error {
	t := resp.GetTypeUrl()
	var err error
	switch t {
	case resourcev3.ClusterType:
		if !a.cds {
			return nil
		}
		err = a.onClusters(resp)
		a.cdsDone = true // Envoy's init goes on after a rejected first update too
	case resourcev3.EndpointType:
		err = a.onEndpoints(resp)
	default:
		a.sim.log.Warn("envoysim: ignoring unwatched xDS type", "type_url", t)
		return nil
	}
	stat := statPrefix(t)
	var detail *statuspb.Status
	if err == nil {
		a.accepted[t] = resp.GetVersionInfo()
		a.sim.count(stat + ".update_success")
	} else {
		a.sim.count(stat + ".update_rejected")
		a.sim.log.Warn("envoysim: xDS update rejected", "type_url", t, "version", resp.GetVersionInfo(), "error", err)
		detail = &statuspb.Status{Code: int32(codes.Internal), Message: err.Error()}
	}
	a.nonce[t] = resp.GetNonce()
	if t == resourcev3.ClusterType {
		// Envoy pauses EDS during a CDS update and resumes it before the
		// CDS ACK goes out, so a changed EDS subscription is sent first.
		if names := a.sim.edsServiceNames(); !slices.Equal(names, a.edsNames) {
			a.edsNames = names
			// Like Envoy's EDS cache, forget assignments nobody watches.
			for n := range a.cla {
				if !slices.Contains(names, n) {
					delete(a.cla, n)
				}
			}
			if err := a.send(st, resourcev3.EndpointType, nil); err != nil {
				return err
			}
		}
	}
	a.checkReady()
	return a.send(st, t, detail)
}

// statPrefix names the update counters: Envoy's for CDS; Envoy counts EDS
// updates per cluster, envoysim per response.
func statPrefix(typeURL string) string {
	if typeURL == resourcev3.ClusterType {
		return "cluster_manager.cds"
	}
	return "eds"
}

// send writes a DiscoveryRequest for typeURL reflecting the current state.
func (a *adsClient) send(st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient, typeURL string, detail *statuspb.Status) error {
	req := &discoveryv3.DiscoveryRequest{
		VersionInfo: a.accepted[typeURL], TypeUrl: typeURL, ResponseNonce: a.nonce[typeURL], ErrorDetail: detail,
	}
	if typeURL == resourcev3.EndpointType {
		req.ResourceNames = a.edsNames
	}
	// CDS is a wildcard subscription: no names.
	if !a.sentNode || !a.nodeFirstOnly {
		req.Node = a.node
		a.sentNode = true
	}
	return st.Send(req)
}

// decode unpacks and validates every resource of a response. Envoy rejects
// the whole response, applying nothing, when any resource has the wrong
// type or fails its own proto constraints (OpaqueResourceDecoderImpl); a
// packed extension config is only checked when the resource is applied.
func decode[M interface {
	proto.Message
	ValidateAll() error
}](resp *discoveryv3.DiscoveryResponse, newM func() M) ([]M, error) {
	out := make([]M, 0, len(resp.GetResources()))
	for _, r := range resp.GetResources() {
		if r.GetTypeUrl() != resp.GetTypeUrl() {
			return nil, fmt.Errorf("type URL %s embedded in an individual Any does not match the message-wide type URL %s in DiscoveryResponse", r.GetTypeUrl(), resp.GetTypeUrl())
		}
		m := newM()
		if err := r.UnmarshalTo(m); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", r.GetTypeUrl(), err)
		}
		if err := m.ValidateAll(); err != nil {
			return nil, fmt.Errorf("proto constraint validation failed: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}

// onClusters applies a CDS response the way CdsApiHelper::onConfigUpdate
// does: clusters that fail to build are skipped and reported while the
// others are still added, updated or removed; any failure NACKs the
// response, so its version is not accepted.
func (a *adsClient) onClusters(resp *discoveryv3.DiscoveryResponse) error {
	cs, err := decode(resp, func() *clusterv3.Cluster { return &clusterv3.Cluster{} })
	if err != nil {
		return err
	}
	var msgs []string
	seen := map[string]bool{}
	for _, c := range cs {
		name := c.GetName()
		if seen[name] {
			msgs = append(msgs, fmt.Sprintf("%s: duplicate cluster %s found", name, name))
			continue
		}
		seen[name] = true
		if err := a.addOrUpdate(c); err != nil {
			a.sim.log.Warn("envoysim: cds cluster rejected", "cluster", name, "error", err)
			msgs = append(msgs, fmt.Sprintf("%s: %v", name, err))
		}
	}
	// State of the world: an accepted cluster missing from the response
	// is removed.
	for name := range a.dynamic {
		if !seen[name] {
			delete(a.dynamic, name)
			a.sim.removeCluster(name)
			a.sim.count("cluster_manager.cluster_removed")
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("error adding/updating cluster(s) %s", strings.Join(msgs, ", "))
	}
	return nil
}

// addOrUpdate builds one CDS cluster. Like ClusterManagerImpl::
// addOrUpdateCluster it leaves static clusters and unchanged clusters
// alone; anything else is built anew (fresh hosts, outlier state and
// connections) and warms before it replaces the active one.
func (a *adsClient) addOrUpdate(c *clusterv3.Cluster) error {
	s := a.sim
	s.mu.Lock()
	static := s.static[c.GetName()]
	s.mu.Unlock()
	if static || proto.Equal(a.dynamic[c.GetName()], c) {
		return nil
	}
	if err := envoyconfig.ValidateTypedConfigs(c); err != nil {
		return err
	}
	cl, err := s.compileCluster(c)
	if err != nil {
		return err
	}
	_, existed := a.dynamic[c.GetName()]
	a.dynamic[c.GetName()] = c
	if existed {
		s.count("cluster_manager.cluster_modified")
	} else {
		s.count("cluster_manager.cluster_added")
	}
	if cl.edsName != "" {
		if la := a.cla[cl.edsName]; la != nil {
			if err := s.setEndpoints(cl, la, true); err != nil {
				return err
			}
		} else {
			s.warm(cl)
			return nil
		}
	}
	s.activate(cl)
	return nil
}

// onEndpoints applies an EDS response. Each EDS cluster takes the
// assignment named after its service; a cluster whose name is absent keeps
// what it has. Endpoints change in place: the cluster is not rebuilt.
func (a *adsClient) onEndpoints(resp *discoveryv3.DiscoveryResponse) error {
	las, err := decode(resp, func() *endpointv3.ClusterLoadAssignment { return &endpointv3.ClusterLoadAssignment{} })
	if err != nil {
		return err
	}
	var msgs []string
	for _, la := range las {
		if !slices.Contains(a.edsNames, la.GetClusterName()) {
			continue // not subscribed (any more)
		}
		a.cla[la.GetClusterName()] = la
		for _, cl := range a.sim.edsClusters(la.GetClusterName()) {
			if err := a.sim.setEndpoints(cl, la, true); err != nil {
				msgs = append(msgs, fmt.Sprintf("%s: %v", cl.name, err))
				continue
			}
			a.sim.activate(cl)
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, ", "))
	}
	return nil
}

// checkReady closes ready once CDS has answered (when configured) and no
// cluster is warming.
func (a *adsClient) checkReady() {
	if a.cds && !a.cdsDone {
		return
	}
	a.sim.mu.Lock()
	warming := len(a.sim.warming)
	a.sim.mu.Unlock()
	if warming == 0 {
		a.readyOnce.Do(func() { close(a.ready) })
	}
}

// warm parks a cluster until its first ClusterLoadAssignment; an active
// cluster of the same name keeps serving meanwhile.
func (s *Sim) warm(cl *cluster) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warming[cl.name] = cl
}

// activate makes cl the cluster requests use under its name, closing the
// idle connections of the one it replaces.
func (s *Sim) activate(cl *cluster) {
	s.mu.Lock()
	old := s.clusters[cl.name]
	if s.warming[cl.name] == cl {
		delete(s.warming, cl.name)
	}
	s.clusters[cl.name] = cl
	s.mu.Unlock()
	if old != nil && old != cl {
		old.closeIdle()
	}
}

func (s *Sim) removeCluster(name string) {
	s.mu.Lock()
	old := s.clusters[name]
	delete(s.clusters, name)
	delete(s.warming, name)
	s.mu.Unlock()
	if old != nil {
		old.closeIdle()
	}
}

// edsServiceNames is the sorted set of EDS service names of every active
// and warming EDS cluster: the ClusterLoadAssignment subscription.
func (s *Sim) edsServiceNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]bool{}
	for _, m := range []map[string]*cluster{s.clusters, s.warming} {
		for _, cl := range m {
			if cl.edsName != "" {
				set[cl.edsName] = true
			}
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// edsClusters returns the warming and active clusters fed by an EDS
// service name; a warming cluster comes first and replaces the active one
// of the same name once it has endpoints.
func (s *Sim) edsClusters(service string) []*cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*cluster
	for _, cl := range s.warming {
		if cl.edsName == service {
			out = append(out, cl)
		}
	}
	for name, cl := range s.clusters {
		if cl.edsName == service && s.warming[name] == nil {
			out = append(out, cl)
		}
	}
	return out
}

// WaitReady blocks until the stand-in is initialised the way Envoy's
// cluster manager is: the first CDS response has been applied (or
// rejected) and every EDS cluster has received its first
// ClusterLoadAssignment. Without dynamic_resources it returns at once.
func (s *Sim) WaitReady(ctx context.Context) error {
	if s.ads == nil {
		return nil
	}
	select {
	case <-s.ads.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("envoysim: waiting for xDS: %w", ctx.Err())
	}
}
