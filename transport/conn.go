package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/peersync/peersync/crypto"
)

// Conn is an authenticated, encrypted connection to one peer device,
// carrying any number of concurrent streams. It is safe for concurrent use.
type Conn struct {
	qc       *quic.Conn
	peer     crypto.DeviceID
	outgoing bool
	path     string      // one of the Path constants; set before the Conn is handed out
	ice      *iceSession // the ICE agent keeping the path open, nil for PathDirect; set before the Conn is handed out
}

func newConn(qc *quic.Conn, peer crypto.DeviceID, outgoing bool) *Conn {
	return &Conn{qc: qc, peer: peer, outgoing: outgoing, path: PathDirect}
}

// Paths a connection can take, as Conn.Path reports them.
const (
	// PathDirect: Dial to an address the caller knew, or Accept of a
	// connection no AcceptICE was waiting for.
	PathDirect = "direct"
	// PathICEHost: ICE selected a pair of host candidates (same network,
	// no NAT in between).
	PathICEHost = "ice-host"
	// PathICESrflx: ICE selected a pair with a server- or peer-reflexive
	// candidate: the path crosses a NAT whose mapping ICE punched.
	PathICESrflx = "ice-srflx"
	// PathICERelay: the path goes through a TURN relay (ICEConfig.TURNServers),
	// the last resort when neither side can be reached directly (symmetric NATs).
	PathICERelay = "ice-relay"
)

// Path reports how the connection was established: PathDirect,
// PathICEHost, PathICESrflx or PathICERelay.
func (c *Conn) Path() string { return c.path }

// Peer returns the remote device, as proven in the TLS handshake.
func (c *Conn) Peer() crypto.DeviceID { return c.peer }

// RemoteAddr returns the peer's UDP address.
func (c *Conn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

// LocalAddr returns our UDP address (the Transport's socket).
func (c *Conn) LocalAddr() net.Addr { return c.qc.LocalAddr() }

// Outgoing reports whether we dialed the connection (false: we accepted it).
// With two connections to the same peer, both ends can use it and the
// DeviceIDs to agree on which one to keep.
func (c *Conn) Outgoing() bool { return c.outgoing }

// OpenStream opens a new stream to the peer, waiting while the peer's limit
// of concurrent streams (100) is reached. The peer's AcceptStream returns it
// only once we have written to it (or closed it).
//
// Errors: one wrapping ctx.Err() on cancellation; the connection's error
// (see Err) if it is gone.
func (c *Conn) OpenStream(ctx context.Context) (*Stream, error) {
	s, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport: open stream to %s: %w", c.peer.Short(), err)
	}
	return &Stream{s: s}, nil
}

// AcceptStream returns the next stream the peer opened.
//
// Errors: one wrapping ctx.Err() on cancellation; the connection's error
// (see Err) if it is gone.
func (c *Conn) AcceptStream(ctx context.Context) (*Stream, error) {
	s, err := c.qc.AcceptStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport: accept stream from %s: %w", c.peer.Short(), err)
	}
	return &Stream{s: s}, nil
}

// Done returns a channel closed when the connection has ended, whichever side
// ended it and why (close, idle timeout, Transport.Close).
func (c *Conn) Done() <-chan struct{} { return c.qc.Context().Done() }

// Err returns why the connection ended, or nil while it is open. A close by
// the peer's CloseWithError is a *quic.ApplicationError with Remote set and
// the peer's code; an idle timeout is a *quic.IdleTimeoutError. Every such
// error wraps net.ErrClosed.
func (c *Conn) Err() error {
	ctx := c.qc.Context()
	if ctx.Err() == nil {
		return nil
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return net.ErrClosed
}

// Close closes the connection with code 0, telling the peer, and waits until
// it is gone. Streams fail with the connection's error. Close is idempotent
// and returns nil.
func (c *Conn) Close() error { return c.CloseWithError(codeClosed, "") }

// CloseWithError closes the connection, sending code and msg to the peer
// (its Err reports them), and waits until it is gone. Only the first close
// of a connection takes effect; later ones return nil.
func (c *Conn) CloseWithError(code uint64, msg string) error {
	return c.qc.CloseWithError(quic.ApplicationErrorCode(code), msg)
}

var _ io.ReadWriteCloser = (*Stream)(nil)

// Stream is a bidirectional, reliable, ordered byte stream within a Conn.
// Read and Write may be called concurrently with each other, but not Read
// with Read or Write with Write.
type Stream struct {
	s *quic.Stream
}

// streamAbortCode is the code sent to the peer by Abort and CloseRead.
const streamAbortCode = 0

// Read reads data sent by the peer. It returns io.EOF after the peer's
// Close, and a *quic.StreamError if the peer aborted the stream.
func (s *Stream) Read(p []byte) (int, error) { return s.s.Read(p) }

// Write sends p. It blocks while the peer's flow-control window is full.
func (s *Stream) Write(p []byte) (int, error) { return s.s.Write(p) }

// Close closes our sending direction: the peer reads io.EOF after the data
// already written. Our receiving direction stays open.
func (s *Stream) Close() error { return s.s.Close() }

// CloseRead stops receiving: data the peer sends is discarded and its
// writes fail. Our sending direction stays open. It returns nil: cancelling
// cannot fail (the error result is there for io-style interfaces).
func (s *Stream) CloseRead() error {
	s.s.CancelRead(streamAbortCode)
	return nil
}

// Abort resets both directions: pending data is dropped and the peer's
// Read and Write fail with a *quic.StreamError.
func (s *Stream) Abort() {
	s.s.CancelWrite(streamAbortCode)
	s.s.CancelRead(streamAbortCode)
}

// SetDeadline sets the read and write deadlines; a zero t means none. A
// Read or Write past its deadline fails with an error for which
// errors.Is(err, os.ErrDeadlineExceeded) holds.
func (s *Stream) SetDeadline(t time.Time) error { return s.s.SetDeadline(t) }

// SetReadDeadline sets the read deadline only.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.s.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline only.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }
