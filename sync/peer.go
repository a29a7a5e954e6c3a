package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

// streamTimeout bounds every control exchange (not bundle bodies, which
// may be large; those are bounded by the connection's idle timeout).
const streamTimeout = 15 * time.Second

// peerConn is the live connection to one peer.
type peerConn struct {
	c    *transport.Conn
	peer crypto.DeviceID

	wmu  gosync.Mutex      // serializes writes to ctrl
	ctrl *transport.Stream // our control stream; nil until opened

	ctrlIn atomic.Bool // the peer opened its control stream (only one is allowed)

	// heads are the last heads the peer announced, by folder, including
	// folders that do not flow (not shared, paused): when they start to,
	// the engine fetches at once (see refetch). Guarded by Engine.mu; at
	// most maxHeads folders.
	heads map[string]gitstore.Hash
}

// maxHeads bounds the folders remembered per connection.
const maxHeads = 1024

// keeps reports whether, of two connections in opposite directions between
// the same two devices, the new one c is the one both sides keep instead
// of old: a TCP connection over a QUIC one (see the package doc, Dialing),
// else the one dialed by the smaller DeviceID. Both sides see the same two
// connections, so they decide alike.
func keeps(c, old *transport.Conn, self crypto.DeviceID) bool {
	if tc, to := c.Path() == transport.PathTCP, old.Path() == transport.PathTCP; tc != to {
		return tc
	}
	dialer := c.Peer()
	if c.Outgoing() {
		dialer = self
	}
	other := self
	if dialer == self {
		other = c.Peer()
	}
	return string(dialer[:]) < string(other[:])
}

// addConn takes a new authenticated connection. One we dialed is
// registered at once; an incoming one only when the dialer opens its
// control stream on it (within streamTimeout): a dialer racing several
// paths closes the losers without opening one, so they never replace the
// winner here.
func (e *Engine) addConn(ctx context.Context, c *transport.Conn) {
	if c.Outgoing() {
		e.register(ctx, c, nil)
		return
	}
	e.wg.Go(func() {
		sctx, cancel := context.WithTimeout(ctx, streamTimeout)
		s, err := c.AcceptStream(sctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				e.log.Debug("incoming connection opened no stream", "peer", c.Peer(), "path", c.Path(), "err", err)
			}
			_ = c.CloseWithError(transport.CloseProtocol, "no control stream")
			return
		}
		e.register(ctx, c, s)
	})
}

// register makes c the connection to its peer (see keeps for duplicates)
// and serves it; first, if not nil, is the peer's first stream, already
// accepted.
func (e *Engine) register(ctx context.Context, c *transport.Conn, first *transport.Stream) {
	pc := &peerConn{c: c, peer: c.Peer()}
	e.mu.Lock()
	if e.run == nil {
		e.mu.Unlock()
		_ = c.Close()
		if first != nil {
			first.Abort()
		}
		return
	}
	if _, known := e.conf.peer(pc.peer); !known && !c.Outgoing() && !e.isRendezvousLocked(pc.peer) {
		// Let through the handshake only to introduce itself.
		e.mu.Unlock()
		e.introduce(c, first)
		return
	}
	p := e.peerLocked(pc.peer)
	old := p.conn
	// Two connections in opposite directions: both sides keep the same
	// one (see keeps). In the same direction the newer one wins: the peer
	// reconnected (a restart, a new network) and the old connection is dead
	// but not yet timed out, or it moved from QUIC to TCP (see upgrade).
	if old != nil && old.c.Outgoing() != c.Outgoing() {
		if !keeps(c, old.c, e.DeviceID()) {
			e.mu.Unlock()
			_ = c.CloseWithError(transport.CloseDuplicate, "duplicate connection")
			return
		}
		_ = old.c.CloseWithError(transport.CloseDuplicate, "duplicate connection")
	} else if old != nil {
		_ = old.c.CloseWithError(transport.CloseDuplicate, "replaced by a newer connection")
	}
	p.conn = pc
	e.mu.Unlock()

	path := pathName(c)
	e.log.Info("peer connected", "peer", pc.peer, "addr", c.RemoteAddr().String(), "path", path, "outgoing", c.Outgoing())
	e.emit(Event{Kind: EventPeerConnected, Peer: pc.peer, Addr: c.RemoteAddr().String(), Path: path})

	e.wg.Go(func() { e.serveConn(ctx, pc, first) })
	e.wg.Go(func() {
		if err := e.openControl(ctx, pc); err != nil && ctx.Err() == nil {
			e.log.Debug("control stream", "peer", pc.peer, "err", err)
			_ = c.CloseWithError(transport.CloseProtocol, "control stream failed")
			return
		}
		e.mu.Lock()
		isRV := e.isRendezvousLocked(pc.peer)
		e.mu.Unlock()
		if isRV {
			if err := e.startRendezvous(ctx, pc); err != nil && ctx.Err() == nil {
				// Drop the connection: the dial loop reconnects and registers again.
				e.log.Warn("rendezvous registration failed; reconnecting", "server", pc.peer, "err", err)
				_ = c.CloseWithError(transport.CloseProtocol, "rendezvous registration failed")
			}
		}
	})
	e.wg.Go(func() {
		select {
		case <-c.Done():
		case <-ctx.Done():
		}
		e.mu.Lock()
		if p.conn == pc {
			p.conn = nil
		}
		e.mu.Unlock()
		e.emit(Event{Kind: EventPeerDisconnected, Peer: pc.peer, Err: c.Err()})
	})
}

// openControl opens our control stream and announces every shared head.
func (e *Engine) openControl(ctx context.Context, pc *peerConn) error {
	s, err := pc.c.OpenStream(ctx)
	if err != nil {
		return err
	}
	pc.wmu.Lock()
	pc.ctrl = s
	err = e.writeMsgLocked(pc, message{Type: msgControl, Proto: protocolVersion, Name: e.Name(), Port: e.listenPort()})
	pc.wmu.Unlock()
	if err != nil {
		return err
	}
	e.mu.Lock()
	var ids []string
	for _, f := range e.conf.Folders {
		if e.conf.sendsTo(pc.peer, f.ID) {
			ids = append(ids, f.ID)
		}
	}
	e.mu.Unlock()
	for _, id := range ids {
		e.sendHead(pc, id)
	}
	return nil
}

func (e *Engine) writeMsgLocked(pc *peerConn, m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_ = pc.ctrl.SetWriteDeadline(time.Now().Add(streamTimeout))
	return transport.WriteFrame(pc.ctrl, b)
}

// sendHead tells pc our head of folder id.
func (e *Engine) sendHead(pc *peerConn, id string) {
	st, err := e.store(id)
	if err != nil {
		return
	}
	head, err := st.Head()
	if err != nil {
		return
	}
	e.mu.Lock()
	fc, _ := e.conf.folder(id)
	e.mu.Unlock()
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	if pc.ctrl == nil {
		return // openControl will announce once the stream is up
	}
	if err := e.writeMsgLocked(pc, message{Type: msgHead, Folder: id, Label: fc.Label, Head: head}); err != nil {
		// A failed or timed-out write may have left half a frame: the
		// stream is unusable, so drop the connection and let the dial loop
		// make a new one.
		e.log.Info("control stream broken; reconnecting", "peer", pc.peer, "folder", id, "err", err)
		_ = pc.c.CloseWithError(transport.CloseProtocol, "control stream write failed")
	}
}

// announce sends our head of folder id to every connected peer we send it
// to (shared, not receive-only, neither paused).
func (e *Engine) announce(id string) {
	e.mu.Lock()
	var pcs []*peerConn
	for d, pc := range e.connsLocked() {
		if e.conf.sendsTo(d, id) {
			pcs = append(pcs, pc)
		}
	}
	e.mu.Unlock()
	for _, pc := range pcs {
		e.sendHead(pc, id)
	}
}

// serveConn accepts the peer's streams until the connection ends.
func (e *Engine) serveConn(ctx context.Context, pc *peerConn, first *transport.Stream) {
	for {
		s := first
		first = nil
		if s == nil {
			var err error
			if s, err = pc.c.AcceptStream(ctx); err != nil {
				return
			}
		}
		e.wg.Go(func() {
			if err := e.serveStream(ctx, pc, s); err != nil && ctx.Err() == nil {
				e.log.Info("peer stream", "peer", pc.peer, "err", err)
				s.Abort()
			}
		})
	}
}

func (e *Engine) serveStream(ctx context.Context, pc *peerConn, s *transport.Stream) error {
	_ = s.SetReadDeadline(time.Now().Add(streamTimeout))
	first, err := readMsg(s)
	if err != nil {
		return err
	}
	switch first.Type {
	case msgControl:
		if !pc.ctrlIn.CompareAndSwap(false, true) {
			return fmt.Errorf("sync: %s opened a second control stream", pc.peer.Short())
		}
		_ = s.SetReadDeadline(time.Time{})
		for {
			m, err := readMsg(s)
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if m.Type != msgHead {
				return fmt.Errorf("sync: unexpected %q on control stream", m.Type)
			}
			e.onHead(ctx, pc, m)
		}
	case msgWant:
		// The asker sends nothing after its want: whatever else comes is
		// discarded, never buffered.
		_ = s.CloseRead()
		if err := e.serveWant(ctx, pc, s, first); err != nil {
			return err
		}
		_ = s.Close()     // every answer ends the stream (a second Close is harmless)
		_ = s.CloseRead() // on TCP, with our side closed, this resets the stream
		return nil
	case msgRendezvous:
		e.mu.Lock()
		rs := e.run.server()
		e.mu.Unlock()
		if rs == nil {
			return fmt.Errorf("sync: %s asked for a rendezvous; this device is not one", pc.peer.Short())
		}
		_ = s.SetReadDeadline(time.Time{})
		return rs.Serve(ctx, pc.c, s)
	case msgMailbox:
		if err := e.serveMailbox(pc, s); err != nil {
			return err
		}
		_ = s.Close()
		_ = s.CloseRead() // a refused deposit's rest is not read
		return nil
	default:
		return fmt.Errorf("sync: stream cannot start with %q", first.Type)
	}
}

func readMsg(r io.Reader) (message, error) {
	b, err := transport.ReadFrame(r, maxMessage)
	if err != nil {
		return message{}, err
	}
	return decodeMessage(b)
}

// onHead handles a peer's announcement of its head of a folder.
func (e *Engine) onHead(ctx context.Context, pc *peerConn, m message) {
	e.mu.Lock()
	if _, ok := pc.heads[m.Folder]; ok || len(pc.heads) < maxHeads {
		if pc.heads == nil {
			pc.heads = map[string]gitstore.Hash{}
		}
		pc.heads[m.Folder] = m.Head
	}
	dir, flows := e.conf.flows(pc.peer, m.Folder)
	e.mu.Unlock()
	if !flows {
		e.offered(pc.peer, m)
		return
	}
	if m.Head.IsZero() {
		return // the peer has nothing yet; it will ask us when it sees our head
	}
	if dir.receives() && e.folderGone(m.Folder) {
		// Its disk is away: nothing is fetched into it. fetchPending asks
		// once it is back.
		e.mu.Lock()
		in := e.inboundLocked(jobKey{pc.peer, m.Folder})
		in.pc, in.pending = pc, true
		e.mu.Unlock()
		return
	}
	st, err := e.store(m.Folder)
	if err != nil {
		return
	}
	ok, err := st.HasCommit(m.Head)
	if err != nil {
		return
	}
	fetch := !ok && dir.receives()
	if h := e.cfg.test; h != nil && h.heard != nil {
		h.heard(pc.peer, m.Folder, m.Head, fetch)
	}
	switch {
	case ok:
		e.setKnown(pc.peer, m.Folder, m.Head)
		if dir.receives() {
			e.integrateHeld(ctx, pc, m.Folder, m.Head)
		}
	case !fetch:
		e.log.Debug("not fetching: we only send this folder to the peer", "peer", pc.peer, "folder", m.Folder)
	default:
		e.fetch(ctx, pc, m.Folder)
	}
}

// refetch, run by the tick loop after a configuration change, goes
// through the heads the connected peers last announced again,
// so that a folder that starts to flow (resumed, newly shared, a direction
// changed) fetches what the peer has at once rather than at its next
// announcement.
func (e *Engine) refetch(ctx context.Context) {
	e.mu.Lock()
	type todo struct {
		pc *peerConn
		m  message
	}
	var list []todo
	for _, pc := range e.connsLocked() {
		for id, h := range pc.heads {
			if e.conf.receivesFrom(pc.peer, id) {
				list = append(list, todo{pc, message{Type: msgHead, Folder: id, Head: h}})
			}
		}
	}
	e.mu.Unlock()
	for _, t := range list {
		e.onHead(ctx, t.pc, t.m)
	}
}

// announceLocked announces folder id's head from a goroutine of the
// running engine, for callers that may not block: a long scan that
// published part of its commits calls it while it holds the folder's
// store (gitstore's ScanProgress.Published), so that peers fetch those
// while the scan goes on. Nothing happens while the engine does not run
// (the end of the scan announces). e.mu must be held.
func (e *Engine) announceLocked(id string) {
	if e.run == nil || e.run.ctx.Err() != nil {
		return
	}
	e.wg.Go(func() { e.announce(id) })
}
