//go:build linux

package gitstore

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A mostly empty 256 MiB file from a peer (a sparse file on the sender: a
// small bundle, since zeros compress) lands as a sparse file: its blocks on
// disk are a small part of its length (issue: "a 2 GiB sparse file arrived
// as 2 GiB written").
func TestApplySparseFile(t *testing.T) {
	a := newTestStore(t, "a", epoch)
	b := newTestStore(t, "b", epoch)
	const size = 256 << 20
	f, err := os.Create(filepath.Join(a.Dir(), "disk.img"))
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("header"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	scan(t, a)
	bundle, _ := bundleOf(t, a)
	apply(t, b, bundle, peerA)

	fi, err := os.Stat(filepath.Join(b.Dir(), "disk.img"))
	require.NoError(t, err)
	assert.Equal(t, int64(size), fi.Size())
	st := fi.Sys().(*syscall.Stat_t)
	assert.Less(t, st.Blocks*512, int64(size/16), "written as holes, not %d bytes of zeros", size)
	assert.Empty(t, scan(t, b), "the checked-out file is the committed one")
}
