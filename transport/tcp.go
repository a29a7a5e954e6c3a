package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/peersync/peersync/crypto"
)

// ALPNTCP is the TLS application protocol of the TCP path (yamux streams
// over TLS over TCP). The trailing number is the wire protocol version.
const ALPNTCP = "peersync-tcp/1"

const (
	// maxBindAttempts bounds New's search, with port 0, for a port free on
	// both UDP and TCP.
	maxBindAttempts = 8
	// maxTCPHandshakes bounds the incoming TCP connections in their TLS
	// handshake at once (see handshakeSlots).
	maxTCPHandshakes = 64
	// maxTCPHandshakesPerSource bounds them per source IP address.
	maxTCPHandshakesPerSource = 4
	// firstByteTimeout bounds the wait for an incoming connection's first
	// byte (its TLS ClientHello, sent by a real dialer at once); the
	// handshake as a whole is bounded by Config.HandshakeTimeout.
	firstByteTimeout = 3 * time.Second
)

// listenSockets opens the Transport's UDP socket and, unless noTCP, a TCP
// listener on the same address and port number. With port 0 it retries
// with a fresh UDP port if the TCP one is taken.
func listenSockets(addr string, noTCP bool, t *Transport) (*net.UDPConn, net.Listener, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("transport: listen address %q: %w", addr, err)
	}
	for attempt := 1; ; attempt++ {
		udp, err := listenUDP(ua, t.log)
		if err != nil || noTCP {
			return udp, nil, err
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		ln, err := listenTCP(&net.TCPAddr{IP: ua.IP, Port: port, Zone: ua.Zone}, t)
		if err == nil {
			return udp, ln, nil
		}
		udp.Close()
		// (Windows reports a taken port as WSAEADDRINUSE, not
		// syscall.EADDRINUSE: any failure counts.)
		if ua.Port != 0 || attempt == maxBindAttempts {
			return nil, nil, fmt.Errorf("transport: listen on TCP port %d (the UDP port's number; Config.NoTCP disables TCP): %w", port, err)
		}
		t.log.Debug("TCP port taken; trying another UDP port", "port", port, "attempt", attempt)
	}
}

func listenTCP(addr *net.TCPAddr, t *Transport) (net.Listener, error) {
	lc := net.ListenConfig{
		// Accepted sockets inherit the congestion control; tuneTCP sets it
		// again on each.
		Control: func(_, _ string, rc syscall.RawConn) error {
			setCongestion(rc, t.log)
			return nil
		},
	}
	return lc.Listen(context.Background(), "tcp", addr.String())
}

// TCPAddr returns the address of the TCP listener (same port number as
// LocalAddr), or nil if the Transport has none: with Config.NoTCP, or with
// Config.PacketConn.
func (t *Transport) TCPAddr() net.Addr {
	if t.sock.tcpLn == nil {
		return nil
	}
	return t.sock.tcpLn.Addr()
}

// tuneTCP sets TCP_NODELAY and, where the kernel offers it, BBR. Socket
// buffers are left to the kernel's autotuning (see doc.go, "TCP").
func tuneTCP(nc net.Conn, t *Transport) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	tc.SetNoDelay(true) //nolint:errcheck // Go's default already; best effort
	if rc, err := tc.SyscallConn(); err == nil {
		setCongestion(rc, t.log)
	}
}

// tcpAcceptLoop takes TCP connections and hands each to a handshake
// goroutine, within the handshake slots. It runs until Close.
func (t *Transport) tcpAcceptLoop() {
	slots := &t.tcpSlots
	var delay time.Duration
	for {
		nc, err := t.sock.tcpLn.Accept()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				t.log.Info("TCP accept failed; retrying", "err", err, "in", delay)
				select {
				case <-time.After(delay):
					continue
				case <-t.ctx.Done():
					return
				}
			}
			t.log.Error("TCP accept stopped", "err", err)
			return
		}
		delay = 0
		slot, why := slots.take(nc)
		if slot == nil {
			t.log.Info("dropping TCP connection: "+why, "remote", nc.RemoteAddr())
			nc.Close()
			continue
		}
		t.wg.Go(func() {
			defer slots.give(slot)
			t.acceptTCP(slot)
		})
	}
}

// acceptTCP runs the acceptor's side of the handshake (see doc.go, "TCP")
// on slot's connection and queues the connection for Accept.
func (t *Transport) acceptTCP(slot *handshakeSlot) {
	nc := net.Conn(slot)
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	tuneTCP(slot.Conn, t)
	nc.SetReadDeadline(time.Now().Add(min(firstByteTimeout, t.cfg.HandshakeTimeout))) //nolint:errcheck // reported by Read
	tc := tls.Server(nc, t.tlsc.serverTLSTCP)
	err := tc.HandshakeContext(ctx)
	var d crypto.DeviceID
	if err == nil {
		d, err = tlsPeer(tc)
	}
	if err == nil {
		// Deadline: the dialer may not read; a timeout breaks tc, which is
		// then closed.
		tc.SetWriteDeadline(time.Now().Add(t.cfg.HandshakeTimeout)) //nolint:errcheck // reported by Write
		_, err = tc.Write([]byte{welcome})
		tc.SetWriteDeadline(time.Time{}) //nolint:errcheck // as above
	}
	if err != nil {
		// A refusal by Authorize was logged at Info by VerifyConnection.
		t.log.Debug("TCP handshake failed", "remote", nc.RemoteAddr(), "err", err)
		nc.Close()
		return
	}
	c, err := t.newTCPConn(ctx, tc, d, false)
	if err != nil {
		t.log.Info("dropping incoming TCP connection", "remote", nc.RemoteAddr(), "err", err)
		nc.Close()
		return
	}
	if !t.track(c) {
		return
	}
	t.log.Debug("accepted", "device", d, "remote", c.RemoteAddr(), "path", PathTCP)
	select {
	case t.acceptCh <- c:
	case <-t.ctx.Done(): // Close closes c with the other tracked connections
	}
}

// tlsPeer returns the device of tc's verified peer, after checking the
// protocol.
func tlsPeer(tc *tls.Conn) (crypto.DeviceID, error) {
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != ALPNTCP {
		return crypto.DeviceID{}, fmt.Errorf("peer did not negotiate %q", ALPNTCP)
	}
	if len(cs.PeerCertificates) == 0 {
		return crypto.DeviceID{}, &crypto.PeerError{Err: errors.New("no peer certificate")}
	}
	return crypto.DeviceIDFromCertificate(cs.PeerCertificates[0])
}

func (t *Transport) newTCPConn(ctx context.Context, tc *tls.Conn, peer crypto.DeviceID, outgoing bool) (*Conn, error) {
	l, err := newTCPLink(ctx, tc, outgoing, t.cfg.IdleTimeout, t.log.With("device", peer))
	if err != nil {
		return nil, err
	}
	return &Conn{l: l, peer: peer, outgoing: outgoing, path: PathTCP}, nil
}

// DialTCP connects to addr ("host:port", TCP) and returns the connection
// once the remote has proven to be peer and has accepted us, as Dial does
// over QUIC; the Conn's Path is PathTCP. It works with Config.NoTCP too
// (which only stops listening). The attempt is bounded by ctx and by
// Config.HandshakeTimeout, and ends with Close. peer may be AnyDevice, as
// for Dial.
//
// Errors: ErrClosed; an error wrapping crypto.ErrUnknownPeer (inside a
// *crypto.PeerError) if the remote is another device than peer or
// Authorize(peer) refuses it; one wrapping ErrRefused if the remote refused
// us; one wrapping ctx.Err() on cancellation; otherwise a network or
// handshake error.
func (t *Transport) DialTCP(ctx context.Context, addr string, peer crypto.DeviceID) (*Conn, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	ctx, cancel := t.callContext(ctx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancelTimeout()
	c, err := t.dialTCP(ctx, addr, peer)
	if err != nil {
		if t.isClosed() {
			return nil, ErrClosed
		}
		return nil, err
	}
	if !t.track(c) {
		return nil, ErrClosed
	}
	t.log.Debug("connected", "device", peer, "remote", c.RemoteAddr(), "path", PathTCP)
	return c, nil
}

func (t *Transport) dialTCP(ctx context.Context, addr string, peer crypto.DeviceID) (*Conn, error) {
	fail := func(err error) error {
		return fmt.Errorf("transport: dial tcp %s (%s): %w", addr, peer.Short(), err)
	}
	d := net.Dialer{
		Control: func(_, _ string, rc syscall.RawConn) error {
			setCongestion(rc, t.log) // before connecting, so the handshake uses it too
			return nil
		},
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fail(err)
	}
	tuneTCP(nc, t)
	tc := tls.Client(nc, t.clientTLS(peer, ALPNTCP))
	err = tc.HandshakeContext(ctx)
	var got crypto.DeviceID
	if err == nil {
		got, err = tlsPeer(tc)
	}
	if err == nil && !peer.IsZero() && got != peer { // VerifyConnection checked this already; be sure
		err = &crypto.PeerError{Device: got, Err: &WrongPeerError{Dialed: peer, Remote: got}}
	}
	if err == nil {
		err = readTCPWelcome(ctx, tc)
	}
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, fail(ctx.Err())
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil && oe.Err.Error() == "tls: bad certificate" {
			return nil, fmt.Errorf("%w: dial tcp %s (%s): %v", ErrRefused, addr, peer.Short(), err)
		}
		return nil, fail(err)
	}
	c, err := t.newTCPConn(ctx, tc, got, true)
	if err != nil {
		nc.Close()
		return nil, fail(err)
	}
	return c, nil
}

// readTCPWelcome waits for the acceptor's welcome byte (see doc.go, "TCP"):
// in TLS 1.3 the client's handshake completes before the server has
// checked the client's certificate, and a refusal arrives instead as a TLS
// alert.
func readTCPWelcome(ctx context.Context, tc *tls.Conn) error {
	if dl, ok := ctx.Deadline(); ok {
		tc.SetReadDeadline(dl) //nolint:errcheck // reported by Read
	}
	stop := context.AfterFunc(ctx, func() { tc.SetReadDeadline(time.Now()) }) //nolint:errcheck // as above
	defer stop()
	var b [1]byte
	_, err := io.ReadFull(tc, b[:])
	if err != nil {
		return err
	}
	if b[0] != welcome {
		return fmt.Errorf("unexpected welcome %x", b[0])
	}
	if !stop() {
		return ctx.Err() // the deadline may be set again; the connection is abandoned
	}
	return tc.SetReadDeadline(time.Time{})
}
