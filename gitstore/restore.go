package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrLocalEdit is returned by [Store.Restore] when the file was edited on
// disk while the restore ran; nothing was committed and the edit was kept.
// Retrying commits the edit first, then restores.
var ErrLocalEdit = errors.New("gitstore: file edited during restore")

// Restore puts the file at path back to its content and mode at commit rev,
// as a new commit on main that touches only that file ("add <path>" or
// "modify <path>"), and writes it into the folder through the safe checkout
// (temporary file, fsync, rename). If path did not exist at rev, the file is
// deleted as a new commit ("delete <path>"). Undeleting a file is restoring
// it to a revision where it existed, for instance the parent of its
// "delete" commit as listed by [Store.History].
//
// Local edits are committed first, as by [Store.Scan], so no version is
// lost: the edit that Restore replaces stays in the history. When the file
// already has rev's content (or is absent at both), nothing is committed and
// the zero Change is returned.
//
// It returns an error for an invalid path, an unknown rev, a directory at
// rev, or a file whose parent is a file (or that is a directory) now; an
// error wrapping [ErrLocalEdit] when the file changes on disk during the
// restore; an error wrapping [ErrNotInitialized] when the folder guard
// trips; and a *[MassDeleteError] if the scan before the restore is refused.
func (s *Store) Restore(ctx context.Context, path string, rev Hash) (Change, error) {
	if err := ValidPath(path); err != nil {
		return Change{}, fmt.Errorf("gitstore: restore %q: %w", path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Change{}, ErrClosed
	}
	if err := ctxErr(ctx); err != nil {
		return Change{}, err
	}
	// Commit local edits first (this also applies the folder guard).
	if _, err := s.scanLocked(ctx); err != nil {
		return Change{}, err
	}
	c, err := object.GetCommit(s.st, rev.plumbing())
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return Change{}, fmt.Errorf("gitstore: restore %q: unknown commit %s", path, rev)
	} else if err != nil {
		return Change{}, fmt.Errorf("gitstore: restore %q: commit %s: %w", path, rev, err)
	}
	at, err := s.entryInTreeLocked(c.TreeHash, path)
	if err != nil {
		return Change{}, err
	}
	if at.isDir() {
		return Change{}, fmt.Errorf("gitstore: restore %q: a directory at %s", path, rev)
	}
	want := fileEntry{mode: at.mode, hash: at.hash}
	if want.mode == filemode.Symlink && !s.opts.allowSymlinks {
		return Change{}, fmt.Errorf("gitstore: restore %q: a symlink at %s and symlinks are not allowed", path, rev)
	}
	if want.mode == filemode.Deprecated {
		want.mode = filemode.Regular
	}
	head, root, err := s.headTreeLocked()
	if err != nil {
		return Change{}, err
	}
	cur, had := root.get(path)
	if !at.ok && !had || at.ok && had && cur == want {
		return Change{}, nil
	}
	if err := treeBlocked(root, path); err != nil {
		return Change{}, fmt.Errorf("gitstore: restore %q: %w", path, err)
	}
	if err := s.holdableInLocked(root, path); err != nil {
		return Change{}, fmt.Errorf("gitstore: restore %q: %w", path, err)
	}
	// The file must still be the committed version: an edit may have raced
	// in since the scan.
	if ok, err := s.diskHasLocked(path, cur, had); err != nil {
		return Change{}, err
	} else if !ok {
		return Change{}, fmt.Errorf("gitstore: restore %q: %w", path, ErrLocalEdit)
	}

	// Disk first, then the commit: a crash in between leaves the restored
	// file on disk, which the next Scan commits (the same content).
	action := ActionModify
	switch {
	case !at.ok:
		action = ActionDelete
		if err := s.removeFileLocked(path); err != nil {
			return Change{}, err
		}
	case !had:
		action = ActionAdd
		fallthrough
	default:
		wrote, err := s.writeFileLocked(path, want)
		if err != nil {
			return Change{}, err
		}
		if !wrote {
			return Change{}, fmt.Errorf("gitstore: restore %q: blocked on disk by a directory, file or symlink", path)
		}
	}
	if err := s.saveStatCacheLocked(); err != nil {
		s.opts.log.Warn("gitstore: save stat cache", "err", err)
	}
	// The file is on disk now: commit it even if ctx ends meanwhile. The
	// commit and its trees go through the pack writer, as a scan's do.
	s.beginPackLocked()
	defer s.abortPackLocked()
	out, err := s.commitChangesLocked(context.WithoutCancel(ctx), head, root,
		[]pendingChange{{action: action, path: path, entry: want}})
	if err != nil {
		return Change{}, err
	}
	s.opts.log.Info("gitstore: restored", "path", path, "rev", rev, "commit", out[0].Commit)
	return out[0], nil
}

// treeBlocked reports an error when a file cannot be put at p in d: a parent
// of p is a file, or p is a directory.
func treeBlocked(d *dirNode, p string) error {
	parts := strings.Split(p, "/")
	for i, c := range parts[:len(parts)-1] {
		if _, isFile := d.files[c]; isFile {
			return fmt.Errorf("parent %q is a file", strings.Join(parts[:i+1], "/"))
		}
		if d = d.dirs[c]; d == nil {
			return nil
		}
	}
	if _, isDir := d.dirs[parts[len(parts)-1]]; isDir {
		return fmt.Errorf("%q is a directory", p)
	}
	return nil
}

// removeFileLocked deletes the file at p (which the caller checked holds the
// committed content) and then its emptied parent directories.
func (s *Store) removeFileLocked(p string) error {
	abs := filepath.Join(s.dir, filepath.FromSlash(p))
	if err := os.Remove(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("gitstore: checkout: %w", err)
	}
	s.fst.stats.drop(p)
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if os.Remove(filepath.Join(s.dir, filepath.FromSlash(d))) != nil {
			break // not empty (or already gone)
		}
	}
	return nil
}
