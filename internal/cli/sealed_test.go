package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/internal/testutil"
)

func deviceID(t *testing.T, home string) (id, pubkey string) {
	t.Helper()
	out, _, err := runCLI(t, home, "id")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	return lines[0], lines[1]
}

// TestCLISealedSneakernet: a bundle exported on A for B, carried as a file
// and imported on B, syncs the folder; only B can open it, and only from a
// sender B knows.
func TestCLISealedSneakernet(t *testing.T) {
	homeA, a := setupFolder(t)
	homeB, b := setupFolder(t)
	homeC, _ := setupFolder(t)
	idA, _ := deviceID(t, homeA)
	idB, pubB := deviceID(t, homeB)
	_, _, err := runCLI(t, homeB, "peer", "add", "--name", "alpha", "--folders", "docs", idA)
	require.NoError(t, err)
	_, _, err = runCLI(t, homeC, "peer", "add", "--name", "alpha", "--folders", "docs", idA)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(filepath.Join(a, "letter.txt"), []byte("for beta's eyes"), 0o644))
	file := filepath.Join(t.TempDir(), "for-beta.sealed")
	out, _, err := runCLI(t, homeA, "bundle", "export", "--folder", "docs", "--to", pubB, file)
	require.NoError(t, err)
	assert.Contains(t, out, "sealed to 1 recipient")
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.True(t, crypto.IsSealed(raw))
	assert.NotContains(t, string(raw), "for beta's eyes", "sealed content is not readable in the file")

	// Not the recipient: refused, nothing written.
	_, _, err = runCLI(t, homeC, "bundle", "import", "--folder", "docs", file)
	require.Error(t, err)
	assert.ErrorIs(t, err, crypto.ErrNotRecipient)

	// Tampered: refused.
	bad := append([]byte(nil), raw...)
	bad[len(bad)/2] ^= 0x01
	badFile := filepath.Join(t.TempDir(), "bad.sealed")
	require.NoError(t, os.WriteFile(badFile, bad, 0o644))
	_, _, err = runCLI(t, homeB, "bundle", "import", "--folder", "docs", badFile)
	require.Error(t, err)
	assert.NoFileExists(t, filepath.Join(b, "letter.txt"))

	// The recipient, knowing the sender: synced.
	out, _, err = runCLI(t, homeB, "bundle", "import", "--folder", "docs", file)
	require.NoError(t, err)
	assert.Contains(t, out, "sealed by "+idA+" (verified)")
	same, why := testutil.SameTree(a, b)
	assert.True(t, same, why)

	// An unknown sender: B removes A from its table, then imports.
	_, _, err = runCLI(t, homeB, "peer", "remove", idA)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(a, "second.txt"), []byte("2"), 0o644))
	file2 := filepath.Join(t.TempDir(), "second.sealed")
	_, _, err = runCLI(t, homeA, "bundle", "export", "--folder", "docs", "--to", idB, file2)
	require.NoError(t, err)
	_, _, err = runCLI(t, homeB, "bundle", "import", "--folder", "docs", file2)
	require.Error(t, err)
	assert.ErrorIs(t, err, crypto.ErrUnknownPeer)
	assert.NoFileExists(t, filepath.Join(b, "second.txt"))
}

// TestCLIIdentityMatchesSSHKeygen: `desktop id` prints the public key that
// OpenSSH derives from the identity file.
func TestCLIIdentityMatchesSSHKeygen(t *testing.T) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("LOUD SKIP: ssh-keygen not installed (Debian openssh-client); .ci/run installs it")
	}
	home := t.TempDir()
	_, _, err := runCLI(t, home, "init")
	require.NoError(t, err)
	_, pub := deviceID(t, home)
	out, err := exec.Command("ssh-keygen", "-y", "-f", filepath.Join(home, "identity")).Output()
	require.NoError(t, err)
	f := strings.Fields(string(out))
	require.GreaterOrEqual(t, len(f), 2)
	assert.Equal(t, pub, f[0]+" "+f[1])
}
