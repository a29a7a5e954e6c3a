package gitstore

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// lastTouchesLocked returns, for each of paths, the commit that made the
// path's entry in head what it is: the newest commit on head's first-parent
// chain whose entry differs from its first parent's (the root commit when
// none does) and, when that is a merge that took the entry from another
// parent, the same search from that parent on. A merge is named only for
// what it made itself (a conflict copy): it carries the signature of its
// newer parent, so naming a conflict copy after it gave different contents
// the same copy name on different devices, and the copies conflicted again
// when those devices met (nested conflict copies).
func (s *Store) lastTouchesLocked(head *object.Commit, paths []string) (map[string]*object.Commit, error) {
	out, err := s.firstParentTouchesLocked(head, paths)
	if err != nil {
		return nil, err
	}
	todo := paths
	for len(todo) > 0 {
		// The paths whose entry a merge took from parent ph, by ph.
		from := map[plumbing.Hash][]string{}
		for _, p := range todo {
			ph, ok, err := s.entrySourceLocked(out[p], p)
			if err != nil {
				return nil, err
			}
			if ok {
				from[ph] = append(from[ph], p)
			}
		}
		todo = todo[:0:0]
		for _, ph := range sortedHashes(from) {
			parent, err := s.commitLocked(ph)
			if err != nil {
				return nil, err
			}
			sub, err := s.firstParentTouchesLocked(parent, from[ph])
			if err != nil {
				return nil, err
			}
			for p, c := range sub {
				out[p] = c
				todo = append(todo, p)
			}
		}
	}
	return out, nil
}

// entrySourceLocked returns, when c is a merge whose entry at p (differing
// from its first parent's) equals that of a later parent, that parent.
func (s *Store) entrySourceLocked(c *object.Commit, p string) (plumbing.Hash, bool, error) {
	if c == nil || len(c.ParentHashes) < 2 {
		return plumbing.ZeroHash, false, nil
	}
	mine, err := s.entryAtLocked(c.TreeHash, p)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	for _, ph := range c.ParentHashes[1:] {
		pc, err := s.commitLocked(ph)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		theirs, err := s.entryAtLocked(pc.TreeHash, p)
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
		if theirs == mine {
			return ph, true, nil
		}
	}
	return plumbing.ZeroHash, false, nil
}

// entryAtLocked returns the entry of path p in tree t (zero when absent).
func (s *Store) entryAtLocked(t plumbing.Hash, p string) (fileEntry, error) {
	w := &touchWalk{s: s, prev: map[plumbing.Hash][]byte{}, cur: map[plumbing.Hash][]byte{}}
	for {
		name, rest, more := strings.Cut(p, "/")
		b, err := w.tree(t)
		if err != nil {
			return fileEntry{}, err
		}
		var e rawEnt
		for ok := true; ok; {
			if e, b, ok, err = nextEnt(b); err != nil {
				return fileEntry{}, err
			}
			if ok && string(e.name) == name {
				break
			}
		}
		switch {
		case string(e.name) != name:
			return fileEntry{}, nil
		case !more:
			return fileEntry{mode: e.mode, hash: e.hash}, nil
		case !e.isDir():
			return fileEntry{}, nil
		}
		t, p = e.hash, rest
	}
}

func sortedHashes[V any](m map[plumbing.Hash]V) []plumbing.Hash {
	out := make([]plumbing.Hash, 0, len(m))
	for h := range m {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// firstParentTouchesLocked returns, for each of paths, the newest commit on
// head's first-parent chain whose entry at the path differs from its first
// parent's (the root commit when none does). It walks the chain once for
// all paths, comparing each commit's tree with its parent's: subtrees with
// equal names, and those holding none of the paths still looked for, are
// not read, and each tree read is used for two consecutive commits. So the
// cost is one pass over the history, not one per path.
func (s *Store) firstParentTouchesLocked(head *object.Commit, paths []string) (map[string]*object.Commit, error) {
	out := make(map[string]*object.Commit, len(paths))
	if len(paths) == 0 {
		return out, nil
	}
	lt := &touchWalk{s: s, pending: map[string]bool{}, dirs: map[string]int{},
		prev: map[plumbing.Hash][]byte{}, cur: map[plumbing.Hash][]byte{}}
	for _, p := range paths {
		if lt.pending[p] {
			continue
		}
		lt.pending[p] = true
		lt.eachDir(p, 1)
	}
	c := head
	for len(lt.pending) > 0 {
		if len(c.ParentHashes) == 0 {
			for p := range lt.pending {
				out[p] = c
			}
			break
		}
		parent, err := s.commitLocked(c.ParentHashes[0])
		if err != nil {
			return nil, err
		}
		lt.touched = lt.touched[:0]
		if err := lt.diff(c.TreeHash, parent.TreeHash, ""); err != nil {
			return nil, err
		}
		for _, p := range lt.touched {
			if lt.pending[p] {
				delete(lt.pending, p)
				lt.eachDir(p, -1)
				out[p] = c
			}
		}
		// The parent's trees are the next commit's own.
		lt.prev, lt.cur = lt.cur, lt.prev
		clear(lt.cur)
		c = parent
	}
	return out, nil
}

// touchWalk is the state of one lastTouchesLocked walk.
type touchWalk struct {
	s       *Store
	pending map[string]bool // paths not resolved yet
	dirs    map[string]int  // directory ("" = root) -> pending paths under it
	touched []string        // pending paths the current step changed
	// Raw trees read at the previous step (prev) and this one (cur).
	prev, cur map[plumbing.Hash][]byte
}

// eachDir adds d to the count of every directory above p.
func (w *touchWalk) eachDir(p string, d int) {
	w.dirs[""] += d
	for i := strings.IndexByte(p, '/'); i >= 0; i = nextSlash(p, i) {
		w.dirs[p[:i]] += d
	}
}

// tree returns raw tree h; the zero hash is the empty tree.
func (w *touchWalk) tree(h plumbing.Hash) ([]byte, error) {
	if h.IsZero() {
		return nil, nil
	}
	if b, ok := w.cur[h]; ok {
		return b, nil
	}
	b, ok := w.prev[h]
	if !ok {
		o, err := w.s.st.EncodedObject(plumbing.TreeObject, h)
		if err != nil {
			return nil, fmt.Errorf("gitstore: tree %s: %w", h, err)
		}
		rc, err := o.Reader()
		if err != nil {
			return nil, fmt.Errorf("gitstore: tree %s: %w", h, err)
		}
		b, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("gitstore: tree %s: %w", h, err)
		}
	}
	w.cur[h] = b
	return b, nil
}

// rawEnt is a parsed tree entry; name points into the raw tree.
type rawEnt struct {
	mode filemode.FileMode
	name []byte
	hash plumbing.Hash
}

func (e rawEnt) isDir() bool { return e.mode == filemode.Dir }

// nextEnt parses the first entry of raw tree b; ok is false at its end.
func nextEnt(b []byte) (e rawEnt, rest []byte, ok bool, err error) {
	if len(b) == 0 {
		return e, nil, false, nil
	}
	mode, name, h, rest, ok := parseTreeEntry(b)
	if !ok {
		return e, nil, false, fmt.Errorf("gitstore: malformed tree")
	}
	return rawEnt{mode, name, h}, rest, true, nil
}

// compareEnt orders entries as git sorts a tree: by name, a directory's
// name compared as if it ended in "/".
func compareEnt(a, b rawEnt) int {
	n := min(len(a.name), len(b.name))
	if c := bytes.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	ca, cb := entTail(a, n), entTail(b, n)
	switch {
	case ca < cb:
		return -1
	case ca > cb:
		return 1
	}
	return 0
}

func entTail(e rawEnt, n int) int {
	switch {
	case n < len(e.name):
		return int(e.name[n])
	case e.isDir():
		return '/'
	}
	return -1 // the name ends here: sorts first (0 would tie with a NUL)
}

// diff records in w.touched the pending paths under dir whose entry
// differs between trees a and b (either may be zero: no tree).
func (w *touchWalk) diff(a, b plumbing.Hash, dir string) error {
	if a == b || w.dirs[dir] == 0 {
		return nil
	}
	ra, err := w.tree(a)
	if err != nil {
		return err
	}
	rb, err := w.tree(b)
	if err != nil {
		return err
	}
	ea, ra, oka, err := nextEnt(ra)
	if err != nil {
		return err
	}
	eb, rb, okb, err := nextEnt(rb)
	if err != nil {
		return err
	}
	for oka || okb {
		c := 0
		switch {
		case !oka:
			c = 1
		case !okb:
			c = -1
		default:
			c = compareEnt(ea, eb)
		}
		switch {
		case c == 0:
			if ea.mode != eb.mode || ea.hash != eb.hash {
				if err := w.changed(dir, ea, ea.hash, eb.hash, ea.isDir()); err != nil {
					return err
				}
			}
		case c < 0:
			if err := w.changed(dir, ea, ea.hash, plumbing.ZeroHash, ea.isDir()); err != nil {
				return err
			}
		default:
			if err := w.changed(dir, eb, plumbing.ZeroHash, eb.hash, eb.isDir()); err != nil {
				return err
			}
		}
		if c <= 0 {
			if ea, ra, oka, err = nextEnt(ra); err != nil {
				return err
			}
		}
		if c >= 0 {
			if eb, rb, okb, err = nextEnt(rb); err != nil {
				return err
			}
		}
	}
	return nil
}

// changed handles entry e under dir that differs between the two trees: a
// pending file is touched; a directory is compared further (ha and hb are
// its two versions, zero where absent).
func (w *touchWalk) changed(dir string, e rawEnt, ha, hb plumbing.Hash, isDir bool) error {
	p := string(e.name)
	if dir != "" {
		p = dir + "/" + p
	}
	if isDir {
		return w.diff(ha, hb, p)
	}
	if w.pending[p] {
		w.touched = append(w.touched, p)
	}
	return nil
}
