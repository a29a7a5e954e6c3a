package gitstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOneCommitBundleTakesLooseTreesFromTheWalk: the newest commit of a
// watched folder is loose (a single-file scan); its bundle writes the new
// trees (as deltas against the peer's versions when that pays) from what the tree walk
// read, not from a second read of their files. The proof: once an export
// has read them, the loose tree files are removed, and the next export
// is still complete and the same, byte for byte (the pack writer used to
// open each file again and failed here). git verifies and fetches it.
func TestOneCommitBundleTakesLooseTreesFromTheWalk(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	addFiles(t, s, "big", "a", 0, 150)
	addFiles(t, s, "other", "b", 0, 10)
	scan(t, s) // one pack
	first := head(t, s)
	writeFile(t, s.Dir(), "big/a-with-a-long-name-0007", "edited\n")
	scan(t, s) // one commit, loose

	bundle, info := bundleOf(t, s, first)
	assert.Equal(t, 4, info.Objects, "commit, root tree, big/, the blob")
	assert.Equal(t, 4, s.views.exp.src.fresh, "loose: written anew")
	ofs, ref := bundleDeltas(t, bundle)
	assert.Zero(t, ofs)
	assert.Equal(t, 1, ref, "big/ as a delta against the peer's version (the root, two entries, is too small for one)")
	fetchInto(t, s, bundle, first)

	root := s.views.exp.src.cache.get(plumbing.Hash(mustTree(t, s, "")))
	big := s.views.exp.src.cache.get(plumbing.Hash(mustTree(t, s, "big")))
	require.NotNil(t, root, "the walk's trees stay cached between exports")
	require.NotNil(t, big)
	for _, h := range []plumbing.Hash{root.h, big.h} {
		hx := h.String()
		require.NoError(t, os.Remove(filepath.Join(s.Dir(), GitDirName, "objects", hx[:2], hx[2:])))
	}
	again, _ := bundleOf(t, s, first)
	assert.True(t, bytes.Equal(bundle, again), "the same bundle from the cached trees")
}

// mustTree returns the hash of the tree at dir ("" for the root) in s's
// head, read with the git CLI.
func mustTree(t *testing.T, s *Store, dir string) Hash {
	t.Helper()
	rev := "main^{tree}"
	if dir != "" {
		rev = "main:" + dir
	}
	h, err := ParseHash(gitStore(t, s, "rev-parse", rev))
	require.NoError(t, err)
	return h
}
