package loadgen

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// header is one header line; a key may repeat, as in Envoy's header map.
type header struct {
	key, value string
}

// headerMap is the request header map as Envoy holds it between filters:
// the upstream filter sees the headers as the router-level filter (and any
// earlier attempt) mutated them, so the load reaches the server with the same
// shape it would behind real Envoy.
type headerMap []header

func (h headerMap) clone() headerMap {
	return append(headerMap(nil), h...)
}

func (h headerMap) set(key, value string) headerMap {
	h = h.remove(key)
	return append(h, header{key, value})
}

func (h headerMap) remove(key string) headerMap {
	out := h[:0]
	for _, kv := range h {
		if kv.key != key {
			out = append(out, kv)
		}
	}
	return out
}

// proto builds the wire form; values go in raw_value as Envoy sends them.
func (h headerMap) proto() *corev3.HeaderMap {
	hs := make([]*corev3.HeaderValue, len(h))
	for i, kv := range h {
		hs[i] = &corev3.HeaderValue{Key: kv.key, RawValue: []byte(kv.value)}
	}
	return &corev3.HeaderMap{Headers: hs}
}

// mutationRejected applies Envoy's default mutation rules (no mutation_rules
// configured): routing headers and x-envoy-* are silently skipped.
func mutationRejected(key string) bool {
	switch key {
	case "host", ":authority", ":method", ":scheme":
		return true
	}
	return strings.HasPrefix(key, "x-envoy-")
}

// apply applies a HeaderMutation the way Envoy's mutation_utils does. It
// reports false when the mutation is one Envoy turns into a 500: a header
// with both value and raw_value set.
func (h headerMap) apply(m *extprocv3.HeaderMutation) (headerMap, bool) {
	if m == nil {
		return h, true
	}
	for _, key := range m.GetRemoveHeaders() {
		key = strings.ToLower(key)
		if strings.HasPrefix(key, ":") || key == "host" || mutationRejected(key) {
			continue
		}
		h = h.remove(key)
	}
	for _, opt := range m.GetSetHeaders() {
		hv := opt.GetHeader()
		if hv == nil {
			continue
		}
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			return h, false
		}
		key := strings.ToLower(hv.GetKey())
		if mutationRejected(key) {
			continue
		}
		// Envoy reads raw_value only; a header given as value alone is set to "".
		value := string(hv.GetRawValue())
		// Only the deprecated append BoolValue counts (envoy issue #38946).
		//lint:ignore SA1019 ext_proc reads this field, not append_action
		if opt.GetAppend().GetValue() && !strings.HasPrefix(key, ":") {
			h = append(h, header{key, value})
		} else {
			h = h.set(key, value)
		}
	}
	return h, true
}
