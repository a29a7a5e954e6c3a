package gitstore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRevert: local edits of every kind (modify, add, delete, a file
// replaced by a directory) are undone back to a commit, as new commits, and
// the replaced versions stay in the history (checked with the git CLI).
func TestRevert(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, "a", epoch)
	writeFile(t, s.Dir(), "keep.txt", "keep")
	writeFile(t, s.Dir(), "edit.txt", "v1")
	writeFile(t, s.Dir(), "gone.txt", "gone")
	writeFile(t, s.Dir(), "dir/inner.txt", "inner")
	_, err := s.Scan(ctx)
	require.NoError(t, err)
	base, err := s.Head()
	require.NoError(t, err)
	diff, err := s.Differs(base)
	require.NoError(t, err)
	assert.Empty(t, diff)

	writeFile(t, s.Dir(), "edit.txt", "v2")
	writeFile(t, s.Dir(), "new.txt", "new")
	require.NoError(t, os.Remove(filepath.Join(s.Dir(), "gone.txt")))
	require.NoError(t, os.RemoveAll(filepath.Join(s.Dir(), "dir")))
	writeFile(t, s.Dir(), "dir", "now a file")
	_, err = s.Scan(ctx)
	require.NoError(t, err)
	diff, err = s.Differs(base)
	require.NoError(t, err)
	assert.Equal(t, []string{"dir", "dir/inner.txt", "edit.txt", "gone.txt", "new.txt"}, diff)

	// An edit not yet scanned is committed first, then reverted too.
	writeFile(t, s.Dir(), "keep.txt", "unscanned edit")
	changes, err := s.Revert(ctx, base)
	require.NoError(t, err)
	assert.Len(t, changes, 6)
	for _, rel := range []string{"keep.txt", "edit.txt", "gone.txt", "dir/inner.txt"} {
		b, err := os.ReadFile(filepath.Join(s.Dir(), filepath.FromSlash(rel)))
		require.NoError(t, err, rel)
		assert.Equal(t, map[string]string{"keep.txt": "keep", "edit.txt": "v1", "gone.txt": "gone", "dir/inner.txt": "inner"}[rel], string(b))
	}
	_, err = os.Stat(filepath.Join(s.Dir(), "new.txt"))
	assert.True(t, os.IsNotExist(err))
	diff, err = s.Differs(base)
	require.NoError(t, err)
	assert.Empty(t, diff)

	// git agrees: the head's tree is the base's, and the local versions
	// are in the history.
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"--git-dir", filepath.Join(s.Dir(), ".peersync")}, args...)...).CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, git("rev-parse", base.String()+"^{tree}"), git("rev-parse", "main^{tree}"))
	assert.Equal(t, "v2", git("show", "main~6:edit.txt"))
	assert.Contains(t, git("log", "--format=%s", "main"), "add new.txt")

	// Nothing left to do: no commit.
	changes, err = s.Revert(ctx, base)
	require.NoError(t, err)
	assert.Empty(t, changes)

	_, err = s.Revert(ctx, Hash{1})
	assert.Error(t, err)
}
