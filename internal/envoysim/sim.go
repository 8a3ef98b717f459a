// Package envoysim is a test-only stand-in for Envoy. It reads the repo's
// Envoy bootstrap files and plays Envoy's part for Tollgate's configuration
// shape: HCM routing, the router-level and per-attempt upstream ext_proc
// filters with Envoy's client rules, retries, priority load balancing and
// outlier ejection, as described in the shared envoy-contract.md and
// envoy-two-filters.md. It is never a production proxy; real Envoy is.
//
// Configuration it does not emulate is rejected by New with an error naming
// it, rather than silently ignored.
//
// # Envoy versions
//
// By default the stand-in behaves like the newest Envoy. Options.EnvoyVersion
// selects an older release where behaviour changed; both switches below
// apply before 1.37.0, the first release with the fix:
//
//   - Upstream ext_proc local replies (envoyproxy/envoy#41231). Every reply
//     an upstream filter makes through Filter::sendImmediateResponse is
//     dropped and counted as "ext_proc.send_immediate_resp_upstream_ignored":
//     ImmediateResponse, and the error replies for gRPC errors, message
//     timeouts, spurious messages and invalid mutations (Envoy AI Gateway
//     #840). The attempt neither replies nor continues: it hangs until the
//     per-try timeout (reset, retried as usual), the route timeout (504) or
//     the client going away. From 1.37 such a reply is final and never
//     retried.
//   - Held upstream responses with retries (envoyproxy/envoy#41879). New
//     rejects a cluster whose upstream ext_proc filter can hold response
//     headers (response_header_mode SEND or DEFAULT, a response body mode,
//     or a mode_override allowed to ask for one) when a route that can reach
//     the cluster (by name or by cluster_header) retries, because that
//     Envoy forwards a retried attempt's held response: a corrupt reply or
//     a crash. A cluster from CDS is rejected the same way.
//
// # Clusters over ADS
//
// With dynamic_resources.ads_config (api_type GRPC, transport V3, one
// envoy_grpc service naming a static HTTP/2 cluster) the stand-in opens one
// state-of-the-world ADS stream to that cluster's first endpoint, after
// Options.ClusterOverrides and RewriteAddress, like Envoy's GrpcMuxImpl:
//
//   - cds_config {ads: {}} subscribes to every Cluster (wildcard); EDS
//     clusters with eds_config {ads: {}} subscribe to their
//     ClusterLoadAssignment by service_name, or by cluster name.
//   - The bootstrap node goes in the first request of each stream, or in
//     every request without set_node_on_first_message_only.
//   - A response is ACKed with its version_info and nonce, or NACKed with
//     the last accepted version, its nonce and error_detail (code INTERNAL).
//     As in Envoy, a resource of the wrong type or failing its own proto
//     constraints rejects the whole response; a cluster that fails to build
//     (a packed typed_config failing validation, a duplicate name, anything
//     envoysim does not emulate) is skipped while the rest of the response
//     is applied, and the response is still NACKed.
//   - Clusters missing from a CDS response are removed; a changed cluster
//     is built anew (hosts, outlier state and connections reset); an
//     unchanged one, or one named like a static cluster, is left alone.
//   - An EDS cluster is warming, and routes to it get 503 like an unknown
//     cluster, until its first ClusterLoadAssignment; an updated cluster
//     warms while the previous version keeps serving, from the last
//     accepted assignment when there is one (Envoy's ADS EDS cache).
//     Endpoint updates change the hosts in place: only the first endpoint
//     per address across priorities is kept, and a host whose address and
//     hostname survive keeps its outlier state and connections.
//   - A broken stream is reopened after a jittered exponential backoff
//     (500 ms to 30 s, reset once a response arrives) and every
//     subscription is re-sent with its last accepted version.
//   - Sim.WaitReady returns once the first CDS response has been applied or
//     rejected and no cluster is warming.
//
// Not emulated: LDS, RDS, SDS, LEDS, delta xDS, google_grpc and TLS to the
// xDS server, initial_fetch_timeout, ads rate_limit_settings, resource TTLs
// and xdstp names. The listener serves from Start, before initialisation,
// where Envoy would wait; call WaitReady first. The node is sent as written,
// without the user agent and extension lists Envoy adds.
package envoysim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/internal/envoyconfig"
)

// Options adjusts a bootstrap for tests. The zero value uses the bootstrap
// as written.
type Options struct {
	// ListenAddr replaces the listener address ("127.0.0.1:0" for a random
	// port). Empty: the bootstrap's address.
	ListenAddr string
	// ClusterOverrides replaces the endpoint addresses of a cluster, in
	// the order the endpoints appear (priority by priority). The list must
	// have one address per endpoint (for EDS, per assignment, after
	// duplicates are dropped). With CDS, names of clusters still to come
	// are allowed. Nil: no overrides.
	ClusterOverrides map[string][]string
	// RewriteAddress, when set, maps every endpoint address after
	// ClusterOverrides: f(cluster, "host:port").
	RewriteAddress func(cluster, addr string) string
	// UpstreamRootCAs replaces every TLS cluster's trusted_ca, so tests can
	// trust an httptest TLS server. Nil: trusted_ca as configured.
	UpstreamRootCAs *x509.CertPool
	// Logger receives the stand-in's logs. Nil: discarded.
	Logger *slog.Logger
	// Rand is the randomness source for load balancing, priority choice
	// and retry backoff. Nil: randomly seeded.
	Rand rand.Source
	// Now is the clock for outlier ejection. Nil: time.Now.
	Now func() time.Time
	// BackoffDisabled turns retry backoff off, for fast tests.
	BackoffDisabled bool
	// EnvoyVersion is the Envoy release to emulate where behaviour
	// changed, as "MAJOR.MINOR" or "MAJOR.MINOR.PATCH" (e.g. "1.36").
	// Empty: the newest behaviour.
	EnvoyVersion string
}

// Sim is a running stand-in. Its methods are safe for concurrent use.
type Sim struct {
	opts   Options
	log    *slog.Logger
	listen string
	limit  int64 // per_connection_buffer_limit_bytes
	routes *routeTable
	hcm    []*extProcConfig // router-level ext_proc filters, in order

	ads *adsClient // nil without dynamic_resources

	version envoyVersion // Options.EnvoyVersion

	mu       sync.Mutex
	rnd      *rand.Rand
	clusters map[string]*cluster // active: what requests are routed to
	warming  map[string]*cluster // EDS clusters waiting for endpoints
	static   map[string]bool     // names of bootstrap clusters, which CDS cannot touch
	conns    map[string]*grpc.ClientConn
	stats    map[string]int64

	ln     net.Listener
	server *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// LoadFile reads a bootstrap with internal/envoyconfig and builds a Sim.
func LoadFile(path string, o Options) (*Sim, error) {
	b, err := envoyconfig.Load(path)
	if err != nil {
		return nil, err
	}
	return New(b, o)
}

// New compiles a bootstrap. It rejects configuration it cannot emulate.
func New(b *bootstrapv3.Bootstrap, o Options) (*Sim, error) {
	s := &Sim{opts: o, log: o.Logger, clusters: map[string]*cluster{}, warming: map[string]*cluster{}, static: map[string]bool{},
		conns: map[string]*grpc.ClientConn{}, stats: map[string]int64{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	src := o.Rand
	if src == nil {
		src = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	s.rnd = rand.New(src)
	var err error
	if s.version, err = parseEnvoyVersion(o.EnvoyVersion); err != nil {
		return nil, fmt.Errorf("envoysim: %w", err)
	}
	if b.GetDynamicResources() != nil {
		a, err := newADS(s, b)
		if err != nil {
			return nil, fmt.Errorf("envoysim: dynamic_resources: %w", err)
		}
		s.ads = a
	}
	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 {
		return nil, fmt.Errorf("envoysim: want exactly one static listener, got %d", len(ls))
	}
	if err := s.compileListener(ls[0]); err != nil {
		return nil, fmt.Errorf("envoysim: listener %q: %w", ls[0].GetName(), err)
	}
	if o.ListenAddr != "" {
		s.listen = o.ListenAddr
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		cl, err := s.compileCluster(c)
		if err != nil {
			return nil, fmt.Errorf("envoysim: cluster %q: %w", c.GetName(), err)
		}
		s.static[cl.name] = true
		if cl.edsName != "" {
			s.warming[cl.name] = cl
		} else {
			s.clusters[cl.name] = cl
		}
	}
	for name := range o.ClusterOverrides {
		// Clusters from CDS are not known yet.
		if !s.static[name] && (s.ads == nil || !s.ads.cds) {
			return nil, fmt.Errorf("envoysim: ClusterOverrides names unknown cluster %q", name)
		}
	}
	if s.ads != nil {
		if err := s.ads.dial(); err != nil {
			return nil, fmt.Errorf("envoysim: dynamic_resources: %w", err)
		}
	}
	return s, nil
}

func (s *Sim) compileListener(l *listenerv3.Listener) error {
	sa := l.GetAddress().GetSocketAddress()
	s.listen = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	s.limit = 1 << 20
	if v := l.GetPerConnectionBufferLimitBytes(); v != nil {
		s.limit = int64(v.GetValue())
	}
	fcs := l.GetFilterChains()
	if len(fcs) != 1 || len(fcs[0].GetFilters()) != 1 {
		return errors.New("want one filter chain with one HTTP connection manager")
	}
	if fcs[0].GetTransportSocket() != nil {
		return errors.New("downstream TLS is not supported by envoysim")
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := fcs[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		return fmt.Errorf("http_connection_manager: %w", err)
	}
	if hcm.GetRouteConfig() == nil {
		return errors.New("only an inline route_config is supported by envoysim")
	}
	rt, err := newRouteTable(hcm.GetRouteConfig())
	if err != nil {
		return err
	}
	s.routes = rt
	fs := hcm.GetHttpFilters()
	for i, f := range fs {
		last := i == len(fs)-1
		switch {
		case last:
			if !f.GetTypedConfig().MessageIs(&routerv3.Router{}) {
				return errors.New("the last HTTP filter must be the router")
			}
		case f.GetTypedConfig().MessageIs(&extprocv3.ExternalProcessor{}):
			pb := &extprocv3.ExternalProcessor{}
			if err := f.GetTypedConfig().UnmarshalTo(pb); err != nil {
				return err
			}
			c, err := newExtProcConfig(pb, false)
			if err != nil {
				return fmt.Errorf("http filter %q: %w", f.GetName(), err)
			}
			s.hcm = append(s.hcm, c)
		default:
			return fmt.Errorf("http filter %q is not supported by envoysim", f.GetName())
		}
	}
	return nil
}

// tlsSettings is an UpstreamTlsContext.
type tlsSettings struct {
	sni         string
	autoHostSNI bool
	roots       *x509.CertPool // nil: verification off, as in Envoy without trusted_ca
}

func (s *Sim) compileTLS(ts *corev3.TransportSocket) (*tlsSettings, error) {
	if ts == nil {
		return nil, nil
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		return nil, fmt.Errorf("transport_socket %q is not supported by envoysim: %w", ts.GetName(), err)
	}
	t := &tlsSettings{sni: ctx.GetSni(), autoHostSNI: ctx.GetAutoHostSni()}
	switch {
	case s.opts.UpstreamRootCAs != nil:
		t.roots = s.opts.UpstreamRootCAs
	case ctx.GetCommonTlsContext().GetValidationContext().GetTrustedCa() != nil:
		ds := ctx.GetCommonTlsContext().GetValidationContext().GetTrustedCa()
		pem := []byte(ds.GetInlineString())
		if ds.GetInlineBytes() != nil {
			pem = ds.GetInlineBytes()
		}
		if f := ds.GetFilename(); f != "" {
			var err error
			if pem, err = os.ReadFile(f); err != nil {
				return nil, fmt.Errorf("trusted_ca: %w", err)
			}
		}
		t.roots = x509.NewCertPool()
		if !t.roots.AppendCertsFromPEM(pem) {
			return nil, errors.New("trusted_ca holds no certificate")
		}
	}
	return t, nil
}

func (s *Sim) compileCluster(c *clusterv3.Cluster) (*cluster, error) {
	cl := &cluster{name: c.GetName(), sim: s, overprov: 140, panicPct: 50, choices: 2, bias: 1, metadata: c.GetMetadata(), connectTTL: 5 * time.Second}
	if t := c.GetConnectTimeout(); t != nil {
		cl.connectTTL = t.AsDuration()
	}
	switch c.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
	case clusterv3.Cluster_RANDOM:
		cl.policy = lbRandom
	case clusterv3.Cluster_LEAST_REQUEST:
		cl.policy = lbLeastRequest
		if lr := c.GetLeastRequestLbConfig(); lr != nil {
			if v := lr.GetChoiceCount(); v != nil {
				cl.choices = int(v.GetValue())
			}
			if v := lr.GetActiveRequestBias(); v != nil {
				cl.bias = v.GetDefaultValue()
			}
		}
	default:
		return nil, fmt.Errorf("lb_policy %s is not supported by envoysim", c.GetLbPolicy())
	}
	if v := c.GetCommonLbConfig().GetHealthyPanicThreshold(); v != nil {
		cl.panicPct = uint32(v.GetValue())
	}
	cl.outlier = newOutlierConfig(c.GetOutlierDetection())
	var err error
	if cl.tls, err = s.compileTLS(c.GetTransportSocket()); err != nil {
		return nil, err
	}
	if a := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; a != nil {
		po := &upstreamhttpv3.HttpProtocolOptions{}
		if err := a.UnmarshalTo(po); err != nil {
			return nil, err
		}
		cl.http2 = po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
		fs := po.GetHttpFilters()
		for i, f := range fs {
			if i == len(fs)-1 {
				if f.GetName() != "envoy.filters.http.upstream_codec" {
					return nil, errors.New("the last upstream http filter must be envoy.filters.http.upstream_codec")
				}
				continue
			}
			pb := &extprocv3.ExternalProcessor{}
			if !f.GetTypedConfig().MessageIs(pb) {
				return nil, fmt.Errorf("upstream http filter %q is not supported by envoysim", f.GetName())
			}
			if err := f.GetTypedConfig().UnmarshalTo(pb); err != nil {
				return nil, err
			}
			epc, err := newExtProcConfig(pb, true)
			if err != nil {
				return nil, fmt.Errorf("upstream http filter %q: %w", f.GetName(), err)
			}
			if err := s.checkHeldResponseRetry(cl.name, f.GetName(), pb); err != nil {
				return nil, err
			}
			cl.upstream = append(cl.upstream, epc)
		}
	}
	switch c.GetType() {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
		// One host per configured endpoint: DNS is left to the dialer
		// (Envoy's STRICT_DNS makes one host per resolved address).
		if err := s.setEndpoints(cl, c.GetLoadAssignment(), false); err != nil {
			return nil, err
		}
	case clusterv3.Cluster_EDS:
		ec := c.GetEdsClusterConfig()
		if ec.GetEdsConfig().GetAds() == nil {
			return nil, errors.New("eds_cluster_config.eds_config must be {ads: {}} in envoysim")
		}
		if s.ads == nil {
			return nil, errors.New("an EDS cluster needs dynamic_resources.ads_config")
		}
		cl.edsName = ec.GetServiceName()
		if cl.edsName == "" {
			cl.edsName = cl.name
		}
	default:
		return nil, fmt.Errorf("cluster type %s is not supported by envoysim", c.GetType())
	}
	return cl, nil
}

// setEndpoints installs a ClusterLoadAssignment. eds applies EDS's rules:
// only the first endpoint per address across all priorities is kept
// (EdsClusterImpl::BatchUpdateHelper), and a host whose address and
// hostname survive an update keeps its outlier state and connections
// (BaseDynamicClusterImpl::updateDynamicHostList).
func (s *Sim) setEndpoints(cl *cluster, la *endpointv3.ClusterLoadAssignment, eds bool) error {
	overprov := uint32(140)
	if v := la.GetPolicy().GetOverprovisioningFactor(); v != nil {
		overprov = v.GetValue()
	}
	override := s.opts.ClusterOverrides[cl.name]
	var byPrio [][]*host
	seen := map[string]bool{}
	n := 0
	for _, lle := range la.GetEndpoints() {
		p := int(lle.GetPriority())
		for len(byPrio) <= p {
			byPrio = append(byPrio, nil)
		}
		for _, le := range lle.GetLbEndpoints() {
			ep := le.GetEndpoint()
			sa := ep.GetAddress().GetSocketAddress()
			addr := net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
			if eds {
				if seen[addr] {
					s.count("eds.duplicate_endpoint_dropped")
					continue
				}
				seen[addr] = true
			}
			if override != nil {
				if n >= len(override) {
					return fmt.Errorf("ClusterOverrides has %d addresses, the cluster has more endpoints", len(override))
				}
				addr = override[n]
			}
			n++
			if s.opts.RewriteAddress != nil {
				addr = s.opts.RewriteAddress(cl.name, addr)
			}
			w := uint32(1)
			if v := le.GetLoadBalancingWeight(); v != nil {
				w = v.GetValue()
			}
			h := &host{cluster: cl, addr: addr, hostname: ep.GetHostname(), metadata: le.GetMetadata(), weight: w, priority: p, health: le.GetHealthStatus()}
			byPrio[p] = append(byPrio[p], h)
		}
	}
	if override != nil && n != len(override) {
		return fmt.Errorf("ClusterOverrides has %d addresses for %d endpoints", len(override), n)
	}
	cl.mu.Lock()
	prev := map[string]*host{}
	if eds {
		for _, hs := range cl.hosts {
			for _, h := range hs {
				prev[h.addr] = h
			}
		}
	}
	kept := map[*host]bool{}
	for _, hs := range byPrio {
		for _, h := range hs {
			if o := prev[h.addr]; o != nil && o.hostname == h.hostname && !kept[o] {
				kept[o] = true
				h.transport = o.transport
				h.consecutive5xx, h.ejections, h.ejectedUntil = o.consecutive5xx, o.ejections, o.ejectedUntil
				continue
			}
			h.transport = s.newTransport(cl, h)
		}
	}
	var stale []*host
	for _, hs := range cl.hosts {
		for _, h := range hs {
			if !kept[h] {
				stale = append(stale, h)
			}
		}
	}
	cl.hosts, cl.rr, cl.overprov = byPrio, nil, overprov
	cl.mu.Unlock()
	for _, h := range stale {
		h.transport.CloseIdleConnections()
	}
	return nil
}

// connectError marks a dial failure, which Envoy reports as a connection
// failure reset (retry_on connect-failure).
type connectError struct{ err error }

func (e *connectError) Error() string { return "connection failure: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// newTransport is the host's connection pool: HTTP/1.1, TLS per the
// cluster's transport socket with SNI from the endpoint hostname when
// auto_host_sni is set.
func (s *Sim) newTransport(cl *cluster, h *host) *http.Transport {
	d := &net.Dialer{Timeout: cl.connectTTL}
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, h.addr)
			if err != nil {
				return nil, &connectError{err}
			}
			return c, nil
		},
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}
	if ts := cl.tls; ts != nil {
		sni := ts.sni
		if ts.autoHostSNI && h.hostname != "" {
			sni = h.hostname
		}
		t.TLSClientConfig = &tls.Config{ServerName: sni, RootCAs: ts.roots, InsecureSkipVerify: ts.roots == nil, MinVersion: tls.VersionTLS12}
	}
	return t
}

// grpcConn returns the shared client connection for an ext_proc service.
func (s *Sim) grpcConn(clusterName, target string) (*grpc.ClientConn, error) {
	if clusterName != "" {
		cl := s.cluster(clusterName)
		if cl == nil {
			return nil, fmt.Errorf("ext_proc cluster %q not found", clusterName)
		}
		cl.mu.Lock()
		for _, hs := range cl.hosts {
			if len(hs) > 0 && target == "" {
				target = hs[0].addr
			}
		}
		cl.mu.Unlock()
		if target == "" {
			return nil, fmt.Errorf("ext_proc cluster %q has no endpoints", clusterName)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[target]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	s.conns[target] = c
	return c, nil
}

func (s *Sim) cluster(name string) *cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clusters[name]
}

func (s *Sim) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

func (s *Sim) randUint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rnd.Uint64()
}

func (s *Sim) count(name string) {
	s.mu.Lock()
	s.stats[name]++
	s.mu.Unlock()
}

// Counter returns a stand-in statistic, named after Envoy's where one
// exists (e.g. "ext_proc.spurious_msgs_received",
// "ext_proc.clear_route_cache_ignored", "upstream_rq_retry").
func (s *Sim) Counter(name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats[name]
}

// Start listens and serves in the background until ctx ends or Close is
// called.
func (s *Sim) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("envoysim: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s.ln, s.cancel = ln, cancel
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s.server = &http.Server{Handler: s, Protocols: p, ReadHeaderTimeout: 30 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.wg.Go(func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("envoysim serve", "error", err)
		}
	})
	if s.ads != nil {
		s.wg.Go(func() { s.ads.run(ctx) })
	}
	go func() {
		<-ctx.Done()
		_ = s.server.Close()
	}()
	s.log.Info("envoysim listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the listener's address once started.
func (s *Sim) Addr() string { return s.ln.Addr().String() }

// URL is "http://" + Addr().
func (s *Sim) URL() string { return "http://" + s.Addr() }

// Close stops serving, cancels in-flight requests and closes connections.
func (s *Sim) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	var err error
	if s.server != nil {
		err = s.server.Close()
	}
	s.wg.Wait()
	if s.ads != nil {
		_ = s.ads.conn.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	for _, m := range []map[string]*cluster{s.clusters, s.warming} {
		for _, cl := range m {
			cl.closeIdle()
		}
	}
	return err
}

// readLimited reads r fully, failing once more than limit bytes arrive.
func readLimited(r io.Reader, limit int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > limit {
		return nil, true, nil
	}
	return b, false, nil
}
