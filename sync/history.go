package sync

import (
	"context"
	"fmt"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// History lists the commits of folder touching path (all when path is ""),
// newest first, deletions included; limit <= 0 means all.
func (e *Engine) History(ctx context.Context, folder, path string, limit int) ([]gitstore.Change, error) {
	st, err := e.store(folder)
	if err != nil {
		return nil, err
	}
	return st.History(ctx, path, limit)
}

// Restore puts path back to its content at rev as a new commit that touches
// only that file (undelete is a restore to a revision where the file
// existed), writes it into the folder, and tells the peers. Local edits are
// committed first, so no version is lost.
func (e *Engine) Restore(ctx context.Context, folder, path string, rev gitstore.Hash) (gitstore.Change, error) {
	if err := e.owner(); err != nil {
		return gitstore.Change{}, err
	}
	st, err := e.store(folder)
	if err != nil {
		return gitstore.Change{}, err
	}
	c, err := st.Restore(ctx, path, rev)
	if err != nil {
		return c, fmt.Errorf("sync: restore %q in %q: %w", path, folder, err)
	}
	if !c.Commit.IsZero() {
		e.emit(Event{Kind: EventLocalChanges, Folder: folder, Changes: []gitstore.Change{c}, Head: c.Commit})
		e.announce(folder)
	}
	return c, nil
}

// AllowMassDelete confirms a deletion that the mass-delete guard refused in
// folder (see gitstore's "Guards"): it scans the folder with the permission
// (a local deletion), then integrates each sharing peer's last received
// head with the permission (a deletion that came from that peer). Each
// permission is withdrawn after its operation, so none stays armed for a
// later deletion. It returns the local commits made.
func (e *Engine) AllowMassDelete(ctx context.Context, folder string) ([]gitstore.Change, error) {
	if err := e.owner(); err != nil {
		return nil, err
	}
	st, err := e.store(folder)
	if err != nil {
		return nil, err
	}
	st.AllowMassDeleteOnce()
	changes, err := e.scanFolder(ctx, folder)
	st.DisallowMassDelete()
	if err != nil {
		return changes, err
	}
	e.mu.Lock()
	var peers []crypto.DeviceID
	for _, p := range e.conf.Peers {
		if e.conf.shares(p.Device, folder) {
			peers = append(peers, p.Device)
		}
	}
	e.mu.Unlock()
	for _, d := range peers {
		if h, err := st.PeerHead(d.String()); err != nil || h.IsZero() {
			continue
		}
		st.AllowMassDeleteOnce()
		res, err := st.IntegratePeer(ctx, d.String())
		st.DisallowMassDelete()
		if err != nil {
			return changes, fmt.Errorf("sync: integrate %s into %q: %w", d.Short(), folder, err)
		}
		if res.Kind != gitstore.UpToDate {
			e.emit(Event{Kind: EventRemoteApplied, Peer: d, Folder: folder, Head: res.Head, Paths: res.Changed, Conflicts: res.Conflicts})
			e.announce(folder)
		}
	}
	e.mu.Lock()
	e.folderLocked(folder).paused = nil
	e.mu.Unlock()
	e.folderOK(folder)
	return changes, nil
}
