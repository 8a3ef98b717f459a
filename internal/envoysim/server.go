package envoysim

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

// request is one downstream request's state: the shared header map, the
// router's pristine body buffer and the shared dynamic metadata.
type request struct {
	headers *headerMap
	body    []byte
	route   *route
	meta    *dynMetadata
	// The latest attempt: Envoy's StreamInfo holds its upstream host, which
	// CEL's xds.upstream_host_metadata reads in downstream filters too.
	attempts     int
	upstreamHost *host
	upstreamCl   *cluster
}

// response is what reaches the router-level filters' encode path.
type response struct {
	headers *headerMap // with :status
	body    io.Reader  // nil: no body
	release func()     // ends the attempt; nil for local replies
}

func (r *response) close() {
	if r.release != nil {
		r.release()
	}
}

// chunkSize is the read size for streamed bodies: one read, one data
// callback, as with Envoy's codec.
const chunkSize = 32 << 10

// A read that returns data together with a failure yields the data first
// and the failure on the next call: Envoy's codec hands decoded bytes to
// the filters before it processes the reset that followed them.
func reader(r io.Reader) func() chunk {
	buf := make([]byte, chunkSize)
	var failed error
	return func() chunk {
		if r == nil {
			return chunk{eos: true}
		}
		if failed != nil {
			return chunk{err: failed}
		}
		n, err := r.Read(buf)
		c := chunk{data: append([]byte(nil), buf[:n]...)}
		switch {
		case errors.Is(err, io.EOF):
			c.eos = true
		case err != nil && n > 0:
			failed = err
		case err != nil:
			c.err = err
		}
		return c
	}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// ServeHTTP plays the HTTP connection manager: route, router-level
// filters, router, and the filters' encode path.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	h := fromHTTP(r.Header)
	h.add(":authority", r.Host)
	h.add(":path", r.RequestURI)
	h.add(":method", r.Method)
	h.add(":scheme", "http")
	if r.ContentLength > 0 && !h.has("content-length") {
		h.add("content-length", strconv.FormatInt(r.ContentLength, 10))
	}
	if !h.has("x-request-id") {
		h.add("x-request-id", newRequestID())
	}
	h.set("x-forwarded-proto", "http")
	endOfStream := r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody
	rq := &request{headers: h, meta: &dynMetadata{}}
	rq.route = s.routes.resolve(h)

	var f *extProcFilter
	if len(s.hcm) == 1 {
		var per *extprocv3.ExtProcPerRoute
		if rq.route != nil {
			per = rq.route.extProc
			if per == nil {
				per = rq.route.vhost.extProc
			}
		}
		f = s.newFilter(s.hcm[0], per, rq.meta, &attrContext{reqHeaders: h, route: rq.route})
	}
	if f != nil {
		defer f.close()
	}
	if lr := s.decode(ctx, r, rq, f, endOfStream); lr != nil {
		if lr.fromRouter {
			s.encode(ctx, w, rq, f, s.localResponse(rq, lr))
			return
		}
		s.writeLocal(w, lr)
		return
	}
	resp, lr := s.forward(ctx, rq)
	if lr != nil {
		resp = s.localResponse(rq, lr)
	}
	defer resp.close()
	s.encode(ctx, w, rq, f, resp)
}

// decode runs the request through the router-level filter and fills the
// router's body buffer.
func (s *Sim) decode(ctx context.Context, r *http.Request, rq *request, f *extProcFilter, endOfStream bool) *localReply {
	reresolve := func() {
		if f != nil && f.clearRoute {
			f.clearRoute = false
			rq.route = s.routes.resolve(rq.headers)
			f.attrs.route = rq.route
			s.count("ext_proc.route_cache_cleared")
		}
	}
	var replaced []byte
	if f != nil {
		var lr *localReply
		if replaced, lr = f.onHeaders(ctx, dirRequest, rq.headers, endOfStream); lr != nil {
			return lr
		}
		reresolve()
	}
	limit := s.requestLimit(rq.route)
	switch {
	case replaced != nil:
		rq.body = replaced
		_, _ = io.Copy(io.Discard, r.Body) // later body is drained
	case endOfStream:
	case f != nil && f.mode.body[dirRequest] == extprocv3.ProcessingMode_BUFFERED && !f.disabled && !f.done[dirRequest]:
		body, tooLarge, err := readLimited(r.Body, int64(limit))
		if err != nil {
			return &localReply{status: 400, details: "downstream_read_error"}
		}
		if tooLarge {
			return &localReply{status: 413, body: []byte("Payload Too Large"), details: "request_payload_too_large"}
		}
		out, lr := f.onBufferedBody(ctx, dirRequest, rq.headers, body)
		if lr != nil {
			return lr
		}
		rq.body = out
		reresolve()
	default:
		var buf bytes.Buffer
		var lr *localReply
		var err error
		if f != nil {
			lr, err = f.onStreamedBody(ctx, dirRequest, rq.headers, reader(r.Body), func(b []byte) error {
				buf.Write(b)
				return nil
			})
		} else {
			_, err = io.Copy(&buf, r.Body)
		}
		if err != nil {
			return &localReply{status: 400, details: "downstream_read_error"}
		}
		if lr != nil {
			return lr
		}
		rq.body = buf.Bytes()
		reresolve()
	}
	return nil
}

// requestLimit is the route's request_body_buffer_limit, else the
// listener's per_connection_buffer_limit_bytes.
func (s *Sim) requestLimit(rt *route) uint64 {
	if rt != nil && rt.bufferLimit > 0 {
		return rt.bufferLimit
	}
	if rt != nil && rt.vhost.bufferLimit > 0 {
		return rt.vhost.bufferLimit
	}
	return uint64(s.limit)
}

// localResponse renders a local reply as a response, with the route's
// response_headers_to_add.
func (s *Sim) localResponse(rq *request, lr *localReply) *response {
	h := &headerMap{}
	h.add(":status", strconv.Itoa(lr.status))
	if lr.headers != nil {
		for _, e := range lr.headers.h {
			h.add(e.key, e.value)
		}
	} else if len(lr.body) > 0 {
		h.set("content-type", "text/plain")
	}
	h.set("content-length", strconv.Itoa(len(lr.body)))
	if lr.fromRouter {
		s.addRouteHeaders(rq, h)
	}
	var body io.Reader
	if len(lr.body) > 0 {
		body = bytes.NewReader(lr.body)
	}
	return &response{headers: h, body: body}
}

func (s *Sim) addRouteHeaders(rq *request, h *headerMap) {
	if rq.route == nil {
		return
	}
	for _, o := range rq.route.respAdd {
		k, v := strings.ToLower(o.GetHeader().GetKey()), o.GetHeader().GetValue()
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			h.set(k, v)
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !h.has(k) {
				h.add(k, v)
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if h.has(k) {
				h.set(k, v)
			}
		default:
			h.add(k, v)
		}
	}
}

// writeLocal sends a local reply that bypasses the filters.
func (s *Sim) writeLocal(w http.ResponseWriter, lr *localReply) {
	if lr.status == 499 {
		return // the client is gone
	}
	resp := s.localResponse(nil, lr)
	writeHeaders(w, resp.headers)
	_, _ = w.Write(lr.body)
}

func writeHeaders(w http.ResponseWriter, h *headerMap) {
	h.toHTTP(w.Header())
	code, _ := strconv.Atoi(valueOf(h, ":status"))
	if code == 0 {
		code = 200
	}
	w.WriteHeader(code)
}

func valueOf(h *headerMap, k string) string {
	v, _ := h.get(k)
	return v
}

// abort resets the downstream stream after the headers went out.
func abort() { panic(http.ErrAbortHandler) }

// encode runs the response through the router-level filter and writes it,
// flushing every chunk so streams reach the client as produced.
func (s *Sim) encode(ctx context.Context, w http.ResponseWriter, rq *request, f *extProcFilter, resp *response) {
	eos := resp.body == nil
	// Router::Filter::onUpstreamHeaders adds the attempt count to upstream
	// responses (not to local replies) when the virtual host asks for it.
	if resp.release != nil && rq.route != nil && rq.route.vhost.includeAttemptCountInResponse && rq.attempts > 0 {
		resp.headers.set("x-envoy-attempt-count", strconv.Itoa(rq.attempts))
	}
	if f != nil && f.attrs != nil {
		f.attrs.respHeaders = resp.headers
		if rq.upstreamHost != nil {
			f.attrs.host, f.attrs.cluster = rq.upstreamHost, rq.upstreamCl
		}
	}
	if f != nil {
		replaced, lr := f.onHeaders(ctx, dirResponse, resp.headers, eos)
		if lr != nil {
			s.writeLocal(w, lr)
			return
		}
		if replaced != nil {
			resp.headers.set("content-length", strconv.Itoa(len(replaced)))
			resp.headers.del("content-length") // CONTINUE_AND_REPLACE drops it
			writeHeaders(w, resp.headers)
			_, _ = w.Write(replaced)
			return
		}
	}
	rc := http.NewResponseController(w)
	if f != nil && !eos && f.mode.body[dirResponse] == extprocv3.ProcessingMode_BUFFERED && !f.disabled && !f.done[dirResponse] {
		body, tooLarge, err := readLimited(resp.body, s.limit)
		if err != nil {
			abortOrLocal(w, s, "upstream_reset_after_headers")
			return
		}
		if tooLarge {
			s.writeLocal(w, &localReply{status: 500, body: []byte("Internal Server Error"), details: "response_payload_too_large"})
			return
		}
		out, lr := f.onBufferedBody(ctx, dirResponse, resp.headers, body)
		if lr != nil {
			s.writeLocal(w, lr)
			return
		}
		writeHeaders(w, resp.headers)
		_, _ = w.Write(out)
		return
	}
	writeHeaders(w, resp.headers)
	_ = rc.Flush()
	if eos {
		return
	}
	sink := func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	var lr *localReply
	var err error
	if f != nil {
		lr, err = f.onStreamedBody(ctx, dirResponse, resp.headers, reader(resp.body), sink)
	} else {
		next := reader(resp.body)
		for {
			c := next()
			if c.err != nil {
				err = c.err
				break
			}
			if err = sink(c.data); err != nil || c.eos {
				break
			}
		}
	}
	if lr != nil || err != nil {
		// Headers are out: Envoy can only reset the stream.
		abort()
	}
}

func abortOrLocal(w http.ResponseWriter, s *Sim, details string) {
	s.writeLocal(w, &localReply{status: 503, body: []byte("upstream connect error or disconnect/reset before headers. reset reason: remote reset"), details: details})
}

// forward is the router: cluster choice, attempts, retries.
func (s *Sim) forward(ctx context.Context, rq *request) (*response, *localReply) {
	rt := rq.route
	if rt == nil {
		return nil, &localReply{status: 404, details: "route_not_found", fromRouter: true}
	}
	if rt.direct != nil {
		return nil, &localReply{status: rt.direct.status, body: []byte(rt.direct.body), details: "direct_response", fromRouter: true}
	}
	name := rt.cluster
	if rt.clusterHeader != "" {
		name = valueOf(rq.headers, rt.clusterHeader) // first value only
	}
	cl := s.cluster(name)
	if cl == nil {
		return nil, &localReply{status: rt.notFoundCode, details: "cluster_not_found", fromRouter: true}
	}
	rs := newRetryState(rt.retry)
	if uint64(len(rq.body)) > s.requestLimit(rt) {
		rs.remaining = 0 // retry_or_shadow_abandoned: the body cannot be replayed
		s.count("retry_or_shadow_abandoned")
	}
	rctx, cancel := context.WithCancel(ctx)
	var routeTimedOut atomic.Bool
	var timer *time.Timer
	if rt.timeout > 0 {
		timer = time.AfterFunc(rt.timeout, func() {
			routeTimedOut.Store(true)
			cancel()
		})
		rq.headers.set("x-envoy-expected-rq-timeout-ms", strconv.FormatInt(rt.timeout.Milliseconds(), 10))
	}
	if rs.perTryTimeout > 0 {
		rq.headers.set("x-envoy-expected-rq-timeout-ms", strconv.FormatInt(rs.perTryTimeout.Milliseconds(), 10))
	}
	finish := func() {
		if timer != nil {
			timer.Stop()
		}
		cancel()
	}
	for n := 1; ; n++ {
		var rsArg *retryState
		if n > 1 {
			rsArg = rs
		}
		h := cl.chooseHost(rsArg)
		if h == nil {
			finish()
			return nil, &localReply{status: 503, body: []byte("no healthy upstream"), details: "no_healthy_upstream", fromRouter: true}
		}
		rs.attemptedHosts = append(rs.attemptedHosts, h)
		s.count("upstream_rq_total")
		res := s.attempt(rctx, rq, cl, h, n, rs.perTryTimeout)
		if routeTimedOut.Load() {
			res.discard()
			finish()
			return nil, &localReply{status: 504, body: []byte("upstream request timeout"), details: "upstream_response_timeout", fromRouter: true}
		}
		if ctx.Err() != nil {
			res.discard()
			finish()
			return nil, &localReply{status: 499, details: "downstream_remote_disconnect"}
		}
		switch {
		case res.local != nil:
			// Upstream filters' local replies are final, never retried.
			finish()
			return nil, res.local
		case res.resp == nil:
			cl.recordResult(h, 503)
			if rs.wouldRetryReset(res.reset) && rs.take() {
				s.count("upstream_rq_retry")
				s.sleep(rctx, rs)
				continue
			}
			finish()
			if res.reset == resetPerTryTimeout {
				return nil, &localReply{status: 504, body: []byte("upstream request timeout"), details: "upstream_per_try_timeout", fromRouter: true}
			}
			reason := "remote reset"
			if res.reset == resetConnectFailure {
				reason = "connection failure"
			}
			return nil, &localReply{status: 503, body: []byte("upstream connect error or disconnect/reset before headers. reset reason: " + reason), details: "upstream_reset_before_response_started", fromRouter: true}
		}
		code, _ := strconv.Atoi(valueOf(res.resp.headers, ":status"))
		cl.recordResult(h, code)
		if rs.wouldRetryHeaders(res.resp.headers, code) && rs.take() {
			// The retried attempt's response never reaches the client.
			res.discard()
			s.count("upstream_rq_retry")
			s.sleep(rctx, rs)
			continue
		}
		s.addRouteHeaders(rq, res.resp.headers)
		release := res.resp.release
		res.resp.release = func() {
			release()
			finish()
		}
		return res.resp, nil
	}
}

func (s *Sim) sleep(ctx context.Context, rs *retryState) {
	if s.opts.BackoffDisabled {
		return
	}
	t := time.NewTimer(rs.backoff(s.randUint64()))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// attemptResult is one attempt's outcome: a response, a reset or an
// upstream filter's local reply.
type attemptResult struct {
	resp  *response
	reset resetReason
	local *localReply
}

func (a attemptResult) discard() {
	if a.resp != nil {
		a.resp.close()
	}
}

// attempt is one UpstreamRequest: a fresh upstream filter instance (and
// ext_proc stream) that sees the shared header map as the previous attempt
// left it and a copy of the pristine body, then the codec.
func (s *Sim) attempt(ctx context.Context, rq *request, cl *cluster, h *host, n int, perTry time.Duration) attemptResult {
	h.active.Add(1)
	actx, cancel := context.WithCancel(ctx)
	var perTryFired atomic.Bool
	var timer *time.Timer
	if perTry > 0 {
		// ext_proc time counts toward the per-try timeout.
		timer = time.AfterFunc(perTry, func() {
			perTryFired.Store(true)
			cancel()
		})
	}
	var uf *extProcFilter
	if len(cl.upstream) == 1 {
		uf = s.newFilter(cl.upstream[0], nil, rq.meta, &attrContext{reqHeaders: rq.headers, route: rq.route, cluster: cl, host: h})
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if timer != nil {
				timer.Stop()
			}
			if uf != nil {
				uf.close()
			}
			cancel()
			h.active.Add(-1)
		})
	}
	fail := func(r resetReason) attemptResult {
		release()
		return attemptResult{reset: r}
	}
	local := func(lr *localReply) attemptResult {
		if lr.ignored {
			// Pre-1.37 the filter never resumes: only the per-try or route
			// timeout, or the client going away, ends the attempt.
			<-actx.Done()
		}
		release()
		switch {
		case perTryFired.Load():
			return attemptResult{reset: resetPerTryTimeout}
		case lr.ignored:
			return attemptResult{reset: resetRemote} // forward sees the route timeout or the client first
		}
		lr.fromRouter = true
		return attemptResult{local: lr}
	}
	rq.attempts, rq.upstreamHost, rq.upstreamCl = n, h, cl
	if rq.route.vhost.includeAttemptCount {
		rq.headers.set("x-envoy-attempt-count", strconv.Itoa(n))
	}
	body := append([]byte(nil), rq.body...)
	if uf != nil {
		replaced, lr := uf.onHeaders(actx, dirRequest, rq.headers, len(body) == 0)
		if lr != nil {
			return local(lr)
		}
		switch {
		case replaced != nil:
			body = replaced
		case len(body) > 0 && uf.mode.body[dirRequest] == extprocv3.ProcessingMode_BUFFERED:
			if body, lr = uf.onBufferedBody(actx, dirRequest, rq.headers, body); lr != nil {
				return local(lr)
			}
		case len(body) > 0:
			var buf bytes.Buffer
			next := reader(bytes.NewReader(body))
			lr, err := uf.onStreamedBody(actx, dirRequest, rq.headers, next, func(b []byte) error {
				buf.Write(b)
				return nil
			})
			if lr != nil {
				return local(lr)
			}
			if err != nil {
				return fail(resetRemote)
			}
			body = buf.Bytes()
		}
		if !uf.needsMore() {
			uf.close() // 1.37+: closed as soon as nothing more is needed
		}
	}
	// auto_host_rewrite happens at onPoolReady, after the upstream filters.
	if rq.route.autoHostRw && h.hostname != "" {
		rq.headers.set(":authority", h.hostname)
	} else if rq.route.hostLiteral != "" {
		rq.headers.set(":authority", rq.route.hostLiteral)
	}
	req, err := s.upstreamRequest(actx, rq.headers, cl, h, body)
	if err != nil {
		return local(&localReply{status: 500, details: "invalid_upstream_request"})
	}
	hr, err := h.transport.RoundTrip(req)
	if err != nil {
		var ce *connectError
		switch {
		case perTryFired.Load():
			return fail(resetPerTryTimeout)
		case errors.As(err, &ce):
			return fail(resetConnectFailure)
		}
		return fail(resetRemote)
	}
	respH := &headerMap{}
	respH.add(":status", strconv.Itoa(hr.StatusCode))
	for _, e := range fromHTTP(hr.Header).h {
		respH.add(e.key, e.value)
	}
	if hr.ContentLength >= 0 && !respH.has("content-length") && hr.Request.Method != http.MethodHead {
		respH.add("content-length", strconv.FormatInt(hr.ContentLength, 10))
	}
	var respBody io.Reader = hr.Body
	if hr.ContentLength == 0 {
		respBody = nil
	}
	prevRelease := release
	release = func() {
		_ = hr.Body.Close()
		prevRelease()
	}
	if uf != nil && uf.needsMore() {
		replaced, lr := uf.onHeaders(actx, dirResponse, respH, respBody == nil)
		if lr != nil {
			return local(lr)
		}
		switch {
		case replaced != nil:
			respBody = bytes.NewReader(replaced)
		case respBody != nil && uf.mode.body[dirResponse] == extprocv3.ProcessingMode_BUFFERED:
			b, tooLarge, err := readLimited(respBody, s.limit)
			if err != nil {
				return fail(resetRemote)
			}
			if tooLarge {
				return local(&localReply{status: 500, details: "response_payload_too_large"})
			}
			if b, lr = uf.onBufferedBody(actx, dirResponse, respH, b); lr != nil {
				return local(lr)
			}
			respBody = bytes.NewReader(b)
		case respBody != nil && uf.mode.body[dirResponse] == extprocv3.ProcessingMode_STREAMED:
			pr, pw := io.Pipe()
			src := respBody
			go func() {
				lr, err := uf.onStreamedBody(actx, dirResponse, respH, reader(src), func(b []byte) error {
					_, err := pw.Write(b)
					return err
				})
				if lr != nil && lr.ignored && err == nil {
					<-actx.Done() // the body stalls until the route timeout or the client ends it
					err = actx.Err()
				}
				if lr != nil && err == nil {
					err = fmt.Errorf("upstream ext_proc failed mid-stream: %s", lr.details)
				}
				pw.CloseWithError(err)
			}()
			respBody = pr
		}
	}
	if timer != nil {
		timer.Stop() // the response has started
	}
	return attemptResult{resp: &response{headers: respH, body: respBody, release: release}}
}

// upstreamRequest renders the shared header map and body as an HTTP/1.1
// request to the endpoint.
func (s *Sim) upstreamRequest(ctx context.Context, h *headerMap, cl *cluster, hst *host, body []byte) (*http.Request, error) {
	scheme := "http"
	if cl.tls != nil {
		scheme = "https"
	}
	path := valueOf(h, ":path")
	req, err := http.NewRequestWithContext(ctx, valueOf(h, ":method"), scheme+"://"+hst.addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Host = valueOf(h, ":authority")
	req.Header = http.Header{}
	h.toHTTP(req.Header)
	req.Header.Del("content-length")
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // Go would add its own
	}
	switch cl, ok := h.get("content-length"); {
	case ok:
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil {
			return nil, err
		}
		req.ContentLength = n
	case len(body) == 0:
		req.ContentLength = 0
		req.Body = http.NoBody
	default:
		req.ContentLength = -1 // HTTP/1 goes chunked without content-length
	}
	return req, nil
}
