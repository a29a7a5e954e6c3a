package gitstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// actions renders changes as "action path" lines.
func actions(ch []Change) []string {
	out := []string{}
	for _, c := range ch {
		out = append(out, string(c.Action)+" "+c.Path)
	}
	return out
}

func history(t *testing.T, s *Store, p string, limit int) []Change {
	t.Helper()
	ch, err := s.History(context.Background(), p, limit)
	require.NoError(t, err)
	return ch
}

func TestHistory(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	assert.Empty(t, history(t, s, "", 0), "no commit yet")

	writeFile(t, dir, "a.txt", "1")
	writeFile(t, dir, "d/b.txt", "b")
	scan(t, s)
	writeFile(t, dir, "a.txt", "2")
	scan(t, s)
	require.NoError(t, os.Remove(filepath.Join(dir, "a.txt")))
	writeFile(t, dir, "d/c.txt", "c")
	scan(t, s)

	all := history(t, s, "", 0)
	assert.Equal(t, []string{"add d/c.txt", "delete a.txt", "modify a.txt", "add d/b.txt", "add a.txt"}, actions(all))
	for i := 1; i < len(all); i++ {
		assert.False(t, all[i].Time.After(all[i-1].Time), "newest first")
	}
	assert.Equal(t, head(t, s), all[0].Commit)
	assert.Equal(t, "dev <dev@peersync>", all[0].Author)

	// A deleted file's history is listed, deletion included.
	a := history(t, s, "a.txt", 0)
	assert.Equal(t, []string{"delete a.txt", "modify a.txt", "add a.txt"}, actions(a))
	// The log agrees with git's.
	want := strings.Fields(gitStore(t, s, "log", "--format=%H", "--", "a.txt"))
	var got []string
	for _, c := range a {
		got = append(got, c.Commit.String())
	}
	assert.Equal(t, want, got)

	// A directory, a limit, an unknown path, an invalid path.
	assert.Equal(t, []string{"add d/c.txt", "add d/b.txt"}, actions(history(t, s, "d", 0)))
	assert.Equal(t, []string{"add d/c.txt", "add d/b.txt"}, actions(history(t, s, "d/", 0)))
	assert.Equal(t, []string{"add d/c.txt", "delete a.txt"}, actions(history(t, s, "", 2)))
	assert.Empty(t, history(t, s, "nope.txt", 0))
	_, err := s.History(context.Background(), "../x", 0)
	assert.Error(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.History(ctx, "", 0)
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, s.Close())
	_, err = s.History(context.Background(), "", 0)
	assert.ErrorIs(t, err, ErrClosed)
}

// Merge commits are skipped, except for what they alone introduce: the
// conflict copy of a file changed on both sides.
func TestHistoryMerge(t *testing.T) {
	a := newTestStore(t, "AAAAAAA", epoch)
	b := newTestStore(t, "BBBBBBB", epoch.Add(100))
	writeFile(t, a.Dir(), "f.txt", "base")
	scan(t, a)
	bun, _ := bundleOf(t, a)
	apply(t, b, bun, peerA)
	writeFile(t, a.Dir(), "f.txt", "from a")
	scan(t, a)
	writeFile(t, b.Dir(), "f.txt", "from b")
	writeFile(t, b.Dir(), "g.txt", "g")
	scan(t, b)
	bun, _ = bundleOf(t, b, head(t, a))
	res := apply(t, a, bun, peerB)
	require.Equal(t, Merged, res.Kind)
	require.Len(t, res.Conflicts, 1)

	f := history(t, a, "f.txt", 0)
	assert.Equal(t, []string{"modify f.txt", "modify f.txt", "add f.txt"}, actions(f))
	for _, c := range f {
		assert.NotEqual(t, res.Head, c.Commit, "the merge commit did not change f.txt against every parent")
	}
	cp := history(t, a, res.Conflicts[0], 0)
	require.Len(t, cp, 1)
	assert.Equal(t, ActionAdd, cp[0].Action)
	assert.Equal(t, res.Head, cp[0].Commit)

	all := history(t, a, "", 0)
	assert.Len(t, all, 5, "add f, modify f (a), modify f and add g (b), conflict copy: %v", actions(all))
	assert.Equal(t, "add "+res.Conflicts[0], string(all[0].Action)+" "+all[0].Path)
}

// History of commits made by other tools: several files per commit.
func TestHistoryForeignCommits(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	cli := t.TempDir()
	git(t, cli, "init", "-q")
	writeFile(t, cli, "x.txt", "x")
	writeFile(t, cli, "y/z.txt", "z")
	git(t, cli, "add", ".")
	git(t, cli, "commit", "-qm", "two files")
	git(t, cli, "bundle", "create", "-q", filepath.Join(cli, "b.bundle"), "main")
	b, err := os.ReadFile(filepath.Join(cli, "b.bundle"))
	require.NoError(t, err)
	apply(t, s, b, peerA)
	all := history(t, s, "", 0)
	assert.Equal(t, []string{"add x.txt", "add y/z.txt"}, actions(all))
	assert.Equal(t, all[0].Commit, all[1].Commit)
	assert.Equal(t, "cli <cli@example.com>", all[0].Author)
}

func TestRestore(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, "a.txt", "v1")
	v1 := scan(t, s)[0].Commit
	writeFile(t, dir, "a.txt", "v2")
	require.NoError(t, os.Chmod(filepath.Join(dir, "a.txt"), 0o755))
	scan(t, s)
	writeFile(t, dir, "other.txt", "o")
	scan(t, s)

	// Restore content and mode, as a new commit touching only a.txt.
	ch, err := s.Restore(ctx, "a.txt", v1)
	require.NoError(t, err)
	assert.Equal(t, ActionModify, ch.Action)
	assert.Equal(t, "a.txt", ch.Path)
	assert.Equal(t, head(t, s), ch.Commit)
	assert.Equal(t, "v1", folderFiles(t, dir)["a.txt"])
	fi, err := os.Stat(filepath.Join(dir, "a.txt"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	commits := commitFiles(t, s)
	assert.Equal(t, []string{"modify a.txt", "M\ta.txt"}, commits[0])
	assert.Empty(t, scan(t, s), "folder and history agree")

	// Already at that content: nothing to do.
	ch, err = s.Restore(ctx, "a.txt", v1)
	require.NoError(t, err)
	assert.Zero(t, ch)

	// An uncommitted edit is committed first: no version is lost.
	writeFile(t, dir, "a.txt", "unsaved edit")
	ch, err = s.Restore(ctx, "a.txt", v1)
	require.NoError(t, err)
	assert.Equal(t, ActionModify, ch.Action)
	assert.Equal(t, []string{"modify a.txt", "modify a.txt", "modify a.txt", "add other.txt"},
		actions(history(t, s, "", 4)))
	assert.Equal(t, "unsaved edit", gitStore(t, s, "show", "HEAD~1:a.txt"))
	assert.Equal(t, "v1", folderFiles(t, dir)["a.txt"])

	// Restoring to a revision where the file did not exist deletes it.
	ch, err = s.Restore(ctx, "other.txt", v1)
	require.NoError(t, err)
	assert.Equal(t, ActionDelete, ch.Action)
	assert.NotContains(t, folderFiles(t, dir), "other.txt")

	// Undelete: restore to the parent of the delete commit.
	h := history(t, s, "other.txt", 0)
	require.Equal(t, []string{"delete other.txt", "add other.txt"}, actions(h))
	ch, err = s.Restore(ctx, "other.txt", h[1].Commit)
	require.NoError(t, err)
	assert.Equal(t, ActionAdd, ch.Action)
	assert.Equal(t, "o", folderFiles(t, dir)["other.txt"])

	// A file in a directory that no longer exists.
	writeFile(t, dir, "sub/deep/n.txt", "n")
	sub := scan(t, s)[0].Commit
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "sub")))
	scan(t, s)
	_, err = s.Restore(ctx, "sub/deep/n.txt", sub)
	require.NoError(t, err)
	assert.Equal(t, "n", folderFiles(t, dir)["sub/deep/n.txt"])

	// Errors: invalid path, unknown commit, a directory at rev, a file
	// where a directory is now.
	_, err = s.Restore(ctx, "../x", sub)
	assert.Error(t, err)
	_, err = s.Restore(ctx, "a.txt", Hash{1})
	assert.ErrorContains(t, err, "unknown commit")
	_, err = s.Restore(ctx, "sub", sub)
	assert.ErrorContains(t, err, "directory")
	_, err = s.Restore(ctx, "sub/deep/n.txt/inner", sub)
	require.NoError(t, err, "absent at rev and now: nothing to do")
	writeFile(t, dir, "blk", "file")
	blk := scan(t, s)[0].Commit
	require.NoError(t, os.Remove(filepath.Join(dir, "blk")))
	writeFile(t, dir, "blk/now-a-dir.txt", "d")
	scan(t, s)
	_, err = s.Restore(ctx, "blk", blk)
	assert.ErrorContains(t, err, "is a directory")

	fsck(t, s)
	assert.Empty(t, scan(t, s))
	require.NoError(t, s.Close())
	_, err = s.Restore(ctx, "a.txt", v1)
	assert.ErrorIs(t, err, ErrClosed)
}

// Restore refuses when the marker vanished.
func TestRestoreFolderGuard(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "a.txt", "1")
	v1 := scan(t, s)[0].Commit
	writeFile(t, s.Dir(), "a.txt", "2")
	scan(t, s)
	require.NoError(t, os.Rename(filepath.Join(s.Dir(), GitDirName), filepath.Join(s.Dir(), "moved")))
	_, err := s.Restore(context.Background(), "a.txt", v1)
	assert.ErrorIs(t, err, ErrNotInitialized)
	assert.Equal(t, "2", folderFiles(t, s.Dir())["a.txt"])
}
