package gitstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// conflictPair makes a real conflict: A and B share notes/f.txt, both edit
// it, B's edit is the newer, and A merges B's bundle. It returns A (holding
// the conflict copy of its own version) and B.
func conflictPair(t *testing.T) (a, b *Store, copyPath string) {
	t.Helper()
	a = newTestStore(t, peerA, epoch)
	b = newTestStore(t, peerB, epoch.Add(time.Hour))
	writeFile(t, a.Dir(), "notes/f.txt", "base\n")
	writeFile(t, a.Dir(), "other.txt", "x\n")
	scan(t, a)
	give(t, a, b, peerA)
	writeFile(t, a.Dir(), "notes/f.txt", "from a\n")
	scan(t, a)
	writeFile(t, b.Dir(), "notes/f.txt", "from b\n")
	scan(t, b)
	res := give(t, b, a, peerB)
	require.Equal(t, Merged, res.Kind)
	require.Len(t, res.Conflicts, 1)
	return a, b, res.Conflicts[0]
}

func TestOriginalOf(t *testing.T) {
	for in, want := range map[string]string{
		"notes/f.sync-conflict-20260301-120001-AAAAAAA.txt":   "notes/f.txt",
		"f.sync-conflict-20260301-120001-AAAAAAA-3f2a9c1.txt": "f.txt",
		".bashrc.sync-conflict-20260301-120001-AAAAAAA":       ".bashrc",
		"a.tar.sync-conflict-20260301-120001-AAAAAAA.gz":      "a.tar.gz",
		"x.sync-conflict-20260301-120001-AAAAAAA/y.txt":       "",
		"plain.txt": "",
		".sync-conflict-20260301-120001-AAAAAAA.txt":               "",
		"d/Makefile.sync-conflict-20260301-120001-BBBBBBB-0123abc": "d/Makefile",
	} {
		got, ok := OriginalOf(in)
		assert.Equal(t, want, got, in)
		assert.Equal(t, want != "", ok, in)
	}
}

// Conflicts lists a copy made by a real merge with the original, and who
// made each side: the copy's side is A's losing edit (made here), the
// original's B's winning edit, delivered by B.
func TestConflictsListsBothSides(t *testing.T) {
	a, _, cp := conflictPair(t)
	ctx := context.Background()
	cs, err := a.Conflicts(ctx)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	c := cs[0]
	assert.Equal(t, cp, c.Copy)
	assert.Equal(t, "notes/f.txt", c.Original)
	assert.True(t, c.CopySide.Exists)
	assert.True(t, c.OriginalSide.Exists)
	assert.Equal(t, int64(len("from a\n")), c.CopySide.Size)
	assert.Equal(t, strings.TrimSpace(gitStore(t, a, "rev-parse", "HEAD:"+cp)), c.CopySide.Object.String())
	assert.Equal(t, strings.TrimSpace(gitStore(t, a, "rev-parse", "HEAD:notes/f.txt")), c.OriginalSide.Object.String())

	assert.Contains(t, c.CopySide.Change.Author, peerA+"@peersync")
	assert.Equal(t, "", c.CopySide.Change.From, "A's own edit")
	assert.False(t, c.CopySide.Change.Commit.IsZero())
	assert.Equal(t, "from a\n", gitStore(t, a, "show", c.CopySide.Change.Commit.String()+":notes/f.txt")+"\n")

	assert.Contains(t, c.OriginalSide.Change.Author, peerB+"@peersync")
	assert.Equal(t, peerB, c.OriginalSide.Change.From)
	assert.True(t, c.OriginalSide.Change.Time.After(c.CopySide.Change.Time))

	b := newTestStore(t, "C", epoch)
	cs, err = b.Conflicts(ctx)
	require.NoError(t, err)
	assert.Empty(t, cs, "an empty store has none")
}

// Keeping the copy puts its content at the original path and deletes the
// copy, as two ordinary commits that the peer receives as a fast-forward.
func TestResolveConflictKeepCopy(t *testing.T) {
	a, b, cp := conflictPair(t)
	ctx := context.Background()
	out, err := a.ResolveConflict(ctx, cp, KeepCopy)
	require.NoError(t, err)
	require.Len(t, out, 2)
	assert.Equal(t, ActionModify, out[0].Action)
	assert.Equal(t, "notes/f.txt", out[0].Path)
	assert.Equal(t, ActionDelete, out[1].Action)
	assert.Equal(t, cp, out[1].Path)

	files := folderFiles(t, a.Dir())
	assert.Equal(t, "from a\n", files["notes/f.txt"])
	assert.NotContains(t, files, cp)
	assert.Equal(t, "delete "+cp+"\nmodify notes/f.txt", gitStore(t, a, "log", "-2", "--format=%s"))
	assert.Equal(t, "from a", gitStore(t, a, "show", "HEAD:notes/f.txt"))
	fsck(t, a)
	cs, err := a.Conflicts(ctx)
	require.NoError(t, err)
	assert.Empty(t, cs)

	res := give(t, a, b, peerA)
	assert.Equal(t, FastForward, res.Kind)
	assert.Equal(t, folderFiles(t, a.Dir()), folderFiles(t, b.Dir()))
	assert.Equal(t, head(t, a), head(t, b))
	fsck(t, b)
}

// Keeping the original deletes the copy in one commit; both versions stay
// in the history.
func TestResolveConflictKeepOriginal(t *testing.T) {
	a, _, cp := conflictPair(t)
	out, err := a.ResolveConflict(context.Background(), cp, KeepOriginal)
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, ActionDelete, out[0].Action)
	files := folderFiles(t, a.Dir())
	assert.Equal(t, "from b\n", files["notes/f.txt"])
	assert.NotContains(t, files, cp)
	// The copy's content is still in the history.
	assert.Equal(t, "from a", gitStore(t, a, "show", "HEAD~1:"+cp))
	fsck(t, a)
}

// An edit of the copy not yet scanned is committed first, and it is what
// is kept: nothing the user wrote is lost.
func TestResolveConflictKeepsLocalEditOfCopy(t *testing.T) {
	a, _, cp := conflictPair(t)
	writeFile(t, a.Dir(), cp, "from a, edited\n")
	out, err := a.ResolveConflict(context.Background(), cp, KeepCopy)
	require.NoError(t, err)
	require.Len(t, out, 2)
	assert.Equal(t, "from a, edited\n", folderFiles(t, a.Dir())["notes/f.txt"])
	assert.Equal(t, "delete "+cp+"\nmodify notes/f.txt\nmodify "+cp, gitStore(t, a, "log", "-3", "--format=%s"))
}

// Bad requests change nothing.
func TestResolveConflictRefuses(t *testing.T) {
	a, _, cp := conflictPair(t)
	ctx := context.Background()
	before := head(t, a)
	_, err := a.ResolveConflict(ctx, "other.txt", KeepCopy)
	assert.True(t, errors.Is(err, ErrNotConflictCopy), "%v", err)
	_, err = a.ResolveConflict(ctx, "notes/f.sync-conflict-20200101-000000-ZZZZZZZ.txt", KeepCopy)
	assert.True(t, errors.Is(err, ErrNotConflictCopy), "a copy name not in main: %v", err)
	_, err = a.ResolveConflict(ctx, cp, "both")
	assert.ErrorContains(t, err, `want "copy" or "original"`)
	_, err = a.ResolveConflict(ctx, "../x.sync-conflict-20200101-000000-ZZZZZZZ.txt", KeepCopy)
	assert.Error(t, err)
	assert.Equal(t, before, head(t, a))

	// The original's folder gone from disk with .peersync: the guard.
	require.NoError(t, os.RemoveAll(filepath.Join(a.Dir(), GitDirName)))
	_, err = a.ResolveConflict(ctx, cp, KeepCopy)
	assert.True(t, errors.Is(err, ErrNotInitialized), "%v", err)
	assert.FileExists(t, filepath.Join(a.Dir(), filepath.FromSlash(cp)))
}

// When the original was edited again after the conflict, the losing edit
// is no longer among its two newest changes: the copy's side comes from
// its name (time and device prefix), without a walk of the history.
func TestConflictsCopySideFromName(t *testing.T) {
	a, _, cp := conflictPair(t)
	writeFile(t, a.Dir(), "notes/f.txt", "edited again\n")
	scan(t, a)
	cs, err := a.Conflicts(context.Background())
	require.NoError(t, err)
	require.Len(t, cs, 1)
	c := cs[0]
	when, dev := copyMark(cp)
	assert.Equal(t, peerA[:7], dev)
	assert.True(t, c.CopySide.Change.Commit.IsZero())
	assert.Equal(t, when, c.CopySide.Change.Time)
	assert.Equal(t, dev+" <"+dev+"@peersync>", c.CopySide.Change.Author)
	assert.Equal(t, head(t, a), c.OriginalSide.Change.Commit, "the newest edit made the original's content")
}
