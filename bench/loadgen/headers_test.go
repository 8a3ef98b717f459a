package loadgen

import (
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestHeaderMap_Apply(t *testing.T) {
	set := func(k, v string, appendValue bool) *corev3.HeaderValueOption {
		o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
		if appendValue {
			//lint:ignore SA1019 ext_proc reads this field, not append_action
			o.Append = wrapperspb.Bool(true)
		}
		return o
	}
	base := headerMap{{":authority", "a"}, {":path", "/v1"}, {"authorization", "Bearer k"}, {"x-a", "1"}}
	tests := []struct {
		name   string
		mut    *extprocv3.HeaderMutation
		want   headerMap
		wantOK bool
	}{
		{"nil", nil, base, true},
		{
			name:   "remove, overwrite, append",
			mut:    &extprocv3.HeaderMutation{RemoveHeaders: []string{"Authorization"}, SetHeaders: []*corev3.HeaderValueOption{set(":path", "/v2", false), set("x-a", "2", true)}},
			want:   headerMap{{":authority", "a"}, {"x-a", "1"}, {":path", "/v2"}, {"x-a", "2"}},
			wantOK: true,
		},
		{
			name:   "default rules skip routing and envoy headers",
			mut:    &extprocv3.HeaderMutation{RemoveHeaders: []string{":path"}, SetHeaders: []*corev3.HeaderValueOption{set(":authority", "b", false), set("x-envoy-x", "1", false)}},
			want:   base,
			wantOK: true,
		},
		{
			name:   "value only sets empty",
			mut:    &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-a", Value: "9"}}}},
			want:   headerMap{{":authority", "a"}, {":path", "/v1"}, {"authorization", "Bearer k"}, {"x-a", ""}},
			wantOK: true,
		},
		{
			name:   "value and raw_value is a 500",
			mut:    &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-a", Value: "9", RawValue: []byte("9")}}}},
			wantOK: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := base.clone().apply(tt.mut)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && !slices.Equal(got, tt.want) {
				t.Errorf("headers = %v, want %v", got, tt.want)
			}
		})
	}
}
