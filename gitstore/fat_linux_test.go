//go:build linux

package gitstore

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mountFAT makes a FAT file system of size MiB and mounts it, returning the
// mount point; it is unmounted at the end of the test. It is vfat (Debian's
// mkfs.vfat, from dosfstools) when the kernel has a vfat driver, else exFAT
// (Debian's mkfs.exfat and exfat-fuse, on a loop device): FAT's sibling on
// SD cards and USB sticks, case-insensitive in the same way. (Debian's
// fusefat, a FUSE vfat driver, loses a directory's content when it is
// renamed, so it cannot hold a .peersync.)
func mountFAT(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("LOUD SKIP: mounting a FAT file system needs root")
	}
	img, mnt := diskImage(t, int64(size))
	run := command
	if _, err := exec.LookPath("mkfs.vfat"); err == nil && run("mkfs.vfat", img) == nil &&
		run("mount", "-t", "vfat", "-o", "loop", img, mnt) == nil {
		t.Cleanup(func() { assert.NoError(t, run("umount", mnt)) })
		t.Log("vfat, kernel driver")
		return mnt
	}
	for _, tool := range []string{"mkfs.exfat", "mount.exfat-fuse", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("LOUD SKIP: no vfat driver in this kernel and %s missing (Debian exfatprogs, exfat-fuse; .ci/run installs them)", tool)
		}
	}
	require.NoError(t, run("mkfs.exfat", img))
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	require.NoError(t, err, "losetup")
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { assert.NoError(t, run("losetup", "-d", loop)) })
	require.NoError(t, run("mount.exfat-fuse", loop, mnt))
	t.Cleanup(func() { assert.NoError(t, run("umount", mnt)) })
	t.Log("no vfat driver in this kernel: exFAT through exfat-fuse")
	return mnt
}

// On a real FAT file system (case-insensitive), a bundle holding README and
// readme applies: README (the smaller name) is checked out, readme is
// reported as skipped, nothing is committed as deleted, and later bundles
// apply, in both directions.
func TestCaseCollisionOnFAT(t *testing.T) {
	mnt := mountFAT(t, 64)
	a := newTestStore(t, "a", epoch)
	writeFile(t, a.Dir(), "README", "upper")
	writeFile(t, a.Dir(), "readme", "lower")
	writeFile(t, a.Dir(), "Docs/a.txt", "a")
	writeFile(t, a.Dir(), "docs/b.txt", "b")
	writeFile(t, a.Dir(), "other.txt", "o1")
	scan(t, a)

	b := newTestStore(t, "b", epoch, func(c *Config) { c.Dir = mnt })
	require.True(t, b.fst.disk.caseFold, "the probe sees that FAT ignores case")
	bundle, _ := bundleOf(t, a)
	res := apply(t, b, bundle, peerA)
	assert.Equal(t, []string{"docs/b.txt", "readme"}, skipPathsOf(res.Skipped))
	for _, sp := range res.Skipped {
		assert.ErrorIs(t, sp.Err, ErrNameNotHoldable)
	}
	got := folderFiles(t, b.Dir())
	assert.Equal(t, map[string]string{"README": "upper", "Docs/a.txt": "a", "other.txt": "o1"}, got)
	assert.Empty(t, scan(t, b), "no deletion of readme, no mode change from FAT's fixed modes")

	// Later bundles still apply, the colliding name changed or not.
	base := head(t, a)
	writeFile(t, a.Dir(), "other.txt", "o2")
	writeFile(t, a.Dir(), "readme", "lower2")
	scan(t, a)
	bundle, _ = bundleOf(t, a, base)
	res = apply(t, b, bundle, peerA)
	assert.Equal(t, []string{"other.txt"}, res.Changed)
	assert.Equal(t, []string{"readme"}, skipPathsOf(res.Skipped))
	assert.Equal(t, "o2", folderFiles(t, b.Dir())["other.txt"])
	assert.Equal(t, "upper", folderFiles(t, b.Dir())["README"])

	// B edits README; A gets it and keeps its readme.
	writeFile(t, b.Dir(), "README", "upper from b")
	assert.Equal(t, []string{"modify README"}, actions(scan(t, b)))
	bundle, _ = bundleOf(t, b, head(t, a))
	apply(t, a, bundle, peerB)
	got = folderFiles(t, a.Dir())
	assert.Equal(t, "upper from b", got["README"])
	assert.Equal(t, "lower2", got["readme"])
	assert.Equal(t, "b", got["docs/b.txt"])
	assert.Equal(t, []string{"docs/b.txt", "readme"}, skipPathsOf(b.Skipped()))
	fsck(t, b)
	fsck(t, a)
}
