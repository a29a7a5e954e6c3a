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

// TestOneCommitBundleTakesLooseObjectsFromTheWalk: the newest commits
// of a watched folder are loose (single-file scans); a 1-commit bundle
// since the peer's (loose) head reads that commit once, for the walk and
// the header's subject line, and writes the new trees (as deltas against
// the peer's versions when that pays) from what the tree walk read, not
// from a second read of their files. The proof: once an export has read
// them, those loose files are removed, and the next export is still the
// same, byte for byte (the pack writer used to open each file again and
// failed; go-git's lookup of the since commit found nothing and the
// bundle grew). git verifies and fetches it.
func TestOneCommitBundleTakesLooseObjectsFromTheWalk(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	addFiles(t, s, "big", "a", 0, 150)
	addFiles(t, s, "other", "b", 0, 10)
	scan(t, s) // one pack
	writeFile(t, s.Dir(), "big/a-with-a-long-name-0008", "edited first\n")
	scan(t, s) // one commit, loose: the peer's head
	peer := head(t, s)
	writeFile(t, s.Dir(), "big/a-with-a-long-name-0007", "edited\n")
	scan(t, s) // one commit, loose

	bundle, info := bundleOf(t, s, peer)
	assert.Equal(t, []Hash{peer}, info.Prerequisites)
	assert.Contains(t, string(bundle), "-"+peer.String()+" "+gitStore(t, s, "log", "-1", "--format=%s", peer.String())+"\n",
		"the prerequisite line carries its subject, as git's")
	assert.Equal(t, 4, info.Objects, "commit, root tree, big/, the blob")
	assert.Equal(t, 4, s.views.exp.src.fresh, "loose: written anew")
	ofs, ref := bundleDeltas(t, bundle)
	assert.Zero(t, ofs)
	assert.Equal(t, 1, ref, "big/ as a delta against the peer's version (the root, two entries, is too small for one)")
	fetchInto(t, s, bundle, peer)

	for _, h := range []Hash{peer, mustTree(t, s, ""), mustTree(t, s, "big")} {
		require.NotNil(t, s.views.exp.src.cache.get(plumbing.Hash(h)), "kept between exports")
		hx := h.String()
		require.NoError(t, os.Remove(filepath.Join(s.Dir(), GitDirName, "objects", hx[:2], hx[2:])))
	}
	again, _ := bundleOf(t, s, peer)
	assert.True(t, bytes.Equal(bundle, again), "the same bundle from what the walk read")
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
