//go:build unix

package atomicfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// WriteFile applies the umask, as os.WriteFile does: under 077 a 0644 file
// is 0600. The umask is process-wide, so this runs in a child process.
func TestWriteFileUmask(t *testing.T) {
	if os.Getenv("ATOMICFILE_UMASK_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFileUmask$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "ATOMICFILE_UMASK_CHILD=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "--- PASS: TestWriteFileUmask")
		return
	}
	syscall.Umask(0o077)
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, WriteFile(p, []byte("x"), 0o644))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}
