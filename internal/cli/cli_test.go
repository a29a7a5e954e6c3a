package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

func runCLI(t *testing.T, home string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), testProgram, append([]string{"--home", home}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

func TestCLIUsageErrors(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name string
		args []string
	}{
		{"unknown command", []string{"bogus"}},
		{"folder without add", []string{"folder"}},
		{"folder add without id", []string{"folder", "add", t.TempDir()}},
		{"peer add without device", []string{"peer", "add", "--name", "x"}},
		{"scan with junk", []string{"scan", "junk"}},
		{"unknown flag", []string{"run", "--nope"}},
		{"id with args", []string{"id", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, home, tt.args...)
			require.Error(t, err)
			var ue UsageError
			assert.True(t, errors.As(err, &ue), "want a usage error (exit 2), got %v", err)
		})
	}
}

func TestCLIErrorsSayWhatToDo(t *testing.T) {
	home := t.TempDir()
	_, _, err := runCLI(t, home, "id")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "peersync-test init")

	_, _, err = runCLI(t, home, "peer", "add", "--name", "x", "NOT-A-DEVICE")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "peersync-test id")

	_, _, err = runCLI(t, home, "folder", "add", "--id", "docs", filepath.Join(home, "missing"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing")
}

func TestCLIFlow(t *testing.T) {
	home, folder := t.TempDir(), t.TempDir()
	out, _, err := runCLI(t, home, "init", "--name", "laptop")
	require.NoError(t, err)
	id := strings.TrimSpace(out)

	out, _, err = runCLI(t, home, "id")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	assert.Equal(t, id, lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "ssh-ed25519 AAAA"))

	_, _, err = runCLI(t, home, "folder", "add", "--id", "docs", folder)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(folder, "a.txt"), []byte("a"), 0o644))
	out, _, err = runCLI(t, home, "scan")
	require.NoError(t, err)
	assert.Regexp(t, `^docs [0-9a-f]{40} add a.txt\n$`, out)

	// A peer given as an unquoted ssh line (several words), flags after it.
	other := t.TempDir()
	_, _, err = runCLI(t, other, "init")
	require.NoError(t, err)
	otherOut, _, err := runCLI(t, other, "id")
	require.NoError(t, err)
	otherLines := strings.Split(strings.TrimSpace(otherOut), "\n")
	args := append([]string{"peer", "add"}, strings.Fields(otherLines[1])...)
	args = append(args, "--name", "desk", "--addr", "127.0.0.1:44996", "--folders", "docs")
	_, _, err = runCLI(t, home, args...)
	require.NoError(t, err)

	out, stderr, err := runCLI(t, home, "status")
	require.NoError(t, err)
	assert.Contains(t, stderr, "not running")
	assert.Contains(t, out, "name    laptop")
	assert.Contains(t, out, "folder  docs")
	assert.Contains(t, out, "peer    desk  "+otherLines[0]+"  offline  addrs=127.0.0.1:44996  folders=docs")

	// --home before the subcommand, PEERSYNC_HOME otherwise.
	t.Setenv("PEERSYNC_HOME", home)
	var buf bytes.Buffer
	require.NoError(t, Run(context.Background(), testProgram, []string{"id"}, &buf, &buf))
	assert.Contains(t, buf.String(), id)
}

var testProgram = Program{Name: "peersync-test", Summary: "test"}

// TestDaemonLock: while a daemon holds the lock, commands that commit
// refuse (they would race it on the same repository) and say why; reading
// commands still work; a second daemon is refused.
func TestDaemonLock(t *testing.T) {
	home, folder := setupFolder(t)
	require.NoError(t, os.WriteFile(filepath.Join(folder, "a.txt"), []byte("a"), 0o644))
	id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
	require.NoError(t, err)
	daemon, err := sync.New(sync.Config{Home: home, Identity: id}) // owns the home, as `run` does
	require.NoError(t, err)
	release := func() { require.NoError(t, daemon.Close()) }

	for _, args := range [][]string{
		{"scan"},
		{"restore", "--folder", "docs", "a.txt", strings.Repeat("0", 40)},
		{"bundle", "export", "--folder", "docs", filepath.Join(t.TempDir(), "x.bundle")},
	} {
		_, _, err := runCLI(t, home, args...)
		require.Error(t, err, args)
		assert.ErrorIs(t, err, errDaemonRunning, args)
	}
	_, _, err = runCLI(t, home, "status")
	assert.NoError(t, err, "status only reads")
	_, _, err = runCLI(t, home, "history", "--folder", "docs")
	assert.NoError(t, err, "history only reads")
	_, _, err = runCLI(t, home, "run", "--listen", "127.0.0.1:0", "--no-discovery")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already running")

	release()
	out, _, err := runCLI(t, home, "scan")
	require.NoError(t, err)
	assert.Contains(t, out, "add a.txt")
}

// TestParseRendezvous: --rendezvous takes DEVICEID@HOST:PORT (pinned) or
// HOST:PORT alone (unpinned); anything else says what it wants.
func TestParseRendezvous(t *testing.T) {
	id, err := crypto.GenerateIdentity(nil)
	require.NoError(t, err)
	r, err := parseRendezvous(id.DeviceID().String() + "@rv.example.org:44996")
	require.NoError(t, err)
	assert.Equal(t, id.DeviceID(), r.Device)
	assert.Equal(t, "rv.example.org:44996", r.Addr)

	r, err = parseRendezvous("203.0.113.7:44996")
	require.NoError(t, err)
	assert.True(t, r.Device.IsZero(), "unpinned")
	assert.Equal(t, "203.0.113.7:44996", r.Addr)

	for _, bad := range []string{"rv.example.org", "NOT-A-DEVICE@rv.example.org:1", id.DeviceID().String() + "@nowhere"} {
		_, err := parseRendezvous(bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "--rendezvous", bad)
	}
}

// TestSoftMemoryLimit: the daemons' soft limit is set unless GOMEMLIMIT
// says otherwise.
func TestSoftMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "off")
	assert.False(t, SoftMemoryLimit(DaemonMemoryLimit), "GOMEMLIMIT wins")
	assert.Equal(t, prev, debug.SetMemoryLimit(-1))
	require.NoError(t, os.Unsetenv("GOMEMLIMIT"))
	assert.True(t, SoftMemoryLimit(DaemonMemoryLimit))
	assert.Equal(t, int64(DaemonMemoryLimit), debug.SetMemoryLimit(-1))
}
