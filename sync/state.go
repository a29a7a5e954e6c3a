package sync

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	gosync "sync"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// FolderConfig is one shared folder.
type FolderConfig struct {
	// ID names the folder between devices; devices share a folder by giving
	// it the same ID. Letters, digits, '.', '_' and '-', at most 64.
	ID string `json:"id"`
	// Path is the folder on this device (absolute).
	Path string `json:"path"`
	// Label is a human name for the folder ("Photos"), sent to peers with
	// its offer; "" shows the ID.
	Label string `json:"label,omitempty"`
	// Paused stops the folder's exchanges with every peer: it is neither
	// announced, served nor fetched into, and neither watched nor scanned
	// by the engine's own ticks (Engine.Scan still scans it on request).
	Paused bool `json:"paused,omitempty"`
}

// Direction says which way a folder flows between this device and one peer.
type Direction string

// The directions of PeerConfig.Directions.
const (
	// DirBoth (or "") sends ours and applies theirs.
	DirBoth Direction = "both"
	// DirSend sends ours and never applies theirs: the peer's heads are
	// not fetched.
	DirSend Direction = "send"
	// DirReceive applies theirs and never sends ours: our head is not
	// announced to the peer, its wants are refused, and local edits are
	// committed to our own history only (FolderStatus.NotSent counts them;
	// Engine.RevertFolder undoes them).
	DirReceive Direction = "receive"
)

// valid reports whether d is a known direction ("" is both).
func (d Direction) valid() bool {
	switch d {
	case "", DirBoth, DirSend, DirReceive:
		return true
	}
	return false
}

// sends reports whether we send our history in direction d.
func (d Direction) sends() bool { return d != DirReceive }

// receives reports whether we apply theirs in direction d.
func (d Direction) receives() bool { return d != DirSend }

// PeerConfig is one device in the sync table.
type PeerConfig struct {
	// Device is the peer's identity; connections from any other device are
	// refused during the TLS handshake.
	Device crypto.DeviceID `json:"device"`
	// Name is a human label ("laptop"); "" shows the short DeviceID.
	Name string `json:"name,omitempty"`
	// Addrs are "host:port" UDP addresses to dial; empty means we wait for
	// the peer to call us (later: discovery and the rendezvous find it).
	Addrs []string `json:"addrs,omitempty"`
	// Folders are the IDs of the folders shared with this peer. A peer can
	// neither read nor write any other folder.
	Folders []string `json:"folders,omitempty"`
	// Directions gives, per folder ID, which way that folder flows with
	// this peer; a folder not listed (or "") syncs both ways.
	Directions map[string]Direction `json:"directions,omitempty"`
	// Paused stops every exchange with the peer: it is not dialed, and its
	// connections are refused and closed, until resumed.
	Paused bool `json:"paused,omitempty"`
	// Schedule is this peer's sync window; nil follows the global one.
	Schedule *Window `json:"schedule,omitempty"`
	// Limits cap the bundle streams to and from this peer, beside the
	// global limits; zero fields mean none.
	Limits RateLimit `json:"limits,omitzero"`
}

// direction returns the direction of folder id with this peer (DirBoth
// when unset).
func (p PeerConfig) direction(id string) Direction {
	if d := p.Directions[id]; d != "" {
		return d
	}
	return DirBoth
}

// clone returns a copy of p that shares no slice or map with it.
func (p PeerConfig) clone() PeerConfig {
	p.Addrs = slices.Clone(p.Addrs)
	p.Folders = slices.Clone(p.Folders)
	p.Directions = maps.Clone(p.Directions)
	p.Schedule = p.Schedule.clone()
	return p
}

// config is the user's configuration as stored in config.json.
type config struct {
	Version int            `json:"version"`
	Name    string         `json:"name,omitempty"`
	Folders []FolderConfig `json:"folders"`
	Peers   []PeerConfig   `json:"peers"`
	// IgnoredDevices are devices whose connections are refused without
	// being recorded as pending (IgnoreDevice).
	IgnoredDevices []crypto.DeviceID `json:"ignoredDevices,omitempty"`
	// IgnoredFolders are folder offers never shown again (IgnoreFolder).
	IgnoredFolders []ignoredFolder `json:"ignoredFolders,omitempty"`
	// Schedule is the global sync window (nil = always); Limits the
	// global bandwidth limits (see schedule.go, limit.go).
	Schedule *Window   `json:"schedule,omitempty"`
	Limits   RateLimit `json:"limits,omitzero"`
	// Network is the network settings saved by SetSettings (nil: the
	// Config's); see settings.go.
	Network *Settings `json:"network,omitempty"`
}

// ignoredFolder is one folder offer the user ignored: folder ID from a
// device.
type ignoredFolder struct {
	ID   string          `json:"id"`
	From crypto.DeviceID `json:"from"`
}

// table is the engine's sync table as stored in table.json: for each peer
// and folder, the last revision the peer is known to have. (Files written
// before this version may also hold a "seen" map of peers' last contact
// times, never read: it is ignored when loaded and dropped at the next
// write.)
type table struct {
	Version int                                          `json:"version"`
	Known   map[crypto.DeviceID]map[string]gitstore.Hash `json:"known"`

	dirty bool // changed since last written (see Engine.flushTable)
	// flush orders the writes of table.json (Engine.flushTable).
	flush gosync.Mutex
}

var folderIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidFolderID reports whether id may name a folder.
func ValidFolderID(id string) error {
	if !folderIDRe.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("sync: invalid folder ID %q: use 1-64 letters, digits, '.', '_' or '-'", id)
	}
	return nil
}

// within reports whether path p is dir or below it (both cleaned, absolute).
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resolve cleans p and resolves symlinks as far as the path exists, so
// that two spellings of one directory compare equal.
func resolve(p string) string {
	p = filepath.Clean(p)
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// validate checks the configuration. home is the state directory: no
// shared folder may contain it (the identity key would be committed and
// sent to every peer), and no two folders may overlap.
func (c *config) validate(home string) error {
	if c.Network != nil {
		if err := c.Network.validate(); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	homeR := resolve(home)
	paths := map[string]string{}
	for _, f := range c.Folders {
		if err := ValidFolderID(f.ID); err != nil {
			return err
		}
		if seen[f.ID] {
			return fmt.Errorf("sync: folder ID %q listed twice", f.ID)
		}
		seen[f.ID] = true
		if len(f.Label) > maxLabel {
			return fmt.Errorf("sync: folder %q: label longer than %d bytes", f.ID, maxLabel)
		}
		if !filepath.IsAbs(f.Path) {
			return fmt.Errorf("sync: folder %q: path %q is not absolute", f.ID, f.Path)
		}
		p := resolve(f.Path)
		if within(homeR, p) {
			return fmt.Errorf("sync: folder %q at %q contains the state directory %q, whose identity key must never be shared; choose another folder or move the state (--home)", f.ID, f.Path, home)
		}
		if within(p, homeR) {
			return fmt.Errorf("sync: folder %q at %q is inside the state directory %q", f.ID, f.Path, home)
		}
		for q, other := range paths {
			if within(p, q) || within(q, p) {
				return fmt.Errorf("sync: folder %q at %q overlaps folder %q; each folder is its own history", f.ID, f.Path, other)
			}
		}
		paths[p] = f.ID
	}
	peers := map[crypto.DeviceID]bool{}
	for _, p := range c.Peers {
		if p.Device.IsZero() {
			return errors.New("sync: peer without a device ID")
		}
		if peers[p.Device] {
			return fmt.Errorf("sync: peer %s listed twice", p.Device)
		}
		peers[p.Device] = true
		if err := p.validate(); err != nil {
			return err
		}
	}
	return nil
}

// maxLabel bounds a folder label and a device name.
const maxLabel = 256

// validate checks one peer's entry on its own.
func (p PeerConfig) validate() error {
	for _, id := range p.Folders {
		if err := ValidFolderID(id); err != nil {
			return fmt.Errorf("sync: peer %s: %w", p.Device, err)
		}
	}
	for id, d := range p.Directions {
		if err := ValidFolderID(id); err != nil {
			return fmt.Errorf("sync: peer %s: direction: %w", p.Device, err)
		}
		if !d.valid() {
			return fmt.Errorf("sync: peer %s: folder %q: direction %q: want both, send or receive", p.Device, id, d)
		}
	}
	if len(p.Name) > maxLabel {
		return fmt.Errorf("sync: peer %s: name longer than %d bytes", p.Device, maxLabel)
	}
	return nil
}

func (c *config) peer(d crypto.DeviceID) (PeerConfig, bool) {
	for _, p := range c.Peers {
		if p.Device == d {
			return p, true
		}
	}
	return PeerConfig{}, false
}

// relabel sets the label of the folder f.ID, which must be at f.Path.
func (c *config) relabel(f FolderConfig) error {
	i := slices.IndexFunc(c.Folders, func(x FolderConfig) bool { return x.ID == f.ID })
	if i < 0 {
		return fmt.Errorf("%w %q", ErrUnknownFolder, f.ID)
	}
	if c.Folders[i].Path != f.Path {
		return fmt.Errorf("sync: folder ID %q is already shared from %q", f.ID, c.Folders[i].Path)
	}
	c.Folders[i].Label = f.Label
	return nil
}

func (c *config) folder(id string) (FolderConfig, bool) {
	for _, f := range c.Folders {
		if f.ID == id {
			return f, true
		}
	}
	return FolderConfig{}, false
}

// shares reports whether folder id is shared with device d (whatever the
// direction, paused or not).
func (c *config) shares(d crypto.DeviceID, id string) bool {
	p, ok := c.peer(d)
	return ok && slices.Contains(p.Folders, id)
}

// flows reports whether folder id may flow between us and device d right
// now: shared, our folder exists, and neither the folder nor the peer is
// paused. It returns the direction too.
func (c *config) flows(d crypto.DeviceID, id string) (Direction, bool) {
	p, ok := c.peer(d)
	if !ok || p.Paused || !slices.Contains(p.Folders, id) {
		return "", false
	}
	f, ok := c.folder(id)
	if !ok || f.Paused {
		return "", false
	}
	return p.direction(id), true
}

// sendsTo reports whether we announce and serve folder id to d.
func (c *config) sendsTo(d crypto.DeviceID, id string) bool {
	dir, ok := c.flows(d, id)
	return ok && dir.sends()
}

// receivesFrom reports whether we fetch folder id from d.
func (c *config) receivesFrom(d crypto.DeviceID, id string) bool {
	dir, ok := c.flows(d, id)
	return ok && dir.receives()
}

// clone returns a copy of c that shares no slice or map with it (fields
// added later are copied too; pointers among them are shared).
func (c *config) clone() *config {
	out := *c
	out.Folders = slices.Clone(c.Folders)
	out.IgnoredDevices = slices.Clone(c.IgnoredDevices)
	out.IgnoredFolders = slices.Clone(c.IgnoredFolders)
	out.Peers = nil
	for _, p := range c.Peers {
		out.Peers = append(out.Peers, p.clone())
	}
	out.Schedule = c.Schedule.clone()
	if c.Network != nil {
		n := c.Network.clone()
		out.Network = &n
	}
	return &out
}

func peerLabel(p PeerConfig) string {
	if strings.TrimSpace(p.Name) != "" {
		return p.Name
	}
	return p.Device.Short()
}
