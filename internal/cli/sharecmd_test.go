package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/sync"
)

// TestCLISharingCommands runs the sharing, schedule and limit commands
// the same way with a daemon running (through its API; the daemon has
// each change at once) and without (the commands open the home), and
// checks the outputs and the stored configuration.
func TestCLISharingCommands(t *testing.T) {
	for _, withDaemon := range []bool{false, true} {
		name := "no daemon"
		if withDaemon {
			name = "daemon"
		}
		t.Run(name, func(t *testing.T) {
			home, _ := setupFolder(t)
			var d *daemon
			if withDaemon {
				d = startDaemon(t, testProgram, home)
			}
			// live returns the configuration as the daemon (or a fresh engine) has it.
			live := func() sync.Status {
				t.Helper()
				if d != nil {
					st, err := d.client.Status(context.Background())
					require.NoError(t, err)
					return st
				}
				id, _, err := crypto.LoadOrCreateIdentity(filepath.Join(home, "identity"))
				require.NoError(t, err)
				e, err := sync.New(sync.Config{Home: home, Identity: id, Shared: true})
				require.NoError(t, err)
				defer e.Close()
				return e.Status()
			}
			run := func(args ...string) string {
				t.Helper()
				out, stderr, err := runCLI(t, home, args...)
				require.NoError(t, err, "%v: %s", args, stderr)
				return out
			}
			other, err := crypto.GenerateIdentity(nil)
			require.NoError(t, err)
			peer := other.DeviceID().String()
			photos := t.TempDir()

			run("folder", "add", "--id", "photos", "--label", "Holiday photos", photos)
			run("peer", "set", peer, "--name", "desk", "--addr", "desk.example:44996", "--folders", "docs,photos", "--direction", "docs=receive")
			run("peer", "set", peer, "--name", "big desk") // only the name changes
			st := live()
			require.Len(t, st.Peers, 1)
			p := st.Peers[0]
			assert.Equal(t, "big desk", p.Name)
			assert.Equal(t, []string{"desk.example:44996"}, p.Addrs)
			assert.Equal(t, []string{"docs", "photos"}, p.Folders)
			assert.Equal(t, sync.DirReceive, p.Directions["docs"])
			out := run("status")
			assert.Contains(t, out, "peer    big_desk  "+peer)
			assert.Contains(t, out, "  known docs - receive\n")
			assert.Contains(t, out, "  known photos - both\n")
			assert.Contains(t, out, `label "Holiday photos"`)

			assert.Equal(t, "peer "+peer+" paused\n", run("peer", "pause", peer))
			assert.True(t, live().Peers[0].Paused)
			assert.Contains(t, run("status"), "PAUSED")
			run("peer", "resume", peer)
			assert.False(t, live().Peers[0].Paused)
			assert.Equal(t, "folder photos paused\n", run("folder", "pause", "photos"))
			assert.True(t, live().Folders[1].Paused)
			run("folder", "resume", "photos")
			assert.False(t, live().Folders[1].Paused)

			_, _, err = runCLI(t, home, "folder", "revert", "docs")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "nothing received yet")

			out = run("schedule", "set", "--days", "mon,fri", "--from", "22:00", "--to", "06:00")
			assert.Regexp(t, "^global  mon,fri 22:00-06:00\npeer    big_desk  "+peer+"  global  (open|closed until .*)\n$", out)
			out = run("schedule", "set", "--peer", peer, "--from", "01:00", "--to", "05:00")
			assert.Contains(t, out, "peer    big_desk  "+peer+"  every day 01:00-05:00  ")
			assert.Equal(t, out, run("schedule"))
			require.NotNil(t, live().Peers[0].Schedule)
			run("schedule", "set", "--peer", peer, "--global")
			assert.Nil(t, live().Peers[0].Schedule)
			assert.Contains(t, run("schedule", "set", "--always"), "global  always\n")

			assert.Equal(t, "global  up 500KiB/s  down 10MiB/s\npeer    big_desk  "+peer+"  up none  down none\n",
				run("limit", "--up", "500KiB", "--down", "10MiB"))
			out = run("limit", "--peer", peer, "--down", "1.5M")
			assert.Contains(t, out, "up none  down 1.5MiB/s\n")
			assert.Equal(t, out, run("limit"))
			assert.Equal(t, int64(1536*1024), live().Peers[0].Limits.Down)

			_, stderr, err := runCLI(t, home, "pending")
			require.NoError(t, err)
			assert.Contains(t, stderr, "nothing pending")
			stranger, err := crypto.GenerateIdentity(nil)
			require.NoError(t, err)
			assert.Equal(t, "device "+stranger.DeviceID().String()+" ignored\n", run("pending", "ignore", stranger.DeviceID().String()))
			_, _, err = runCLI(t, home, "pending", "ignore", peer)
			require.Error(t, err, "a peer is removed, not ignored")
			_, _, err = runCLI(t, home, "pending", "ignore", "nosuchfolder")
			require.Error(t, err)

			if withDaemon {
				assert.Equal(t, "exchange started\n", run("sync-now", "--peer", peer, "--folder", "docs"))
			} else {
				_, _, err = runCLI(t, home, "sync-now")
				require.Error(t, err)
				assert.Contains(t, err.Error(), "daemon is not running")
			}

			run("folder", "remove", "photos")
			st = live()
			require.Len(t, st.Folders, 1)
			assert.Equal(t, []string{"docs"}, st.Peers[0].Folders, "no longer shared with the peer")
			_, err = os.Stat(filepath.Join(photos, ".peersync"))
			assert.NoError(t, err, "the history stays")

			for _, bad := range [][]string{
				{"limit", "--up", "fast"},
				{"schedule", "set", "--from", "22:00"},
				{"schedule", "set", "--from", "25:00", "--to", "01:00"},
				{"schedule", "set", "--always", "--from", "01:00", "--to", "02:00"},
				{"schedule", "set", "--global"},
				{"peer", "set", peer, "--direction", "docs=sideways"},
				{"peer", "add", "--direction", "docs=send", peer},
				{"folder", "pause"},
				{"pending", "nonsense"},
			} {
				_, _, err := runCLI(t, home, bad...)
				var ue UsageError
				assert.ErrorAs(t, err, &ue, strings.Join(bad, " "))
			}
			_, _, err = runCLI(t, home, "folder", "pause", "nope")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "nope")
		})
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "500": 500, "500B": 500, "500KiB": 500 << 10, "10MiB": 10 << 20, "1.5M": 3 << 19,
		"2MB": 2e6, "1GiB/s": 1 << 30, " 64 kib ": 64 << 10, "1k": 1024,
	} {
		got, err := parseRate(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "fast", "-1", "1XB", "1e30GiB"} {
		_, err := parseRate(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "none", formatRate(0))
	assert.Equal(t, "500KiB/s", formatRate(500<<10))
	assert.Equal(t, "1.5MiB/s", formatRate(3<<19))
	assert.Equal(t, "999B/s", formatRate(999))
}
