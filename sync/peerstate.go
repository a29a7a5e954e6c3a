package sync

import (
	"time"

	"github.com/peersync/peersync/crypto"
)

// peer is the engine's state of one device it talks to: its connection,
// and the dialing and backoff state around it. Its fields are guarded by
// Engine.mu.
type peer struct {
	conn      *peerConn // the live connection; nil when disconnected
	dialing   bool      // a dial race or a move to TCP is under way
	accepting bool      // we are answering its ICE offer
	// iceNext and iceWait: ICE backoff, no attempt before iceNext.
	iceNext time.Time
	iceWait time.Duration
	// upgradeNext and upgradeWait: backoff of the attempts to move a QUIC
	// connection to TCP (see upgrade); upgradeNext is zero before the
	// first.
	upgradeNext time.Time
	upgradeWait time.Duration
	// sched is its sync window, SyncNow grants, limiters and transfers
	// (schedule_engine.go).
	sched schedPeer
}

// peerLocked returns the state of device d, creating it. e.mu must be
// held.
func (e *Engine) peerLocked(d crypto.DeviceID) *peer {
	p := e.peers[d]
	if p == nil {
		p = &peer{}
		e.peers[d] = p
	}
	return p
}

// connLocked returns the live connection to d, or nil. e.mu must be held.
func (e *Engine) connLocked(d crypto.DeviceID) *peerConn {
	if p := e.peers[d]; p != nil {
		return p.conn
	}
	return nil
}

// connsLocked returns the live connections by device. e.mu must be held.
func (e *Engine) connsLocked() map[crypto.DeviceID]*peerConn {
	m := map[crypto.DeviceID]*peerConn{}
	for d, p := range e.peers {
		if p.conn != nil {
			m[d] = p.conn
		}
	}
	return m
}
