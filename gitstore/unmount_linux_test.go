//go:build linux

package gitstore

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A folder whose disk is unmounted under a running Store: Scan, ApplyBundle
// and IntegratePeer fail with the folder guard's error and commit nothing;
// once the disk is back, the history holds no deletion and is sound.
func TestFolderUnmountedUnderStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("LOUD SKIP: mounting an ext4 image needs root")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("LOUD SKIP: mkfs.ext4 missing (Debian e2fsprogs)")
	}
	run := func(name string, args ...string) {
		t.Helper()
		require.NoError(t, command(name, args...))
	}
	img, mnt := diskImage(t, 32)
	run("mkfs.ext4", "-q", img)
	run("mount", "-o", "loop", img, mnt)
	mounted := true
	t.Cleanup(func() {
		if mounted {
			run("umount", mnt)
		}
	})

	a := newTestStore(t, "a", epoch)
	writeFile(t, a.Dir(), "from-a.txt", "a")
	scan(t, a)
	s := newTestStore(t, "b", epoch, func(c *Config) { c.Dir = mnt })
	for _, p := range []string{"one.txt", "two.txt", "sub/three.txt"} {
		writeFile(t, mnt, p, p)
	}
	require.Len(t, scan(t, s), 3)
	want := head(t, s)
	bundle, _ := bundleOf(t, a)

	// The disk goes away (lazily: the store still has files open on it).
	run("umount", "-l", mnt)
	mounted = false
	_, err := s.Scan(context.Background())
	assert.ErrorIs(t, err, ErrNotInitialized)
	_, err = s.ApplyBundle(context.Background(), bytes.NewReader(bundle), peerA)
	assert.ErrorIs(t, err, ErrNotInitialized)
	_, err = s.IntegratePeer(context.Background(), peerA)
	assert.Error(t, err)
	entries, err := os.ReadDir(mnt)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written to the bare mount point (no .peersync recreated)")
	require.NoError(t, s.Close())

	// The disk is back: the same history, no deletion in it.
	run("mount", "-o", "loop", img, mnt)
	mounted = true
	s2, err := Open(Config{Dir: mnt})
	require.NoError(t, err)
	defer s2.Close()
	assert.Equal(t, want, head(t, s2))
	assert.NotContains(t, gitStore(t, s2, "log", "--format=%s"), "delete")
	assert.Empty(t, scan(t, s2))
	fsck(t, s2)
}

// .peersync deleted under a running Store: Scan fails with the folder
// guard's error, commits nothing, deletes nothing, recreates nothing.
func TestFolderMarkerDeletedUnderStore(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "a.txt", "a")
	scan(t, s)
	files := folderFiles(t, s.Dir())
	require.NoError(t, os.RemoveAll(filepath.Join(s.Dir(), GitDirName)))
	writeFile(t, s.Dir(), "b.txt", "b")
	_, err := s.Scan(context.Background())
	assert.ErrorIs(t, err, ErrNotInitialized)
	assert.Contains(t, err.Error(), "not initialized")
	files["b.txt"] = "b"
	assert.Equal(t, files, folderFiles(t, s.Dir()))
	_, err = os.Lstat(filepath.Join(s.Dir(), GitDirName))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
