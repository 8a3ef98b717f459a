// Package xds turns Tollgate's gateway config into the Envoy pool clusters
// (one per model group) and serves them to Envoy over ADS.
//
// The pool shape is the wiring contract in docs/design.md: cluster
// tollgate_pool_<group>, priority 0 the group's deployments, priorities 1..
// its fallback groups' deployments, endpoint metadata tollgate.deployment,
// and the upstream ext_proc filter in the cluster's HttpProtocolOptions.
// A group with a hard-limited deployment also gets one pinned pool per
// deployment (routing.PinnedPoolName): priority 0 that deployment alone,
// then the group's other deployments, then the fallbacks.
package xds

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/pkg/routing"
)

// Defaults for RenderOptions; they match envoy/envoy.yaml.
const (
	DefaultExtProcCluster    = "tollgate_extproc"
	DefaultTrustedCA         = "/etc/ssl/certs/ca-certificates.crt"
	DefaultConnectTimeout    = 5 * time.Second
	DefaultMessageTimeout    = 10 * time.Second
	DefaultMaxMessageTimeout = 60 * time.Second
	DefaultStreamTimeout     = 660 * time.Second
)

// Pool settings that carry the fallback semantics rather than tuning, so
// they are not options: a priority keeps all traffic while any of its hosts
// is healthy (huge overprovisioning), every host of a small pool can be
// ejected (100%), and panic mode never sends traffic to ejected hosts.
const (
	overprovisioningFactor = 100000
	consecutive5xx         = 3
	outlierInterval        = 5 * time.Second
	baseEjectionTime       = 30 * time.Second
	maxEjectionPercent     = 100
)

// Names Envoy and the ext_proc server agree on (docs/design.md).
const (
	metadataNamespace   = "tollgate"
	deploymentKey       = "deployment"
	deploymentAttribute = "xds.upstream_host_metadata.filter_metadata['tollgate']['deployment']"
	// transportSocketMatchNamespace is where Envoy looks up an endpoint's
	// transport_socket_matches criteria.
	transportSocketMatchNamespace = "envoy.transport_socket_match"
	plaintextMatchKey             = "tollgate_plaintext"
	httpProtocolOptionsKey        = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// RenderOptions are the settings of the rendered pool clusters. Every zero
// value takes the matching Default constant.
type RenderOptions struct {
	// ExtProcCluster is the cluster the upstream ext_proc filter calls.
	ExtProcCluster string
	// TrustedCA is the CA bundle file Envoy verifies providers against.
	TrustedCA string
	// ConnectTimeout is the cluster's connect_timeout.
	ConnectTimeout time.Duration
	// MessageTimeout and MaxMessageTimeout are the upstream filter's
	// per-message timeout and the ceiling ext_proc may extend it to.
	MessageTimeout, MaxMessageTimeout time.Duration
	// StreamTimeout is the upstream filter's grpc_service timeout, the
	// deadline of a whole ext_proc stream.
	StreamTimeout time.Duration
}

func (o RenderOptions) withDefaults() RenderOptions {
	if o.ExtProcCluster == "" {
		o.ExtProcCluster = DefaultExtProcCluster
	}
	if o.TrustedCA == "" {
		o.TrustedCA = DefaultTrustedCA
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.MessageTimeout == 0 {
		o.MessageTimeout = DefaultMessageTimeout
	}
	if o.MaxMessageTimeout == 0 {
		o.MaxMessageTimeout = DefaultMaxMessageTimeout
	}
	if o.StreamTimeout == 0 {
		o.StreamTimeout = DefaultStreamTimeout
	}
	return o
}

// Render builds one pool cluster per model group of rt, in group name
// order, each followed by the group's pinned pools in deployment order. The output is deterministic: the same rt and opts give resources
// that marshal (deterministically) to the same bytes, so their hash can be
// the snapshot version. Every cluster and every message packed in it has
// passed ValidateAll.
func Render(rt *config.Runtime, opts RenderOptions) ([]types.Resource, error) {
	if rt == nil || rt.Routes == nil {
		return nil, errors.New("render pools: no deployment table")
	}
	opts = opts.withDefaults()
	protocol, err := poolProtocolOptions(opts)
	if err != nil {
		return nil, err
	}
	tls, err := providerTLS(opts.TrustedCA)
	if err != nil {
		return nil, err
	}
	plaintext, err := plaintextSocket()
	if err != nil {
		return nil, err
	}
	groups := rt.Routes.Groups()
	byName := make(map[string]*routing.Group, len(groups))
	for _, g := range groups {
		byName[g.Name] = g
	}
	// routing.NewTable guarantees every pool, pinned or not, its own name.
	parts := poolParts{protocol: protocol, tls: tls, plaintext: plaintext}
	var errs []error
	out := make([]types.Resource, 0, len(groups))
	for _, g := range groups {
		levels, err := poolLevels(g, byName)
		if err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", g.Pool, err))
			continue
		}
		c, err := renderCluster(g.Pool, levels, opts, parts)
		if err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", g.Pool, err))
			continue
		}
		out = append(out, c)
		if !g.Pinned {
			continue
		}
		for i, d := range g.Deployments {
			c, err := renderCluster(d.PinnedPool, pinnedLevels(levels, i), opts, parts)
			if err != nil {
				errs = append(errs, fmt.Errorf("pinned pool %s: %w", d.PinnedPool, err))
				continue
			}
			out = append(out, c)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// poolParts are the pieces every pool shares, built and validated once.
type poolParts struct {
	protocol  *anypb.Any
	tls       *corev3.TransportSocket
	plaintext *corev3.TransportSocket
}

// endpointSpec is one deployment's place in a pool.
type endpointSpec struct {
	d        *routing.Deployment
	host     string
	port     uint32
	https    bool
	ip       bool
	priority uint32
	weight   uint32
}

// level is one priority of a pool: deployments with their endpoint
// weights (zero: no weight, an equal share).
type level struct {
	ds      []*routing.Deployment
	weights []uint32
}

// poolLevels are a group's pool priorities: the group, then each fallback
// once (a repeated fallback would only give Envoy the same deployments
// again).
func poolLevels(g *routing.Group, byName map[string]*routing.Group) ([]level, error) {
	levels := []level{{g.Deployments, routing.Weights(g.Deployments)}}
	seen := map[string]bool{g.Name: true}
	for _, name := range g.Fallbacks {
		if seen[name] {
			continue
		}
		seen[name] = true
		fb, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("fallback %q is not a model group", name)
		}
		levels = append(levels, level{fb.Deployments, routing.Weights(fb.Deployments)})
	}
	return levels, nil
}

// pinnedLevels are the priorities of the pinned pool of the i-th
// deployment of the pool with levels: that deployment alone, then its
// siblings with their pool weights (left out when there are none, as
// Envoy's priorities must not leave a gap), then the fallbacks. Retries
// and priority fallback then work as in the pool after the first attempt.
func pinnedLevels(levels []level, i int) []level {
	g := levels[0]
	out := []level{{g.ds[i : i+1], []uint32{0}}}
	if len(g.ds) > 1 {
		out = append(out, level{
			ds:      append(slices.Clone(g.ds[:i]), g.ds[i+1:]...),
			weights: append(slices.Clone(g.weights[:i]), g.weights[i+1:]...),
		})
	}
	return append(out, levels[1:]...)
}

// renderCluster builds one pool cluster with the given priorities.
func renderCluster(name string, levels []level, opts RenderOptions, parts poolParts) (*clusterv3.Cluster, error) {
	var specs []endpointSpec
	anyHTTPS, anyPlain, allIP := false, false, true
	for prio, lv := range levels {
		for i, d := range lv.ds {
			s, err := endpointFor(d)
			if err != nil {
				return nil, err
			}
			s.priority = uint32(prio)
			s.weight = lv.weights[i]
			anyHTTPS = anyHTTPS || s.https
			anyPlain = anyPlain || !s.https
			allIP = allIP && s.ip
			specs = append(specs, s)
		}
	}

	c := &clusterv3.Cluster{
		Name:           name,
		ConnectTimeout: durationpb.New(opts.ConnectTimeout),
		LbPolicy:       clusterv3.Cluster_ROUND_ROBIN,
		CommonLbConfig: &clusterv3.Cluster_CommonLbConfig{
			HealthyPanicThreshold: &typev3.Percent{Value: 0},
		},
		OutlierDetection: &clusterv3.OutlierDetection{
			Consecutive_5Xx:    wrapperspb.UInt32(consecutive5xx),
			Interval:           durationpb.New(outlierInterval),
			BaseEjectionTime:   durationpb.New(baseEjectionTime),
			MaxEjectionPercent: wrapperspb.UInt32(maxEjectionPercent),
		},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{httpProtocolOptionsKey: parts.protocol},
	}
	// STRICT_DNS, never EDS: EDS keeps only the first endpoint per address,
	// and deployments often share a provider host. STATIC when no name
	// needs resolving.
	if allIP {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	} else {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	if anyHTTPS {
		c.TransportSocket = parts.tls
		if anyPlain {
			// A pool mixing http and https bases: TLS is the cluster's
			// socket, plaintext endpoints opt out through their metadata.
			c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{
				Name:            "plaintext",
				Match:           &structpb.Struct{Fields: map[string]*structpb.Value{plaintextMatchKey: structpb.NewBoolValue(true)}},
				TransportSocket: parts.plaintext,
			}}
		}
	}
	c.LoadAssignment = &endpointv3.ClusterLoadAssignment{
		ClusterName: name,
		Policy: &endpointv3.ClusterLoadAssignment_Policy{
			OverprovisioningFactor: wrapperspb.UInt32(overprovisioningFactor),
		},
		Endpoints: localities(specs, anyHTTPS && anyPlain),
	}
	if err := c.ValidateAll(); err != nil {
		return nil, fmt.Errorf("validate cluster: %w", err)
	}
	return c, nil
}

// localities groups the endpoints by priority (specs are in priority order).
func localities(specs []endpointSpec, markPlaintext bool) []*endpointv3.LocalityLbEndpoints {
	var out []*endpointv3.LocalityLbEndpoints
	for _, s := range specs {
		if len(out) == 0 || out[len(out)-1].Priority != s.priority {
			out = append(out, &endpointv3.LocalityLbEndpoints{Priority: s.priority})
		}
		md := map[string]*structpb.Struct{
			metadataNamespace: {Fields: map[string]*structpb.Value{deploymentKey: structpb.NewStringValue(s.d.ID)}},
		}
		if markPlaintext && !s.https {
			md[transportSocketMatchNamespace] = &structpb.Struct{Fields: map[string]*structpb.Value{plaintextMatchKey: structpb.NewBoolValue(true)}}
		}
		ep := &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address:       s.host,
					PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: s.port},
				}}},
				// SNI, SAN check (auto_host_sni) and auto_host_rewrite all
				// take the provider's name from here.
				Hostname: s.host,
			}},
			Metadata: &corev3.Metadata{FilterMetadata: md},
		}
		if s.weight > 0 {
			ep.LoadBalancingWeight = wrapperspb.UInt32(s.weight)
		}
		last := out[len(out)-1]
		last.LbEndpoints = append(last.LbEndpoints, ep)
	}
	return out
}

func endpointFor(d *routing.Deployment) (endpointSpec, error) {
	u, err := url.Parse(d.BaseURL)
	if err != nil {
		return endpointSpec{}, fmt.Errorf("deployment %s: base url: %w", d.ID, err)
	}
	s := endpointSpec{d: d, host: u.Hostname()}
	switch u.Scheme {
	case "https":
		s.https, s.port = true, 443
	case "http":
		s.port = 80
	default:
		return endpointSpec{}, fmt.Errorf("deployment %s: base url %q is not http or https", d.ID, d.BaseURL)
	}
	if s.host == "" {
		return endpointSpec{}, fmt.Errorf("deployment %s: base url %q has no host", d.ID, d.BaseURL)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return endpointSpec{}, fmt.Errorf("deployment %s: base url %q has a bad port", d.ID, d.BaseURL)
		}
		s.port = uint32(n)
	}
	_, err = netip.ParseAddr(s.host)
	s.ip = err == nil
	return s, nil
}

// poolProtocolOptions is the HttpProtocolOptions every pool carries: HTTP/1.1
// to providers and the upstream ext_proc filter before upstream_codec.
func poolProtocolOptions(opts RenderOptions) (*anypb.Any, error) {
	extproc := &extprocv3.ExternalProcessor{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: opts.ExtProcCluster}},
			Timeout:         durationpb.New(opts.StreamTimeout),
		},
		FailureModeAllow:  false,
		MessageTimeout:    durationpb.New(opts.MessageTimeout),
		MaxMessageTimeout: durationpb.New(opts.MaxMessageTimeout),
		// Responses are translated at router level only, so a retried
		// attempt's response never reaches a translator.
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:   extprocv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SKIP,
			ResponseBodyMode:    extprocv3.ProcessingMode_NONE,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		// A leaf path arrives as a string; the whole Struct would print as
		// "map value".
		RequestAttributes: []string{deploymentAttribute},
		MetadataOptions: &extprocv3.MetadataOptions{
			ReceivingNamespaces:  &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{metadataNamespace}},
			ForwardingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{metadataNamespace}},
		},
	}
	extprocAny, err := pack(extproc)
	if err != nil {
		return nil, fmt.Errorf("upstream ext_proc filter: %w", err)
	}
	codecAny, err := pack(&upstreamcodecv3.UpstreamCodec{})
	if err != nil {
		return nil, fmt.Errorf("upstream codec: %w", err)
	}
	po := &upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
					HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
				},
			},
		},
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: "envoy.filters.http.ext_proc", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: extprocAny}},
			// Envoy requires upstream_codec as the last upstream filter.
			{Name: "envoy.filters.http.upstream_codec", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: codecAny}},
		},
	}
	out, err := pack(po)
	if err != nil {
		return nil, fmt.Errorf("http protocol options: %w", err)
	}
	return out, nil
}

// providerTLS verifies each provider against trustedCA with SNI and SAN
// taken from the endpoint's hostname, so one context serves endpoints of
// different providers (never the router's auto_sni, which takes the
// client's :authority).
func providerTLS(trustedCA string) (*corev3.TransportSocket, error) {
	ctx := &tlsv3.UpstreamTlsContext{
		AutoHostSni:          true,
		AutoSniSanValidation: true,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
				ValidationContext: &tlsv3.CertificateValidationContext{
					// Without trusted_ca Envoy does not verify the provider.
					TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: trustedCA}},
				},
			},
		},
	}
	a, err := pack(ctx)
	if err != nil {
		return nil, fmt.Errorf("provider tls: %w", err)
	}
	return &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}, nil
}

func plaintextSocket() (*corev3.TransportSocket, error) {
	a, err := pack(&rawbufferv3.RawBuffer{})
	if err != nil {
		return nil, fmt.Errorf("raw buffer socket: %w", err)
	}
	return &corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}, nil
}

// pack validates m (the cluster's ValidateAll does not descend into Any)
// and packs it deterministically, so equal configs give equal bytes.
func pack(m interface {
	proto.Message
	ValidateAll() error
}) (*anypb.Any, error) {
	if err := m.ValidateAll(); err != nil {
		return nil, err
	}
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, err
	}
	return a, nil
}
