// Package transport gives authenticated, encrypted connections between
// peersync devices, named by their crypto.DeviceID: over QUIC on one UDP
// socket per device, or over TLS on TCP, on the same port number, for
// networks that drop UDP and for lossy ones.
//
// A device makes one Transport, dials the peers it knows and accepts the
// ones that call it:
//
//	tr, err := transport.New(transport.Config{
//		Identity:  id,            // *crypto.Identity
//		Authorize: table.Allowed, // func(crypto.DeviceID) error: nil = welcome
//	})                            // listens on :44996/udp and :44996/tcp
//	defer tr.Close()
//
//	conn, err := tr.Dial(ctx, "203.0.113.7:44996", peerID) // fails unless the remote proves it is peerID
//	// or, over TCP, with the same guarantees and the same Conn API:
//	conn, err := tr.DialTCP(ctx, "203.0.113.7:44996", peerID)
//	s, err := conn.OpenStream(ctx)
//	err = transport.WriteFrame(s, request)
//	reply, err := transport.ReadFrame(s, 0)
//
//	// elsewhere, in a loop:
//	conn, err := tr.Accept(ctx) // only devices Authorize accepted; QUIC or TCP (conn.Path())
//	s, err := conn.AcceptStream(ctx)
//
// A Conn carries many concurrent Streams (bidirectional, reliable,
// ordered; up to 100 open per direction on every path). Stream.Close ends our sending side
// only: the peer reads io.EOF and can still answer; a stream we will not
// read any more is ended with CloseRead (or Abort), so that what the peer
// still sends is dropped instead of held in its window. Conn.Done is closed when
// the connection ends for any reason, Conn.Err says why. Connections stay up
// while idle (keepalives every IdleTimeout/3) and end after IdleTimeout
// without hearing from the peer.
//
// # Authentication
//
// Every connection is TLS 1.3 (inside QUIC, or over TCP) with mutual
// authentication; there is no unencrypted mode. Each side presents the self-signed Ed25519
// certificate of its crypto.Identity, and the DeviceID is the certificate's
// public key, so no certificate authority is involved. The TLS handshake
// proves that the peer holds the private key; then:
//
//   - the acceptor calls Config.Authorize with the dialer's DeviceID and, on an
//     error, aborts the handshake with a TLS "bad certificate" alert. The
//     refused device gets no Conn, no stream is ever accepted from it, and
//     the refusal is logged at Info with the device and address.
//   - the dialer requires the DeviceID to be the one it dialed, and
//     Authorize to accept it, else Dial fails with an error wrapping
//     crypto.ErrUnknownPeer (in a *crypto.PeerError naming the device).
//
// In TLS 1.3 the client's side of the handshake completes before the server
// has checked the client's certificate. So that Dial reports a refusal
// instead of returning a connection that dies a moment later, the acceptor
// sends a welcome once it has accepted (below), and Dial returns only after
// receiving it; a refusal makes Dial fail with an error wrapping ErrRefused.
// Dial thus takes two round trips instead of QUIC's one, the same as waiting
// for QUIC's HANDSHAKE_DONE (which quic-go does not expose). DialTCP does
// the same over TCP (see "TCP").
// TLS session resumption is disabled, so that Authorize decides on every
// connection.
//
// # Wire format
//
// QUIC version 1 (RFC 9000) with ALPN "peersync/1".
//
// Welcome: right after the handshake, the acceptor opens the first
// server-initiated unidirectional stream (stream ID 3), writes the single
// byte 0x01 (the protocol version) and closes it. The dialer reads it to EOF
// and closes the connection (application error 0x1) on anything else. No
// other unidirectional streams are used; dialers may not open any.
//
// Streams: all application data travels on bidirectional streams opened by
// either side (OpenStream, AcceptStream). What they carry is the sync
// engine's business; this package only frames control messages.
//
// Control messages are framed, on any stream, as a length prefix and the
// payload:
//
//	+--------------------------------+------------------------+
//	| length: uint32, big-endian (4) | payload (length bytes) |
//	+--------------------------------+------------------------+
//
// length is at most MaxFrameSize (1 MiB) unless the reader allows more.
// ReadFrame rejects a larger declared length with ErrFrameTooLarge before
// allocating anything; the stream is then out of step and should be aborted.
// Bulk data (bundles) does not go in frames: it gets a stream of its own
// after a frame declaring its size.
//
// Closing: Conn.Close and Transport.Close send application error code 0
// (CloseNormal); Conn.CloseWithError sends the caller's code and message.
// The peer's Conn.Err is then a *CloseError with them, on every path.
// Close codes (type CloseCode) come from one table, this package's and the
// sync engine's together, so that no number means two things:
//
//	0 CloseNormal          Close, Transport.Close
//	1 CloseProtocol        a malformed welcome, control stream or registration
//	2 ClosePathFailed      ICE lost the path (no consent answer)
//	3 CloseNotAllowed      the peer is no longer an allowed device
//	4 CloseDuplicate       another connection to the peer is kept
//	5 CloseBundleRefused   the peer sent a bundle we refused
//	6 CloseRaceLost        another path to the peer authenticated first
//	7 CloseIdle            the connection carried nothing needed for a while
//	8 CloseNetworkChanged  this machine's addresses changed
//
// Errors: Conn.Err, and the errors of a Stream's Read and Write, are this
// package's own types on every path (QUIC, TCP, ICE): *CloseError,
// *StreamResetError, ErrIdleTimeout; no caller needs quic-go to read them.
//
// The TCP path has its own wire format, below ("TCP").
//
// # Socket ownership
//
// A Transport owns exactly one UDP socket, through a quic.Transport that
// demultiplexes by QUIC connection ID: the same socket listens and dials,
// for every peer at once, so a NAT mapping made by one use serves the
// others. With Config.ListenAddr the Transport opens the socket (asking for
// 4 MiB kernel buffers) and Close closes it. With Config.PacketConn it uses
// the caller's socket (for tests and pion's vnet) exclusively until Close,
// and leaves it open.
//
// With Config.ListenAddr (and unless Config.NoTCP) the Transport also
// listens on TCP, on the same host and the same port number as the UDP
// socket (Transport.TCPAddr): one number to configure, forward on a router
// and announce, for both kinds. With port 0 the UDP socket is bound first
// and TCP then takes its number; if that number is taken on TCP, the UDP
// socket is given up and the pair tried again with a fresh one (8 attempts
// at most). A fixed port that is taken on TCP fails New (the error names
// Config.NoTCP). With Config.PacketConn there is no TCP listener. Each TCP
// connection, dialed or accepted, has a socket of its own.
//
// Close tells every peer (CONNECTION_CLOSE, or the TCP close message), stops
// the accept loops, waits for every goroutine the Transport started, and
// is idempotent; afterwards every method returns ErrClosed.
//
// # TCP
//
// The second kind of path, equal to the first: Accept returns incoming
// connections of both kinds, and a Conn, its Streams and their errors
// behave the same on both (Conn.Path is PathTCP). It exists for two
// reasons:
//
//   - Networks that drop UDP (some corporate and hotel networks, some
//     firewalls): TCP gets through where QUIC cannot.
//   - Loss. quic-go's congestion control is NewReno, fixed, which collapses
//     under packet loss: with 2% loss and 20 ms of delay, QUIC moved about
//     3 Mbit/s where the kernel's TCP with BBR kept 224 Mbit/s. Through this
//     path (TLS, yamux) on a 20 ms wire dropping 2% each way, QUIC moved
//     6–7 Mbit/s and TCP 150–360 Mbit/s (BENCHMARKS.md). On Linux
//     every TCP socket of ours asks for BBR (TCP_CONGESTION "bbr", dialed
//     and accepted sockets alike), keeping the system default where the
//     kernel does not offer it. Other systems use their default.
//
// Which path to use is the caller's choice (the sync engine's dial policy);
// this package offers both.
//
// Sockets: TCP_NODELAY (small control frames are not delayed), BBR as
// above. The kernel buffers are left to the kernel's autotuning, unlike on
// the UDP socket: on Linux, setting SO_RCVBUF or SO_SNDBUF turns autotuning
// off for the socket and is capped by net.core.rmem_max/wmem_max (208 KiB
// on a stock kernel), while autotuning grows a buffer to tcp_rmem/tcp_wmem's
// maximum (6 and 4 MiB on a stock kernel, more where raised, 32 MiB here):
// a fixed 4 MiB request would cap or shrink the window of a long fat path.
//
// Incoming handshakes: at most 64 TCP connections are in their TLS
// handshake at once, at most 4 from one source (an IPv4 address or an IPv6
// /64). A connection beyond a source's 4 is closed at once. When all 64
// slots are taken, a new connection takes the slot of the oldest one that
// has not sent a byte yet (a real dialer sends its ClientHello at once),
// else it is closed; a connection that sends nothing for 3 s (or
// HandshakeTimeout, if shorter) is closed. So idle unauthenticated sockets,
// from any number of addresses, cannot keep real dialers out.
//
// Wire format: TLS 1.3 over TCP, ALPN "peersync-tcp/1", the same
// certificates, verification and Authorize as QUIC (a refusal is a TLS "bad
// certificate" alert; TLS session resumption disabled). Welcome: right after
// the handshake the acceptor writes the single byte 0x01 on the TLS
// connection; the dialer reads it before anything else (a refusal arrives
// instead, as the alert, and DialTCP fails with ErrRefused). Then both run
// yamux (github.com/libp2p/go-yamux v5, its spec.md), the dialer as client
// (odd stream IDs), the acceptor as server (even). yamux has what QUIC has
// for us: stream resets with a code (Stream.Abort; both sides' Reads and
// Writes then fail with a *StreamResetError, Remote set on the peer's),
// half-close, and per-stream flow control.
//
// The control stream: the dialer opens stream 1 right after the welcome,
// and the acceptor's first accepted stream must be it (else the connection
// is dropped as a protocol error); it is never handed to the application.
// It carries, each way, at most one close message, then the stream's FIN:
//
//	+-------------------------------+--------------------------------------+
//	| code: uint64, big-endian (8)  | message: n <= 1024 bytes of UTF-8    |
//	+-------------------------------+--------------------------------------+
//
// CloseWithError writes it (and FIN), and the connection has then ended
// for us; it waits in the background until the peer, which ends the
// connection on reading the message, closes the TCP connection, or for a
// second at most (Transport.Close waits for this), so that closing our
// socket first cannot reset the TCP connection under the message. The
// peer's Err is a *CloseError with Remote set, as on QUIC. Anything else on
// the control stream (more than one message, a malformed one) is a
// protocol error that ends the connection. A TCP connection that breaks
// without a close message ends with an error wrapping net.ErrClosed.
//
// Limits, so that memory is bounded by configuration, not by what a peer
// sends (a device that may connect can still be hostile):
//
//   - Streams: at most 100 of the peer's streams open at once, as on QUIC
//     (quic-go's default); a stream beyond is reset at once (the opener's
//     Read and Write fail with a *StreamResetError). At most 100 of our
//     new streams wait for the peer's accept (OpenStream blocks beyond).
//   - Receive windows: each stream starts with 256 KiB and grows, while the
//     application reads fast, up to 16 MiB (about 1 Gbit/s at 130 ms round
//     trip on one stream); the growth of all streams of one connection
//     together is bounded by 32 MiB. A peer can thus make us buffer at
//     most 100 × 256 KiB + 32 MiB = 57 MiB per connection, however many
//     streams it opens and however much it writes (on QUIC, quic-go's
//     connection window bounds the same). Measured: 150 streams each
//     offering 16 MiB that the application never reads grow the heap by
//     about 40 MiB (hostile_test.go).
//   - A stream the application has closed both ways (Close and CloseRead,
//     or Abort) is freed at once, and what the peer still sends on it is
//     dropped unread.
//   - A Stream.Write goes out in data frames of at most 256 KiB, so that
//     other streams and keepalives are not queued behind a window's worth
//     of one stream.
//
// Keepalive: yamux pings, sent by us when nothing was heard from the peer
// for IdleTimeout/3; the connection ends with an error wrapping
// ErrIdleTimeout after IdleTimeout without hearing anything, data or pong,
// as on QUIC. (yamux's own keepalive is off: it ends a connection whose
// pong is queued behind bulk data on a slow link.) Half-closed and
// unaccepted streams have no timeout, as on QUIC.
//
// # NAT traversal
//
// Peers behind NATs connect with ICE (pion/ice v4) and then QUIC on the path
// ICE punched. Signaling — exchanging ICE credentials and candidates — goes
// through a Signaling the caller provides (the rendezvous client of package
// transport/rendezvous; a channel in tests):
//
//	// dialing side (ICE controlling):
//	cfg := transport.ICEConfig{
//		STUNServers: []string{"stun.example.net:3478"},
//		TURNServers: []transport.TURNServer{{Addr: "turn.example.net:3478", User: "u", Pass: "p"}}, // optional relay
//	}
//	conn, err := tr.DialICE(ctx, peerID, sig, cfg)
//
//	// accepting side, in the loop that receives signaling messages:
//	from, msg, err := sig.Recv(ctx)
//	if _, offer, err := transport.SignalSession(msg); err == nil && offer {
//		conn, err := tr.AcceptICE(ctx, from, msg, sig, cfg) // refuses devices Authorize refuses
//	}
//
// conn.Path() then says how the connection was made: "direct" (Dial, or
// Accept), "ice-host" (ICE host pair: same network), "ice-srflx" (a
// server- or peer-reflexive candidate: through a NAT), "ice-relay" (either
// side of the pair is a TURN relay; see "Relay" below).
//
// Steps: DialICE gathers candidates (host candidates of the Transport's
// socket, with STUNServers its server-reflexive address asked from that
// same socket, with TURNServers one relayed address per server), sends an
// offer, and waits for the answer; AcceptICE gathers,
// answers, and both run ICE connectivity checks. Once ICE has selected a
// pair, the dialing side dials QUIC to the selected remote address over the
// same socket, with the usual mutual TLS check (the remote must prove to be
// the DeviceID dialed; the acceptor's Authorize applies), and the accepting
// side takes the incoming QUIC connection of that device from one of its ICE
// candidate addresses (it is not returned by Accept). Signaling is not
// trusted: a rendezvous lying about who sent an offer or answer gets ICE to
// connect to the wrong device, and then the TLS handshake fails (DialICE
// with crypto.ErrUnknownPeer or ErrRefused; AcceptICE, refusing the device
// that came instead of the one named, with crypto.ErrUnknownPeer naming it).
//
// The ICE agent lives as long as the QUIC connection: its consent checks
// (STUN binding requests on the selected pair every 2 s, both ways) keep the
// NAT mapping open, the agent is closed when the connection ends, and the
// connection is closed with ClosePathFailed (2) when ICE declares the path
// failed (no STUN answer for 5 s + 25 s) — closing an agent does not stop
// QUIC by itself, so we tie them. If ICE later prefers another pair, QUIC
// stays on the first one (its keepalives, every IdleTimeout/3, keep that
// mapping open too).
//
// Signaling message (UTF-8 JSON, at most MaxSignalSize = 16 KiB; unknown
// fields are ignored, anything else malformed is refused with ErrBadSignal):
//
//	{
//	  "v": 1,                                   // the version; others are refused
//	  "type": "offer",                          // "offer" (dialer) or "answer" (acceptor)
//	  "session": "3f2a…(32 lowercase hex)",     // chosen by the offerer, echoed in the answer
//	  "ufrag": "…",                             // ICE username fragment: 4–256 of [A-Za-z0-9+/]
//	  "pwd": "…",                               // ICE password: 22–256 of [A-Za-z0-9+/]
//	  "candidates": [                           // at most 32, each at most 256 bytes
//	    "1 1 udp 2130706431 192.0.2.10 44996 typ host",
//	    "2 1 udp 1694498815 203.0.113.7 61234 typ srflx raddr 192.0.2.10 rport 44996"
//	  ]
//	}
//
// Candidates are RFC 8839 candidate-attribute values (with or without the
// "candidate:" prefix); each must be UDP with an IP literal address (no
// hostnames or mDNS names: no lookups are made for a peer's input) and a
// port in 1–65535. Candidates are not trickled: each side sends all of its
// own in one message, after gathering (bounded by ICEConfig.STUNTimeout);
// beyond 32, host candidates are left out first. Relay candidates ("typ
// relay", with the TURN client's local socket as raddr/rport) are listed
// first.
//
// # Shared socket
//
// ICE and QUIC use the one UDP socket of the Transport, so that the NAT
// mapping ICE punched is the one QUIC uses, and so that QUIC keeps quic-go's
// fast path (GSO/GRO, path-MTU discovery): QUIC run over pion's ice.Conn
// instead moved 4–7× less data; on the shared socket it moves as much as
// plain quic-go does (BenchmarkThroughput). The quic.Transport owns the
// socket and demultiplexes QUIC by connection ID; the packets it does not
// take (first byte 0x00–0x3F, which covers STUN) it hands over through
// quic.Transport.ReadNonQUICPacket (a queue of 32 packets, which drops
// beyond: one goroutine of ours drains it without blocking). That goroutine
// routes each STUN message to its ICE session — requests by the ufrag in
// their USERNAME, responses by the transaction ID of the request the
// session sent — and each session's pion UniversalUDPMux reads its own
// packets from a net.PacketConn view and writes with
// quic.Transport.WriteTo. (One pion mux shared by all sessions would route
// by remote address, and misroute when two sessions face the same peer
// address, as when both peers dial each other at once.) Closing a session's
// view never closes the socket. TURN ChannelData (first byte 0x40–0x4F)
// would be taken for QUIC by quic-go, so TURN never uses this socket (see
// "Relay").
//
// # Relay
//
// ICEConfig.TURNServers are TURN servers (RFC 8656, over UDP, long-term
// credentials; pion/turn as in examples/server, or coturn), given as
// TURNServer{Addr, User, Pass} or parsed from "turn://USER:PASS@HOST:PORT"
// by ParseTURNServer. While pion gathers host and server-reflexive
// candidates, each ICE session allocates one relayed address per server,
// each from a UDP socket of its own (an ephemeral port, not the Transport's:
// the server's ChannelData would otherwise reach quic-go), and offers it as
// a relay candidate. The allocation is released when the session ends.
//
// If every TURN server fails — wrong credentials (coturn answers 401,
// pion/turn 400; the error says "wrong TURN user or password?"), no answer
// within ICEConfig.STUNTimeout, an unresolvable name — DialICE and
// AcceptICE fail at once with an error wrapping ErrTURN that names each
// server (never its password), before any offer or answer is sent: a
// misconfigured relay is reported, not silently dropped. If some work, the
// others are logged at Info and ignored.
//
// QUIC on a pair that ICE selected:
//
//   - our side is a relay candidate: QUIC cannot use the shared socket.
//     The session starts a second quic.Transport, on a net.PacketConn view of
//     pion's ice.Conn (writes go out through the selected pair, that is
//     through our TURN client; reads are the agent's non-STUN packets from
//     the validated remote). The dialer dials on it, the acceptor listens on
//     it and takes the one connection that arrives (the same TLS checks; a
//     device other than the offer's is refused with crypto.ErrUnknownPeer).
//     Path-MTU discovery is off there (TURN framing adds up to 36 bytes), so
//     packets stay at quic-go's initial size. This path goes through
//     ice.Conn's buffer and costs some throughput, which a relay limits
//     anyway; the direct paths keep the shared socket's speed.
//   - only the peer's side is a relay candidate: its relayed address is an
//     ordinary UDP address to us; QUIC uses the shared socket as for any
//     other pair (and the TURN server forwards to the peer's client).
//
// The relay's QUIC transport is closed with the connection (or the failed
// attempt), before the agent. ICE prefers direct pairs: pion waits 2 s
// before it accepts a relayed pair (its default), so a relayed connection
// takes about 2 s, a direct one through two NATs about 0.6 s.
//
// # Tested
//
// In-process with pion's vnet (relay_test.go, ice_vnet_test.go): two
// symmetric NATs and pion/turn, with TURN on both sides, on the dialer's
// only, on the acceptor's only (so both QUIC-over-relay directions and the
// shared-socket-to-relay case run) → "ice-relay", data both ways; cone NATs
// with TURN offered → "ice-srflx"; wrong credentials on either side, a
// server that does not answer, incomplete configuration → ErrTURN or a
// configuration error within STUNTimeout.
//
// With real Linux NATs (nat_test.go, root only, skipped loudly otherwise and
// in -short mode; topology in internal/natlab): two network namespaces
// behind two "home routers" doing iptables MASQUERADE and dropping
// unsolicited WAN packets, a STUN/TURN server on the "internet" between.
// Plain MASQUERADE (cone): "ice-srflx", QUIC between the routers' public
// addresses, first authenticated byte after 0.60–0.61 s (10 runs; with TURN
// offered too, 0.61 s median, 1.1 s max). MASQUERADE --random-fully
// (symmetric) on both: "ice-relay" through pion/turn, 2.01–2.02 s (10 runs);
// through Debian's coturn 4.6.1 (lt-cred-mech, UDP only, on the server's
// address only), 2.01–2.02 s (10 runs), and wrong credentials fail with
// ErrTURN (401) in about 1 ms; without TURN, ICE fails within the
// caller's deadline. Set PEERSYNC_NAT_RUNS=n to repeat. One QUIC stream
// (PEERSYNC_NAT_BULK_MIB=128, one run each): 383 MiB/s on the punched
// path, 101 MiB/s through pion/turn and 93 MiB/s through coturn to a
// relayed acceptor (so through ice.Conn on the receiving side; all on one
// machine, so these compare the paths' costs, not links). Seen while testing:
// coturn stops relaying on an allocation after sending to an unroutable
// address fails with ENETUNREACH (a peer's private host candidate, from a
// server with no default route); a real server has a default route, and so
// does natlab's.
//
// One conformance suite (conformance_test.go) runs over a QUIC, a TCP and
// an ICE connection alike: addresses and peers, echo and half-close, 8 MiB
// each way, 100 concurrent streams each way, deadlines, Abort in either
// direction (blocked Reads and Writes end, both sides free the stream),
// CloseRead, CloseWithError's code and message at the peer, and the error
// types of each.
//
// TCP beyond that (tcp_test.go, tcpmux_test.go, tcp_linux_test.go,
// hostile_test.go; real sockets on loopback): refusal (ErrRefused for the
// dialer; a raw TLS client that writes at once gets the alert and nothing
// reaches Accept), a wrong expected DeviceID, CloseWithError towards a peer
// that stopped answering (returns at once; the linger is bounded),
// Transport.Close, Close during handshakes both ways, a broken TCP
// connection, the idle timeout through a proxy that goes silent, the
// shared port number, NoTCP, BBR read back with getsockopt on both ends,
// OpenStream blocking at 100 unaccepted streams, 80 idle sockets from 20
// addresses not keeping a real dialer out, and an allowed device flooding
// 150 streams × 16 MiB (the heap grows by about 40 MiB; a second device
// still connects). FuzzCloseMessage covers the control stream's parser.
package transport
