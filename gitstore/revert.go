package gitstore

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// Differs returns the paths of the files whose content or mode at main
// differs from commit rev (present in one, absent in the other, or
// different), sorted. It does not scan: edits not yet committed are not
// seen. A zero rev is the empty tree.
func (s *Store) Differs(rev Hash) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	_, root, err := s.headTreeLocked()
	if err != nil {
		return nil, err
	}
	at, err := s.commitTreeLocked(rev.plumbing())
	if err != nil {
		return nil, fmt.Errorf("gitstore: differs from %s: %w", rev, err)
	}
	var out []string
	diffNodes("", root, at, &out)
	slices.Sort(out)
	return out, nil
}

// diffNodes appends to out the paths of the files that differ between a and
// b (either may be nil, an empty directory). Subtrees with the same known
// hash are skipped.
func diffNodes(prefix string, a, b *dirNode, out *[]string) {
	if a != nil && b != nil && a.clean && b.clean && a.hash == b.hash {
		return
	}
	join := func(name string) string {
		if prefix == "" {
			return name
		}
		return path.Join(prefix, name)
	}
	files := func(d *dirNode) map[string]fileEntry {
		if d == nil {
			return nil
		}
		return d.files
	}
	dirs := func(d *dirNode) map[string]*dirNode {
		if d == nil {
			return nil
		}
		return d.dirs
	}
	fa, fb := files(a), files(b)
	for name, ea := range fa {
		if eb, ok := fb[name]; !ok || !sameFile(ea, eb) {
			*out = append(*out, join(name))
		}
	}
	for name := range fb {
		if _, ok := fa[name]; !ok {
			*out = append(*out, join(name))
		}
	}
	da, db := dirs(a), dirs(b)
	for name, sa := range da {
		diffNodes(join(name), sa, db[name], out)
	}
	for name, sb := range db {
		if _, ok := da[name]; !ok {
			diffNodes(join(name), nil, sb, out)
		}
	}
}

// sameFile compares two tree entries as Restore does: a deprecated mode is
// a regular file.
func sameFile(a, b fileEntry) bool {
	norm := func(e fileEntry) fileEntry {
		if e.mode == filemode.Deprecated {
			e.mode = filemode.Regular
		}
		return e
	}
	return norm(a) == norm(b)
}

// Revert puts every file of the folder back to its state at commit rev, as
// new commits on main, one per file (as Restore makes them): the versions
// it replaces stay in the history. Local edits are committed first, as by
// Scan. Files absent at rev are deleted before the others are written, so
// that a file may replace a directory and the reverse.
//
// It returns the commits made, in order (none when the folder already
// matches rev). An error stops it part way: the commits made so far are
// returned with it, and calling Revert again finishes the work. Errors are
// those of Restore (ErrLocalEdit when a file is edited during the revert,
// ErrNotInitialized when the folder guard trips) and an unknown rev.
//
// Each file costs one Restore (including its scan of local edits), so a
// revert of many files takes as long as that many restores.
func (s *Store) Revert(ctx context.Context, rev Hash) ([]Change, error) {
	if _, err := s.Scan(ctx); err != nil {
		return nil, err
	}
	paths, err := s.Differs(rev)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	at, err := s.commitTreeLocked(rev.plumbing())
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("gitstore: revert to %s: %w", rev, err)
	}
	// Deletions first: a directory must be gone before a file takes its
	// name, and a file before a directory does.
	slices.SortStableFunc(paths, func(a, b string) int {
		_, ina := at.get(a)
		_, inb := at.get(b)
		switch {
		case ina == inb:
			return 0
		case !ina:
			return -1
		default:
			return 1
		}
	})
	var out []Change
	for _, p := range paths {
		if isDirIn(at, p) {
			// A file where rev has a directory: Restore cannot put a
			// directory back, so the file is deleted (if it still holds
			// its committed content) and the deletion committed by a scan.
			// The directory's files come after it in paths.
			changes, err := s.removeForDir(ctx, p)
			out = append(out, changes...)
			if err != nil {
				return out, fmt.Errorf("gitstore: revert to %s: %w", rev, err)
			}
			continue
		}
		c, err := s.Restore(ctx, p, rev)
		if err != nil {
			return out, fmt.Errorf("gitstore: revert to %s: %w", rev, err)
		}
		if !c.Commit.IsZero() {
			out = append(out, c)
		}
	}
	return out, nil
}

// isDirIn reports whether p is a directory in d.
func isDirIn(d *dirNode, p string) bool {
	for _, c := range strings.Split(p, "/") {
		if d = d.dirs[c]; d == nil {
			return false
		}
	}
	return true
}

// removeForDir deletes the committed file p from the folder and commits
// that with a scan. A file edited since it was committed is left alone
// (ErrLocalEdit).
func (s *Store) removeForDir(ctx context.Context, p string) ([]Change, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	_, root, err := s.headTreeLocked()
	if err == nil {
		cur, had := root.get(p)
		var ok bool
		if ok, err = s.diskHasLocked(p, cur, had); err == nil && !ok {
			err = fmt.Errorf("%q: %w", p, ErrLocalEdit)
		}
		if err == nil && had {
			err = s.removeFileLocked(p)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.Scan(ctx)
}
