package tracing_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/tracing"
)

func TestConfig_Validate(t *testing.T) {
	valid := tracing.Config{Endpoint: "otel-collector:4317", SampleRatio: 0.25}
	tests := []struct {
		name string
		edit func(*tracing.Config)
		want []string // substrings the error must hold; none means valid
	}{
		{name: "valid", edit: func(*tracing.Config) {}},
		{name: "ipv6 endpoint and every field", edit: func(c *tracing.Config) {
			*c = tracing.Config{Endpoint: "[::1]:4317", Insecure: true, Headers: map[string]string{"authorization": "Bearer x", "x-scope.org_id": "t1"},
				ServiceName: "gw", SampleRatio: 1, Timeout: time.Second}
		}},
		{name: "ratio bounds are inclusive", edit: func(c *tracing.Config) { c.SampleRatio = 0 }},
		{name: "missing endpoint", edit: func(c *tracing.Config) { c.Endpoint = "" }, want: []string{"otlp_endpoint: required"}},
		{name: "endpoint with scheme", edit: func(c *tracing.Config) { c.Endpoint = "http://collector:4317" },
			want: []string{"otlp_endpoint", "without a scheme"}},
		{name: "endpoint without port", edit: func(c *tracing.Config) { c.Endpoint = "collector" }, want: []string{"otlp_endpoint", "host:port"}},
		{name: "endpoint without host", edit: func(c *tracing.Config) { c.Endpoint = ":4317" }, want: []string{"otlp_endpoint", "host is empty"}},
		{name: "endpoint port out of range", edit: func(c *tracing.Config) { c.Endpoint = "collector:70000" },
			want: []string{"otlp_endpoint", "port must be"}},
		{name: "endpoint port not a number", edit: func(c *tracing.Config) { c.Endpoint = "collector:otlp" },
			want: []string{"otlp_endpoint", "port must be"}},
		{name: "ratio above 1", edit: func(c *tracing.Config) { c.SampleRatio = 1.5 }, want: []string{"sample_ratio: 1.5 is outside [0, 1]"}},
		{name: "ratio below 0", edit: func(c *tracing.Config) { c.SampleRatio = -0.1 }, want: []string{"sample_ratio: -0.1"}},
		{name: "ratio NaN", edit: func(c *tracing.Config) { c.SampleRatio = math.NaN() }, want: []string{"sample_ratio: NaN"}},
		{name: "negative timeout", edit: func(c *tracing.Config) { c.Timeout = -time.Second }, want: []string{"timeout: -1s is negative"}},
		{name: "uppercase header key", edit: func(c *tracing.Config) { c.Headers = map[string]string{"X-Tenant": "a"} },
			want: []string{`headers: key "X-Tenant"`}},
		{name: "reserved header key", edit: func(c *tracing.Config) { c.Headers = map[string]string{"grpc-timeout": "1s"} },
			want: []string{`headers: key "grpc-timeout"`}},
		{name: "header value with newline", edit: func(c *tracing.Config) { c.Headers = map[string]string{"x-a": "b\nc"} },
			want: []string{`headers: value of "x-a"`}},
		{name: "every problem reported", edit: func(c *tracing.Config) {
			*c = tracing.Config{Endpoint: "", SampleRatio: 3, Timeout: -1}
		}, want: []string{"otlp_endpoint", "sample_ratio", "timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}
