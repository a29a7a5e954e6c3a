package sync

import (
	"context"
	"fmt"
	"io"

	"github.com/peersync/peersync/gitstore"
)

// FileEntry is one entry of a folder's directory in some revision (see
// [Engine.ListFiles]).
type FileEntry = gitstore.FileEntry

// ListFiles lists directory dir ("" = the root) of folder as it is in
// commit rev, or at the folder's head when rev is zero: directories first,
// then files, by name. It reads committed history only (what a scan or a
// peer committed), never the disk, and never waits for a scan or an apply.
// An unknown folder gives an error wrapping [ErrUnknownFolder]; a dir or
// rev that does not exist one wrapping fs.ErrNotExist.
func (e *Engine) ListFiles(ctx context.Context, folder string, rev gitstore.Hash, dir string) ([]FileEntry, error) {
	st, err := e.store(folder)
	if err != nil {
		return nil, err
	}
	list, err := st.ListFiles(ctx, rev, dir)
	if err != nil {
		return nil, fmt.Errorf("sync: folder %q: %w", folder, err)
	}
	return list, nil
}

// OpenFile opens the content of the file at path in folder as committed in
// rev, or at the folder's head when rev is zero, and returns it with its
// size; the caller closes it. Old versions come this way: a commit from
// [Engine.History] as rev. Errors as for ListFiles; a directory is an
// error too.
func (e *Engine) OpenFile(ctx context.Context, folder string, rev gitstore.Hash, path string) (io.ReadCloser, int64, error) {
	st, err := e.store(folder)
	if err != nil {
		return nil, 0, err
	}
	rc, n, err := st.OpenFile(ctx, rev, path)
	if err != nil {
		return nil, 0, fmt.Errorf("sync: folder %q: %w", folder, err)
	}
	return rc, n, nil
}
