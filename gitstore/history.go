package gitstore

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// History lists the changes in main's history to path, newest first; all
// changes when path is "". path may name a file or a directory (then every
// file under it counts). Deletions are listed too, so the history of a
// deleted file ends (reading from the top) with its "delete" change, and
// the commit before it holds its last content (see [Store.Restore]).
//
// Each Change comes from comparing a commit with its parent: one per file
// the commit changed (our commits change one file; commits made with other
// tools may change several and then give several Changes with the same
// Commit). Merge commits are skipped, except for the files a merge commit
// made differ from every parent, such as its conflict copies. The order is
// git log's: by committer time, never a commit before one of its
// descendants. limit <= 0 means no limit. An unknown path gives an empty
// list, not an error; an invalid one gives an error.
//
// History never waits for a write (a scan, an ApplyBundle): it reads main
// as last published and objects, which never change, from a storage of its
// own.
func (s *Store) History(ctx context.Context, path string, limit int) ([]Change, error) {
	path = strings.TrimSuffix(path, "/")
	if path != "" {
		if err := ValidPath(path); err != nil {
			return nil, fmt.Errorf("gitstore: history %q: %w", path, err)
		}
	}
	hh, err := s.Head()
	if err != nil || hh.IsZero() {
		return nil, err
	}
	head := hh.plumbing()
	st, unlock, err := s.view(head)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := objReader{viewObjects{st}}
	fromOf, err := s.receivedLookup()
	if err != nil {
		return nil, err
	}
	var out []Change
	q := &commitQueue{}
	// trees maps every commit met (queued or done) to its tree, so that no
	// commit is read twice; look memoizes the lookups of path in trees.
	trees := map[plumbing.Hash]plumbing.Hash{}
	look := &entryMemo{r: r, m: map[memoKey]treeEnt{}}
	c, err := r.commit(head)
	if err != nil {
		return nil, err
	}
	trees[head] = c.TreeHash
	heap.Push(q, c)
	for n := 0; q.Len() > 0; n++ {
		if n%256 == 0 {
			if err := ctxErr(ctx); err != nil {
				return nil, err
			}
		}
		c := heap.Pop(q).(*object.Commit)
		parents := make([]plumbing.Hash, 0, len(c.ParentHashes))
		for _, ph := range c.ParentHashes {
			if _, met := trees[ph]; !met {
				pc, err := r.commit(ph)
				if err != nil {
					return nil, err
				}
				trees[ph] = pc.TreeHash
				heap.Push(q, pc)
			}
			parents = append(parents, trees[ph])
		}
		diffs, err := r.commitDiff(c.TreeHash, parents, path, look)
		if err != nil {
			return nil, err
		}
		for _, d := range diffs {
			out = append(out, Change{
				Commit: fromPlumbing(c.Hash),
				Action: d.action,
				Path:   d.path,
				Time:   c.Committer.When,
				Author: fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
				From:   fromOf(c.Hash),
			})
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// commitQueue orders commits newest first (committer time, ties by hash so
// the order is deterministic).
type commitQueue []*object.Commit

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	ti, tj := q[i].Committer.When, q[j].Committer.When
	if !ti.Equal(tj) {
		return ti.After(tj)
	}
	return q[i].Hash.String() > q[j].Hash.String()
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(*object.Commit)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

// fileDiff is one file changed between two trees.
type fileDiff struct {
	action Action
	path   string
	entry  fileEntry // the new entry; zero for a deletion
}

// treeEnt is a tree entry of any kind; ok is false when there is none.
type treeEnt struct {
	mode filemode.FileMode
	hash plumbing.Hash
	ok   bool
}

func (e treeEnt) isDir() bool { return e.ok && e.mode == filemode.Dir }

// objReader reads commits and trees from an object storage.
type objReader struct{ st storer.EncodedObjectStorer }

func (r objReader) commit(h plumbing.Hash) (*object.Commit, error) {
	c, err := object.GetCommit(r.st, h)
	if err != nil {
		return nil, fmt.Errorf("gitstore: commit %s: %w", h, err)
	}
	return c, nil
}

// commitDiff returns the files under path ("" = all) that a commit
// with tree changed: against its parents' trees (the empty tree for a root
// commit), for a merge only those that differ from every parent.
func (r objReader) commitDiff(tree plumbing.Hash, parents []plumbing.Hash, path string, look *entryMemo) ([]fileDiff, error) {
	cur, err := look.at(tree, path)
	if err != nil {
		return nil, err
	}
	var first treeEnt
	if len(parents) > 0 {
		if first, err = look.at(parents[0], path); err != nil {
			return nil, err
		}
	}
	var diffs []fileDiff
	if err := r.diffEnt(path, first, cur, &diffs); err != nil {
		return nil, err
	}
	if len(parents) < 2 || len(diffs) == 0 {
		return diffs, nil
	}
	kept := diffs[:0]
	for _, d := range diffs {
		same := false
		for _, p := range parents[1:] {
			pe, err := r.entryInTree(p, d.path)
			if err != nil {
				return nil, err
			}
			if pe.ok && !pe.isDir() && d.entry == (fileEntry{mode: pe.mode, hash: pe.hash}) ||
				!pe.ok && d.action == ActionDelete {
				same = true
				break
			}
		}
		if !same {
			kept = append(kept, d)
		}
	}
	return kept, nil
}

// entryMemo memoizes, during one History call, the entry at a path in a
// tree: consecutive commits share most subtrees, so most lookups stop at
// the first level whose tree did not change.
type entryMemo struct {
	r objReader
	m map[memoKey]treeEnt
}

type memoKey struct {
	tree plumbing.Hash
	path string
}

// at returns the entry at slash path p in tree root, as entryInTreeLocked.
func (em *entryMemo) at(root plumbing.Hash, p string) (treeEnt, error) {
	if e, ok := em.m[memoKey{root, p}]; ok {
		return e, nil
	}
	var e treeEnt
	if p == "" {
		e = treeEnt{mode: filemode.Dir, hash: root, ok: true}
	} else {
		first, rest, more := strings.Cut(p, "/")
		t, err := object.GetTree(em.r.st, root)
		if err != nil {
			return treeEnt{}, fmt.Errorf("gitstore: tree %s: %w", root, err)
		}
		te, err := t.FindEntry(first)
		switch {
		case errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound):
		case err != nil:
			return treeEnt{}, fmt.Errorf("gitstore: tree %s: %w", root, err)
		case !more:
			e = treeEnt{mode: te.Mode, hash: te.Hash, ok: true}
		case te.Mode == filemode.Dir:
			if e, err = em.at(te.Hash, rest); err != nil {
				return treeEnt{}, err
			}
		}
	}
	em.m[memoKey{root, p}] = e
	return e, nil
}

// entryInTreeLocked returns the entry at slash path p in tree root; p == ""
// is the root itself.
func (s *Store) entryInTreeLocked(root plumbing.Hash, p string) (treeEnt, error) {
	return objReader{s.st}.entryInTree(root, p)
}

// entryInTree is entryInTreeLocked on r's storage.
func (r objReader) entryInTree(root plumbing.Hash, p string) (treeEnt, error) {
	e := treeEnt{mode: filemode.Dir, hash: root, ok: true}
	if p == "" {
		return e, nil
	}
	for _, name := range strings.Split(p, "/") {
		if !e.isDir() {
			return treeEnt{}, nil
		}
		t, err := object.GetTree(r.st, e.hash)
		if err != nil {
			return treeEnt{}, fmt.Errorf("gitstore: tree %s: %w", e.hash, err)
		}
		te, err := t.FindEntry(name)
		if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
			return treeEnt{}, nil
		} else if err != nil {
			return treeEnt{}, fmt.Errorf("gitstore: tree %s: %w", e.hash, err)
		}
		e = treeEnt{mode: te.Mode, hash: te.Hash, ok: true}
	}
	return e, nil
}

// diffEnt appends to out the files that differ between entries a (old)
// and b (new) at path p, sorted by path. Subtrees with equal hashes are not
// read.
func (r objReader) diffEnt(p string, a, b treeEnt, out *[]fileDiff) error {
	if a == b {
		return nil
	}
	if !a.isDir() && !b.isDir() {
		switch {
		case !a.ok:
			*out = append(*out, fileDiff{ActionAdd, p, fileEntry{b.mode, b.hash}})
		case !b.ok:
			*out = append(*out, fileDiff{ActionDelete, p, fileEntry{}})
		default:
			*out = append(*out, fileDiff{ActionModify, p, fileEntry{b.mode, b.hash}})
		}
		return nil
	}
	// At least one side is a directory; a file on the other side is deleted
	// or added as a whole.
	if a.ok && !a.isDir() {
		*out = append(*out, fileDiff{ActionDelete, p, fileEntry{}})
	}
	ac, err := r.children(a)
	if err != nil {
		return err
	}
	bc, err := r.children(b)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ac)+len(bc))
	for n := range ac {
		names = append(names, n)
	}
	for n := range bc {
		if _, ok := ac[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		cp := n
		if p != "" {
			cp = p + "/" + n
		}
		if err := r.diffEnt(cp, ac[n], bc[n], out); err != nil {
			return err
		}
	}
	if b.ok && !b.isDir() {
		*out = append(*out, fileDiff{ActionAdd, p, fileEntry{b.mode, b.hash}})
	}
	return nil
}

// children returns the entries of e when it is a directory, else none.
func (r objReader) children(e treeEnt) (map[string]treeEnt, error) {
	if !e.isDir() {
		return nil, nil
	}
	t, err := object.GetTree(r.st, e.hash)
	if err != nil {
		return nil, fmt.Errorf("gitstore: tree %s: %w", e.hash, err)
	}
	m := make(map[string]treeEnt, len(t.Entries))
	for _, te := range t.Entries {
		m[te.Name] = treeEnt{mode: te.Mode, hash: te.Hash, ok: true}
	}
	return m, nil
}
