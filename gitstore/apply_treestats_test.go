package gitstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/require"
)

// The trees a bundle brought are counted as ours once its pack is kept:
// their stats (files, bytes) are in the Store's cache, so the tree limits
// of the next bundle, which names them unchanged, are read from there
// instead of walking them and asking every blob's size again. The stats
// are the trees' true ones (checked against the git CLI), and a bundle
// applied on top still lands.
func TestAppliedTreesStatsKept(t *testing.T) {
	ctx := context.Background()
	src := newTestStore(t, "a", epoch)
	for i := range 60 {
		writeFile(t, src.Dir(), fmt.Sprintf("d%d/f%02d.txt", i%6, i), strings.Repeat("x", i+1))
	}
	scan(t, src)
	b, _ := bundleOf(t, src)
	dst := newTestStore(t, "b", epoch)
	in := writeIncoming(t, dst, b)
	_, err := dst.ApplyIncoming(ctx, in, peerA)
	require.NoError(t, err)

	dst.applyMu.Lock()
	stats := map[plumbing.Hash]treeStat{}
	for h, st := range dst.treeStats {
		stats[h] = st
	}
	dst.applyMu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(gitStore(t, dst, "ls-tree", "HEAD")), "\n") {
		f := strings.Fields(line) // mode type hash \t name
		require.Equal(t, "tree", f[1], line)
		st, ok := stats[plumbing.NewHash(f[2])]
		require.True(t, ok, "the stats of %s were not kept", f[3])
		var bytes int64
		for _, e := range strings.Split(strings.TrimSpace(gitStore(t, dst, "ls-tree", "-r", "-l", f[2])), "\n") {
			var size int64
			_, err := fmt.Sscan(strings.Fields(e)[3], &size)
			require.NoError(t, err)
			bytes += size
		}
		require.Equal(t, treeStat{files: 10, bytes: bytes, depth: 1, pathLen: len("f00.txt")}, st, f[3])
	}

	from := head(t, src)
	writeFile(t, src.Dir(), "d1/f01.txt", "changed\n")
	scan(t, src)
	b2, _ := bundleOf(t, src, from)
	res, err := dst.ApplyBundle(ctx, strings.NewReader(string(b2)), peerA)
	require.NoError(t, err)
	require.Equal(t, []string{"d1/f01.txt"}, res.Changed)
	require.Equal(t, folderFiles(t, src.Dir()), folderFiles(t, dst.Dir()))
	fsck(t, dst)
}
