package transform

import (
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Translated bodies are built by appending JSON text to a byte slice rather
// than by marshalling Go values: most values are copied from the input as raw
// JSON (already escaped and validated), so translation costs little more than
// a copy.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendEscaped appends s escaped for use inside a JSON string literal.
// Invalid UTF-8 becomes U+FFFD so the output is always valid JSON.
func appendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// appendCompactAsString appends the JSON value raw, with insignificant
// whitespace removed, as a JSON string literal: the form OpenAI uses for tool
// call arguments. raw must be valid JSON.
func appendCompactAsString(dst []byte, raw string) []byte {
	dst = append(dst, '"')
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch c {
			case '"':
				inString = false
				dst = append(dst, '\\', '"')
			case '\\':
				// An escape inside the value: both bytes are escaped for
				// the outer string, and the escaped byte cannot end it.
				dst = append(dst, '\\', '\\')
				if i+1 < len(raw) {
					i++
					if raw[i] == '"' || raw[i] == '\\' {
						dst = append(dst, '\\')
					}
					dst = append(dst, raw[i])
				}
			default:
				dst = append(dst, c)
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
		case '"':
			inString = true
			dst = append(dst, '\\', '"')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// appendInt appends n in decimal.
func appendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// stringView returns b as a string without copying. The string must not
// outlive the current call unless cloned, because callers may reuse b (Envoy
// body buffers, the translators' own carry buffers); the translators never
// modify b while the view is in use.
func stringView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// rawInner strips the quotes from a raw JSON string literal, leaving its
// still-escaped content, so that several literals can be joined into one.
func rawInner(raw string) string {
	if len(raw) < 2 {
		return ""
	}
	return raw[1 : len(raw)-1]
}
