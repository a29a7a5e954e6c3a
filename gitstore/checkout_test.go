package gitstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckoutBatchKeepsLateLocalEdit: checkout writes a batch of temp
// files before renaming them; a local edit made to a file after its temp
// file was written is still kept (the temp file goes), while the rest of
// the batch lands, and no temp file is left behind.
func TestCheckoutBatchKeepsLateLocalEdit(t *testing.T) {
	a, old, new, batch := checkoutBatchOf(t)
	// The user edits y.txt after its temp file was written.
	writeFile(t, a.Dir(), "y.txt", "edited meanwhile")
	done, err := a.commitWritesLocked(batch, old, new, &checkoutTimes{})
	a.mu.Unlock()
	require.NoError(t, err)
	assert.Equal(t, []string{"x.txt", "z.txt"}, done)
	for rel, want := range map[string]string{"x.txt": "x2", "y.txt": "edited meanwhile", "z.txt": "z2"} {
		b, err := os.ReadFile(filepath.Join(a.Dir(), rel))
		require.NoError(t, err)
		assert.Equal(t, want, string(b), rel)
	}
	entries, err := os.ReadDir(a.Dir())
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), tmpPrefix), "temp file left: %s", e.Name())
	}
}

// checkoutBatchOf writes the temp files of x.txt, y.txt and z.txt at
// their new contents (x2, y2, z2) over a folder still at the old ones (x1,
// y1, no z; each may be written), as a checkout's batch does before its
// fsyncs and renames. It returns the store (mu held: the caller unlocks),
// the two trees and the batch.
func checkoutBatchOf(t *testing.T) (*Store, map[string]fileEntry, map[string]fileEntry, []pendingWrite) {
	t.Helper()
	a := newTestStore(t, "a", time2020())
	writeFile(t, a.Dir(), "x.txt", "x1")
	writeFile(t, a.Dir(), "y.txt", "y1")
	scan(t, a)
	flat := func() map[string]fileEntry {
		_, root, err := a.headTreeLocked()
		require.NoError(t, err)
		return root.flat()
	}
	a.mu.Lock()
	old := flat()
	a.mu.Unlock()
	writeFile(t, a.Dir(), "x.txt", "x2")
	writeFile(t, a.Dir(), "y.txt", "y2")
	writeFile(t, a.Dir(), "z.txt", "z2")
	scan(t, a)
	a.mu.Lock()
	new := flat()
	writeFile(t, a.Dir(), "x.txt", "x1")
	writeFile(t, a.Dir(), "y.txt", "y1")
	require.NoError(t, os.Remove(filepath.Join(a.Dir(), "z.txt")))
	for p := range a.fst.stats.entries {
		a.fst.stats.drop(p)
	}
	var batch []pendingWrite
	for _, p := range []string{"x.txt", "y.txt", "z.txt"} {
		ok, err := a.mayWriteLocked(p, old, new)
		require.NoError(t, err)
		require.True(t, ok, p)
		w, err := a.writeTempLocked(p, new[p])
		require.NoError(t, err)
		require.NotEmpty(t, w.tmp)
		batch = append(batch, w)
	}
	return a, old, new, batch
}

// When the fsync of one file of a batch fails (here its temp file is gone
// before its fsync), no file of the batch is renamed into place: the
// folder keeps its old contents, the error names the file, and no temp
// file is left behind.
func TestCheckoutFsyncFailureRenamesNothing(t *testing.T) {
	a, old, new, batch := checkoutBatchOf(t)
	defer a.mu.Unlock()
	require.NoError(t, os.Remove(batch[1].tmp))
	done, err := a.commitWritesLocked(batch, old, new, &checkoutTimes{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"y.txt"`)
	assert.Empty(t, done)
	for rel, want := range map[string]string{"x.txt": "x1", "y.txt": "y1"} {
		b, err := os.ReadFile(filepath.Join(a.Dir(), rel))
		require.NoError(t, err)
		assert.Equal(t, want, string(b), rel)
	}
	_, err = os.Lstat(filepath.Join(a.Dir(), "z.txt"))
	assert.True(t, os.IsNotExist(err), "z.txt renamed into place: %v", err)
	assert.Empty(t, folderTmpFiles(t, a))
}
