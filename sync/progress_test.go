package sync

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/gitstore"
)

// TestProgressPacedAndCounted: a transfer's events come at most every
// 250 ms however often data arrives, and the object count is read from
// the pack header even when it arrives in pieces.
func TestProgressPacedAndCounted(t *testing.T) {
	n := newNode(t, "a")
	n.start(t)
	r := record(n.e)
	peer := n.e.DeviceID() // any DeviceID will do for the bookkeeping

	header := []byte("# v2 git bundle\n0123456789012345678901234567890123456789 refs/heads/main\n\nPACK\x00\x00\x00\x02\x00\x00\x00\x07")
	tr := n.e.transferStart(peer, "docs", false, 0, nil)
	n.e.mu.Lock()
	assert.Len(t, n.e.progressLocked(peer), 1, "the transfer is in status")
	n.e.mu.Unlock()
	total := int64(1 << 30)
	n.e.transferData(tr, header[:20], 0)
	n.e.transferData(tr, header[20:len(header)-3], 0)
	n.e.transferData(tr, header[len(header)-3:], total)
	n.e.mu.Lock()
	p := tr.p
	n.e.mu.Unlock()
	assert.Equal(t, int64(7), p.ObjectsTotal)
	assert.Equal(t, int64(len(header)), p.Bytes)
	assert.Equal(t, total, p.Total)

	start := time.Now()
	calls := 0
	for time.Since(start) < 700*time.Millisecond {
		n.e.transferData(tr, []byte{0}, total)
		calls++
	}
	elapsed := time.Since(start)
	n.e.transferEnd(tr)
	evs := r.all(func(ev Event) bool { return ev.Kind == EventProgress })
	assert.LessOrEqual(t, len(evs), int(elapsed/progressEvery)+1, "%d events for %d updates in %s", len(evs), calls, elapsed)
	require.NotEmpty(t, evs)
	lastEv := evs[len(evs)-1].Progress
	assert.Equal(t, "receive", lastEv.Direction)
	assert.Equal(t, "docs", lastEv.Folder)
	assert.Positive(t, lastEv.Rate)
	assert.Positive(t, lastEv.ETA)
	assert.Equal(t, lastEv.ObjectsTotal*lastEv.Bytes/lastEv.Total, lastEv.Objects)
	n.e.mu.Lock()
	assert.Empty(t, n.e.progressLocked(peer), "the transfer is gone from status")
	n.e.mu.Unlock()
}

// TestScanProgressInStatus: the store's scan reports become
// EventScanProgress and FolderStatus.Scan until the scan ends.
func TestScanProgressInStatus(t *testing.T) {
	n := newNode(t, "a")
	n.start(t)
	r := record(n.e)
	report := n.e.scanProgress(n.dir)
	report(gitstore.ScanProgress{Files: 3, Bytes: 300})
	ev := r.wait(t, "scan progress event", func(ev Event) bool { return ev.Kind == EventScanProgress })
	assert.Equal(t, "docs", ev.Folder)
	assert.Equal(t, &ScanProgress{Files: 3, Bytes: 300}, ev.Scan)
	assert.Equal(t, &ScanProgress{Files: 3, Bytes: 300}, n.e.Status().Folders[0].Scan)
	report(gitstore.ScanProgress{Files: 5, Bytes: 500, Done: true})
	assert.Nil(t, n.e.Status().Folders[0].Scan)
}
