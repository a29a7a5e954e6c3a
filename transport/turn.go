package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/turn/v5"
	"github.com/quic-go/quic-go"

	"github.com/peersync/peersync/crypto"
)

// Relay (TURN) support. See doc.go, "NAT traversal" and "Relay".
//
// Each ICE session with ICEConfig.TURNServers allocates, from a socket of
// its own (not the Transport's: TURN ChannelData starts with 0x40–0x4F,
// which quic-go would take for QUIC), one relayed address per server, and
// offers it as a relay candidate. When the pair ICE selects has our relay
// candidate as its local side, QUIC cannot use the shared socket: it runs
// over the ICE agent's data path instead (a second quic.Transport on a
// net.PacketConn view of ice.Conn, which writes through the selected pair
// and reads the agent's non-STUN packets). When only the peer's side is
// relayed, the relay address is an ordinary UDP address to us, and QUIC
// uses the shared socket as for any other pair.

// relayQueueLen is how many packets the relay's QUIC reader may fall
// behind before more are dropped.
const relayQueueLen = 256

// ErrTURN is wrapped by the error DialICE and AcceptICE return when every
// TURN server of ICEConfig.TURNServers failed to give us a relayed address:
// wrong credentials (the server answers 401 Unauthorized), no answer within
// ICEConfig.STUNTimeout, or an unresolvable address.
var ErrTURN = errors.New("transport: TURN relay unavailable")

// TURNServer is a TURN relay (RFC 8656) reached over UDP, with long-term
// credentials (RFC 8489 section 9.2), such as examples/server with
// --turn-user/--turn-pass, or coturn with lt-cred-mech.
type TURNServer struct {
	// Addr is the server's "host:port" (port 3478 by convention). Required.
	Addr string
	// User and Pass are the long-term credentials. Required.
	User, Pass string
}

// String returns "turn://USER@HOST:PORT" (no password).
func (s TURNServer) String() string {
	return "turn://" + url.User(s.User).String() + "@" + s.Addr
}

// ParseTURNServer parses "turn://USER:PASS@HOST:PORT" or, so that the
// password need not appear on a command line, "turn://USER@HOST:PORT" (the
// desktop's --turn flag, its password from a file or the environment):
// then Pass is empty and must be set before use. The port defaults to 3478.
// USER and PASS may be percent-escaped. Errors mention the input without
// its password.
func ParseTURNServer(s string) (TURNServer, error) {
	u, err := url.Parse(s)
	if err != nil {
		return TURNServer{}, errors.New("transport: TURN server: not a turn://USER:PASS@HOST:PORT URL")
	}
	if u.Scheme != "turn" {
		return TURNServer{}, fmt.Errorf("transport: TURN server: scheme %q, want \"turn\"", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return TURNServer{}, fmt.Errorf("transport: TURN server %q: needs USER@ (or USER:PASS@)", u.Host)
	}
	pass, hasPass := u.User.Password()
	if hasPass && pass == "" {
		return TURNServer{}, fmt.Errorf("transport: TURN server %q: empty password after USER:", u.Host)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return TURNServer{}, fmt.Errorf("transport: TURN server %q: unexpected path or query", u.Host)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return TURNServer{}, errors.New("transport: TURN server: no host")
	}
	if port == "" {
		port = "3478"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 0xffff {
		return TURNServer{}, fmt.Errorf("transport: TURN server %q: bad port", u.Host)
	}
	return TURNServer{Addr: net.JoinHostPort(host, port), User: u.User.Username(), Pass: pass}, nil
}

func (s TURNServer) validate() error {
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		return fmt.Errorf("transport: TURN server %q: %w", s.Addr, err)
	}
	if s.User == "" || s.Pass == "" {
		return fmt.Errorf("transport: TURN server %q: User and Pass are required", s.Addr)
	}
	return nil
}

// turnAlloc is one TURN allocation: a socket of its own, the client
// speaking TURN on it, and the relayed address.
type turnAlloc struct {
	server string
	sock   net.PacketConn
	client *turn.Client
	relay  net.PacketConn // nil until allocated
	once   sync.Once
}

// close releases the allocation (a Refresh with lifetime 0, not waited
// for) and the socket. Idempotent.
func (a *turnAlloc) close() {
	a.once.Do(func() {
		if a.relay != nil {
			a.relay.Close() //nolint:errcheck // best effort: the allocation expires anyway
		}
		if a.client != nil {
			a.client.Close()
		}
		a.sock.Close() //nolint:errcheck // ends the client's reader
	})
}

// allocateTURN asks every server for a relayed address, in parallel, each
// bounded by timeout. It returns the allocations that worked; if none did,
// an error wrapping ErrTURN that names each server and its failure.
func (s *iceSession) allocateTURN(ctx context.Context, servers []TURNServer, timeout time.Duration) ([]*turnAlloc, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	allocs := make([]*turnAlloc, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() {
			a, err := s.allocateOne(ctx, srv)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", srv, err)
				return
			}
			allocs[i] = a
		})
	}
	wg.Wait()
	var out []*turnAlloc
	for _, a := range allocs {
		if a != nil {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrTURN, errors.Join(errs...))
	}
	for _, err := range errs {
		if err != nil {
			s.log.Info("TURN server failed; using the others", "err", err)
		}
	}
	return out, nil
}

func (s *iceSession) allocateOne(ctx context.Context, srv TURNServer) (*turnAlloc, error) {
	ua, err := s.net.ResolveUDPAddr("udp", srv.Addr)
	if err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	network, bind := "udp4", "0.0.0.0:0"
	if ua.IP.To4() == nil {
		network, bind = "udp6", "[::]:0"
	}
	sock, err := s.net.ListenPacket(network, bind)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	a := &turnAlloc{server: ua.String(), sock: sock}
	a.client, err = turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: ua.String(),
		Username:       srv.User,
		Password:       srv.Pass,
		Conn:           sock,
		Net:            s.net,
		LoggerFactory:  s.logs,
	})
	if err != nil {
		a.close()
		return nil, err
	}
	if err := a.client.Listen(); err != nil {
		a.close()
		return nil, err
	}
	a.relay, err = a.client.AllocateWithContext(ctx)
	if err != nil {
		a.close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("allocate: no answer: %w", ctx.Err())
		}
		// pion reports the server's error code only as text: "Allocate
		// error response (error 401: Unauthorized)" from coturn, 400 from
		// pion/turn, for a wrong user or password.
		if msg := err.Error(); strings.Contains(msg, "(error 401") || strings.Contains(msg, "(error 400") {
			return nil, fmt.Errorf("allocate refused (wrong TURN user or password?): %w", err)
		}
		return nil, fmt.Errorf("allocate: %w", err)
	}
	return a, nil
}

// turnGather is the TURN part of one gathering, running beside pion's.
type turnGather struct {
	s      *iceSession
	ch     chan turnResult // capacity 1
	once   sync.Once
	relays []string
	err    error
}

type turnResult struct {
	allocs []*turnAlloc
	err    error
}

// startTURN starts allocating on the session's TURN servers, if any.
func (s *iceSession) startTURN(ctx context.Context) *turnGather {
	g := &turnGather{s: s, ch: make(chan turnResult, 1)}
	if len(s.turnc.turnCfg) == 0 {
		g.ch <- turnResult{}
		return g
	}
	go func() {
		a, err := s.allocateTURN(ctx, s.turnc.turnCfg, s.turnc.turnWait)
		g.ch <- turnResult{a, err}
	}()
	return g
}

// wait waits for the allocations (bounded by ICEConfig.STUNTimeout), hands
// them to the session (which releases them when it closes), adds them to
// the agent as relay candidates and returns those, marshalled. Later calls
// return the same.
func (g *turnGather) wait() ([]string, error) {
	g.once.Do(func() {
		r := <-g.ch
		g.s.mu.Lock()
		g.s.turn = append(g.s.turn, r.allocs...)
		g.s.mu.Unlock()
		if g.err = r.err; g.err != nil {
			return
		}
		for _, a := range r.allocs {
			c, err := a.relayCandidate()
			if err != nil {
				g.err = err
				return
			}
			if err := g.s.agent.AddVirtualCandidate(c, a.relay); err != nil {
				g.err = fmt.Errorf("transport: ICE relay candidate: %w", err)
				return
			}
			g.relays = append(g.relays, c.Marshal())
		}
	})
	return g.relays, g.err
}

// relayCandidate makes the ICE relay candidate of a.
func (a *turnAlloc) relayCandidate() (*ice.CandidateRelay, error) {
	ra, err := netip.ParseAddrPort(a.relay.LocalAddr().String())
	if err != nil {
		return nil, fmt.Errorf("transport: TURN relayed address %q: %w", a.relay.LocalAddr(), err)
	}
	la, err := netip.ParseAddrPort(a.sock.LocalAddr().String())
	if err != nil {
		return nil, fmt.Errorf("transport: TURN socket address %q: %w", a.sock.LocalAddr(), err)
	}
	return ice.NewCandidateRelay(&ice.CandidateRelayConfig{
		Network:       "udp",
		Address:       ra.Addr().Unmap().String(),
		Port:          int(ra.Port()),
		Component:     ice.ComponentRTP,
		RelAddr:       la.Addr().Unmap().String(),
		RelPort:       int(la.Port()),
		RelayProtocol: "udp",
	})
}

// relayQUICConfig is the QUIC configuration on a relayed path: no path-MTU
// discovery (TURN adds up to 36 bytes of framing, and relays' MTUs vary),
// so packets stay at quic-go's initial 1280-byte size.
func (t *Transport) relayQUICConfig(dial bool) *quic.Config {
	c := t.tlsc.quicConf.Clone()
	c.DisablePathMTUDiscovery = true
	if dial {
		c.MaxIncomingUniStreams = 1 // the welcome
	}
	return c
}

// startRelayQUIC makes the session's second quic.Transport, over the ICE
// agent's data path (see the top of this file). The session closes it.
func (s *iceSession) startRelayQUIC(pair *ice.CandidatePair) (*quic.Transport, net.Addr, error) {
	if s.iceConn == nil {
		return nil, nil, fmt.Errorf("%w: no ICE connection for the relayed pair", ErrICEFailed)
	}
	local, err := candidateAddr(pair.Local)
	if err != nil {
		return nil, nil, err
	}
	remote, err := candidateAddr(pair.Remote)
	if err != nil {
		return nil, nil, err
	}
	pc := newICEPacketConn(s.iceConn, local, remote)
	qt := &quic.Transport{Conn: pc}
	s.mu.Lock()
	s.relay.relayQT, s.relay.relayPC = qt, pc
	s.mu.Unlock()
	return qt, remote, nil
}

func candidateAddr(c ice.Candidate) (*net.UDPAddr, error) {
	ip, err := netip.ParseAddr(c.Address())
	if err != nil {
		return nil, fmt.Errorf("%w: candidate address %q: %v", ErrICEFailed, c.Address(), err)
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(c.Port()))), nil
}

// dialRelay is dialUDP (transport.go) for a pair whose local side is our
// relay candidate: QUIC over the session's relay transport.
func (t *Transport) dialRelay(ctx context.Context, peer crypto.DeviceID, s *iceSession, pair *ice.CandidatePair) (*Conn, error) {
	qt, remote, err := s.startRelayQUIC(pair)
	if err != nil {
		return nil, err
	}
	qc, err := qt.Dial(ctx, remote, t.clientTLS(peer, ALPN), t.relayQUICConfig(true))
	if err != nil {
		return nil, t.dialError(remote.String(), peer, err)
	}
	d, err := peerID(qc)
	if err == nil && d != peer {
		err = &WrongPeerError{Dialed: peer, Remote: d}
	}
	if err == nil {
		err = readWelcome(ctx, qc)
	}
	if err != nil {
		qc.CloseWithError(quic.ApplicationErrorCode(CloseProtocol), "") //nolint:errcheck // always nil
		return nil, t.dialError(remote.String(), peer, err)
	}
	c := newConn(qc, d, true)
	c.path = PathICERelay
	if !t.track(c) {
		return nil, ErrClosed
	}
	return c, nil
}

// acceptRelay is the acceptor's side of dialRelay: it takes the one QUIC
// connection that arrives over the relayed pair, which must come from the
// device from.
func (t *Transport) acceptRelay(ctx context.Context, from crypto.DeviceID, s *iceSession, w *iceWaiter, pair *ice.CandidatePair) (*Conn, error) {
	qt, _, err := s.startRelayQUIC(pair)
	if err != nil {
		return nil, err
	}
	ln, err := qt.Listen(t.newServerTLS(ALPN), t.relayQUICConfig(false))
	if err != nil {
		return nil, fmt.Errorf("transport: listen on the relayed path: %w", err)
	}
	defer ln.Close() // accepted connections are unaffected
	actx, cancel := context.WithCancel(ctx)
	got := make(chan *quic.Conn, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		qc, err := ln.Accept(actx)
		if err == nil {
			got <- qc
		}
	}()
	defer func() { cancel(); <-done }()
	var qc *quic.Conn
	select {
	case qc = <-got:
	case <-s.sig.failed:
		return nil, fmt.Errorf("%w: lost the path before the QUIC handshake", ErrICEFailed)
	case err := <-w.refused:
		return nil, fmt.Errorf("transport: ICE offer said %s, but the device on its path was refused: %w", from.Short(), err)
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: waiting for QUIC from %s over the relay: %w", from.Short(), ctx.Err())
	}
	d, err := peerID(qc)
	if err == nil && d != from {
		err = &crypto.PeerError{Device: d, Err: fmt.Errorf("%w: not the device the ICE offer named (%s)", crypto.ErrUnknownPeer, from.Short())}
	}
	if err == nil {
		err = t.sendWelcome(qc)
	}
	if err != nil {
		qc.CloseWithError(quic.ApplicationErrorCode(CloseProtocol), "") //nolint:errcheck // always nil
		return nil, fmt.Errorf("transport: QUIC over the relay from %s: %w", from.Short(), err)
	}
	c := newConn(qc, d, false)
	c.path = PathICERelay
	if !t.track(c) {
		return nil, ErrClosed
	}
	return c, nil
}

// icePacketConn is a net.PacketConn over an ice.Conn, for the relay's
// quic.Transport: WriteTo sends on the selected pair whatever the address,
// ReadFrom returns the agent's non-STUN packets as coming from remote. One
// goroutine (pump) reads the ice.Conn; it ends when the agent closes.
// Close does not close the ice.Conn (that would close the agent).
type icePacketConn struct {
	conn          *ice.Conn
	local, remote *net.UDPAddr
	in            chan []byte
	done          chan struct{} // closed by Close
	closeOnce     sync.Once
	pumpDone      chan struct{}

	mu           sync.Mutex    // guards the fields below
	readDeadline time.Time     // zero: none
	deadlineSet  chan struct{} // closed (and replaced) when readDeadline changes
}

var _ net.PacketConn = (*icePacketConn)(nil)

func newICEPacketConn(conn *ice.Conn, local, remote *net.UDPAddr) *icePacketConn {
	c := &icePacketConn{
		conn:        conn,
		local:       local,
		remote:      remote,
		in:          make(chan []byte, relayQueueLen),
		done:        make(chan struct{}),
		pumpDone:    make(chan struct{}),
		deadlineSet: make(chan struct{}),
	}
	go c.pump()
	return c
}

func (c *icePacketConn) pump() {
	defer close(c.pumpDone)
	for {
		buf := make([]byte, 1500)
		n, err := c.conn.Read(buf)
		if err != nil {
			return
		}
		select {
		case c.in <- buf[:n]:
		case <-c.done:
			return
		default: // QUIC's reader is behind: drop, as a full socket buffer would
		}
	}
}

func (c *icePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, changed := c.readDeadline, c.deadlineSet
		c.mu.Unlock()
		if n, ok, err := c.readUntil(b, dl, changed); ok {
			return n, c.remote, err
		}
	}
}

// readUntil waits for a packet, Close, the deadline dl, or a change of
// deadline (ok false: try again with the new one).
func (c *icePacketConn) readUntil(b []byte, dl time.Time, changed <-chan struct{}) (n int, ok bool, err error) {
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return 0, true, os.ErrDeadlineExceeded
		}
		tm := time.NewTimer(d)
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case p := <-c.in:
		return copy(b, p), true, nil
	case <-c.done:
		return 0, true, net.ErrClosed
	case <-c.pumpDone:
		return 0, true, net.ErrClosed
	case <-timeout:
		return 0, true, os.ErrDeadlineExceeded
	case <-changed:
		return 0, false, nil
	}
}

func (c *icePacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	return c.conn.Write(b)
}

// Close stops ReadFrom and WriteTo; the ice.Conn stays open.
func (c *icePacketConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return nil
}

func (c *icePacketConn) LocalAddr() net.Addr { return c.local }

func (c *icePacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *icePacketConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.readDeadline = t
	close(c.deadlineSet)
	c.deadlineSet = make(chan struct{})
	return nil
}

// SetWriteDeadline is accepted and ignored: writes do not block for long.
func (c *icePacketConn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer and SetWriteBuffer are accepted and ignored: there is no
// kernel socket here (the queue is relayQueueLen packets). They keep
// quic-go from warning about buffer sizes.
func (c *icePacketConn) SetReadBuffer(int) error { return nil }

func (c *icePacketConn) SetWriteBuffer(int) error { return nil }
