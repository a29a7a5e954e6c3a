package gitstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// commitFiles returns, newest first, the name-status lines of every commit.
func commitFiles(t *testing.T, s *Store) [][]string {
	t.Helper()
	out := gitStore(t, s, "log", "--name-status", "--format=%x00%s", "--no-renames")
	var commits [][]string
	for _, c := range strings.Split(out, "\x00")[1:] {
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(c), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		commits = append(commits, lines)
	}
	return commits
}

func TestScanAddModifyDelete(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, "b.txt", "b")
	writeFile(t, dir, "a/x.txt", "x")
	writeFile(t, dir, "a/deep/y.txt", "y")

	ch := scan(t, s)
	require.Len(t, ch, 3)
	var paths []string
	for _, c := range ch {
		assert.Equal(t, ActionAdd, c.Action)
		assert.Equal(t, "dev <dev@peersync>", c.Author)
		paths = append(paths, c.Path)
	}
	assert.Equal(t, []string{"a/deep/y.txt", "a/x.txt", "b.txt"}, paths)
	assert.Equal(t, ch[2].Commit, head(t, s))
	assert.Empty(t, scan(t, s), "nothing changed")

	writeFile(t, dir, "a/x.txt", "x2")
	require.NoError(t, os.Remove(filepath.Join(dir, "b.txt")))
	writeFile(t, dir, "c.txt", "c")
	require.NoError(t, os.Chmod(filepath.Join(dir, "a/deep/y.txt"), 0o755))
	ch = scan(t, s)
	require.Len(t, ch, 4)
	got := []string{}
	for _, c := range ch {
		got = append(got, string(c.Action)+" "+c.Path)
	}
	assert.Equal(t, []string{"delete b.txt", "modify a/deep/y.txt", "modify a/x.txt", "add c.txt"}, got)
	assert.Empty(t, scan(t, s))

	// Each commit touches exactly one file, with the right message.
	commits := commitFiles(t, s)
	require.Len(t, commits, 7)
	want := [][]string{
		{"add c.txt", "A\tc.txt"},
		{"modify a/x.txt", "M\ta/x.txt"},
		{"modify a/deep/y.txt", "M\ta/deep/y.txt"},
		{"delete b.txt", "D\tb.txt"},
		{"add b.txt", "A\tb.txt"},
		{"add a/x.txt", "A\ta/x.txt"},
		{"add a/deep/y.txt", "A\ta/deep/y.txt"},
	}
	assert.Equal(t, want, commits)
	assert.Equal(t, "100755", strings.Fields(gitStore(t, s, "ls-tree", "-r", "HEAD", "a/deep/y.txt"))[0])
	assert.Equal(t, "100644", strings.Fields(gitStore(t, s, "ls-tree", "-r", "HEAD", "a/x.txt"))[0])
	assert.Equal(t, "dev <dev@peersync>", gitStore(t, s, "log", "-1", "--format=%an <%ae>"))
	assert.Equal(t, "dev <dev@peersync>", gitStore(t, s, "log", "-1", "--format=%cn <%ce>"))
	fsck(t, s)

	// Deleting everything leaves an empty tree, still valid.
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "a")))
	require.NoError(t, os.Remove(filepath.Join(dir, "c.txt")))
	assert.Len(t, scan(t, s), 3)
	fsck(t, s)
}

func TestScanSkips(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, "keep.txt", "k")
	writeFile(t, dir, "nested-git/.git/HEAD", "ref")
	writeFile(t, dir, "nested-git/file", "f")
	writeFile(t, dir, "nested-ps/.peersync/HEAD", "ref")
	writeFile(t, dir, "nested-ps/file", "f")
	writeFile(t, dir, ".peersync-tmp-123", "tmp")
	writeFile(t, dir, "sub/.git", "a .git file is reserved too")
	require.NoError(t, os.Symlink("keep.txt", filepath.Join(dir, "link")))
	require.NoError(t, os.Symlink("/etc", filepath.Join(dir, "dirlink")))

	ch := scan(t, s)
	require.Len(t, ch, 1)
	assert.Equal(t, "keep.txt", ch[0].Path)
	assert.Equal(t, "keep.txt", gitStore(t, s, "ls-tree", "-r", "--name-only", "HEAD"))
	fsck(t, s)
}

func TestScanSymlinksAllowed(t *testing.T) {
	s := newTestStore(t, "dev", epoch, func(c *Config) { c.AllowSymlinks = true })
	writeFile(t, s.Dir(), "f", "x")
	require.NoError(t, os.Symlink("f", filepath.Join(s.Dir(), "link")))
	ch := scan(t, s)
	require.Len(t, ch, 2)
	out := gitStore(t, s, "ls-tree", "-r", "HEAD", "link")
	assert.True(t, strings.HasPrefix(out, "120000 "), out)
	assert.Equal(t, "f", gitStore(t, s, "cat-file", "-p", "HEAD:link"))
	fsck(t, s)
}

func TestScanStatCache(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "f", "one")
	old := time2020()
	require.NoError(t, os.Chtimes(filepath.Join(s.Dir(), "f"), old, old))
	scan(t, s)
	require.NoError(t, s.Close())
	s2, err := Open(Config{Dir: s.Dir()})
	require.NoError(t, err)
	defer s2.Close()
	_, ok := s2.fst.stats.entries["f"]
	assert.True(t, ok, "stat cache persisted")
	// Same size, new content, new mtime: detected.
	writeFile(t, s.Dir(), "f", "two")
	ch := scan(t, s2)
	require.Len(t, ch, 1)
	assert.Equal(t, ActionModify, ch[0].Action)
}

// TestScanRacyClock: the stat cache's racy rule reads the filesystem's
// clock (peersync-scanclock). A file modified a second before the scan
// (copied in just before launch) is cached at once, so the next scan does
// not hash it again; a file whose time is the scan's own clock tick is not
// cached, and an edit in that tick that keeps size and time is still seen.
func TestScanRacyClock(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, "copied.bin", "just copied in")
	second := time.Now().Add(-time.Second)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "copied.bin"), second, second))
	require.Len(t, scan(t, s), 1)
	_, cached := s.fst.stats.entries["copied.bin"]
	assert.True(t, cached, "modified before the scan's clock: cached")
	opened := 0
	testHookBeforeOpen = func(string) { opened++ }
	defer func() { testHookBeforeOpen = nil }()
	require.Empty(t, scan(t, s))
	assert.Zero(t, opened, "the next scan does not read it again")

	// A file whose time is at or after the scan's clock (written in the
	// tick the scan started in; here a second ahead, which no tick of the
	// next scan's clock can pass) is racy: hashed, not cached.
	writeFile(t, dir, "racy.txt", "aaaa")
	tick := time.Now().Add(time.Second)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "racy.txt"), tick, tick))
	require.Len(t, scan(t, s), 1)
	_, cached = s.fst.stats.entries["racy.txt"]
	assert.False(t, cached, "modified at or after the scan's clock: not cached")
	fi, err := os.Stat(filepath.Join(s.gitDir, scanClockFile))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), fi.ModTime(), 5*time.Second, "the clock file is rewritten by each scan")
	// An edit that keeps size and time: seen, because it was not cached.
	writeFile(t, dir, "racy.txt", "bbbb")
	require.NoError(t, os.Chtimes(filepath.Join(dir, "racy.txt"), tick, tick))
	ch := scan(t, s)
	require.Len(t, ch, 1)
	assert.Equal(t, []string{"modify racy.txt"}, actions(ch))
	assert.Equal(t, "bbbb", gitStore(t, s, "show", "main:racy.txt"))

	// Without a writable clock file, the rule falls back to 2 s before now.
	assert.WithinDuration(t, time.Now().Add(-racyWindow),
		(&Store{gitDir: filepath.Join(dir, "no-such-dir")}).racyFromLocked(time.Now()), time.Second)
}

func TestScanLargeFileStreamed(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	big := strings.Repeat("0123456789abcdef", 3<<16) // 3 MiB
	writeFile(t, s.Dir(), "big.bin", big)
	writeFile(t, s.Dir(), "empty", "")
	require.Len(t, scan(t, s), 2)
	assert.Equal(t, big, gitStore(t, s, "cat-file", "blob", "HEAD:big.bin"))
	assert.Equal(t, "", gitStore(t, s, "cat-file", "blob", "HEAD:empty"))
	fsck(t, s)
}
