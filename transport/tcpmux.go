package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/yamux"
	"github.com/quic-go/quic-go"
)

// The TCP path's streams: yamux (hashicorp/yamux v0.1.2) over the TLS
// connection, with two additions made beneath yamux, in muxConn, which sees
// every byte yamux reads and writes and knows where its frames begin:
//
//   - Stream reset. yamux v0.1.2 can receive a RST but has no call to send
//     one. Stream.Abort has muxConn write a RST frame for the stream at the
//     next frame boundary of the outgoing byte stream (the peer's yamux
//     handles it natively), and feed an identical frame to our own yamux at
//     the next boundary of the incoming one, so that our side of the stream
//     fails and is freed the same way.
//   - Close frame. yamux's GoAway carries no message. CloseWithError writes
//     a frame of a type yamux does not use (muxTypeClose) with the code and
//     message; the peer's muxConn takes it out of the byte stream, records
//     it and ends the session, so its Err reports them.
//
// yamux frame header (yamux spec.md), all big-endian:
//
//	+-------------+----------+-----------+----------------+----------------+
//	| version (1) | type (1) | flags (2) | stream ID (4)  | length (4)     |
//	+-------------+----------+-----------+----------------+----------------+
//
// Only data frames (type 0) have a body, of length bytes. The close frame
// is version 0, type 0x80, flags 0, stream ID 0, length 8+n, then the body:
// the application error code (uint64) and n ≤ 1024 bytes of UTF-8 message.

const (
	muxHeaderSize       = 12
	muxTypeData         = 0
	muxTypeWindowUpdate = 1
	muxFlagRST          = 0x8
	muxTypeClose        = 0x80 // ours; never reaches yamux
	maxCloseMessage     = 1024
	maxCloseBody        = 8 + maxCloseMessage

	// muxWindow is each stream's receive window: enough for about 1 Gbit/s
	// at 130 ms round trip on one stream.
	muxWindow = 16 << 20
	// maxMuxWrite bounds the data frames a Stream.Write makes, so that
	// other streams' frames and keepalives are not queued behind a
	// window's worth of one stream.
	maxMuxWrite = 256 << 10
	// muxBacklog is how many streams the peer may open that we have not
	// accepted yet (and how many of ours may wait for the peer's accept).
	muxBacklog = 256
	// closeLinger bounds the write of a close frame, and how long the socket
	// lingers after it for the peer to take it and end the connection.
	closeLinger = time.Second
)

// errBadCloseFrame is a malformed close frame: a protocol error.
var errBadCloseFrame = errors.New("transport: malformed close frame")

// closeFrame returns the close frame for code and msg; msg is cut to
// maxCloseMessage bytes (at a rune boundary).
func closeFrame(code uint64, msg string) []byte {
	if len(msg) > maxCloseMessage {
		cut := maxCloseMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	if !utf8.ValidString(msg) {
		msg = string([]rune(msg)) // replaces invalid bytes; can only grow by a few bytes per byte
		if len(msg) > maxCloseMessage {
			msg = ""
		}
	}
	b := make([]byte, muxHeaderSize+8+len(msg))
	b[1] = muxTypeClose
	binary.BigEndian.PutUint32(b[8:], uint32(8+len(msg)))
	binary.BigEndian.PutUint64(b[muxHeaderSize:], code)
	copy(b[muxHeaderSize+8:], msg)
	return b
}

// parseCloseBody parses the body of a close frame.
func parseCloseBody(b []byte) (code uint64, msg string, err error) {
	if len(b) < 8 || len(b) > maxCloseBody || !utf8.Valid(b[8:]) {
		return 0, "", errBadCloseFrame
	}
	return binary.BigEndian.Uint64(b), string(b[8:]), nil
}

// rstFrame returns a yamux window-update frame with the RST flag for id.
func rstFrame(id uint32) []byte {
	b := make([]byte, muxHeaderSize)
	b[1] = muxTypeWindowUpdate
	binary.BigEndian.PutUint16(b[2:], muxFlagRST)
	binary.BigEndian.PutUint32(b[4:], id)
	return b
}

// muxConn is the io.ReadWriteCloser yamux runs on: the TLS connection, with
// frame injection (see above). Read is called by yamux's receive goroutine
// only, Write by its send goroutine only.
type muxConn struct {
	rc net.Conn // the TLS connection

	// Read side; the fields up to rmu belong to the reading goroutine.
	rhdr  [muxHeaderSize]byte
	rhdrN int
	rout  []byte // bytes to hand to yamux before reading more: a header, or injected frames
	rbody uint32 // bytes of the current data frame's body yet to pass through
	rerr  error  // sticky read error (io.EOF after the close frame)

	rmu     sync.Mutex // guards rinject and kicked
	rinject []byte     // frames to feed yamux at the next frame boundary
	kicked  bool       // the read deadline was set to now to wake the reader

	// Write side.
	wmu     sync.Mutex // held from the first byte of a frame yamux writes to its last
	whdr    [muxHeaderSize]byte
	whdrN   int
	wbody   uint32
	wlocked bool // Write holds wmu (only the writing goroutine reads this)

	bytesIn atomic.Uint64 // bytes read, for idle detection

	// linger is set once our close frame is written: Close then stops
	// yamux (stopped) but leaves the socket to tcpLink.drain.
	linger  atomic.Bool
	stopped atomic.Bool

	// onClose is called (on the reading goroutine) with the peer's close
	// frame; onFail with the error that ended reading.
	onClose func(code uint64, msg string)
	onFail  func(error)
}

var _ io.ReadWriteCloser = (*muxConn)(nil)

func (m *muxConn) Read(p []byte) (int, error) {
	for {
		if len(m.rout) > 0 {
			n := copy(p, m.rout)
			m.rout = m.rout[n:]
			return n, nil
		}
		if m.rerr != nil {
			return 0, m.rerr
		}
		if m.rbody > 0 {
			if uint64(len(p)) > uint64(m.rbody) {
				p = p[:m.rbody]
			}
			n, err := m.rc.Read(p)
			m.rbody -= uint32(n)
			m.bytesIn.Add(uint64(n))
			if err != nil && m.woken(err) {
				err = nil
			}
			if err != nil {
				m.fail(err)
			}
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		// At a frame boundary: injected frames first.
		m.rmu.Lock()
		if len(m.rinject) > 0 {
			m.rout, m.rinject = m.rinject, nil
			m.rmu.Unlock()
			continue
		}
		m.rmu.Unlock()
		if err := m.readHeader(); err != nil && !errors.Is(err, errWoken) {
			m.fail(err)
		}
	}
}

// errWoken: the reader was woken at a frame boundary to look for injected
// frames.
var errWoken = errors.New("woken")

// readHeader reads the next frame header and sets up what follows: the
// header to pass on (and the body length of a data frame), or for our close
// frame, its body is read and reported.
func (m *muxConn) readHeader() error {
	for m.rhdrN < muxHeaderSize {
		n, err := m.rc.Read(m.rhdr[m.rhdrN:])
		m.rhdrN += n
		m.bytesIn.Add(uint64(n))
		if err != nil && m.rhdrN < muxHeaderSize {
			if m.woken(err) {
				if m.rhdrN == 0 {
					return errWoken
				}
				continue
			}
			return err
		}
		if err != nil && !m.woken(err) {
			m.fail(err) // reported after this header (no body can follow)
		}
	}
	m.rhdrN = 0
	typ := m.rhdr[1]
	length := binary.BigEndian.Uint32(m.rhdr[8:])
	if typ == muxTypeClose {
		if m.rhdr[0] != 0 || length > maxCloseBody {
			return errBadCloseFrame
		}
		body := make([]byte, length)
		for got := 0; got < len(body); {
			n, err := m.rc.Read(body[got:])
			got += n
			if err != nil && got < len(body) && !m.woken(err) {
				return err
			}
		}
		code, msg, err := parseCloseBody(body)
		if err != nil {
			return err
		}
		if m.onClose != nil {
			m.onClose(code, msg)
		}
		return io.EOF
	}
	if typ == muxTypeData {
		m.rbody = length
	}
	m.rout = m.rhdr[:]
	return nil
}

// fail makes err the sticky read error.
func (m *muxConn) fail(err error) {
	if m.rerr == nil {
		m.rerr = err
		if m.onFail != nil {
			m.onFail(err)
		}
	}
}

// woken reports whether err is the timeout of a kick, and if so clears the
// deadline. After Close (lingering), no timeout is a kick: reading ends.
func (m *muxConn) woken(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || m.stopped.Load() {
		return false
	}
	m.rmu.Lock()
	defer m.rmu.Unlock()
	if !m.kicked {
		return false
	}
	m.kicked = false
	m.rc.SetReadDeadline(time.Time{}) //nolint:errcheck // fails only once closed, which the next Read reports
	return true
}

// injectRead queues frame f for yamux's reader and wakes it. Safe from any
// goroutine.
func (m *muxConn) injectRead(f []byte) {
	m.rmu.Lock()
	defer m.rmu.Unlock()
	m.rinject = append(m.rinject, f...)
	m.kicked = true
	m.rc.SetReadDeadline(time.Now()) //nolint:errcheck // fails only once closed: nothing to wake
}

func (m *muxConn) Write(b []byte) (int, error) {
	if !m.wlocked {
		m.wmu.Lock()
		m.wlocked = true
	}
	n, err := m.rc.Write(b)
	m.advanceWrite(b[:n])
	if err != nil || (m.whdrN == 0 && m.wbody == 0) {
		m.wlocked = false
		m.wmu.Unlock()
	}
	return n, err
}

// advanceWrite follows the frames in the bytes yamux has written.
func (m *muxConn) advanceWrite(b []byte) {
	for len(b) > 0 {
		if m.wbody > 0 {
			k := min(uint64(len(b)), uint64(m.wbody))
			m.wbody -= uint32(k)
			b = b[k:]
			continue
		}
		k := copy(m.whdr[m.whdrN:], b)
		m.whdrN += k
		b = b[k:]
		if m.whdrN == muxHeaderSize {
			m.whdrN = 0
			if m.whdr[1] == muxTypeData {
				m.wbody = binary.BigEndian.Uint32(m.whdr[8:])
			}
		}
	}
}

// writeFrame writes the whole frame f between two of yamux's frames. It
// blocks while yamux writes one.
func (m *muxConn) writeFrame(f []byte) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	_, err := m.rc.Write(f)
	return err
}

// Close closes the connection, or after our close frame, only stops
// reading (see linger).
func (m *muxConn) Close() error {
	if m.linger.Load() {
		m.stopped.Store(true)
		m.rmu.Lock()
		defer m.rmu.Unlock()
		m.kicked = true
		m.rc.SetReadDeadline(time.Now()) //nolint:errcheck // fails only once closed: nothing to wake
		return nil
	}
	return m.rc.Close()
}

// tcpLink is a link over yamux over TLS over TCP.
type tcpLink struct {
	mc   *muxConn
	sess *yamux.Session
	idle time.Duration // Config.IdleTimeout
	log  *slog.Logger

	ctx    context.Context // cancelled with the connection's error by run, when it has ended
	cancel context.CancelCauseFunc

	closeOnce sync.Once
	kickW     chan struct{} // capacity 1: resets wait to be written
	finished  chan struct{} // closed when run has returned

	mu      sync.Mutex // guards the fields below
	cause   error      // the first reason to end: our close, the peer's close frame, idle timeout
	readErr error      // the error that ended reading, if any
	resets  []uint32   // stream IDs to send a RST for
}

var _ link = (*tcpLink)(nil)

// newTCPLink starts yamux on tc (TLS, handshake and welcome done); client
// is the dialing side. The link's goroutine runs until the connection ends.
func newTCPLink(tc net.Conn, client bool, idle time.Duration, log *slog.Logger) (*tcpLink, error) {
	l := &tcpLink{idle: idle, log: log, kickW: make(chan struct{}, 1), finished: make(chan struct{})}
	l.mc = &muxConn{
		rc: tc,
		onClose: func(code uint64, msg string) {
			l.setCause(&quic.ApplicationError{Remote: true, ErrorCode: quic.ApplicationErrorCode(code), ErrorMessage: msg})
		},
		onFail: func(err error) {
			l.mu.Lock()
			if l.readErr == nil {
				l.readErr = err
			}
			l.mu.Unlock()
		},
	}
	cfg := &yamux.Config{
		AcceptBacklog: muxBacklog,
		// Keepalives are ours (run): a ping only when nothing was heard, and
		// the connection ends after idle without hearing anything, so that a
		// pong queued behind bulk data on a slow link does not end a busy
		// connection as yamux's keepalive would.
		EnableKeepAlive:   false,
		KeepAliveInterval: idle / 3,
		// A safety valve only: a dead peer is found by the idle timeout.
		ConnectionWriteTimeout: 2 * idle,
		MaxStreamWindowSize:    muxWindow,
		// No timeouts on half-open streams: a request's stream is closed by
		// its sender and then carries a bundle back for as long as it takes;
		// an unaccepted stream waits, as on QUIC.
		StreamOpenTimeout:  0,
		StreamCloseTimeout: 0,
		Logger:             yamuxLogger{log},
	}
	var err error
	if client {
		l.sess, err = yamux.Client(l.mc, cfg)
	} else {
		l.sess, err = yamux.Server(l.mc, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("transport: yamux: %w", err)
	}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	go l.run()
	return l, nil
}

// setCause records err as the reason the connection ends, unless one is
// recorded already, and reports whether it was recorded.
func (l *tcpLink) setCause(err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cause != nil {
		return false
	}
	l.cause = err
	return true
}

// run keeps the connection alive, writes RSTs, and when the session ends,
// cancels ctx with the connection's error (and then, after our close frame,
// lingers: see drain).
func (l *tcpLink) run() {
	defer close(l.finished)
	var pings sync.WaitGroup
	var pinging atomic.Bool
	tick := time.NewTicker(l.idle / 3)
	defer tick.Stop()
	lastIn, heard := l.mc.bytesIn.Load(), time.Now()
loop:
	for {
		select {
		case <-l.sess.CloseChan():
			break loop
		case <-l.kickW:
			l.mu.Lock()
			ids := l.resets
			l.resets = nil
			l.mu.Unlock()
			for _, id := range ids {
				if err := l.mc.writeFrame(rstFrame(id)); err != nil {
					break
				}
			}
		case now := <-tick.C:
			if n := l.mc.bytesIn.Load(); n != lastIn {
				lastIn, heard = n, now
				continue
			}
			if now.Sub(heard) >= l.idle {
				l.setCause(&quic.IdleTimeoutError{})
				l.log.Debug("TCP connection idle", "remote", l.remoteAddr(), "timeout", l.idle)
				l.sess.Close() //nolint:errcheck // always nil
				break loop
			}
			if pinging.CompareAndSwap(false, true) {
				pings.Go(func() {
					defer pinging.Store(false)
					l.sess.Ping() //nolint:errcheck // the answer, or its absence, shows in bytesIn
				})
			}
		}
	}
	l.sess.Close() //nolint:errcheck // always nil; makes a pending Ping return
	pings.Wait()
	l.mu.Lock()
	cause := l.cause
	if cause == nil {
		if l.readErr != nil && !errors.Is(l.readErr, io.EOF) {
			cause = fmt.Errorf("transport: TCP connection lost: %w (%v)", net.ErrClosed, l.readErr)
		} else {
			cause = fmt.Errorf("transport: TCP connection closed by the peer without a close frame: %w", net.ErrClosed)
		}
	}
	l.mu.Unlock()
	l.cancel(cause)
	if l.mc.linger.Load() {
		l.drain()
	}
}

// drain ends the TCP connection after our close frame: it sends FIN and
// reads (discarding) until the peer, which ends the connection on reading
// the frame, closes its side, or closeLinger has passed. Closing at once,
// with the peer's last bytes unread, would make our kernel reset the
// connection, and a reset can overtake the frame (or make the peer's kernel
// drop it, on some systems).
func (l *tcpLink) drain() {
	nc := l.mc.rc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn() // no TLS close_notify: the close frame said it all
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		tcp.CloseWrite() //nolint:errcheck // best effort; Close follows
	}
	nc.SetReadDeadline(time.Now().Add(closeLinger)) //nolint:errcheck // a closed conn ends the Copy at once
	io.Copy(io.Discard, nc)                         //nolint:errcheck // EOF, reset or timeout: all end it
	nc.Close()                                      //nolint:errcheck // nothing left to report
}

func (l *tcpLink) wait() { <-l.finished }

func (l *tcpLink) context() context.Context { return l.ctx }
func (l *tcpLink) remoteAddr() net.Addr     { return l.mc.rc.RemoteAddr() }
func (l *tcpLink) localAddr() net.Addr      { return l.mc.rc.LocalAddr() }

// connErr returns the connection's error once it has ended (it has, or is
// about to, when yamux reports a shutdown), or err.
func (l *tcpLink) connErr(err error) error {
	if errors.Is(err, yamux.ErrSessionShutdown) || l.sess.IsClosed() {
		<-l.ctx.Done()
		return context.Cause(l.ctx)
	}
	return err
}

func (l *tcpLink) openStream(ctx context.Context) (streamImpl, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		s   *yamux.Stream
		err error
	}
	// yamux's OpenStream takes no context; it blocks only while muxBacklog
	// of our streams wait for the peer's accept, and ends with the session.
	ch := make(chan result, 1)
	go func() {
		s, err := l.sess.OpenStream()
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, l.connErr(r.err)
		}
		return &tcpStream{s: r.s, l: l}, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.s != nil {
				(&tcpStream{s: r.s, l: l}).abort()
			}
		}()
		return nil, ctx.Err()
	}
}

func (l *tcpLink) acceptStream(ctx context.Context) (streamImpl, error) {
	s, err := l.sess.AcceptStreamWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, l.connErr(err)
	}
	return &tcpStream{s: s, l: l}, nil
}

func (l *tcpLink) closeWithError(code uint64, msg string) error {
	l.closeOnce.Do(func() {
		local := &quic.ApplicationError{ErrorCode: quic.ApplicationErrorCode(code), ErrorMessage: msg}
		if l.setCause(local) && !l.sess.IsClosed() {
			// Bounded: the peer may not be reading. A write that times out
			// breaks the TLS connection, which we are closing anyway.
			l.mc.rc.SetWriteDeadline(time.Now().Add(closeLinger)) //nolint:errcheck // a closed conn fails the write below
			if err := l.mc.writeFrame(closeFrame(code, msg)); err == nil {
				// Nothing may follow the frame: yamux's writes fail from
				// now on, and the socket lingers (drain) once yamux is done.
				l.mc.rc.SetWriteDeadline(time.Now()) //nolint:errcheck // as above
				l.mc.linger.Store(true)
			}
		}
		l.sess.Close() //nolint:errcheck // always nil
	})
	<-l.ctx.Done()
	return nil
}

// reset has stream id reset on both sides (see above).
func (l *tcpLink) reset(id uint32) {
	l.mc.injectRead(rstFrame(id))
	l.mu.Lock()
	l.resets = append(l.resets, id)
	l.mu.Unlock()
	select {
	case l.kickW <- struct{}{}:
	default:
	}
}

// tcpStream is a streamImpl over a yamux stream.
type tcpStream struct {
	s          *yamux.Stream
	l          *tcpLink
	aborted    atomic.Bool // by us
	readClosed atomic.Bool
}

func (s *tcpStream) resetErr(remote bool) error {
	return &quic.StreamError{StreamID: quic.StreamID(s.s.StreamID()), ErrorCode: streamAbortCode, Remote: remote}
}

// mapErr turns yamux's errors into the ones QUIC streams return.
func (s *tcpStream) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case s.aborted.Load():
		return s.resetErr(false)
	case err == io.EOF:
		if s.l.sess.IsClosed() {
			// yamux reports the end of the session as EOF on every stream.
			return s.l.connErr(yamux.ErrSessionShutdown)
		}
		return io.EOF
	case errors.Is(err, yamux.ErrConnectionReset):
		return s.resetErr(true)
	case errors.Is(err, yamux.ErrTimeout):
		return os.ErrDeadlineExceeded
	case errors.Is(err, yamux.ErrSessionShutdown):
		return s.l.connErr(err)
	case errors.Is(err, yamux.ErrStreamClosed):
		return fmt.Errorf("transport: write on closed stream %d", s.s.StreamID())
	default:
		return err
	}
}

func (s *tcpStream) Read(p []byte) (int, error) {
	if s.aborted.Load() {
		return 0, s.resetErr(false)
	}
	if s.readClosed.Load() {
		return 0, fmt.Errorf("transport: read from stream %d after CloseRead: %w", s.s.StreamID(), s.resetErr(false))
	}
	n, err := s.s.Read(p)
	return n, s.mapErr(err)
}

func (s *tcpStream) Write(p []byte) (int, error) {
	if s.aborted.Load() {
		return 0, s.resetErr(false)
	}
	total := 0
	for len(p) > 0 {
		n, err := s.s.Write(p[:min(len(p), maxMuxWrite)])
		total += n
		if err != nil {
			return total, s.mapErr(err)
		}
		p = p[n:]
	}
	return total, nil
}

func (s *tcpStream) Close() error {
	if s.aborted.Load() {
		return nil
	}
	return s.s.Close()
}

func (s *tcpStream) closeRead() { s.readClosed.Store(true) }

func (s *tcpStream) abort() {
	if s.aborted.CompareAndSwap(false, true) {
		s.l.reset(s.s.StreamID())
	}
}

func (s *tcpStream) SetDeadline(t time.Time) error      { return s.s.SetDeadline(t) }
func (s *tcpStream) SetReadDeadline(t time.Time) error  { return s.s.SetReadDeadline(t) }
func (s *tcpStream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// yamuxLogger sends yamux's logs to Debug: they are about the peer's
// behaviour and the ends of connections, which the Conn reports anyway.
type yamuxLogger struct{ log *slog.Logger }

func (y yamuxLogger) Print(v ...any) { y.logf("%s", fmt.Sprint(v...)) }
func (y yamuxLogger) Printf(format string, v ...any) {
	y.logf(format, v...)
}
func (y yamuxLogger) Println(v ...any) { y.logf("%s", fmt.Sprint(v...)) }

func (y yamuxLogger) logf(format string, v ...any) {
	if y.log.Enabled(context.Background(), slog.LevelDebug) {
		y.log.Debug(fmt.Sprintf(format, v...), "component", "yamux")
	}
}
