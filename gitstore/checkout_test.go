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
	a := newTestStore(t, "a", time2020())
	writeFile(t, a.Dir(), "x.txt", "x1")
	writeFile(t, a.Dir(), "y.txt", "y1")
	scan(t, a)
	oldTree := func() map[string]fileEntry {
		_, root, err := a.headTreeLocked()
		require.NoError(t, err)
		return root.flat()
	}
	a.mu.Lock()
	old := oldTree()
	a.mu.Unlock()
	writeFile(t, a.Dir(), "x.txt", "x2")
	writeFile(t, a.Dir(), "y.txt", "y2")
	writeFile(t, a.Dir(), "z.txt", "z2")
	scan(t, a)
	a.mu.Lock()
	new := oldTree()
	a.mu.Unlock()
	// Back to the old contents on disk, as a folder that has not seen the
	// new commits yet.
	writeFile(t, a.Dir(), "x.txt", "x1")
	writeFile(t, a.Dir(), "y.txt", "y1")
	require.NoError(t, os.Remove(filepath.Join(a.Dir(), "z.txt")))
	a.mu.Lock()
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
