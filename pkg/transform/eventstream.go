package transform

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// AWS event stream framing (application/vnd.amazon.eventstream), which
// Bedrock uses for streamed responses. A message is:
//
//	total length   uint32 (whole message, these 4 bytes and both CRCs included)
//	headers length uint32
//	prelude CRC    uint32 (CRC-32 of the 8 bytes above)
//	headers        name length uint8, name, value type uint8, value
//	payload        total - headers - 16 bytes
//	message CRC    uint32 (CRC-32 of everything before it)
//
// Messages arrive in pieces cut anywhere, so the decoder carries the
// unfinished tail of a piece to the next one, as lineCarry does for SSE.

const (
	// esPreludeLen is the total and headers lengths plus the prelude CRC.
	esPreludeLen = 12
	// esMinMessageLen is a message with no headers and no payload.
	esMinMessageLen = esPreludeLen + 4
	// esMaxMessageLen bounds a message so that a corrupt length cannot make
	// the decoder buffer without limit: the format allows 16 MiB of payload
	// and 128 KiB of headers.
	esMaxMessageLen = 16<<20 + 128<<10 + esMinMessageLen
)

// Event stream header value types, as numbered by the format.
const (
	esTrue byte = iota
	esFalse
	esByte
	esInt16
	esInt32
	esInt64
	esBytes
	esString
	esTimestamp
	esUUID
)

// errEventStream marks a message that breaks the framing rules.
var errEventStream = errors.New("bad event stream message")

// eventMessage is one decoded message. Its fields alias the bytes it was
// decoded from, so they are valid only until the decoder's next call.
type eventMessage struct {
	// messageType is "event", "exception" or "error".
	messageType []byte
	// eventType names an event (messageStart, contentBlockDelta, ...).
	eventType []byte
	// exceptionType names a modelled exception (throttlingException, ...).
	exceptionType []byte
	contentType   []byte
	// errorCode and errorMessage describe an unmodelled "error" message.
	errorCode    []byte
	errorMessage []byte
	payload      []byte
}

// eventStreamDecoder splits an event stream into messages.
type eventStreamDecoder struct {
	carry []byte
	// carried reports that the last message returned aliases carry, which
	// is reset at the next call.
	carried bool
}

// next returns the next complete message in the carried bytes followed by
// data, and the part of data not consumed. ok is false when no complete
// message is available; data is then carried whole. A framing error is
// final: the stream cannot be resynchronised.
func (d *eventStreamDecoder) next(data []byte) (m eventMessage, rest []byte, ok bool, err error) {
	if d.carried {
		d.carry = d.carry[:0]
		d.carried = false
	}
	if len(d.carry) == 0 {
		if len(data) < esPreludeLen {
			d.carry = append(d.carry, data...)
			return m, nil, false, nil
		}
		total, err := esPrelude(data)
		if err != nil {
			return m, nil, false, err
		}
		if len(data) < total {
			d.carry = append(d.carry, data...)
			return m, nil, false, nil
		}
		m, err = decodeEventMessage(data[:total])
		return m, data[total:], err == nil, err
	}
	// Complete the prelude first: it says how much more to take.
	if len(d.carry) < esPreludeLen {
		n := min(esPreludeLen-len(d.carry), len(data))
		d.carry = append(d.carry, data[:n]...)
		data = data[n:]
		if len(d.carry) < esPreludeLen {
			return m, nil, false, nil
		}
	}
	total, err := esPrelude(d.carry)
	if err != nil {
		return m, nil, false, err
	}
	n := min(total-len(d.carry), len(data))
	d.carry = append(d.carry, data[:n]...)
	data = data[n:]
	if len(d.carry) < total {
		return m, nil, false, nil
	}
	d.carried = true
	m, err = decodeEventMessage(d.carry)
	return m, data, err == nil, err
}

// pending reports whether part of a message is carried.
func (d *eventStreamDecoder) pending() bool { return !d.carried && len(d.carry) > 0 }

// esPrelude checks the prelude at the start of b (at least esPreludeLen
// bytes) and returns the message's total length.
func esPrelude(b []byte) (int, error) {
	total := binary.BigEndian.Uint32(b[0:4])
	headers := binary.BigEndian.Uint32(b[4:8])
	if crc32.ChecksumIEEE(b[0:8]) != binary.BigEndian.Uint32(b[8:12]) {
		return 0, fmt.Errorf("%w: prelude checksum mismatch", errEventStream)
	}
	if total < esMinMessageLen || total > esMaxMessageLen || uint64(headers) > uint64(total)-esMinMessageLen {
		return 0, fmt.Errorf("%w: length %d with %d header bytes", errEventStream, total, headers)
	}
	return int(total), nil
}

// decodeEventMessage decodes one whole message whose prelude has been
// checked.
func decodeEventMessage(b []byte) (eventMessage, error) {
	var m eventMessage
	end := len(b) - 4
	if crc32.ChecksumIEEE(b[:end]) != binary.BigEndian.Uint32(b[end:]) {
		return m, fmt.Errorf("%w: message checksum mismatch", errEventStream)
	}
	hend := esPreludeLen + int(binary.BigEndian.Uint32(b[4:8]))
	m.payload = b[hend:end]
	h := b[esPreludeLen:hend]
	for len(h) > 0 {
		nameLen := int(h[0])
		if nameLen == 0 || len(h) < 1+nameLen+1 {
			return m, fmt.Errorf("%w: truncated header", errEventStream)
		}
		name := h[1 : 1+nameLen]
		typ := h[1+nameLen]
		h = h[2+nameLen:]
		var size int
		switch typ {
		case esTrue, esFalse:
		case esByte:
			size = 1
		case esInt16:
			size = 2
		case esInt32:
			size = 4
		case esInt64, esTimestamp:
			size = 8
		case esUUID:
			size = 16
		case esBytes, esString:
			if len(h) < 2 {
				return m, fmt.Errorf("%w: truncated header", errEventStream)
			}
			size = 2 + int(binary.BigEndian.Uint16(h))
		default:
			return m, fmt.Errorf("%w: header value type %d", errEventStream, typ)
		}
		if len(h) < size {
			return m, fmt.Errorf("%w: truncated header", errEventStream)
		}
		if typ == esString {
			m.setHeader(name, h[2:size])
		}
		h = h[size:]
	}
	return m, nil
}

// setHeader keeps the string headers the translators read.
func (m *eventMessage) setHeader(name, value []byte) {
	switch string(name) {
	case ":message-type":
		m.messageType = value
	case ":event-type":
		m.eventType = value
	case ":exception-type":
		m.exceptionType = value
	case ":content-type":
		m.contentType = value
	case ":error-code":
		m.errorCode = value
	case ":error-message":
		m.errorMessage = value
	}
}
