package sync

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFanOutSharesOneBundleJob: three new devices ask one sender for the
// same folder while its first bundle is being produced; they share that
// one job (the history is walked and packed once, not three times), each
// reads it from its start at its own pace, and all three end with the
// sender's files.
func TestFanOutSharesOneBundleJob(t *testing.T) {
	slow := &slowSender{gate: make(chan struct{})}
	a := newNodeCfg(t, "a", func(c *Config) { c.Fetch.Idle = testIdle; c.test = slow.hooks(0) })
	data := make([]byte, 2<<20)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(filepath.Join(a.dir, "random.bin"), data, 0o644))
	write(t, a.dir, "notes/a.txt", "a small file")
	a.start(t)
	t.Cleanup(slow.release)
	var receivers []*node
	for _, name := range []string{"b", "c", "d"} {
		r := newNodeCfg(t, name, func(c *Config) { c.Fetch.Idle = testIdle })
		require.NoError(t, a.e.AddPeer(PeerConfig{Device: r.e.DeviceID(), Folders: []string{"docs"}}))
		require.NoError(t, r.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
		r.start(t)
		receivers = append(receivers, r)
	}
	eventually(t, "the three wants are answered while the job is gated", func() bool {
		return len(slow.offsets()) == 3
	})
	slow.release()
	for _, r := range receivers {
		eventually(t, "the files reach "+r.e.cfg.Home, func() bool {
			got, err := os.ReadFile(filepath.Join(r.dir, "random.bin"))
			return err == nil && bytes.Equal(got, data) && fileIs(r.dir, "notes/a.txt", "a small file")()
		})
	}
	assert.Equal(t, 1, slow.fullBundles(), "one bundle produced for the three peers")
	assert.Equal(t, []int64{0, 0, 0}, slow.offsets(), "each peer reads the shared job from its start")
	for _, r := range receivers {
		noErrorEvents(t, r.e)
	}
}
