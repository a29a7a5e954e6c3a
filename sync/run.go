package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/discovery"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
	"github.com/peersync/peersync/transport/rendezvous"
)

// Run syncs until ctx is done or Close is called: it listens on
// Config.Network.ListenAddr, dials the peers of the sync table, scans the folders
// every Config.ScanInterval, and exchanges bundles. It returns nil after
// Close, an error wrapping ctx.Err() when ctx ends, or the error that kept it
// from starting (e.g. the port is taken).
func (e *Engine) Run(ctx context.Context) error {
	if err := e.owner(); err != nil {
		return err
	}
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return ErrClosed
	case e.run != nil:
		e.mu.Unlock()
		return ErrRunning
	}
	listen := e.settingsLocked().ListenAddr
	tr, err := transport.New(transport.Config{
		Identity:   e.cfg.Identity,
		ListenAddr: listen,
		Authorize:  e.authorize,
		NoTCP:      e.cfg.Network.DisableTCP,
		Logger:     e.log,
	})
	if err != nil {
		e.mu.Unlock()
		return fmt.Errorf("sync: %w", err)
	}
	var rvServer *rendezvous.Server
	if e.cfg.NAT.ServeRendezvous {
		rvServer = rendezvous.NewServer(e.log)
	}
	dir, err := e.jobDir()
	if err != nil {
		e.mu.Unlock()
		_ = tr.Close()
		return err
	}
	jobs := newJobTable(dir, time.Now)
	jobs.hashed = e.bundleHashed()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	e.run = &runState{tr: tr, listen: listen, rvServer: rvServer, jobs: jobs, changed: make(chan struct{}, 1), cancel: cancel, done: done, ctx: runCtx}
	if e.settingsLocked().Discovery {
		if err := e.startDiscoveryLocked(); err != nil {
			e.run = nil
			e.mu.Unlock()
			cancel()
			jobs.Close()
			_ = tr.Close()
			return err
		}
	}
	disc := e.run.disc
	e.mu.Unlock()
	e.log.Info("running", "device", e.DeviceID(), "listen", tr.LocalAddr().String(), "discovery", disc != nil)

	e.wg.Go(func() { e.acceptLoop(runCtx, tr) })
	e.wg.Go(func() { e.dialLoop(runCtx, tr) })
	e.wg.Go(func() { e.tickLoop(runCtx) })

	<-runCtx.Done()
	closeErr := tr.Close() // ends every connection, unblocks Accept/Dial
	e.mu.Lock()
	conns := e.connsLocked()
	for _, p := range e.peers {
		p.conn = nil
	}
	e.mu.Unlock()
	for _, pc := range conns {
		_ = pc.c.Close()
	}
	e.mu.Lock()
	disc = e.run.disc // discovery may have been turned on or off meanwhile
	e.mu.Unlock()
	if disc != nil {
		_ = disc.Close() // ends its goroutines, which Wait waits for
	}
	e.wg.Wait()
	jobs.Close()
	e.mu.Lock()
	for _, f := range e.folders {
		for peer, in := range f.fetches {
			if in.part != nil {
				in.part.remove() // a restart asks afresh
			}
			delete(f.fetches, peer)
		}
	}
	e.mu.Unlock()
	if rvServer != nil {
		_ = rvServer.Close()
	}
	e.mu.Lock()
	e.run = nil
	closedByUs := e.closed
	e.mu.Unlock()
	close(done)
	if closeErr != nil && !errors.Is(closeErr, transport.ErrClosed) {
		e.log.Warn("closing transport", "err", closeErr)
	}
	if closedByUs || ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("sync: run: %w", ctx.Err())
}

// authorize is the transport's gate: devices in the sync table that are
// not paused, and the rendezvous server we chose. Any other device is
// recorded as pending and refused, except that, at most once per
// introEvery, it is let through to introduce itself (see introduce).
func (e *Engine) authorize(d crypto.DeviceID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.allowedLocked(d)
	if errors.Is(err, errNotInTable) && e.pendingLocked(d, true) {
		return nil
	}
	return err
}

// errNotInTable: the device is not in the sync table.
var errNotInTable = fmt.Errorf("%w (not in the sync table)", crypto.ErrUnknownPeer)

// allowedLocked is the gate without introductions: the rendezvous, and
// peers that are not paused. e.mu must be held.
func (e *Engine) allowedLocked(d crypto.DeviceID) error {
	if e.isRendezvousLocked(d) {
		return nil
	}
	p, ok := e.conf.peer(d)
	if !ok {
		return errNotInTable
	}
	if p.Paused {
		return fmt.Errorf("%w (paused)", crypto.ErrUnknownPeer)
	}
	return nil
}

// allowed is allowedLocked for callers without e.mu.
func (e *Engine) allowed(d crypto.DeviceID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.allowedLocked(d)
}

func (e *Engine) acceptLoop(ctx context.Context, tr *transport.Transport) {
	for {
		c, err := tr.Accept(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, transport.ErrClosed) {
				e.log.Warn("accept", "err", err)
			}
			return
		}
		e.addConn(ctx, c)
	}
}

func (e *Engine) dialLoop(ctx context.Context, tr *transport.Transport) {
	t := time.NewTicker(e.cfg.DialInterval)
	defer t.Stop()
	idleSince := map[*peerConn]time.Time{}
	lastNet := e.netState()
	for {
		e.closeIdle(idleSince)
		if now := e.netState(); now != lastNet {
			e.networkChanged(lastNet, now)
			lastNet = now
		}
		e.mu.Lock()
		var peers []PeerConfig
		for _, p := range e.conf.Peers {
			if e.neededLocked(p.Device) {
				peers = append(peers, p)
			}
		}
		e.mu.Unlock()
		if r := e.rendezvous(); r != nil {
			// First: the others may need it. Unpinned, it is dialed as
			// the zero DeviceID (whoever answers).
			e.dial(ctx, tr, r.Device)
		}
		for _, p := range peers {
			e.mu.Lock()
			// An unpinned rendezvous not yet reached may be this peer
			// (the hosted server is a mirror too): one dial at a time.
			r := e.rendezvousLocked()
			skip := e.isRendezvousLocked(p.Device) ||
				(r != nil && e.rvPeer.IsZero() && slices.Contains(p.Addrs, r.Addr))
			e.mu.Unlock()
			if !skip {
				e.dial(ctx, tr, p.Device)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.kick:
		}
	}
}

// kickDial makes the dial loop run now (e.g. the rendezvous just came up,
// so peers without addresses can be reached).
func (e *Engine) kickDial() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// onDiscovered dials peers of the sync table as soon as the LAN shows them.
func (e *Engine) onDiscovered(ctx context.Context, tr *transport.Transport, disc *discovery.Discoverer) {
	for p := range disc.Updates() {
		e.mu.Lock()
		needed := e.neededLocked(p.Device)
		e.mu.Unlock()
		if needed && e.allowed(p.Device) == nil {
			e.dial(ctx, tr, p.Device)
		}
	}
}

// dialAddrs returns the addresses to try for a peer: those the LAN
// announces first (discovery is a hint; the TLS handshake is the proof),
// then the configured ones.
func (e *Engine) dialAddrs(d crypto.DeviceID) []string {
	e.mu.Lock()
	p, _ := e.conf.peer(d)
	disc := e.run.discoverer()
	e.mu.Unlock()
	var addrs []string
	if disc != nil {
		for _, ap := range disc.Lookup(d) {
			addrs = append(addrs, ap.String())
		}
	}
	for _, a := range p.Addrs {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if r := e.rendezvous(); r != nil && r.Device == d && !slices.Contains(addrs, r.Addr) {
		addrs = append(addrs, r.Addr)
	}
	return addrs
}

// startRendezvous registers at the rendezvous server over pc and answers
// the ICE offers of devices in our sync table until the registration ends.
func (e *Engine) startRendezvous(ctx context.Context, pc *peerConn) error {
	s, err := pc.c.OpenStream(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(message{Type: msgRendezvous})
	if err != nil {
		return err
	}
	if err := transport.WriteFrame(s, b); err != nil {
		return err
	}
	rv, err := rendezvous.NewClient(ctx, s, e.log)
	if err != nil {
		s.Abort()
		return err
	}
	e.mu.Lock()
	tr := e.run.tr
	e.run.rv = rv
	e.mu.Unlock()
	e.log.Info("registered at the rendezvous", "server", pc.peer, "observed", rv.Observed())
	e.kickDial()
	e.mailboxTick(ctx) // what waits in the mailbox, at once
	e.wg.Go(func() {
		defer func() {
			_ = rv.Close()
			e.mu.Lock()
			if e.run.rv == rv {
				e.run.rv = nil
			}
			e.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-pc.c.Done():
				return
			case <-rv.Done():
				return
			case off := <-rv.Offers():
				if e.allowed(off.From) != nil {
					e.log.Info("ICE offer from a device not in the sync table ignored", "device", off.From)
					e.strangerOffer(off.From)
					continue
				}
				e.mu.Lock()
				p := e.peerLocked(off.From)
				busy := p.accepting
				p.accepting = true
				e.mu.Unlock()
				if busy {
					continue // one answer at a time per device
				}
				e.wg.Go(func() {
					defer func() {
						e.mu.Lock()
						p.accepting = false
						e.mu.Unlock()
					}()
					actx, cancel := context.WithTimeout(ctx, 15*time.Second)
					defer cancel()
					c, err := tr.AcceptICE(actx, off.From, off.Msg, rv.Signaling(), e.iceConfig())
					if err != nil {
						e.log.Debug("ICE accept failed", "peer", off.From, "err", err)
						return
					}
					e.addConn(ctx, c)
				})
			}
		}
	})
	return nil
}

// tickLoop rescans folders and periodically re-announces heads. (It does
// not watch config.json: configuration changes reach a running engine
// through its methods, e.g. from the CLI through the HTTP API.)
func (e *Engine) tickLoop(ctx context.Context) {
	scan := time.NewTicker(e.cfg.ScanInterval)
	defer scan.Stop()
	announce := time.NewTicker(e.cfg.AnnounceInterval)
	defer announce.Stop()
	flush := time.NewTicker(time.Second) // table.json within a second of a change
	defer flush.Stop()
	e.mu.Lock()
	changed := e.run.changed
	e.mu.Unlock()
	for {
		_, _ = e.Scan(ctx, "")
		e.mailboxTick(ctx) // deposits for offline peers, pickups (mailbox.go)
		e.fetchPending(ctx)
		e.startWatchers(ctx)
		e.flushTable()
		// Until the next scan tick, announce ticks only announce.
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-scan.C:
				waiting = false
			case <-changed:
				e.refetch(ctx)
			case <-flush.C:
				e.flushTable()
				e.flushPending()
				e.sweepJobs()
			case <-announce.C:
				e.mu.Lock()
				var ids []string
				for _, f := range e.conf.Folders {
					ids = append(ids, f.ID)
				}
				e.mu.Unlock()
				for _, id := range ids {
					e.announce(id)
				}
			}
		}
	}
}

// startWatchers runs a file watcher on every open folder that has none, so
// that a saved file is committed and announced within about 100 ms. A
// watcher that stops (the folder vanished, a guard tripped) is restarted by
// a later tick once the folder is healthy again.
func (e *Engine) startWatchers(ctx context.Context) {
	e.mu.Lock()
	var todo map[string]*gitstore.Store
	for id, f := range e.folders {
		if f.store == nil || f.stopped != nil || f.watching == f.store {
			continue
		}
		if fc, ok := e.conf.folder(id); !ok || fc.Paused {
			continue
		}
		if todo == nil {
			todo = map[string]*gitstore.Store{}
		}
		todo[id] = f.store
		f.watching = f.store
	}
	e.mu.Unlock()
	for id, st := range todo {
		e.wg.Go(func() {
			err := st.Watch(ctx, 0, func(changes []gitstore.Change) { e.localChanges(id, st, changes) })
			e.mu.Lock()
			if f := e.folderLocked(id); f.watching == st {
				f.watching = nil
			}
			e.mu.Unlock()
			if err != nil && ctx.Err() == nil && !errors.Is(err, gitstore.ErrClosed) {
				e.storeFailed(id, st, err)
			}
		})
	}
}

// ICE attempts back off per peer, from DialInterval doubling to 5 minutes,
// so a peer that is offline for days costs a few offers an hour.
const iceMaxBackoff = 5 * time.Minute

// iceDue reports whether an ICE attempt to d may start now.
func (e *Engine) iceDue(d crypto.DeviceID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.cfg.Now().Before(e.peerLocked(d).iceNext)
}

// iceResult records the outcome of an ICE attempt to d.
func (e *Engine) iceResult(d crypto.DeviceID, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.peerLocked(d)
	if ok {
		p.iceNext, p.iceWait = time.Time{}, 0
		return
	}
	w := min(max(2*p.iceWait, e.cfg.DialInterval), iceMaxBackoff)
	p.iceWait = w
	p.iceNext = e.cfg.Now().Add(w)
}
