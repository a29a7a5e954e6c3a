package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func frame(n uint32, payload string) []byte {
	b := binary.BigEndian.AppendUint32(nil, n)
	return append(b, payload...)
}

func TestReadFrame(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    string
		wantErr error
	}{
		{"empty payload", frame(0, ""), 0, "", nil},
		{"hello", frame(5, "hello"), 0, "hello", nil},
		{"trailing bytes left unread", frame(2, "hi there"), 0, "hi", nil},
		{"exactly max", frame(3, "abc"), 3, "abc", nil},
		{"over max", frame(4, "abcd"), 3, "", ErrFrameTooLarge},
		{"over MaxFrameSize, default max", frame(MaxFrameSize+1, ""), 0, "", ErrFrameTooLarge},
		{"huge declared length", frame(0xFFFFFFFF, ""), 0, "", ErrFrameTooLarge},
		{"nothing", nil, 0, "", io.EOF},
		{"short header", []byte{0, 0}, 0, "", io.ErrUnexpectedEOF},
		{"short payload", frame(10, "abc"), 0, "", io.ErrUnexpectedEOF},
		{"header only", frame(1, ""), 0, "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tt.in), tt.max)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, got)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestReadFrameOneByteReads(t *testing.T) {
	got, err := ReadFrame(iotest.OneByteReader(bytes.NewReader(frame(5, "hello"))), 0)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
}

func TestReadFrameReaderError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadFrame(iotest.ErrReader(boom), 0)
	assert.ErrorIs(t, err, boom)
}

func TestReadFrameDoesNotAllocateDeclaredLength(t *testing.T) {
	in := frame(0xFFFFFFFF, "")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		_, err := ReadFrame(bytes.NewReader(in), 0)
		require.ErrorIs(t, err, ErrFrameTooLarge)
	}
	runtime.ReadMemStats(&after)
	// 100 rejected 4 GiB frames: a few small objects each, nothing near the
	// declared size.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20))
}

func TestWriteFrame(t *testing.T) {
	for _, p := range [][]byte{nil, {}, []byte("hello"), bytes.Repeat([]byte{7}, MaxFrameSize)} {
		var buf bytes.Buffer
		require.NoError(t, WriteFrame(&buf, p))
		assert.Equal(t, 4+len(p), buf.Len())
		got, err := ReadFrame(&buf, 0)
		require.NoError(t, err)
		assert.Equal(t, len(p), len(got))
		assert.True(t, bytes.Equal(p, got))
	}

	var buf bytes.Buffer
	err := WriteFrame(&buf, make([]byte, MaxFrameSize+1))
	assert.ErrorIs(t, err, ErrFrameTooLarge)
	assert.Zero(t, buf.Len(), "nothing written for a too-large frame")

	err = WriteFrame(errWriter{}, []byte("x"))
	assert.ErrorIs(t, err, io.ErrClosedPipe)
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func FuzzReadFrame(f *testing.F) {
	f.Add(frame(5, "hello"), 0)
	f.Add(frame(0, ""), 16)
	f.Add(frame(0xFFFFFFFF, "x"), 0)
	f.Add([]byte{0, 0, 1}, 0)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max > 1<<16 {
			max = 1 << 16 // keep the fuzzer from asking for huge allocations
		}
		limit := max
		if limit <= 0 {
			limit = MaxFrameSize
		}
		got, err := ReadFrame(bytes.NewReader(in), max)
		if err != nil {
			if got != nil {
				t.Fatalf("payload %q returned with error %v", got, err)
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(got) > limit {
			t.Fatalf("got %d bytes, limit %d", len(got), limit)
		}
		if !bytes.Equal(in[4:4+len(got)], got) {
			t.Fatal("payload differs from input")
		}
		// What WriteFrame makes of it reads back the same.
		var buf bytes.Buffer
		if err := WriteFrame(&buf, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), in[:4+len(got)]) {
			t.Fatal("WriteFrame does not reproduce the frame")
		}
	})
}
