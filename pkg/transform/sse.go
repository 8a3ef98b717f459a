package transform

import "bytes"

// Server-sent events arrive in pieces that may split a line anywhere. The
// stream translators work line by line: a data line is one event for every
// provider here, so the only state needed between pieces is the unfinished
// last line.

// lineCarry holds the unfinished last line of the previous piece.
type lineCarry struct {
	buf []byte
}

// complete returns the line that finishes the carried one with the head of
// chunk, and the rest of chunk. ok is false when chunk holds no line end; the
// whole chunk is then carried (and, when final, returned as the last line).
// The returned line aliases the carry buffer: use it before calling keep.
func (c *lineCarry) complete(chunk []byte, final bool) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(chunk, '\n')
	if i < 0 {
		c.buf = append(c.buf, chunk...)
		if final {
			line = c.buf
			c.buf = c.buf[:0]
			return line, nil, true
		}
		return nil, nil, false
	}
	c.buf = append(c.buf, chunk[:i+1]...)
	line = c.buf
	c.buf = c.buf[:0]
	return line, chunk[i+1:], true
}

// pending reports whether an unfinished line is carried.
func (c *lineCarry) pending() bool { return len(c.buf) > 0 }

// keep carries the unfinished tail of a piece.
func (c *lineCarry) keep(tail []byte) { c.buf = append(c.buf[:0], tail...) }

// sseData returns the payload of a "data:" line, without the line end and
// the optional space after the colon. ok is false for other lines.
func sseData(line []byte) (data []byte, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	if !bytes.HasPrefix(line, []byte("data:")) {
		return nil, false
	}
	data = line[len("data:"):]
	if len(data) > 0 && data[0] == ' ' {
		data = data[1:]
	}
	return data, true
}

// isBlankLine reports whether line is an event separator.
func isBlankLine(line []byte) bool {
	return len(bytes.TrimRight(line, "\r\n")) == 0
}

// sseDone is OpenAI's end-of-stream sentinel payload.
const sseDone = "[DONE]"
