package gitstore

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
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
// Objects: treewalk.go. Commits are read by our own reader (packread.go)
// and kept as hash, tree, parents and committer time only. Clock skew can at
// worst make the walk send a few commits the peer has, never leave one out.

// walkCommit is a commit met by the walk.
type walkCommit struct {
	h       plumbing.Hash
	tree    plumbing.Hash
	parents []plumbing.Hash
	when    int64 // committer time, Unix seconds
	unint   bool  // reachable from a commit the peer has
	queued  bool
	popped  bool
	emitted bool // popped while interesting
}

type walkQueue []*walkCommit

func (q walkQueue) Len() int { return len(q) }
func (q walkQueue) Less(i, j int) bool {
	if ti, tj := q[i].when, q[j].when; ti != tj {
		return ti > tj
	}
	return bytes.Compare(q[i].h[:], q[j].h[:]) > 0
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
	src         *objectSource
	commits     map[plumbing.Hash]*walkCommit
	queue       walkQueue
	interesting int // queued commits that are not uninteresting
}

// newCommitsLocked returns the commits reachable from head and not from any
// of since (commits we have: WriteBundle leaves out the others), oldest
// first, and the
// boundary: the commits the peer has that are parents of new ones, sorted.
func (s *Store) newCommitsLocked(ctx context.Context, src *objectSource, head plumbing.Hash, since []plumbing.Hash) (news []*walkCommit, boundary []plumbing.Hash, w *revWalk, err error) {
	w = &revWalk{src: src, commits: map[plumbing.Hash]*walkCommit{}}
	if err := w.add(head, false); err != nil {
		return nil, nil, nil, err
	}
	for _, h := range since {
		if err := w.add(h, true); err != nil {
			return nil, nil, nil, err
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
		for _, p := range wc.parents {
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
		news = append(news, wc)
		for _, p := range wc.parents {
			if pw := w.commits[p]; pw.unint && !seen[p] {
				seen[p] = true
				boundary = append(boundary, p)
			}
		}
	}
	sortHashes(boundary)
	return parentsFirst(news), boundary, w, nil
}

// parentsFirst orders news so that every commit comes after its parents
// among news, keeping the committer-time order otherwise. Time order alone
// is not enough: with clocks that disagree a parent can be newer than its
// child, and the object walk (treewalk.go), which leaves out what a
// parent's tree holds, must meet a tree first where it is new, else a tree
// met again later (a revert) was listed against the wrong parent and an
// object it holds could be left out of the bundle.
func parentsFirst(news []*walkCommit) []*walkCommit {
	idx := make(map[plumbing.Hash]int, len(news))
	for i, c := range news {
		idx[c.h] = i
	}
	out := make([]*walkCommit, 0, len(news))
	done := make([]bool, len(news))
	type frame struct{ i, next int } // next: the parent to look at next
	var stack []frame
	for i := range news {
		if done[i] {
			continue
		}
		stack = append(stack[:0], frame{i: i})
		done[i] = true
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			c := news[f.i]
			if f.next < len(c.parents) {
				p, ok := idx[c.parents[f.next]]
				f.next++
				if ok && !done[p] {
					done[p] = true
					stack = append(stack, frame{i: p})
				}
				continue
			}
			out = append(out, c)
			stack = stack[:len(stack)-1]
		}
	}
	return out
}

// add meets commit h from a child (or as a start) with the given mark.
func (w *revWalk) add(h plumbing.Hash, unint bool) error {
	wc := w.commits[h]
	if wc == nil {
		wc, err := w.src.commit(h)
		if unint && errors.Is(err, plumbing.ErrObjectNotFound) {
			// The peer's history beyond what we hold (a dangling commit
			// whose ancestry we lack): nothing of ours is behind it, so
			// the walk just stops excluding there.
			return nil
		}
		if err != nil {
			return err
		}
		wc.unint, wc.queued = unint, true
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

// commit reads commit h: its tree, parents and committer time.
func (src *objectSource) commit(h plumbing.Hash) (*walkCommit, error) {
	o, err := src.object(h, false)
	if err != nil {
		return nil, err
	}
	if o.typ != plumbing.CommitObject {
		return nil, fmt.Errorf("gitstore: commit %s: %w", h, plumbing.ErrObjectNotFound)
	}
	wc := &walkCommit{h: h}
	bad := errMalformedCommit(h)
	data := o.data
	for len(data) > 0 {
		line, rest, _ := bytes.Cut(data, []byte{'\n'})
		data = rest
		if len(line) == 0 {
			break // the message follows
		}
		key, val, _ := bytes.Cut(line, []byte{' '})
		switch string(key) {
		case "tree", "parent":
			var x plumbing.Hash
			if len(val) != 40 {
				return nil, bad
			}
			if _, err := hex.Decode(x[:], val); err != nil {
				return nil, bad
			}
			if key[0] == 't' {
				wc.tree = x
			} else {
				wc.parents = append(wc.parents, x)
			}
		case "committer":
			// "Name <email> 1700000000 +0000"
			f := bytes.Fields(val[max(0, bytes.LastIndexByte(val, '>')+1):])
			if len(f) >= 1 {
				t, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err != nil {
					return nil, bad
				}
				wc.when = t
			}
		}
	}
	if wc.tree.IsZero() {
		return nil, bad
	}
	return wc, nil
}

// errMalformedCommit reports a commit that does not parse.
type errMalformedCommit plumbing.Hash

func (e errMalformedCommit) Error() string {
	return fmt.Sprintf("gitstore: commit %s: malformed", plumbing.Hash(e))
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
			for _, p := range wc.parents {
				if pw := w.commits[p]; pw != nil && !pw.unint {
					stack = append(stack, pw)
				}
			}
		}
	}
}

func sortHashes(hs []plumbing.Hash) {
	slices.SortFunc(hs, func(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) })
}
