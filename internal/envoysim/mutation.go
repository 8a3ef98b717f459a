package envoysim

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// errInvalidMutation fails the request with status_on_error whatever
// failure_mode_allow says.
var errInvalidMutation = errors.New("invalid header mutation")

// mutationChecker implements HeaderMutationRules, including the defaults
// used when none are configured (mutation_rules.cc).
type mutationChecker struct {
	allowAllRouting, allowEnvoy, disallowSystem, disallowAll, disallowIsError bool
	allow, disallow                                                           *regexp.Regexp
}

func newMutationChecker(r *mutationv3.HeaderMutationRules) (*mutationChecker, error) {
	c := &mutationChecker{
		allowAllRouting: r.GetAllowAllRouting().GetValue(),
		allowEnvoy:      r.GetAllowEnvoy().GetValue(),
		disallowSystem:  r.GetDisallowSystem().GetValue(),
		disallowAll:     r.GetDisallowAll().GetValue(),
		disallowIsError: r.GetDisallowIsError().GetValue(),
	}
	var err error
	if e := r.GetAllowExpression().GetRegex(); e != "" {
		if c.allow, err = regexp.Compile("^(?:" + e + ")$"); err != nil {
			return nil, fmt.Errorf("mutation_rules.allow_expression: %w", err)
		}
	}
	if e := r.GetDisallowExpression().GetRegex(); e != "" {
		if c.disallow, err = regexp.Compile("^(?:" + e + ")$"); err != nil {
			return nil, fmt.Errorf("mutation_rules.disallow_expression: %w", err)
		}
	}
	return c, nil
}

type mutationOp int

const (
	opSet mutationOp = iota
	opAppend
	opRemove
)

// allowed reports whether the rules let the mutation through.
func (c *mutationChecker) allowed(op mutationOp, key, value string) bool {
	if key == "" || key != strings.ToLower(key) && !strings.HasPrefix(key, ":") {
		return false
	}
	if strings.HasPrefix(key, ":") && op == opAppend {
		return false // pseudo-headers hold exactly one value
	}
	switch key {
	case ":status":
		n, err := strconv.Atoi(value)
		return op != opRemove && err == nil && n >= 200 && n <= 999
	case "host", ":authority", ":method", ":scheme":
		return c.allowAllRouting && !c.disallowSystem
	case ":path":
		return !c.disallowSystem
	}
	if strings.HasPrefix(key, ":") && c.disallowSystem {
		return false
	}
	if strings.HasPrefix(key, "x-envoy-") && !c.allowEnvoy {
		return false
	}
	if c.disallow != nil && c.disallow.MatchString(key) {
		return false
	}
	if c.disallowAll {
		return c.allow != nil && c.allow.MatchString(key)
	}
	return true
}

// mutationResult counts what applyHeaderMutation skipped.
type mutationResult struct{ rejected int }

// applyHeaderMutation applies set_headers and remove_headers the way
// mutation_utils.cc does: only the deprecated append flag counts, value
// without raw_value sets "", both set is an error, and pseudo-headers and
// host are never removed. stripContentLength drops content-length sets.
func applyHeaderMutation(m *headerMap, hm headerMutation, c *mutationChecker, stripContentLength bool) (mutationResult, error) {
	var res mutationResult
	if hm == nil {
		return res, nil
	}
	for _, k := range hm.GetRemoveHeaders() {
		k = strings.ToLower(k)
		if strings.HasPrefix(k, ":") || k == "host" {
			continue
		}
		if !c.allowed(opRemove, k, "") {
			if c.disallowIsError {
				return res, fmt.Errorf("%w: remove %q not allowed", errInvalidMutation, k)
			}
			res.rejected++
			continue
		}
		m.del(k)
	}
	for _, o := range hm.GetSetHeaders() {
		h := o.GetHeader()
		if h == nil {
			continue
		}
		if h.GetValue() != "" && len(h.GetRawValue()) > 0 {
			return res, fmt.Errorf("%w: header %q has both value and raw_value", errInvalidMutation, h.GetKey())
		}
		k := strings.ToLower(h.GetKey())
		v := string(h.GetRawValue()) // value alone is ignored (envoy#31555)
		if strings.ContainsAny(v, "\r\n\x00") {
			return res, fmt.Errorf("%w: header %q has an invalid value", errInvalidMutation, k)
		}
		if k == "content-length" && stripContentLength {
			continue
		}
		op := opSet
		//lint:ignore SA1019 Envoy's ext_proc honours only the deprecated append flag (envoy#38946).
		if o.GetAppend().GetValue() {
			op = opAppend
		}
		if !c.allowed(op, k, v) {
			if c.disallowIsError {
				return res, fmt.Errorf("%w: set %q not allowed", errInvalidMutation, k)
			}
			res.rejected++
			continue
		}
		if op == opAppend {
			m.add(k, v)
		} else {
			m.set(k, v)
		}
	}
	return res, nil
}

// headerMutation is the subset of extprocv3.HeaderMutation used here; it
// lets trailers and headers share the code.
type headerMutation interface {
	GetSetHeaders() []*corev3.HeaderValueOption
	GetRemoveHeaders() []string
}
