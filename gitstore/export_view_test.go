package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// holdExports makes every WriteBundle of s stop, once it holds its read
// view, until release is closed; exporting receives once per export.
func holdExports(t *testing.T, s *Store) (exporting chan struct{}, release chan struct{}) {
	t.Helper()
	exporting, release = make(chan struct{}, 16), make(chan struct{})
	exportHook = func(of *Store) {
		if of == s {
			exporting <- struct{}{}
			<-release
		}
	}
	t.Cleanup(func() { exportHook = nil })
	return exporting, release
}

type exportResult struct {
	buf  bytes.Buffer
	info BundleInfo
	err  error
}

// startExport runs WriteBundle in the background.
func startExport(s *Store, since ...Hash) (done chan *exportResult) {
	done = make(chan *exportResult, 1)
	go func() {
		r := &exportResult{}
		r.info, r.err = s.WriteBundle(context.Background(), &r.buf, since)
		done <- r
	}()
	return done
}

// An export in progress holds up no scan, apply, History or Head: it reads
// main as published when it started, through a read view of its own. The
// bundle it then writes is that head's, complete.
func TestExportDoesNotBlockWrites(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	peer := newTestStore(t, "peer", epoch)
	ctx := context.Background()
	addFiles(t, s, "d", "f", 0, 20)
	scan(t, s)
	before := head(t, s)
	exporting, release := holdExports(t, s)
	done := startExport(s)
	<-exporting

	// The export is stopped inside WriteBundle, holding its view.
	writeFile(t, s.Dir(), "during", "scan during an export")
	require.Len(t, scan(t, s), 1)
	after := head(t, s)
	require.NotEqual(t, before, after)
	writeFile(t, peer.Dir(), "from-peer", "x")
	scan(t, peer)
	pb, _ := bundleOf(t, peer) // the peer's export is not held
	res := apply(t, s, pb, peerA)
	assert.Equal(t, Merged, res.Kind)
	hist, err := s.History(ctx, "during", 0)
	require.NoError(t, err)
	assert.Len(t, hist, 1)

	close(release)
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, before, r.info.Head, "the export is of main as it was when it started")
	fetchInto(t, s, r.buf.Bytes())
	apply(t, peer, r.buf.Bytes(), peerB)
}

// Maintenance waits for a running export before it removes files (the
// export reads them), and scans go on meanwhile: maintenance does not hold
// the store while it waits for the export.
func TestMaintenanceWaitsForExport(t *testing.T) {
	lowThresholds(t, 20, 3)
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "first", "x")
	scan(t, s)
	exporting, release := holdExports(t, s)
	done := startExport(s)
	<-exporting
	toLock := make(chan struct{})
	hookStep(t, "written", func() { close(toLock) })
	editUntil(t, s, toLock)
	// Maintenance has its new pack and goes for the locks; the export
	// holds its view.
	for i := 0; i < 5; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("later-%d", i), "x")
		require.Len(t, scan(t, s), 1)
	}
	close(release)
	r := <-done
	require.NoError(t, r.err)
	fetchInto(t, s, r.buf.Bytes())
	require.True(t, waitMaintained(s).Done)
	fsck(t, s)
	full, _ := bundleOf(t, s)
	fetchInto(t, s, full)
}
