package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCLIHistoryAndRestore(t *testing.T) {
	home, folder := setupFolder(t)
	_, _, err := runCLI(t, home, "init", "--name", "laptop")
	require.NoError(t, err)
	p := filepath.Join(folder, "notes.txt")
	scan := func() {
		t.Helper()
		_, _, err := runCLI(t, home, "scan")
		require.NoError(t, err)
	}
	require.NoError(t, os.WriteFile(p, []byte("v1"), 0o644))
	scan()
	require.NoError(t, os.WriteFile(p, []byte("v2"), 0o644))
	scan()
	require.NoError(t, os.WriteFile(filepath.Join(folder, "other.txt"), []byte("x"), 0o644))
	scan()
	require.NoError(t, os.Remove(p))
	scan()

	out, _, err := runCLI(t, home, "history", "--folder", "docs", "notes.txt")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	re := `^[0-9a-f]{40} \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ laptop - %s notes.txt$`
	assert.Regexp(t, fmt.Sprintf(re, "delete"), lines[0])
	assert.Regexp(t, fmt.Sprintf(re, "modify"), lines[1])
	assert.Regexp(t, fmt.Sprintf(re, "add"), lines[2])

	all, _, err := runCLI(t, home, "history", "--folder", "docs")
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSpace(all), "\n"), 4)

	// Undelete to v1: a new commit touching only that file.
	v1 := strings.Fields(lines[2])[0]
	out, _, err = runCLI(t, home, "restore", "--folder", "docs", "notes.txt", v1)
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f]{40} add notes.txt\n$`, out)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "v1", string(b))

	_, _, err = runCLI(t, home, "restore", "--folder", "docs", "notes.txt", "nothex")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "desktop history")
}

func TestCLIMassDeleteGuard(t *testing.T) {
	home, folder := setupFolder(t)
	for i := 0; i < 150; i++ {
		require.NoError(t, os.WriteFile(filepath.Join(folder, fmt.Sprintf("f%03d.txt", i)), []byte("x"), 0o644))
	}
	_, _, err := runCLI(t, home, "scan")
	require.NoError(t, err)
	for i := 0; i < 120; i++ {
		require.NoError(t, os.Remove(filepath.Join(folder, fmt.Sprintf("f%03d.txt", i))))
	}
	out, _, err := runCLI(t, home, "scan")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--allow-mass-delete")
	assert.Empty(t, out, "nothing committed")

	out, _, err = runCLI(t, home, "scan", "--folder", "docs", "--allow-mass-delete")
	require.NoError(t, err)
	assert.Equal(t, 120, strings.Count(out, " delete "))
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain name":      "plain name",
		"naïve/é.txt":     "naïve/é.txt",
		"a\nforged line":  `"a\nforged line"`,
		"\x1b[31mred":     `"\x1b[31mred"`,
		"c1\u009b2J":      `"c1\u009b2J"`,
		"del\x7f":         `"del\x7f"`,
		"bad\xffutf8":     `"bad\xffutf8"`,
		`"starts quoted"`: `"\"starts quoted\""`,
	} {
		assert.Equal(t, want, printable(in), "%q", in)
	}
}
