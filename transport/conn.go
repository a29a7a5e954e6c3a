package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/peersync/peersync/crypto"
)

// Conn is an authenticated, encrypted connection to one peer device,
// carrying any number of concurrent streams: QUIC, or yamux over TLS over
// TCP (PathTCP). Both kinds behave the same through this API. It is safe
// for concurrent use.
type Conn struct {
	l        link
	peer     crypto.DeviceID
	outgoing bool
	path     Path        // set before the Conn is handed out
	ice      *iceSession // the ICE agent keeping the path open, nil unless an ICE path; set before the Conn is handed out
}

// link is what a Conn runs on: a QUIC connection (quicLink) or a yamux
// session over TLS over TCP (tcpLink).
type link interface {
	// context is cancelled, with the connection's error as its cause, when
	// the connection has ended.
	context() context.Context
	openStream(ctx context.Context) (streamImpl, error)
	acceptStream(ctx context.Context) (streamImpl, error)
	// closeWithError closes the connection, telling the peer code and msg,
	// and returns once it has ended.
	closeWithError(code CloseCode, msg string) error
	// wait returns once the goroutines of an ended connection are gone.
	wait()
	remoteAddr() net.Addr
	localAddr() net.Addr
}

// streamImpl is one stream of a link. See Stream for the semantics.
type streamImpl interface {
	io.ReadWriteCloser
	closeRead()
	abort()
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

func newConn(qc *quic.Conn, peer crypto.DeviceID, outgoing bool) *Conn {
	return &Conn{l: quicLink{qc}, peer: peer, outgoing: outgoing, path: PathDirect}
}

// Path is how a connection was made, as Conn.Path reports it: one of the
// constants below.
type Path string

// String returns the path's name, as in the constants below.
func (p Path) String() string { return string(p) }

// Paths a connection can take.
const (
	// PathDirect: QUIC Dial to an address the caller knew, or Accept of a
	// QUIC connection no AcceptICE was waiting for.
	PathDirect Path = "direct"
	// PathICEHost: ICE selected a pair of host candidates (same network,
	// no NAT in between).
	PathICEHost Path = "ice-host"
	// PathICESrflx: ICE selected a pair with a server- or peer-reflexive
	// candidate: the path crosses a NAT whose mapping ICE punched.
	PathICESrflx Path = "ice-srflx"
	// PathICERelay: the path goes through a TURN relay (ICEConfig.TURNServers),
	// the last resort when neither side can be reached directly (symmetric NATs).
	PathICERelay Path = "ice-relay"
	// PathTCP: TLS over TCP with yamux streams (DialTCP, or Accept of a
	// connection that came in on Transport.TCPAddr), for networks that drop
	// UDP and for lossy ones (see the package documentation, "TCP").
	PathTCP Path = "tcp"
)

// Path reports how the connection was established: PathDirect,
// PathICEHost, PathICESrflx, PathICERelay or PathTCP.
func (c *Conn) Path() Path { return c.path }

// Peer returns the remote device, as proven in the TLS handshake.
func (c *Conn) Peer() crypto.DeviceID { return c.peer }

// RemoteAddr returns the peer's address: a *net.UDPAddr, or a *net.TCPAddr
// for PathTCP.
func (c *Conn) RemoteAddr() net.Addr { return c.l.remoteAddr() }

// LocalAddr returns our address: the Transport's UDP socket, or for
// PathTCP our end of the TCP connection.
func (c *Conn) LocalAddr() net.Addr { return c.l.localAddr() }

// Outgoing reports whether we dialed the connection (false: we accepted it).
// With two connections to the same peer, both ends can use it and the
// DeviceIDs to agree on which one to keep.
func (c *Conn) Outgoing() bool { return c.outgoing }

// OpenStream opens a new stream to the peer. On QUIC it waits while the
// peer's limit of concurrent streams (100) is reached, and the peer's
// AcceptStream returns the stream only once we have written to it (or
// closed it); on PathTCP it waits while 100 of our streams are not yet
// accepted by the peer, and the peer can accept the stream at once, but
// a stream beyond the 100 the peer has open is reset by the peer (its
// Read and Write fail with a *StreamResetError with Remote set).
//
// Errors: one wrapping ctx.Err() on cancellation; the connection's error
// (see Err) if it is gone.
func (c *Conn) OpenStream(ctx context.Context) (*Stream, error) {
	s, err := c.l.openStream(ctx)
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
	s, err := c.l.acceptStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport: accept stream from %s: %w", c.peer.Short(), err)
	}
	return &Stream{s: s}, nil
}

// Done returns a channel closed when the connection has ended, whichever side
// ended it and why (close, idle timeout, Transport.Close).
func (c *Conn) Done() <-chan struct{} { return c.l.context().Done() }

// Err returns why the connection ended, or nil while it is open, the same
// on every path: a close by the peer's CloseWithError (or Close) is a
// *CloseError with Remote set and the peer's code and message; our own
// close is one without Remote; an idle timeout wraps ErrIdleTimeout; a
// connection that broke without a close says so. Every such error wraps
// net.ErrClosed.
func (c *Conn) Err() error {
	ctx := c.l.context()
	if ctx.Err() == nil {
		return nil
	}
	if err := fromQUIC(context.Cause(ctx)); err != nil && err != context.Canceled {
		return err
	}
	return lostErr(errors.New("no reason given"))
}

// Close closes the connection with code 0, telling the peer, and waits until
// it is gone. Streams fail with the connection's error. Close is idempotent
// and returns nil.
func (c *Conn) Close() error { return c.CloseWithError(CloseNormal, "") }

// CloseWithError closes the connection, sending code and msg to the peer
// (its Err is a *CloseError with them; msg is cut to 1024 bytes on
// PathTCP), and returns once the connection has ended for us: Done is
// closed, and new stream operations fail with Err. It does not wait for
// the peer (on PathTCP the connection lingers in the background, up to a
// second, until the peer has taken the message, and streams blocked in
// Read or Write return then; Transport.Close waits for that). Only the
// first close of a connection takes effect; later ones return nil.
func (c *Conn) CloseWithError(code CloseCode, msg string) error {
	return c.l.closeWithError(code, msg)
}

var _ io.ReadWriteCloser = (*Stream)(nil)

// Stream is a bidirectional, reliable, ordered byte stream within a Conn.
// Read and Write may be called concurrently with each other, but not Read
// with Read or Write with Write.
type Stream struct {
	s streamImpl
}

// streamAbortCode is the code sent to the peer by Abort and CloseRead.
const streamAbortCode = 0

// Read reads data sent by the peer. It returns io.EOF after the peer's
// Close, a *StreamResetError once the stream was reset (Remote set if the
// peer aborted it), and the connection's error (see Conn.Err) once that
// has ended.
func (s *Stream) Read(p []byte) (int, error) { return s.s.Read(p) }

// Write sends p. It blocks while the peer's flow-control window is full.
// Its errors are those of Read.
func (s *Stream) Write(p []byte) (int, error) { return s.s.Write(p) }

// Close closes our sending direction: the peer reads io.EOF after the data
// already written. Our receiving direction stays open.
func (s *Stream) Close() error { return s.s.Close() }

// CloseRead stops receiving: data the peer sends is discarded and our
// Reads fail with a *StreamResetError. Our sending direction stays open.
// On QUIC the peer's writes then fail; on PathTCP (yamux has no one-way
// reset) they block once our receive window is full, until the stream is
// closed or aborted, and once both our directions are closed the stream is
// freed and what the peer still sends is dropped unread. It returns nil:
// cancelling cannot fail (the error result is there for io-style
// interfaces).
func (s *Stream) CloseRead() error {
	s.s.closeRead()
	return nil
}

// Abort resets both directions: pending data is dropped and the peer's
// Read and Write fail with a *StreamResetError with Remote set; ours fail
// with one without.
func (s *Stream) Abort() { s.s.abort() }

// SetDeadline sets the read and write deadlines; a zero t means none. A
// Read or Write past its deadline fails with an error for which
// errors.Is(err, os.ErrDeadlineExceeded) holds.
func (s *Stream) SetDeadline(t time.Time) error { return s.s.SetDeadline(t) }

// SetReadDeadline sets the read deadline only.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.s.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline only.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// quicLink is a link over a QUIC connection.
type quicLink struct{ qc *quic.Conn }

var _ link = quicLink{}

func (l quicLink) context() context.Context { return l.qc.Context() }
func (l quicLink) remoteAddr() net.Addr     { return l.qc.RemoteAddr() }
func (l quicLink) localAddr() net.Addr      { return l.qc.LocalAddr() }

func (l quicLink) openStream(ctx context.Context) (streamImpl, error) {
	s, err := l.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fromQUIC(err)
	}
	return quicStream{s}, nil
}

func (l quicLink) acceptStream(ctx context.Context) (streamImpl, error) {
	s, err := l.qc.AcceptStream(ctx)
	if err != nil {
		return nil, fromQUIC(err)
	}
	return quicStream{s}, nil
}

func (l quicLink) wait() {} // quic-go's are the quic.Transport's business

func (l quicLink) closeWithError(code CloseCode, msg string) error {
	return l.qc.CloseWithError(quic.ApplicationErrorCode(code), msg)
}

// quicStream is a streamImpl over a QUIC stream.
type quicStream struct{ *quic.Stream }

func (s quicStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	return n, fromQUIC(err)
}

func (s quicStream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	return n, fromQUIC(err)
}

func (s quicStream) Close() error { return fromQUIC(s.Stream.Close()) }

func (s quicStream) closeRead() { s.CancelRead(streamAbortCode) }

func (s quicStream) abort() {
	s.CancelWrite(streamAbortCode)
	s.CancelRead(streamAbortCode)
}
