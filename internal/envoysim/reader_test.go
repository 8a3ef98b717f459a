package envoysim

import (
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// dataThenError returns its data and its error from the same Read, as a
// chunked body does when the connection drops right after a write.
type dataThenError struct {
	data []byte
	err  error
}

func (r *dataThenError) Read(p []byte) (int, error) {
	if r.data == nil {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = nil
	return n, r.err
}

func TestReader(t *testing.T) {
	reset := errors.New("connection reset")
	tests := []struct {
		name string
		r    io.Reader
		want []chunk
	}{
		{name: "data before a failure is delivered first",
			r:    &dataThenError{data: []byte("data: 1\n\n"), err: reset},
			want: []chunk{{data: []byte("data: 1\n\n")}, {err: reset}}},
		{name: "failure with no data",
			r:    iotest.ErrReader(reset),
			want: []chunk{{err: reset}}},
		{name: "data with end of stream",
			r:    &dataThenError{data: []byte("x"), err: io.EOF},
			want: []chunk{{data: []byte("x"), eos: true}}},
		{name: "no body", r: nil, want: []chunk{{eos: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := reader(tt.r)
			for i, want := range tt.want {
				got := next()
				if string(got.data) != string(want.data) || got.eos != want.eos || !errors.Is(got.err, want.err) {
					t.Fatalf("chunk %d = {%q eos=%v err=%v}, want {%q eos=%v err=%v}", i, got.data, got.eos, got.err, want.data, want.eos, want.err)
				}
			}
		})
	}
}
