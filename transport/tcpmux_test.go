package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCloseFrame(t *testing.T) {
	tests := []struct {
		name string
		code uint64
		msg  string
		want string
	}{
		{"empty", 0, "", ""},
		{"message", 42, "bye", "bye"},
		{"max code", ^uint64(0), "x", "x"},
		{"cut at a rune", 3, string(bytes.Repeat([]byte("é"), maxCloseMessage)), string(bytes.Repeat([]byte("é"), maxCloseMessage/2))},
		{"invalid UTF-8 replaced", 4, "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := closeFrame(tt.code, tt.msg)
			require.GreaterOrEqual(t, len(f), muxHeaderSize+8)
			assert.EqualValues(t, muxTypeClose, f[1])
			assert.EqualValues(t, len(f)-muxHeaderSize, binary.BigEndian.Uint32(f[8:]))
			code, msg, err := parseCloseBody(f[muxHeaderSize:])
			require.NoError(t, err)
			assert.Equal(t, tt.code, code)
			assert.Equal(t, tt.want, msg)
		})
	}
	for _, bad := range [][]byte{nil, make([]byte, 7), append(make([]byte, 8), 0xff), make([]byte, maxCloseBody+1)} {
		_, _, err := parseCloseBody(bad)
		assert.ErrorIs(t, err, errBadCloseFrame)
	}
}

func FuzzCloseBody(f *testing.F) {
	f.Add(closeFrame(0, "")[muxHeaderSize:])
	f.Add(closeFrame(42, "bye")[muxHeaderSize:])
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		code, msg, err := parseCloseBody(b)
		if err != nil {
			return
		}
		// What parses survives a round trip.
		code2, msg2, err := parseCloseBody(closeFrame(code, msg)[muxHeaderSize:])
		if err != nil || code2 != code || msg2 != msg {
			t.Fatalf("round trip: %d %q → %d %q %v", code, msg, code2, msg2, err)
		}
	})
}

// chunkConn is a net.Conn that reads data in chunks of the given sizes.
type chunkConn struct {
	net.Conn
	data   []byte
	chunks []byte
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(c.chunks) > 0 {
		n = min(n, int(c.chunks[0])+1)
		c.chunks = c.chunks[1:]
	}
	n = copy(p, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

func (c *chunkConn) SetReadDeadline(time.Time) error { return nil }

// FuzzMuxConnRead feeds the peer's bytes, as the TLS connection would
// deliver them, through muxConn: whatever they are, yamux gets them
// unchanged up to a close frame, which muxConn takes out and ends on.
func FuzzMuxConnRead(f *testing.F) {
	data := func(id uint32, body string) []byte {
		h := make([]byte, muxHeaderSize)
		binary.BigEndian.PutUint32(h[4:], id)
		binary.BigEndian.PutUint32(h[8:], uint32(len(body)))
		return append(h, body...)
	}
	f.Add(data(1, "hello"), []byte{3, 0, 200})
	f.Add(append(append(data(1, "x"), rstFrame(1)...), closeFrame(7, "bye")...), []byte{})
	f.Add(append(closeFrame(1, ""), data(3, "after")...), []byte{1, 1, 1})
	f.Add([]byte{0, 0x80, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, in, chunks []byte) {
		var closed bool
		m := &muxConn{rc: &chunkConn{data: in, chunks: chunks}, onClose: func(uint64, string) { closed = true }}
		var out bytes.Buffer
		buf := make([]byte, 4096)
		var err error
		for range 10 * (len(in) + 10) {
			var n int
			n, err = m.Read(buf[:1+len(out.Bytes())%len(buf)])
			out.Write(buf[:n])
			if err != nil {
				break
			}
		}
		if err == nil {
			t.Fatal("no end")
		}
		if !bytes.HasPrefix(in, out.Bytes()) {
			t.Fatalf("yamux got bytes that were not sent")
		}
		if closed {
			rest := in[out.Len():]
			if len(rest) < muxHeaderSize || rest[1] != muxTypeClose || !errors.Is(err, io.EOF) {
				t.Fatalf("close reported without a close frame at a boundary")
			}
		}
	})
}
