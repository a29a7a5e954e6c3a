package sync

import (
	"io"
	"testing"
	"time"

	"github.com/peersync/peersync/crypto"
	"github.com/peersync/peersync/gitstore"
)

// TestKnownAfterMergeAnnouncedEarly: both sides changed; b's bundle to a
// is held back while b fetches a's commits, merges and announces the merge
// to a, which cannot record it (a lacks it yet). Once a's fetch of b's
// bundle ends, a has made the same merge: a must record that b has its
// head at once, not at b's next periodic announcement (an hour here), so
// that status, SyncNow's "in step" and mailbox deposits go by it.
func TestKnownAfterMergeAnnouncedEarly(t *testing.T) {
	gate := make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	t.Cleanup(release)
	heardMerge := make(chan struct{}, 16)
	var bID crypto.DeviceID
	a := newNodeCfg(t, "a", func(c *Config) {
		c.AnnounceInterval = time.Hour
		c.test = &testHooks{heard: func(from crypto.DeviceID, _ string, _ gitstore.Hash, fetch bool) {
			if from == bID && fetch {
				heardMerge <- struct{}{}
			}
		}}
	})
	b := newNodeCfg(t, "b", func(c *Config) {
		c.AnnounceInterval = time.Hour
		c.test = &testHooks{produce: func(_ []gitstore.Hash, w io.Writer) io.Writer {
			return &gatedWriter{w: w, gate: gate} // every bundle b sends waits
		}}
	})
	bID = b.e.DeviceID()
	write(t, a.dir, "a1.txt", "from a")
	write(t, b.dir, "b1.txt", "from b")
	connect(t, a, b)

	// b gets a's commits (a's bundles are not gated), merges, announces.
	eventually(t, "b merged a's commits", fileIs(b.dir, "a1.txt", "from a"))
	// a heard b's heads (b1's, then the merge) and could not record them.
	for range 2 {
		select {
		case <-heardMerge:
		case <-time.After(20 * time.Second):
			t.Fatal("a did not hear b's heads")
		}
	}
	release()
	var head gitstore.Hash
	eventually(t, "a merged b's commits into the same head as b's", func() bool {
		head = a.e.Status().Folders[0].Head
		return head == b.e.Status().Folders[0].Head && fileIs(a.dir, "b1.txt", "from b")()
	})
	eventually(t, "a knows that b has its head", func() bool {
		return a.e.Status().Peers[0].Known["docs"] == head
	})
	eventually(t, "and b knows that a has it", func() bool {
		return b.e.Status().Peers[0].Known["docs"] == head
	})
}
