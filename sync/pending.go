package sync

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// pendingFile is the state directory's list of pending devices and folder
// offers (what the engine saw; the user's answers go to config.json).
const pendingFile = "pending.json"

// Bounds of the pending lists. A device met when the list is full replaces
// the one seen least recently; a new device is recorded at most once per
// pendingEvery (others are refused as before, unrecorded), and one device
// is let through the TLS handshake to introduce itself at most once per
// introEvery (see the package doc, Pending devices).
const (
	maxPendingDevices = 32
	maxFolderOffers   = 64
	pendingEvery      = time.Second
	introEvery        = 10 * time.Second
)

// The events of pending devices and folder offers.
const (
	// EventPendingDevice: a device not in the sync table tried to connect
	// and was recorded (Peer, Addr; Name in Pending). Accept it with
	// AcceptDevice, or IgnoreDevice.
	EventPendingDevice EventKind = "pending-device"
	// EventFolderOffer: Peer shares Folder with us and we do not share it
	// with the peer yet (its label in Pending). Accept it with
	// AcceptFolder, or IgnoreFolder.
	EventFolderOffer EventKind = "folder-offer"
)

// Pending lists what waits for the user's answer.
type Pending struct {
	Devices []PendingDevice `json:"devices"`
	Folders []FolderOffer   `json:"folders"`
}

// PendingDevice is a device that is not in the sync table and tried to
// connect.
type PendingDevice struct {
	Device crypto.DeviceID `json:"device"`
	// Name is the name it announced ("" until it introduced itself).
	Name string `json:"name,omitempty"`
	// Addr is where to reach it: the IP it came from and the port it
	// announced it listens on ("" until it introduced itself).
	Addr      string    `json:"addr,omitempty"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
}

// FolderOffer is a folder a peer shares with us that we do not share with
// it.
type FolderOffer struct {
	ID    string          `json:"id"`
	Label string          `json:"label,omitempty"`
	From  crypto.DeviceID `json:"from"`
	Time  time.Time       `json:"time"` // last offered
	// Head is the offering peer's head when it last offered the folder:
	// accepting fetches it at once.
	Head gitstore.Hash `json:"head,omitempty"`
}

// sharing is the engine's state of pending devices and folder offers.
// Its fields are guarded by Engine.mu.
type sharing struct {
	list      Pending
	dirty     bool      // list changed since pending.json was written
	lastNew   time.Time // when the last new device was recorded
	lastIntro map[crypto.DeviceID]time.Time
}

// loadSharing reads pending.json from home.
func loadSharing(home string) (*sharing, error) {
	sh := &sharing{lastIntro: map[crypto.DeviceID]time.Time{}}
	if _, err := loadJSON(filepath.Join(home, pendingFile), &sh.list); err != nil {
		return nil, err
	}
	return sh, nil
}

// Pending returns the devices and folder offers waiting for an answer.
// An Engine opened with Config.Shared reads what the owner last wrote.
func (e *Engine) Pending() Pending {
	if e.cfg.Shared {
		if sh, err := loadSharing(e.cfg.Home); err == nil {
			return sh.list.clone()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.share.list.clone()
}

func (p Pending) clone() Pending {
	return Pending{Devices: append([]PendingDevice{}, p.Devices...), Folders: append([]FolderOffer{}, p.Folders...)}
}

// flushPending writes pending.json if it changed.
func (e *Engine) flushPending() {
	e.mu.Lock()
	if !e.share.dirty || e.cfg.Shared {
		e.mu.Unlock()
		return
	}
	snap := e.share.list.clone()
	e.share.dirty = false
	e.mu.Unlock()
	if err := saveJSON(filepath.Join(e.cfg.Home, pendingFile), snap); err != nil {
		e.log.Warn("saving pending devices", "err", err)
		e.mu.Lock()
		e.share.dirty = true
		e.mu.Unlock()
	}
}

// dropPendingLocked removes device d's entry and its offers. e.mu must be
// held.
func (e *Engine) dropPendingLocked(d crypto.DeviceID) {
	sh := e.share
	n := len(sh.list.Devices) + len(sh.list.Folders)
	sh.list.Devices = slices.DeleteFunc(sh.list.Devices, func(p PendingDevice) bool { return p.Device == d })
	sh.list.Folders = slices.DeleteFunc(sh.list.Folders, func(o FolderOffer) bool { return o.From == d })
	if len(sh.list.Devices)+len(sh.list.Folders) != n {
		sh.dirty = true
	}
}

// dropOffersLocked removes the offers of folder id (from device from, or
// from every device when from is zero). e.mu must be held.
func (e *Engine) dropOffersLocked(id string, from crypto.DeviceID) {
	sh := e.share
	n := len(sh.list.Folders)
	sh.list.Folders = slices.DeleteFunc(sh.list.Folders, func(o FolderOffer) bool {
		return o.ID == id && (from.IsZero() || o.From == from)
	})
	if len(sh.list.Folders) != n {
		sh.dirty = true
	}
}

// IgnoreDevice refuses device d for good, without recording it again: it
// leaves the pending list and is added to the ignored devices of
// config.json (SetPeer with it undoes that).
func (e *Engine) IgnoreDevice(d crypto.DeviceID) error {
	if d.IsZero() {
		return fmt.Errorf("sync: IgnoreDevice: no device ID")
	}
	err := e.update(func(c *config) error {
		if _, ok := c.peer(d); ok {
			return fmt.Errorf("sync: %s is a peer; remove it instead", d)
		}
		if !slices.Contains(c.IgnoredDevices, d) {
			c.IgnoredDevices = append(c.IgnoredDevices, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.dropPendingLocked(d)
	e.mu.Unlock()
	e.flushPending()
	return nil
}

// IgnoreFolder drops the offer of folder id from device from and never
// records it again (config.json keeps the pair).
func (e *Engine) IgnoreFolder(id string, from crypto.DeviceID) error {
	if err := ValidFolderID(id); err != nil {
		return err
	}
	if from.IsZero() {
		return fmt.Errorf("sync: IgnoreFolder: no device ID")
	}
	err := e.update(func(c *config) error {
		ig := ignoredFolder{ID: id, From: from}
		if !slices.Contains(c.IgnoredFolders, ig) {
			c.IgnoredFolders = append(c.IgnoredFolders, ig)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.dropOffersLocked(id, from)
	e.mu.Unlock()
	e.flushPending()
	return nil
}
