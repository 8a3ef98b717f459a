package envoysim

import (
	"fmt"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previous_prioritiesv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
)

// retryOn is the parsed retry_on list.
type retryOn struct {
	fiveXX, gatewayError, reset, connectFailure, refusedStream, retriable4xx, retriableStatusCodes bool
}

// retryPolicy is a route's compiled RetryPolicy.
type retryPolicy struct {
	on                       retryOn
	numRetries               int
	perTryTimeout            time.Duration
	statusCodes              map[int]bool
	retriableHeaders         []*headerMatcher
	priorityUpdateFrequency  int // 0: no previous_priorities
	previousHosts            bool
	hostSelectionMaxAttempts int
	backoffBase, backoffMax  time.Duration
}

func newRetryPolicy(rp *routev3.RetryPolicy) (*retryPolicy, error) {
	if rp == nil {
		return nil, nil
	}
	p := &retryPolicy{
		numRetries:               1,
		statusCodes:              map[int]bool{},
		hostSelectionMaxAttempts: 1,
		backoffBase:              25 * time.Millisecond,
	}
	for tok := range strings.SplitSeq(rp.GetRetryOn(), ",") {
		switch strings.TrimSpace(tok) {
		case "5xx":
			p.on.fiveXX = true
		case "gateway-error":
			p.on.gatewayError = true
		case "reset":
			p.on.reset = true
		case "connect-failure":
			p.on.connectFailure = true
		case "refused-stream":
			p.on.refusedStream = true
		case "retriable-4xx":
			p.on.retriable4xx = true
		case "retriable-status-codes":
			p.on.retriableStatusCodes = true
		case "", "retriable-headers":
		default:
			return nil, fmt.Errorf("retry_on %q is not supported by envoysim", tok)
		}
	}
	if v := rp.GetNumRetries(); v != nil {
		p.numRetries = int(v.GetValue())
	}
	p.perTryTimeout = rp.GetPerTryTimeout().AsDuration()
	for _, c := range rp.GetRetriableStatusCodes() {
		p.statusCodes[int(c)] = true
	}
	for _, hm := range rp.GetRetriableHeaders() {
		m, err := newHeaderMatcher(hm)
		if err != nil {
			return nil, fmt.Errorf("retriable_headers: %w", err)
		}
		p.retriableHeaders = append(p.retriableHeaders, m)
	}
	if pr := rp.GetRetryPriority(); pr != nil {
		if pr.GetName() != "envoy.retry_priorities.previous_priorities" {
			return nil, fmt.Errorf("retry_priority %q is not supported by envoysim", pr.GetName())
		}
		cfg := &previous_prioritiesv3.PreviousPrioritiesConfig{}
		if err := pr.GetTypedConfig().UnmarshalTo(cfg); err != nil {
			return nil, fmt.Errorf("retry_priority: %w", err)
		}
		p.priorityUpdateFrequency = int(cfg.GetUpdateFrequency())
	}
	for _, hp := range rp.GetRetryHostPredicate() {
		if hp.GetName() != "envoy.retry_host_predicates.previous_hosts" {
			return nil, fmt.Errorf("retry_host_predicate %q is not supported by envoysim", hp.GetName())
		}
		p.previousHosts = true
	}
	if v := rp.GetHostSelectionRetryMaxAttempts(); v > 0 {
		p.hostSelectionMaxAttempts = int(v)
	}
	if b := rp.GetRetryBackOff(); b != nil {
		p.backoffBase = b.GetBaseInterval().AsDuration()
		if m := b.GetMaxInterval(); m != nil {
			p.backoffMax = m.AsDuration()
		}
	}
	if p.backoffMax == 0 {
		p.backoffMax = 10 * p.backoffBase
	}
	return p, nil
}

// resetReason says why an attempt produced no response headers.
type resetReason int

const (
	resetConnectFailure resetReason = iota
	resetRemote                     // disconnect or reset after connecting
	resetPerTryTimeout              // Envoy resets the stream locally
)

// retryState is one request's retry bookkeeping (RetryStateImpl plus the
// retry host predicate and retry priority plugins).
type retryState struct {
	*retryPolicy
	remaining      int
	attemptedHosts []*host
	excluded       []bool
	backoffs       int
}

func newRetryState(p *retryPolicy) *retryState {
	if p == nil {
		return &retryState{retryPolicy: &retryPolicy{}}
	}
	return &retryState{retryPolicy: p, remaining: p.numRetries}
}

func (rs *retryState) attempted(h *host) bool {
	for _, a := range rs.attemptedHosts {
		if a == h {
			return true
		}
	}
	return false
}

// wouldRetryHeaders mirrors RetryStateImpl::wouldRetryFromHeaders.
func (rs *retryState) wouldRetryHeaders(h *headerMap, status int) bool {
	if h.has("x-envoy-overloaded") || h.has("x-envoy-ratelimited") {
		return false
	}
	switch {
	case rs.on.fiveXX && status >= 500 && status < 600,
		rs.on.gatewayError && status >= 502 && status <= 504,
		rs.on.retriable4xx && status == 409,
		rs.on.retriableStatusCodes && rs.statusCodes[status]:
		return true
	}
	for _, m := range rs.retriableHeaders {
		if m.matches(h) {
			return true
		}
	}
	return false
}

// wouldRetryReset mirrors RetryStateImpl::wouldRetryFromReset.
func (rs *retryState) wouldRetryReset(r resetReason) bool {
	if rs.on.fiveXX || rs.on.gatewayError || rs.on.reset {
		return true
	}
	return rs.on.connectFailure && r == resetConnectFailure
}

// take consumes one retry if any is left.
func (rs *retryState) take() bool {
	if rs.remaining <= 0 {
		return false
	}
	rs.remaining--
	return true
}

// backoff is Envoy's fully jittered exponential backoff.
func (rs *retryState) backoff(rnd uint64) time.Duration {
	if rs.backoffBase <= 0 {
		return 0
	}
	rs.backoffs++
	ceil := rs.backoffBase
	for i := 1; i < rs.backoffs && ceil < rs.backoffMax; i++ {
		ceil *= 2
	}
	ceil = min(ceil, rs.backoffMax)
	return time.Duration(rnd % uint64(ceil))
}

// determinePriorityLoad is PreviousPrioritiesRetryPriority: every
// update_frequency attempts, priorities already attempted get no load; when
// nothing is left the exclusions reset.
func (rs *retryState) determinePriorityLoad(ps *priorityState, healthy, degraded []uint32) ([]uint32, []uint32) {
	n := len(ps.health)
	if len(rs.attemptedHosts) < rs.priorityUpdateFrequency {
		return healthy, degraded
	}
	if len(rs.excluded) < n {
		rs.excluded = append(rs.excluded, make([]bool, n-len(rs.excluded))...)
	}
	if len(rs.attemptedHosts)%rs.priorityUpdateFrequency == 0 {
		for _, h := range rs.attemptedHosts {
			if h.priority < n {
				rs.excluded[h.priority] = true
			}
		}
	}
	adjH, adjD := make([]uint32, n), make([]uint32, n)
	avail := func() uint32 {
		var t uint32
		for i := range n {
			adjH[i], adjD[i] = 0, 0
			if !rs.excluded[i] {
				adjH[i], adjD[i] = ps.health[i], ps.degraded[i]
				t += ps.health[i] + ps.degraded[i]
			}
		}
		return min(t, 100)
	}
	total := avail()
	if total == 0 {
		for i := range rs.excluded {
			rs.excluded[i] = false
		}
		rs.attemptedHosts = nil
		total = avail()
	}
	if total == 0 {
		return healthy, degraded
	}
	outH, outD := make([]uint32, n), make([]uint32, n)
	left := uint32(100)
	for left != 0 {
		for i := range n {
			d := min(left, adjH[i]*100/total)
			outH[i] += d
			left -= d
		}
		for i := range n {
			d := min(left, adjD[i]*100/total)
			outD[i] += d
			left -= d
		}
	}
	return outH, outD
}
