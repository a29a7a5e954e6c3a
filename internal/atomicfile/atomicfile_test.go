package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")

	require.NoError(t, WriteFile(p, []byte("one"), 0o600))
	require.NoError(t, WriteFile(p, []byte("two"), 0o600))

	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(got))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file may be left behind")
}

func TestWriteFileMissingDir(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "nope", "x"), []byte("x"), 0o600)
	require.Error(t, err)
}

func TestCreateTempNames(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	for range 100 {
		f, err := CreateTemp(dir, "pre-*.suf", 0o640)
		require.NoError(t, err)
		name := filepath.Base(f.Name())
		assert.Regexp(t, `^pre-[0-9]+\.suf$`, name)
		assert.False(t, seen[name])
		seen[name] = true
		_, err = f.Write([]byte("x"))
		require.NoError(t, err, "open for writing whatever perm says")
		require.NoError(t, f.Close())
	}
	_, err := CreateTemp(dir, "a/b*", 0o600)
	assert.Error(t, err)
}
