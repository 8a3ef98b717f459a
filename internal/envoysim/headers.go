package envoysim

import (
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// header is one entry of a headerMap; keys are always lowercase.
type header struct{ key, value string }

// headerMap is Envoy's ordered, multi-valued header map with pseudo-headers
// (:method, :path, :scheme, :authority, :status) kept at the front.
type headerMap struct{ h []header }

func (m *headerMap) get(k string) (string, bool) {
	for _, e := range m.h {
		if e.key == k {
			return e.value, true
		}
	}
	return "", false
}

func (m *headerMap) values(k string) []string {
	var out []string
	for _, e := range m.h {
		if e.key == k {
			out = append(out, e.value)
		}
	}
	return out
}

func (m *headerMap) has(k string) bool {
	_, ok := m.get(k)
	return ok
}

// set replaces every value of k with v.
func (m *headerMap) set(k, v string) {
	m.del(k)
	m.add(k, v)
}

func (m *headerMap) add(k, v string) {
	if strings.HasPrefix(k, ":") {
		i := 0
		for i < len(m.h) && strings.HasPrefix(m.h[i].key, ":") {
			i++
		}
		m.h = append(m.h[:i], append([]header{{k, v}}, m.h[i:]...)...)
		return
	}
	m.h = append(m.h, header{k, v})
}

func (m *headerMap) del(k string) {
	out := m.h[:0]
	for _, e := range m.h {
		if e.key != k {
			out = append(out, e)
		}
	}
	m.h = out
}

// proto renders the map as ext_proc sends it: lowercase keys, raw_value.
func (m *headerMap) proto() *corev3.HeaderMap {
	out := &corev3.HeaderMap{}
	for _, e := range m.h {
		out.Headers = append(out.Headers, &corev3.HeaderValue{Key: e.key, RawValue: []byte(e.value)})
	}
	return out
}

// hopByHop are the connection-level headers a proxy never forwards.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true,
	"transfer-encoding": true, "upgrade": true, "te": true, "trailer": true,
}

// fromHTTP builds a map from net/http headers (no pseudo-headers).
func fromHTTP(h http.Header) *headerMap {
	m := &headerMap{}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if hopByHop[lk] {
			continue
		}
		for _, v := range vs {
			m.add(lk, v)
		}
	}
	return m
}

// toHTTP copies the regular headers into dst, skipping pseudo-headers.
func (m *headerMap) toHTTP(dst http.Header) {
	for _, e := range m.h {
		if strings.HasPrefix(e.key, ":") || hopByHop[e.key] {
			continue
		}
		dst.Add(e.key, e.value)
	}
}
