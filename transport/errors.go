package transport

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/quic-go/quic-go"

	"github.com/peersync/peersync/crypto"
)

// CloseCode says why a connection was closed. It travels to the peer with
// Conn.CloseWithError (as the QUIC application error code, or in the TCP
// path's close message) and comes back in CloseError.Code. The named codes
// below are every code peersync sends, this package's and the sync
// engine's, in one table so that no number means two things.
type CloseCode uint64

// Close codes. Codes 0–2 are sent by this package itself; the others by its
// callers (the sync engine), named here so the table stays in one place.
const (
	// CloseNormal: Conn.Close, Transport.Close.
	CloseNormal CloseCode = 0
	// CloseProtocol: the peer broke the protocol (a malformed welcome, a
	// missing or broken control stream, a failed registration).
	CloseProtocol CloseCode = 1
	// ClosePathFailed: ICE declared the path failed (no consent answer).
	ClosePathFailed CloseCode = 2
	// CloseNotAllowed: the peer is no longer an allowed device.
	CloseNotAllowed CloseCode = 3
	// CloseDuplicate: another connection to the same peer is kept instead.
	CloseDuplicate CloseCode = 4
	// CloseBundleRefused: the peer sent a bundle we refused.
	CloseBundleRefused CloseCode = 5
	// CloseRaceLost: another path to the same peer authenticated first.
	CloseRaceLost CloseCode = 6
	// CloseIdle: the connection carried nothing needed for a while.
	CloseIdle CloseCode = 7
	// CloseNetworkChanged: this machine's addresses changed.
	CloseNetworkChanged CloseCode = 8
)

var closeCodeNames = map[CloseCode]string{
	CloseNormal:         "normal",
	CloseProtocol:       "protocol error",
	ClosePathFailed:     "path failed",
	CloseNotAllowed:     "not an allowed device",
	CloseDuplicate:      "duplicate connection",
	CloseBundleRefused:  "bundle refused",
	CloseRaceLost:       "race lost",
	CloseIdle:           "idle",
	CloseNetworkChanged: "network changed",
}

// String returns the code's name, or its number for a code not in the
// table.
func (c CloseCode) String() string {
	if s, ok := closeCodeNames[c]; ok {
		return s
	}
	return "code " + strconv.FormatUint(uint64(c), 10)
}

// CloseError is Conn.Err after a CloseWithError (or Close): ours, or the
// peer's (Remote). It is the same on every path. It wraps net.ErrClosed.
type CloseError struct {
	Code    CloseCode
	Message string // at most 1024 bytes on the TCP path (longer ones are cut)
	Remote  bool   // the peer closed the connection
}

func (e *CloseError) Error() string {
	who := "we closed the connection"
	if e.Remote {
		who = "the peer closed the connection"
	}
	if e.Message == "" {
		return fmt.Sprintf("transport: %s (%d, %s)", who, uint64(e.Code), e.Code)
	}
	return fmt.Sprintf("transport: %s (%d, %s): %s", who, uint64(e.Code), e.Code, e.Message)
}

// Unwrap returns net.ErrClosed.
func (e *CloseError) Unwrap() error { return net.ErrClosed }

// ErrIdleTimeout is wrapped by Conn.Err when nothing was heard from the
// peer for Config.IdleTimeout. The error also wraps net.ErrClosed.
var ErrIdleTimeout = errors.New("transport: idle timeout: nothing heard from the peer")

// StreamResetError is the error of a Stream's Read or Write after the
// stream was reset: by Abort or CloseRead on our side, or by the peer's
// (Remote). It is the same on every path.
type StreamResetError struct {
	Code   uint64 // 0 for Abort and CloseRead
	Remote bool   // the peer reset the stream
}

func (e *StreamResetError) Error() string {
	if e.Remote {
		return fmt.Sprintf("transport: stream reset by the peer (code %d)", e.Code)
	}
	return fmt.Sprintf("transport: stream reset by us (code %d)", e.Code)
}

// WrongPeerError is the error (inside a *crypto.PeerError) of a dial that
// reached another device than the one dialed. It wraps
// crypto.ErrUnknownPeer.
type WrongPeerError struct {
	Dialed, Remote crypto.DeviceID
}

func (e *WrongPeerError) Error() string {
	return fmt.Sprintf("transport: dialed %s, but the remote is %s", e.Dialed, e.Remote)
}

// Unwrap returns crypto.ErrUnknownPeer.
func (e *WrongPeerError) Unwrap() error { return crypto.ErrUnknownPeer }

// idleErr is the error of a connection that timed out.
func idleErr() error { return fmt.Errorf("%w (%w)", ErrIdleTimeout, net.ErrClosed) }

// lostErr is the error of a connection that ended without a close: broken,
// reset, or ended by a protocol error.
func lostErr(detail error) error {
	return fmt.Errorf("transport: connection lost: %w (%v)", net.ErrClosed, detail)
}

// fromQUIC turns quic-go's errors into this package's: a caller never
// needs quic-go to read one. Errors of other kinds pass unchanged.
func fromQUIC(err error) error {
	if err == nil {
		return nil
	}
	var ae *quic.ApplicationError
	var se *quic.StreamError
	var it *quic.IdleTimeoutError
	var ht *quic.HandshakeTimeoutError
	var te *quic.TransportError
	var sr *quic.StatelessResetError
	switch {
	case errors.As(err, &se):
		return &StreamResetError{Code: uint64(se.ErrorCode), Remote: se.Remote}
	case errors.As(err, &ae):
		return &CloseError{Code: CloseCode(ae.ErrorCode), Message: ae.ErrorMessage, Remote: ae.Remote}
	case errors.As(err, &it), errors.As(err, &ht):
		return idleErr()
	case errors.As(err, &te), errors.As(err, &sr):
		return lostErr(err)
	}
	return err
}
