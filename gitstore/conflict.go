package gitstore

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Conflict is a conflict copy in main's tree (see "Merge rule") and the
// file it is a copy of, as [Store.Conflicts] lists them.
type Conflict struct {
	// Copy is the conflict copy's path; Original the path whose conflict
	// made it (the copy's name without its ".sync-conflict-…" part).
	Copy     string `json:"copy"`
	Original string `json:"original"`
	// CopySide and OriginalSide say who made each content and when.
	CopySide     ConflictSide `json:"copySide"`
	OriginalSide ConflictSide `json:"originalSide"`
}

// ConflictSide is one side of a conflict: the content now at a path and the
// change that made it.
type ConflictSide struct {
	// Exists is false when the path holds no file now (the original was
	// deleted or renamed after the conflict).
	Exists bool `json:"exists"`
	// Object is the content's blob and Size its size in bytes (zero when
	// !Exists). Equal objects mean equal contents.
	Object Hash  `json:"object"`
	Size   int64 `json:"size"`
	// Change is the commit that made this content: who (Author, and From,
	// the device that delivered it) and when (Time): of the original
	// path's two newest changes, the one that left it with this content
	// (for a copy, the losing edit). When neither did (the original was
	// edited again since), a copy's Time and Author come from its name:
	// Author is then "DEV7 <DEV7@peersync>", the device's first characters.
	Change Change `json:"change"`
}

// Keep says which side [Store.ResolveConflict] keeps.
type Keep string

// The sides a conflict can be resolved to.
const (
	KeepCopy     Keep = "copy"     // the copy's content goes to the original path
	KeepOriginal Keep = "original" // the original stays as it is
)

// ErrNotConflictCopy is returned by [Store.ResolveConflict] for a path that
// is not a conflict copy in main.
var ErrNotConflictCopy = errors.New("gitstore: not a conflict copy")

// conflictSearch is how many changes of the original path are read to
// find the commits that made the two sides (see conflictChanges).
const conflictSearch = 2

// OriginalOf returns the path a conflict copy was made for (copy without its
// ".sync-conflict-YYYYMMDD-HHMMSS-DEV" part, and the "-hex7" after DEV when
// there is one), and false when p's name is not a conflict copy's.
func OriginalOf(p string) (string, bool) {
	dir, base := path.Split(p)
	loc := conflictMarker.FindStringSubmatchIndex(base)
	if loc == nil || loc[0] == 0 {
		return "", false
	}
	return dir + base[:loc[0]] + base[loc[1]:], true
}

// copyMark returns the time and device part written in copy's name.
func copyMark(p string) (time.Time, string) {
	m := conflictMarker.FindStringSubmatch(path.Base(p))
	if m == nil {
		return time.Time{}, ""
	}
	t, _ := time.Parse("20060102-150405", m[1])
	dev := m[2]
	if i := strings.LastIndexByte(dev, '-'); i >= 0 && len(dev)-i-1 == 7 {
		dev = dev[:i] // "-hex7" of the content, see placeCopy
	}
	return t, dev
}

// Conflicts lists the conflict copies in main's tree, in path order, each
// with the file it is a copy of and who made each side and when. Like
// [Store.History] it never waits for a write; it walks the whole tree, so
// it costs a listing of the folder.
func (s *Store) Conflicts(ctx context.Context) ([]Conflict, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	st, unlock, root, err := s.browseView(Hash{})
	if err != nil {
		return nil, fmt.Errorf("gitstore: conflicts: %w", err)
	}
	if root.IsZero() {
		unlock()
		return []Conflict{}, nil
	}
	out := []Conflict{}
	err = func() error {
		defer unlock()
		t, err := object.GetTree(st, root)
		if err != nil {
			return fmt.Errorf("gitstore: conflicts: tree %s: %w", root, err)
		}
		r := objReader{st}
		side := func(p string) (ConflictSide, error) {
			e, err := r.entryInTree(root, p)
			if err != nil || !e.ok || e.isDir() {
				return ConflictSide{}, err
			}
			n, err := st.EncodedObjectSize(e.hash)
			return ConflictSide{Exists: true, Object: fromPlumbing(e.hash), Size: n}, err
		}
		// Only tree objects are read (go-git's Tree.Files reads every blob).
		var walk func(t *object.Tree, dir string) error
		walk = func(t *object.Tree, dir string) error {
			if err := ctxErr(ctx); err != nil {
				return err
			}
			for _, te := range t.Entries {
				p := dir + te.Name
				if te.Mode == filemode.Dir {
					sub, err := object.GetTree(st, te.Hash)
					if err != nil {
						return fmt.Errorf("gitstore: conflicts: tree %s: %w", te.Hash, err)
					}
					if err := walk(sub, p+"/"); err != nil {
						return err
					}
					continue
				}
				orig, ok := OriginalOf(p)
				if !ok || te.Mode == filemode.Submodule {
					continue
				}
				c := Conflict{Copy: p, Original: orig}
				var err error
				if c.CopySide, err = side(p); err != nil {
					return err
				}
				if c.OriginalSide, err = side(orig); err != nil {
					return err
				}
				out = append(out, c)
			}
			return nil
		}
		return walk(t, "")
	}()
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := s.conflictChanges(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// conflictChanges fills in the changes that made c's two sides, from the
// original path's two newest changes: the one that left it with the
// original's content, and the one that left it with the copy's (the losing
// edit). Two, not one: the edits that conflicted may carry the same second,
// and then either can come first. When the copy's is not among them (the
// original was edited again since) or the original is gone, the copy's
// change is the time and device written in its name. Only these two are
// read: History walks back until it has them, and a deeper search would
// walk a long history at every listing.
func (s *Store) conflictChanges(ctx context.Context, c *Conflict) error {
	when, dev := copyMark(c.Copy)
	c.CopySide.Change = Change{Path: c.Original, Time: when, Author: dev + " <" + dev + "@peersync>"}
	if !c.OriginalSide.Exists {
		return nil
	}
	hist, err := s.History(ctx, c.Original, conflictSearch)
	if err != nil || len(hist) == 0 {
		return err
	}
	c.OriginalSide.Change = hist[0]
	st, unlock, _, err := s.browseView(Hash{})
	if err != nil {
		return fmt.Errorf("gitstore: conflicts: %w", err)
	}
	defer unlock()
	r := objReader{st}
	for i := len(hist) - 1; i >= 0; i-- { // the newest match wins
		h := hist[i]
		if h.Action == ActionDelete {
			continue
		}
		cm, err := r.commit(h.Commit.plumbing())
		if err != nil {
			return err
		}
		e, err := r.entryInTree(cm.TreeHash, c.Original)
		if err != nil {
			return err
		}
		switch b := fromPlumbing(e.hash); {
		case !e.ok || e.isDir():
		case b == c.OriginalSide.Object:
			c.OriginalSide.Change = h
		case b == c.CopySide.Object:
			c.CopySide.Change = h
		}
	}
	return nil
}

// ResolveConflict ends the conflict of copy (a conflict copy in main, see
// [Store.Conflicts]): with KeepCopy the copy's content and mode are written
// to the original path as a new commit ("add" or "modify" of the
// original), then the copy is deleted as another; with KeepOriginal the
// copy is deleted and the original stays. Each commit is an ordinary
// one-file commit, so the resolution syncs like any edit, and both
// contents stay in the history.
//
// Local edits are committed first, as by [Store.Restore]; the content kept
// is the copy's as committed then. A file edited on disk while this runs is
// left alone and the error wraps [ErrLocalEdit] (nothing committed). A path
// that is not a conflict copy in main gives an error wrapping
// [ErrNotConflictCopy]; an original path blocked by a directory another
// error. It returns the commits made, in order.
func (s *Store) ResolveConflict(ctx context.Context, copy string, keep Keep) ([]Change, error) {
	if err := ValidPath(copy); err != nil {
		return nil, fmt.Errorf("gitstore: resolve %q: %w", copy, err)
	}
	orig, ok := OriginalOf(copy)
	if !ok {
		return nil, fmt.Errorf("gitstore: resolve %q: %w", copy, ErrNotConflictCopy)
	}
	if keep != KeepCopy && keep != KeepOriginal {
		return nil, fmt.Errorf("gitstore: resolve %q: keep %q: want %q or %q", copy, keep, KeepCopy, KeepOriginal)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if _, err := s.scanLocked(ctx); err != nil { // local edits first; the folder guard
		return nil, err
	}
	head, root, err := s.headTreeLocked()
	if err != nil {
		return nil, err
	}
	kept, ok := root.get(copy)
	if !ok {
		return nil, fmt.Errorf("gitstore: resolve %q: %w", copy, ErrNotConflictCopy)
	}
	if kept.mode == filemode.Symlink && !s.opts.allowSymlinks {
		return nil, fmt.Errorf("gitstore: resolve %q: a symlink and symlinks are not allowed", copy)
	}
	cur, had := root.get(orig)
	var todo []pendingChange
	if keep == KeepCopy && (!had || cur != kept) {
		if err := treeBlocked(root, orig); err != nil {
			return nil, fmt.Errorf("gitstore: resolve %q: %w", copy, err)
		}
		if err := s.holdableInLocked(root, orig); err != nil {
			return nil, fmt.Errorf("gitstore: resolve %q: %w", copy, err)
		}
		action := ActionModify
		if !had {
			action = ActionAdd
		}
		todo = append(todo, pendingChange{action: action, path: orig, entry: kept})
	}
	todo = append(todo, pendingChange{action: ActionDelete, path: copy})
	// Both files must still be as committed: an edit may have raced in
	// since the scan. Checked for all before anything is written.
	for _, pc := range todo {
		want, present := root.get(pc.path)
		if ok, err := s.diskHasLocked(pc.path, want, present); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("gitstore: resolve %q: %q: %w", copy, pc.path, ErrLocalEdit)
		}
	}
	// Disk first, then the commits (as Restore): a crash in between leaves
	// files the next scan commits.
	for _, pc := range todo {
		if pc.action == ActionDelete {
			if err := s.removeFileLocked(pc.path); err != nil {
				return nil, err
			}
			continue
		}
		if wrote, err := s.writeFileLocked(pc.path, pc.entry); err != nil {
			return nil, err
		} else if !wrote {
			return nil, fmt.Errorf("gitstore: resolve %q: %q blocked on disk by a directory, file or symlink", copy, pc.path)
		}
	}
	if err := s.saveStatCacheLocked(); err != nil {
		s.opts.log.Warn("gitstore: save stat cache", "err", err)
	}
	s.beginPackLocked()
	defer s.abortPackLocked()
	out, err := s.commitChangesLocked(context.WithoutCancel(ctx), head, root, todo)
	if err != nil {
		return nil, err
	}
	s.opts.log.Info("gitstore: conflict resolved", "copy", copy, "keep", string(keep), "commits", len(out))
	return out, nil
}
