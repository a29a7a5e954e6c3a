package sync

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/transport"
)

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

	intro time.Time // when it was last let through to introduce itself
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
// Its fields are guarded by Engine.mu, except flush.
type sharing struct {
	list    Pending
	dirty   bool      // list changed since pending.json was written
	lastNew time.Time // when the last new device was recorded
	// flush orders the writes of pending.json: a snapshot is taken and
	// written under it, so an older snapshot never lands after a newer one.
	flush gosync.Mutex
}

// loadSharing reads the list of pending devices and folder offers (what
// the engine saw; the user's answers go to config.json) from home.
func loadSharing(home stateStore) (*sharing, error) {
	sh := &sharing{}
	if err := home.load(docPending, &sh.list); err != nil {
		return nil, err
	}
	return sh, nil
}

// Pending returns the devices and folder offers waiting for an answer.
// An Engine opened with Config.Shared reads what the owner last wrote.
func (e *Engine) Pending() Pending {
	if e.cfg.Shared {
		if sh, err := loadSharing(e.home); err == nil {
			// What the owner wrote, less what config.json ignores now.
			e.mu.Lock()
			defer e.mu.Unlock()
			p := sh.list.clone()
			p.Devices = slices.DeleteFunc(p.Devices, func(d PendingDevice) bool { return slices.Contains(e.conf.IgnoredDevices, d.Device) })
			p.Folders = slices.DeleteFunc(p.Folders, func(o FolderOffer) bool {
				return slices.Contains(e.conf.IgnoredFolders, ignoredFolder{ID: o.ID, From: o.From})
			})
			return p
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
	e.share.flush.Lock()
	defer e.share.flush.Unlock()
	e.mu.Lock()
	if !e.share.dirty || e.cfg.Shared {
		e.mu.Unlock()
		return
	}
	snap := e.share.list.clone()
	e.share.dirty = false
	e.mu.Unlock()
	if err := e.home.save(docPending, snap); err != nil {
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
	if d.IsZero() || d == e.DeviceID() {
		return fmt.Errorf("sync: IgnoreDevice: bad device ID %s", d)
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

// pendingLocked records device d, refused by the gate because it is not in
// the sync table, and reports whether to let it through the handshake to
// introduce itself: only if intro, while running, and at most once per
// introEvery. An ignored device is neither recorded nor introduced. e.mu
// must be held.
func (e *Engine) pendingLocked(d crypto.DeviceID, intro bool) bool {
	if slices.Contains(e.conf.IgnoredDevices, d) || e.cfg.Shared {
		return false
	}
	sh, now := e.share, e.cfg.Now()
	i := slices.IndexFunc(sh.list.Devices, func(p PendingDevice) bool { return p.Device == d })
	if i < 0 {
		if now.Sub(sh.lastNew) < pendingEvery {
			return false // rate-limited: refused, not recorded
		}
		sh.lastNew = now
		sh.list.Devices = makeRoom(sh.list.Devices, maxPendingDevices, func(p PendingDevice) time.Time { return p.LastSeen })
		sh.list.Devices = append(sh.list.Devices, PendingDevice{Device: d, FirstSeen: now})
		i = len(sh.list.Devices) - 1
		e.log.Info("device not in the sync table tried to connect; pending", "device", d)
		e.emit(Event{Kind: EventPendingDevice, Peer: d})
	}
	pd := &sh.list.Devices[i]
	pd.LastSeen, sh.dirty = now, true
	if !intro || e.run == nil || now.Sub(pd.intro) < introEvery {
		return false
	}
	pd.intro = now
	return true
}

// introduce handles a connection from a device not in the sync table that
// the gate let through: it reads the device's control frame (its name and
// listening port) from its first stream, records them, and closes the
// connection. Nothing else is read from it and nothing is sent.
func (e *Engine) introduce(c *transport.Conn, first *transport.Stream) {
	defer func() { _ = c.CloseWithError(transport.CloseNotAllowed, "not accepted (yet): pending on the peer") }()
	if first == nil {
		return
	}
	defer first.Abort()
	_ = first.SetReadDeadline(time.Now().Add(streamTimeout))
	m, err := readMsg(first)
	if err != nil || m.Type != msgControl {
		e.log.Debug("pending device sent no introduction", "device", c.Peer(), "err", err)
		return
	}
	addr := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil && m.Port > 0 {
		addr = net.JoinHostPort(host, strconv.Itoa(m.Port))
	}
	d, name := c.Peer(), printable(m.Name)
	e.mu.Lock()
	sh := e.share
	i := slices.IndexFunc(sh.list.Devices, func(p PendingDevice) bool { return p.Device == d })
	changed := i >= 0 && (sh.list.Devices[i].Name != name || sh.list.Devices[i].Addr != addr)
	if changed {
		sh.list.Devices[i].Name, sh.list.Devices[i].Addr = name, addr
		sh.dirty = true
	}
	e.mu.Unlock()
	if changed {
		e.log.Info("pending device introduced itself", "device", d, "name", name, "addr", addr)
		e.emit(Event{Kind: EventPendingDevice, Peer: d, Addr: addr})
		e.flushPending()
	}
}

// AcceptDevice makes pending device d a peer: its entry gets the name it
// announced, the address it came from (its IP, the port it announced) and
// folders, the IDs of our folders to share with it (which must exist). It
// may then connect; the folders it offers us become offers. A device that
// is already a peer gets folders added to its entry.
func (e *Engine) AcceptDevice(d crypto.DeviceID, folders []string) error {
	if d.IsZero() || d == e.DeviceID() {
		return fmt.Errorf("sync: AcceptDevice: bad device ID %s", d)
	}
	var pd PendingDevice
	pending := e.Pending()
	i := slices.IndexFunc(pending.Devices, func(p PendingDevice) bool { return p.Device == d })
	if i >= 0 {
		pd = pending.Devices[i]
	}
	err := e.update(func(c *config) error {
		for _, id := range folders {
			if _, ok := c.folder(id); !ok {
				return fmt.Errorf("%w %q", ErrUnknownFolder, id)
			}
		}
		if j := slices.IndexFunc(c.Peers, func(p PeerConfig) bool { return p.Device == d }); j >= 0 {
			for _, id := range folders {
				if !slices.Contains(c.Peers[j].Folders, id) {
					c.Peers[j].Folders = append(c.Peers[j].Folders, id)
				}
			}
			return nil
		}
		if i < 0 {
			return fmt.Errorf("sync: AcceptDevice: %s is neither pending nor a peer", d)
		}
		p := PeerConfig{Device: d, Name: pd.Name, Folders: slices.Clone(folders)}
		if pd.Addr != "" {
			p.Addrs = []string{pd.Addr}
		}
		c.Peers = append(c.Peers, p)
		c.IgnoredDevices = slices.DeleteFunc(c.IgnoredDevices, func(x crypto.DeviceID) bool { return x == d })
		return nil
	})
	if err != nil {
		return err
	}
	e.flushPending()
	return nil
}

// resolvePendingLocked drops pending devices that are peers now, and
// offers of folders now shared with their peer. e.mu must be held.
func (e *Engine) resolvePendingLocked() {
	sh := e.share
	n := len(sh.list.Devices) + len(sh.list.Folders)
	sh.list.Devices = slices.DeleteFunc(sh.list.Devices, func(p PendingDevice) bool {
		_, ok := e.conf.peer(p.Device)
		return ok || slices.Contains(e.conf.IgnoredDevices, p.Device)
	})
	sh.list.Folders = slices.DeleteFunc(sh.list.Folders, func(o FolderOffer) bool {
		_, have := e.conf.folder(o.ID)
		return have && e.conf.shares(o.From, o.ID) ||
			slices.Contains(e.conf.IgnoredFolders, ignoredFolder{ID: o.ID, From: o.From})
	})
	if len(sh.list.Devices)+len(sh.list.Folders) != n {
		sh.dirty = true
	}
}

// makeRoom returns list with room for one more entry under max: when full,
// the entry whose time (when) is oldest is dropped.
func makeRoom[T any](list []T, max int, when func(T) time.Time) []T {
	if len(list) < max {
		return list
	}
	oldest := 0
	for i, x := range list {
		if when(x).Before(when(list[oldest])) {
			oldest = i
		}
	}
	return slices.Delete(list, oldest, oldest+1)
}

// strangerOffer records the device of an ICE offer refused because it is
// not in the sync table (no introduction: ICE is only answered for peers).
func (e *Engine) strangerOffer(d crypto.DeviceID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if errors.Is(e.allowedLocked(d), errNotInTable) {
		e.pendingLocked(d, false)
	}
}

// printable drops the control characters (newlines, terminal escapes) of
// a name or label a device sent, so that it prints on one line as itself.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
}
