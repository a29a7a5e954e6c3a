//go:build linux

package gitstore

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// nobody is the user a child test runs as to meet permission errors (root
// reads every file whatever its mode).
const nobody = 65534

// inChild runs the calling top-level test again in a child process of its
// own, so that process-wide state stays its own: as user uid (-1: ours; a
// test run by a user other than root stays in-process, since that user meets
// permission errors already) and under umask (-1: ours). It returns true
// where the test's body must run (the child, or in-process), false in the
// parent once the child passed.
func inChild(t *testing.T, uid, umask int) bool {
	t.Helper()
	if os.Getenv("GITSTORE_TEST_CHILD") == t.Name() {
		if m := os.Getenv("GITSTORE_TEST_UMASK"); m != "" {
			n, err := strconv.ParseInt(m, 8, 32)
			require.NoError(t, err)
			syscall.Umask(int(n))
		}
		return true
	}
	if uid >= 0 && os.Geteuid() != 0 {
		uid = -1
	}
	if uid < 0 && umask < 0 {
		return true
	}
	// The test binary sits in go's private build directory: a copy that the
	// child's user can run.
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	bin := filepath.Join(dir, "gitstore.test")
	copyFile(t, os.Args[0], bin, 0o755)
	home := filepath.Join(dir, "home")
	require.NoError(t, os.Mkdir(home, 0o777))
	require.NoError(t, os.Chmod(home, 0o777))
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GITSTORE_TEST_CHILD="+t.Name(), "HOME="+home, "TMPDIR=/tmp")
	if umask >= 0 {
		cmd.Env = append(cmd.Env, "GITSTORE_TEST_UMASK="+strconv.FormatInt(int64(umask), 8))
	}
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child test (uid %d, umask %o):\n%s", uid, umask, out)
	require.Contains(t, string(out), "--- PASS: "+t.Name(), "child test did not run:\n%s", out)
	require.NotContains(t, string(out), "--- SKIP", "child test skipped:\n%s", out)
	t.Logf("child (uid %d, umask %o) passed:\n%s", uid, umask, lastLines(string(out), 15))
	return false
}

func copyFile(t *testing.T, from, to string, perm os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, perm)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	require.NoError(t, os.Chmod(to, perm))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
