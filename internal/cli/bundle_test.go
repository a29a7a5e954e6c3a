package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
	return string(out)
}

func setupFolder(t *testing.T) (home, folder string) {
	t.Helper()
	home, folder = t.TempDir(), t.TempDir()
	_, _, err := runCLI(t, home, "init")
	require.NoError(t, err)
	_, _, err = runCLI(t, home, "folder", "add", "--id", "docs", folder)
	require.NoError(t, err)
	return home, folder
}

func TestCLIBundleSneakernet(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("LOUD SKIP: git CLI not installed; .ci/run installs it")
	}
	homeA, a := setupFolder(t)
	homeB, b := setupFolder(t)
	require.NoError(t, os.MkdirAll(filepath.Join(a, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(a, "sub", "one.txt"), []byte("one"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(a, "two.txt"), []byte("two"), 0o644))

	file := filepath.Join(t.TempDir(), "docs.bundle")
	out, _, err := runCLI(t, homeA, "bundle", "export", "--folder", "docs", file)
	require.NoError(t, err)
	assert.Contains(t, out, "exported docs head")

	// Standard git accepts it.
	clone := t.TempDir()
	gitCmd(t, clone, "init", "-q")
	gitCmd(t, clone, "bundle", "verify", file)
	gitCmd(t, clone, "fetch", "-q", file, "refs/heads/main:refs/heads/imported")

	out, _, err = runCLI(t, homeB, "bundle", "import", "--folder", "docs", file)
	require.NoError(t, err)
	assert.Contains(t, out, "fast-forward")
	same, why := testutil.SameTree(a, b)
	assert.True(t, same, why)

	// An incremental bundle since what b has.
	head := strings.TrimSpace(testutil.Git(t, a, "rev-parse", "refs/heads/main"))
	require.NoError(t, os.WriteFile(filepath.Join(a, "three.txt"), []byte("three"), 0o644))
	inc := filepath.Join(t.TempDir(), "inc.bundle")
	out, _, err = runCLI(t, homeA, "bundle", "export", "--folder", "docs", "--since", head, inc)
	require.NoError(t, err)
	assert.Contains(t, out, "1 prerequisites")
	_, _, err = runCLI(t, homeB, "bundle", "import", "--folder", "docs", inc)
	require.NoError(t, err)
	same, why = testutil.SameTree(a, b)
	assert.True(t, same, why)

	// Nothing new: a clear error, no file.
	head = strings.TrimSpace(testutil.Git(t, a, "rev-parse", "refs/heads/main"))
	none := filepath.Join(t.TempDir(), "none.bundle")
	_, _, err = runCLI(t, homeA, "bundle", "export", "--folder", "docs", "--since", head, none)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nothing to export")
	assert.NoFileExists(t, none)
}

func TestCLIBundleRefusesHostileInput(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("LOUD SKIP: git CLI not installed; .ci/run installs it")
	}
	homeA, a := setupFolder(t)
	homeB, b := setupFolder(t)
	require.NoError(t, os.WriteFile(filepath.Join(a, "f.txt"), []byte(strings.Repeat("payload ", 1000)), 0o644))
	good := filepath.Join(t.TempDir(), "good.bundle")
	_, _, err := runCLI(t, homeA, "bundle", "export", "--folder", "docs", good)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(b, "mine.txt"), []byte("local"), 0o644))
	_, _, err = runCLI(t, homeB, "scan")
	require.NoError(t, err)
	before := testutil.Git(t, b, "for-each-ref")
	snapBefore, err := testutil.Snapshot(b)
	require.NoError(t, err)

	// A byte flipped in the pack.
	data, err := os.ReadFile(good)
	require.NoError(t, err)
	data[len(data)-30] ^= 0xff
	tampered := filepath.Join(t.TempDir(), "tampered.bundle")
	require.NoError(t, os.WriteFile(tampered, data, 0o644))

	// A bundle made by git that carries a .gitmodules file.
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	require.NoError(t, os.WriteFile(filepath.Join(repo, ".gitmodules"), []byte("[submodule \"x\"]\n\tpath = x\n\turl = ../evil\n"), 0o644))
	gitCmd(t, repo, "add", ".gitmodules")
	gitCmd(t, repo, "commit", "-qm", "evil")
	evil := filepath.Join(t.TempDir(), "evil.bundle")
	gitCmd(t, repo, "bundle", "create", evil, "main")

	for name, file := range map[string]string{"tampered": tampered, ".gitmodules": evil} {
		_, _, err := runCLI(t, homeB, "bundle", "import", "--folder", "docs", file)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "nothing was changed", name)
		if name == ".gitmodules" {
			assert.Contains(t, err.Error(), ".gitmodules")
		}
	}
	assert.Equal(t, before, testutil.Git(t, b, "for-each-ref"), "no ref moved")
	snapAfter, err := testutil.Snapshot(b)
	require.NoError(t, err)
	assert.Equal(t, snapBefore, snapAfter, "no file written")
}
