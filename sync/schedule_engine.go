package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/peersync/peersync/crypto"
)

// ErrNotRunning: the method needs Run to be active (e.g. SyncNow).
var ErrNotRunning = errors.New("sync: engine not running")

// syncNowKeep is how long a SyncNow grant lasts at most: the exchange it
// allows normally ends it much sooner (see SyncNow).
const syncNowKeep = 10 * time.Minute

// schedState is what a running engine keeps for schedules, bandwidth
// limits and progress beside the per-peer state (peer.sched) and the
// per-folder one (folder.scan): the global limiters. It hangs off the
// runState (created on first use) and is guarded by Engine.mu.
type schedState struct {
	global  links
	traffic Traffic // bundle bytes moved since Run started (see Engine.Traffic)
}

// schedPeer is the schedule, limit and progress state of one peer; its
// zero value is ready. Guarded by Engine.mu.
type schedPeer struct {
	closed bool // the window's state at the last check (schedTick)
	// grants are SyncNow's exceptions to a closed window, by folder ID:
	// a bundle of that folder may go either way until the time given.
	grants    map[string]time.Time
	lim       links
	transfers map[transferKey]*transfer
}

// schedLocked returns the running engine's schedState, creating it; nil
// when not running. e.mu must be held.
func (e *Engine) schedLocked() *schedState {
	if e.run == nil {
		return nil
	}
	if e.run.sched == nil {
		e.run.sched = &schedState{}
	}
	return e.run.sched
}

// schedPeerLocked returns the schedule state of peer d, creating it. e.mu
// must be held.
func (e *Engine) schedPeerLocked(d crypto.DeviceID) *schedPeer {
	sp := &e.peerLocked(d).sched
	if sp.grants == nil {
		sp.grants, sp.transfers = map[string]time.Time{}, map[transferKey]*transfer{}
	}
	return sp
}

// windowOf returns the window that applies to peer p under configuration
// c: its own, else the global one; nil means always open.
func windowOf(c *config, p PeerConfig) *Window {
	if p.Schedule != nil {
		return p.Schedule
	}
	return c.Schedule
}

// SetSchedule sets the global sync window (nil: always open) and
// persists it. Peers with a window of their own keep it.
func (e *Engine) SetSchedule(w *Window) error {
	if w != nil {
		if err := w.Validate(); err != nil {
			return err
		}
	}
	w = w.clone()
	if err := e.update(func(c *config) error { c.Schedule = w; return nil }); err != nil {
		return err
	}
	e.schedTick()
	return nil
}

// Schedule returns the global sync window (a copy); nil means always
// open. A peer's own window is in its PeerConfig.Schedule.
func (e *Engine) Schedule() *Window {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conf.Schedule.clone()
}

// SetPeerSchedule sets peer d's own sync window, or with nil makes it
// follow the global one, and persists it.
func (e *Engine) SetPeerSchedule(d crypto.DeviceID, w *Window) error {
	if w != nil {
		if err := w.Validate(); err != nil {
			return err
		}
	}
	w = w.clone()
	err := e.update(func(c *config) error {
		for i := range c.Peers {
			if c.Peers[i].Device == d {
				c.Peers[i].Schedule = w
				return nil
			}
		}
		return noPeer(d)
	})
	if err != nil {
		return err
	}
	e.schedTick()
	return nil
}

// SyncNow runs one exchange with peer (zero: every peer) for folder (""
// every folder shared with it), whatever the schedule: our head is
// announced to the peer, what the peer announced is fetched, and the
// peer's request for our bundle is served, even outside the window. The
// exception ends once the folder is in step with the peer (as far as this
// device knows: the peer is known to have our head and nothing of its
// waits here) or after 10 minutes. The peer's own schedule still applies
// on its side. A peer that is not connected gets its exchange when it
// connects within that time. It needs Run (ErrNotRunning otherwise).
func (e *Engine) SyncNow(peer crypto.DeviceID, folder string) error {
	if err := e.owner(); err != nil {
		return err
	}
	e.mu.Lock()
	if folder != "" {
		if _, ok := e.conf.folder(folder); !ok {
			e.mu.Unlock()
			return fmt.Errorf("%w %q", ErrUnknownFolder, folder)
		}
	}
	if !peer.IsZero() {
		if _, ok := e.conf.peer(peer); !ok {
			e.mu.Unlock()
			return noPeer(peer)
		}
	}
	if e.schedLocked() == nil {
		e.mu.Unlock()
		return ErrNotRunning
	}
	until := e.cfg.Now().Add(syncNowKeep)
	var todo []jobKey
	for _, p := range e.conf.Peers {
		if !peer.IsZero() && p.Device != peer {
			continue
		}
		for _, f := range p.Folders {
			if _, have := e.conf.folder(f); have && (folder == "" || f == folder) {
				e.schedPeerLocked(p.Device).grants[f] = until
				todo = append(todo, jobKey{p.Device, f})
			}
		}
	}
	e.mu.Unlock()
	e.exchange(todo)
	return nil
}

// exchange starts what a closed window held back for each peer and
// folder of keys: it announces our head to the peer and fetches the head
// the peer announced meanwhile.
func (e *Engine) exchange(keys []jobKey) {
	e.mu.Lock()
	ctx := e.run.context()
	type step struct {
		key     jobKey
		pc      *peerConn
		pending bool
	}
	var steps []step
	for _, k := range keys {
		pc := e.connLocked(k.peer)
		if pc == nil {
			continue
		}
		pending := false
		if f := e.folders[k.folder]; f != nil {
			if in := f.fetches[k.peer]; in != nil && in.pending && !in.running {
				pending = true
			}
		}
		steps = append(steps, step{k, pc, pending})
	}
	e.mu.Unlock()
	for _, st := range steps {
		e.sendHead(st.pc, st.key.folder)
		if st.pending && !e.folderGone(st.key.folder) && ctx != nil {
			e.fetch(ctx, st.pc, st.key.folder)
		}
	}
}

// mayExchange reports whether a bundle of folder may go to or come from
// peer now: the peer's window is open, or a SyncNow grant holds. A bundle
// already flowing is never cut: callers ask before they start one.
func (e *Engine) mayExchange(peer crypto.DeviceID, folder string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.conf.peer(peer)
	if !ok {
		return true // not a peer: the sharing checks refuse it
	}
	now := e.cfg.Now()
	if w := windowOf(e.conf, p); w == nil || w.Open(now) {
		return true
	}
	until, ok := e.schedPeerLocked(peer).grants[folder]
	return ok && !now.After(until)
}

// schedTick checks every peer's window (Engine.sweepJobs calls it every
// second; a schedule change and SyncNow at once). A window that opened
// gets an exchange for every folder (what waited goes now), a change
// either way an EventWindowOpened or EventWindowClosed; SyncNow grants
// that are spent (the folder is in step with the peer) or old are
// dropped.
func (e *Engine) schedTick() {
	e.mu.Lock()
	if e.schedLocked() == nil {
		e.mu.Unlock()
		return
	}
	now := e.cfg.Now()
	var opened []jobKey
	var events []Event
	var granted []jobKey
	for _, p := range e.conf.Peers {
		sp := e.schedPeerLocked(p.Device)
		for f, until := range sp.grants {
			if now.After(until) || !e.conf.shares(p.Device, f) {
				delete(sp.grants, f)
			} else {
				granted = append(granted, jobKey{p.Device, f})
			}
		}
		w := windowOf(e.conf, p)
		open := w == nil || w.Open(now)
		if open != sp.closed {
			continue
		}
		sp.closed = !open
		ev := Event{Kind: EventWindowClosed, Peer: p.Device}
		if open {
			ev.Kind = EventWindowOpened
			for _, f := range p.Folders {
				opened = append(opened, jobKey{p.Device, f})
			}
		} else {
			ev.Until = w.Next(now)
		}
		events = append(events, ev)
	}
	for d, p := range e.peers {
		if _, ok := e.conf.peer(d); !ok {
			p.sched.grants, p.sched.closed = nil, false // a peer no more
		}
	}
	e.mu.Unlock()
	for _, ev := range events {
		e.emit(ev)
	}
	e.exchange(opened)
	for _, k := range granted {
		if e.inStep(k.peer, k.folder) {
			e.mu.Lock()
			delete(e.schedPeerLocked(k.peer).grants, k.folder)
			e.mu.Unlock()
		}
	}
}

// inStep reports whether folder is in step with peer as far as we know:
// the peer is known to have our head, and no head of the peer waits to be
// fetched or is being fetched.
func (e *Engine) inStep(peer crypto.DeviceID, folder string) bool {
	st, err := e.store(folder)
	if err != nil {
		return true // nothing to exchange
	}
	head, err := st.Head()
	if err != nil {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tab.Known[peer][folder] != head {
		return false
	}
	if f := e.folders[folder]; f != nil {
		if in := f.fetches[peer]; in != nil && (in.pending || in.running) {
			return false
		}
	}
	return true
}

// windowStatusLocked describes peer p's window for PeerStatus.Window: "open",
// "closed until 22:00" (or "closed until mon 22:00" when that is not
// within a day), plus " (sync now)" while a SyncNow grant holds. e.mu
// must be held.
func (e *Engine) windowStatusLocked(p PeerConfig, now time.Time) (string, bool) {
	w := windowOf(e.conf, p)
	if w == nil || w.Open(now) {
		return "open", true
	}
	s := "closed"
	if next := w.Next(now); !next.IsZero() {
		if next.Sub(now) < 24*time.Hour {
			s += " until " + next.Format("15:04")
		} else {
			s += " until " + dayName(next.Weekday()) + " " + next.Format("15:04")
		}
	}
	if len(e.schedPeerLocked(p.Device).grants) > 0 {
		s += " (sync now)"
	}
	return s, false
}

// waitingCap bounds the history walked to count what waits for a peer.
const waitingCap = 10000

// waiting counts, about, the changes of folder the peer does not have:
// the changes of our history, newest first, until the peer's known head
// or a change that came from the peer (the history is in committer-time
// order, so what is older the peer has seen). At most waitingCap.
func (e *Engine) waiting(ctx context.Context, peer crypto.DeviceID, folder string) int {
	st, err := e.store(folder)
	if err != nil {
		return 0
	}
	e.mu.Lock()
	known := e.tab.Known[peer][folder]
	e.mu.Unlock()
	if head, err := st.Head(); err != nil || head == known {
		return 0
	}
	changes, err := st.History(ctx, "", waitingCap)
	if err != nil {
		return 0
	}
	from := peer.String()
	n := 0
	for _, c := range changes {
		if c.Commit == known || c.From == from {
			break
		}
		n++
	}
	return n
}

// heldBack tells the tests that a closed window held a bundle back.
func (e *Engine) heldBack(peer crypto.DeviceID, folder string, send bool) {
	if h := e.cfg.test; h != nil && h.gated != nil {
		h.gated(peer, folder, send)
	}
}

// peerFolders lists the folders shared with p that this device has.
func (c *config) peerFolders(p PeerConfig) []string {
	var out []string
	for _, f := range p.Folders {
		if _, ok := c.folder(f); ok && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// schedStatus fills in the schedule, progress and scan fields of st.
func (e *Engine) schedStatus(st *Status) {
	e.mu.Lock()
	now := e.cfg.Now()
	conf := e.conf // replaced, never changed in place
	var closed []int
	for i := range st.Peers {
		ps := &st.Peers[i]
		var open bool
		ps.Window, open = e.windowStatusLocked(ps.PeerConfig, now)
		ps.Progress = e.progressLocked(ps.Device)
		if !open {
			closed = append(closed, i)
		}
	}
	for i := range st.Folders {
		if f := e.folders[st.Folders[i].ID]; f != nil && f.scan != nil {
			c := *f.scan
			st.Folders[i].Scan = &c
		}
	}
	e.mu.Unlock()
	for _, i := range closed {
		ps := &st.Peers[i]
		for _, f := range conf.peerFolders(ps.PeerConfig) {
			ps.Waiting += e.waiting(context.Background(), ps.Device, f)
		}
	}
}
