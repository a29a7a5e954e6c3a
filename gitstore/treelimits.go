package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// treeStat is what a tree holds below it, wherever it sits: one value per
// tree object, so a tree named many times is read once.
type treeStat struct {
	files, bytes int64 // blob entries and the sum of their sizes (saturating)
	depth        int   // the most components of a path below it ("a/b" = 2)
	pathLen      int   // the longest slash path below it, in bytes
}

// treeStatCacheMax bounds the Store's cache of the stats of its own trees.
const treeStatCacheMax = 1 << 16

// treeLimits computes the stats of the tree a bundle leads to and refuses
// it when they exceed the limits.
type treeLimits struct {
	s    *Store // treeStats, under applyMu
	st   *filesystem.Storage
	objs *packObjects
	lim  Limits
	memo map[plumbing.Hash]treeStat
	n    int
}

// checkTreeLimits refuses (a *BundleError wrapping a *LimitError) the
// bundle whose head commit is head when the tree it leads to exceeds
// Limits.MaxFiles, MaxBytes, MaxDepth or MaxPathLen. Every entry naming a
// blob counts, whether the blob came in the bundle or is ours already: what
// counts is what a checkout of that tree would write. Trees are read once
// each (the stats of ours are cached in the Store), and the walk never goes
// deeper than MaxDepth.
func (a *applyRun) checkTreeLimits(ctx context.Context, objs *packObjects, head plumbing.Hash) error {
	s := a.s
	var tree plumbing.Hash
	if o := objs.get(head); o != nil {
		data, err := o.content()
		if err != nil {
			return fmt.Errorf("gitstore: read spooled %s: %w", head, err)
		}
		tree, err = commitTree(data)
		if err != nil {
			return &BundleError{Object: fromPlumbing(head), Reason: "malformed commit", Err: err}
		}
	} else {
		c, err := objReader{a.st}.commit(head)
		if err != nil {
			return err
		}
		tree = c.TreeHash
	}
	tl := &treeLimits{s: s, st: a.st, objs: objs, lim: s.opts.limits, memo: map[plumbing.Hash]treeStat{}}
	a.treeMemo = tl.memo // kept as ours once the pack is (keepTreeStats)
	st, err := tl.visit(ctx, tree, "", 0)
	if err == nil {
		switch {
		case st.files > tl.lim.MaxFiles:
			err = &LimitError{Limit: "Limits.MaxFiles", Value: st.files, Max: tl.lim.MaxFiles}
		case st.bytes > tl.lim.MaxBytes:
			err = &LimitError{Limit: "Limits.MaxBytes", Value: st.bytes, Max: tl.lim.MaxBytes}
		}
	}
	var le *LimitError
	if errors.As(err, &le) {
		return &BundleError{Path: le.Path, Reason: "over a limit", Err: le}
	}
	return err
}

// keepTreeStats adds the stats of the trees checkTreeLimits walked to the
// Store's cache of its own trees' stats, once the bundle's objects are
// ours: the next bundle, which names most of them unchanged, does not walk
// them (and ask every blob's size) again.
func (a *applyRun) keepTreeStats() {
	for h, st := range a.treeMemo {
		a.s.keepTreeStat(h, st)
	}
}

// keepTreeStat caches the stats of our tree h (applyMu held), emptying
// the cache when it holds treeStatCacheMax of them.
func (s *Store) keepTreeStat(h plumbing.Hash, st treeStat) {
	if len(s.treeStats) >= treeStatCacheMax {
		clear(s.treeStats)
	}
	if s.treeStats == nil {
		s.treeStats = map[plumbing.Hash]treeStat{}
	}
	s.treeStats[h] = st
}

// commitTree returns the tree named by a raw commit's first line.
func commitTree(data []byte) (plumbing.Hash, error) {
	const prefix = "tree "
	if len(data) < len(prefix)+40 || string(data[:len(prefix)]) != prefix {
		return plumbing.ZeroHash, errors.New("no tree line")
	}
	h, ok := parseHex(data[len(prefix) : len(prefix)+40])
	if !ok {
		return plumbing.ZeroHash, errors.New("bad tree hash")
	}
	return h, nil
}

func parseHex(b []byte) (plumbing.Hash, bool) {
	var h plumbing.Hash
	for i := 0; i < 40; i++ {
		c := b[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			return h, false
		}
		h[i/2] |= v << (4 * (1 - i%2))
	}
	return h, true
}

// visit returns the stats of tree h, found at dir (depth components deep,
// "" for the root), refusing it as soon as a limit about paths is passed.
func (tl *treeLimits) visit(ctx context.Context, h plumbing.Hash, dir string, depth int) (treeStat, error) {
	if st, ok := tl.memo[h]; ok {
		return st, tl.checkPath(st, dir, depth)
	}
	if st, ok := tl.s.treeStats[h]; ok {
		tl.memo[h] = st
		return st, tl.checkPath(st, dir, depth)
	}
	if tl.n++; tl.n%256 == 0 {
		if err := ctxErr(ctx); err != nil {
			return treeStat{}, err
		}
	}
	data, ours, err := tl.treeData(h)
	if err != nil {
		return treeStat{}, err
	}
	var st treeStat
	for len(data) > 0 {
		mode, name, eh, rest, ok := parseTreeEntry(data)
		if !ok {
			return treeStat{}, &BundleError{Path: dir, Object: fromPlumbing(h), Reason: "malformed tree"}
		}
		data = rest
		p := string(name)
		if dir != "" {
			p = dir + "/" + p
		}
		if depth+1 > tl.lim.MaxDepth {
			return treeStat{}, &LimitError{Limit: "Limits.MaxDepth", Value: int64(depth + 1), Max: int64(tl.lim.MaxDepth), Path: p}
		}
		if len(p) > tl.lim.MaxPathLen {
			return treeStat{}, &LimitError{Limit: "Limits.MaxPathLen", Value: int64(len(p)), Max: int64(tl.lim.MaxPathLen), Path: p}
		}
		sub := treeStat{depth: 1, pathLen: len(name)}
		if mode == filemode.Dir {
			below, err := tl.visit(ctx, eh, p, depth+1)
			if err != nil {
				return treeStat{}, err
			}
			sub.files, sub.bytes = below.files, below.bytes
			if below.depth > 0 {
				sub.depth, sub.pathLen = 1+below.depth, len(name)+1+below.pathLen
			}
		} else {
			size, err := tl.blobSize(eh)
			if err != nil {
				return treeStat{}, err
			}
			sub.files, sub.bytes = 1, size
		}
		st.files = satAdd(st.files, sub.files)
		st.bytes = satAdd(st.bytes, sub.bytes)
		st.depth = max(st.depth, sub.depth)
		st.pathLen = max(st.pathLen, sub.pathLen)
		if st.files > tl.lim.MaxFiles {
			return treeStat{}, &LimitError{Limit: "Limits.MaxFiles", Value: st.files, Max: tl.lim.MaxFiles, Path: dir}
		}
		if st.bytes > tl.lim.MaxBytes {
			return treeStat{}, &LimitError{Limit: "Limits.MaxBytes", Value: st.bytes, Max: tl.lim.MaxBytes, Path: dir}
		}
	}
	tl.memo[h] = st
	if ours {
		tl.s.keepTreeStat(h, st)
	}
	return st, nil
}

// checkPath refuses a tree with stats st at dir when a path below it would
// be too deep or too long.
func (tl *treeLimits) checkPath(st treeStat, dir string, depth int) error {
	if depth+st.depth > tl.lim.MaxDepth {
		return &LimitError{Limit: "Limits.MaxDepth", Value: int64(depth + st.depth), Max: int64(tl.lim.MaxDepth), Path: dir}
	}
	n := st.pathLen
	if dir != "" && n > 0 {
		n += len(dir) + 1
	}
	if n > tl.lim.MaxPathLen {
		return &LimitError{Limit: "Limits.MaxPathLen", Value: int64(n), Max: int64(tl.lim.MaxPathLen), Path: dir}
	}
	return nil
}

// treeData returns the raw tree h from the bundle or, when it is ours,
// from the store (ours is true).
func (tl *treeLimits) treeData(h plumbing.Hash) (data []byte, ours bool, err error) {
	if o := tl.objs.get(h); o != nil {
		if o.typ != plumbing.TreeObject {
			return nil, false, &BundleError{Object: fromPlumbing(h), Reason: fmt.Sprintf("object is a %s, want tree", o.typ)}
		}
		data, err = o.content()
		if err != nil {
			return nil, false, fmt.Errorf("gitstore: read spooled %s: %w", h, err)
		}
		return data, false, nil
	}
	lo, err := tl.st.EncodedObject(plumbing.TreeObject, h)
	if err != nil {
		return nil, false, fmt.Errorf("gitstore: tree %s: %w", h, err)
	}
	rc, err := lo.Reader()
	if err != nil {
		return nil, false, fmt.Errorf("gitstore: tree %s: %w", h, err)
	}
	defer rc.Close()
	data, err = io.ReadAll(rc)
	if err != nil {
		return nil, false, fmt.Errorf("gitstore: tree %s: %w", h, err)
	}
	return data, true, nil
}

// blobSize returns the size of blob h, from the bundle or the store.
func (tl *treeLimits) blobSize(h plumbing.Hash) (int64, error) {
	if o := tl.objs.get(h); o != nil {
		return o.size, nil
	}
	n, err := tl.st.EncodedObjectSize(h)
	if err != nil {
		return 0, fmt.Errorf("gitstore: blob %s: %w", h, err)
	}
	return n, nil
}
