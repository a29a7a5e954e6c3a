package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/mirror/mirrortest"
)

// waitFor polls a condition on files another goroutine writes (the target
// of a mirror, the status file), within a deadline that bounds a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 60*time.Second, 20*time.Millisecond, what)
}

func fileHas(p, want string) func() bool {
	return func() bool {
		b, err := os.ReadFile(p)
		return err == nil && string(b) == want
	}
}

func gone(p string) func() bool {
	return func() bool {
		_, err := os.Stat(p)
		return os.IsNotExist(err)
	}
}

// TestFolderMirrorCommandsAndDaemon: `folder mirror add|list|remove` and a
// daemon that mirrors the folder to SFTP targets at start and after each
// change, picks up mirrors added and removed while it runs, and shows each
// mirror's state.
func TestFolderMirrorCommandsAndDaemon(t *testing.T) {
	home, folder := t.TempDir(), t.TempDir()
	_, _, err := runCLI(t, home, "init", "--name", "laptop")
	require.NoError(t, err)
	_, _, err = runCLI(t, home, "folder", "add", "--id", "docs", folder)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(folder, "a.txt"), []byte("alpha"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(folder, "b.txt"), []byte("beta"), 0o644))

	srv, err := mirrortest.NewSFTPServer("demo", "s3cret")
	require.NoError(t, err)
	defer srv.Close()
	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	target1, target2 := t.TempDir(), t.TempDir()
	url1, url2 := "sftp://demo@"+srv.Addr()+target1, "sftp://demo:s3cret@"+srv.Addr()+target2

	out, _, err := runCLI(t, home, "folder", "mirror", "add", "--folder", "docs", "--password-file", pw, url1)
	require.NoError(t, err)
	assert.Equal(t, "mirror m1: folder docs -> "+url1+"\n", out)
	_, _, err = runCLI(t, home, "folder", "mirror", "add", "--folder", "nope", url1)
	assert.ErrorContains(t, err, `no folder "nope"`)
	_, _, err = runCLI(t, home, "folder", "mirror", "add", "--folder", "docs", "http://example.com/x")
	assert.Error(t, err)
	_, _, err = runCLI(t, home, "folder", "mirror", "add", url1)
	var ue UsageError
	assert.ErrorAs(t, err, &ue)
	out, errOut, err := runCLI(t, home, "folder", "mirror", "list")
	require.NoError(t, err)
	assert.Equal(t, "m1  docs  "+url1+"  never synced\n", out)
	assert.Contains(t, errOut, "the daemon is not running")
	fi, err := os.Stat(filepath.Join(home, "mirrors.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var runOut, runErr bytes.Buffer
	go func() {
		done <- Run(ctx, testProgram, []string{"--home", home, "run", "--listen", "127.0.0.1:0", "--no-discovery", "--scan-interval", "100ms"}, &runOut, &runErr)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second): // bounds a hang
			t.Error("run did not stop")
		}
	}()

	// At start: the whole folder, without its history.
	waitFor(t, "first sync", fileHas(filepath.Join(target1, "b.txt"), "beta"))
	assert.NoFileExists(t, filepath.Join(target1, ".peersync"))
	// After each change: modified, added, deleted.
	require.NoError(t, os.WriteFile(filepath.Join(folder, "a.txt"), []byte("alpha 2"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(folder, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(folder, "sub", "c.txt"), []byte("gamma"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(folder, "b.txt")))
	waitFor(t, "modified", fileHas(filepath.Join(target1, "a.txt"), "alpha 2"))
	waitFor(t, "added", fileHas(filepath.Join(target1, "sub", "c.txt"), "gamma"))
	waitFor(t, "deleted", gone(filepath.Join(target1, "b.txt")))
	waitFor(t, "state ok in the list", func() bool {
		out, _, err := runCLI(t, home, "folder", "mirror", "list")
		return err == nil && strings.Contains(out, "m1  docs  "+url1+"  ok  last synced ")
	})

	// A mirror added while the daemon runs starts; its URL's password is
	// never shown.
	_, errOut, err = runCLI(t, home, "folder", "mirror", "add", "--folder", "docs", url2)
	require.NoError(t, err)
	assert.Contains(t, errOut, "password is stored")
	waitFor(t, "second mirror", fileHas(filepath.Join(target2, "sub", "c.txt"), "gamma"))
	out, _, err = runCLI(t, home, "folder", "mirror", "list")
	require.NoError(t, err)
	assert.NotContains(t, out, "s3cret")
	assert.Contains(t, out, "m2  docs  sftp://demo:xxxxx@")

	// A removed one stops: once the daemon's status no longer lists it, a
	// change reaches m2 only.
	out, _, err = runCLI(t, home, "folder", "mirror", "remove", "m1")
	require.NoError(t, err)
	assert.Equal(t, "mirror m1 removed (the copy on the target stays)\n", out)
	waitFor(t, "m1 gone from the status", func() bool {
		_, ok := readMirrorStates(home)["m1"]
		return !ok
	})
	require.NoError(t, os.WriteFile(filepath.Join(folder, "a.txt"), []byte("alpha 3"), 0o644))
	waitFor(t, "m2 updated", fileHas(filepath.Join(target2, "a.txt"), "alpha 3"))
	assert.True(t, fileHas(filepath.Join(target1, "a.txt"), "alpha 2")(), "m1 no longer mirrored")
	_, _, err = runCLI(t, home, "folder", "mirror", "remove", "m1")
	assert.ErrorContains(t, err, `no mirror "m1"`)
}
