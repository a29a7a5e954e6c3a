package gitstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// The object half of WriteBundle's walk (revwalk.go has the commit half).
//
// For each new commit, oldest first, its tree is compared with its parents'
// trees, descending only into subtrees that differ from every parent's
// subtree at the same path; an entry equal to a parent's entry at its path
// is left out (that parent is either sent too, with its objects, or known to
// the peer), and an object already listed is not listed again.
//
// Comparing two versions of a tree entry by entry would parse every entry of
// every version: with one commit per file in a folder of 5,000 files, that
// is 5,000 entries per commit, 500 million for 100,000 commits. Instead the
// raw trees are compared as bytes: the common prefix and suffix (a memcmp)
// hold the unchanged entries, and only the few entries between them are
// parsed. To know where entries start inside the common parts, each tree
// read keeps the offsets of its entries (cobj.ents), and a new version's
// offsets are derived from its previous version's: those of the prefix, the
// parsed middle, those of the suffix shifted by the size difference. A tree
// met without a known previous version (the root commit's, a subtree that
// is new, every tree of a merge) is parsed whole.

// sendObj is an object of the bundle.
type sendObj struct {
	h    plumbing.Hash
	base plumbing.Hash // its previous version (same path, a parent), if any
	// Set while the pack is written: the entry's offset (-1 before) and
	// delta chain length.
	off   int64
	depth int32
}

// sendList is the bundle's objects, in pack order.
type sendList struct {
	objs  []sendObj
	index map[plumbing.Hash]int32
}

func (l *sendList) add(h, base plumbing.Hash) {
	l.index[h] = int32(len(l.objs))
	l.objs = append(l.objs, sendObj{h: h, base: base, off: -1})
}

func (l *sendList) has(h plumbing.Hash) bool {
	_, ok := l.index[h]
	return ok
}

// newObjectsLocked returns the commits, trees and blobs to send for news
// (from newCommitsLocked): the commits and what their trees hold that their
// parents' trees do not hold at the same path, each with its previous
// version (the object at the same path in a parent), a good delta base.
func (s *Store) newObjectsLocked(ctx context.Context, src *objectSource, w *revWalk, news []*walkCommit) (*sendList, error) {
	d := treeDiffer{src: src, list: &sendList{index: make(map[plumbing.Hash]int32, 4*len(news))}}
	for i, c := range news {
		if i%256 == 0 {
			if err := ctxErr(ctx); err != nil {
				return nil, err
			}
		}
		d.list.add(c.h, plumbing.ZeroHash)
		parents := make([]plumbing.Hash, 0, len(c.parents))
		for _, p := range c.parents {
			pw := w.commits[p]
			if pw == nil {
				return nil, fmt.Errorf("gitstore: walk: parent %s of %s not met", p, c.h)
			}
			parents = append(parents, pw.tree)
		}
		if err := d.tree(c.tree, parents); err != nil {
			return nil, err
		}
	}
	return d.list, nil
}

// treeDiffer collects the objects of trees that their parents' trees lack.
type treeDiffer struct {
	src  *objectSource
	list *sendList
}

// treeEntry is a parsed tree entry; name and hash point into the tree.
type treeEntry struct {
	mode uint32
	name []byte
	hash []byte
}

func (e treeEntry) isDir() bool { return e.mode == uint32(filemode.Dir) }

// parseRawEntry parses the entry of data at pos and returns it and where
// the next one starts.
func parseRawEntry(data []byte, pos int) (treeEntry, int, error) {
	var e treeEntry
	i := pos
	for ; i < len(data) && data[i] != ' '; i++ {
		c := data[i]
		if c < '0' || c > '7' || i-pos > 7 {
			return e, 0, errBadTree
		}
		e.mode = e.mode<<3 | uint32(c-'0')
	}
	if i == pos || i >= len(data) {
		return e, 0, errBadTree
	}
	i++
	nul := bytes.IndexByte(data[i:], 0)
	if nul <= 0 || i+nul+21 > len(data) {
		return e, 0, errBadTree
	}
	e.name = data[i : i+nul]
	e.hash = data[i+nul+1 : i+nul+21]
	return e, i + nul + 21, nil
}

var errBadTree = fmt.Errorf("malformed tree")

// loadTree returns tree h with its content.
func (d *treeDiffer) loadTree(h plumbing.Hash) (*cobj, error) {
	o, err := d.src.object(h, true)
	if err != nil {
		return nil, err
	}
	if o.typ != plumbing.TreeObject {
		return nil, fmt.Errorf("gitstore: tree %s: is a %s", h, o.typ)
	}
	return o, nil
}

// index sets o.ents by parsing o whole.
func (d *treeDiffer) index(o *cobj) error {
	if o.ents != nil || len(o.data) == 0 {
		return nil
	}
	before := d.src.cache.size(o)
	ents := d.src.cache.pool.ents(len(o.data)/32 + 1)
	for pos := 0; pos < len(o.data); {
		ents = append(ents, uint32(pos))
		_, next, err := parseRawEntry(o.data, pos)
		if err != nil {
			return fmt.Errorf("gitstore: tree %s: %w", o.h, err)
		}
		pos = next
	}
	o.ents = ents
	d.src.cache.grew(o, before)
	return nil
}

// span is a range of entries [a, b) of a tree.
type span struct{ a, b int }

// tree adds tree h unless a parent tree is the same, then its entries that
// differ from every parent's entry of the same name.
func (d *treeDiffer) tree(h plumbing.Hash, parents []plumbing.Hash) error {
	if d.list.has(h) {
		return nil
	}
	for _, p := range parents {
		if p == h {
			return nil
		}
	}
	var base plumbing.Hash
	if len(parents) > 0 {
		base = parents[0]
	}
	d.list.add(h, base)
	t, err := d.loadTree(h)
	if err != nil {
		return err
	}
	// Loading more may evict these from the cache; pinned, their buffers
	// stay theirs until this returns.
	t.pins++
	defer func() { t.pins-- }()
	pts := make([]*cobj, len(parents))
	for i, p := range parents {
		if pts[i], err = d.loadTree(p); err != nil {
			return err
		}
		pts[i].pins++
		defer func(o *cobj) { o.pins-- }(pts[i])
		if err := d.index(pts[i]); err != nil {
			return err
		}
	}
	// Which entries of t to look at (tSpan), and where to look for the
	// same names in each parent (pSpans).
	tSpan := span{0, -1}
	pSpans := make([]span, len(pts))
	if len(pts) == 1 && t.ents == nil {
		ts, ps, err := d.deriveIndex(t, pts[0])
		if err != nil {
			return err
		}
		tSpan, pSpans[0] = ts, ps
	} else {
		if err := d.index(t); err != nil {
			return err
		}
		tSpan = span{0, len(t.ents)}
		for i, p := range pts {
			pSpans[i] = span{0, len(p.ents)}
		}
	}
	return d.entries(t, tSpan, pts, pSpans)
}

// entries adds t's entries in tSpan that differ from every parent's entry of
// the same name (looked for in pSpans).
func (d *treeDiffer) entries(t *cobj, tSpan span, pts []*cobj, pSpans []span) error {
	pos := make([]int, len(pts))
	for i := range pts {
		pos[i] = pSpans[i].a
	}
	var subParents []plumbing.Hash
	for k := tSpan.a; k < tSpan.b; k++ {
		e, _, err := parseRawEntry(t.data, int(t.ents[k]))
		if err != nil {
			return fmt.Errorf("gitstore: tree %s: %w", t.h, err)
		}
		same := false
		subParents = subParents[:0]
		var prevBlob plumbing.Hash
		for i, p := range pts {
			var pe treeEntry
			found := false
			for pos[i] < pSpans[i].b {
				pe, _, err = parseRawEntry(p.data, int(p.ents[pos[i]]))
				if err != nil {
					return fmt.Errorf("gitstore: tree %s: %w", p.h, err)
				}
				c := compareTreeEntries(pe, e)
				if c < 0 {
					pos[i]++
					continue
				}
				found = c == 0 || bytes.Equal(pe.name, e.name)
				break
			}
			if !found {
				continue
			}
			switch {
			case bytes.Equal(pe.hash, e.hash):
				same = true
			case pe.isDir():
				subParents = append(subParents, plumbing.Hash(pe.hash))
			case prevBlob.IsZero():
				prevBlob = plumbing.Hash(pe.hash)
			}
		}
		h := plumbing.Hash(e.hash)
		if same || d.list.has(h) {
			continue
		}
		switch {
		case e.isDir():
			if err := d.tree(h, append([]plumbing.Hash(nil), subParents...)); err != nil {
				return err
			}
		case e.mode == uint32(filemode.Submodule):
			// Not an object of ours (and refused by ApplyBundle anyway).
		default:
			d.list.add(h, prevBlob)
		}
	}
	return nil
}

// deriveIndex sets t.ents from p's (p indexed, t not): the entries in the
// common byte prefix and suffix of t and p are the same entries at the same
// (shifted) offsets; only those between are parsed. It returns the span of
// t's entries that may differ, and the span of p's entries they replace.
func (d *treeDiffer) deriveIndex(t, p *cobj) (span, span, error) {
	pre, suf := affixes(t.data, p.data)
	n := len(p.ents)
	pEnd := func(k int) int {
		if k+1 < n {
			return int(p.ents[k+1])
		}
		return len(p.data)
	}
	// i0: p's first entry not wholly inside the prefix; t's entries before
	// it are p's.
	i0 := sort.Search(n, func(k int) bool { return pEnd(k) > pre })
	start := len(p.data)
	if i0 < n {
		start = int(p.ents[i0])
	}
	shift := len(t.data) - len(p.data)
	var mid []uint32
	pos, j := start, n
	for pos < len(t.data) {
		if pos >= len(t.data)-suf {
			pp := pos - shift
			k := sort.Search(n, func(k int) bool { return int(p.ents[k]) >= pp })
			if k < n && int(p.ents[k]) == pp {
				j = k
				break
			}
		}
		mid = append(mid, uint32(pos))
		_, next, err := parseRawEntry(t.data, pos)
		if err != nil {
			return span{}, span{}, fmt.Errorf("gitstore: tree %s: %w", t.h, err)
		}
		pos = next
	}
	before := d.src.cache.size(t)
	ents := d.src.cache.pool.ents(i0 + len(mid) + n - j)
	ents = append(ents, p.ents[:i0]...)
	ents = append(ents, mid...)
	for _, o := range p.ents[j:] {
		ents = append(ents, uint32(int(o)+shift))
	}
	t.ents = ents
	d.src.cache.grew(t, before)
	return span{i0, i0 + len(mid)}, span{i0, j}, nil
}

// affixes returns the lengths of the longest common prefix of a and b and
// of the longest common suffix of what follows it.
func affixes(a, b []byte) (pre, suf int) {
	n := min(len(a), len(b))
	const block = 256
	for pre+block <= n && bytes.Equal(a[pre:pre+block], b[pre:pre+block]) {
		pre += block
	}
	for pre+8 <= n && binary.LittleEndian.Uint64(a[pre:]) == binary.LittleEndian.Uint64(b[pre:]) {
		pre += 8
	}
	for pre < n && a[pre] == b[pre] {
		pre++
	}
	m := n - pre
	la, lb := len(a), len(b)
	for suf+block <= m && bytes.Equal(a[la-suf-block:la-suf], b[lb-suf-block:lb-suf]) {
		suf += block
	}
	for suf+8 <= m && binary.LittleEndian.Uint64(a[la-suf-8:]) == binary.LittleEndian.Uint64(b[lb-suf-8:]) {
		suf += 8
	}
	for suf < m && a[la-1-suf] == b[lb-1-suf] {
		suf++
	}
	return pre, suf
}

// compareTreeEntries orders tree entries as git does: by name, a tree's
// name compared as if it ended with "/".
func compareTreeEntries(a, b treeEntry) int {
	n := min(len(a.name), len(b.name))
	if c := bytes.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	return entryKeyAt(a, n) - entryKeyAt(b, n)
}

// entryKeyAt returns byte i of e's sort key, -1 past its end.
func entryKeyAt(e treeEntry, i int) int {
	switch {
	case i < len(e.name):
		return int(e.name[i])
	case i == len(e.name) && e.isDir():
		return '/'
	}
	return -1
}
