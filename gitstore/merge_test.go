package gitstore

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exchange writes both bundles first (each side since the other's head),
// then applies A's to B and B's to A, as two peers meeting would.
func exchange(t *testing.T, a, b *Store) (ApplyResult, ApplyResult) {
	t.Helper()
	ba, _ := bundleOf(t, a, head(t, b))
	bb, _ := bundleOf(t, b, head(t, a))
	rb := apply(t, b, ba, peerA)
	ra := apply(t, a, bb, peerB)
	return ra, rb
}

// converged checks both sides ended with identical trees and folders.
func converged(t *testing.T, a, b *Store) {
	t.Helper()
	assert.Equal(t, gitStore(t, a, "rev-parse", "HEAD^{tree}"), gitStore(t, b, "rev-parse", "HEAD^{tree}"))
	assert.Equal(t, folderFiles(t, a.Dir()), folderFiles(t, b.Dir()))
	assert.Empty(t, scan(t, a))
	assert.Empty(t, scan(t, b))
	fsck(t, a)
	fsck(t, b)
}

// pair makes two stores sharing a first commit of base files.
func pair(t *testing.T, base map[string]string) (*Store, *Store) {
	a := newTestStore(t, "AAAAAAA-A", epoch)
	b := newTestStore(t, "BBBBBBB-B", epoch.Add(time.Hour))
	for p, c := range base {
		writeFile(t, a.Dir(), p, c)
	}
	scan(t, a)
	data, _ := bundleOf(t, a)
	apply(t, b, data, peerA)
	return a, b
}

func TestMergeDifferentFiles(t *testing.T) {
	a, b := pair(t, map[string]string{"x": "x0", "y": "y0"})
	writeFile(t, a.Dir(), "x", "x1")
	writeFile(t, b.Dir(), "y", "y1")
	writeFile(t, b.Dir(), "new/z", "z")
	scan(t, a)
	scan(t, b)
	ra, rb := exchange(t, a, b)
	assert.Equal(t, Merged, ra.Kind)
	assert.Equal(t, Merged, rb.Kind)
	assert.Empty(t, ra.Conflicts)
	assert.Equal(t, []string{"new/z", "y"}, ra.Changed)
	assert.Equal(t, []string{"x"}, rb.Changed)
	assert.Equal(t, map[string]string{"x": "x1", "y": "y1", "new/z": "z"}, folderFiles(t, a.Dir()))
	converged(t, a, b)
	// The merge commit is canonical: both sides made the same one, so the
	// next exchange has nothing to do.
	assert.Equal(t, ra.Head, rb.Head)
	_, err := a.WriteBundle(t.Context(), &discard{}, []Hash{head(t, b)})
	assert.ErrorIs(t, err, ErrNothingToSend)
	parents := gitStore(t, a, "log", "-1", "--format=%P")
	assert.Len(t, parents, 81)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestMergeConflict(t *testing.T) {
	a, b := pair(t, map[string]string{"doc.txt": "base", "other": "o"})
	writeFile(t, a.Dir(), "doc.txt", "from a")
	writeFile(t, b.Dir(), "doc.txt", "from b") // b's clock is an hour later: b wins
	scan(t, a)
	scan(t, b)
	ra, rb := exchange(t, a, b)
	require.Equal(t, Merged, ra.Kind)
	require.Len(t, ra.Conflicts, 1)
	assert.Equal(t, ra.Conflicts, rb.Conflicts)
	cn := ra.Conflicts[0]
	assert.Regexp(t, `^doc\.sync-conflict-20260301-\d{6}-AAAAAAA\.txt$`, cn)
	files := folderFiles(t, a.Dir())
	assert.Equal(t, "from b", files["doc.txt"])
	assert.Equal(t, "from a", files[cn])
	converged(t, a, b)
	assert.Equal(t, ra.Head, rb.Head)
}

func TestMergeConflictSameTimeTieBreak(t *testing.T) {
	a := newTestStore(t, "AAAAAAA-A", epoch)
	b := newTestStore(t, "BBBBBBB-B", epoch)
	writeFile(t, a.Dir(), ".bashrc", "a")
	writeFile(t, b.Dir(), ".bashrc", "b")
	scan(t, a)
	scan(t, b)
	ra, _ := exchange(t, a, b)
	require.Len(t, ra.Conflicts, 1)
	// Same committer time: the larger e-mail (b) keeps the name.
	assert.Equal(t, ".bashrc.sync-conflict-20260301-120001-AAAAAAA", ra.Conflicts[0])
	assert.Equal(t, "b", folderFiles(t, a.Dir())[".bashrc"])
	converged(t, a, b)
}

func TestMergeEditVsDelete(t *testing.T) {
	a, b := pair(t, map[string]string{"f": "base", "g": "g"})
	require.NoError(t, os.Remove(filepath.Join(a.Dir(), "f")))
	writeFile(t, b.Dir(), "f", "edited")
	writeFile(t, a.Dir(), "g", "g2")
	scan(t, a)
	scan(t, b)
	ra, rb := exchange(t, a, b)
	assert.Empty(t, ra.Conflicts)
	assert.Empty(t, rb.Conflicts)
	assert.Equal(t, map[string]string{"f": "edited", "g": "g2"}, folderFiles(t, a.Dir()))
	converged(t, a, b)
}

func TestMergeUnrelatedHistories(t *testing.T) {
	a := newTestStore(t, "AAAAAAA-A", epoch)
	b := newTestStore(t, "BBBBBBB-B", epoch.Add(time.Minute))
	writeFile(t, a.Dir(), "only-a", "a")
	writeFile(t, a.Dir(), "same", "same")
	writeFile(t, a.Dir(), "both", "a's")
	writeFile(t, b.Dir(), "only-b/x", "b")
	writeFile(t, b.Dir(), "same", "same")
	writeFile(t, b.Dir(), "both", "b's")
	scan(t, a)
	scan(t, b)
	ra, rb := exchange(t, a, b)
	assert.Equal(t, Merged, ra.Kind)
	assert.Equal(t, Merged, rb.Kind)
	require.Len(t, ra.Conflicts, 1)
	files := folderFiles(t, a.Dir())
	assert.Equal(t, "b's", files["both"])
	assert.Equal(t, "a's", files[ra.Conflicts[0]])
	assert.Equal(t, "a", files["only-a"])
	assert.Equal(t, "b", files["only-b/x"])
	converged(t, a, b)
}

func TestMergeFileVsDirectory(t *testing.T) {
	a, b := pair(t, map[string]string{"keep": "k"})
	writeFile(t, a.Dir(), "p", "a file")
	writeFile(t, b.Dir(), "p/inner", "in a dir")
	scan(t, a)
	scan(t, b)
	ra, _ := exchange(t, a, b)
	require.Len(t, ra.Conflicts, 1)
	files := folderFiles(t, a.Dir())
	assert.Equal(t, "in a dir", files["p/inner"])
	assert.Equal(t, "a file", files[ra.Conflicts[0]])
	converged(t, a, b)
}

// TestApplyKeepsLocalEdit: an uncommitted local edit is committed before the
// bundle is integrated, never overwritten.
func TestApplyKeepsLocalEdit(t *testing.T) {
	a, b := pair(t, map[string]string{"f": "base"})
	writeFile(t, a.Dir(), "f", "from a")
	scan(t, a)
	data, _ := bundleOf(t, a, head(t, b))
	writeFile(t, b.Dir(), "f", "local, not scanned")
	res := apply(t, b, data, peerA)
	assert.Equal(t, Merged, res.Kind)
	require.Len(t, res.Conflicts, 1)
	files := folderFiles(t, b.Dir())
	assert.ElementsMatch(t, []string{"from a", "local, not scanned"}, []string{files["f"], files[res.Conflicts[0]]})
}

// TestCheckoutSkipsRacingEdit: a file whose content is not the old head's
// (an edit that raced in) is neither overwritten nor deleted.
func TestCheckoutSkipsRacingEdit(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	writeFile(t, s.Dir(), "f", "v1")
	writeFile(t, s.Dir(), "g", "g1")
	scan(t, s)
	_, root, err := s.headTreeLocked()
	require.NoError(t, err)
	old := root.flat()
	writeFile(t, s.Dir(), "f", "edited locally")
	writeFile(t, s.Dir(), "g", "edited too")
	s.mu.Lock()
	h, err := s.writeObjectLocked(plumbing.BlobObject, []byte("v2"))
	require.NoError(t, err)
	changed, err := s.checkoutLocked(t.Context(), old, map[string]fileEntry{"f": {mode: filemode.Regular, hash: h}})
	s.mu.Unlock()
	require.NoError(t, err)
	assert.Empty(t, changed)
	assert.Equal(t, map[string]string{"f": "edited locally", "g": "edited too"}, folderFiles(t, s.Dir()))
}

func TestConcurrentUse(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				writeFile(t, s.Dir(), fmt.Sprintf("g%d/f%d", i, j), "x")
				_, err := s.Scan(t.Context())
				assert.NoError(t, err)
				_, err = s.Head()
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	scan(t, s)
	// A scan may catch a file between its creation and its write (an empty
	// "add" then a "modify"), so count files, not commits.
	assert.Len(t, strings.Fields(gitStore(t, s, "ls-tree", "-r", "--name-only", "HEAD")), 20)
	fsck(t, s)
}

// looseObject reports whether the object h is stored as a loose object.
func looseObject(s *Store, h string) bool {
	_, err := os.Stat(filepath.Join(s.Dir(), GitDirName, "objects", h[:2], h[2:]))
	return err == nil
}

// A merge that makes many trees writes them, and its commit, into a pack;
// a restore goes through the pack writer too (its few objects end up loose,
// as a small scan's do).
func TestMergeAndRestoreObjectsPacked(t *testing.T) {
	base := map[string]string{}
	for i := range 120 {
		base[fmt.Sprintf("d%03d/f", i)] = fmt.Sprint(i)
		base[fmt.Sprintf("d%03d/g", i)] = fmt.Sprint(i)
	}
	a, b := pair(t, base)
	for i := range 120 { // 120 subtrees in the merged tree that neither side has
		writeFile(t, a.Dir(), fmt.Sprintf("d%03d/f", i), fmt.Sprint("a", i))
		writeFile(t, b.Dir(), fmt.Sprintf("d%03d/g", i), fmt.Sprint("b", i))
	}
	scan(t, a)
	scan(t, b)
	before := len(objectFiles(t, a))
	ra, rb := exchange(t, a, b)
	require.Equal(t, Merged, ra.Kind)
	require.Equal(t, Merged, rb.Kind)
	converged(t, a, b)
	for _, s := range []*Store{a, b} {
		mh := gitStore(t, s, "rev-parse", "HEAD")
		assert.Equal(t, "commit", gitStore(t, s, "cat-file", "-t", mh))
		assert.False(t, looseObject(s, mh), "merge commit packed")
		tree := gitStore(t, s, "rev-parse", "HEAD^{tree}")
		assert.False(t, looseObject(s, tree), "merge tree packed")
	}
	// a gained: the bundle's pack and index, the merge's pack and index,
	// refs aside; no loose object.
	assert.Equal(t, before+4, len(objectFiles(t, a)))

	hist, err := a.History(t.Context(), "d000/f", 10)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(hist), 2)
	c, err := a.Restore(t.Context(), "d000/f", hist[1].Commit)
	require.NoError(t, err)
	assert.Equal(t, "0", gitStore(t, a, "cat-file", "-p", "HEAD:d000/f"))
	assert.Equal(t, c.Commit.String(), gitStore(t, a, "rev-parse", "HEAD"))
	fsck(t, a)
}

// realClock is one real time for several devices: each reads it with its
// own offset; every read advances it a second.
type realClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *realClock) with(offset time.Duration) func() time.Time {
	return func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.t = c.t.Add(time.Second)
		return c.t.Add(offset)
	}
}

func (c *realClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestMergeClockAhead: a device whose clock is a year ahead wins the first
// conflict (nothing shows its clock is wrong yet) but, once the history
// holds a commit made on top of its work, its lead is taken off its commit
// times: the edit made later in real time keeps the name, on both sides
// (they converge), although the other device's commit time is a year
// larger.
func TestMergeClockAhead(t *testing.T) {
	rt := &realClock{t: epoch}
	a := newTestStore(t, "AAAAAAA-A", epoch, func(c *Config) { c.Now = rt.with(0) })
	b := newTestStore(t, "BBBBBBB-B", epoch, func(c *Config) { c.Now = rt.with(365 * 24 * time.Hour) })
	writeFile(t, a.Dir(), "base", "base")
	scan(t, a)
	data, _ := bundleOf(t, a)
	apply(t, b, data, peerA)
	// b edits, a builds on it: the history now shows b's lead.
	writeFile(t, b.Dir(), "x", "b1")
	scan(t, b)
	exchange(t, a, b)
	writeFile(t, a.Dir(), "y", "a1")
	scan(t, a)
	exchange(t, a, b)
	converged(t, a, b)

	// b edits f, a edits it a minute later (real time); b's commit time is
	// a year larger.
	writeFile(t, b.Dir(), "f", "from b, earlier")
	scan(t, b)
	rt.advance(time.Minute)
	writeFile(t, a.Dir(), "f", "from a, later")
	scan(t, a)
	ra, rb := exchange(t, a, b)
	require.Len(t, ra.Conflicts, 1)
	assert.Equal(t, ra.Conflicts, rb.Conflicts)
	assert.Contains(t, ra.Conflicts[0], "BBBBBBB", "b's edit is the conflict copy")
	assert.Equal(t, "from a, later", folderFiles(t, a.Dir())["f"])
	converged(t, a, b)
	assert.Equal(t, ra.Head, rb.Head)
}

// Same files on both sides, different histories: only the side with the
// smaller head merges; the other keeps its head (nothing to integrate) and
// fast-forwards to that merge when it arrives. One merge commit in all, and
// no new head that would set a third peer merging again.
func TestMergeSameTreeOneSideMerges(t *testing.T) {
	a, b := pair(t, map[string]string{"x": "x0"})
	writeFile(t, a.Dir(), "same.txt", "same")
	writeFile(t, b.Dir(), "same.txt", "same")
	scan(t, a)
	scan(t, b)
	small, large := a, b
	smallPeer, largePeer := peerB, peerA // who delivers to small, to large
	if head(t, a).String() > head(t, b).String() {
		small, large = b, a
		smallPeer, largePeer = peerA, peerB
	}
	smallHead, largeHead := head(t, small), head(t, large)
	toLarge, _ := bundleOf(t, small, largeHead)
	toSmall, _ := bundleOf(t, large, smallHead)

	r := apply(t, large, toLarge, largePeer)
	assert.Equal(t, UpToDate, r.Kind, "the larger head waits")
	assert.Equal(t, largeHead, head(t, large))
	peerHead, err := large.PeerHead(largePeer)
	require.NoError(t, err)
	assert.Equal(t, smallHead, peerHead, "their history is kept under refs/peers")

	r = apply(t, small, toSmall, smallPeer)
	assert.Equal(t, Merged, r.Kind, "the smaller head merges")
	assert.Empty(t, r.Changed)
	merge, _ := bundleOf(t, small, largeHead)
	r = apply(t, large, merge, largePeer)
	assert.Equal(t, FastForward, r.Kind)
	assert.Equal(t, head(t, small), head(t, large))
	converged(t, a, b)
}
