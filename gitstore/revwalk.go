package gitstore

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// The incremental object walk behind WriteBundle, the way git's rev-list
// does it (go-git's revlist.Objects walks the whole history of both sides).
//
// Commits: a queue ordered by committer time, newest first, holds the head
// (interesting) and the peer's known commits (uninteresting). Popping a
// commit queues its parents with the same mark; a commit reached from both
// sides is uninteresting, and so become its already-seen ancestors. The walk
// stops as soon as only uninteresting commits are queued: everything older
// is known to the peer. The uninteresting parents of the new commits are the
// boundary: the bundle's prerequisites.
//
// Objects: for each new commit, its tree is compared by hash with its
// parents' trees, descending only into subtrees that differ from every
// parent's subtree at the same path; an entry equal to a parent's entry at
// its path is left out (that parent is either sent too, with its objects, or
// known to the peer). Clock skew can at worst make the walk send a few
// commits the peer has, never leave one out.

// walkCommit is a commit met by the walk.
type walkCommit struct {
	c       *object.Commit
	unint   bool // reachable from a commit the peer has
	queued  bool
	popped  bool
	emitted bool // popped while interesting
}

type walkQueue []*walkCommit

func (q walkQueue) Len() int { return len(q) }
func (q walkQueue) Less(i, j int) bool {
	ti, tj := q[i].c.Committer.When, q[j].c.Committer.When
	if !ti.Equal(tj) {
		return ti.After(tj)
	}
	return q[i].c.Hash.String() > q[j].c.Hash.String()
}
func (q walkQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *walkQueue) Push(x any)   { *q = append(*q, x.(*walkCommit)) }
func (q *walkQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// revWalk holds the state of one walk.
type revWalk struct {
	s           *Store
	commits     map[plumbing.Hash]*walkCommit
	queue       walkQueue
	interesting int // queued commits that are not uninteresting
}

// newCommitsLocked returns the commits reachable from head and not from any
// of since (unknown hashes in since are ignored), oldest first, and the
// boundary: the commits the peer has that are parents of new ones, sorted.
func (s *Store) newCommitsLocked(ctx context.Context, head plumbing.Hash, since []plumbing.Hash) (news []*object.Commit, boundary []plumbing.Hash, w *revWalk, err error) {
	w = &revWalk{s: s, commits: map[plumbing.Hash]*walkCommit{}}
	if err := w.add(head, false); err != nil {
		return nil, nil, nil, err
	}
	for _, h := range since {
		if ok, err := s.hasCommitLocked(h); err != nil {
			return nil, nil, nil, err
		} else if ok {
			if err := w.add(h, true); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	var emitted []*walkCommit
	for n := 0; w.interesting > 0; n++ {
		if n%1024 == 0 {
			if err := ctxErr(ctx); err != nil {
				return nil, nil, nil, err
			}
		}
		wc := heap.Pop(&w.queue).(*walkCommit)
		wc.queued, wc.popped = false, true
		if !wc.unint {
			w.interesting--
			wc.emitted = true
			emitted = append(emitted, wc)
		}
		for _, p := range wc.c.ParentHashes {
			if err := w.add(p, wc.unint); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	seen := map[plumbing.Hash]bool{}
	for i := len(emitted) - 1; i >= 0; i-- {
		wc := emitted[i]
		if wc.unint {
			continue // found to be the peer's after it was popped
		}
		news = append(news, wc.c)
		for _, p := range wc.c.ParentHashes {
			if pw := w.commits[p]; pw.unint && !seen[p] {
				seen[p] = true
				boundary = append(boundary, p)
			}
		}
	}
	sortHashes(boundary)
	return news, boundary, w, nil
}

// add meets commit h from a child (or as a start) with the given mark.
func (w *revWalk) add(h plumbing.Hash, unint bool) error {
	wc := w.commits[h]
	if wc == nil {
		c, err := w.s.commitLocked(h)
		if unint && errors.Is(err, plumbing.ErrObjectNotFound) {
			// The peer's history beyond what we hold (a dangling commit
			// whose ancestry we lack): nothing of ours is behind it, so
			// the walk just stops excluding there.
			return nil
		}
		if err != nil {
			return err
		}
		wc = &walkCommit{c: c, unint: unint, queued: true}
		w.commits[h] = wc
		heap.Push(&w.queue, wc)
		if !unint {
			w.interesting++
		}
		return nil
	}
	if unint && !wc.unint {
		w.markUninteresting(wc)
	}
	return nil
}

// markUninteresting marks wc and its already-met ancestors uninteresting.
func (w *revWalk) markUninteresting(wc *walkCommit) {
	stack := []*walkCommit{wc}
	for len(stack) > 0 {
		wc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if wc.unint {
			continue
		}
		wc.unint = true
		if wc.queued {
			w.interesting--
		}
		if wc.popped {
			for _, p := range wc.c.ParentHashes {
				if pw := w.commits[p]; pw != nil && !pw.unint {
					stack = append(stack, pw)
				}
			}
		}
	}
}

// newObjectsLocked returns the commits, trees and blobs to send for news
// (from newCommitsLocked): the commits and what their trees hold that their
// parents' trees do not hold at the same path.
//
// bases maps each tree and blob to its previous version (the object at the
// same path in a parent), a good delta base, when there is one.
func (s *Store) newObjectsLocked(ctx context.Context, w *revWalk, news []*object.Commit) (objs []plumbing.Hash, bases map[plumbing.Hash]plumbing.Hash, err error) {
	d := treeDiffer{s: s, added: map[plumbing.Hash]bool{}, base: map[plumbing.Hash]plumbing.Hash{}}
	for i, c := range news {
		if i%256 == 0 {
			if err := ctxErr(ctx); err != nil {
				return nil, nil, err
			}
		}
		d.out = append(d.out, c.Hash)
		parents := make([]plumbing.Hash, 0, len(c.ParentHashes))
		for _, p := range c.ParentHashes {
			pw := w.commits[p]
			if pw == nil {
				return nil, nil, fmt.Errorf("gitstore: walk: parent %s of %s not met", p, c.Hash)
			}
			parents = append(parents, pw.c.TreeHash)
		}
		if err := d.tree(c.TreeHash, parents); err != nil {
			return nil, nil, err
		}
	}
	return d.out, d.base, nil
}

// treeDiffer collects the objects of trees that their parents' trees lack.
type treeDiffer struct {
	s     *Store
	added map[plumbing.Hash]bool
	out   []plumbing.Hash
	base  map[plumbing.Hash]plumbing.Hash // object -> its previous version
}

// tree adds tree h unless a parent tree is the same, then its entries that
// differ from every parent's entry of the same name.
func (d *treeDiffer) tree(h plumbing.Hash, parents []plumbing.Hash) error {
	if d.added[h] {
		return nil
	}
	for _, p := range parents {
		if p == h {
			return nil
		}
	}
	d.added[h] = true
	d.out = append(d.out, h)
	if len(parents) > 0 {
		d.base[h] = parents[0]
	}
	t, err := object.GetTree(d.s.st, h)
	if err != nil {
		return fmt.Errorf("gitstore: tree %s: %w", h, err)
	}
	pts := make([][]object.TreeEntry, 0, len(parents))
	for _, p := range parents {
		pt, err := object.GetTree(d.s.st, p)
		if err != nil {
			return fmt.Errorf("gitstore: tree %s: %w", p, err)
		}
		pts = append(pts, pt.Entries)
	}
	// Entries are in git order in every tree: merge-join by sort key.
	pos := make([]int, len(pts))
	var subParents []plumbing.Hash
	for _, e := range t.Entries {
		same := false
		subParents = subParents[:0]
		var prevBlob plumbing.Hash
		for i, pe := range pts {
			for pos[i] < len(pe) && compareEntryKeys(pe[pos[i]], e) < 0 {
				pos[i]++
			}
			if pos[i] < len(pe) && pe[pos[i]].Name == e.Name {
				if pe[pos[i]].Hash == e.Hash {
					same = true
				} else if pe[pos[i]].Mode == filemode.Dir {
					subParents = append(subParents, pe[pos[i]].Hash)
				} else if prevBlob.IsZero() {
					prevBlob = pe[pos[i]].Hash
				}
			}
		}
		if same || d.added[e.Hash] {
			continue
		}
		switch e.Mode {
		case filemode.Dir:
			if err := d.tree(e.Hash, append([]plumbing.Hash(nil), subParents...)); err != nil {
				return err
			}
		case filemode.Submodule:
			// Not an object of ours (and refused by ApplyBundle anyway).
		default:
			d.added[e.Hash] = true
			d.out = append(d.out, e.Hash)
			if !prevBlob.IsZero() && e.Mode != filemode.Dir {
				d.base[e.Hash] = prevBlob
			}
		}
	}
	return nil
}

// compareEntryKeys orders tree entries as git does: by name, a tree's name
// compared as if it ended with "/".
func compareEntryKeys(a, b object.TreeEntry) int {
	n := min(len(a.Name), len(b.Name))
	if c := strings.Compare(a.Name[:n], b.Name[:n]); c != 0 {
		return c
	}
	return cmp.Compare(entryKeyByte(a, n), entryKeyByte(b, n))
}

// entryKeyByte returns byte i of e's sort key, -1 past its end.
func entryKeyByte(e object.TreeEntry, i int) int {
	switch {
	case i < len(e.Name):
		return int(e.Name[i])
	case i == len(e.Name) && e.Mode == filemode.Dir:
		return '/'
	}
	return -1
}

func sortHashes(hs []plumbing.Hash) {
	slices.SortFunc(hs, func(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) })
}
