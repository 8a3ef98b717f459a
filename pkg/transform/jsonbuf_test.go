package transform

import (
	"encoding/json"
	"testing"
)

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plain", "hello", `"hello"`},
		{"quotes and backslash", `a"b\c`, `"a\"b\\c"`},
		{"controls", "a\nb\tc\r\x01", `"a\nb\tc\r\u0001"`},
		{"unicode kept", "é✓", `"é✓"`},
		{"invalid utf-8 replaced", "a\xffb", `"a\ufffdb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendJSONString(nil, tt.in))
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			var back string
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAppendCompactAsString(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string // the decoded string
	}{
		{"object", `{ "a" : 1,
		  "b": [1, 2] }`, `{"a":1,"b":[1,2]}`},
		{"spaces inside strings kept", `{"a b": " c "}`, `{"a b":" c "}`},
		{"escapes", `{"q":"say \"hi\"\\ \n \u00e9"}`, `{"q":"say \"hi\"\\ \n \u00e9"}`},
		{"scalar", `42`, `42`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := appendCompactAsString(nil, tt.raw)
			var got string
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
