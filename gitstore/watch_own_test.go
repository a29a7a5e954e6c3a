package gitstore

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanLog records what the watcher scanned (through watchScanned).
type scanLog struct {
	mu    sync.Mutex
	full  int
	paths []string
}

// watchScans records the watcher's scans until the test ends, with the
// periodic safety-net scan pushed beyond the test.
func watchScans(t *testing.T) *scanLog {
	l := &scanLog{}
	period := watchRescan
	watchRescan = time.Hour
	t.Cleanup(func() { watchRescan = period })
	watchScanned = func(full bool, paths []string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if full {
			l.full++
		}
		l.paths = append(l.paths, paths...)
	}
	t.Cleanup(func() { watchScanned = nil })
	return l
}

func (l *scanLog) counts() (full int, paths []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.full, append([]string(nil), l.paths...)
}

// manyFiles writes n small files spread over dirs directories of root.
func manyFiles(t *testing.T, root string, n, dirs int, tag string) {
	t.Helper()
	for i := range n {
		writeFile(t, root, fmt.Sprintf("d%d/f%05d.txt", i%dirs, i), fmt.Sprintf("%s %d", tag, i))
	}
}

// watchedPair makes stores a and b holding mine.txt, then n files on a
// (in 4 directories) and the bundle of them for b; b is watched, and has
// committed start.txt of its own (the sign that the watcher's first scan
// is done).
func watchedPair(t *testing.T, n int) (a, b *Store, bundle []byte, r *watchRecorder) {
	a = newTestStore(t, "a", epoch)
	b = newTestStore(t, "b", epoch)
	writeFile(t, a.Dir(), "mine.txt", "one")
	scan(t, a)
	apply(t, b, mustBundle(t, a), peerA)
	base := head(t, a)
	manyFiles(t, a.Dir(), n, 4, "v1")
	scan(t, a)
	bundle = mustBundle(t, a, base)
	r = newWatchRecorder()
	startWatch(t, b, r)
	writeFile(t, b.Dir(), "start.txt", "s")
	r.waitFor(t, "add start.txt", 10*time.Second)
	return a, b, bundle, r
}

// A watched folder that receives thousands of files from a peer (a first
// sync into new directories, then a bundle that modifies and deletes
// thousands) scans none of what the checkout wrote: no full scan after the
// watcher's first, and no targeted scan of any path the checkouts touched.
// Before, the watcher scanned every touched path, and ran a full scan for
// more than 1,000 of them (a first sync of 5,000 files also overflowed the
// kernel's queue, as the watcher waited for the store's lock during the
// checkout and stopped reading events).
func TestWatchSkipsOwnCheckout(t *testing.T) {
	const n = 1500
	log := watchScans(t)
	a, b, first, r := watchedPair(t, n)
	fullBefore, _ := log.counts()

	require.Equal(t, Merged, apply(t, b, first, peerA).Kind) // b committed start.txt
	// Then a bundle that modifies a fifth of the files and deletes another fifth.
	require.Equal(t, FastForward, apply(t, a, mustBundle(t, b, head(t, a)), peerB).Kind)
	for i := range n {
		p := fmt.Sprintf("d%d/f%05d.txt", i%4, i)
		switch i % 5 {
		case 1:
			writeFile(t, a.Dir(), p, fmt.Sprintf("v2 %d", i))
		case 2:
			require.NoError(t, os.Remove(filepath.Join(a.Dir(), p)))
		}
	}
	scan(t, a)
	second, _ := bundleOf(t, a, head(t, b))
	require.Equal(t, FastForward, apply(t, b, second, peerA).Kind)

	// Positive marker: inotify reports in order, so once this edit is
	// committed the watcher has read every event of the checkouts.
	writeFile(t, b.Dir(), "marker.txt", "m")
	r.waitFor(t, "add marker.txt", 10*time.Second)

	full, paths := log.counts()
	assert.Equal(t, fullBefore, full, "no full scan after the watcher's first")
	for _, p := range paths {
		assert.Contains(t, []string{"start.txt", "marker.txt"}, p, "nothing the checkouts wrote was scanned")
	}
	r.mu.Lock()
	assert.Equal(t, []string{"add start.txt", "add marker.txt"}, actions(r.changes))
	r.mu.Unlock()
	assert.Equal(t, folderFiles(t, a.Dir())["d1/f00001.txt"], folderFiles(t, b.Dir())["d1/f00001.txt"])
	assert.Empty(t, scan(t, b), "the folder holds exactly main")
	fsck(t, b)
}

// mustBundle is bundleOf without the info.
func mustBundle(t *testing.T, s *Store, since ...Hash) []byte {
	b, _ := bundleOf(t, s, since...)
	return b
}

// Local edits made while a checkout of thousands of files is under way
// (the store's lock held by the apply) are all committed by the watcher:
// an edit in place of a tracked file the bundle does not touch, an edit in
// place of a file the checkout has just put there, and a new file in a
// directory the checkout is filling. The edits are made from the watcher's
// goroutine when it sees the checkout's first rename, and the test checks
// that the apply still held the store's lock then.
func TestWatchSeesEditDuringCheckout(t *testing.T) {
	_, b, big, r := watchedPair(t, 3000)

	var once sync.Once
	var during bool
	var renamed string
	watchOwnRename = func(rel string) {
		once.Do(func() {
			if b.mu.TryLock() {
				b.mu.Unlock()
			} else {
				during = true
			}
			renamed = rel
			writeFile(t, b.Dir(), "mine.txt", "edited during the checkout")
			writeFile(t, b.Dir(), rel, "mine now")
			writeFile(t, b.Dir(), "d3/user-new.txt", "new during the checkout")
		})
	}
	t.Cleanup(func() { watchOwnRename = nil })
	require.Equal(t, Merged, apply(t, b, big, peerA).Kind)
	require.NotEmpty(t, renamed, "the watcher saw the checkout's renames")
	require.True(t, during, "the edits were made while the apply held the store")

	r.waitFor(t, "modify mine.txt", 10*time.Second)
	r.waitFor(t, "add d3/user-new.txt", 10*time.Second)
	r.waitFor(t, "modify "+renamed, 10*time.Second)
	assert.Equal(t, "edited during the checkout", gitStore(t, b, "show", "main:mine.txt"))
	assert.Equal(t, "mine now", gitStore(t, b, "show", "main:"+renamed))
	assert.Equal(t, "new during the checkout", gitStore(t, b, "show", "main:d3/user-new.txt"))
	fsck(t, b)
}
