package sync

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/transport"
)

// ErrUnknownPeer: no peer with that DeviceID in the sync table.
var ErrUnknownPeer = errors.New("sync: unknown peer")

// EventConfigChanged: the configuration changed (any of the methods that
// edit it, or config.json edited by another process). Status shows the new
// state.
const EventConfigChanged EventKind = "config-changed"

// SetPeer adds a device to the sync table, or replaces its whole entry
// (name, addresses, folders, directions, paused) with p. Addresses are
// "host:port" with an IP or a DNS name (resolved again on every dial).
// A connection the new entry no longer allows (the peer paused, or a
// folder no longer shared) stops at once.
func (e *Engine) SetPeer(p PeerConfig) error {
	if p.Device.IsZero() {
		return errors.New("sync: SetPeer: no device ID")
	}
	if p.Device == e.DeviceID() {
		return errors.New("sync: SetPeer: that is this device's own ID")
	}
	for _, a := range p.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("sync: peer address %q: want HOST:PORT: %w", a, err)
		}
	}
	p = p.clone()
	if err := p.validate(); err != nil {
		return err
	}
	return e.update(func(c *config) error {
		for i := range c.Peers {
			if c.Peers[i].Device == p.Device {
				c.Peers[i] = p
				return nil
			}
		}
		c.Peers = append(c.Peers, p)
		// A device we add is no longer pending nor ignored.
		c.IgnoredDevices = slices.DeleteFunc(c.IgnoredDevices, func(d crypto.DeviceID) bool { return d == p.Device })
		return nil
	})
}

// Peer returns the sync table's entry of device d.
func (e *Engine) Peer(d crypto.DeviceID) (PeerConfig, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.conf.peer(d)
	return p.clone(), ok
}

// Peers returns the sync table, in the order of config.json.
func (e *Engine) Peers() []PeerConfig {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]PeerConfig, 0, len(e.conf.Peers))
	for _, p := range e.conf.Peers {
		out = append(out, p.clone())
	}
	return out
}

// Folders returns the shared folders, in the order of config.json.
func (e *Engine) Folders() []FolderConfig {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]FolderConfig{}, e.conf.Folders...)
}

// RemoveFolder stops sharing folder id: it leaves the configuration and
// every peer's entry, its store is closed and its transfers stop. The
// files and their history (<path>/.peersync) stay on disk: adding the
// folder again picks the history up where it was.
func (e *Engine) RemoveFolder(id string) error {
	return e.update(func(c *config) error {
		i := slices.IndexFunc(c.Folders, func(f FolderConfig) bool { return f.ID == id })
		if i < 0 {
			return fmt.Errorf("%w %q", ErrUnknownFolder, id)
		}
		c.Folders = slices.Delete(c.Folders, i, i+1)
		for j := range c.Peers {
			p := &c.Peers[j]
			p.Folders = slices.DeleteFunc(p.Folders, func(f string) bool { return f == id })
			delete(p.Directions, id)
			if len(p.Directions) == 0 {
				p.Directions = nil
			}
		}
		return nil
	})
}

// dropFolder forgets the runtime state of a folder no longer configured:
// its store is closed (which ends its watcher), its partial fetches are
// removed.
func (e *Engine) dropFolder(id string) {
	e.mu.Lock()
	f := e.folders[id]
	delete(e.folders, id)
	e.mu.Unlock()
	if f == nil {
		return
	}
	for _, in := range f.fetches {
		if in.part != nil {
			in.part.remove()
		}
	}
	if f.store != nil {
		_ = f.store.Close()
	}
}

// PauseFolder pauses (paused true) or resumes folder id (see
// FolderConfig.Paused). Resuming announces the folder's head to its peers
// and fetches what they announce.
func (e *Engine) PauseFolder(id string, paused bool) error {
	return e.update(func(c *config) error {
		i := slices.IndexFunc(c.Folders, func(f FolderConfig) bool { return f.ID == id })
		if i < 0 {
			return fmt.Errorf("%w %q", ErrUnknownFolder, id)
		}
		c.Folders[i].Paused = paused
		return nil
	})
}

// PausePeer pauses (paused true) or resumes device d (see
// PeerConfig.Paused); pausing closes its connection.
func (e *Engine) PausePeer(d crypto.DeviceID, paused bool) error {
	return e.update(func(c *config) error {
		i := slices.IndexFunc(c.Peers, func(p PeerConfig) bool { return p.Device == d })
		if i < 0 {
			return fmt.Errorf("%w %s", ErrUnknownPeer, d)
		}
		c.Peers[i].Paused = paused
		return nil
	})
}

// configChanged brings the running engine in line with a new
// configuration (old is the previous one): it reports the change, closes
// connections the configuration no longer allows, forgets removed folders,
// and announces every folder to the connected peers and has the tick loop
// fetch what they announced (so that a folder newly shared or resumed
// starts syncing at once), then wakes the dial loop.
func (e *Engine) configChanged(old *config) {
	e.emit(Event{Kind: EventConfigChanged})
	e.mu.Lock()
	conf := e.conf
	e.resolvePendingLocked()
	e.mu.Unlock()
	e.flushPending()
	for _, f := range old.Folders {
		now, ok := conf.folder(f.ID)
		switch {
		case !ok:
			e.dropFolder(f.ID)
		case now.Paused && !f.Paused:
			e.closeStoreOf(f.ID) // ends its watcher; reopened on the next use
		}
	}
	e.dropUnknownPeers()
	for _, f := range conf.Folders {
		e.announce(f.ID)
	}
	e.mu.Lock()
	e.run.configChanged() // the tick loop refetches
	e.mu.Unlock()
	e.kickDial()
}

// dropUnknownPeers closes connections of devices no longer in the table
// or paused.
func (e *Engine) dropUnknownPeers() {
	type drop struct {
		pc  *peerConn
		why string
	}
	var gone []drop
	e.mu.Lock()
	for d, pc := range e.connsLocked() {
		if e.isRendezvousLocked(d) {
			continue
		}
		if p, ok := e.conf.peer(d); !ok {
			gone = append(gone, drop{pc, "removed from sync table"})
		} else if p.Paused {
			gone = append(gone, drop{pc, "paused"})
		}
	}
	e.mu.Unlock()
	for _, g := range gone {
		_ = g.pc.c.CloseWithError(transport.CloseNotAllowed, g.why)
	}
}
