package envoysim

import (
	"fmt"
	"strconv"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

// envoyVersion is Options.EnvoyVersion; the zero value is the newest
// behaviour.
type envoyVersion struct{ major, minor int }

func parseEnvoyVersion(s string) (envoyVersion, error) {
	if s == "" {
		return envoyVersion{}, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return envoyVersion{}, fmt.Errorf("Options.EnvoyVersion %q: want MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. \"1.37\"", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || strconv.Itoa(v) != p {
			return envoyVersion{}, fmt.Errorf("Options.EnvoyVersion %q: %q is not a release number", s, p)
		}
		n[i] = v
	}
	if n[0] != 1 {
		return envoyVersion{}, fmt.Errorf("Options.EnvoyVersion %q: only Envoy 1.x exists", s)
	}
	return envoyVersion{n[0], n[1]}, nil
}

// below reports whether the emulated release predates major.minor.0; the
// newest behaviour is never below anything.
func (v envoyVersion) below(major, minor int) bool {
	if v == (envoyVersion{}) {
		return false
	}
	return v.major < major || v.major == major && v.minor < minor
}

// Both fixes below are taken as first released in 1.37.0, with no backport
// to 1.36 known: #41231 opened in September 2025 and was still in review in
// October, when release/v1.36 was cut; #41879 merged in November 2025.
const (
	// Filter::sendImmediateResponse lost its isUpstream() guard
	// (envoyproxy/envoy#41231).
	upstreamImmediateFixedMinor = 37
	// Router::Filter::onUpstreamData no longer forwards a retried
	// attempt's held response (envoyproxy/envoy#41879).
	heldResponseRetryFixedMinor = 37
)

// upstreamImmediateIgnored: an upstream ext_proc filter's local replies are
// dropped by the old guard.
func (s *Sim) upstreamImmediateIgnored() bool {
	return s.version.below(1, upstreamImmediateFixedMinor)
}

// holdsResponse names the setting that makes an upstream ext_proc filter
// stop the response headers in the upstream filter chain, or "" if none
// can: headers SEND (the default), any response body mode, or a server
// mode_override that may ask for either.
func holdsResponse(pb *extprocv3.ExternalProcessor) string {
	if s := heldBy(pb.GetProcessingMode()); s != "" {
		return s
	}
	if !pb.GetAllowModeOverride() {
		return ""
	}
	if len(pb.GetAllowedOverrideModes()) == 0 {
		return "allow_mode_override (a mode_override may send response headers)"
	}
	for _, m := range pb.GetAllowedOverrideModes() {
		// Envoy's setProcessingMode reads DEFAULT headers as SEND here too.
		if s := heldBy(m); s != "" {
			return "allowed_override_modes entry with " + s
		}
	}
	return ""
}

func heldBy(m *extprocv3.ProcessingMode) string {
	switch {
	case m.GetResponseHeaderMode() == extprocv3.ProcessingMode_DEFAULT:
		return "response_header_mode DEFAULT (= SEND)"
	case m.GetResponseHeaderMode() == extprocv3.ProcessingMode_SEND:
		return "response_header_mode SEND"
	case m.GetResponseBodyMode() != extprocv3.ProcessingMode_NONE:
		return "response_body_mode " + m.GetResponseBodyMode().String()
	}
	return ""
}

// checkHeldResponseRetry rejects, below 1.37, an upstream ext_proc filter
// that holds response headers on a cluster a retrying route can reach:
// before envoyproxy/envoy#41879 the held body of a retried attempt reached
// Router::Filter::onUpstreamData after the router had dropped that attempt
// and was sent downstream (only an ASSERT guarded it), corrupting the reply
// or crashing Envoy.
func (s *Sim) checkHeldResponseRetry(cluster, filter string, pb *extprocv3.ExternalProcessor) error {
	if !s.version.below(1, heldResponseRetryFixedMinor) {
		return nil
	}
	setting := holdsResponse(pb)
	if setting == "" {
		return nil
	}
	for _, vh := range s.routes.vhosts {
		for i, rt := range vh.routes {
			if rt.retry == nil || rt.retry.numRetries == 0 || (rt.cluster != cluster && rt.clusterHeader == "") {
				continue
			}
			return fmt.Errorf("upstream http filter %q holds response headers (%s) while virtual host %q route %d can retry to this cluster: "+
				"Envoy %d.%d forwards a retried attempt's held response and corrupts the reply or crashes (envoyproxy/envoy#41879, fixed in 1.37); "+
				"set response_header_mode SKIP and response_body_mode NONE, drop the retries, or run Envoy 1.37+",
				filter, setting, vh.name, i, s.version.major, s.version.minor)
		}
	}
	return nil
}
