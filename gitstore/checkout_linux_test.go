//go:build linux

package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A file whose directory refuses the checkout's create (read-only to us,
// though we may enter it) is reported as skipped and left alone, while
// every other file of its batch lands with its content, and no temp file
// is left anywhere.
func TestCheckoutReadOnlyDirSkippedBesideWrites(t *testing.T) {
	if !inChild(t, nobody, -1) {
		return
	}
	a := newTestStore(t, "a", epoch)
	writeFile(t, a.Dir(), "ro/old.txt", "o1")
	writeFile(t, a.Dir(), "rw/keep.txt", "k1")
	scan(t, a)
	b := newTestStore(t, "b", epoch)
	first, _ := bundleOf(t, a)
	apply(t, b, first, peerA)
	require.NoError(t, os.Chmod(filepath.Join(b.Dir(), "ro"), 0o555))
	defer os.Chmod(filepath.Join(b.Dir(), "ro"), 0o755)

	base := head(t, a)
	want := map[string]string{}
	for i := range 300 {
		p := fmt.Sprintf("rw/d%d/f%03d.txt", i%7, i)
		want[p] = strings.Repeat(fmt.Sprintf("file %d\n", i), 1+i%50)
		writeFile(t, a.Dir(), p, want[p])
	}
	big := bytes.Repeat([]byte("over a mebibyte, streamed out of the pack into its temp file\n"), 20000)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir(), "rw", "big.bin"), big, 0o644))
	want["rw/big.bin"] = string(big)
	writeFile(t, a.Dir(), "ro/new.txt", "cannot land")
	scan(t, a)
	bundle, _ := bundleOf(t, a, base)
	res, err := b.ApplyBundle(context.Background(), bytes.NewReader(bundle), peerA)
	require.NoError(t, err)
	assert.Equal(t, []string{"ro/new.txt"}, skipPathsOf(res.Skipped))
	assert.Equal(t, []string{"ro/new.txt"}, skippedPaths(t, b, fs.ErrPermission))
	assert.Len(t, res.Changed, len(want))
	got := folderFiles(t, b.Dir())
	for p, c := range want {
		assert.Equal(t, c, got[p], p)
	}
	_, err = os.Lstat(filepath.Join(b.Dir(), "ro", "new.txt"))
	assert.True(t, os.IsNotExist(err), "written in a read-only directory: %v", err)
	var left []string
	require.NoError(t, filepath.WalkDir(b.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tmpPrefix) {
			left = append(left, p)
		}
		return err
	}))
	assert.Empty(t, left, "temp files left")
	fsck(t, b)
}
