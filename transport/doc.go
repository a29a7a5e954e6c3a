// Package transport gives authenticated, encrypted connections between
// peersync devices, named by their crypto.DeviceID, over QUIC on one UDP
// socket per device.
//
// A device makes one Transport, dials the peers it knows and accepts the
// ones that call it:
//
//	tr, err := transport.New(transport.Config{
//		Identity:  id,            // *crypto.Identity
//		Authorize: table.Allowed, // func(crypto.DeviceID) error: nil = welcome
//	})                            // listens on :44996/udp
//	defer tr.Close()
//
//	conn, err := tr.Dial(ctx, "203.0.113.7:44996", peerID) // fails unless the remote proves it is peerID
//	s, err := conn.OpenStream(ctx)
//	err = transport.WriteFrame(s, request)
//	reply, err := transport.ReadFrame(s, 0)
//
//	// elsewhere, in a loop:
//	conn, err := tr.Accept(ctx) // only devices Authorize accepted
//	s, err := conn.AcceptStream(ctx)
//
// A Conn carries any number of concurrent Streams (bidirectional, reliable,
// ordered; up to 100 open per direction). Stream.Close ends our sending side
// only: the peer reads io.EOF and can still answer. Conn.Done is closed when
// the connection ends for any reason, Conn.Err says why. Connections stay up
// while idle (keepalives every IdleTimeout/3) and end after IdleTimeout
// without hearing from the peer.
//
// # Authentication
//
// Every connection is TLS 1.3 (inside QUIC) with mutual authentication; there
// is no unencrypted mode. Each side presents the self-signed Ed25519
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
// for QUIC's HANDSHAKE_DONE (which quic-go does not expose).
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
// Closing: Conn.Close and Transport.Close send application error code 0;
// Conn.CloseWithError sends the caller's code and message.
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
// Close tells every peer (CONNECTION_CLOSE), stops the accept loop, waits
// for every goroutine the Transport started, and is idempotent; afterwards
// every method returns ErrClosed.
//
// # Roadmap
//
// This is the direct-connection skeleton. To come, without changing the API
// above:
//
//   - NAT traversal with pion ICE: non-QUIC packets on the socket (STUN,
//     first byte 0x00–0x3F) will be read with quic.Transport.ReadNonQUICPacket
//     and fed to pion's UniversalUDPMux; once ICE selects a pair, Dial goes to
//     that remote address over this same socket, so QUIC uses the mapping ICE
//     punched. Relay (TURN) paths need their own handling.
//   - The rendezvous client and server (relaying ICE offers between DeviceIDs,
//     reporting observed addresses).
//   - TCP+TLS fallback on port 44996/tcp for networks that drop UDP, with the
//     same authentication and framing, and a stream multiplexer.
package transport
