//go:build linux

package gitstore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// skippedPaths returns Skipped()'s paths, and checks each error wraps want.
func skippedPaths(t *testing.T, s *Store, want error) []string {
	t.Helper()
	var out []string
	for _, sp := range s.Skipped() {
		out = append(out, sp.Path)
		if want != nil {
			assert.ErrorIs(t, sp.Err, want, "%s", sp)
		}
	}
	sort.Strings(out)
	return out
}

// An unreadable file or directory is skipped and reported; the rest is
// committed, and nothing it held is committed as deleted. Once readable
// again, it syncs.
func TestScanSkipsUnreadable(t *testing.T) {
	if !inChild(t, nobody, -1) {
		return
	}
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, "a.txt", "a")
	writeFile(t, dir, "secret.txt", "s")
	writeFile(t, dir, "locked/x.txt", "x")
	require.Len(t, scan(t, s), 3)

	writeFile(t, dir, "a.txt", "a2")
	writeFile(t, dir, "b.txt", "b")
	writeFile(t, dir, "secret.txt", "s2") // changed, then unreadable
	writeFile(t, dir, "new-secret.txt", "n")
	writeFile(t, dir, "locked/y.txt", "y")
	for _, p := range []string{"secret.txt", "new-secret.txt", "locked"} {
		require.NoError(t, os.Chmod(filepath.Join(dir, p), 0))
	}
	ch, err := s.Scan(context.Background())
	require.NoError(t, err, "one unreadable file must not fail the scan")
	assert.Equal(t, []string{"modify a.txt", "add b.txt"}, actions(ch))
	assert.Equal(t, []string{"locked", "new-secret.txt", "secret.txt"}, skippedPaths(t, s, fs.ErrPermission))
	assert.Contains(t, gitStore(t, s, "ls-tree", "-r", "--name-only", "HEAD"), "locked/x.txt")
	assert.Equal(t, "s", gitStore(t, s, "show", "HEAD:secret.txt"), "kept as last committed")
	assert.Empty(t, scan(t, s), "nothing new: the skipped paths are not deleted later either")

	for _, p := range []string{"secret.txt", "new-secret.txt", "locked"} {
		require.NoError(t, os.Chmod(filepath.Join(dir, p), 0o755))
	}
	assert.Equal(t, []string{"add locked/y.txt", "add new-secret.txt", "modify secret.txt"}, actions(scan(t, s)))
	assert.Empty(t, s.Skipped(), "readable again: nothing skipped")
	fsck(t, s)
}

// A bundle applies although the receiver has an unreadable file (the scan
// ApplyBundle runs first used to refuse it), and the unreadable file is not
// clobbered by the peer's version.
func TestApplyWithUnreadableFile(t *testing.T) {
	if !inChild(t, nobody, -1) {
		return
	}
	a := newTestStore(t, "a", epoch)
	writeFile(t, a.Dir(), "shared.txt", "v1")
	writeFile(t, a.Dir(), "private.txt", "p1")
	writeFile(t, a.Dir(), "private2.txt", "q1")
	writeFile(t, a.Dir(), "locked/x.txt", "x1")
	writeFile(t, a.Dir(), "locked/deep/y.txt", "y1")
	scan(t, a)
	b := newTestStore(t, "b", epoch)
	bundle, _ := bundleOf(t, a)
	apply(t, b, bundle, peerA)

	// B's private.txt is edited and made unreadable; A changes both files.
	writeFile(t, b.Dir(), "private.txt", "local edit")
	require.NoError(t, os.Chmod(filepath.Join(b.Dir(), "private.txt"), 0))
	require.NoError(t, os.Chmod(filepath.Join(b.Dir(), "private2.txt"), 0))
	require.NoError(t, os.Chmod(filepath.Join(b.Dir(), "locked"), 0))
	base := head(t, a)
	writeFile(t, a.Dir(), "shared.txt", "v2")
	writeFile(t, a.Dir(), "private.txt", "p2")
	writeFile(t, a.Dir(), "private2.txt", "q2")
	writeFile(t, a.Dir(), "locked/x.txt", "x2")
	writeFile(t, a.Dir(), "locked/deep/y.txt", "y2")
	writeFile(t, a.Dir(), "locked/new.txt", "n")
	scan(t, a)
	bundle, _ = bundleOf(t, a, base)
	res, err := b.ApplyBundle(context.Background(), bytes.NewReader(bundle), peerA)
	require.NoError(t, err)
	assert.Equal(t, []string{"shared.txt"}, res.Changed)
	assert.Equal(t, []string{"locked/deep/y.txt", "locked/new.txt", "locked/x.txt", "private.txt", "private2.txt"},
		skipPathsOf(res.Skipped))
	assert.Equal(t, []string{"locked", "locked/deep/y.txt", "locked/new.txt", "locked/x.txt", "private.txt", "private2.txt"},
		skippedPaths(t, b, fs.ErrPermission))
	require.NoError(t, os.Chmod(filepath.Join(b.Dir(), "private.txt"), 0o644))
	require.NoError(t, os.Chmod(filepath.Join(b.Dir(), "private2.txt"), 0o644))
	require.NoError(t, os.Chmod(filepath.Join(b.Dir(), "locked"), 0o755))
	got := folderFiles(t, b.Dir())
	assert.Equal(t, "v2", got["shared.txt"])
	assert.Equal(t, "local edit", got["private.txt"], "an unreadable file is never overwritten")
	assert.Equal(t, "q1", got["private2.txt"])
	assert.Equal(t, "x1", got["locked/x.txt"], "nor one in a directory we may not enter")

	// Readable again: the scan does not commit the skipped files' old state
	// back (that would undo A's edits everywhere) but brings them up to date.
	assert.Equal(t, []string{"modify private.txt"}, actions(scan(t, b)), "the local edit, only")
	got = folderFiles(t, b.Dir())
	assert.Equal(t, map[string]string{"locked/x.txt": "x2", "locked/deep/y.txt": "y2", "locked/new.txt": "n", "private2.txt": "q2"},
		map[string]string{"locked/x.txt": got["locked/x.txt"], "locked/deep/y.txt": got["locked/deep/y.txt"],
			"locked/new.txt": got["locked/new.txt"], "private2.txt": got["private2.txt"]})
	assert.Empty(t, scan(t, b))
	fsck(t, b)
}

// A FIFO, a socket and an unreadable .peersyncignore are skipped and
// reported; the rest is committed and the scan never blocks.
func TestScanSkipsSpecialFiles(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, "a.txt", "a")
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644))
	l, err := net.Listen("unix", filepath.Join(dir, "sock"))
	require.NoError(t, err)
	defer l.Close()
	writeFile(t, dir, "rules/x.log", "x")
	writeFile(t, dir, "rules/y.txt", "y")
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "rules", IgnoreFileName), 0o644))

	assert.Equal(t, []string{"add a.txt"}, actions(scan(t, s)))
	assert.Equal(t, []string{"pipe", "rules", "sock"}, skippedPaths(t, s, ErrNotRegular))

	// The rules become readable: the directory syncs, by its rules.
	require.NoError(t, os.Remove(filepath.Join(dir, "rules", IgnoreFileName)))
	writeFile(t, dir, "rules/"+IgnoreFileName, "*.log\n")
	assert.Equal(t, []string{"add rules/.peersyncignore", "add rules/y.txt"}, actions(scan(t, s)))
	assert.Equal(t, []string{"pipe", "sock"}, skippedPaths(t, s, ErrNotRegular))
}

// The classic race: a file listed as regular is replaced by a FIFO before
// the scan opens it. The scan must neither block (the open used to wait for
// a writer forever, with the store's lock held) nor commit a deletion.
func TestScanFIFOSwappedIn(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, "a.txt", "a")
	writeFile(t, dir, "b.txt", "b")
	scan(t, s)
	writeFile(t, dir, "a.txt", "a2") // changed: the scan will open it
	writeFile(t, dir, "b.txt", "b2")
	var swapped []string
	testHookBeforeOpen = func(abs string) {
		if filepath.Base(abs) != "a.txt" {
			return
		}
		require.NoError(t, os.Remove(abs))
		require.NoError(t, syscall.Mkfifo(abs, 0o644))
		swapped = append(swapped, abs)
	}
	defer func() { testHookBeforeOpen = nil }()
	ch, err := s.Scan(context.Background())
	require.NoError(t, err)
	require.Len(t, swapped, 1, "the hook ran")
	assert.Equal(t, []string{"modify b.txt"}, actions(ch), "a.txt is neither read nor deleted")
	sk := s.Skipped()
	require.Len(t, sk, 1)
	assert.Equal(t, "a.txt", sk[0].Path)
	assert.ErrorIs(t, sk[0].Err, ErrNotRegular)

	testHookBeforeOpen = nil
	assert.Empty(t, scan(t, s), "still a FIFO: still kept as last committed")
	require.NoError(t, os.Remove(filepath.Join(dir, "a.txt")))
	writeFile(t, dir, "a.txt", "a3")
	assert.Equal(t, []string{"modify a.txt"}, actions(scan(t, s)))
	assert.Empty(t, s.Skipped())
}

// openNoFollow refuses a symlink and opens a FIFO without a writer at once.
func TestOpenNoFollow(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	f, err := openNoFollow(fifo)
	require.NoError(t, err)
	fi, err := f.Stat()
	require.NoError(t, err)
	assert.False(t, fi.Mode().IsRegular())
	require.NoError(t, f.Close())
	require.NoError(t, os.Symlink(fifo, filepath.Join(dir, "link")))
	_, err = openNoFollow(filepath.Join(dir, "link"))
	assert.True(t, isSymlinkLoop(err), "%v", err)
	assert.False(t, errors.Is(err, fs.ErrNotExist))
}
