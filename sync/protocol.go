package sync

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// protocolVersion is the version of the exchange protocol this engine
// speaks (see the package doc, Exchange protocol). Version 3 drops the
// bundle's SHA-256 between version 3 peers (the pack's own checks, TLS and
// the length stand for it); version 2 streams bundles in chunks with
// progress frames and a trailer carrying that SHA-256; version 1 (an
// undeclared version) staged the whole bundle before a {"size":N} header.
const protocolVersion = 3

// protoNoSHA256 is the first version whose askers get no SHA-256 in the
// trailer and whose bundle frame declares the sender's version.
const protoNoSHA256 = 3

// Protocol messages. Every stream starts with one JSON frame (transport
// framing: 4-byte big-endian length, then the payload) whose Type says what
// the stream is for:
//
//   - "control": the opener's long-lived stream of announcements. Each side
//     opens exactly one per connection and sends "head" frames on it.
//   - "want": a request for a bundle. The answer on the same stream is a
//     sequence of answer frames (see answer).
//   - "rendezvous": a device asks the hosted server to relay its ICE
//     signaling; the rest of the stream is transport's rendezvous protocol.
//   - "mailbox": one request to the hosted server's blind mailbox and its
//     answer (see mailbox.go).
const (
	msgControl    = "control"
	msgHead       = "head"
	msgWant       = "want"
	msgRendezvous = "rendezvous" // the rest of the stream is transport's rendezvous protocol
	msgMailbox    = "mailbox"    // the rest of the stream is one mailbox request and its answer
)

// maxSince bounds how many "since" hashes a want may carry.
const maxSince = 64

// maxMessage bounds a JSON frame (messages and answer frames).
const maxMessage = 64 << 10

// message is the one JSON shape of every control frame.
type message struct {
	Type   string          `json:"type"`
	Proto  int             `json:"proto,omitempty"`  // control, want: the sender's protocolVersion
	Name   string          `json:"name,omitempty"`   // control: sender's device name
	Port   int             `json:"port,omitempty"`   // control: the port the sender listens on (0 = unknown)
	Folder string          `json:"folder,omitempty"` // head, want
	Label  string          `json:"label,omitempty"`  // head: the folder's label on the sender
	Head   gitstore.Hash   `json:"head,omitempty"`   // head: the sender's head
	Since  []gitstore.Hash `json:"since,omitempty"`  // want: commits the asker has
	// Resume, on a want, names a bundle the asker received in part: the
	// sender continues it at Offset if it still has it.
	Resume *resume `json:"resume,omitempty"`
}

// resume asks to continue a bundle from a byte offset.
type resume struct {
	Bundle string `json:"bundle"`
	Offset int64  `json:"offset"`
}

// Answer frame types on a want stream (see the package doc).
const (
	ansBundle   = "bundle"   // first: the bundle's ID and the offset its data starts at
	ansProgress = "progress" // keepalive while the sender prepares; Produced bytes so far
	ansEnd      = "end"      // trailer: total Size (and, to an asker before version 3, SHA256 of the whole bundle)
	ansNothing  = "nothing"  // the asker already has everything; the stream ends
	ansError    = "error"    // refused or failed; the stream ends
)

// answer is the JSON shape of every non-data frame on a want stream. A
// data frame is a 0x00 byte followed by bundle bytes (see dataTag).
type answer struct {
	Type     string `json:"type"`
	Bundle   string `json:"bundle,omitempty"`   // bundle: its ID (32 hex digits)
	Offset   int64  `json:"offset,omitempty"`   // bundle: the offset the data frames start at
	Proto    int    `json:"proto,omitempty"`    // bundle: the sender's protocolVersion (absent before version 3)
	Produced int64  `json:"produced,omitempty"` // progress: bytes the sender has produced
	Size     int64  `json:"size,omitempty"`     // end: total bytes of the bundle
	SHA256   string `json:"sha256,omitempty"`   // end: hex SHA-256 of the whole bundle (only to an asker before version 3)
	Error    string `json:"error,omitempty"`    // error: why
}

// dataTag starts a data frame; a JSON frame starts with '{'.
const dataTag = 0x00

// maxChunk is the most bundle bytes one data frame carries.
const maxChunk = 256 << 10

var (
	bundleIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)
	sha256Re   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// decodeMessage parses and validates one frame from a peer. Anything
// malformed is an error; the caller drops the stream.
func decodeMessage(b []byte) (message, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("sync: malformed message: %w", err)
	}
	switch m.Type {
	case msgRendezvous, msgMailbox:
	case msgControl:
		if len(m.Name) > maxLabel {
			return m, fmt.Errorf("sync: device name of %d bytes is too long", len(m.Name))
		}
		if m.Port < 0 || m.Port > 65535 {
			return m, fmt.Errorf("sync: port %d out of range", m.Port)
		}
	case msgHead, msgWant:
		if err := ValidFolderID(m.Folder); err != nil {
			return m, err
		}
		if len(m.Label) > maxLabel {
			return m, fmt.Errorf("sync: folder label of %d bytes is too long", len(m.Label))
		}
		if len(m.Since) > maxSince {
			return m, fmt.Errorf("sync: want with %d since-hashes (max %d)", len(m.Since), maxSince)
		}
		if r := m.Resume; r != nil && (!bundleIDRe.MatchString(r.Bundle) || r.Offset < 0) {
			return m, fmt.Errorf("sync: bad resume of bundle %q at %d", r.Bundle, r.Offset)
		}
	default:
		return m, fmt.Errorf("sync: unknown message type %q", m.Type)
	}
	return m, nil
}

// decodeAnswer parses and validates one JSON frame of a want's answer.
func decodeAnswer(b []byte) (answer, error) {
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("sync: malformed answer frame: %w", err)
	}
	switch a.Type {
	case ansBundle:
		if !bundleIDRe.MatchString(a.Bundle) || a.Offset < 0 {
			return a, fmt.Errorf("sync: bad bundle frame (ID %q, offset %d)", a.Bundle, a.Offset)
		}
	case ansProgress:
		if a.Produced < 0 {
			return a, fmt.Errorf("sync: negative progress %d", a.Produced)
		}
	case ansEnd:
		if a.Size < 0 || a.SHA256 != "" && !sha256Re.MatchString(a.SHA256) {
			return a, fmt.Errorf("sync: bad trailer (size %d, sha256 %q)", a.Size, a.SHA256)
		}
	case ansNothing, ansError:
	default:
		return a, fmt.Errorf("sync: unknown answer frame %q", a.Type)
	}
	return a, nil
}

// writeJSON writes v as one frame.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return transport.WriteFrame(w, b)
}

// errFrameTooLarge: a peer declared a frame longer than we accept.
var errFrameTooLarge = errors.New("frame too large")

// readFrameInto reads one frame into buf (reused; its capacity is the
// limit) and returns the payload. A declared length over the limit is an
// error before anything of the payload is read.
func readFrameInto(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(cap(buf)) {
		return nil, fmt.Errorf("sync: %w: declared %d bytes, limit %d", errFrameTooLarge, n, cap(buf))
	}
	p := buf[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return p, nil
}

// dataFrame is a reusable buffer for data frames: 4-byte length, dataTag,
// then up to maxChunk bytes.
type dataFrame [4 + 1 + maxChunk]byte

// payload is where the chunk's bytes go.
func (f *dataFrame) payload() []byte { return f[5:] }

// write sends the frame holding the first n bytes of payload.
func (f *dataFrame) write(w io.Writer, n int) error {
	binary.BigEndian.PutUint32(f[:4], uint32(1+n))
	f[4] = dataTag
	if _, err := w.Write(f[:5+n]); err != nil {
		return fmt.Errorf("sync: send bundle: %w", err)
	}
	return nil
}

func hexSum(b []byte) string { return hex.EncodeToString(b) }
