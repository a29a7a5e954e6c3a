package gitstore

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tracked lists the files of main, per the git CLI.
func tracked(t *testing.T, s *Store) []string {
	t.Helper()
	out := gitStore(t, s, "ls-tree", "-r", "--name-only", "HEAD")
	if out == "" {
		return nil
	}
	l := strings.Split(out, "\n")
	sort.Strings(l)
	return l
}

func TestIgnoreRules(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, IgnoreFileName, "# build output\n*.log\n!keep.log\nbuild/\n/rootonly.txt\n\n")
	writeFile(t, dir, "a.txt", "a")
	writeFile(t, dir, "x.log", "x")
	writeFile(t, dir, "keep.log", "k")
	writeFile(t, dir, "build/out.bin", "o")
	writeFile(t, dir, "src/build/gen.go", "g") // "build/" matches at any depth
	writeFile(t, dir, "rootonly.txt", "r")
	writeFile(t, dir, "sub/rootonly.txt", "s") // anchored pattern: only the root
	writeFile(t, dir, "sub/"+IgnoreFileName, "secret.txt\r\n")
	writeFile(t, dir, "sub/secret.txt", "s")
	writeFile(t, dir, "sub/deeper/secret.txt", "s")
	writeFile(t, dir, "secret.txt", "root secret is not under sub") // nested rules apply below sub only
	scan(t, s)
	assert.Equal(t, []string{IgnoreFileName, "a.txt", "keep.log", "secret.txt", "sub/" + IgnoreFileName, "sub/rootonly.txt"},
		tracked(t, s))
	assert.Empty(t, scan(t, s))
	fsck(t, s)
}

// A tracked file that becomes ignored stays in the history as last
// committed: neither its edits nor its deletion are committed. Removing the
// rule tracks it again.
func TestIgnoreTrackedFile(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, "notes.txt", "v1")
	writeFile(t, dir, "cache/c1", "c")
	scan(t, s)

	writeFile(t, dir, IgnoreFileName, "notes.txt\ncache/\n")
	writeFile(t, dir, "notes.txt", "v2")
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "cache")))
	ch := scan(t, s)
	assert.Equal(t, []string{"add " + IgnoreFileName}, actions(ch))
	assert.Equal(t, []string{IgnoreFileName, "cache/c1", "notes.txt"}, tracked(t, s))
	assert.Equal(t, "v1", gitStore(t, s, "show", "HEAD:notes.txt"))

	require.NoError(t, os.Remove(filepath.Join(dir, "notes.txt")))
	assert.Empty(t, scan(t, s), "deleting an ignored file is not committed")

	writeFile(t, dir, IgnoreFileName, "")
	writeFile(t, dir, "notes.txt", "v3")
	ch = scan(t, s)
	assert.Equal(t, []string{"delete cache/c1", "modify " + IgnoreFileName, "modify notes.txt"}, actions(ch))
	fsck(t, s)
}

// The rules govern only local scanning: a bundle is applied in full, and the
// ignore file itself travels like any file.
func TestIgnoreDoesNotFilterBundles(t *testing.T) {
	a := newTestStore(t, "AAAAAAA", epoch)
	b := newTestStore(t, "BBBBBBB", epoch)
	writeFile(t, b.Dir(), IgnoreFileName, "*.tmp\n")
	scan(t, b)
	bun, _ := bundleOf(t, b)
	apply(t, a, bun, peerB)
	assert.Equal(t, "*.tmp\n", folderFiles(t, a.Dir())[IgnoreFileName])

	// a commits a file b's rules ignore (a did not have the rules then).
	cli := t.TempDir()
	git(t, cli, "init", "-q")
	git(t, cli, "fetch", "-q", filepath.Join(a.Dir(), GitDirName), "main:refs/remotes/a/main")
	git(t, cli, "checkout", "-q", "-B", "main", "a/main")
	writeFile(t, cli, "data.tmp", "d")
	git(t, cli, "add", "-f", "data.tmp")
	git(t, cli, "commit", "-qm", "add data.tmp")
	git(t, cli, "bundle", "create", "-q", filepath.Join(cli, "b.bundle"), "main")
	raw, err := os.ReadFile(filepath.Join(cli, "b.bundle"))
	require.NoError(t, err)
	res := apply(t, b, raw, peerA)
	assert.Equal(t, []string{"data.tmp"}, res.Changed)
	assert.Equal(t, "d", folderFiles(t, b.Dir())["data.tmp"])
	assert.Contains(t, tracked(t, b), "data.tmp")
	assert.Empty(t, scan(t, b))
}
