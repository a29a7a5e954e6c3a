// Package rendezvous relays ICE signaling between devices that each hold an
// authenticated transport.Conn to a hosted server, and tells each device
// the address the server sees it at, so that two devices behind NATs can
// find each other and then connect directly with transport.DialICE.
//
// It runs on a Stream of an ordinary Conn: the engine opens the stream,
// says what it is for in its own protocol, then hands it to NewClient
// (device side) or Server.Serve (server side):
//
//	// server (examples/server, with the sync engine's ServeRendezvous):
//	srv := rendezvous.NewServer(log)
//	err := srv.Serve(ctx, conn, stream) // until the stream or ctx ends
//
//	// device:
//	c, err := rendezvous.NewClient(ctx, stream, log)
//	conn, err := tr.DialICE(ctx, peer, c.Signaling(), iceCfg)
//	// and, in a loop:
//	o := <-c.Offers()
//	conn, err := tr.AcceptICE(ctx, o.From, o.Msg, c.Signaling(), iceCfg)
//
// # Trust
//
// The server trusts nothing it relays: the sender of every message is the
// authenticated peer of the connection it arrived on (a device cannot
// claim to be another), and the ICE and TLS handshakes that follow are end
// to end between the devices, so the server can neither impersonate anyone
// nor read what they exchange. A device answers only offers from devices
// it allows (transport.Config.Authorize refuses the others in the
// handshake). The server limits each device to 20 messages a second
// (bursts of 40) and messages to 2 × transport.MaxSignalSize + 1 KiB.
//
// # Wire format
//
// Every message is a transport frame (4-byte big-endian length, then the
// payload; see transport.WriteFrame) holding one JSON object:
//
//	{
//	  "op": "send",        // register, registered, send, recv, error
//	  "to": "DEVICEID",    // send, error: the device addressed
//	  "from": "DEVICEID",  // recv: the authenticated sender
//	  "observed": "…",     // registered: the device's address as the server sees it
//	  "msg": "…",          // send, recv: an ICE signaling message, base64
//	  "error": "…"         // error: why a send to "to" failed
//	}
//
// The device sends "register" first and waits (10 s at most) for
// "registered"; then it sends "send" for each signaling message and reads
// "recv" (a message from another device) and "error" (a send that could
// not be delivered: unknown or unregistered device, rate limited). The
// client hands offers to Offers and each answer to the Signaling whose
// offer had the same session; it never sends a malformed signaling
// message (transport.SignalSession checks it). A device connected twice
// keeps only its newest registration.
package rendezvous
