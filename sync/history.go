package sync

import (
	"context"
	"fmt"

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

// AllowMassDelete confirms, for the next scan or bundle of folder, a
// deletion that the mass-delete guard refused (see gitstore's "Guards"),
// and scans the folder at once.
func (e *Engine) AllowMassDelete(ctx context.Context, folder string) ([]gitstore.Change, error) {
	st, err := e.store(folder)
	if err != nil {
		return nil, err
	}
	st.AllowMassDeleteOnce()
	return e.scanFolder(ctx, folder)
}
