package sync

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
	"github.com/peersync/peersync/internal/atomicfile"
)

// File names inside the state directory.
const (
	configFile = "config.json" // what the user chose: name, folders, peers
	tableFile  = "table.json"  // what the engine learned: last known revisions
)

// FolderConfig is one shared folder.
type FolderConfig struct {
	// ID names the folder between devices; devices share a folder by giving
	// it the same ID. Letters, digits, '.', '_' and '-', at most 64.
	ID string `json:"id"`
	// Path is the folder on this device (absolute).
	Path string `json:"path"`
}

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
	// Schedule is this peer's sync window; nil follows the global one.
	Schedule *Window `json:"schedule,omitempty"`
	// Limits cap the bundle streams to and from this peer, beside the
	// global limits; zero fields mean none.
	Limits RateLimit `json:"limits,omitzero"`
}

// config is the user's configuration as stored in config.json.
type config struct {
	Version int            `json:"version"`
	Name    string         `json:"name,omitempty"`
	Folders []FolderConfig `json:"folders"`
	Peers   []PeerConfig   `json:"peers"`
	// Schedule is the global sync window (nil = always); Limits the
	// global bandwidth limits (see schedule.go, limit.go).
	Schedule *Window   `json:"schedule,omitempty"`
	Limits   RateLimit `json:"limits,omitzero"`
}

// table is the engine's sync table as stored in table.json: for each peer
// and folder, the last revision the peer is known to have.
type table struct {
	Version int                                          `json:"version"`
	Known   map[crypto.DeviceID]map[string]gitstore.Hash `json:"known"`
	Seen    map[crypto.DeviceID]time.Time                `json:"seen,omitempty"`
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
		for _, id := range p.Folders {
			if err := ValidFolderID(id); err != nil {
				return fmt.Errorf("sync: peer %s: %w", p.Device, err)
			}
		}
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

func (c *config) folder(id string) (FolderConfig, bool) {
	for _, f := range c.Folders {
		if f.ID == id {
			return f, true
		}
	}
	return FolderConfig{}, false
}

// shares reports whether folder id is shared with device d.
func (c *config) shares(d crypto.DeviceID, id string) bool {
	p, ok := c.peer(d)
	return ok && slices.Contains(p.Folders, id)
}

func (c *config) clone() *config {
	out := &config{Version: c.Version, Name: c.Name, Folders: slices.Clone(c.Folders)}
	out.Schedule, out.Limits = c.Schedule.clone(), c.Limits
	for _, p := range c.Peers {
		p.Schedule = p.Schedule.clone()
		p.Addrs = slices.Clone(p.Addrs)
		p.Folders = slices.Clone(p.Folders)
		out.Peers = append(out.Peers, p)
	}
	return out
}

// loadJSON reads path into v. A missing file leaves v untouched and is not an
// error; a corrupt one is (we never silently reset a user's configuration).
func loadJSON(path string, v any) (modTime time.Time, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("sync: read state: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return time.Time{}, fmt.Errorf("sync: state file %q is corrupt (fix or remove it): %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("sync: read state: %w", err)
	}
	return fi.ModTime(), nil
}

func saveJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("sync: encode state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o600)
}

func peerLabel(p PeerConfig) string {
	if strings.TrimSpace(p.Name) != "" {
		return p.Name
	}
	return p.Device.Short()
}
