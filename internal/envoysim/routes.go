package envoysim

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// headerMatcher is a compiled route HeaderMatcher.
type headerMatcher struct {
	name    string
	present *bool
	exact   *string
	prefix  *string
	regex   *regexp.Regexp
	invert  bool
}

func newHeaderMatcher(hm *routev3.HeaderMatcher) (*headerMatcher, error) {
	m := &headerMatcher{name: strings.ToLower(hm.GetName()), invert: hm.GetInvertMatch()}
	switch s := hm.GetHeaderMatchSpecifier().(type) {
	case nil:
		t := true
		m.present = &t
	case *routev3.HeaderMatcher_PresentMatch:
		m.present = &s.PresentMatch
	case *routev3.HeaderMatcher_ExactMatch:
		//lint:ignore SA1019 deprecated but still accepted by Envoy.
		m.exact = &s.ExactMatch
	case *routev3.HeaderMatcher_PrefixMatch:
		//lint:ignore SA1019 deprecated but still accepted by Envoy.
		m.prefix = &s.PrefixMatch
	case *routev3.HeaderMatcher_StringMatch:
		sm := s.StringMatch
		if sm.GetIgnoreCase() {
			return nil, fmt.Errorf("header %q: ignore_case is not supported by envoysim", m.name)
		}
		switch p := sm.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			m.exact = &p.Exact
		case *matcherv3.StringMatcher_Prefix:
			m.prefix = &p.Prefix
		case *matcherv3.StringMatcher_SafeRegex:
			re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
			if err != nil {
				return nil, fmt.Errorf("header %q: %w", m.name, err)
			}
			m.regex = re
		default:
			return nil, fmt.Errorf("header %q: string_match %T is not supported by envoysim", m.name, p)
		}
	default:
		return nil, fmt.Errorf("header %q: %T is not supported by envoysim", m.name, s)
	}
	return m, nil
}

// matches follows Envoy: multiple values are joined with "," for value
// matches; present_match false means "absent".
func (m *headerMatcher) matches(h *headerMap) bool {
	vs := h.values(m.name)
	var ok bool
	switch {
	case m.present != nil:
		ok = (len(vs) > 0) == *m.present
	case len(vs) == 0:
		return false // a missing header never matches a value matcher, inverted or not
	default:
		v := strings.Join(vs, ",")
		switch {
		case m.exact != nil:
			ok = v == *m.exact
		case m.prefix != nil:
			ok = strings.HasPrefix(v, *m.prefix)
		default:
			ok = m.regex.MatchString(v)
		}
	}
	return ok != m.invert
}

// route is a compiled Route.
type route struct {
	name          string
	prefix        *string
	path          *string
	regex         *regexp.Regexp
	headers       []*headerMatcher
	cluster       string
	clusterHeader string
	notFoundCode  int
	direct        *directResponse
	timeout       time.Duration
	retry         *retryPolicy
	autoHostRw    bool
	hostLiteral   string
	bufferLimit   uint64 // request_body_buffer_limit; 0 = listener limit
	extProc       *extprocv3.ExtProcPerRoute
	respAdd       []*corev3.HeaderValueOption
	vhost         *vhost
}

type directResponse struct {
	status int
	body   string
}

type vhost struct {
	name                string
	domains             []string
	includeAttemptCount bool
	// includeAttemptCountInResponse adds x-envoy-attempt-count to upstream
	// responses.
	includeAttemptCountInResponse bool
	bufferLimit                   uint64
	routes                        []*route
	extProc                       *extprocv3.ExtProcPerRoute
}

func newRoute(r *routev3.Route, vh *vhost) (*route, error) {
	rt := &route{name: r.GetName(), vhost: vh, respAdd: r.GetResponseHeadersToAdd(), bufferLimit: r.GetRequestBodyBufferLimit().GetValue()}
	switch p := r.GetMatch().GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		rt.prefix = &p.Prefix
	case *routev3.RouteMatch_Path:
		rt.path = &p.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		if err != nil {
			return nil, err
		}
		rt.regex = re
	default:
		return nil, fmt.Errorf("path specifier %T is not supported by envoysim", p)
	}
	if r.GetMatch().GetCaseSensitive() != nil && !r.GetMatch().GetCaseSensitive().GetValue() {
		return nil, fmt.Errorf("case-insensitive matching is not supported by envoysim")
	}
	for _, hm := range r.GetMatch().GetHeaders() {
		m, err := newHeaderMatcher(hm)
		if err != nil {
			return nil, err
		}
		rt.headers = append(rt.headers, m)
	}
	switch a := r.GetAction().(type) {
	case *routev3.Route_DirectResponse:
		rt.direct = &directResponse{status: int(a.DirectResponse.GetStatus()), body: a.DirectResponse.GetBody().GetInlineString()}
		if b := a.DirectResponse.GetBody(); b != nil && b.GetInlineBytes() != nil {
			rt.direct.body = string(b.GetInlineBytes())
		}
	case *routev3.Route_Route:
		ra := a.Route
		switch c := ra.GetClusterSpecifier().(type) {
		case *routev3.RouteAction_Cluster:
			rt.cluster = c.Cluster
		case *routev3.RouteAction_ClusterHeader:
			rt.clusterHeader = strings.ToLower(c.ClusterHeader)
		default:
			return nil, fmt.Errorf("cluster specifier %T is not supported by envoysim", c)
		}
		rt.notFoundCode = 503
		if ra.GetClusterNotFoundResponseCode() == routev3.RouteAction_NOT_FOUND {
			rt.notFoundCode = 404
		} else if ra.GetClusterNotFoundResponseCode() == routev3.RouteAction_INTERNAL_SERVER_ERROR {
			rt.notFoundCode = 500
		}
		rt.timeout = 15 * time.Second
		if t := ra.GetTimeout(); t != nil {
			rt.timeout = t.AsDuration()
		}
		rt.autoHostRw = ra.GetAutoHostRewrite().GetValue()
		rt.hostLiteral = ra.GetHostRewriteLiteral()
		rp, err := newRetryPolicy(ra.GetRetryPolicy())
		if err != nil {
			return nil, err
		}
		rt.retry = rp
	default:
		return nil, fmt.Errorf("route action %T is not supported by envoysim", a)
	}
	if a := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_proc"]; a != nil {
		pr := &extprocv3.ExtProcPerRoute{}
		if err := a.UnmarshalTo(pr); err != nil {
			return nil, fmt.Errorf("typed_per_filter_config: %w", err)
		}
		rt.extProc = pr
	}
	return rt, nil
}

func (r *route) matches(h *headerMap) bool {
	p, _ := h.get(":path")
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	switch {
	case r.prefix != nil && !strings.HasPrefix(p, *r.prefix),
		r.path != nil && p != *r.path,
		r.regex != nil && !r.regex.MatchString(p):
		return false
	}
	for _, m := range r.headers {
		if !m.matches(h) {
			return false
		}
	}
	return true
}

// domainMatches implements exact, "*", "*.suffix" and "prefix.*" domains.
func domainMatches(d, host string) bool {
	switch {
	case d == "*":
		return true
	case strings.HasPrefix(d, "*"):
		return strings.HasSuffix(host, d[1:])
	case strings.HasSuffix(d, "*"):
		return strings.HasPrefix(host, d[:len(d)-1])
	}
	return d == host
}

// routeTable is a compiled RouteConfiguration.
type routeTable struct{ vhosts []*vhost }

func newRouteTable(rc *routev3.RouteConfiguration) (*routeTable, error) {
	t := &routeTable{}
	for _, v := range rc.GetVirtualHosts() {
		vh := &vhost{name: v.GetName(), domains: v.GetDomains(), includeAttemptCount: v.GetIncludeRequestAttemptCount(), includeAttemptCountInResponse: v.GetIncludeAttemptCountInResponse(), bufferLimit: v.GetRequestBodyBufferLimit().GetValue()}
		if a := v.GetTypedPerFilterConfig()["envoy.filters.http.ext_proc"]; a != nil {
			pr := &extprocv3.ExtProcPerRoute{}
			if err := a.UnmarshalTo(pr); err != nil {
				return nil, fmt.Errorf("virtual host %q: %w", v.GetName(), err)
			}
			vh.extProc = pr
		}
		for i, r := range v.GetRoutes() {
			rt, err := newRoute(r, vh)
			if err != nil {
				return nil, fmt.Errorf("virtual host %q route %d: %w", v.GetName(), i, err)
			}
			vh.routes = append(vh.routes, rt)
		}
		t.vhosts = append(t.vhosts, vh)
	}
	return t, nil
}

// resolve picks the virtual host by :authority (port stripped) and the
// first matching route, or nil.
func (t *routeTable) resolve(h *headerMap) *route {
	auth, _ := h.get(":authority")
	if i := strings.LastIndexByte(auth, ':'); i >= 0 && !strings.Contains(auth[i:], "]") {
		auth = auth[:i]
	}
	auth = strings.ToLower(auth)
	// Exact domains win over wildcards, as in Envoy.
	var best *vhost
	for _, vh := range t.vhosts {
		for _, d := range vh.domains {
			if d == auth {
				best = vh
				break
			}
			if best == nil && domainMatches(d, auth) {
				best = vh
			}
		}
		if best != nil && best == vh && containsString(vh.domains, auth) {
			break
		}
	}
	if best == nil {
		return nil
	}
	for _, r := range best.routes {
		if r.matches(h) {
			return r
		}
	}
	return nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
