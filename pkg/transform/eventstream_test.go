package transform

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// decoded is a message in comparable form.
type decoded struct {
	messageType, eventType, exceptionType, contentType, errorCode, errorMessage, payload string
}

func (m *eventMessage) comparable() decoded {
	return decoded{string(m.messageType), string(m.eventType), string(m.exceptionType), string(m.contentType),
		string(m.errorCode), string(m.errorMessage), string(m.payload)}
}

// decodeAll feeds pieces to a decoder and collects the messages.
func decodeAll(pieces [][]byte) ([]decoded, error) {
	var d eventStreamDecoder
	var out []decoded
	for _, p := range pieces {
		rest := p
		for {
			m, tail, ok, err := d.next(rest)
			if err != nil {
				return out, err
			}
			if !ok {
				break
			}
			out = append(out, m.comparable())
			rest = tail
		}
	}
	if d.pending() {
		return out, io.ErrUnexpectedEOF
	}
	return out, nil
}

// sdkDecodeAll decodes with the SDK's decoder, the reference.
func sdkDecodeAll(stream []byte) ([]decoded, error) {
	dec := eventstream.NewDecoder()
	r := bytes.NewReader(stream)
	var out []decoded
	for r.Len() > 0 {
		m, err := dec.Decode(r, nil)
		if err != nil {
			return out, err
		}
		str := func(name string) string {
			if v := m.Headers.Get(name); v != nil {
				if s, ok := v.(eventstream.StringValue); ok {
					return string(s)
				}
			}
			return ""
		}
		out = append(out, decoded{str(":message-type"), str(":event-type"), str(":exception-type"), str(":content-type"),
			str(":error-code"), str(":error-message"), string(m.Payload)})
	}
	return out, nil
}

// sampleStream encodes messages with every header type, as the format
// allows any, plus an error message.
func sampleStream(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	var all eventstream.Headers
	all.Set(":message-type", eventstream.StringValue("event"))
	all.Set(":event-type", eventstream.StringValue("contentBlockDelta"))
	all.Set("t", eventstream.BoolValue(true))
	all.Set("f", eventstream.BoolValue(false))
	all.Set("b", eventstream.Int8Value(-3))
	all.Set("s", eventstream.Int16Value(300))
	all.Set("i", eventstream.Int32Value(70000))
	all.Set("l", eventstream.Int64Value(1<<40))
	all.Set("bytes", eventstream.BytesValue([]byte{0, 1, 2}))
	all.Set("ts", eventstream.TimestampValue{})
	all.Set("id", eventstream.UUIDValue{1, 2, 3})
	all.Set(":content-type", eventstream.StringValue("application/json"))
	msgs := []eventstream.Message{
		{Headers: all, Payload: []byte(`{"contentBlockIndex":0,"delta":{"text":"hi"}}`)},
		{Payload: nil},
	}
	var errHeaders eventstream.Headers
	errHeaders.Set(":message-type", eventstream.StringValue("error"))
	errHeaders.Set(":error-code", eventstream.StringValue("InternalFailure"))
	errHeaders.Set(":error-message", eventstream.StringValue("An internal error occurred"))
	msgs = append(msgs, eventstream.Message{Headers: errHeaders})
	for _, m := range msgs {
		if err := enc.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestEventStreamDecoder_MatchesSDK(t *testing.T) {
	stream := sampleStream(t)
	want, err := sdkDecodeAll(stream)
	if err != nil || len(want) != 3 {
		t.Fatalf("sdk: %v %v", want, err)
	}
	runs := map[string][][][]byte{"whole": {{stream}}, "split": splitAt(stream)}
	var bytewise [][]byte
	for i := range stream {
		bytewise = append(bytewise, stream[i:i+1])
	}
	runs["byte by byte"] = [][][]byte{bytewise}
	for how, rs := range runs {
		for _, pieces := range rs {
			got, err := decodeAll(pieces)
			if err != nil || len(got) != len(want) {
				t.Fatalf("%s: %v %v", how, got, err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s: message %d = %+v, want %+v", how, i, got[i], want[i])
				}
			}
		}
	}
}

func splitAt(b []byte) [][][]byte {
	var out [][][]byte
	for i := 0; i <= len(b); i++ {
		out = append(out, [][]byte{b[:i:i], b[i:]})
	}
	return out
}

// frame builds a message by hand so tests can break the rules the SDK's
// encoder keeps.
func frame(headers, payload []byte) []byte {
	total := esMinMessageLen + len(headers) + len(payload)
	b := binary.BigEndian.AppendUint32(nil, uint32(total))
	b = binary.BigEndian.AppendUint32(b, uint32(len(headers)))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	b = append(b, headers...)
	b = append(b, payload...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func TestEventStreamDecoder_Errors(t *testing.T) {
	good := frame([]byte("\x0d:message-type\x07\x00\x05event"), []byte("{}"))
	badPrelude := bytes.Clone(good)
	badPrelude[11] ^= 1
	badMessage := bytes.Clone(good)
	badMessage[len(badMessage)-1] ^= 1
	badPayload := bytes.Clone(good)
	badPayload[len(badPayload)-5] ^= 1
	huge := binary.BigEndian.AppendUint32(nil, esMaxMessageLen+1)
	huge = binary.BigEndian.AppendUint32(huge, 0)
	huge = binary.BigEndian.AppendUint32(huge, crc32.ChecksumIEEE(huge))
	headersTooLong := binary.BigEndian.AppendUint32(nil, 20)
	headersTooLong = binary.BigEndian.AppendUint32(headersTooLong, 5)
	headersTooLong = binary.BigEndian.AppendUint32(headersTooLong, crc32.ChecksumIEEE(headersTooLong))
	tests := []struct {
		name   string
		stream []byte
		want   error
		// sdkAccepts marks frames the SDK's decoder takes although the
		// format forbids them.
		sdkAccepts bool
	}{
		{"prelude checksum", badPrelude, errEventStream, false},
		{"message checksum", badMessage, errEventStream, false},
		{"payload flipped", badPayload, errEventStream, false},
		{"length over the limit", huge, errEventStream, false},
		{"headers longer than the message", headersTooLong, errEventStream, false},
		{"unknown header type", frame([]byte("\x01x\x0a"), nil), errEventStream, false},
		{"empty header name", frame([]byte("\x00\x07\x00\x00"), nil), errEventStream, true},
		{"truncated string header", frame([]byte("\x01x\x07\x00\x09ab"), nil), errEventStream, false},
		{"truncated int header", frame([]byte("\x01x\x04\x00"), nil), errEventStream, false},
		{"cut short", good[:len(good)-1], io.ErrUnexpectedEOF, false},
		{"cut in the prelude", good[:5], io.ErrUnexpectedEOF, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, split := range splitAt(tt.stream) {
				if _, err := decodeAll(split); !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
			}
			if _, err := sdkDecodeAll(tt.stream); err == nil && !tt.sdkAccepts {
				t.Error("the SDK's decoder accepts what ours rejects")
			}
		})
	}
	if got, err := decodeAll([][]byte{good}); err != nil || len(got) != 1 || got[0].messageType != "event" || got[0].payload != "{}" {
		t.Errorf("good frame: %+v %v", got, err)
	}
}

// FuzzEventStreamDecoder checks that the decoder never panics, that its
// output does not depend on how the input was cut, and that every message
// it accepts the SDK's decoder accepts the same way.
func FuzzEventStreamDecoder(f *testing.F) {
	f.Add(sampleStream(f), 7)
	f.Add(frame([]byte("\x01x\x07\x00\x02ab"), []byte("p")), 3)
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		cut = min(max(cut, 0), len(stream))
		whole, werr := decodeAll([][]byte{stream})
		split, serr := decodeAll([][]byte{stream[:cut:cut], stream[cut:]})
		if len(whole) != len(split) || (werr == nil) != (serr == nil) {
			t.Fatalf("cut at %d changes the result: %v %v / %v %v", cut, whole, werr, split, serr)
		}
		for i := range whole {
			if whole[i] != split[i] {
				t.Fatalf("message %d differs when cut", i)
			}
		}
		ref, _ := sdkDecodeAll(stream)
		for i := range whole {
			// The SDK rejects some header types in frames the format allows
			// (and vice versa), so compare only what both decoded.
			if i < len(ref) && whole[i] != ref[i] {
				t.Fatalf("message %d = %+v, SDK %+v", i, whole[i], ref[i])
			}
		}
	})
}

func BenchmarkEventStreamDecoder(b *testing.B) {
	stream := sampleStream(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		var d eventStreamDecoder
		rest := stream
		for {
			_, tail, ok, err := d.next(rest)
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
			rest = tail
		}
	}
}
