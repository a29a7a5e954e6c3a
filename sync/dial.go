package sync

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
	"github.com/peersync/peersync/transport/rendezvous"
)

const (
	// raceStagger is the head start each dial attempt has over the next
	// one (RFC 8305's "Happy Eyeballs"): TCP+TLS to an address, then QUIC to
	// it, then the next address, ICE last. An attempt that fails at once
	// (connection refused) starts the next one at once.
	raceStagger = 150 * time.Millisecond
	// directDialTimeout bounds one direct attempt; iceDialTimeout bounds ICE
	// (gathering, checks, relay allocation and the QUIC handshake).
	directDialTimeout = 5 * time.Second
	iceDialTimeout    = 15 * time.Second
	// codeRaceLost closes the connections that authenticated after the
	// race's winner.
	codeRaceLost = transport.CloseRaceLost
)

// dialAttempt is one way of reaching a peer in a dial race.
type dialAttempt struct {
	name string // for logs: "tcp 192.0.2.1:44996", "quic …", "ice"
	ice  bool
	dial func(ctx context.Context) (*transport.Conn, error)
}

// dialAttempts lists, in order of preference, the ways to reach d: for
// each known address TCP+TLS first (kernel TCP with BBR holds its speed
// under packet loss, where QUIC's NewReno collapses; see transport's
// doc), then QUIC (networks that block TCP), and ICE through the
// rendezvous last (peers behind NATs, no known address). ICE is left out
// while its backoff runs. The rendezvous itself (isRV) is dialed QUIC
// first.
func (e *Engine) dialAttempts(tr *transport.Transport, d crypto.DeviceID, addrs []string, rv *rendezvous.Client, isRV bool) []dialAttempt {
	var out []dialAttempt
	for _, addr := range addrs {
		tcp := dialAttempt{name: "tcp " + addr, dial: func(ctx context.Context) (*transport.Conn, error) {
			return tr.DialTCP(ctx, addr, d)
		}}
		quic := dialAttempt{name: "quic " + addr, dial: func(ctx context.Context) (*transport.Conn, error) {
			return tr.Dial(ctx, addr, d)
		}}
		switch {
		case e.cfg.Network.DisableTCP || e.quicWinsRace():
			out = append(out, quic)
		case isRV:
			// The rendezvous: QUIC first, so the connection keeps our UDP
			// socket's NAT mapping alive, the one ICE's host and srflx
			// candidates use.
			out = append(out, quic, tcp)
		default:
			out = append(out, tcp, quic)
		}
	}
	if rv != nil && !isRV && e.iceDue(d) {
		out = append(out, dialAttempt{name: "ice", ice: true, dial: func(ctx context.Context) (*transport.Conn, error) {
			return tr.DialICE(ctx, d, rv.Signaling(), e.iceConfig())
		}})
	}
	return out
}

// dial connects to peer d in the background unless it is connected or
// being dialed, racing every way to reach it (see dialAttempts and race).
func (e *Engine) dial(ctx context.Context, tr *transport.Transport, d crypto.DeviceID) {
	addrs := e.dialAddrs(d)
	e.mu.Lock()
	rv := e.run.client()
	// isRV: d is the rendezvous (d is zero when it is unpinned: then
	// whichever device answers at its address is taken).
	rc := e.rendezvousLocked()
	isRV := rc != nil && rc.Device == d
	p := e.peerLocked(d)
	connected := p.conn != nil || (isRV && !e.rvPeer.IsZero() && e.connLocked(e.rvPeer) != nil)
	if pc := p.conn; pc != nil && !isRV && !p.dialing && e.upgradeDueLocked(p, pc, addrs) {
		p.dialing = true
		e.mu.Unlock()
		e.wg.Go(func() { e.upgrade(ctx, tr, d, pc, addrs) })
		return
	}
	if (len(addrs) == 0 && (rv == nil || isRV)) || connected || p.dialing {
		e.mu.Unlock()
		return
	}
	p.dialing = true
	e.mu.Unlock()
	e.wg.Go(func() {
		defer func() {
			e.mu.Lock()
			p.dialing = false
			e.mu.Unlock()
		}()
		attempts := e.dialAttempts(tr, d, addrs, rv, isRV)
		if len(attempts) == 0 {
			return
		}
		c, err := race(ctx, &e.wg, attempts, e.stagger(), func(a dialAttempt, err error) {
			if a.ice {
				e.iceResult(d, err == nil)
			}
			if err != nil && ctx.Err() == nil {
				e.log.Debug("dial attempt failed", "peer", d, "via", a.name, "err", err)
			}
		})
		if err != nil {
			if ctx.Err() == nil {
				e.log.Debug("dial failed", "peer", d, "err", err)
			}
			return
		}
		if isRV && d.IsZero() {
			e.mu.Lock()
			was := e.rvPeer
			e.rvPeer = c.Peer()
			e.mu.Unlock()
			if was != c.Peer() {
				level := slog.LevelInfo
				if !was.IsZero() {
					level = slog.LevelWarn // its key changed: a new server, or someone else at its address
				}
				e.log.Log(ctx, level, "unpinned rendezvous server", "device", c.Peer(), "addr", c.RemoteAddr().String(), "previous", was)
			}
		}
		e.addConn(ctx, c)
	})
}

// rendezvousDevice is the DeviceID of a pinned rendezvous; zero when r is
// nil or unpinned.
func rendezvousDevice(r *RendezvousConfig) crypto.DeviceID {
	if r == nil {
		return crypto.DeviceID{}
	}
	return r.Device
}

// isRendezvousLocked reports whether d is our rendezvous server (pinned, or
// learned from the connection to its address). e.mu must be held.
func (e *Engine) isRendezvousLocked(d crypto.DeviceID) bool {
	return e.rendezvousLocked() != nil && !d.IsZero() && d == e.rvPeer
}

// race runs the attempts with a head start of stagger each (an attempt
// also starts as soon as every started one has failed) and returns the
// first connection that authenticates; the others are cancelled, and any
// that still connect are closed. done is called for every attempt that
// ended on its own (not cancelled because another won), with its error.
// The attempts, and the closing of latecomers after race returns, run in
// wg.
func race(ctx context.Context, wg *gosync.WaitGroup, attempts []dialAttempt, stagger time.Duration, done func(dialAttempt, error)) (*transport.Conn, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		a   dialAttempt
		c   *transport.Conn
		err error
	}
	results := make(chan result, len(attempts))
	start := func(a dialAttempt) {
		timeout := directDialTimeout
		if a.ice {
			timeout = iceDialTimeout
		}
		wg.Go(func() {
			actx, acancel := context.WithTimeout(rctx, timeout)
			defer acancel()
			c, err := a.dial(actx)
			results <- result{a, c, err} // buffered: never blocks
		})
	}
	next, running := 0, 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	var errs []error
	var won *transport.Conn
loop:
	for next < len(attempts) || running > 0 {
		select {
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
			break loop
		case <-timer.C:
			if next < len(attempts) {
				start(attempts[next])
				next++
				running++
				timer.Reset(stagger)
			}
		case r := <-results:
			running--
			if r.err == nil {
				won = r.c
				if done != nil {
					done(r.a, nil)
				}
				break loop
			}
			errs = append(errs, fmt.Errorf("%s: %w", r.a.name, r.err))
			if done != nil && rctx.Err() == nil {
				done(r.a, r.err)
			}
			if running == 0 && next < len(attempts) {
				timer.Reset(0) // nothing left in flight: no need to wait
			}
		}
	}
	cancel()
	if running > 0 {
		// Close latecomers that authenticated anyway; the peer never sees a
		// control stream on them, so it never registers them.
		wg.Go(func() {
			for range running {
				if r := <-results; r.err == nil {
					_ = r.c.CloseWithError(codeRaceLost, "another path won")
				}
			}
		})
	}
	if won != nil {
		return won, nil
	}
	return nil, joinErrs(errs)
}

// joinErrs is errors.Join with the attempts in order, one per line.
func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return fmt.Errorf("sync: dial: no way to reach the peer")
	}
	msg := "sync: dial:"
	for _, err := range errs {
		msg += "\n\t" + err.Error()
	}
	return &dialError{msg: msg, errs: errs}
}

// dialError is every failed attempt of a dial race.
type dialError struct {
	msg  string
	errs []error
}

func (e *dialError) Error() string   { return e.msg }
func (e *dialError) Unwrap() []error { return e.errs }

// needed reports whether this device has a reason to be connected to d: a
// folder shared with it (neither paused), d is our rendezvous, or d is
// registered at ours.
// e.mu must be held.
func (e *Engine) neededLocked(d crypto.DeviceID) bool {
	if e.isRendezvousLocked(d) {
		return true
	}
	if rs := e.run.server(); rs != nil && rs.Registered(d) {
		return true
	}
	p, ok := e.conf.peer(d)
	if !ok {
		return false
	}
	for _, id := range p.Folders {
		if _, flows := e.conf.flows(d, id); flows {
			return true
		}
	}
	return false
}

// closeIdle closes the connections that have not been needed (see
// neededLocked) for Config.IdleTimeout; idleSince remembers since when
// each connection has not been needed.
func (e *Engine) closeIdle(idleSince map[*peerConn]time.Time) {
	now := time.Now()
	var idle []*peerConn
	e.mu.Lock()
	live := map[*peerConn]bool{}
	for d, pc := range e.connsLocked() {
		live[pc] = true
		if e.neededLocked(d) {
			delete(idleSince, pc)
			continue
		}
		since, ok := idleSince[pc]
		if !ok {
			idleSince[pc] = now
		} else if now.Sub(since) >= e.cfg.IdleTimeout {
			idle = append(idle, pc)
		}
	}
	e.mu.Unlock()
	for pc := range idleSince {
		if !live[pc] {
			delete(idleSince, pc)
		}
	}
	for _, pc := range idle {
		e.log.Info("closing idle connection", "peer", pc.peer, "idle", e.cfg.IdleTimeout)
		delete(idleSince, pc)
		_ = pc.c.CloseWithError(codeIdle, "idle")
	}
}

// codeIdle closes a connection that carried nothing needed for a while.
const codeIdle = transport.CloseIdle

// interfaceAddrs lists this machine's interface addresses, sorted, as one
// string: when it changes, the network changed (a laptop moved to another
// Wi-Fi, a VPN came up). "" when they cannot be read.
func interfaceAddrs() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// networkChanged reacts to a change of this machine's addresses: every
// connection may now run over a path that is gone (QUIC would only notice
// after its idle timeout, TCP later still), so all are closed and redialed
// at once (the dial loop runs right after). A connection that still works
// costs one handshake to replace.
func (e *Engine) networkChanged(before, after string) {
	e.mu.Lock()
	var pcs []*peerConn
	for d, pc := range e.connsLocked() {
		pcs = append(pcs, pc)
		e.peerLocked(d).conn = nil // so the dial loop redials at once
	}
	e.mu.Unlock()
	e.log.Info("network changed; reconnecting", "before", before, "after", after, "connections", len(pcs))
	for _, pc := range pcs {
		_ = pc.c.CloseWithError(codeNetworkChanged, "network changed")
	}
}

// codeNetworkChanged closes connections when this machine's addresses
// changed.
const codeNetworkChanged = transport.CloseNetworkChanged

const (
	// upgradeFirst and upgradeMax bound the backoff between attempts to
	// move a QUIC connection to TCP.
	upgradeFirst = 10 * time.Second
	upgradeMax   = 5 * time.Minute
)

// upgradeDueLocked reports whether to try moving the connection pc to d
// onto TCP now: it is not TCP, d has known addresses, TCP is enabled, and
// the backoff allows. The race prefers TCP with a head start only, which a
// long round trip can overtake (QUIC's handshake takes one round trip
// fewer), and a simultaneous dial may keep a QUIC connection; but under
// loss TCP with BBR moves tens of times more data. e.mu must be held.
func (e *Engine) upgradeDueLocked(p *peer, pc *peerConn, addrs []string) bool {
	if e.cfg.Network.DisableTCP || len(addrs) == 0 || pc.c.Path() == transport.PathTCP {
		return false
	}
	if p.upgradeNext.IsZero() {
		p.upgradeNext = time.Now() // first: at once
		return true
	}
	return !time.Now().Before(p.upgradeNext)
}

// upgrade dials d over TCP alone and, if that authenticates, makes it the
// connection to d (the peer lets a newer connection replace an older one,
// and prefers TCP over QUIC between connections dialed both ways); the old
// QUIC connection is then closed, and what was in flight on it is asked
// for again on the new one.
func (e *Engine) upgrade(ctx context.Context, tr *transport.Transport, d crypto.DeviceID, pc *peerConn, addrs []string) {
	defer func() {
		e.mu.Lock()
		e.peerLocked(d).dialing = false
		e.mu.Unlock()
	}()
	var c *transport.Conn
	var err error
	for _, addr := range addrs {
		dctx, cancel := context.WithTimeout(ctx, directDialTimeout)
		c, err = tr.DialTCP(dctx, addr, d)
		cancel()
		if err == nil {
			break
		}
	}
	e.mu.Lock()
	p := e.peerLocked(d)
	wait := p.upgradeWait
	if err != nil {
		wait = min(max(2*wait, upgradeFirst), upgradeMax)
	} else {
		wait = 0
	}
	p.upgradeWait = wait
	p.upgradeNext = time.Now().Add(max(wait, upgradeFirst))
	still := p.conn == pc
	e.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			e.log.Debug("move to TCP failed; staying on "+pathName(pc.c), "peer", d, "err", err)
		}
		return
	}
	if !still {
		_ = c.CloseWithError(codeRaceLost, "connection changed meanwhile")
		return
	}
	e.log.Info("moving connection to TCP", "peer", d, "from", pathName(pc.c))
	e.addConn(ctx, c)
}
