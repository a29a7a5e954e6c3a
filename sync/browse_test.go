package sync

import (
	"context"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peersync/peersync/gitstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The engine browses a folder's committed tree, now and at an old revision
// from History, and reads the files as git does.
func TestEngineListAndOpenFiles(t *testing.T) {
	n := newNode(t, "a")
	t.Cleanup(func() { n.e.Close() })
	ctx := context.Background()
	write(t, n.dir, "notes/todo.txt", "v1")
	_, err := n.e.Scan(ctx, "docs")
	require.NoError(t, err)
	write(t, n.dir, "notes/todo.txt", "v2")
	_, err = n.e.Scan(ctx, "docs")
	require.NoError(t, err)

	root, err := n.e.ListFiles(ctx, "docs", gitstore.Hash{}, "")
	require.NoError(t, err)
	require.Len(t, root, 1)
	assert.Equal(t, "notes", root[0].Name)
	assert.Equal(t, gitstore.TypeDir, root[0].Type)
	files, err := n.e.ListFiles(ctx, "docs", gitstore.Hash{}, "notes")
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, FileEntry{Name: "todo.txt", Path: "notes/todo.txt", Type: gitstore.TypeFile, Size: 2, Object: files[0].Object}, files[0])

	hist, err := n.e.History(ctx, "docs", "notes/todo.txt", 0)
	require.NoError(t, err)
	require.Len(t, hist, 2)
	for i, want := range []string{"v2", "v1"} {
		rc, size, err := n.e.OpenFile(ctx, "docs", hist[i].Commit, "notes/todo.txt")
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, rc.Close())
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
		assert.EqualValues(t, 2, size)
		cmd := exec.Command("git", "--git-dir", filepath.Join(n.dir, gitstore.GitDirName), "cat-file", "blob", hist[i].Commit.String()+":notes/todo.txt")
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSpace(string(out)), string(b), "as git reads it")
	}

	_, err = n.e.ListFiles(ctx, "nope", gitstore.Hash{}, "")
	assert.ErrorIs(t, err, ErrUnknownFolder)
	_, _, err = n.e.OpenFile(ctx, "nope", gitstore.Hash{}, "a")
	assert.ErrorIs(t, err, ErrUnknownFolder)
	_, _, err = n.e.OpenFile(ctx, "docs", gitstore.Hash{}, "notes/gone.txt")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, _, err = n.e.OpenFile(ctx, "docs", gitstore.Hash{}, "../outside")
	assert.Error(t, err)
}
