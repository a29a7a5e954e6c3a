package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/peersync/peersync/crypto"
)

// DefaultPort is the port a Transport listens on, UDP and TCP, when
// Config.ListenAddr is empty.
const DefaultPort = 44996

// ALPN is the TLS application protocol every peersync connection negotiates.
// The trailing number is the wire protocol version.
const ALPN = "peersync/1"

const (
	defaultHandshakeTimeout = 10 * time.Second
	defaultIdleTimeout      = 30 * time.Second
	socketBufferSize        = 4 << 20
	acceptQueueLen          = 16
)

// alertBadCertificate is the QUIC error code carrying TLS alert 42, which
// crypto/tls sends when VerifyConnection (here: Authorize) refuses the peer.
const alertBadCertificate = quic.TransportErrorCode(0x100 + 42)

// ErrClosed is returned by every method of a closed Transport (and by a
// second Close).
var ErrClosed = errors.New("transport: closed")

// ErrRefused is returned (wrapped) by Dial and DialTCP when the remote
// device completed the TLS handshake far enough to prove its identity and
// then refused ours: we are not one of its allowed devices.
var ErrRefused = errors.New("transport: refused by the peer (are we one of its allowed devices?)")

// Config configures a Transport. The zero value of every optional field is
// documented; New never modifies a Config.
type Config struct {
	// Identity is this device's key pair; its certificate is presented on
	// every connection. Required.
	Identity *crypto.Identity

	// ListenAddr is the address to bind, "host:port": the UDP socket, and
	// the TCP listener on the same host and port number (unless NoTCP).
	// Empty means ":44996" (DefaultPort on all interfaces); port 0 picks a
	// port free on both UDP and TCP (see Transport.LocalAddr and TCPAddr).
	// Must be empty when PacketConn is set.
	ListenAddr string

	// NoTCP, if true, opens no TCP listener: the Transport accepts QUIC
	// only (DialTCP still works). False means listen on TCP too. There is
	// no TCP listener with PacketConn either way.
	NoTCP bool

	// PacketConn, if not nil, is used instead of opening a socket: tests and
	// virtual networks (pion's vnet) pass theirs here. The Transport reads and
	// writes it exclusively until Close, and does not close it. No TCP
	// listener is opened then.
	PacketConn net.PacketConn

	// Authorize decides whether a device may connect: it is called inside
	// every TLS handshake, for incoming connections and, after the identity
	// check, for dialed ones. Return nil to accept, an error (wrapping
	// crypto.ErrUnknownPeer, by convention) to refuse. It may be called
	// concurrently from several goroutines and must not block for long.
	// Required.
	Authorize func(crypto.DeviceID) error

	// HandshakeTimeout bounds a connection attempt, in either direction, from
	// the first packet to the peer's acceptance. Zero means 10 s.
	HandshakeTimeout time.Duration

	// IdleTimeout closes a connection on which nothing has been received for
	// this long. Keepalives are sent every IdleTimeout/3, so an idle but live
	// connection stays open. Zero means 30 s.
	IdleTimeout time.Duration

	// Logger receives the Transport's logs. Nil means discard.
	Logger *slog.Logger
}

// Transport is a device's endpoint: one UDP socket and a TCP listener on
// the same port number, from which it dials peers and on which it accepts
// them. It is safe for concurrent use.
type Transport struct {
	cfg  Config // validated copy with defaults applied
	log  *slog.Logger
	tlsc tlsConfigs
	sock sockets

	// ctx is cancelled by Close; it stops the accept loop.
	ctx    context.Context
	cancel context.CancelFunc

	acceptCh chan *Conn     // authenticated incoming connections waiting for Accept
	wg       sync.WaitGroup // the accept loop and the per-connection watchers

	mu     sync.Mutex         // guards the fields below
	closed bool               // Close has been called
	conns  map[*Conn]struct{} // open connections, removed when they end

	ice iceState // NAT traversal (ice.go); has its own lock

	tcpSlots handshakeSlots // incoming TCP handshakes (slots.go); has its own lock
}

// tlsConfigs are a Transport's certificate and handshake settings, fixed by
// New.
type tlsConfigs struct {
	cert         tls.Certificate
	serverTLS    *tls.Config // QUIC
	serverTLSTCP *tls.Config
	quicConf     *quic.Config
}

// sockets are what a Transport listens on, opened by New, closed by Close.
type sockets struct {
	ownedConn net.PacketConn // the socket we opened, closed by Close; nil if Config.PacketConn
	qt        *quic.Transport
	ln        *quic.Listener
	tcpLn     net.Listener // nil with Config.NoTCP or Config.PacketConn
}

// New validates cfg, binds the sockets and starts accepting connections.
func New(cfg Config) (*Transport, error) {
	if cfg.Identity == nil {
		return nil, errors.New("transport: Config.Identity is nil")
	}
	if cfg.Authorize == nil {
		return nil, errors.New("transport: Config.Authorize is nil")
	}
	if cfg.PacketConn != nil && cfg.ListenAddr != "" {
		return nil, errors.New("transport: Config.ListenAddr and Config.PacketConn are both set")
	}
	if cfg.HandshakeTimeout < 0 || cfg.IdleTimeout < 0 {
		return nil, errors.New("transport: negative timeout in Config")
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = defaultHandshakeTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.ListenAddr == "" && cfg.PacketConn == nil {
		cfg.ListenAddr = ":" + strconv.Itoa(DefaultPort)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	cert, err := cfg.Identity.TLSCertificate()
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}

	t := &Transport{
		cfg:      cfg,
		log:      log,
		tlsc:     tlsConfigs{cert: cert},
		acceptCh: make(chan *Conn, acceptQueueLen),
		conns:    make(map[*Conn]struct{}),
	}
	t.tlsc.serverTLS = t.newServerTLS(ALPN)
	t.tlsc.serverTLSTCP = t.newServerTLS(ALPNTCP)
	t.tlsc.quicConf = &quic.Config{
		HandshakeIdleTimeout: cfg.HandshakeTimeout / 2, // quic-go aborts a handshake after twice this
		MaxIdleTimeout:       cfg.IdleTimeout,
		KeepAlivePeriod:      cfg.IdleTimeout / 3,
		// Dialers never open unidirectional streams; acceptors open exactly
		// one, the welcome (see doc.go).
		MaxIncomingUniStreams: -1,
	}

	pc := cfg.PacketConn
	if pc == nil {
		udp, ln, err := listenSockets(cfg.ListenAddr, cfg.NoTCP, t)
		if err != nil {
			return nil, err
		}
		pc, t.sock.ownedConn, t.sock.tcpLn = udp, udp, ln
	}
	t.sock.qt = &quic.Transport{Conn: pc}
	t.sock.ln, err = t.sock.qt.Listen(t.tlsc.serverTLS, t.tlsc.quicConf)
	if err != nil {
		t.sock.qt.Close()
		if t.sock.ownedConn != nil {
			t.sock.ownedConn.Close()
		}
		if t.sock.tcpLn != nil {
			t.sock.tcpLn.Close()
		}
		return nil, fmt.Errorf("transport: listen: %w", err)
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Go(t.acceptLoop)
	if t.sock.tcpLn != nil {
		t.wg.Go(t.tcpAcceptLoop)
	}
	log.Debug("transport listening", "addr", t.LocalAddr(), "tcp", t.TCPAddr(), "device", cfg.Identity.DeviceID())
	return t, nil
}

func listenUDP(ua *net.UDPAddr, log *slog.Logger) (*net.UDPConn, error) {
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("transport: listen: %w", err)
	}
	if err := udp.SetReadBuffer(socketBufferSize); err != nil {
		log.Debug("cannot set UDP read buffer", "size", socketBufferSize, "err", err)
	}
	if err := udp.SetWriteBuffer(socketBufferSize); err != nil {
		log.Debug("cannot set UDP write buffer", "size", socketBufferSize, "err", err)
	}
	return udp, nil
}

// LocalAddr returns the address of the UDP socket, with the port actually
// bound.
func (t *Transport) LocalAddr() net.Addr { return t.sock.qt.Conn.LocalAddr() }

// baseTLS is the part of the TLS configuration shared by both directions,
// for QUIC (ALPN) or TCP (ALPNTCP).
func (t *Transport) baseTLS(alpn string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.tlsc.cert},
		NextProtos:   []string{alpn},
		// No certificate authority is involved: the DeviceID in the peer's
		// self-signed certificate is the trust anchor, checked in
		// VerifyConnection (which, unlike VerifyPeerCertificate, also runs on
		// resumed sessions; we disable resumption anyway, so that Authorize
		// decides on every connection).
		InsecureSkipVerify:     true,
		SessionTicketsDisabled: true,
	}
}

func (t *Transport) newServerTLS(alpn string) *tls.Config {
	conf := t.baseTLS(alpn)
	conf.ClientAuth = tls.RequireAnyClientCert
	// GetConfigForClient runs per handshake, with the remote address (quic-go
	// fills in hello.Conn), so that refusals can be logged with it.
	conf.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		var remote net.Addr
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr()
		}
		c := t.baseTLS(alpn)
		c.ClientAuth = tls.RequireAnyClientCert
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			d, err := crypto.VerifyPeer(cs.PeerCertificates, t.cfg.Authorize)
			if err != nil {
				t.log.Info("refused incoming connection", "remote", remote, "device", d, "err", err)
				if alpn == ALPN {
					t.iceRefused(remote, err)
				}
				return err
			}
			return nil
		}
		return c, nil
	}
	return conf
}

// AnyDevice, as the peer of Dial or DialTCP, accepts whichever device
// answers and proves its key (see Dial). It is the zero DeviceID.
var AnyDevice crypto.DeviceID

func (t *Transport) clientTLS(peer crypto.DeviceID, alpn string) *tls.Config {
	conf := t.baseTLS(alpn)
	conf.VerifyConnection = func(cs tls.ConnectionState) error {
		_, err := crypto.VerifyPeer(cs.PeerCertificates, func(d crypto.DeviceID) error {
			if peer.IsZero() {
				return nil // AnyDevice: the caller takes whoever proves a key
			}
			if d != peer {
				return &WrongPeerError{Dialed: peer, Remote: d}
			}
			return t.cfg.Authorize(d)
		})
		return err
	}
	return conf
}

// Dial connects to addr ("host:port", UDP) and returns the connection once
// the remote has proven to be peer and has accepted us. The attempt is bounded
// by ctx and by Config.HandshakeTimeout.
//
// peer may be AnyDevice (the zero DeviceID): then any device that proves
// its key is accepted, without Authorize (Conn.Peer tells which one). That
// is for a server the user did not pin, such as an unpinned rendezvous;
// never use it to reach a peer that gets folder data.
//
// Errors: ErrClosed; an error wrapping crypto.ErrUnknownPeer (inside a
// *crypto.PeerError) if the remote is another device than peer or
// Authorize(peer) refuses it; one wrapping ErrRefused if the remote refused
// us; one wrapping ctx.Err() on cancellation; otherwise a network or
// handshake error.
func (t *Transport) Dial(ctx context.Context, addr string, peer crypto.DeviceID) (*Conn, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	ua, err := resolve(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	return t.dialUDP(ctx, ua, addr, peer, PathDirect)
}

// dialUDP is Dial after name resolution, also used by DialICE for the
// address ICE selected. path is what the Conn's Path reports.
func (t *Transport) dialUDP(ctx context.Context, ua *net.UDPAddr, addr string, peer crypto.DeviceID, path Path) (*Conn, error) {
	qc, err := t.sock.qt.Dial(ctx, ua, t.clientTLS(peer, ALPN), t.dialQUICConfig())
	if err != nil {
		return nil, t.dialError(addr, peer, err)
	}
	d, err := peerID(qc)
	if err == nil && !peer.IsZero() && d != peer { // VerifyConnection checked this already; be sure
		err = &WrongPeerError{Dialed: peer, Remote: d}
	}
	if err == nil {
		err = readWelcome(ctx, qc)
	}
	if err != nil {
		qc.CloseWithError(quic.ApplicationErrorCode(CloseProtocol), "") //nolint:errcheck // always nil
		return nil, t.dialError(addr, peer, err)
	}
	c := newConn(qc, d, true)
	c.path = path
	if !t.track(c) {
		return nil, ErrClosed
	}
	t.log.Debug("connected", "device", d, "remote", c.RemoteAddr())
	return c, nil
}

func (t *Transport) dialQUICConfig() *quic.Config {
	c := t.tlsc.quicConf.Clone()
	c.MaxIncomingUniStreams = 1 // the welcome
	return c
}

func (t *Transport) dialError(addr string, peer crypto.DeviceID, err error) error {
	if t.isClosed() {
		return ErrClosed
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.Remote && te.ErrorCode == alertBadCertificate {
		return fmt.Errorf("%w: dial %s (%s): %v", ErrRefused, addr, peer.Short(), err)
	}
	return fmt.Errorf("transport: dial %s (%s): %w", addr, peer.Short(), err)
}

// resolve turns "host:port" into a UDP address, honouring ctx for DNS.
func resolve(ctx context.Context, addr string) (*net.UDPAddr, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return net.UDPAddrFromAddrPort(ap), nil
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, "udp", portStr)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no address for %q", host)
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ips[0].Unmap(), uint16(port))), nil
}

// welcome is the content of the unidirectional stream an acceptor opens
// right after the handshake: one byte, the protocol version. See doc.go.
const welcome = 0x01

// readWelcome waits for the acceptor's welcome. In TLS 1.3 the client
// finishes its handshake before the server has checked the client's
// certificate; the welcome is what tells the dialer it was accepted (a
// refusal arrives instead as a CONNECTION_CLOSE with a TLS alert).
func readWelcome(ctx context.Context, qc *quic.Conn) error {
	s, err := qc.AcceptUniStream(ctx)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		s.SetReadDeadline(dl) //nolint:errcheck // only fails on a closed stream, which Read reports
	}
	b, err := io.ReadAll(io.LimitReader(s, 2))
	if err != nil {
		return err
	}
	if len(b) != 1 || b[0] != welcome {
		return fmt.Errorf("unexpected welcome %x", b)
	}
	return nil
}

// sendWelcome is the acceptor's half of readWelcome.
func (t *Transport) sendWelcome(qc *quic.Conn) error {
	s, err := qc.OpenUniStream()
	if err != nil {
		return err
	}
	s.SetWriteDeadline(time.Now().Add(t.cfg.HandshakeTimeout)) //nolint:errcheck // a fresh stream
	if _, err := s.Write([]byte{welcome}); err != nil {
		return err
	}
	return s.Close()
}

func peerID(qc *quic.Conn) (crypto.DeviceID, error) {
	certs := qc.ConnectionState().TLS.PeerCertificates
	if len(certs) == 0 {
		return crypto.DeviceID{}, &crypto.PeerError{Err: errors.New("no peer certificate")}
	}
	return crypto.DeviceIDFromCertificate(certs[0])
}

// acceptLoop takes handshaken connections from quic-go, welcomes them and
// queues them for Accept. It runs until Close.
func (t *Transport) acceptLoop() {
	for {
		qc, err := t.sock.ln.Accept(t.ctx)
		if err != nil {
			if t.ctx.Err() == nil {
				t.log.Error("accept stopped", "err", err)
			}
			return
		}
		d, err := peerID(qc)
		if err == nil {
			err = t.sendWelcome(qc)
		}
		if err != nil {
			t.log.Info("dropping incoming connection", "remote", qc.RemoteAddr(), "err", err)
			qc.CloseWithError(quic.ApplicationErrorCode(CloseProtocol), "") //nolint:errcheck // always nil
			continue
		}
		c := newConn(qc, d, false)
		if !t.track(c) {
			return
		}
		t.log.Debug("accepted", "device", d, "remote", c.RemoteAddr())
		if t.claimICE(c) {
			continue // an AcceptICE call was waiting for it
		}
		select {
		case t.acceptCh <- c:
		case <-t.ctx.Done():
			return // Close closes c with the other tracked connections
		}
	}
}

// Accept returns the next authenticated incoming connection, QUIC or TCP
// (see Conn.Path). Devices that Authorize refuses are turned away inside the
// TLS handshake, logged at Info, and never returned.
//
// Errors: ErrClosed; an error wrapping ctx.Err() on cancellation.
func (t *Transport) Accept(ctx context.Context) (*Conn, error) {
	select {
	case <-t.ctx.Done():
		return nil, ErrClosed
	default:
	}
	select {
	case c := <-t.acceptCh:
		return c, nil
	case <-t.ctx.Done():
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: accept: %w", ctx.Err())
	}
}

// track registers c so that Close closes it, and arranges for it to be
// forgotten when it ends. It returns false, having closed c, if the
// Transport is closed.
func (t *Transport) track(c *Conn) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.CloseWithError(CloseNormal, "transport closed") //nolint:errcheck // always nil
		return false
	}
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	context.AfterFunc(c.l.context(), func() {
		defer t.wg.Done()
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		c.l.wait() // a TCP connection lingers until its close message is taken
	})
	return true
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Close closes every connection (the peers are told), stops accepting, and
// releases the sockets if the Transport opened them. It waits for the
// Transport's goroutines to end. A second Close returns ErrClosed.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.closed = true
	conns := make([]*Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()

	t.cancel()
	var errs []error
	if err := t.sock.ln.Close(); err != nil {
		errs = append(errs, fmt.Errorf("transport: close listener: %w", err))
	}
	if t.sock.tcpLn != nil {
		if err := t.sock.tcpLn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("transport: close TCP listener: %w", err))
		}
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.CloseWithError(CloseNormal, "transport closed") }) //nolint:errcheck // always nil
	}
	wg.Wait()
	t.closeICE()
	if err := t.sock.qt.Close(); err != nil {
		errs = append(errs, fmt.Errorf("transport: close QUIC transport: %w", err))
	}
	if t.sock.ownedConn != nil {
		if err := t.sock.ownedConn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("transport: close socket: %w", err))
		}
	}
	t.wg.Wait()
	// Connections the accept loop queued but nobody accepted were closed
	// above; drain the queue so they are not handed out.
	for {
		select {
		case <-t.acceptCh:
		default:
			return errors.Join(errs...)
		}
	}
}
