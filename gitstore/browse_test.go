package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lsTree renders `git ls-tree -l REV:DIR` as "type name size" lines in our
// order (directories first, then by name), sizes "-" for trees, so that
// ListFiles can be compared with git's own listing.
func lsTree(t *testing.T, s *Store, rev Hash, dir string) []string {
	t.Helper()
	var dirs, files []string
	for _, line := range strings.Split(gitStore(t, s, "ls-tree", "-l", rev.String()+":"+dir), "\n") {
		meta, name, _ := strings.Cut(line, "\t")
		f := strings.Fields(meta) // mode type object size
		switch f[1] {
		case "tree":
			dirs = append(dirs, "dir "+name+" -")
		default:
			typ := "file"
			if f[0] == "120000" {
				typ = "symlink"
			} else if f[0] == "100755" {
				typ = "file+x"
			}
			files = append(files, typ+" "+name+" "+f[3])
		}
	}
	return append(dirs, files...)
}

func listing(list []FileEntry) []string {
	out := []string{}
	for _, e := range list {
		typ, size := string(e.Type), fmt.Sprint(e.Size)
		if e.Executable {
			typ += "+x"
		}
		if e.Type == TypeDir {
			size = "-"
		}
		out = append(out, typ+" "+e.Name+" "+size)
	}
	return out
}

func readAll(t *testing.T, s *Store, rev Hash, p string) string {
	t.Helper()
	rc, n, err := s.OpenFile(context.Background(), rev, p)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.EqualValues(t, len(b), n, "size of %s", p)
	return string(b)
}

func TestListFilesAndOpenFileAgreeWithGit(t *testing.T) {
	s := newTestStore(t, "dev", epoch, func(c *Config) { c.AllowSymlinks = true })
	dir := s.Dir()
	ctx := context.Background()

	list, err := s.ListFiles(ctx, Hash{}, "")
	require.NoError(t, err)
	assert.Empty(t, list, "no commit yet: an empty root")
	_, err = s.ListFiles(ctx, Hash{}, "d")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, _, err = s.OpenFile(ctx, Hash{}, "a.txt")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB: streamed, not read whole
	writeFile(t, dir, "b.txt", "one")
	writeFile(t, dir, "a.txt", "alpha")
	writeFile(t, dir, "d/e/deep.txt", "deep")
	writeFile(t, dir, "d/big.bin", string(big))
	writeFile(t, dir, "run.sh", "#!/bin/sh\n")
	require.NoError(t, os.Chmod(filepath.Join(dir, "run.sh"), 0o755))
	require.NoError(t, os.Symlink("a.txt", filepath.Join(dir, "link")))
	scan(t, s)
	first := head(t, s)
	writeFile(t, dir, "b.txt", "two, longer")
	require.NoError(t, os.Remove(filepath.Join(dir, "d", "big.bin")))
	scan(t, s)
	now := head(t, s)

	for _, c := range []struct {
		rev, list Hash
		dir       string
	}{{Hash{}, now, ""}, {Hash{}, now, "d"}, {now, now, "d/e"}, {first, first, ""}, {first, first, "d/"}} {
		got, err := s.ListFiles(ctx, c.rev, c.dir)
		require.NoError(t, err, c.dir)
		assert.Equal(t, lsTree(t, s, c.list, strings.Trim(c.dir, "/")), listing(got), "rev %s dir %q", c.rev, c.dir)
		for _, e := range got {
			assert.Equal(t, gitStore(t, s, "rev-parse", c.list.String()+":"+e.Path), e.Object.String(), e.Path)
		}
	}
	got, err := s.ListFiles(ctx, Hash{}, "d")
	require.NoError(t, err)
	assert.Equal(t, FileEntry{Name: "e", Path: "d/e", Type: TypeDir, Object: got[0].Object}, got[0])

	// Contents, now and then, as git shows them.
	for _, p := range []string{"a.txt", "b.txt", "d/e/deep.txt", "run.sh", "link"} {
		assert.Equal(t, gitStore(t, s, "cat-file", "blob", now.String()+":"+p), strings.TrimSpace(readAll(t, s, Hash{}, p)), p)
	}
	assert.Equal(t, "one", readAll(t, s, first, "b.txt"))
	assert.Equal(t, "two, longer", readAll(t, s, now, "b.txt"))
	assert.Equal(t, "a.txt", readAll(t, s, Hash{}, "link"), "a symlink's content is its target")

	// The deleted big file is there at the first revision, streamed; the
	// reader holds no lock (a scan runs while it is open) and outlives a
	// consolidation of the packs it reads from.
	rc, n, err := s.OpenFile(ctx, first, "d/big.bin")
	require.NoError(t, err)
	defer rc.Close()
	assert.EqualValues(t, len(big), n)
	head4 := make([]byte, 4)
	_, err = io.ReadFull(rc, head4)
	require.NoError(t, err)
	writeFile(t, dir, "c.txt", "while reading")
	scan(t, s)
	_, err = s.maintain(ctx, maintainAll)
	require.NoError(t, err)
	rest, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, append(head4, rest...)), "the old version read whole")
	require.NoError(t, rc.Close())
	_, _, err = s.OpenFile(ctx, Hash{}, "d/big.bin")
	assert.ErrorIs(t, err, fs.ErrNotExist, "deleted at head")
	assert.Equal(t, string(big), readAll(t, s, first, "d/big.bin"), "after the consolidation")
}

func TestBrowseRefusesBadInput(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "d/a.txt", "a")
	scan(t, s)
	ctx := context.Background()
	blob, err := ParseHash(gitStore(t, s, "rev-parse", "HEAD:d/a.txt"))
	require.NoError(t, err)
	for _, p := range []string{"../x", "d/../../x", "/etc/passwd", ".peersync/config", "d/.git", "a\x00b", "d//a.txt"} {
		_, err := s.ListFiles(ctx, Hash{}, p)
		assert.Error(t, err, "list %q", p)
		_, _, err = s.OpenFile(ctx, Hash{}, p)
		assert.Error(t, err, "open %q", p)
	}
	_, _, err = s.OpenFile(ctx, Hash{}, "")
	assert.Error(t, err, "open of the root")
	_, _, err = s.OpenFile(ctx, Hash{}, "d")
	assert.ErrorContains(t, err, "is a directory")
	_, err = s.ListFiles(ctx, Hash{}, "d/a.txt")
	assert.ErrorContains(t, err, "not a directory")
	_, err = s.ListFiles(ctx, Hash{}, "nope")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	unknown, _ := ParseHash(strings.Repeat("ab", 20))
	for _, rev := range []Hash{unknown, blob} { // no such object; an object that is not a commit
		_, err = s.ListFiles(ctx, rev, "")
		assert.ErrorIs(t, err, fs.ErrNotExist, "rev %s", rev)
		_, _, err = s.OpenFile(ctx, rev, "d/a.txt")
		assert.ErrorIs(t, err, fs.ErrNotExist, "rev %s", rev)
	}
}

// Browsing never waits for a writer: it works while the store's lock is
// held (as during a scan or an apply).
func TestBrowseDoesNotWaitForWriters(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "a.txt", "a")
	scan(t, s)
	s.applyMu.Lock()
	s.mu.Lock()
	defer s.applyMu.Unlock()
	defer s.mu.Unlock()
	list, err := s.ListFiles(context.Background(), Hash{}, "")
	require.NoError(t, err)
	assert.Len(t, list, 1)
	assert.Equal(t, "a", readAll(t, s, Hash{}, "a.txt"))
}
