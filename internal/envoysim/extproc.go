package envoysim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// attributesKey is where Envoy puts the evaluated attributes.
const attributesKey = "envoy.filters.http.ext_proc"

// extProcConfig is a compiled ExternalProcessor filter config.
type extProcConfig struct {
	pb                *extprocv3.ExternalProcessor
	upstream          bool
	cluster           string // envoy_grpc cluster_name, or "" for google_grpc
	target            string // google_grpc target_uri
	streamTimeout     time.Duration
	messageTimeout    time.Duration
	maxMessageTimeout time.Duration
	statusOnError     int
	checker           *mutationChecker
	reqAttrs          []string
	respAttrs         []string
}

func newExtProcConfig(pb *extprocv3.ExternalProcessor, upstream bool) (*extProcConfig, error) {
	c := &extProcConfig{pb: pb, upstream: upstream, messageTimeout: 200 * time.Millisecond, statusOnError: 500}
	switch {
	case pb.GetObservabilityMode():
		return nil, errors.New("ext_proc observability_mode is not supported by envoysim")
	case pb.GetSendBodyWithoutWaitingForHeaderResponse():
		return nil, errors.New("ext_proc send_body_without_waiting_for_header_response is not supported by envoysim")
	case pb.GetHttpService() != nil:
		return nil, errors.New("ext_proc http_service is not supported by envoysim")
	case pb.GetProcessingRequestModifier() != nil || pb.GetOnProcessingResponse() != nil:
		return nil, errors.New("ext_proc extensions are not supported by envoysim")
	}
	if err := checkModes(pb.GetProcessingMode()); err != nil {
		return nil, err
	}
	gs := pb.GetGrpcService()
	c.cluster = gs.GetEnvoyGrpc().GetClusterName()
	c.target = gs.GetGoogleGrpc().GetTargetUri()
	if c.cluster == "" && c.target == "" {
		return nil, errors.New("ext_proc grpc_service needs envoy_grpc or google_grpc")
	}
	c.streamTimeout = gs.GetTimeout().AsDuration()
	if t := pb.GetMessageTimeout(); t != nil {
		c.messageTimeout = t.AsDuration()
	}
	c.maxMessageTimeout = pb.GetMaxMessageTimeout().AsDuration()
	if s := pb.GetStatusOnError(); s != nil && s.GetCode() != 0 {
		c.statusOnError = int(s.GetCode())
	}
	var err error
	if c.checker, err = newMutationChecker(pb.GetMutationRules()); err != nil {
		return nil, err
	}
	for _, a := range pb.GetRequestAttributes() {
		if !attributeSupported(a) {
			return nil, fmt.Errorf("ext_proc request attribute %q is not supported by envoysim", a)
		}
	}
	for _, a := range pb.GetResponseAttributes() {
		if !attributeSupported(a) {
			return nil, fmt.Errorf("ext_proc response attribute %q is not supported by envoysim", a)
		}
	}
	c.reqAttrs, c.respAttrs = pb.GetRequestAttributes(), pb.GetResponseAttributes()
	return c, nil
}

// checkModes rejects body modes the stand-in does not emulate.
func checkModes(m *extprocv3.ProcessingMode) error {
	for _, b := range []extprocv3.ProcessingMode_BodySendMode{m.GetRequestBodyMode(), m.GetResponseBodyMode()} {
		switch b {
		case extprocv3.ProcessingMode_NONE, extprocv3.ProcessingMode_BUFFERED, extprocv3.ProcessingMode_STREAMED:
		default:
			return fmt.Errorf("ext_proc body mode %s is not supported by envoysim", b)
		}
	}
	return nil
}

// direction is the request (decoding) or response (encoding) path.
type direction int

const (
	dirRequest direction = iota
	dirResponse
)

// procMode is an effective processing mode with Envoy's defaults applied.
type procMode struct {
	headers  [2]extprocv3.ProcessingMode_HeaderSendMode // SEND or SKIP
	body     [2]extprocv3.ProcessingMode_BodySendMode
	trailers [2]extprocv3.ProcessingMode_HeaderSendMode
}

func newProcMode(m *extprocv3.ProcessingMode) procMode {
	var pm procMode
	hdr := func(v extprocv3.ProcessingMode_HeaderSendMode) extprocv3.ProcessingMode_HeaderSendMode {
		if v == extprocv3.ProcessingMode_SKIP {
			return v
		}
		return extprocv3.ProcessingMode_SEND
	}
	trl := func(v extprocv3.ProcessingMode_HeaderSendMode) extprocv3.ProcessingMode_HeaderSendMode {
		if v == extprocv3.ProcessingMode_SEND {
			return v
		}
		return extprocv3.ProcessingMode_SKIP
	}
	pm.headers = [2]extprocv3.ProcessingMode_HeaderSendMode{hdr(m.GetRequestHeaderMode()), hdr(m.GetResponseHeaderMode())}
	pm.body = [2]extprocv3.ProcessingMode_BodySendMode{m.GetRequestBodyMode(), m.GetResponseBodyMode()}
	pm.trailers = [2]extprocv3.ProcessingMode_HeaderSendMode{trl(m.GetRequestTrailerMode()), trl(m.GetResponseTrailerMode())}
	return pm
}

// override applies a mode_override: DEFAULT header and trailer modes leave
// the mode unchanged, body modes are taken literally (omitted = NONE).
func (pm *procMode) override(m *extprocv3.ProcessingMode) {
	if v := m.GetRequestHeaderMode(); v != extprocv3.ProcessingMode_DEFAULT {
		pm.headers[dirRequest] = v
	}
	if v := m.GetResponseHeaderMode(); v != extprocv3.ProcessingMode_DEFAULT {
		pm.headers[dirResponse] = v
	}
	if v := m.GetRequestTrailerMode(); v != extprocv3.ProcessingMode_DEFAULT {
		pm.trailers[dirRequest] = v
	}
	if v := m.GetResponseTrailerMode(); v != extprocv3.ProcessingMode_DEFAULT {
		pm.trailers[dirResponse] = v
	}
	pm.body[dirRequest] = m.GetRequestBodyMode()
	pm.body[dirResponse] = m.GetResponseBodyMode()
}

// dynMetadata is the request's StreamInfo dynamic metadata, shared by the
// router-level filter and every upstream attempt.
type dynMetadata struct {
	mu sync.Mutex
	ns map[string]*structpb.Struct
}

// merge is StreamInfoImpl::setDynamicMetadata: per-key MergeFrom, only for
// receiving namespaces.
func (d *dynMetadata) merge(in *structpb.Struct, receiving []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ns, v := range in.GetFields() {
		s := v.GetStructValue()
		if s == nil || !containsString(receiving, ns) {
			continue
		}
		if d.ns == nil {
			d.ns = map[string]*structpb.Struct{}
		}
		cur := d.ns[ns]
		if cur == nil {
			cur = &structpb.Struct{Fields: map[string]*structpb.Value{}}
			d.ns[ns] = cur
		}
		for k, fv := range s.GetFields() {
			cur.Fields[k] = proto.Clone(fv).(*structpb.Value)
		}
	}
}

// forward builds metadata_context for the forwarding namespaces.
func (d *dynMetadata) forward(namespaces []string) *corev3.Metadata {
	d.mu.Lock()
	defer d.mu.Unlock()
	var md *corev3.Metadata
	for _, ns := range namespaces {
		s := d.ns[ns]
		if s == nil {
			continue
		}
		if md == nil {
			md = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
		}
		md.FilterMetadata[ns] = proto.Clone(s).(*structpb.Struct)
	}
	return md
}

var metadataAttr = regexp.MustCompile(`^xds\.(upstream_host_metadata|cluster_metadata)\.filter_metadata\['([^']*)'\](?:\['([^']*)'\])?$`)
var headerAttr = regexp.MustCompile(`^(request|response)\.headers\['([^']*)'\]$`)

func attributeSupported(a string) bool {
	switch a {
	case "request.path", "request.url_path", "request.host", "request.method", "request.scheme",
		"request.id", "response.code", "xds.cluster_name", "xds.route_name":
		return true
	}
	return metadataAttr.MatchString(a) || headerAttr.MatchString(a)
}

// attrContext is what attribute expressions are evaluated against.
type attrContext struct {
	reqHeaders  *headerMap
	respHeaders *headerMap
	route       *route
	cluster     *cluster
	host        *host
}

// evaluate returns the value Envoy's ExpressionManager would put in the
// attributes Struct: strings, numbers and bools as such, a map as
// "map value"; false when the attribute has no value (Envoy omits it).
func (ac *attrContext) evaluate(a string) (*structpb.Value, bool) {
	str := func(h *headerMap, k string) (*structpb.Value, bool) {
		if h == nil {
			return nil, false
		}
		v, ok := h.get(k)
		return structpb.NewStringValue(v), ok
	}
	switch a {
	case "request.path":
		return str(ac.reqHeaders, ":path")
	case "request.url_path":
		v, ok := str(ac.reqHeaders, ":path")
		if ok {
			p := v.GetStringValue()
			if i := strings.IndexByte(p, '?'); i >= 0 {
				p = p[:i]
			}
			v = structpb.NewStringValue(p)
		}
		return v, ok
	case "request.host":
		return str(ac.reqHeaders, ":authority")
	case "request.method":
		return str(ac.reqHeaders, ":method")
	case "request.scheme":
		return str(ac.reqHeaders, ":scheme")
	case "request.id":
		return str(ac.reqHeaders, "x-request-id")
	case "response.code":
		v, ok := str(ac.respHeaders, ":status")
		if !ok {
			return nil, false
		}
		n, err := strconv.Atoi(v.GetStringValue())
		return structpb.NewNumberValue(float64(n)), err == nil
	case "xds.cluster_name":
		if ac.cluster == nil {
			return nil, false
		}
		return structpb.NewStringValue(ac.cluster.name), true
	case "xds.route_name":
		if ac.route == nil {
			return nil, false
		}
		return structpb.NewStringValue(ac.route.name), true
	}
	if m := headerAttr.FindStringSubmatch(a); m != nil {
		if m[1] == "request" {
			return str(ac.reqHeaders, strings.ToLower(m[2]))
		}
		return str(ac.respHeaders, strings.ToLower(m[2]))
	}
	m := metadataAttr.FindStringSubmatch(a)
	var md *corev3.Metadata
	switch {
	case m == nil:
		return nil, false
	case m[1] == "upstream_host_metadata" && ac.host != nil:
		md = ac.host.metadata
	case m[1] == "cluster_metadata" && ac.cluster != nil:
		md = ac.cluster.metadata
	}
	s := md.GetFilterMetadata()[m[2]]
	if s == nil {
		return nil, false
	}
	if m[3] == "" {
		return structpb.NewStringValue("map value"), true
	}
	v, ok := s.GetFields()[m[3]]
	if !ok {
		return nil, false
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue, *structpb.Value_BoolValue:
		return v, true
	case *structpb.Value_NumberValue:
		return structpb.NewStringValue(strconv.FormatFloat(k.NumberValue, 'g', -1, 64)), true
	case *structpb.Value_StructValue:
		return structpb.NewStringValue("map value"), true
	}
	return nil, false
}

// localReply is a response Envoy generates itself.
type localReply struct {
	status  int
	headers *headerMap
	body    []byte
	details string
	// fromRouter marks replies made at the router's position (direct
	// responses, routing and upstream failures, upstream-filter replies);
	// they pass through the router-level filters' encode path.
	fromRouter bool
	// ignored marks a reply an upstream filter made but did not send (the
	// pre-1.37 guard): the filter stays stopped and the attempt hangs.
	ignored bool
}

// phase names the message a reply must answer.
type phase int

const (
	phRequestHeaders phase = iota
	phRequestBody
	phResponseHeaders
	phResponseBody
)

func (p phase) dir() direction {
	if p >= phResponseHeaders {
		return dirResponse
	}
	return dirRequest
}

// matchesPhase reports whether the reply has the oneof case p expects.
func matchesPhase(r *procv3.ProcessingResponse, p phase) bool {
	switch p {
	case phRequestHeaders:
		return r.GetRequestHeaders() != nil
	case phRequestBody:
		return r.GetRequestBody() != nil
	case phResponseHeaders:
		return r.GetResponseHeaders() != nil
	default:
		return r.GetResponseBody() != nil
	}
}

type recvResult struct {
	msg *procv3.ProcessingResponse
	err error
}

// extProcFilter is one filter instance: one request (router level) or one
// attempt (upstream), with at most one gRPC stream.
type extProcFilter struct {
	cfg              *extProcConfig
	sim              *Sim
	mode             procMode
	failureModeAllow bool
	receiving        []string
	forwarding       []string
	cluster          string
	target           string
	meta             *dynMetadata
	attrs            *attrContext

	stream       procv3.ExternalProcessor_ProcessClient
	cancel       context.CancelFunc
	recv         chan recvResult
	opened       bool
	protocolSent bool
	attrsSent    [2]bool
	overridden   [2]bool
	disabled     bool    // ext_proc dropped for the rest of the request
	done         [2]bool // CONTINUE_AND_REPLACE: no more messages this way
	// clearRoute is set when a reply legitimately clears the route cache.
	clearRoute bool
}

// newFilter builds a filter instance, merging the route's ExtProcPerRoute
// once (Envoy does it at decodeHeaders and never again). It returns nil
// when the route disables the filter.
func (s *Sim) newFilter(cfg *extProcConfig, perRoute *extprocv3.ExtProcPerRoute, meta *dynMetadata, attrs *attrContext) *extProcFilter {
	if perRoute.GetDisabled() {
		return nil
	}
	f := &extProcFilter{
		cfg: cfg, sim: s, mode: newProcMode(cfg.pb.GetProcessingMode()),
		failureModeAllow: cfg.pb.GetFailureModeAllow(),
		receiving:        cfg.pb.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(),
		forwarding:       cfg.pb.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(),
		cluster:          cfg.cluster, target: cfg.target, meta: meta, attrs: attrs,
	}
	if o := perRoute.GetOverrides(); o != nil {
		if pm := o.GetProcessingMode(); pm != nil {
			f.mode = newProcMode(pm)
		}
		if v := o.GetFailureModeAllow(); v != nil {
			f.failureModeAllow = v.GetValue()
		}
		if mo := o.GetMetadataOptions(); mo != nil {
			f.receiving = mo.GetReceivingNamespaces().GetUntyped()
			f.forwarding = mo.GetForwardingNamespaces().GetUntyped()
		}
		if gs := o.GetGrpcService(); gs != nil {
			f.cluster, f.target = gs.GetEnvoyGrpc().GetClusterName(), gs.GetGoogleGrpc().GetTargetUri()
		}
	}
	return f
}

// close ends the stream the way Envoy does on filter destroy: a half-close,
// then a reset.
func (f *extProcFilter) close() {
	if f.opened && f.cancel != nil {
		_ = f.stream.CloseSend()
		f.cancel()
		f.cancel = nil
	}
}

// needsMore reports whether any message can still be sent.
func (f *extProcFilter) needsMore() bool {
	if f.disabled {
		return false
	}
	return !f.done[dirResponse] && (f.mode.headers[dirResponse] == extprocv3.ProcessingMode_SEND ||
		f.mode.body[dirResponse] != extprocv3.ProcessingMode_NONE || f.mode.trailers[dirResponse] == extprocv3.ProcessingMode_SEND)
}

// open starts the gRPC stream lazily, with the first message.
func (f *extProcFilter) open(ctx context.Context) error {
	f.opened = true
	conn, err := f.sim.grpcConn(f.cluster, f.target)
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	sctx, cancel := context.WithCancel(ctx)
	if f.cfg.streamTimeout > 0 {
		sctx, cancel = context.WithTimeout(ctx, f.cfg.streamTimeout)
	}
	// Envoy's gRPC client has no receive limit; grpc-go's default is 4 MiB.
	stream, err := procv3.NewExternalProcessorClient(conn).Process(sctx,
		grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32))
	if err != nil {
		cancel()
		return err
	}
	f.stream, f.cancel = stream, cancel
	f.recv = make(chan recvResult, 16)
	f.sim.count("ext_proc.streams_started")
	go func() {
		for {
			m, err := stream.Recv()
			select {
			case f.recv <- recvResult{m, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return nil
}

// send sends one message, adding protocol_config to the first message,
// attributes to the first message of each direction and metadata_context
// to every message.
func (f *extProcFilter) send(ctx context.Context, req *procv3.ProcessingRequest, dir direction) *localReply {
	if !f.opened {
		if err := f.open(ctx); err != nil {
			return f.grpcFailure(err)
		}
	}
	if !f.protocolSent {
		f.protocolSent = true
		req.ProtocolConfig = &procv3.ProtocolConfiguration{
			RequestBodyMode:  f.mode.body[dirRequest],
			ResponseBodyMode: f.mode.body[dirResponse],
		}
	}
	if !f.attrsSent[dir] {
		f.attrsSent[dir] = true
		exprs := f.cfg.reqAttrs
		if dir == dirResponse {
			exprs = f.cfg.respAttrs
		}
		if len(exprs) > 0 {
			st := &structpb.Struct{Fields: map[string]*structpb.Value{}}
			for _, e := range exprs {
				if v, ok := f.attrs.evaluate(e); ok {
					st.Fields[e] = v
				}
			}
			req.Attributes = map[string]*structpb.Struct{attributesKey: st}
		}
	}
	req.MetadataContext = f.meta.forward(f.forwarding)
	if err := f.stream.Send(req); err != nil {
		// The real status comes from Recv.
		deadline := time.After(time.Second)
		for {
			select {
			case r := <-f.recv:
				if r.err != nil {
					return f.recvFailure(r.err)
				}
			case <-deadline:
				return f.grpcFailure(err)
			}
		}
	}
	return nil
}

// grpcFailure handles a stream that could not be opened or failed.
func (f *extProcFilter) grpcFailure(err error) *localReply {
	f.sim.count("ext_proc.streams_failed")
	f.close()
	if f.failureModeAllow {
		f.disabled = true
		f.sim.count("ext_proc.failure_mode_allowed")
		return nil
	}
	st := status.Convert(err)
	return f.sendImmediate(&localReply{status: f.cfg.statusOnError, details: fmt.Sprintf("ext_proc_error_gRPC_error_%d{%s}", st.Code(), st.Message())})
}

// recvFailure classifies a Recv error: a clean close means "continue
// without ext_proc" (onGrpcClose), anything else is a gRPC error.
func (f *extProcFilter) recvFailure(err error) *localReply {
	if errors.Is(err, io.EOF) {
		f.sim.count("ext_proc.streams_closed")
		f.close()
		f.disabled = true
		return nil
	}
	return f.grpcFailure(err)
}

// spurious handles a reply that does not answer the outstanding message.
func (f *extProcFilter) spurious() *localReply {
	f.sim.count("ext_proc.spurious_msgs_received")
	f.close()
	if f.failureModeAllow {
		f.disabled = true
		return nil
	}
	return f.sendImmediate(&localReply{status: f.cfg.statusOnError, details: "ext_proc_error_spurious_message"})
}

// timeout handles an expired message timer.
func (f *extProcFilter) timeout() *localReply {
	f.sim.count("ext_proc.message_timeouts")
	f.close()
	if f.failureModeAllow {
		f.disabled = true
		return nil
	}
	return f.sendImmediate(&localReply{status: 504, details: "ext_proc_error_per-message_timeout_exceeded"})
}

// invalid handles a reply Envoy cannot apply; failure_mode_allow does not
// help here.
func (f *extProcFilter) invalid(err error) *localReply {
	f.sim.log.Debug("ext_proc invalid reply", "error", err)
	f.close()
	return f.sendImmediate(&localReply{status: f.cfg.statusOnError, details: "ext_proc_error_invalid_mutation"})
}

// immediate turns an ImmediateResponse into a local reply.
func (f *extProcFilter) immediate(ir *procv3.ImmediateResponse) *localReply {
	f.close()
	code := int(ir.GetStatus().GetCode())
	if code < 200 {
		code = 200
	}
	h := &headerMap{}
	if len(ir.GetBody()) > 0 {
		h.set("content-type", "text/plain")
	}
	if _, err := applyHeaderMutation(h, ir.GetHeaders(), f.cfg.checker, false); err != nil {
		return f.invalid(err)
	}
	return f.sendImmediate(&localReply{status: code, headers: h, body: ir.GetBody(), details: ir.GetDetails(), fromRouter: f.cfg.upstream})
}

// sendImmediate is Filter::sendImmediateResponse, which every reply above
// goes through. Before 1.37 it returned early in an upstream filter, after
// the caller had closed the stream and while the filter still held the
// request or response: nothing resumes it (Envoy AI Gateway #840).
func (f *extProcFilter) sendImmediate(lr *localReply) *localReply {
	if f.cfg.upstream && f.sim.upstreamImmediateIgnored() {
		f.sim.count("ext_proc.send_immediate_resp_upstream_ignored")
		lr.ignored = true
	}
	return lr
}

// await waits for the reply to the outstanding message of phase p.
// Result: a reply; or a local reply; or neither (continue without ext_proc).
func (f *extProcFilter) await(ctx context.Context, p phase) (*procv3.ProcessingResponse, *localReply) {
	timer := time.NewTimer(f.cfg.messageTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			f.close()
			return nil, &localReply{status: 499, details: "downstream_remote_disconnect"}
		case <-timer.C:
			return nil, f.timeout()
		case r := <-f.recv:
			if r.err != nil {
				return nil, f.recvFailure(r.err)
			}
			resp := r.msg
			if d := resp.GetOverrideMessageTimeout(); d != nil {
				if f.acceptTimeoutOverride(p.dir(), d.AsDuration()) {
					timer.Reset(d.AsDuration())
				}
				continue
			}
			if ir := resp.GetImmediateResponse(); ir != nil {
				if f.cfg.pb.GetDisableImmediateResponse() {
					return nil, f.spurious()
				}
				f.meta.merge(resp.GetDynamicMetadata(), f.receiving)
				return nil, f.immediate(ir)
			}
			if !matchesPhase(resp, p) {
				return nil, f.spurious()
			}
			f.meta.merge(resp.GetDynamicMetadata(), f.receiving)
			return resp, nil
		}
	}
}

// acceptTimeoutOverride applies Filter::onNewTimeout: the feature needs
// max_message_timeout, the value must lie in [1ms, max], once per state.
func (f *extProcFilter) acceptTimeoutOverride(dir direction, d time.Duration) bool {
	if f.cfg.maxMessageTimeout <= 0 || d < time.Millisecond || d > f.cfg.maxMessageTimeout || f.overridden[dir] {
		f.sim.count("ext_proc.override_message_timeout_ignored")
		return false
	}
	f.overridden[dir] = true
	f.sim.count("ext_proc.override_message_timeout_received")
	return true
}

// roundTrip sends one message and waits for its reply.
func (f *extProcFilter) roundTrip(ctx context.Context, req *procv3.ProcessingRequest, p phase) (*procv3.ProcessingResponse, *localReply) {
	if lr := f.send(ctx, req, p.dir()); lr != nil || f.disabled {
		return nil, lr
	}
	return f.await(ctx, p)
}

// stripContentLength is ProcessorState::shouldRemoveContentLength.
func (f *extProcFilter) stripContentLength(dir direction) bool {
	if f.cfg.pb.GetAllowContentLengthHeader() {
		return false
	}
	switch f.mode.body[dir] {
	case extprocv3.ProcessingMode_STREAMED:
		return true
	case extprocv3.ProcessingMode_BUFFERED:
		return f.mode.headers[dir] == extprocv3.ProcessingMode_SKIP
	}
	return false
}

// modeOverrideAllowed lists the conditions of Filter::onReceiveMessage.
func (f *extProcFilter) modeOverrideAllowed(m *extprocv3.ProcessingMode) bool {
	if !f.cfg.pb.GetAllowModeOverride() {
		return false
	}
	allowed := f.cfg.pb.GetAllowedOverrideModes()
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if a.GetRequestBodyMode() == m.GetRequestBodyMode() && a.GetResponseHeaderMode() == m.GetResponseHeaderMode() &&
			a.GetResponseBodyMode() == m.GetResponseBodyMode() && a.GetRequestTrailerMode() == m.GetRequestTrailerMode() &&
			a.GetResponseTrailerMode() == m.GetResponseTrailerMode() {
			return true
		}
	}
	return false
}

// applyCommon handles the parts of a CommonResponse shared by header and
// body replies: the header mutation (when allowed) and clear_route_cache.
func (f *extProcFilter) applyCommon(dir direction, h *headerMap, cr *procv3.CommonResponse, headersHeld bool) *localReply {
	if headersHeld && cr.GetHeaderMutation() != nil {
		res, err := applyHeaderMutation(h, cr.GetHeaderMutation(), f.cfg.checker, f.stripContentLength(dir))
		if err != nil {
			return f.invalid(err)
		}
		for range res.rejected {
			f.sim.count("ext_proc.rejected_header_mutations")
		}
	}
	if !cr.GetClearRouteCache() && f.cfg.pb.GetRouteCacheAction() != extprocv3.ExternalProcessor_CLEAR {
		return nil
	}
	switch {
	case f.cfg.upstream:
		f.sim.count("ext_proc.clear_route_cache_upstream_ignored")
	case dir != dirRequest:
		f.sim.count("ext_proc.clear_route_cache_ignored")
	case cr.GetHeaderMutation() == nil:
		f.sim.count("ext_proc.clear_route_cache_ignored")
	case f.cfg.pb.GetDisableClearRouteCache() || f.cfg.pb.GetRouteCacheAction() == extprocv3.ExternalProcessor_RETAIN:
		f.sim.count("ext_proc.clear_route_cache_disabled")
	default:
		f.clearRoute = true
	}
	return nil
}

// onHeaders runs the headers phase of one direction. replaced is non-nil
// when a CONTINUE_AND_REPLACE reply supplied a new body.
func (f *extProcFilter) onHeaders(ctx context.Context, dir direction, h *headerMap, endOfStream bool) (replaced []byte, lr *localReply) {
	if f.disabled || f.done[dir] {
		return nil, nil
	}
	if !endOfStream && f.stripContentLength(dir) {
		h.del("content-length")
	}
	if f.mode.headers[dir] != extprocv3.ProcessingMode_SEND {
		return nil, nil
	}
	hh := &procv3.HttpHeaders{Headers: h.proto(), EndOfStream: endOfStream}
	req := &procv3.ProcessingRequest{}
	p := phRequestHeaders
	if dir == dirRequest {
		req.Request = &procv3.ProcessingRequest_RequestHeaders{RequestHeaders: hh}
	} else {
		p = phResponseHeaders
		req.Request = &procv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hh}
	}
	resp, lr := f.roundTrip(ctx, req, p)
	if resp == nil {
		return nil, lr
	}
	if mo := resp.GetModeOverride(); mo != nil {
		if f.modeOverrideAllowed(mo) {
			f.mode.override(mo)
			f.sim.count("ext_proc.mode_override_applied")
		} else {
			f.sim.count("ext_proc.mode_override_ignored")
		}
	}
	cr := resp.GetRequestHeaders().GetResponse()
	if dir == dirResponse {
		cr = resp.GetResponseHeaders().GetResponse()
	}
	if !endOfStream && f.stripContentLength(dir) {
		h.del("content-length")
	}
	if lr := f.applyCommon(dir, h, cr, true); lr != nil {
		return nil, lr
	}
	if cr.GetStatus() == procv3.CommonResponse_CONTINUE_AND_REPLACE {
		f.done[dir] = true
		if bm := cr.GetBodyMutation(); bm != nil {
			h.del("content-length")
			if bm.GetClearBody() {
				return []byte{}, nil
			}
			return append([]byte{}, bm.GetBody()...), nil
		}
	}
	return nil, nil
}

// bodyReply applies a body reply to one buffered body or streamed chunk.
func (f *extProcFilter) bodyReply(dir direction, h *headerMap, resp *procv3.ProcessingResponse, in []byte, headersHeld bool) ([]byte, *localReply) {
	cr := resp.GetRequestBody().GetResponse()
	if dir == dirResponse {
		cr = resp.GetResponseBody().GetResponse()
	}
	// Body replies never look at status (no CONTINUE_AND_REPLACE here).
	if lr := f.applyCommon(dir, h, cr, headersHeld); lr != nil {
		return nil, lr
	}
	out := in
	if bm := cr.GetBodyMutation(); bm != nil {
		switch {
		case bm.GetStreamedResponse() != nil:
			return nil, f.spurious() // only for FULL_DUPLEX_STREAMED
		case bm.GetClearBody():
			out = []byte{}
		case bm.GetBody() != nil:
			out = bm.GetBody()
		}
	}
	return out, nil
}

// onBufferedBody runs a BUFFERED body phase: one message with the whole
// body and end_of_stream=true.
func (f *extProcFilter) onBufferedBody(ctx context.Context, dir direction, h *headerMap, body []byte) ([]byte, *localReply) {
	if f.disabled || f.done[dir] || f.mode.body[dir] != extprocv3.ProcessingMode_BUFFERED {
		return body, nil
	}
	hb := &procv3.HttpBody{Body: body, EndOfStream: true}
	req := &procv3.ProcessingRequest{}
	p := phRequestBody
	if dir == dirRequest {
		req.Request = &procv3.ProcessingRequest_RequestBody{RequestBody: hb}
	} else {
		p = phResponseBody
		req.Request = &procv3.ProcessingRequest_ResponseBody{ResponseBody: hb}
	}
	resp, lr := f.roundTrip(ctx, req, p)
	if resp == nil {
		return body, lr
	}
	out, lr := f.bodyReply(dir, h, resp, body, true)
	if lr != nil {
		return nil, lr
	}
	// validateContentLength: a kept content-length must match the body.
	if cl, ok := h.get("content-length"); ok {
		if n, err := strconv.Atoi(cl); err != nil || n != len(out) {
			f.close()
			return nil, f.sendImmediate(&localReply{status: f.cfg.statusOnError, details: "mismatch_between_content_length_and_the_length_of_the_mutated_body"})
		}
	}
	return out, nil
}

// chunk is one data callback of a streamed body.
type chunk struct {
	data []byte
	eos  bool
	err  error
}

// onStreamedBody runs a STREAMED body phase: one message per chunk,
// pipelined; replies re-inject chunks FIFO through sink. next yields the
// chunks; a chunk with err aborts.
func (f *extProcFilter) onStreamedBody(ctx context.Context, dir direction, h *headerMap, next func() chunk, sink func([]byte) error) (*localReply, error) {
	if f.disabled || f.done[dir] || f.mode.body[dir] != extprocv3.ProcessingMode_STREAMED {
		for {
			c := next()
			if c.err != nil {
				return nil, c.err
			}
			if err := sink(c.data); err != nil {
				return nil, err
			}
			if c.eos {
				return nil, nil
			}
		}
	}
	p := phRequestBody
	if dir == dirResponse {
		p = phResponseBody
	}
	chunks := make(chan chunk)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for {
			c := next()
			select {
			case chunks <- c:
			case <-rctx.Done():
				return
			}
			if c.eos || c.err != nil {
				return
			}
		}
	}()
	type pendingChunk struct {
		data []byte
		sent time.Time
	}
	var pending []pendingChunk
	eos := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	armTimer := func() {
		if len(pending) > 0 {
			timer.Reset(time.Until(pending[0].sent.Add(f.cfg.messageTimeout)))
		} else {
			timer.Reset(time.Hour)
		}
	}
	flush := func() error {
		for _, pc := range pending {
			if err := sink(pc.data); err != nil {
				return err
			}
		}
		pending = nil
		return nil
	}
	for !eos || len(pending) > 0 {
		var in chan chunk
		if !eos {
			in = chunks
		}
		var recv chan recvResult
		if !f.disabled {
			recv = f.recv
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case c := <-in:
			if c.err != nil {
				return nil, c.err
			}
			eos = c.eos
			if f.disabled {
				if err := sink(c.data); err != nil {
					return nil, err
				}
				continue
			}
			hb := &procv3.HttpBody{Body: c.data, EndOfStream: c.eos}
			req := &procv3.ProcessingRequest{}
			if dir == dirRequest {
				req.Request = &procv3.ProcessingRequest_RequestBody{RequestBody: hb}
			} else {
				req.Request = &procv3.ProcessingRequest_ResponseBody{ResponseBody: hb}
			}
			pending = append(pending, pendingChunk{c.data, time.Now()})
			if lr := f.send(ctx, req, dir); lr != nil {
				return lr, nil
			}
			if f.disabled {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			if len(pending) == 1 {
				armTimer()
			}
		case r := <-recv:
			var lr *localReply
			switch {
			case r.err != nil:
				lr = f.recvFailure(r.err)
			case r.msg.GetOverrideMessageTimeout() != nil:
				if len(pending) > 0 && f.acceptTimeoutOverride(dir, r.msg.GetOverrideMessageTimeout().AsDuration()) {
					timer.Reset(r.msg.GetOverrideMessageTimeout().AsDuration())
				}
				continue
			case r.msg.GetImmediateResponse() != nil && !f.cfg.pb.GetDisableImmediateResponse():
				f.meta.merge(r.msg.GetDynamicMetadata(), f.receiving)
				return f.immediate(r.msg.GetImmediateResponse()), nil
			case len(pending) == 0 || !matchesPhase(r.msg, p):
				lr = f.spurious()
			default:
				f.meta.merge(r.msg.GetDynamicMetadata(), f.receiving)
				out, blr := f.bodyReply(dir, h, r.msg, pending[0].data, false)
				if blr != nil {
					return blr, nil
				}
				pending = pending[1:]
				if err := sink(out); err != nil {
					return nil, err
				}
				armTimer()
				continue
			}
			if lr != nil {
				return lr, nil
			}
			if err := flush(); err != nil { // continue without ext_proc
				return nil, err
			}
		case <-timer.C:
			if len(pending) == 0 {
				continue
			}
			if lr := f.timeout(); lr != nil {
				return lr, nil
			}
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}
