package gitstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lowThresholds makes background maintenance start after a few scans.
func lowThresholds(t *testing.T, loose, packs int) {
	t.Helper()
	l, p := maintainLoose, maintainPacks
	maintainLoose, maintainPacks = loose, packs
	t.Cleanup(func() { maintainLoose, maintainPacks = l, p })
}

// waitMaintained waits for the background maintenance to end and returns
// the last run that consolidated. No scan may run meanwhile.
func waitMaintained(s *Store) MaintainResult {
	s.maint.wg.Wait()
	s.maint.mu.Lock()
	defer s.maint.mu.Unlock()
	return s.maint.last
}

// hookStep makes maintainStep call f at step (once), for the test.
func hookStep(t *testing.T, step string, f func()) {
	t.Helper()
	var once sync.Once
	maintainStep = func(at string) error {
		if at == step {
			once.Do(f)
		}
		return nil
	}
	t.Cleanup(func() { maintainStep = func(string) error { return nil } })
}

// editUntil adds 10 files to s, then edits them one at a time, one scan
// each, until reached is closed (by a maintenance hook).
func editUntil(t *testing.T, s *Store, reached chan struct{}) {
	t.Helper()
	addFiles(t, s, "d", "f", 0, 10)
	scan(t, s)
	for i := 0; ; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("d/f-with-a-long-name-%04d", i%10), fmt.Sprint("edit ", i))
		scan(t, s)
		select {
		case <-reached:
			return
		default:
			require.Less(t, i, 500, "maintenance never started")
		}
	}
}

// Single-file edits, one scan each, with nobody calling Maintain: the
// store consolidates by itself in the background, the loose objects and
// packs stay bounded, and history, bundles and fsck are as before.
func TestAutoMaintain(t *testing.T) {
	lowThresholds(t, 40, 3)
	s := newTestStore(t, "dev", epoch)
	ctx := context.Background()
	addFiles(t, s, "d", "f", 0, 30)
	scan(t, s)
	written := 0
	for i := 0; i < 80; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("d/f-with-a-long-name-%04d", i%30), fmt.Sprint("edit ", i))
		require.Len(t, scan(t, s), 1)
		written += 3 // blob, tree, commit (at least)
		if i%20 == 19 {
			// An applied bundle adds a pack.
			peer := newTestStore(t, "peer", epoch)
			writeFile(t, peer.Dir(), fmt.Sprintf("p%d/x", i), "peer")
			scan(t, peer)
			b, _ := bundleOf(t, peer)
			apply(t, s, b, peerA)
		}
	}
	last := waitMaintained(s)
	require.True(t, last.Done, "the store was never maintained")
	assert.Less(t, last.Held, time.Minute) // recorded; figures in BENCHMARKS.md
	loose, packs := storeFiles(t, s)
	t.Logf("after %d edits: %d loose objects, %d packs; last run %+v", 80, loose, packs, last)
	assert.Less(t, loose, written/2, "loose objects are consolidated")
	assert.LessOrEqual(t, packs, 6, "packs are rolled up")
	fsck(t, s)

	hist, err := s.History(ctx, "", 0)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(hist), 30+80+4)
	full, _ := bundleOf(t, s)
	fetchInto(t, s, full)
	ch, err := s.Scan(ctx)
	require.NoError(t, err)
	assert.Empty(t, ch)
}

// While the background maintenance writes its pack, a scan, an export,
// History and an apply all complete: it holds no lock of the store then.
func TestAutoMaintainBesideWrites(t *testing.T) {
	lowThresholds(t, 20, 3)
	s := newTestStore(t, "dev", epoch)
	peer := newTestStore(t, "peer", epoch)
	ctx := context.Background()
	writing, release := make(chan struct{}), make(chan struct{})
	hookStep(t, "writing", func() {
		close(writing)
		<-release
	})
	editUntil(t, s, writing)
	// Maintenance is now held inside its pack writing.
	writeFile(t, s.Dir(), "during", "scan while maintaining")
	require.Len(t, scan(t, s), 1)
	b, _ := bundleOf(t, s)
	_, err := s.History(ctx, "during", 0)
	require.NoError(t, err)
	writeFile(t, peer.Dir(), "from-peer", "x")
	scan(t, peer)
	pb, _ := bundleOf(t, peer)
	apply(t, s, pb, peerA)
	apply(t, peer, b, peerB)
	close(release)

	last := waitMaintained(s)
	require.True(t, last.Done)
	fsck(t, s)
	full, _ := bundleOf(t, s)
	fetchInto(t, s, full)
	assert.Equal(t, "x", folderFiles(t, s.Dir())["from-peer"])
}

// Close during a background run stops it (goleak checks the goroutine is
// gone); the half-written pack is dropped and the store reopens sound.
func TestAutoMaintainStoppedByClose(t *testing.T) {
	lowThresholds(t, 20, 3)
	s := newTestStore(t, "dev", epoch)
	writing, release := make(chan struct{}), make(chan struct{})
	hookStep(t, "writing", func() {
		close(writing)
		<-release
	})
	editUntil(t, s, writing)
	histBefore, err := s.History(context.Background(), "", 0)
	require.NoError(t, err)
	run := s.maint.runContext()
	require.NotNil(t, run)
	closed := make(chan error)
	go func() { closed <- s.Close() }()
	// Close cancels the run's context before it waits for the run; the
	// hook then returns and the run stops at its next context check.
	<-run.Done()
	close(release)
	require.NoError(t, <-closed)
	assert.False(t, waitMaintained(s).Done, "the run was stopped before it consolidated")

	ents, err := os.ReadDir(filepath.Join(s.Dir(), GitDirName, "objects", "pack"))
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.HasPrefix(e.Name(), packTmpPrefix), "temporary pack %s left", e.Name())
	}
	s2, err := Open(Config{Dir: s.Dir()})
	require.NoError(t, err)
	defer s2.Close()
	fsck(t, s2)
	histAfter, err := s2.History(context.Background(), "", 0)
	require.NoError(t, err)
	assert.Equal(t, histBefore, histAfter)
}

// Maintain called by the caller waits for a background run, then finds
// nothing left to do; after Close it returns ErrClosed.
func TestMaintainAfterClose(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "a", "a")
	scan(t, s)
	res, err := s.Maintain(context.Background())
	require.NoError(t, err)
	assert.False(t, res.Done)
	require.NoError(t, s.Close())
	_, err = s.Maintain(context.Background())
	assert.True(t, errors.Is(err, ErrClosed))
}
