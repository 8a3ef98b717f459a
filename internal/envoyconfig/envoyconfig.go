// Package envoyconfig loads Envoy bootstrap files offline and validates them
// as strictly as go-control-plane allows: strict protojson (unknown fields
// and bad enum values are errors), PGV ValidateAll on the bootstrap, and
// ValidateAll on every message packed in an Any (ValidateAll does not descend
// into typed_config by itself).
//
// What it cannot check: references between resources (a route naming an
// undefined cluster passes), extension-specific C++ checks, and whether an
// extension is compiled into the Envoy build in use.
package envoyconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// Every extension the repo's bootstrap files pack into an Any must be
	// linked in, or its @type cannot be resolved (pkg/wellknown registers
	// nothing).
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// validator is implemented by every go-control-plane message (PGV).
type validator interface {
	ValidateAll() error
}

// Load reads the bootstrap at path and validates it; errors name the file.
func Load(path string) (*bootstrapv3.Bootstrap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load envoy bootstrap: %w", err)
	}
	b, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Parse decodes a YAML (or JSON) bootstrap strictly and validates it,
// including every message packed in an Any. Errors name the field path.
func Parse(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse envoy bootstrap yaml: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, b); err != nil {
		// protojson reports JSON offsets, which mean nothing in a YAML file;
		// find the field path ourselves.
		if p := locateDecodeError(js, b.ProtoReflect().Descriptor()); p != "" {
			return nil, fmt.Errorf("decode envoy bootstrap at %s: %w", p, err)
		}
		return nil, fmt.Errorf("decode envoy bootstrap: %w", err)
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("validate envoy bootstrap: %w", err)
	}
	if err := validateAnys(b.ProtoReflect(), ""); err != nil {
		return nil, err
	}
	return b, nil
}

// ValidateTypedConfigs unpacks every Any held anywhere in m (typed_config,
// typed_extension_protocol_options, ...) and runs ValidateAll on it, walking
// into the unpacked messages too. It does not run ValidateAll on m itself:
// Envoy validates a resource's own constraints when it decodes it, but a
// packed extension config only when it builds the extension, so callers
// that emulate Envoy need the two checks apart. Errors name the field path.
func ValidateTypedConfigs(m proto.Message) error {
	return validateAnys(m.ProtoReflect(), "")
}

// validateAnys walks m and unpacks and validates every Any it holds, then
// walks into the unpacked message, so nested typed_configs are checked too.
func validateAnys(m protoreflect.Message, path string) error {
	var errs []error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := joinPath(path, fd.TextName())
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := range l.Len() {
				errs = append(errs, validateMessage(l.Get(i).Message(), fmt.Sprintf("%s[%d]", p, i)))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				errs = append(errs, validateMessage(mv.Message(), fmt.Sprintf("%s[%q]", p, k.String())))
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			errs = append(errs, validateMessage(v.Message(), p))
		}
		return true
	})
	return errors.Join(errs...)
}

func validateMessage(m protoreflect.Message, path string) error {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		return validateAnys(m, path)
	}
	if a.GetTypeUrl() == "" && len(a.GetValue()) == 0 {
		return nil // an empty Any means "no config" to Envoy
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		return fmt.Errorf("%s: unpack %q: %w", path, a.GetTypeUrl(), err)
	}
	if v, ok := inner.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s (%s): %w", path, a.GetTypeUrl(), err)
		}
	}
	return validateAnys(inner.ProtoReflect(), path)
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// locateDecodeError walks the decoded JSON beside the message descriptor and
// returns the path of the first unknown field, bad enum value or
// unresolvable @type, or "" when it finds none.
func locateDecodeError(js []byte, md protoreflect.MessageDescriptor) string {
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		return ""
	}
	return locateInMessage(v, md, "")
}

func locateInMessage(v any, md protoreflect.MessageDescriptor, path string) string {
	obj, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	switch md.FullName() {
	case "google.protobuf.Any":
		return locateInAny(obj, path)
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		return "" // free-form JSON
	}
	fields := md.Fields()
	for key, fv := range obj {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		p := joinPath(path, key)
		if fd == nil {
			return p + " (unknown field)"
		}
		if found := locateInField(fv, fd, p); found != "" {
			return found
		}
		if !fieldDecodes(md, key, fv) {
			return p // e.g. a negative number in an unsigned field
		}
	}
	return ""
}

// fieldDecodes reports whether {key: v} alone decodes into a message of type
// md; it pins down scalar errors the structural walk cannot see.
func fieldDecodes(md protoreflect.MessageDescriptor, key string, v any) bool {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		return true
	}
	js, err := json.Marshal(map[string]any{key: v})
	if err != nil {
		return true
	}
	return protojson.Unmarshal(js, mt.New().Interface()) == nil
}

func locateInAny(obj map[string]any, path string) string {
	url, _ := obj["@type"].(string)
	if url == "" {
		return ""
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(url)
	if err != nil {
		return path + ".@type (unresolvable " + strconv.Quote(url) + ")"
	}
	md := mt.Descriptor()
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return "" // well-known types carry their JSON under "value"
	}
	rest := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "@type" {
			rest[k] = v
		}
	}
	return locateInMessage(rest, md, path)
}

func locateInField(v any, fd protoreflect.FieldDescriptor, path string) string {
	switch {
	case fd.IsMap():
		m, _ := v.(map[string]any)
		for k, mv := range m {
			if found := locateInSingular(mv, fd.MapValue(), fmt.Sprintf("%s[%q]", path, k)); found != "" {
				return found
			}
		}
		return ""
	case fd.IsList():
		l, _ := v.([]any)
		for i, lv := range l {
			if found := locateInSingular(lv, fd, fmt.Sprintf("%s[%d]", path, i)); found != "" {
				return found
			}
		}
		return ""
	default:
		return locateInSingular(v, fd, path)
	}
}

func locateInSingular(v any, fd protoreflect.FieldDescriptor, path string) string {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return locateInMessage(v, fd.Message(), path)
	case protoreflect.EnumKind:
		s, ok := v.(string)
		if ok && fd.Enum().Values().ByName(protoreflect.Name(s)) == nil {
			return path + " (invalid enum value " + strconv.Quote(s) + ")"
		}
	}
	return ""
}

// Compile-time check that the bootstrap is a PGV-validated message.
var _ validator = (*bootstrapv3.Bootstrap)(nil)
