package gitstore

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// treeContents returns main's files with their content, per the git CLI.
func treeContents(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range tracked(t, s) {
		out[p] = gitStore(t, s, "cat-file", "-p", "HEAD:"+p)
	}
	return out
}

// The parallel walk over many directories finds every kind of change in
// every directory, keeps the skip rules and commits in the documented order.
func TestScanManyDirectories(t *testing.T) {
	s := newTestStore(t, "dev", epoch, func(c *Config) { c.AllowSymlinks = true; c.MaxDeleteCount = 1000 })
	dir := s.Dir()
	want := map[string]string{}
	put := func(p, content string) {
		writeFile(t, dir, p, content)
		want[p] = content
	}
	for i := range 40 {
		for j := range 3 {
			put(fmt.Sprintf("d%02d/e%d/f%d.txt", i, j, j), fmt.Sprint(i, j))
		}
		put(fmt.Sprintf("d%02d/top.txt", i), fmt.Sprint(i))
	}
	put("d05/"+IgnoreFileName, "*.log")
	writeFile(t, dir, "d05/e1/x.log", "ignored")
	writeFile(t, dir, "d06/nested/.git/HEAD", "ref")
	writeFile(t, dir, "d06/nested/inside.txt", "other history")
	writeFile(t, dir, "d07/e0/"+tmpPrefix+"1", "temp")
	require.NoError(t, os.Symlink("top.txt", filepath.Join(dir, "d08/link")))
	want["d08/link"] = "top.txt"
	ch := scan(t, s)
	require.Len(t, ch, len(want))
	assert.Equal(t, want, treeContents(t, s))
	assert.Empty(t, scan(t, s), "nothing changed")

	// Changes spread over the tree.
	put("d10/e2/f2.txt", "modified")
	put("d39/e0/new.txt", "new file")
	put("d40/deep/er/new.txt", "new directory")
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "d20")))
	for j := range 3 {
		delete(want, fmt.Sprintf("d20/e%d/f%d.txt", j, j))
	}
	delete(want, "d20/top.txt")
	require.NoError(t, os.Remove(filepath.Join(dir, "d30/top.txt"))) // a file becomes a directory
	delete(want, "d30/top.txt")
	put("d30/top.txt/inner.txt", "was a file")
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "d31/e1"))) // a directory becomes a file
	delete(want, "d31/e1/f1.txt")
	put("d31/e1", "was a directory")
	require.NoError(t, os.Chmod(filepath.Join(dir, "d32/top.txt"), 0o755))
	require.NoError(t, os.Remove(filepath.Join(dir, "d08/link")))
	require.NoError(t, os.Symlink("e0", filepath.Join(dir, "d08/link")))
	want["d08/link"] = "e0"
	writeFile(t, dir, "d05/e2/y.log", "ignored too")
	writeFile(t, dir, "d33/bad\\name", "unsyncable")

	ch = scan(t, s)
	var got []string
	for _, c := range ch {
		got = append(got, string(c.Action)+" "+c.Path)
	}
	assert.Equal(t, []string{
		"delete d20/e0/f0.txt", "delete d20/e1/f1.txt", "delete d20/e2/f2.txt", "delete d20/top.txt",
		"delete d30/top.txt", "delete d31/e1/f1.txt",
		"modify d08/link", "modify d10/e2/f2.txt", "add d30/top.txt/inner.txt", "add d31/e1",
		"modify d32/top.txt", "add d39/e0/new.txt", "add d40/deep/er/new.txt",
	}, got)
	assert.Equal(t, want, treeContents(t, s))
	assert.Equal(t, "100755", strings.Fields(gitStore(t, s, "ls-tree", "HEAD", "d32/top.txt"))[0])
	assert.Empty(t, scan(t, s), "nothing changed")
	fsck(t, s)
}

// A tracked file the ignore rules come to exclude stays as last committed,
// in any directory of the parallel walk, and its stat cache entry goes.
func TestScanManyDirectoriesIgnoredTracked(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	for i := range 20 {
		writeFile(t, dir, fmt.Sprintf("d%02d/a.txt", i), "a")
		writeFile(t, dir, fmt.Sprintf("d%02d/b.dat", i), "b")
	}
	old := time2020()
	for i := range 20 {
		for _, n := range []string{"a.txt", "b.dat"} {
			p := filepath.Join(dir, fmt.Sprintf("d%02d", i), n)
			require.NoError(t, os.Chtimes(p, old, old))
		}
	}
	require.Len(t, scan(t, s), 40)
	require.Len(t, s.fst.stats.entries, 40)
	writeFile(t, dir, "d07/"+IgnoreFileName, "*.dat\n")
	require.NoError(t, os.Remove(filepath.Join(dir, "d07/b.dat")))
	ch := scan(t, s)
	require.Len(t, ch, 1)
	assert.Equal(t, "d07/"+IgnoreFileName, ch[0].Path)
	assert.Len(t, tracked(t, s), 41, "the ignored file stays as last committed")
	_, cached := s.fst.stats.entries["d07/b.dat"]
	assert.False(t, cached)
}

// A rescan that changes nothing does not rewrite the stat cache.
func TestRescanKeepsStatCacheFile(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	old := time2020()
	for i := range 50 {
		p := fmt.Sprintf("d%d/f%d", i%5, i)
		writeFile(t, s.Dir(), p, fmt.Sprint(i))
		require.NoError(t, os.Chtimes(filepath.Join(s.Dir(), filepath.FromSlash(p)), old, old))
	}
	require.Len(t, scan(t, s), 50)
	ino := func() uint64 {
		fi, err := os.Stat(s.statCachePath())
		require.NoError(t, err)
		return inode(fi)
	}
	before := ino()
	for range 3 {
		require.Empty(t, scan(t, s))
	}
	assert.Equal(t, before, ino(), "not rewritten (written files are renamed into place)")
	writeFile(t, s.Dir(), "d1/f1", "changed")
	future := time.Now().Add(time.Hour) // racy whatever the clock's tick
	require.NoError(t, os.Chtimes(filepath.Join(s.Dir(), "d1", "f1"), future, future))
	require.Len(t, scan(t, s), 1)
	assert.NotEqual(t, before, ino(), "rewritten after a change")
	var keys []string
	for k := range s.fst.stats.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Len(t, keys, 49, "the racy file is not cached")
}
