package gitstore

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watchRecorder collects what Watch reports.
type watchRecorder struct {
	mu      sync.Mutex
	changes []Change
	signal  chan struct{}
}

func newWatchRecorder() *watchRecorder { return &watchRecorder{signal: make(chan struct{}, 100)} }

func (r *watchRecorder) onChange(ch []Change) {
	r.mu.Lock()
	r.changes = append(r.changes, ch...)
	r.mu.Unlock()
	r.signal <- struct{}{}
}

// waitFor waits until the recorded changes include "action path".
func (r *watchRecorder) waitFor(t *testing.T, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		got := actions(r.changes)
		r.mu.Unlock()
		for _, g := range got {
			if g == want {
				return time.Since(start)
			}
		}
		select {
		case <-r.signal:
		case <-deadline:
			t.Fatalf("%q not committed within %v; got %v", want, timeout, got)
		}
	}
}

// startWatch runs Watch in a goroutine (with the debounce given, else the
// default) and returns its stop function, which returns Watch's error.
func startWatch(t *testing.T, s *Store, r *watchRecorder, debounce ...time.Duration) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	d := time.Duration(0)
	if len(debounce) > 0 {
		d = debounce[0]
	}
	go func() { done <- s.Watch(ctx, d, r.onChange) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Watch did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestWatch(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	writeFile(t, dir, "before.txt", "made while not watching")
	writeFile(t, dir, IgnoreFileName, "*.swp\nskip/\n")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "skip"), 0o755))
	r := newWatchRecorder()
	stop := startWatch(t, s, r)
	// The first scan runs in Watch's loop, after the tree is watched: its
	// commit is the sign that saved files are seen from now on.
	r.waitFor(t, "add before.txt", 5*time.Second)

	// A saved file is committed within ~100-200 ms (bounded wait: 2 s, for
	// slow CI machines).
	writeFile(t, dir, "saved.txt", "hello")
	took := r.waitFor(t, "add saved.txt", 2*time.Second)
	t.Logf("saved file committed after %v", took)

	// New directories are watched (and their first files found).
	writeFile(t, dir, "new/dir/deep.txt", "d")
	r.waitFor(t, "add new/dir/deep.txt", 2*time.Second)
	writeFile(t, dir, "new/dir/later.txt", "l")
	r.waitFor(t, "add new/dir/later.txt", 2*time.Second)

	// Edits and deletions.
	writeFile(t, dir, "saved.txt", "hello again")
	r.waitFor(t, "modify saved.txt", 2*time.Second)
	require.NoError(t, os.Remove(filepath.Join(dir, "new/dir/deep.txt")))
	r.waitFor(t, "delete new/dir/deep.txt", 2*time.Second)

	// A renamed directory: its files move, and later edits in it are seen
	// under the new name.
	require.NoError(t, os.Rename(filepath.Join(dir, "new"), filepath.Join(dir, "moved")))
	r.waitFor(t, "add moved/dir/later.txt", 2*time.Second)
	r.waitFor(t, "delete new/dir/later.txt", 2*time.Second)
	writeFile(t, dir, "moved/dir/after.txt", "a")
	r.waitFor(t, "add moved/dir/after.txt", 2*time.Second)

	// Ignored files never reach a commit.
	writeFile(t, dir, "x.swp", "s")
	writeFile(t, dir, "skip/y.txt", "s")
	writeFile(t, dir, "marker.txt", "m")
	r.waitFor(t, "add marker.txt", 2*time.Second)

	r.mu.Lock()
	for _, c := range r.changes {
		assert.NotContains(t, []string{"x.swp", "skip/y.txt"}, c.Path)
	}
	r.mu.Unlock()

	// New rules apply at once (a full scan), and the rules file is
	// committed like any file.
	writeFile(t, dir, IgnoreFileName, "skip/\n")
	r.waitFor(t, "add x.swp", 2*time.Second)
	r.waitFor(t, "modify "+IgnoreFileName, 2*time.Second)

	assert.ErrorIs(t, stop(), context.Canceled)
	assert.Empty(t, scan(t, s), "the watcher committed everything")

	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+1 },
		2*time.Second, 10*time.Millisecond, "goroutines leaked")
}

// Watch stops with ErrNotInitialized when the folder's marker vanishes, and
// with ErrClosed on a closed store.
func TestWatchFolderGuard(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "marker.txt", "m")
	r := newWatchRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, 10*time.Millisecond, r.onChange) }()
	r.waitFor(t, "add marker.txt", 5*time.Second) // the watcher's loop runs
	require.NoError(t, os.Rename(filepath.Join(s.Dir(), GitDirName), filepath.Join(t.TempDir(), "away")))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrNotInitialized)
	case <-ctx.Done():
		t.Fatal("Watch did not notice the vanished marker")
	}
	require.NoError(t, s.Close())
	assert.ErrorIs(t, s.Watch(context.Background(), 0, nil), ErrClosed)
}

// A mass deletion stops the watcher with the guard's error.
func TestWatchMassDelete(t *testing.T) {
	s := newTestStore(t, "dev", epoch, func(c *Config) { c.MaxDeleteCount = 2 })
	writeN(t, s.Dir(), 6)
	scan(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	writeFile(t, s.Dir(), "marker.txt", "m")
	r := newWatchRecorder()
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, 10*time.Millisecond, r.onChange) }()
	r.waitFor(t, "add marker.txt", 5*time.Second) // the watcher's loop runs
	require.NoError(t, os.RemoveAll(filepath.Join(s.Dir(), "d")))
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrMassDelete)
	case <-ctx.Done():
		t.Fatal("Watch did not stop on the mass deletion")
	}
}

// TestWatchScanLeavesFilesBeingWritten: a watcher scan that meets a file
// modified a moment ago (caught between its truncation and its write, say)
// leaves it as last committed and reports it, so the watcher commits it
// once it has settled; an exempt path, a settle of 0 and a modification
// time in the future are committed at once.
func TestWatchScanLeavesFilesBeingWritten(t *testing.T) {
	s := newTestStore(t, "a", time2020())
	writeFile(t, s.Dir(), "keep.txt", "v1")
	writeFile(t, s.Dir(), "old.txt", "old")
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(s.Dir(), "keep.txt"), old, old))
	require.NoError(t, os.Chtimes(filepath.Join(s.Dir(), "old.txt"), old, old))
	require.Len(t, scan(t, s), 2)
	h0 := head(t, s)

	ctx := context.Background()
	// keep.txt is being rewritten (truncated: empty, fresh); new.txt appears.
	writeFile(t, s.Dir(), "keep.txt", "")
	writeFile(t, s.Dir(), "new.txt", "half")
	for _, full := range []bool{true, false} {
		changes, unsettled, err := s.watchScan(ctx, full, []string{"keep.txt", "new.txt"}, time.Minute, nil)
		require.NoError(t, err)
		assert.Empty(t, changes, "full=%v: nothing half-written is committed", full)
		assert.Equal(t, []string{"keep.txt", "new.txt"}, unsettled, "full=%v", full)
		assert.Equal(t, h0, head(t, s))
		assert.Equal(t, "v1", gitStore(t, s, "show", "main:keep.txt"), "not deleted, not emptied")
	}

	// Exempt (deferred too often): committed as it is.
	changes, unsettled, err := s.watchScan(ctx, false, []string{"new.txt"}, time.Minute, map[string]bool{"new.txt": true})
	require.NoError(t, err)
	assert.Equal(t, []string{"add new.txt"}, actions(changes))
	assert.Equal(t, []string{"keep.txt"}, unsettled, "its directory was listed too")

	// A modification time in the future is not "recent".
	future := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(s.Dir(), "keep.txt"), future, future))
	changes, unsettled, err = s.watchScan(ctx, true, nil, time.Minute, map[string]bool{"new.txt": true})
	require.NoError(t, err)
	assert.Equal(t, []string{"modify keep.txt"}, actions(changes))
	assert.Empty(t, unsettled)
	// After the scan, the store is back to committing everything.
	assert.Zero(t, s.fst.settle)
	assert.Nil(t, s.fst.unsettled)
}

// TestWatchScanFileTruncatedAfterListing: the listing sees a changed file
// settled, and an editor truncates it before the scan opens it (the
// race that once committed an empty version between two full ones in the
// two-process test). The scan must not commit the half-written state: it
// leaves the file as last committed and unsettled, and commits the whole
// content once it has settled.
func TestWatchScanFileTruncatedAfterListing(t *testing.T) {
	s := newTestStore(t, "a", time2020())
	p := filepath.Join(s.Dir(), "doc.txt")
	old := time.Now().Add(-time.Hour)
	writeFile(t, s.Dir(), "doc.txt", "v1")
	require.NoError(t, os.Chtimes(p, old, old))
	require.Len(t, scan(t, s), 1)
	h0 := head(t, s)

	// Changed long ago (settled when listed), then truncated between the
	// listing and the open.
	writeFile(t, s.Dir(), "doc.txt", "version 2")
	older := old.Add(time.Minute)
	require.NoError(t, os.Chtimes(p, older, older))
	hooked := 0
	testHookBeforeOpen = func(abs string) {
		if abs == p {
			hooked++
			require.NoError(t, os.Truncate(abs, 0))
		}
	}
	defer func() { testHookBeforeOpen = nil }()
	changes, unsettled, err := s.watchScan(context.Background(), false, []string{"doc.txt"}, time.Minute, nil)
	require.NoError(t, err)
	require.Equal(t, 1, hooked, "the hook ran")
	assert.Empty(t, changes, "the truncated state is not committed")
	assert.Equal(t, []string{"doc.txt"}, unsettled, "looked at again later")
	assert.Equal(t, h0, head(t, s))
	assert.Equal(t, "v1", gitStore(t, s, "show", "main:doc.txt"))
	assert.Empty(t, s.Skipped(), "not a skip: just not settled yet")

	// The editor's write lands; once settled it is one commit, whole.
	testHookBeforeOpen = nil
	writeFile(t, s.Dir(), "doc.txt", "version 2, whole")
	require.NoError(t, os.Chtimes(p, older, older))
	changes, unsettled, err = s.watchScan(context.Background(), false, []string{"doc.txt"}, time.Minute, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"modify doc.txt"}, actions(changes))
	assert.Empty(t, unsettled)
	assert.Equal(t, "version 2, whole", gitStore(t, s, "show", "main:doc.txt"))
}

// TestWatchCommitsSettledFileOnce: a file written in two steps with a pause
// shorter than the watcher's debounce (open+truncate, then write) ends up
// as one commit with its whole content, even when a scan runs in between.
func TestWatchCommitsSettledFileOnce(t *testing.T) {
	s := newTestStore(t, "a", time2020())
	r := newWatchRecorder()
	// The pauses between the writes (30 ms) must stay below the debounce
	// even on a loaded machine, where a 30 ms sleep can take far longer
	// than the default 50 ms: a second's debounce keeps the premise.
	stop := startWatch(t, s, r, time.Second)

	p := filepath.Join(s.Dir(), "slow.txt")
	f, err := os.Create(p)
	require.NoError(t, err)
	// Keep the file fresh while the watcher's scans come and go.
	for i := 0; i < 4; i++ {
		time.Sleep(30 * time.Millisecond)
		_, err = f.WriteString("part\n")
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	r.waitFor(t, "add slow.txt", 10*time.Second)
	// The commit that added the file holds all of it: a half-written first
	// commit would show here (and need a second one), whatever comes later.
	added := gitStore(t, s, "log", "--diff-filter=A", "--format=%H", "main", "--", "slow.txt")
	assert.Equal(t, strings.Repeat("part\n", 4), gitStore(t, s, "cat-file", "blob", added+":slow.txt")+"\n")
	// And nothing is left for another commit: the watcher stopped, a full
	// scan finds the folder as committed.
	assert.ErrorIs(t, stop(), context.Canceled)
	assert.Empty(t, scan(t, s))
	r.mu.Lock()
	got := actions(r.changes)
	r.mu.Unlock()
	assert.Equal(t, []string{"add slow.txt"}, got)
}
