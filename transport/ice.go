package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	piontransport "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/quic-go/quic-go"

	"github.com/peersync/peersync/crypto"
)

const (
	defaultSTUNTimeout = 3 * time.Second
	// muxReaderWait bounds how long Close waits for pion's mux reader.
	muxReaderWait = 2 * time.Second
)

// ErrICEFailed is returned (wrapped) by DialICE and AcceptICE when ICE found
// no working candidate pair, or lost the one it had.
var ErrICEFailed = errors.New("transport: ICE failed")

// Signaling carries ICE signaling messages (at most MaxSignalSize bytes;
// their format is in doc.go) between this device and its peers: the
// rendezvous (package transport/rendezvous) in production, a channel in
// tests. Messages are opaque to it, but for routing (SignalSession).
//
// DialICE sends its offer with Send and then reads with Recv until the
// answer to that offer arrives, ignoring messages from other devices or for
// other sessions; so a Signaling given to DialICE should deliver only that
// attempt's messages (a dispatcher routes by SignalSession). AcceptICE only
// sends.
type Signaling interface {
	// Send delivers msg to the device to.
	Send(ctx context.Context, to crypto.DeviceID, msg []byte) error
	// Recv returns the next message and the device it came from, as
	// authenticated by the rendezvous.
	Recv(ctx context.Context) (from crypto.DeviceID, msg []byte, err error)
}

// ICEConfig configures one DialICE or AcceptICE. The zero value gathers
// host candidates only, on the real network. The Config is not modified.
type ICEConfig struct {
	// STUNServers are "host:port" addresses of STUN servers, asked (from the
	// Transport's socket) for our public address to offer as a
	// server-reflexive candidate. Empty means host candidates only.
	STUNServers []string

	// STUNTimeout bounds the wait for a STUN server's answer, and for each
	// TURN server's allocation. Zero means 3 s.
	STUNTimeout time.Duration

	// TURNServers are relays to offer a relay candidate from (one per
	// server, each allocated from a socket of its own; see doc.go, "Relay").
	// Empty means no relay candidates. If every one of them fails (wrong
	// credentials, no answer within STUNTimeout), DialICE and AcceptICE
	// fail with an error wrapping ErrTURN rather than go on without relay.
	TURNServers []TURNServer

	// Net is the network pion ICE uses to resolve STUN servers and, when
	// the Transport's socket is bound to the unspecified address, to list
	// the local addresses offered as host candidates; nil means the real
	// one. Tests pass a pion vnet here, and the vnet's socket as
	// Config.PacketConn: ICE always uses the Transport's socket.
	Net piontransport.Net
}

// iceState is the Transport's NAT-traversal state: the demultiplexer of
// the shared socket's STUN packets (started on first use) and the
// AcceptICE calls waiting for their QUIC connection.
type iceState struct {
	mu      sync.Mutex // guards the fields below
	closed  bool
	demux   *stunDemux
	waiters map[*iceWaiter]struct{}
}

// iceWaiter is an AcceptICE call waiting for the peer's QUIC connection.
type iceWaiter struct {
	peer    crypto.DeviceID
	sess    *iceSession
	ch      chan *Conn // capacity 1; sent to under iceState.mu
	refused chan error // capacity 1: the TLS step refused whoever came from the ICE path
}

// stunDemux returns the Transport's STUN demultiplexer, starting it on first
// use.
func (t *Transport) stunDemux() (*stunDemux, error) {
	t.ice.mu.Lock()
	defer t.ice.mu.Unlock()
	if t.ice.closed {
		return nil, ErrClosed
	}
	if t.ice.demux == nil {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		d := newStunDemux(t.sock.qt, t.log)
		t.wg.Go(func() { d.run(t.ctx) })
		t.mu.Unlock()
		t.ice.demux = d
	}
	return t.ice.demux, nil
}

// closeICE refuses new ICE sessions. The demultiplexer stops with the
// Transport's context; sessions end with their connections or calls.
func (t *Transport) closeICE() {
	t.ice.mu.Lock()
	defer t.ice.mu.Unlock()
	t.ice.closed = true
}

// claimICE hands c to an AcceptICE call waiting for a connection from its
// device and address, and reports whether it did.
func (t *Transport) claimICE(c *Conn) bool {
	t.ice.mu.Lock()
	var ws []*iceWaiter
	for w := range t.ice.waiters {
		if w.peer == c.peer {
			ws = append(ws, w)
		}
	}
	t.ice.mu.Unlock()
	for _, w := range ws {
		if !w.sess.isRemote(c.RemoteAddr()) {
			continue
		}
		t.ice.mu.Lock()
		_, waiting := t.ice.waiters[w]
		sent := false
		if waiting {
			select {
			case w.ch <- c:
				sent = true
			default:
			}
		}
		t.ice.mu.Unlock()
		if sent {
			return true
		}
	}
	return false
}

// iceRefused tells the AcceptICE calls whose ICE peer is at remote that the
// TLS handshake from there was refused (err): the offer was not from the
// device the signaling named.
func (t *Transport) iceRefused(remote net.Addr, err error) {
	if remote == nil {
		return
	}
	t.ice.mu.Lock()
	ws := make([]*iceWaiter, 0, len(t.ice.waiters))
	for w := range t.ice.waiters {
		ws = append(ws, w)
	}
	t.ice.mu.Unlock()
	for _, w := range ws {
		if w.sess.isRemote(remote) {
			select {
			case w.refused <- err:
			default:
			}
		}
	}
}

func (t *Transport) addWaiter(w *iceWaiter) error {
	t.ice.mu.Lock()
	defer t.ice.mu.Unlock()
	if t.ice.closed {
		return ErrClosed
	}
	if t.ice.waiters == nil {
		t.ice.waiters = make(map[*iceWaiter]struct{})
	}
	t.ice.waiters[w] = struct{}{}
	return nil
}

// removeWaiter forgets w and returns a connection it was handed but nobody
// took, if any.
func (t *Transport) removeWaiter(w *iceWaiter) *Conn {
	t.ice.mu.Lock()
	defer t.ice.mu.Unlock()
	delete(t.ice.waiters, w)
	select {
	case c := <-w.ch:
		return c
	default:
		return nil
	}
}

// iceSession is one pion agent, from gathering to the end of the QUIC
// connection it led to.
type iceSession struct {
	sconn   *sessionConn // its packets on the shared socket
	mux     *ice.UniversalUDPMuxDefault
	agent   *ice.Agent
	net     piontransport.Net // for TURN sockets
	log     *slog.Logger
	logs    pionLogs
	turnc   turnSettings
	iceConn *ice.Conn // the agent's data path, set by StartDial/StartAccept
	sig     iceSignals

	mu         sync.Mutex // guards the fields below
	candidates []string   // our candidates, marshalled
	conn       *Conn      // the QUIC connection, once there is one
	prog       iceProgress
	turn       []*turnAlloc
	relay      relayPath
}

// iceProgress is how far an iceSession's agent got; guarded by its mu.
type iceProgress struct {
	state      ice.ConnectionState
	isFailed   bool
	connOnce   bool // sig.connected has been closed
	gatherOnce bool // sig.gathered has been closed
}

// turnSettings are the TURN servers an iceSession may allocate on.
type turnSettings struct {
	turnCfg  []TURNServer
	turnWait time.Duration // bound on each TURN allocation
}

// iceSignals are closed as an iceSession's agent reaches its states.
type iceSignals struct {
	gathered  chan struct{} // closed when gathering is complete
	connected chan struct{} // closed when the agent reports connected
	failed    chan struct{} // closed when the agent reports failed or closed
	closeOnce sync.Once
}

// relayPath is QUIC on a relayed pair (turn.go); zero when none.
type relayPath struct {
	relayQT *quic.Transport
	relayPC *icePacketConn // relayQT's packet conn
}

// connectionState returns the agent's last reported state.
func (s *iceSession) connectionState() ice.ConnectionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prog.state
}

func (t *Transport) newICESession(cfg *ICEConfig) (*iceSession, error) {
	d, err := t.stunDemux()
	if err != nil {
		return nil, err
	}
	ufrag, pwd := randomICEChars(16), randomICEChars(32)
	urls := make([]*stun.URI, 0, len(cfg.STUNServers))
	for _, s := range cfg.STUNServers {
		u, err := stun.ParseURI("stun:" + s)
		if err != nil {
			return nil, fmt.Errorf("transport: STUN server %q: %w", s, err)
		}
		urls = append(urls, u)
	}
	stunTimeout := cfg.STUNTimeout
	if stunTimeout <= 0 {
		stunTimeout = defaultSTUNTimeout
	}
	for _, ts := range cfg.TURNServers {
		if err := ts.validate(); err != nil {
			return nil, err
		}
	}
	pnet := cfg.Net
	if pnet == nil && len(cfg.TURNServers) > 0 {
		if pnet, err = stdnet.NewNet(); err != nil {
			return nil, fmt.Errorf("transport: network: %w", err)
		}
	}
	sc, err := d.register(ufrag)
	if err != nil {
		return nil, err
	}
	mux := ice.NewUniversalUDPMuxDefault(ice.UniversalUDPMuxParams{
		Logger:  pionLogs{t.log}.NewLogger("udpmux"),
		UDPConn: sc,
		Net:     cfg.Net,
	})
	opts := []ice.AgentOption{
		ice.WithLocalCredentials(ufrag, pwd),
		ice.WithUDPMux(mux),
		ice.WithUDPMuxSrflx(mux),
		ice.WithUrls(urls),
		ice.WithSTUNGatherTimeout(stunTimeout),
		ice.WithNetworkTypes([]ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6}),
		// Relay candidates are gathered by us (turn.go) and added as
		// virtual candidates, so that TURN failures are reported.
		ice.WithCandidateTypes([]ice.CandidateType{ice.CandidateTypeHost, ice.CandidateTypeServerReflexive}),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		ice.WithLoggerFactory(pionLogs{t.log}),
	}
	if cfg.Net != nil {
		opts = append(opts, ice.WithNet(cfg.Net))
	}
	agent, err := ice.NewAgentWithOptions(opts...)
	if err != nil {
		mux.Close()
		sc.waitReader(muxReaderWait)
		return nil, fmt.Errorf("transport: ICE agent: %w", err)
	}
	s := &iceSession{
		sconn: sc,
		mux:   mux,
		agent: agent,
		net:   pnet,
		log:   t.log,
		logs:  pionLogs{t.log},
		turnc: turnSettings{turnCfg: append([]TURNServer(nil), cfg.TURNServers...), turnWait: stunTimeout},
		sig:   iceSignals{gathered: make(chan struct{}), connected: make(chan struct{}), failed: make(chan struct{})},
	}
	err = agent.OnCandidate(s.onCandidate)
	if err == nil {
		err = agent.OnConnectionStateChange(s.onState)
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("transport: ICE agent: %w", err)
	}
	return s, nil
}

func (s *iceSession) onCandidate(c ice.Candidate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c != nil && c.Type() == ice.CandidateTypeRelay {
		return // ours, listed by gather
	}
	if c != nil {
		s.candidates = append(s.candidates, c.Marshal())
	} else if !s.prog.gatherOnce {
		s.prog.gatherOnce = true
		close(s.sig.gathered)
	}
}

// onState runs on pion's notifier goroutine. It closes the QUIC connection
// when ICE gives up on the path (consent lost) or the agent is closed:
// closing the agent does not stop QUIC by itself.
func (s *iceSession) onState(st ice.ConnectionState) {
	var conn *Conn
	s.mu.Lock()
	s.prog.state = st
	switch st {
	case ice.ConnectionStateConnected:
		if !s.prog.connOnce {
			s.prog.connOnce = true
			close(s.sig.connected)
		}
	case ice.ConnectionStateFailed, ice.ConnectionStateClosed:
		if !s.prog.isFailed {
			s.prog.isFailed = true
			close(s.sig.failed)
		}
		conn = s.conn
	default:
	}
	s.mu.Unlock()
	if conn != nil {
		conn.CloseWithError(ClosePathFailed, "ICE "+st.String()) //nolint:errcheck // always nil
	}
}

// gather collects our candidates (TURN allocations in parallel with
// pion's gathering), and returns them with our credentials.
func (s *iceSession) gather(ctx context.Context) (ufrag, pwd string, cands []string, err error) {
	tg := s.startTURN(ctx)
	defer tg.wait() //nolint:errcheck // only releases it, if not waited below
	if err := s.agent.GatherCandidates(); err != nil {
		return "", "", nil, fmt.Errorf("transport: ICE gathering: %w", err)
	}
	select {
	case <-s.sig.gathered:
	case <-ctx.Done():
		return "", "", nil, fmt.Errorf("transport: ICE gathering: %w", ctx.Err())
	}
	relays, err := tg.wait()
	if err != nil {
		return "", "", nil, err
	}
	ufrag, pwd, err = s.agent.GetLocalUserCredentials()
	if err != nil {
		return "", "", nil, fmt.Errorf("transport: ICE credentials: %w", err)
	}
	s.mu.Lock()
	cands = limitCandidates(append(relays, s.candidates...))
	s.mu.Unlock()
	if len(cands) == 0 {
		return "", "", nil, fmt.Errorf("%w: no local candidates", ErrICEFailed)
	}
	return ufrag, pwd, cands, nil
}

// limitCandidates returns at most maxSignalCandidates of cands, dropping
// host candidates first (a host with many interfaces, such as container
// bridges, has dozens; the server-reflexive ones are what crosses NATs).
func limitCandidates(cands []string) []string {
	if len(cands) <= maxSignalCandidates {
		return append([]string(nil), cands...)
	}
	out := make([]string, 0, maxSignalCandidates)
	for _, host := range []bool{false, true} {
		for _, c := range cands {
			if strings.Contains(c, " typ host") == host && len(out) < maxSignalCandidates {
				out = append(out, c)
			}
		}
	}
	return out
}

// addRemote gives the agent the peer's candidates. A peer's relay
// candidate is an ordinary UDP address to us (its TURN server forwards what
// we send there).
func (s *iceSession) addRemote(sig *signalMsg) error {
	for _, raw := range sig.Candidates {
		c, err := parseCandidate(raw) // validated already; parse again for a fresh value
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadSignal, err)
		}
		if err := s.agent.AddRemoteCandidate(c); err != nil {
			return fmt.Errorf("transport: ICE remote candidate: %w", err)
		}
	}
	return nil
}

// waitConnected waits for ICE to select a pair and returns it.
func (s *iceSession) waitConnected(ctx context.Context) (*ice.CandidatePair, error) {
	select {
	case <-s.sig.connected:
	case <-s.sig.failed:
		return nil, fmt.Errorf("%w: no candidate pair works", ErrICEFailed)
	case <-ctx.Done():
		return nil, fmt.Errorf("transport: ICE checks: %w", ctx.Err())
	}
	pair, err := s.agent.GetSelectedCandidatePair()
	if err != nil {
		return nil, fmt.Errorf("transport: ICE selected pair: %w", err)
	}
	if pair == nil {
		return nil, fmt.Errorf("%w: connected without a selected pair", ErrICEFailed)
	}
	return pair, nil
}

// isRemote reports whether addr is one of the peer's candidates (including
// peer-reflexive ones learned from its checks).
func (s *iceSession) isRemote(addr net.Addr) bool {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	cands, err := s.agent.GetRemoteCandidates()
	if err != nil {
		return false
	}
	for _, c := range cands {
		ip, err := netip.ParseAddr(c.Address())
		if err == nil && ip.Unmap() == ap.Addr() && c.Port() == int(ap.Port()) {
			return true
		}
	}
	return false
}

// close closes the agent and its mux, and waits for their goroutines. Not
// to be called from an agent callback.
func (s *iceSession) close() {
	s.sig.closeOnce.Do(func() {
		s.mu.Lock()
		qt, pc, allocs := s.relay.relayQT, s.relay.relayPC, s.turn
		s.mu.Unlock()
		if qt != nil {
			qt.Close() //nolint:errcheck // always nil: not its socket
			pc.Close() //nolint:errcheck // always nil; the ice.Conn stays for the agent
		}
		s.agent.GracefulClose() //nolint:errcheck // always nil
		s.mux.Close()           //nolint:errcheck // always nil; closes sconn, not the socket
		s.sconn.waitReader(muxReaderWait)
		for _, a := range allocs {
			a.close()
		}
		if pc != nil {
			select { // the pump ends with the agent
			case <-pc.pumpDone:
			case <-time.After(muxReaderWait):
			}
		}
	})
}

// randomICEChars returns n random letters: an ICE ufrag or password.
func randomICEChars(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	out := make([]byte, 0, n)
	var b [64]byte
	for len(out) < n {
		rand.Read(b[:]) //nolint:errcheck // never fails
		for _, x := range b {
			if int(x) < 4*len(letters) && len(out) < n { // rejection sampling: no bias
				out = append(out, letters[int(x)%len(letters)])
			}
		}
	}
	return string(out)
}

// tie binds the lifetimes of c and the session: the agent (and its consent
// checks, which keep the NAT mapping open) runs until c ends, and c is
// closed if ICE fails. On error c and the session are closed.
func (t *Transport) tie(c *Conn, s *iceSession) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.CloseWithError(CloseNormal, "transport closed") //nolint:errcheck // always nil
		s.close()
		return ErrClosed
	}
	t.wg.Add(1)
	t.mu.Unlock()
	context.AfterFunc(c.l.context(), func() {
		defer t.wg.Done()
		s.close()
	})
	c.ice = s
	s.mu.Lock()
	s.conn = c
	failed := s.prog.isFailed
	s.mu.Unlock()
	if failed {
		c.CloseWithError(ClosePathFailed, "ICE failed") //nolint:errcheck // always nil
		return fmt.Errorf("%w: lost the path during the QUIC handshake", ErrICEFailed)
	}
	return nil
}

// pathOf names the path a selected pair takes.
func pathOf(p *ice.CandidatePair) Path {
	lt, rt := p.Local.Type(), p.Remote.Type()
	switch {
	case lt == ice.CandidateTypeRelay || rt == ice.CandidateTypeRelay:
		return PathICERelay
	case lt == ice.CandidateTypeHost && rt == ice.CandidateTypeHost:
		return PathICEHost
	default:
		return PathICESrflx
	}
}

// callContext returns ctx, also cancelled when the Transport closes, so
// that a DialICE or AcceptICE in progress ends with Close.
func (t *Transport) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

func newSessionID() string {
	var b [signalSessionHexSize / 2]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	return hex.EncodeToString(b[:])
}

// DialICE connects to peer through NAT traversal: it gathers ICE candidates
// on the Transport's socket, sends an offer to peer through sig, waits for
// the answer, runs ICE connectivity checks as the controlling agent and, once
// ICE has selected a pair, dials QUIC to the selected remote address over the
// same socket, with the same authentication as Dial. ICE consent checks keep
// running (and the NAT mapping open) for the life of the Conn; the Conn is
// closed with application error 0x2 if ICE loses the path.
//
// ctx bounds the whole attempt; the QUIC part is also bounded by
// Config.HandshakeTimeout.
//
// When the selected pair is relayed through our TURN allocation, QUIC runs
// over the ICE agent instead of the shared socket (see turn.go); the Conn's
// Path is then PathICERelay, as it is when only the peer's side is relayed.
//
// Errors: ErrClosed; one wrapping ErrBadSignal if the peer's answer is
// malformed; one wrapping ErrTURN if cfg.TURNServers is not empty and none
// of them gave us a relayed address (before any offer is sent); one wrapping
// ErrICEFailed if no candidate pair works; otherwise those of Dial
// (crypto.ErrUnknownPeer, ErrRefused, ctx.Err()).
func (t *Transport) DialICE(ctx context.Context, peer crypto.DeviceID, sig Signaling, cfg ICEConfig) (*Conn, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	ctx, cancel := t.callContext(ctx)
	defer cancel()
	s, err := t.newICESession(&cfg)
	if err != nil {
		return nil, err
	}
	c, err := t.dialICE(ctx, peer, sig, s)
	if err != nil {
		s.close()
		if t.isClosed() {
			return nil, ErrClosed
		}
		return nil, err
	}
	return c, nil
}

func (t *Transport) dialICE(ctx context.Context, peer crypto.DeviceID, sig Signaling, s *iceSession) (*Conn, error) {
	ufrag, pwd, cands, err := s.gather(ctx)
	if err != nil {
		return nil, err
	}
	offer := &signalMsg{Version: signalVersion, Type: signalOffer, Session: newSessionID(), Ufrag: ufrag, Pwd: pwd, Candidates: cands}
	b, err := offer.marshal()
	if err != nil {
		return nil, fmt.Errorf("transport: ICE offer: %w", err)
	}
	if err := sig.Send(ctx, peer, b); err != nil {
		return nil, fmt.Errorf("transport: send ICE offer to %s: %w", peer.Short(), err)
	}
	answer, err := t.recvAnswer(ctx, peer, sig, offer.Session)
	if err != nil {
		return nil, err
	}
	if err := s.addRemote(answer); err != nil {
		return nil, err
	}
	ic, err := s.agent.StartDial(answer.Ufrag, answer.Pwd)
	if err != nil {
		return nil, fmt.Errorf("transport: ICE checks: %w", err)
	}
	s.iceConn = ic
	pair, err := s.waitConnected(ctx)
	if err != nil {
		return nil, err
	}
	path := pathOf(pair)
	if pair.Local.Type() == ice.CandidateTypeRelay {
		t.log.Debug("ICE selected a relayed pair", "device", peer, "local", pair.Local.String(), "remote", pair.Remote.String())
		qctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
		defer cancel()
		c, err := t.dialRelay(qctx, peer, s, pair)
		if err != nil {
			return nil, err
		}
		if err := t.tie(c, s); err != nil {
			return nil, err
		}
		return c, nil
	}
	ip, err := netip.ParseAddr(pair.Remote.Address())
	if err != nil {
		return nil, fmt.Errorf("%w: selected remote %q: %v", ErrICEFailed, pair.Remote.Address(), err)
	}
	ua := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(pair.Remote.Port())))
	t.log.Debug("ICE selected pair", "device", peer, "local", pair.Local.String(), "remote", pair.Remote.String(), "path", path)

	qctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	c, err := t.dialUDP(qctx, ua, ua.String(), peer, path)
	if err != nil {
		return nil, err
	}
	if err := t.tie(c, s); err != nil {
		return nil, err
	}
	return c, nil
}

// recvAnswer reads sig until the answer for session arrives from peer.
func (t *Transport) recvAnswer(ctx context.Context, peer crypto.DeviceID, sig Signaling, session string) (*signalMsg, error) {
	for {
		from, msg, err := sig.Recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("transport: waiting for ICE answer from %s: %w", peer.Short(), ctx.Err())
			}
			return nil, fmt.Errorf("transport: waiting for ICE answer from %s: %w", peer.Short(), err)
		}
		if from != peer {
			t.log.Debug("ignoring signaling message from another device", "device", from, "want", peer)
			continue
		}
		a, err := parseSignal(msg)
		if err != nil {
			return nil, fmt.Errorf("transport: ICE answer from %s: %w", peer.Short(), err)
		}
		if a.Type != signalAnswer || a.Session != session {
			t.log.Debug("ignoring signaling message", "device", from, "type", a.Type, "session", a.Session)
			continue
		}
		return a, nil
	}
}

// AcceptICE answers the ICE offer a device sent (through the rendezvous),
// as the controlled agent, and returns the QUIC connection the device then
// dials over the selected path. from is the device the rendezvous says the
// offer came from: it must pass Config.Authorize, or AcceptICE refuses
// without answering. The TLS handshake then proves it (a forged offer leads
// to a connection from another device, which Authorize refuses as usual, or
// to none). The answer goes to from through sig; AcceptICE does not call
// sig.Recv.
//
// While AcceptICE waits, an incoming connection from device from whose
// address is one of its ICE candidates is returned here instead of by
// Accept. ctx bounds the whole attempt.
//
// Errors: ErrClosed; one wrapping crypto.ErrUnknownPeer (in a
// *crypto.PeerError) if Authorize refuses from, or refuses the device that
// then connects from the ICE path (a forged offer); one wrapping ErrBadSignal
// if offer is malformed or not an offer; one wrapping ErrTURN if
// cfg.TURNServers is not empty and none of them gave us a relayed address
// (no answer is sent); one wrapping ErrICEFailed; one wrapping ctx.Err(),
// also when no device completes the QUIC handshake within
// Config.HandshakeTimeout of ICE connecting.
func (t *Transport) AcceptICE(ctx context.Context, from crypto.DeviceID, offer []byte, sig Signaling, cfg ICEConfig) (*Conn, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	if err := t.cfg.Authorize(from); err != nil {
		t.log.Info("refused ICE offer", "device", from, "err", err)
		return nil, &crypto.PeerError{Device: from, Err: err}
	}
	o, err := parseSignal(offer)
	if err != nil {
		return nil, fmt.Errorf("transport: ICE offer from %s: %w", from.Short(), err)
	}
	if o.Type != signalOffer {
		return nil, fmt.Errorf("transport: ICE offer from %s: %w: type %q", from.Short(), ErrBadSignal, o.Type)
	}
	ctx, cancel := t.callContext(ctx)
	defer cancel()
	s, err := t.newICESession(&cfg)
	if err != nil {
		return nil, err
	}
	w := &iceWaiter{peer: from, sess: s, ch: make(chan *Conn, 1), refused: make(chan error, 1)}
	if err := t.addWaiter(w); err != nil {
		s.close()
		return nil, err
	}
	c, err := t.acceptICE(ctx, from, o, sig, s, w)
	if left := t.removeWaiter(w); left != nil && left != c {
		left.CloseWithError(ClosePathFailed, "ICE accept abandoned") //nolint:errcheck // always nil
	}
	if err != nil {
		if c != nil {
			c.CloseWithError(ClosePathFailed, "ICE accept failed") //nolint:errcheck // always nil
		}
		s.close()
		if t.isClosed() {
			return nil, ErrClosed
		}
		return nil, err
	}
	return c, nil
}

func (t *Transport) acceptICE(ctx context.Context, from crypto.DeviceID, o *signalMsg, sig Signaling, s *iceSession, w *iceWaiter) (*Conn, error) {
	ufrag, pwd, cands, err := s.gather(ctx)
	if err != nil {
		return nil, err
	}
	answer := &signalMsg{Version: signalVersion, Type: signalAnswer, Session: o.Session, Ufrag: ufrag, Pwd: pwd, Candidates: cands}
	b, err := answer.marshal()
	if err != nil {
		return nil, fmt.Errorf("transport: ICE answer: %w", err)
	}
	if err := s.addRemote(o); err != nil {
		return nil, err
	}
	if err := sig.Send(ctx, from, b); err != nil {
		return nil, fmt.Errorf("transport: send ICE answer to %s: %w", from.Short(), err)
	}
	ic, err := s.agent.StartAccept(o.Ufrag, o.Pwd)
	if err != nil {
		return nil, fmt.Errorf("transport: ICE checks: %w", err)
	}
	s.iceConn = ic
	pair, err := s.waitConnected(ctx)
	if err != nil {
		return nil, err
	}
	path := pathOf(pair)

	qctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	if pair.Local.Type() == ice.CandidateTypeRelay {
		c, err := t.acceptRelay(qctx, from, s, w, pair)
		if err != nil {
			return nil, err
		}
		t.log.Debug("ICE connection accepted over our relay", "device", from, "remote", c.RemoteAddr())
		if err := t.tie(c, s); err != nil {
			return nil, err
		}
		return c, nil
	}
	var c *Conn
	select {
	case c = <-w.ch:
	case <-s.sig.failed:
		return nil, fmt.Errorf("%w: lost the path before the QUIC handshake", ErrICEFailed)
	case err := <-w.refused:
		return nil, fmt.Errorf("transport: ICE offer said %s, but the device on its path was refused: %w", from.Short(), err)
	case <-qctx.Done():
		return nil, fmt.Errorf("transport: waiting for QUIC from %s over ICE: %w", from.Short(), qctx.Err())
	}
	c.path = path // c is not handed out yet
	t.log.Debug("ICE connection accepted", "device", from, "remote", c.RemoteAddr(), "path", path)
	if err := t.tie(c, s); err != nil {
		return nil, err
	}
	return c, nil
}
