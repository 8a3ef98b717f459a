package envoysim

import (
	"fmt"
	"strconv"
	"strings"
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

// Filter::sendImmediateResponse lost its isUpstream() guard in
// envoyproxy/envoy#41231. We take 1.37.0 as the first release with it: the
// PR opened in September 2025 and was still in review in October, when
// release/v1.36 was cut, and no backport to 1.36 is known.
const upstreamImmediateFixedMinor = 37

// upstreamImmediateIgnored: an upstream ext_proc filter's local replies are
// dropped by the old guard.
func (s *Sim) upstreamImmediateIgnored() bool {
	return s.version.below(1, upstreamImmediateFixedMinor)
}
