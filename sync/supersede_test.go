package sync

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/transport"
)

// TestFetchMovesToNewerConnection: a transfer under way when its
// connection is closed as a duplicate (what the move from QUIC to TCP and
// two crossing dials do) is not an error: no EventError, no "abandoned"
// status; the fetch goes on over the next connection, resuming at the
// bytes already received, and the files arrive.
func TestFetchMovesToNewerConnection(t *testing.T) {
	slow := &slowSender{gate: make(chan struct{})}
	a := newNodeCfg(t, "a", func(c *Config) { c.Fetch.Idle = testIdle; c.test = slow.hooks(256 << 10) })
	t.Cleanup(slow.release) // before a's Close
	data := make([]byte, 2<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	require.NoError(t, os.WriteFile(filepath.Join(a.dir, "random.bin"), data, 0o644))
	write(t, a.dir, "notes/a.txt", "a small file")
	a.start(t)
	b := newNodeCfg(t, "b", func(c *Config) { c.Fetch.Idle = testIdle })
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)

	// The first 256 KiB are through; the producer waits at the gate.
	eventually(t, "b holds part of the bundle", func() bool {
		for _, f := range b.e.Status().Folders {
			for _, fs := range f.Fetches {
				if fs.State == "receiving" && fs.Received > 0 {
					return true
				}
			}
		}
		return false
	})
	a.e.mu.Lock()
	pc := a.e.connLocked(b.e.DeviceID())
	a.e.mu.Unlock()
	require.NotNil(t, pc)
	require.NoError(t, pc.c.CloseWithError(transport.CloseDuplicate, "replaced by a newer connection"))
	eventually(t, "b asks again over a new connection, resuming", func() bool {
		offs := slow.offsets()
		return len(offs) == 2 && offs[1] > 0
	})
	slow.release()
	eventually(t, "the files reach b", func() bool {
		got, err := os.ReadFile(filepath.Join(b.dir, "random.bin"))
		return err == nil && bytes.Equal(got, data) && fileIs(b.dir, "notes/a.txt", "a small file")()
	})
	assert.Equal(t, 1, slow.fullBundles(), "the bundle was produced once")
	noErrorEvents(t, b.e)
	for _, f := range b.e.Status().Folders {
		for _, fs := range f.Fetches {
			assert.NotEqual(t, "abandoned", fs.State, fs.Err)
		}
	}
}
