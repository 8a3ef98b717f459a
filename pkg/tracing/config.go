package tracing

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultServiceName = "tollgate"
	DefaultTimeout     = 10 * time.Second
)

// Config configures the OTLP/gRPC span exporter. Errors from Validate name
// the YAML keys of the proposed `tracing:` config section (otlp_endpoint,
// insecure, headers, service_name, sample_ratio, timeout).
type Config struct {
	// Endpoint is the collector's OTLP/gRPC address as host:port, without
	// a scheme (for example "otel-collector:4317"). Required.
	Endpoint string
	// Insecure sends spans over plaintext gRPC. False (the default) uses
	// TLS verified against the host's root certificates.
	Insecure bool
	// Headers are sent as gRPC metadata with every export (collector
	// authentication, tenant ids). Nil sends none.
	Headers map[string]string
	// ServiceName is the resource's service.name; empty means
	// DefaultServiceName.
	ServiceName string
	// SampleRatio is the share of requests without a sampled parent that
	// are traced, in [0, 1]. Sampling is parent-based: a request whose
	// traceparent says "sampled" is always traced and one that says "not
	// sampled" never is. Zero traces only requests with a sampled parent.
	SampleRatio float64
	// Timeout bounds one export of a batch, retries included; zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// Validate reports every problem in c, each naming its config key.
func (c Config) Validate() error {
	var errs []error
	if err := validateEndpoint(c.Endpoint); err != nil {
		errs = append(errs, err)
	}
	for k, v := range c.Headers {
		if !validHeaderKey(k) {
			errs = append(errs, fmt.Errorf("headers: key %q: use lowercase letters, digits, '-', '_' and '.'", k))
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			errs = append(errs, fmt.Errorf("headers: value of %q contains control characters", k))
		}
	}
	if math.IsNaN(c.SampleRatio) || c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("sample_ratio: %v is outside [0, 1]", c.SampleRatio))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %v is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

func validateEndpoint(ep string) error {
	if ep == "" {
		return errors.New("otlp_endpoint: required (host:port of an OTLP/gRPC collector)")
	}
	if strings.Contains(ep, "://") {
		return fmt.Errorf("otlp_endpoint: %q: give host:port without a scheme", ep)
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return fmt.Errorf("otlp_endpoint: %q: want host:port: %w", ep, err)
	}
	if host == "" {
		return fmt.Errorf("otlp_endpoint: %q: host is empty", ep)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("otlp_endpoint: %q: port must be a number from 1 to 65535", ep)
	}
	return nil
}

// validHeaderKey accepts what gRPC allows as a metadata key once
// lowercased; uppercase is refused rather than silently folded, so the key
// the collector sees is the one configured. "grpc-" keys are reserved.
func validHeaderKey(k string) bool {
	if k == "" || strings.HasPrefix(k, "grpc-") {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
