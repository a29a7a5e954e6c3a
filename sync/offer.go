package sync

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/peersync/peersync/crypto"
)

// listenPort is the port Run listens on (UDP, and TCP on the same
// number), announced in our control frame; 0 when not running.
func (e *Engine) listenPort() int {
	if ua, ok := e.Addr().(*net.UDPAddr); ok {
		return ua.Port
	}
	return 0
}

// offered handles a peer's head of a folder that does not flow between us.
// If the folder is not shared with that peer here (we lack it, or share it
// with others only), and the pair is not ignored, it is recorded as an
// offer (with the label and head the peer sent), and a new offer is
// reported. A paused folder or peer offers nothing.
func (e *Engine) offered(from crypto.DeviceID, m message) {
	e.mu.Lock()
	p, known := e.conf.peer(from)
	_, have := e.conf.folder(m.Folder)
	if !known || p.Paused || have && e.conf.shares(from, m.Folder) ||
		slices.Contains(e.conf.IgnoredFolders, ignoredFolder{ID: m.Folder, From: from}) {
		e.mu.Unlock()
		return
	}
	sh, now := e.share, e.cfg.Now()
	i := slices.IndexFunc(sh.list.Folders, func(o FolderOffer) bool { return o.ID == m.Folder && o.From == from })
	isNew := i < 0
	if isNew {
		sh.list.Folders = makeRoom(sh.list.Folders, maxFolderOffers, func(o FolderOffer) time.Time { return o.Time })
		sh.list.Folders = append(sh.list.Folders, FolderOffer{ID: m.Folder, From: from})
		i = len(sh.list.Folders) - 1
	}
	o, label := &sh.list.Folders[i], printable(m.Label)
	relabeled := o.Label != label
	o.Label, o.Head, o.Time = label, m.Head, now
	sh.dirty = true
	e.mu.Unlock()
	if isNew || relabeled {
		e.log.Info("folder offered", "peer", from, "folder", m.Folder, "label", label)
		e.emit(Event{Kind: EventFolderOffer, Peer: from, Folder: m.Folder})
		e.flushPending()
	}
}

// AcceptFolder accepts the offers of folder id: the folder is created at
// path ("" = <Config.DefaultFolderParent>/<label>, the label the peer sent,
// or the ID when the label is no usable directory name), added with the
// offered label, and shared with every peer that offered it; the first sync
// starts at once with the connected ones. If the folder exists here
// already, path must be "" or its path, and it is only shared with the
// offering peers.
func (e *Engine) AcceptFolder(ctx context.Context, id, path string) (FolderConfig, error) {
	if err := ValidFolderID(id); err != nil {
		return FolderConfig{}, err
	}
	var offers []FolderOffer
	for _, o := range e.Pending().Folders {
		if o.ID == id {
			offers = append(offers, o)
		}
	}
	if len(offers) == 0 {
		return FolderConfig{}, fmt.Errorf("sync: no offer of folder %q", id)
	}
	e.mu.Lock()
	fc, have := e.conf.folder(id)
	e.mu.Unlock()
	if !have {
		fc = FolderConfig{ID: id, Label: offers[0].Label, Path: path}
		if fc.Path == "" {
			parent, err := e.defaultParent()
			if err != nil {
				return FolderConfig{}, err
			}
			fc.Path = filepath.Join(parent, dirName(fc.Label, id))
		}
		if err := os.MkdirAll(fc.Path, 0o755); err != nil {
			return FolderConfig{}, fmt.Errorf("sync: accept folder %q: %w", id, err)
		}
		if err := e.AddFolder(ctx, fc); err != nil {
			return FolderConfig{}, err
		}
		e.mu.Lock()
		fc, _ = e.conf.folder(id)
		e.mu.Unlock()
	} else if path != "" && resolve(path) != resolve(fc.Path) {
		return fc, fmt.Errorf("sync: folder %q is already shared from %q", id, fc.Path)
	}
	err := e.update(func(c *config) error {
		for _, o := range offers {
			j := slices.IndexFunc(c.Peers, func(p PeerConfig) bool { return p.Device == o.From })
			if j >= 0 && !slices.Contains(c.Peers[j].Folders, id) {
				c.Peers[j].Folders = append(c.Peers[j].Folders, id)
			}
		}
		return nil
	})
	return fc, err
}

// defaultParent is Config.DefaultFolderParent, or ~/PeerSync.
func (e *Engine) defaultParent() (string, error) {
	if e.cfg.DefaultFolderParent != "" {
		return filepath.Abs(e.cfg.DefaultFolderParent)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("sync: default folder parent: %w", err)
	}
	return filepath.Join(home, "PeerSync"), nil
}

// dirName turns a label a peer sent into one directory name: the label if
// it is one plain name, else the folder ID (always a valid name).
func dirName(label, id string) string {
	l := strings.TrimSpace(label)
	if l == "" || l == "." || l == ".." || strings.ContainsAny(l, `/\:`) ||
		strings.IndexFunc(l, unicode.IsControl) >= 0 || len(l) > 128 {
		return id
	}
	return l
}
