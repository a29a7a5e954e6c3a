package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrameSize is the largest control-message payload WriteFrame writes and
// the default limit of ReadFrame: 1 MiB. Bulk data (bundles) never travels in
// frames; it has its own stream with a declared size.
const MaxFrameSize = 1 << 20

// frameHeaderSize is the length prefix: 4 bytes, big-endian.
const frameHeaderSize = 4

// ErrFrameTooLarge is returned (wrapped) by WriteFrame for a payload larger
// than MaxFrameSize and by ReadFrame for a declared length larger than its
// limit. ReadFrame detects it from the header alone, before allocating or
// reading the payload; the stream is then out of step and should be aborted.
var ErrFrameTooLarge = errors.New("transport: frame too large")

// WriteFrame writes p as one frame: its length as 4 bytes big-endian, then p.
// It fails with an error wrapping ErrFrameTooLarge, writing nothing, if
// len(p) > MaxFrameSize. It issues a single Write so that frames written by
// one goroutine are not interleaved with partial frames.
func WriteFrame(w io.Writer, p []byte) error {
	if len(p) > MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(p), MaxFrameSize)
	}
	buf := make([]byte, frameHeaderSize+len(p))
	binary.BigEndian.PutUint32(buf, uint32(len(p)))
	copy(buf[frameHeaderSize:], p)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("transport: write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame written by WriteFrame and returns its payload
// (non-nil, possibly empty). max <= 0 means MaxFrameSize; a max above
// MaxFrameSize is allowed for callers that know better.
//
// Errors: io.EOF if r ends cleanly before the first header byte;
// io.ErrUnexpectedEOF if it ends inside a header or payload; an error
// wrapping ErrFrameTooLarge if the declared length exceeds max (nothing is
// allocated for it, and the payload is left unread); otherwise r's error.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	if max <= 0 {
		max = MaxFrameSize
	}
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err // io.EOF, io.ErrUnexpectedEOF or r's error, unwrapped so callers can compare
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: declared %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return p, nil
}
