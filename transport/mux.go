package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/quic-go/quic-go"
)

// The shared socket's non-QUIC side.
//
// quic-go owns the socket and hands us the packets it does not take (first
// byte 0x00–0x3F: STUN; DTLS too, which we don't use) through
// quic.Transport.ReadNonQUICPacket; we send with quic.Transport.WriteTo. So
// ICE and QUIC share one socket and one NAT mapping.
//
// One stunDemux per Transport reads those packets and routes each to the ICE
// session it belongs to; every session has its own pion UniversalUDPMux
// over a sessionConn, a net.PacketConn carrying that session's packets
// only. (pion's mux routes packets from an address it has seen to the agent
// that last used the address, so one mux shared by two sessions with the
// same peer address — a redial, or both peers dialing at once — misroutes
// the checks of one of them.) Routing:
//
//   - a STUN request or indication with a USERNAME ("ourUfrag:theirUfrag")
//     goes to the session whose local ufrag is the first half;
//   - a STUN response goes to the session that sent the request with its
//     transaction ID (consent checks and STUN server queries alike);
//   - anything else is dropped.
//
// pion checks MESSAGE-INTEGRITY (or, for STUN servers, the transaction) on
// whatever it receives, so routing needs no authentication.

const (
	sessionQueueLen = 64              // packets waiting for one session's reader; more are dropped
	maxPendingTx    = 4096            // outstanding STUN transactions remembered, all sessions together
	pendingTxTTL    = 8 * time.Second // how long a request waits for its response
)

type stunPacket struct {
	data []byte
	addr *net.UDPAddr
}

type pendingTx struct {
	conn *sessionConn
	sent time.Time
}

// stunDemux routes the socket's non-QUIC packets to ICE sessions.
type stunDemux struct {
	qt  *quic.Transport
	log *slog.Logger

	mu      sync.Mutex // guards the fields below
	closed  bool
	byUfrag map[string]*sessionConn
	byTx    map[[stun.TransactionIDSize]byte]pendingTx
}

func newStunDemux(qt *quic.Transport, log *slog.Logger) *stunDemux {
	return &stunDemux{
		qt:      qt,
		log:     log,
		byUfrag: make(map[string]*sessionConn),
		byTx:    make(map[[stun.TransactionIDSize]byte]pendingTx),
	}
}

// run reads non-QUIC packets until ctx is cancelled or the QUIC transport
// closes. It is the only caller of ReadNonQUICPacket (which is not safe for
// concurrent first use).
func (d *stunDemux) run(ctx context.Context) {
	buf := make([]byte, 1500)
	for {
		n, addr, err := d.qt.ReadNonQUICPacket(ctx, buf)
		if err != nil {
			d.shutdown()
			return
		}
		d.dispatch(buf[:n], addr)
	}
}

func (d *stunDemux) dispatch(b []byte, from net.Addr) {
	if !stun.IsMessage(b) {
		return
	}
	msg := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := msg.Decode(); err != nil {
		return
	}
	var c *sessionConn
	d.mu.Lock()
	switch msg.Type.Class {
	case stun.ClassSuccessResponse, stun.ClassErrorResponse:
		if p, ok := d.byTx[msg.TransactionID]; ok {
			delete(d.byTx, msg.TransactionID)
			c = p.conn
		}
	default:
		if u, err := msg.Get(stun.AttrUsername); err == nil {
			ufrag, _, _ := strings.Cut(string(u), ":")
			c = d.byUfrag[ufrag]
		}
	}
	d.mu.Unlock()
	if c == nil {
		return
	}
	ua, ok := udpAddrOf(from).(*net.UDPAddr)
	if !ok {
		return
	}
	select {
	case c.in <- stunPacket{data: msg.Raw, addr: ua}:
	default: // the session's reader is behind; STUN retransmits
	}
}

// register returns the sessionConn of a new session with local ufrag.
func (d *stunDemux) register(ufrag string) (*sessionConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if _, dup := d.byUfrag[ufrag]; dup {
		return nil, errors.New("transport: duplicate ICE ufrag")
	}
	c := &sessionConn{
		d:          d,
		ufrag:      ufrag,
		in:         make(chan stunPacket, sessionQueueLen),
		done:       make(chan struct{}),
		readerGone: make(chan struct{}),
	}
	d.byUfrag[ufrag] = c
	return c, nil
}

// sent records an outgoing STUN request, so that its response finds c.
func (d *stunDemux) sent(c *sessionConn, b []byte) {
	if !stun.IsMessage(b) || len(b) < 20 {
		return
	}
	// Message type: the class bits are 0x0110 of the first two bytes; a
	// request has both clear.
	if b[0]&0x01 != 0 || b[1]&0x10 != 0 {
		return
	}
	var id [stun.TransactionIDSize]byte
	copy(id[:], b[8:20])
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.byTx) >= maxPendingTx {
		for k, p := range d.byTx {
			if now.Sub(p.sent) > pendingTxTTL {
				delete(d.byTx, k)
			}
		}
		if len(d.byTx) >= maxPendingTx {
			return // the response will be dropped; pion retransmits
		}
	}
	d.byTx[id] = pendingTx{conn: c, sent: now}
}

func (d *stunDemux) unregister(c *sessionConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byUfrag[c.ufrag] == c {
		delete(d.byUfrag, c.ufrag)
	}
	for k, p := range d.byTx {
		if p.conn == c {
			delete(d.byTx, k)
		}
	}
}

// shutdown refuses new sessions; existing ones end with their agents.
func (d *stunDemux) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
}

// sessionConn is the net.PacketConn one ICE session's pion mux reads and
// writes: the session's packets in, the shared socket out. Close does NOT
// close the socket.
type sessionConn struct {
	d     *stunDemux
	ufrag string
	in    chan stunPacket

	done      chan struct{} // closed by Close
	closeOnce sync.Once

	readerGone     chan struct{} // closed when a ReadFrom returns after Close
	readerGoneOnce sync.Once

	mu           sync.Mutex // guards readDeadline
	readDeadline time.Time
}

var _ net.PacketConn = (*sessionConn)(nil)

// ReadFrom returns the session's next packet. The source is always a
// *net.UDPAddr (pion's mux requires it).
func (c *sessionConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.mu.Lock()
	dl := c.readDeadline
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		tm := time.NewTimer(time.Until(dl))
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case p := <-c.in:
		return copy(b, p.data), p.addr, nil
	case <-c.done:
		c.readerGoneOnce.Do(func() { close(c.readerGone) })
		return 0, nil, net.ErrClosed
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

// WriteTo sends b to addr on the shared socket.
func (c *sessionConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	c.d.sent(c, b)
	return c.d.qt.WriteTo(b, addr)
}

// Close stops ReadFrom and WriteTo and forgets the session. The socket
// stays open.
func (c *sessionConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.d.unregister(c)
	})
	return nil
}

// waitReader waits, up to timeout, for the reader to have seen Close.
func (c *sessionConn) waitReader(timeout time.Duration) bool {
	select {
	case <-c.readerGone:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (c *sessionConn) LocalAddr() net.Addr { return c.d.qt.Conn.LocalAddr() }

// SetDeadline sets the read deadline; write deadlines are not supported
// (a UDP write does not block for long) and are ignored.
func (c *sessionConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *sessionConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	return nil
}

// SetWriteDeadline is accepted and ignored (see SetDeadline). pion's mux
// calls it to abort writes when it shuts down.
func (c *sessionConn) SetWriteDeadline(time.Time) error { return nil }

// udpAddrOf returns addr as a *net.UDPAddr, converting other
// implementations (virtual networks) through their string form.
func udpAddrOf(addr net.Addr) net.Addr {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return ua
	}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		return net.UDPAddrFromAddrPort(ap)
	}
	return addr
}

// pionLogs adapts an slog.Logger to pion's logging.LoggerFactory. pion logs
// are chatty and mostly about the other side's behaviour, so everything but
// errors goes to Debug (trace is dropped) and errors to Info.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) Trace(string)          {}
func (l pionLogger) Tracef(string, ...any) {}
func (l pionLogger) Debug(msg string)      { l.log.Debug(msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.logf(slog.LevelDebug, format, args)
}
func (l pionLogger) Info(msg string) { l.log.Debug(msg) }
func (l pionLogger) Infof(format string, args ...any) {
	l.logf(slog.LevelDebug, format, args)
}
func (l pionLogger) Warn(msg string) { l.log.Debug(msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.logf(slog.LevelDebug, format, args)
}
func (l pionLogger) Error(msg string) { l.log.Info(msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.logf(slog.LevelInfo, format, args)
}

func (l pionLogger) logf(level slog.Level, format string, args []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}
