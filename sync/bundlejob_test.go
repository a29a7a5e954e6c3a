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

// fanOutSender starts a sender whose bundles slow sees, sharing "docs"
// with random.bin (size random bytes, returned) and notes/a.txt.
func fanOutSender(t *testing.T, slow *slowSender, size int) (*node, []byte) {
	a := newNodeCfg(t, "a", func(c *Config) { c.Fetch.Idle = testIdle; c.test = slow.hooks(0) })
	data := make([]byte, size)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(filepath.Join(a.dir, "random.bin"), data, 0o644))
	write(t, a.dir, "notes/a.txt", "a small file")
	a.start(t)
	return a, data
}

// TestFanOutSharesOneBundleJob: three new devices ask one sender for the
// same folder while its first bundle is being produced; they share that
// one job (the history is walked and packed once, not three times), each
// reads it from its start at its own pace, and all three end with the
// sender's files.
func TestFanOutSharesOneBundleJob(t *testing.T) {
	slow := &slowSender{gate: make(chan struct{})}
	a, data := fanOutSender(t, slow, 2<<20)
	t.Cleanup(slow.release) // before a's Close (cleanups run last first)
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

// TestFanOutLatePeerSharesFinishedJob: a new device that asks for the
// first bundle after another device's job is finished, while our head has
// not moved, reads that job's file (no second walk of the history); once
// the head moved, the kept job is stale and the next new device gets a
// bundle of the new head, produced anew.
func TestFanOutLatePeerSharesFinishedJob(t *testing.T) {
	slow := &slowSender{gate: make(chan struct{})}
	slow.release() // counts productions, holds nothing back
	a, data := fanOutSender(t, slow, 1<<20)
	receive := func(name string) *node {
		r := newNodeCfg(t, name, func(c *Config) { c.Fetch.Idle = testIdle })
		require.NoError(t, a.e.AddPeer(PeerConfig{Device: r.e.DeviceID(), Folders: []string{"docs"}}))
		require.NoError(t, r.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
		r.start(t)
		eventually(t, "the files reach "+name, func() bool {
			got, err := os.ReadFile(filepath.Join(r.dir, "random.bin"))
			return err == nil && bytes.Equal(got, data) && fileIs(r.dir, "notes/a.txt", "a small file")()
		})
		return r
	}
	b := receive("b")
	assert.Equal(t, 1, slow.fullBundles(), "b's first bundle")
	c := receive("c")
	assert.Equal(t, 1, slow.fullBundles(), "c reads b's finished job")
	assert.Equal(t, []int64{0, 0}, slow.offsets(), "from its start")

	head := a.e.Status().Folders[0].Head
	write(t, a.dir, "notes/b.txt", "a second file")
	eventually(t, "a's head moves", func() bool { return a.e.Status().Folders[0].Head != head })
	d := receive("d")
	eventually(t, "the new file reaches d", fileIs(d.dir, "notes/b.txt", "a second file"))
	assert.Equal(t, 2, slow.fullBundles(), "the kept job holds an old head: d's bundle is produced anew")
	for _, r := range []*node{b, c, d} {
		eventually(t, "the new file reaches "+r.e.cfg.Home, fileIs(r.dir, "notes/b.txt", "a second file"))
		noErrorEvents(t, r.e)
	}
}
