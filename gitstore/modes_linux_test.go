//go:build linux

package gitstore

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func perm(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

// Under a umask of 077, nothing we write is readable by other users:
// .peersync, its objects and packs, the refs and stat cache, and the files
// and directories a checkout creates.
func TestModesPrivateUmask(t *testing.T) {
	if !inChild(t, -1, 0o077) {
		return
	}
	a := newTestStore(t, "a", epoch)
	writeFile(t, a.Dir(), "doc.txt", "d")
	writeFile(t, a.Dir(), "sub/run.sh", "#!/bin/sh\n")
	require.NoError(t, os.Chmod(filepath.Join(a.Dir(), "sub/run.sh"), 0o755))
	scan(t, a)
	// Enough files for a pack.
	for i := range 120 {
		writeFile(t, a.Dir(), filepath.Join("many", string(rune('a'+i%26))+string(rune('a'+i/26))), "x")
	}
	scan(t, a)
	b := newTestStore(t, "b", epoch)
	bundle, _ := bundleOf(t, a)
	apply(t, b, bundle, peerA)

	for _, s := range []*Store{a, b} {
		git := filepath.Join(s.Dir(), GitDirName)
		assert.Equal(t, fs.FileMode(0o700), perm(t, git), ".peersync")
		var n int
		require.NoError(t, filepath.Walk(git, func(p string, fi os.FileInfo, err error) error {
			require.NoError(t, err)
			n++
			assert.Zero(t, fi.Mode().Perm()&0o077, "%s is %v", p, fi.Mode().Perm())
			return nil
		}))
		assert.Greater(t, n, 10)
		packs, _ := filepath.Glob(filepath.Join(git, "objects/pack/pack-*"))
		assert.NotEmpty(t, packs)
	}
	assert.Equal(t, fs.FileMode(0o600), perm(t, filepath.Join(b.Dir(), "doc.txt")))
	assert.Equal(t, fs.FileMode(0o700), perm(t, filepath.Join(b.Dir(), "sub/run.sh")))
	assert.Equal(t, fs.FileMode(0o700), perm(t, filepath.Join(b.Dir(), "sub")))
	fsck(t, b)
}

// Under the usual umask of 022 a checkout makes files 0644 or 0755, as git
// does; a file the user made private stays private when a peer's version
// replaces it, and an executable bit from a peer is added only where the
// file has read bits.
func TestModesCheckoutKeepsPrivateFile(t *testing.T) {
	if !inChild(t, -1, 0o022) {
		return
	}
	a := newTestStore(t, "a", epoch)
	writeFile(t, a.Dir(), "notes.txt", "v1")
	writeFile(t, a.Dir(), "tool", "v1")
	scan(t, a)
	b := newTestStore(t, "b", epoch)
	bundle, _ := bundleOf(t, a)
	apply(t, b, bundle, peerA)
	assert.Equal(t, fs.FileMode(0o644), perm(t, filepath.Join(b.Dir(), "notes.txt")))

	require.NoError(t, os.Chmod(filepath.Join(b.Dir(), "notes.txt"), 0o600))
	require.NoError(t, os.Chmod(filepath.Join(b.Dir(), "tool"), 0o640))
	scan(t, b) // nothing to commit: modes other than x are not tracked
	base := head(t, a)
	writeFile(t, a.Dir(), "notes.txt", "v2")
	require.NoError(t, os.Chmod(filepath.Join(a.Dir(), "tool"), 0o755))
	scan(t, a)
	bundle, _ = bundleOf(t, a, base)
	res := apply(t, b, bundle, peerA)
	assert.Equal(t, []string{"notes.txt", "tool"}, res.Changed)
	assert.Equal(t, "v2", folderFiles(t, b.Dir())["notes.txt"])
	assert.Equal(t, fs.FileMode(0o600), perm(t, filepath.Join(b.Dir(), "notes.txt")), "not widened")
	assert.Equal(t, fs.FileMode(0o750), perm(t, filepath.Join(b.Dir(), "tool")), "x where r")
	assert.Equal(t, fs.FileMode(0o700), perm(t, filepath.Join(b.Dir(), GitDirName)))
	assert.Empty(t, scan(t, b))
}

// A .peersync that an older version created 0755 is made private at Open.
func TestOpenMakesOldGitDirPrivate(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "a.txt", "a")
	scan(t, s)
	git := filepath.Join(s.Dir(), GitDirName)
	require.NoError(t, os.Chmod(git, 0o755))
	require.NoError(t, s.Close())
	s2, err := Open(Config{Dir: s.Dir()})
	require.NoError(t, err)
	defer s2.Close()
	assert.Equal(t, fs.FileMode(0o700), perm(t, git))
	assert.Empty(t, scan(t, s2))
}
