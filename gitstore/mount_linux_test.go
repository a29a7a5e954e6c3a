//go:build linux

package gitstore

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// command runs name with args and returns an error that quotes the command
// and its output when it fails (the mount tests' helper).
func command(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// diskImage returns an empty image file of sizeMiB for a loop mount and a
// mount point beside it, both in a temporary directory of the test.
func diskImage(t *testing.T, sizeMiB int64) (img, mnt string) {
	t.Helper()
	dir := t.TempDir()
	img, mnt = filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	f, err := os.Create(img)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(sizeMiB<<20))
	require.NoError(t, f.Close())
	return img, mnt
}
