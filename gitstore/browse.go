package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// EntryType says what a [FileEntry] is.
type EntryType string

// The entry types ListFiles reports.
const (
	TypeFile    EntryType = "file"    // a regular or executable file
	TypeDir     EntryType = "dir"     // a directory
	TypeSymlink EntryType = "symlink" // a symbolic link; its content is the target
)

// FileEntry is one entry of a directory in a revision of the folder, as
// listed by [Store.ListFiles].
type FileEntry struct {
	// Name is the entry's name in its directory.
	Name string `json:"name"`
	// Path is its slash-separated path from the folder root.
	Path string `json:"path"`
	// Type is file, dir or symlink.
	Type EntryType `json:"type"`
	// Executable is true for a file with the executable bit.
	Executable bool `json:"executable,omitempty"`
	// Size is the content's size in bytes (0 for a directory).
	Size int64 `json:"size"`
	// Object is the git object: the blob of a file or symlink, the tree of
	// a directory. Equal objects mean equal content.
	Object Hash `json:"object"`
}

// ListFiles lists the directory dir ("" or "/" = the folder root) as it is
// in commit rev, or in main when rev is zero: directories first, then files,
// each sorted by name. Entries other than files, directories and symlinks
// (gitlinks made by other tools) are left out.
//
// An empty folder (no commit yet) lists as empty at its root. A dir or rev
// that does not exist gives an error wrapping [fs.ErrNotExist]; a dir that
// is a file, or an invalid path (see [ValidPath]), another error.
//
// Like [Store.History], ListFiles never waits for a write: it reads main as
// last published and objects from the read view.
func (s *Store) ListFiles(ctx context.Context, rev Hash, dir string) ([]FileEntry, error) {
	dir = strings.Trim(dir, "/")
	if dir != "" {
		if err := ValidPath(dir); err != nil {
			return nil, fmt.Errorf("gitstore: list %q: %w", dir, err)
		}
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	st, unlock, root, err := s.browseView(rev)
	if err != nil {
		return nil, fmt.Errorf("gitstore: list %q: %w", dir, err)
	}
	defer unlock()
	if root.IsZero() { // no commit yet
		if dir == "" {
			return []FileEntry{}, nil
		}
		return nil, fmt.Errorf("gitstore: list %q: %w", dir, fs.ErrNotExist)
	}
	r := objReader{viewObjects{st}}
	e, err := r.entryInTree(root, dir)
	switch {
	case err != nil:
		return nil, err
	case !e.ok:
		return nil, fmt.Errorf("gitstore: list %q: %w", dir, fs.ErrNotExist)
	case !e.isDir():
		return nil, fmt.Errorf("gitstore: list %q: not a directory", dir)
	}
	t, err := object.GetTree(st, e.hash)
	if err != nil {
		return nil, fmt.Errorf("gitstore: tree %s: %w", e.hash, err)
	}
	out := make([]FileEntry, 0, len(t.Entries))
	for _, te := range t.Entries {
		fe := FileEntry{Name: te.Name, Path: te.Name, Object: fromPlumbing(te.Hash)}
		if dir != "" {
			fe.Path = dir + "/" + te.Name
		}
		switch te.Mode {
		case filemode.Dir:
			fe.Type = TypeDir
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			fe.Type, fe.Executable = TypeFile, te.Mode == filemode.Executable
		case filemode.Symlink:
			fe.Type = TypeSymlink
		default:
			continue
		}
		if fe.Type != TypeDir {
			if fe.Size, err = st.EncodedObjectSize(te.Hash); err != nil {
				return nil, fmt.Errorf("gitstore: list %q: %s: %w", dir, te.Name, err)
			}
		}
		out = append(out, fe)
	}
	sort.Slice(out, func(i, j int) bool {
		if di, dj := out[i].Type == TypeDir, out[j].Type == TypeDir; di != dj {
			return di
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// OpenFile opens the content of the file (or symlink: its target) at path
// in commit rev, or in main when rev is zero, and returns it with its size.
// The caller closes the reader. The reader streams large files from the
// object store and stays readable while the store changes (objects never
// change); it holds no lock of the store.
//
// A path or rev that does not exist gives an error wrapping
// [fs.ErrNotExist]; a directory or an invalid path another error.
func (s *Store) OpenFile(ctx context.Context, rev Hash, path string) (io.ReadCloser, int64, error) {
	if err := ValidPath(path); err != nil {
		return nil, 0, fmt.Errorf("gitstore: open %q: %w", path, err)
	}
	if err := ctxErr(ctx); err != nil {
		return nil, 0, err
	}
	st, unlock, root, err := s.browseView(rev)
	if err != nil {
		return nil, 0, fmt.Errorf("gitstore: open %q: %w", path, err)
	}
	defer unlock()
	if root.IsZero() {
		return nil, 0, fmt.Errorf("gitstore: open %q: %w", path, fs.ErrNotExist)
	}
	e, err := objReader{viewObjects{st}}.entryInTree(root, path)
	switch {
	case err != nil:
		return nil, 0, err
	case !e.ok:
		return nil, 0, fmt.Errorf("gitstore: open %q: %w", path, fs.ErrNotExist)
	case e.isDir():
		return nil, 0, fmt.Errorf("gitstore: open %q: is a directory", path)
	case e.mode == filemode.Submodule:
		return nil, 0, fmt.Errorf("gitstore: open %q: a gitlink, not a file", path)
	}
	o, err := st.EncodedObject(plumbing.BlobObject, e.hash)
	if err != nil {
		return nil, 0, fmt.Errorf("gitstore: open %q: blob %s: %w", path, e.hash, err)
	}
	// The reader of a large object opens the pack (or loose object) file
	// itself, and a small one is in memory: neither needs the view's lock
	// once it exists.
	rc, err := o.Reader()
	if err != nil {
		return nil, 0, fmt.Errorf("gitstore: open %q: blob %s: %w", path, e.hash, err)
	}
	return rc, o.Size(), nil
}

// browseView locks the read view and returns it with the root tree of rev
// (main when rev is zero; the zero hash when main has no commit yet).
func (s *Store) browseView(rev Hash) (*filesystem.Storage, func(), plumbing.Hash, error) {
	head, err := s.Head()
	if err != nil {
		return nil, nil, plumbing.ZeroHash, err
	}
	st, unlock, err := s.view(head.plumbing())
	if err != nil {
		return nil, nil, plumbing.ZeroHash, err
	}
	if rev.IsZero() {
		rev = head
		if rev.IsZero() {
			return st, unlock, plumbing.ZeroHash, nil
		}
	}
	c, err := object.GetCommit(viewObjects{st}, rev.plumbing())
	if err != nil {
		unlock()
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, nil, plumbing.ZeroHash, fmt.Errorf("unknown revision %s: %w", rev, fs.ErrNotExist)
		}
		return nil, nil, plumbing.ZeroHash, fmt.Errorf("revision %s: %w", rev, err)
	}
	return st, unlock, c.TreeHash, nil
}
