package transform_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// geminiParams translates schema as a tool's parameters (or, with
// response, as a response_format schema) and returns the Gemini schema
// sent, "" when the request was rejected or sent no schema.
func geminiParams(t testing.TB, schema string, response bool) string {
	t.Helper()
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":` + schema + `}}]}`
	path := "tools.0.functionDeclarations.0.parameters"
	if response {
		body = `{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":` + schema + `}}}`
		path = "generationConfig.responseSchema"
	}
	res, err := transform.NewOpenAIToGeminiRequest(transform.Target{}).RequestBody([]byte(body))
	if err != nil {
		return ""
	}
	return gjson.GetBytes(res.Body, path).Raw
}

func TestGeminiSchema(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		response bool
		want     string
	}{
		{"drops JSON Schema keywords",
			`{"$schema":"x","$id":"y","type":"object","additionalProperties":false,"strict":true,"properties":{"a":{"type":"string","default":"z","examples":["q"]}},"required":["a"]}`, false,
			`{"type":"OBJECT","properties":{"a":{"type":"STRING"}},"required":["a"]}`},
		{"empty properties sends no parameters", `{"type":"object","properties":{}}`, false, ``},
		{"nested empty object keeps type only", `{"type":"object","properties":{"o":{"type":"object","properties":{}}}}`, false,
			`{"type":"OBJECT","properties":{"o":{"type":"OBJECT"}}}`},
		{"nullable anyOf", `{"type":"object","properties":{"a":{"anyOf":[{"type":"integer"},{"type":"null"}],"description":"n"}}}`, false,
			`{"type":"OBJECT","properties":{"a":{"type":"INTEGER","description":"n","nullable":true}}}`},
		{"type array", `{"type":"object","properties":{"a":{"type":["string","null"]},"b":{"type":["string","number"]}}}`, false,
			`{"type":"OBJECT","properties":{"a":{"type":"STRING","nullable":true},"b":{"anyOf":[{"type":"STRING"},{"type":"NUMBER"}]}}}`},
		{"ref and defs inlined, sibling description wins",
			`{"type":"object","properties":{"p":{"$ref":"#/$defs/P","description":"the pet"}},"$defs":{"P":{"type":"object","description":"a pet","properties":{"kind":{"$ref":"#/$defs/K"}}},"K":{"enum":["cat","dog"]}}}`, false,
			`{"type":"OBJECT","properties":{"p":{"type":"OBJECT","description":"the pet","properties":{"kind":{"type":"STRING","enum":["cat","dog"]}}}}}`},
		{"recursive ref is cut",
			`{"type":"object","properties":{"n":{"$ref":"#/$defs/Node"}},"$defs":{"Node":{"type":"object","properties":{"next":{"$ref":"#/$defs/Node"}}}}}`, false,
			`{"type":"OBJECT","properties":{"n":{"type":"OBJECT","properties":{"next":{}}}}}`},
		{"escaped pointer", `{"type":"object","properties":{"a":{"$ref":"#/$defs/a~1b"}},"$defs":{"a/b":{"type":"boolean"}}}`, false,
			`{"type":"OBJECT","properties":{"a":{"type":"BOOLEAN"}}}`},
		{"remote ref dropped", `{"type":"object","properties":{"a":{"$ref":"https://x/y.json"}}}`, false,
			`{"type":"OBJECT","properties":{"a":{}}}`},
		{"single allOf inlined", `{"type":"object","properties":{"a":{"allOf":[{"type":"string","maxLength":3}]}}}`, false,
			`{"type":"OBJECT","properties":{"a":{"type":"STRING","maxLength":3}}}`},
		{"enum only on strings", `{"type":"object","properties":{"i":{"type":"integer","enum":[1,2]},"s":{"type":"string","enum":["x"]},"c":{"const":"k"}}}`, false,
			`{"type":"OBJECT","properties":{"i":{"type":"INTEGER"},"s":{"type":"STRING","enum":["x"]},"c":{"type":"STRING","enum":["k"]}}}`},
		{"formats filtered", `{"type":"object","properties":{"a":{"type":"string","format":"email"},"b":{"type":"string","format":"date-time"},"c":{"type":"number","format":"double"},"d":{"type":"integer","format":"uint8"}}}`, false,
			`{"type":"OBJECT","properties":{"a":{"type":"STRING"},"b":{"type":"STRING","format":"date-time"},"c":{"type":"NUMBER","format":"double"},"d":{"type":"INTEGER"}}}`},
		{"array items required", `{"type":"object","properties":{"a":{"type":"array"},"b":{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":2.5},"t":{"type":"array","prefixItems":[{"type":"string"}]}}}`, false,
			`{"type":"OBJECT","properties":{"a":{"type":"ARRAY","items":{"type":"STRING"}},"b":{"type":"ARRAY","items":{"type":"INTEGER"},"minItems":1},"t":{"type":"ARRAY","items":{"type":"STRING"}}}}`},
		{"required filtered to properties", `{"type":"object","properties":{"a":{"type":"string"}},"required":["a","b",3]}`, false,
			`{"type":"OBJECT","properties":{"a":{"type":"STRING"}},"required":["a"]}`},
		{"response schema keeps key order", `{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"integer","minimum":0}},"required":["z"]}`, true,
			`{"type":"OBJECT","properties":{"z":{"type":"STRING"},"a":{"type":"INTEGER","minimum":0}},"propertyOrdering":["z","a"],"required":["z"]}`},
		{"type inferred", `{"properties":{"a":{"items":{"type":"boolean"}}}}`, false,
			`{"type":"OBJECT","properties":{"a":{"type":"ARRAY","items":{"type":"BOOLEAN"}}}}`},
		{"non-object values", `{"type":"object","properties":{"a":true,"b":{"type":"object","properties":{"c":1}}}}`, false,
			`{"type":"OBJECT","properties":{"a":{},"b":{"type":"OBJECT","properties":{"c":{}}}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := geminiParams(t, tt.in, tt.response); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestGeminiSchema_Deep(t *testing.T) {
	s := `{"type":"string"}`
	for range 40 {
		s = `{"type":"object","properties":{"a":` + s + `}}`
	}
	got := geminiParams(t, s, false)
	if got == "" || checkGeminiSchema(gjson.Parse(got)) != nil {
		t.Fatalf("deep schema = %s", got)
	}
}

// TestGeminiSchema_SharedRefs checks that references sharing targets,
// which inlining multiplies, cannot make the translation explode.
func TestGeminiSchema_SharedRefs(t *testing.T) {
	defs := `"L0":{"type":"string"}`
	for i := 1; i <= 30; i++ {
		props := ""
		for p := range 8 {
			props += fmt.Sprintf(`,"p%d":{"$ref":"#/$defs/L%d"}`, p, i-1)
		}
		defs += fmt.Sprintf(`,"L%d":{"type":"object","properties":{%s}}`, i, props[1:])
	}
	schema := `{"type":"object","properties":{"x":{"$ref":"#/$defs/L30"}},"$defs":{` + defs + `}}`
	start := time.Now()
	got := geminiParams(t, schema, false)
	if err := checkGeminiSchema(gjson.Parse(got)); err != nil || len(got) > 1<<20 || time.Since(start) > 5*time.Second {
		t.Fatalf("%d bytes in %v: %v", len(got), time.Since(start), err)
	}
}

// geminiSchemaKeys are the keywords of Gemini's Schema message this
// translator may send.
var geminiSchemaKeys = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "nullable": true, "enum": true,
	"properties": true, "propertyOrdering": true, "required": true, "items": true, "anyOf": true,
	"minItems": true, "maxItems": true, "minLength": true, "maxLength": true, "pattern": true,
	"minimum": true, "maximum": true, "minProperties": true, "maxProperties": true, "example": true,
}

// checkGeminiSchema applies the rules the Gemini API enforces on a
// schema, recursively.
func checkGeminiSchema(s gjson.Result) error {
	if !s.IsObject() {
		return fmt.Errorf("schema is not an object: %s", s.Raw)
	}
	var err error
	typ := s.Get("type").Str
	s.ForEach(func(k, v gjson.Result) bool {
		switch {
		case !geminiSchemaKeys[k.Str]:
			err = fmt.Errorf("keyword %q is outside Gemini's subset", k.Str)
		case k.Str == "type" && !map[string]bool{"STRING": true, "NUMBER": true, "INTEGER": true, "BOOLEAN": true, "ARRAY": true, "OBJECT": true}[v.Str]:
			err = fmt.Errorf("type %s", v.Raw)
		case k.Str == "properties":
			if typ != "OBJECT" || len(v.Map()) == 0 {
				err = fmt.Errorf("properties on %q or empty: %s", typ, v.Raw)
			}
			v.ForEach(func(_, p gjson.Result) bool {
				err = checkGeminiSchema(p)
				return err == nil
			})
		case k.Str == "items":
			err = checkGeminiSchema(v)
		case k.Str == "anyOf":
			v.ForEach(func(_, p gjson.Result) bool {
				err = checkGeminiSchema(p)
				return err == nil
			})
		case k.Str == "enum":
			if typ != "STRING" {
				err = fmt.Errorf("enum on %q", typ)
			}
			v.ForEach(func(_, e gjson.Result) bool {
				if e.Type != gjson.String {
					err = fmt.Errorf("enum value %s", e.Raw)
				}
				return err == nil
			})
		case k.Str == "required":
			v.ForEach(func(_, r gjson.Result) bool {
				if !s.Get("properties").Get(gjson.Escape(r.Str)).Exists() {
					err = fmt.Errorf("required %s has no property", r.Raw)
				}
				return err == nil
			})
		}
		return err == nil
	})
	if err == nil && typ == "ARRAY" && !s.Get("items").Exists() {
		err = fmt.Errorf("ARRAY without items: %s", s.Raw)
	}
	return err
}

// FuzzGeminiSchema checks that any JSON Schema a client sends becomes a
// schema inside Gemini's subset, as tool parameters and as a response
// schema.
func FuzzGeminiSchema(f *testing.F) {
	for _, s := range []string{
		`{"type":"object","properties":{"a":{"$ref":"#/$defs/A"}},"$defs":{"A":{"anyOf":[{"type":"string","enum":["x"]},{"type":"null"}]}}}`,
		`{"type":["object","null"],"properties":{"l":{"type":"array","items":{"oneOf":[{"type":"integer"},{"const":"k"}]}}},"required":["l"]}`,
		`{"allOf":[{"$ref":"#"}],"properties":{"x":{"type":"object","properties":{}}}}`,
		`{"properties":{"e":{"enum":[1,"a",null]},"f":{"type":"number","format":"float","minimum":-1.5}}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, schema string) {
		if !json.Valid([]byte(schema)) {
			return
		}
		for _, response := range []bool{false, true} {
			got := geminiParams(t, schema, response)
			if got == "" {
				continue
			}
			if err := checkGeminiSchema(gjson.Parse(got)); err != nil {
				t.Fatalf("%v\nfrom %s\n  to %s", err, schema, got)
			}
		}
	})
}
