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
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-yamux/v5"
)

// The TCP path's streams: go-yamux (github.com/libp2p/go-yamux/v5) over the
// TLS connection. Stream 1, opened by the dialer right after the welcome,
// is the control stream: it carries only the close message (see doc.go,
// "TCP"), and is never handed to the application.

const (
	maxCloseMessage = 1024
	maxCloseBody    = 8 + maxCloseMessage

	// maxStreams is how many streams the peer may have open at once, as on
	// QUIC (quic-go's default MaxIncomingStreams); beyond, a new stream is
	// reset. It is also how many of our new streams may wait for the peer's
	// accept (OpenStream blocks beyond).
	maxStreams = 100
	// muxWindow is the most a stream's receive window grows to (from 256
	// KiB, while the application reads fast): about 1 Gbit/s at 130 ms
	// round trip on one stream.
	muxWindow = 16 << 20
	// connWindowBudget bounds what the receive windows of one connection's
	// streams may grow to together, beyond their first 256 KiB each: the
	// memory a peer can make us buffer is at most this plus 256 KiB per
	// open stream (see doc.go, "TCP").
	connWindowBudget = 32 << 20
	// maxMuxMessage bounds the data frames a Stream.Write makes, so that
	// other streams' frames and keepalives are not queued behind a
	// window's worth of one stream.
	maxMuxMessage = 256 << 10
	// closeLinger bounds how long, after our close message, the connection
	// waits for the peer to take it and end the connection.
	closeLinger = time.Second
	// ctrlStreamID is the control stream's ID: the dialer's first stream.
	ctrlStreamID = 1
)

// errBadCloseMessage is a malformed close message: a protocol error.
var errBadCloseMessage = errors.New("transport: malformed close message")

// closeMessage returns the close message for code and msg; msg is cut to
// maxCloseMessage bytes (at a rune boundary).
func closeMessage(code CloseCode, msg string) []byte {
	if len(msg) > maxCloseMessage {
		cut := maxCloseMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut]
	}
	if !utf8.ValidString(msg) {
		msg = strings.ToValidUTF8(msg, "\uFFFD")
		if len(msg) > maxCloseMessage {
			msg = ""
		}
	}
	b := make([]byte, 8+len(msg))
	binary.BigEndian.PutUint64(b, uint64(code))
	copy(b[8:], msg)
	return b
}

// parseCloseMessage parses a close message.
func parseCloseMessage(b []byte) (CloseCode, string, error) {
	if len(b) < 8 || len(b) > maxCloseBody || !utf8.Valid(b[8:]) {
		return 0, "", errBadCloseMessage
	}
	return CloseCode(binary.BigEndian.Uint64(b)), string(b[8:]), nil
}

// muxConn is the net.Conn go-yamux runs on: the TLS connection, counting
// the bytes read (for idle detection) and keeping the first read error.
type muxConn struct {
	net.Conn
	bytesIn atomic.Uint64
	errOnce sync.Once
	readErr error // set once, by the reading goroutine, before the session ends
}

// Close closes the TCP connection without a TLS close_notify (whose write
// could wait for a peer that does not read): the close message said it all.
func (m *muxConn) Close() error {
	if tc, ok := m.Conn.(*tls.Conn); ok {
		return tc.NetConn().Close()
	}
	return m.Conn.Close()
}

func (m *muxConn) Read(p []byte) (int, error) {
	n, err := m.Conn.Read(p)
	m.bytesIn.Add(uint64(n))
	if err != nil {
		m.errOnce.Do(func() { m.readErr = err })
	}
	return n, err
}

// connMemory is one connection's budget for receive-window growth (see
// connWindowBudget). go-yamux reserves memory per stream through
// streamMemory: the first 256 KiB of a new stream (priority 255, which is
// never refused: the stream count bounds it) and each growth of its window
// (refused beyond the budget: the window then stays as it is).
type connMemory struct {
	mu   sync.Mutex
	used int // guarded by mu: bytes reserved by the connection's streams
}

func (m *connMemory) newSpan() (yamux.MemoryManager, error) { return &streamMemory{conn: m}, nil }

type streamMemory struct {
	conn     *connMemory
	reserved int // guarded by conn.mu
}

func (s *streamMemory) ReserveMemory(size int, prio uint8) error {
	s.conn.mu.Lock()
	defer s.conn.mu.Unlock()
	if prio < 255 && s.conn.used+size > connWindowBudget+maxStreams*256<<10 {
		return errors.New("transport: connection receive budget exhausted")
	}
	s.conn.used += size
	s.reserved += size
	return nil
}

func (s *streamMemory) ReleaseMemory(size int) {
	s.conn.mu.Lock()
	defer s.conn.mu.Unlock()
	size = min(size, s.reserved)
	s.conn.used -= size
	s.reserved -= size
}

func (s *streamMemory) Done() { s.ReleaseMemory(s.reserved) }

// tcpLink is a link over go-yamux over TLS over TCP.
type tcpLink struct {
	mc   *muxConn
	sess *yamux.Session
	ctrl *yamux.Stream // the control stream
	idle time.Duration // Config.IdleTimeout
	log  *slog.Logger

	ctx    context.Context // cancelled with the connection's error once it has ended (or we closed it)
	cancel context.CancelCauseFunc

	accepted chan *yamux.Stream // the peer's streams, from acceptLoop
	closing  chan struct{}      // closed by closeWithError once the close message is queued
	closed   sync.Once
	wg       sync.WaitGroup // run, acceptLoop, readCtrl
	finished chan struct{}  // closed once wg's goroutines have ended

	mu    sync.Mutex // guards cause
	cause error      // the first reason to end: our close, the peer's close message, idle timeout
}

var _ link = (*tcpLink)(nil)

// newTCPLink starts go-yamux on tc (TLS, handshake and welcome done);
// client is the dialing side, which opens the control stream, and the
// acceptor waits for it until ctx ends. The link's goroutines run until
// the connection ends.
func newTCPLink(ctx context.Context, tc net.Conn, client bool, idle time.Duration, log *slog.Logger) (*tcpLink, error) {
	l := &tcpLink{
		mc:       &muxConn{Conn: tc},
		idle:     idle,
		log:      log,
		accepted: make(chan *yamux.Stream),
		closing:  make(chan struct{}),
		finished: make(chan struct{}),
	}
	cfg := &yamux.Config{
		// acceptLoop takes (and acknowledges) one stream more than the
		// backlog: OpenStream blocks after maxStreams unaccepted streams.
		AcceptBacklog: maxStreams - 1,
		PingBacklog:   32,
		// Keepalives are ours (run): a ping only when nothing was heard,
		// and the connection ends after idle without hearing anything, so
		// that a pong queued behind bulk data on a slow link does not end
		// a busy connection.
		EnableKeepAlive:    false,
		MeasureRTTInterval: 30 * time.Second, // the RTT lets stream windows grow
		// A safety valve only: a dead peer is found by the idle timeout.
		ConnectionWriteTimeout:  2 * idle,
		MaxIncomingStreams:      maxStreams,
		InitialStreamWindowSize: 256 << 10,
		MaxStreamWindowSize:     muxWindow,
		LogOutput:               yamuxLog{log},
		ReadBufSize:             64 << 10,
		MaxMessageSize:          maxMuxMessage,
	}
	if !client {
		cfg.MaxIncomingStreams++ // the dialer's control stream
	}
	mem := &connMemory{}
	var err error
	if client {
		l.sess, err = yamux.Client(l.mc, cfg, mem.newSpan)
	} else {
		l.sess, err = yamux.Server(l.mc, cfg, mem.newSpan)
	}
	if err != nil {
		return nil, fmt.Errorf("transport: yamux: %w", err)
	}
	if client {
		l.ctrl, err = l.sess.OpenStream(ctx)
	} else {
		stop := context.AfterFunc(ctx, func() { l.sess.Close() }) //nolint:errcheck // always nil
		l.ctrl, err = l.sess.AcceptStream()
		stop()
		if err == nil && l.ctrl.StreamID() != ctrlStreamID {
			err = fmt.Errorf("first stream is %d, not the control stream", l.ctrl.StreamID())
		}
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		l.sess.Close() //nolint:errcheck // always nil
		return nil, fmt.Errorf("transport: control stream: %w", err)
	}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	l.wg.Add(3)
	go l.run()
	go l.acceptLoop()
	go l.readCtrl()
	go func() {
		l.wg.Wait()
		close(l.finished)
	}()
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

// acceptLoop hands the peer's streams to acceptStream until the session
// ends.
func (l *tcpLink) acceptLoop() {
	defer l.wg.Done()
	for {
		s, err := l.sess.AcceptStream()
		if err != nil {
			return
		}
		select {
		case l.accepted <- s:
		case <-l.sess.CloseChan():
			s.Reset() //nolint:errcheck // the session is gone anyway
			return
		}
	}
}

// readCtrl reads the peer's control stream: one close message, then EOF.
// Anything else there is a protocol error that ends the connection.
func (l *tcpLink) readCtrl() {
	defer l.wg.Done()
	b, err := io.ReadAll(io.LimitReader(l.ctrl, maxCloseBody+1))
	if err != nil {
		return // the session ended
	}
	code, msg, err := parseCloseMessage(b)
	if err != nil {
		l.log.Info("TCP peer broke the protocol", "remote", l.remoteAddr(), "err", err)
		l.setCause(lostErr(err))
	} else {
		l.setCause(&CloseError{Code: code, Message: msg, Remote: true})
	}
	l.sess.Close() //nolint:errcheck // always nil
}

// run keeps the connection alive, and once it ends (or we closed it and
// the peer took our message, or closeLinger passed) closes the session
// and cancels ctx with the connection's error.
func (l *tcpLink) run() {
	defer l.wg.Done()
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
		case <-l.closing:
			linger := time.NewTimer(closeLinger)
			select {
			case <-l.sess.CloseChan(): // the peer took the message and closed
			case <-linger.C:
			}
			linger.Stop()
			break loop
		case now := <-tick.C:
			if n := l.mc.bytesIn.Load(); n != lastIn {
				lastIn, heard = n, now
				continue
			}
			if now.Sub(heard) >= l.idle {
				l.setCause(idleErr())
				l.log.Debug("TCP connection idle", "remote", l.remoteAddr(), "timeout", l.idle)
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
	l.sess.Close() //nolint:errcheck // always nil; returns once yamux's loops have ended
	pings.Wait()
	l.mu.Lock()
	cause := l.cause
	if cause == nil {
		if err := l.mc.readErr; err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			cause = lostErr(err)
		} else {
			cause = lostErr(errors.New("TCP connection closed by the peer without a close message"))
		}
		l.cause = cause
	}
	l.mu.Unlock()
	l.cancel(cause)
}

func (l *tcpLink) wait() { <-l.finished }

func (l *tcpLink) context() context.Context { return l.ctx }
func (l *tcpLink) remoteAddr() net.Addr     { return l.mc.RemoteAddr() }
func (l *tcpLink) localAddr() net.Addr      { return l.mc.LocalAddr() }

// connErr returns the connection's error once it has ended (it has, or is
// about to, once the session is closed).
func (l *tcpLink) connErr() error {
	<-l.ctx.Done()
	return context.Cause(l.ctx)
}

func (l *tcpLink) openStream(ctx context.Context) (streamImpl, error) {
	if l.ctx.Err() != nil {
		return nil, l.connErr()
	}
	s, err := l.sess.OpenStream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if l.sess.IsClosed() {
			return nil, l.connErr()
		}
		return nil, err
	}
	return &tcpStream{s: s, l: l}, nil
}

func (l *tcpLink) acceptStream(ctx context.Context) (streamImpl, error) {
	if l.ctx.Err() != nil {
		return nil, l.connErr()
	}
	select {
	case s := <-l.accepted:
		return &tcpStream{s: s, l: l}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.ctx.Done():
		return nil, l.connErr()
	}
}

// closeWithError queues the close message on the control stream and ends
// the connection; run closes the session once the peer has taken the
// message (or after closeLinger).
func (l *tcpLink) closeWithError(code CloseCode, msg string) error {
	l.closed.Do(func() {
		local := &CloseError{Code: code, Message: msg}
		if !l.setCause(local) {
			l.sess.Close() //nolint:errcheck // always nil; run cancels ctx
			return
		}
		// Bounded: the peer may not be reading.
		l.ctrl.SetWriteDeadline(time.Now().Add(closeLinger)) //nolint:errcheck // a failed write below is what matters
		if _, err := l.ctrl.Write(closeMessage(code, msg)); err == nil {
			l.ctrl.CloseWrite() //nolint:errcheck // the peer reads the message either way
			close(l.closing)
		} else {
			l.sess.Close() //nolint:errcheck // always nil
		}
		l.cancel(local)
	})
	<-l.ctx.Done()
	return nil
}

// tcpStream is a streamImpl over a go-yamux stream.
type tcpStream struct {
	s *yamux.Stream
	l *tcpLink
}

// mapErr turns go-yamux's errors into this package's (see errors.go).
func (s *tcpStream) mapErr(err error) error {
	var se *yamux.StreamError
	var ga *yamux.GoAwayError
	switch {
	case err == nil || err == io.EOF:
		return err
	case s.l.ctx.Err() != nil || s.l.sess.IsClosed() || errors.As(err, &ga):
		return s.l.connErr()
	case errors.As(err, &se):
		return &StreamResetError{Code: uint64(se.ErrorCode), Remote: se.Remote}
	case errors.Is(err, yamux.ErrStreamReset):
		// Our CloseRead (a peer's reset carries a code: the case above).
		return &StreamResetError{}
	case errors.Is(err, yamux.ErrTimeout):
		return os.ErrDeadlineExceeded
	case errors.Is(err, yamux.ErrStreamClosed):
		return fmt.Errorf("transport: write on closed stream %d", s.s.StreamID())
	default:
		return err
	}
}

func (s *tcpStream) Read(p []byte) (int, error) {
	if s.l.ctx.Err() != nil {
		return 0, s.l.connErr()
	}
	n, err := s.s.Read(p)
	return n, s.mapErr(err)
}

func (s *tcpStream) Write(p []byte) (int, error) {
	if s.l.ctx.Err() != nil {
		return 0, s.l.connErr()
	}
	n, err := s.s.Write(p)
	return n, s.mapErr(err)
}

func (s *tcpStream) Close() error {
	err := s.s.CloseWrite()
	if err != nil && s.l.ctx.Err() == nil && !errors.Is(err, yamux.ErrStreamReset) {
		var se *yamux.StreamError
		if !errors.As(err, &se) {
			return s.mapErr(err)
		}
	}
	return nil
}

func (s *tcpStream) closeRead() { s.s.CloseRead() } //nolint:errcheck // cannot fail

func (s *tcpStream) abort() { s.s.ResetWithError(streamAbortCode) } //nolint:errcheck // always nil

func (s *tcpStream) SetDeadline(t time.Time) error      { return s.s.SetDeadline(t) }
func (s *tcpStream) SetReadDeadline(t time.Time) error  { return s.s.SetReadDeadline(t) }
func (s *tcpStream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// yamuxLog sends go-yamux's log lines to Debug: they are about the peer's
// behaviour and the ends of connections, which the Conn reports anyway.
type yamuxLog struct{ log *slog.Logger }

func (y yamuxLog) Write(p []byte) (int, error) {
	if y.log.Enabled(context.Background(), slog.LevelDebug) {
		y.log.Debug(strings.TrimSpace(string(p)), "component", "yamux")
	}
	return len(p), nil
}
