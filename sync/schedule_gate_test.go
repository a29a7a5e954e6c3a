package sync

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/crypto"

	"github.com/peersync/peersync/internal/testutil"
)

// recorder keeps every event of an engine, for tests that wait for
// several in turn.
type recorder struct {
	mu  gosync.Mutex
	evs []Event
}

func record(e *Engine) *recorder {
	r := &recorder{}
	go func() {
		for ev := range e.Events() { // ends at Close
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) all(match func(Event) bool) []Event { return r.allFrom(0, match) }

func (r *recorder) wait(t *testing.T, what string, match func(Event) bool) Event {
	t.Helper()
	return r.waitFrom(t, 0, what, match)
}

// count is the number of events so far (a mark for allFrom, waitFrom).
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// allFrom is all, for the events after the first from.
func (r *recorder) allFrom(from int, match func(Event) bool) []Event {
	r.mu.Lock()
	evs := r.evs[from:]
	r.mu.Unlock()
	var out []Event
	for _, ev := range evs {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// waitFrom waits for an event after the first from that match accepts.
func (r *recorder) waitFrom(t *testing.T, from int, what string, match func(Event) bool) Event {
	t.Helper()
	var got Event
	eventually(t, what, func() bool {
		evs := r.allFrom(from, match)
		if len(evs) > 0 {
			got = evs[0]
		}
		return len(evs) > 0
	})
	return got
}

// heldCounts counts what a closed window held back.
type heldCounts struct{ send, recv atomic.Int32 }

func (h *heldCounts) hooks() *testHooks {
	return &testHooks{gated: func(_ crypto.DeviceID, _ string, send bool) {
		if send {
			h.send.Add(1)
		} else {
			h.recv.Add(1)
		}
	}}
}

func exists(dir, rel string) bool {
	_, err := os.Stat(filepath.Join(dir, rel))
	return err == nil
}

// pair starts a (with hooks and a clock) and b, sharing "docs".
func pair(t *testing.T, clk *testutil.Clock, held *heldCounts) (a, b *node) {
	a = newNodeCfg(t, "a", func(c *Config) { c.Now, c.test = clk.Now, held.hooks() })
	b = newNodeCfg(t, "b", func(c *Config) { c.Now = clk.Now })
	return a, b
}

func connect(t *testing.T, a, b *node) {
	t.Helper()
	a.start(t)
	require.NoError(t, a.e.AddPeer(PeerConfig{Device: b.e.DeviceID(), Name: "b", Folders: []string{"docs"}}))
	require.NoError(t, b.e.AddPeer(PeerConfig{Device: a.e.DeviceID(), Name: "a", Addrs: []string{a.e.Addr().String()}, Folders: []string{"docs"}}))
	b.start(t)
}

// TestScheduleGatesBundles: outside a's window for b no bundle goes
// either way while the connection stays up and status says what waits;
// SyncNow runs one exchange; the window's opening sends what waited.
func TestScheduleGatesBundles(t *testing.T) {
	clk := testutil.NewClock(time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC))
	held := &heldCounts{}
	a, b := pair(t, clk, held)
	require.NoError(t, a.e.SetSchedule(&Window{From: "22:00", To: "06:00"}))
	write(t, a.dir, "a1.txt", "from a")
	write(t, b.dir, "b1.txt", "from b")
	connect(t, a, b)
	ra := record(a.e)

	eventually(t, "a holds back b's head and refuses b's want", func() bool {
		return held.send.Load() > 0 && held.recv.Load() > 0
	})
	assert.False(t, exists(b.dir, "a1.txt"), "a's file went to b outside the window")
	assert.False(t, exists(a.dir, "b1.txt"), "b's file came to a outside the window")
	ps := a.e.Status().Peers[0]
	assert.True(t, ps.Connected, "the connection stays up")
	assert.Equal(t, "closed until 22:00", ps.Window)
	assert.Equal(t, 1, ps.Waiting)
	assert.Equal(t, "open", b.e.Status().Peers[0].Window)
	assert.Empty(t, ra.all(func(ev Event) bool { return ev.Kind == EventRemoteApplied }))

	// Sync now: one exchange, both ways, outside the window.
	require.NoError(t, a.e.SyncNow(b.e.DeviceID(), "docs"))
	eventually(t, "the exchange ran", func() bool {
		return fileIs(a.dir, "b1.txt", "from b")() && fileIs(b.dir, "a1.txt", "from a")()
	})
	eventually(t, "the exception ends once a and b are in step", func() bool {
		sa, sb := a.e.Status(), b.e.Status()
		return sa.Folders[0].Head == sb.Folders[0].Head && sa.Peers[0].Window == "closed until 22:00"
	})

	// Closed again: b's next edit waits.
	before := held.recv.Load()
	write(t, b.dir, "b2.txt", "later")
	eventually(t, "b's new head is held back", func() bool { return held.recv.Load() > before })
	assert.False(t, exists(a.dir, "b2.txt"))

	// 22:00: the window opens, and what waited comes at once.
	clk.Set(time.Date(2026, 12, 4, 22, 0, 30, 0, time.UTC))
	ra.wait(t, "window opened", func(ev Event) bool { return ev.Kind == EventWindowOpened && ev.Peer == b.e.DeviceID() })
	eventually(t, "b's edit arrives once the window is open", fileIs(a.dir, "b2.txt", "later"))
	assert.Equal(t, "open", a.e.Status().Peers[0].Window)
}

// TestScheduleFinishesBundleInFlight: a bundle flowing when the window
// closes is finished; the next one waits. Progress is reported on both
// sides, the receiver knowing the bundle's length.
func TestScheduleFinishesBundleInFlight(t *testing.T) {
	clk := testutil.NewClock(time.Date(2026, 12, 5, 5, 0, 0, 0, time.UTC))
	held := &heldCounts{}
	a, b := pair(t, clk, held)
	require.NoError(t, a.e.SetSchedule(&Window{From: "22:00", To: "06:00"}))
	connect(t, a, b)
	require.NoError(t, a.e.SetLimits(b.e.DeviceID(), RateLimit{Up: 256 << 10}))
	ra, rb := record(a.e), record(b.e)

	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	write(t, a.dir, "big.bin", string(big))
	ra.wait(t, "a sends the bundle", func(ev Event) bool {
		return ev.Kind == EventProgress && ev.Progress.Direction == "send" && ev.Progress.Bytes > 0
	})

	clk.Set(time.Date(2026, 12, 5, 6, 0, 30, 0, time.UTC))
	closed := ra.wait(t, "window closed", func(ev Event) bool { return ev.Kind == EventWindowClosed })
	assert.Equal(t, time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC), closed.Until)
	eventually(t, "the bundle in flight is finished", fileIs(b.dir, "big.bin", string(big)))

	recv := rb.all(func(ev Event) bool { return ev.Kind == EventProgress && ev.Progress.Direction == "receive" })
	require.NotEmpty(t, recv, "the receiver reports progress")
	last := recv[len(recv)-1].Progress
	assert.Equal(t, a.e.DeviceID(), last.Peer)
	assert.Equal(t, "docs", last.Folder)
	assert.Greater(t, last.Total, int64(1<<20), "the receiver learns the bundle's length")
	assert.Positive(t, last.Rate)
	assert.Positive(t, last.ObjectsTotal)

	before := held.send.Load()
	write(t, a.dir, "next.txt", "after the window")
	eventually(t, "b's want is refused", func() bool { return held.send.Load() > before })
	assert.False(t, exists(b.dir, "next.txt"))
	st := a.e.Status().Peers[0]
	assert.True(t, strings.HasPrefix(st.Window, "closed until 22:00"), st.Window)
	assert.Equal(t, 1, st.Waiting)
	assert.Empty(t, st.Progress, "no transfer runs")
}
