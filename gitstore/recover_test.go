package gitstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A pack without its index (a crash between the two renames) would make
// every go-git read fail; Open removes it.
func TestOpenRemovesOrphanPack(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "a.txt", "a")
	scan(t, s)
	require.NoError(t, s.Close())
	orphan := filepath.Join(s.Dir(), GitDirName, "objects", "pack", "pack-"+strings.Repeat("ab", 20)+".pack")
	require.NoError(t, os.WriteFile(orphan, []byte("PACK partial"), 0o444))
	// A young one may be another process's pack in flight: kept.
	s1, err := Open(Config{Dir: s.Dir()})
	require.NoError(t, err)
	require.NoError(t, s1.Close())
	assert.FileExists(t, orphan)
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(orphan, old, old))

	s2, err := Open(Config{Dir: s.Dir()})
	require.NoError(t, err)
	defer s2.Close()
	assert.NoFileExists(t, orphan)
	writeFile(t, s.Dir(), "b.txt", "b")
	assert.Len(t, scan(t, s2), 1)
	fsck(t, s2)
}

// Refs and the git directory are written through temporary files that never
// stay behind (and never under refs/, where git would read them as refs).
func TestAtomicRefsAndInit(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "a.txt", "a")
	scan(t, s)
	var leftovers []string
	require.NoError(t, filepath.Walk(s.Dir(), func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(fi.Name(), tmpPrefix) {
			leftovers = append(leftovers, p)
		}
		return err
	}))
	assert.Empty(t, leftovers)
	b, err := os.ReadFile(filepath.Join(s.Dir(), GitDirName, "refs", "heads", "main"))
	require.NoError(t, err)
	assert.Equal(t, head(t, s).String()+"\n", string(b))
	assert.Equal(t, head(t, s).String(), gitStore(t, s, "rev-parse", "main"))
	fi, err := os.Stat(filepath.Join(s.Dir(), GitDirName))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "private: it holds every version of every file")
}

// Scan deletes our temporary files left by a crash once they are stale, and
// never commits them.
func TestScanRemovesStaleTemp(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	old := filepath.Join(s.Dir(), "d", tmpPrefix+"123")
	fresh := filepath.Join(s.Dir(), tmpPrefix+"456")
	writeFile(t, s.Dir(), "d/"+tmpPrefix+"123", "left by a crash")
	writeFile(t, s.Dir(), tmpPrefix+"456", "being written")
	writeFile(t, s.Dir(), "d/f.txt", "f")
	init := filepath.Join(s.Dir(), "nested", tmpPrefix+"init-789")
	require.NoError(t, os.MkdirAll(filepath.Join(init, "objects"), 0o755))
	other := filepath.Join(s.Dir(), tmpPrefix+"dir")
	require.NoError(t, os.MkdirAll(other, 0o755))
	long := time.Now().Add(-2 * staleTempAge)
	for _, p := range []string{old, init, other} {
		require.NoError(t, os.Chtimes(p, long, long))
	}
	assert.Equal(t, []string{"add d/f.txt"}, actions(scan(t, s)))
	assert.NoFileExists(t, old)
	assert.NoDirExists(t, init)
	assert.FileExists(t, fresh)
	assert.DirExists(t, other, "not one of ours")
}
