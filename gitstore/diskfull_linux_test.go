//go:build linux

package gitstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mountTmpfs mounts a tmpfs of size KiB and returns its mount point; it is
// unmounted at the end of the test.
func mountTmpfs(t *testing.T, sizeKiB int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("LOUD SKIP: mounting a small tmpfs needs root")
	}
	mnt := t.TempDir()
	require.NoError(t, command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(sizeKiB)+"k", "tmpfs", mnt))
	t.Cleanup(func() { assert.NoError(t, command("umount", mnt)) })
	return mnt
}

// freeKiB returns the free space of the file system holding dir.
func freeKiB(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize / 1024
}

// fill writes an ignored filler file to dir's file system until only
// leaveKiB remain free.
func fill(t *testing.T, dir string, leaveKiB int64) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	n := freeKiB(t, dir) - leaveKiB
	require.Positive(t, n)
	require.NoError(t, os.WriteFile(p, make([]byte, n*1024), 0o644))
	return p
}

func randomFile(t *testing.T, dir, rel string, size int) {
	t.Helper()
	b := make([]byte, size)
	_, err := rand.Read(b)
	require.NoError(t, err)
	writeFile(t, dir, rel, string(b))
}

// smallDiskMargin is the free space a store on these small tmpfs mounts
// keeps (Limits.MinFreeBytes; the default is larger than the disks).
const smallDiskMargin = 1 << 20

func assertDiskFull(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrDiskFull), "%v", err)
	assert.Contains(t, err.Error(), "no space left on device")
	var be *BundleError
	assert.False(t, errors.As(err, &be), "a full disk is not the bundle's fault: %v", err)
}

// A scan that fills the disk fails with a clear error, commits nothing and
// leaves a sound repository; once space is freed the same scan succeeds.
func TestScanDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, 8<<10)
	s := newTestStore(t, "dev", epoch, func(c *Config) { c.Dir = mnt; c.Limits.MinFreeBytes = smallDiskMargin })
	writeFile(t, mnt, IgnoreFileName, "filler\n")
	writeFile(t, mnt, "small.txt", "s")
	scan(t, s)
	before := head(t, s)

	randomFile(t, mnt, "big.bin", 2<<20) // incompressible: stored as is
	writeFile(t, mnt, "z.txt", "z")
	filler := fill(t, mnt, 1<<10)
	_, err := s.Scan(context.Background())
	assertDiskFull(t, err)
	assert.Equal(t, before, head(t, s), "nothing committed")
	fsck(t, s)

	require.NoError(t, os.Remove(filler))
	assert.Equal(t, []string{"add big.bin", "add z.txt"}, actions(scan(t, s)))
	fsck(t, s)
}

// A bundle that does not fit fails with a clear error (not a BundleError:
// the peer is not at fault), with refs untouched and a sound repository;
// a checkout that would not fit is refused before it writes a file; once
// space is freed the same bundle applies.
func TestApplyDiskFull(t *testing.T) {
	mnt := mountTmpfs(t, 16<<10)
	a := newTestStore(t, "a", epoch)
	writeFile(t, a.Dir(), "small.txt", "s")
	scan(t, a)
	b := newTestStore(t, "b", epoch, func(c *Config) { c.Dir = mnt; c.Limits.MinFreeBytes = smallDiskMargin })
	writeFile(t, mnt, IgnoreFileName, "filler\n")
	bundle, _ := bundleOf(t, a)
	apply(t, b, bundle, peerA) // commits the ignore file first
	bHead := head(t, b)

	base := head(t, a)
	randomFile(t, a.Dir(), "big.bin", 3<<20)
	scan(t, a)
	bundle, _ = bundleOf(t, a, base)

	// 1. No room for the bundle's objects.
	filler := fill(t, mnt, 2<<10)
	_, err := b.ApplyBundle(context.Background(), bytes.NewReader(bundle), peerA)
	assertDiskFull(t, err)
	assert.Equal(t, bHead, head(t, b))
	peer, err2 := b.PeerHead(peerA)
	require.NoError(t, err2)
	assert.Equal(t, base, peer, "refs/peers untouched")
	fsck(t, b)

	// 2. Room for the objects (spool and pack: 6 MiB), not for the file
	// as well: refused before any file is written.
	require.NoError(t, os.Remove(filler))
	filler = fill(t, mnt, 6<<10+512)
	_, err = b.ApplyBundle(context.Background(), bytes.NewReader(bundle), peerA)
	require.Error(t, err)
	var de *DiskFullError
	require.ErrorAs(t, err, &de, "%v", err)
	assert.ErrorIs(t, err, ErrDiskFull)
	assert.Contains(t, err.Error(), "no space left on device")
	assert.Equal(t, bHead, head(t, b), "main did not move")
	assert.NotContains(t, folderFiles(t, mnt), "big.bin")
	fsck(t, b)

	// 3. Space freed: the same bundle applies.
	require.NoError(t, os.Remove(filler))
	res := apply(t, b, bundle, peerA)
	assert.Equal(t, []string{"big.bin"}, res.Changed)
	assert.Equal(t, Merged, res.Kind)
	fsck(t, b)
}
