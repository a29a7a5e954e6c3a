package gitstore

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// copySparse writes the same bytes as a plain copy, whatever the mix of
// zero and data blocks, partial last block and empty input.
func TestCopySparseContent(t *testing.T) {
	block := bytes.Repeat([]byte{0}, sparseBlock)
	data := bytes.Repeat([]byte("x"), sparseBlock)
	cases := map[string][]byte{
		"empty":          nil,
		"small":          []byte("hello"),
		"zeros":          bytes.Repeat(block, 3),
		"zeros-and-tail": append(bytes.Repeat(block, 2), 0, 0, 0),
		"data-hole-data": bytes.Join([][]byte{data, block, block, data[:100]}, nil),
		"hole-at-end":    bytes.Join([][]byte{data, block}, nil),
		"almost-zero":    append(bytes.Repeat([]byte{0}, sparseBlock-1), 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			require.NoError(t, err)
			n, err := copySparse(f, bytes.NewReader(in))
			require.NoError(t, err)
			require.NoError(t, f.Close())
			assert.Equal(t, int64(len(in)), n)
			got, err := os.ReadFile(f.Name())
			require.NoError(t, err)
			assert.True(t, bytes.Equal(in, got), "content differs")
		})
	}
}

// A mostly empty 256 MiB file from a peer (a sparse file on the sender: a
// small bundle, since zeros compress) lands as a sparse file: its blocks on
// disk are a small part of its length (issue: "a 2 GiB sparse file arrived
// as 2 GiB written").
func TestApplySparseFile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("LOUD SKIP: st_blocks checked on Linux only")
	}
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
