package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lastTouchNaive is the definition lastTouchesLocked implements, one
// history walk per path: the newest commit on head's first-parent chain
// whose entry at p differs from its first parent's.
func lastTouchNaive(t *testing.T, s *Store, head *object.Commit, p string) *object.Commit {
	entry := func(c *object.Commit) treeEnt {
		e, err := s.entryInTreeLocked(c.TreeHash, p)
		require.NoError(t, err)
		return e
	}
	c := head
	e := entry(c)
	for len(c.ParentHashes) > 0 {
		parent, err := s.commitLocked(c.ParentHashes[0])
		require.NoError(t, err)
		if entry(parent) != e {
			return c
		}
		c = parent
	}
	return c
}

// TestLastTouches: the one-walk lastTouchesLocked agrees with the
// per-path definition on a random history of adds, edits, deletions and
// files turning into directories and back.
func TestLastTouches(t *testing.T) {
	s := newTestStore(t, "a", epoch)
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "d/x", "d/y", "d/e/z", "p", "p/q"}
	for i := 0; i < 60; i++ {
		n := names[rng.IntN(len(names))]
		abs := s.Dir() + "/" + n
		switch rng.IntN(4) {
		case 0:
			os.RemoveAll(abs)
		default:
			os.RemoveAll(abs) // a directory of that name goes
			if dir := path.Dir(n); dir != "." {
				if fi, err := os.Stat(s.Dir() + "/" + dir); err == nil && !fi.IsDir() {
					os.Remove(s.Dir() + "/" + dir)
				}
			}
			writeFile(t, s.Dir(), n, fmt.Sprint(i))
		}
		scan(t, s)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.refLocked(mainRef)
	require.NoError(t, err)
	headC, err := s.commitLocked(h)
	require.NoError(t, err)
	// Every path ever seen, including ones now absent or directories.
	paths := append([]string{"d", "d/e", "nope"}, names...)
	sort.Strings(paths)
	got, err := s.lastTouchesLocked(headC, paths)
	require.NoError(t, err)
	for _, p := range paths {
		want := lastTouchNaive(t, s, headC, p)
		if p == "d" || p == "d/e" {
			continue // directories: lastTouchesLocked is asked for files only
		}
		assert.Equal(t, want.Hash, got[p].Hash, "path %q", p)
	}
}

// BenchmarkMergeUnrelated: two folders that both had files before their
// first sync (N files each, PEERSYNC_BENCH_MERGE_FILES, default 2,000;
// the same paths, half of them with the same content) merge their
// unrelated histories. The reference, in the same run, is importing the
// same bundle into an empty folder. Reports merge-s and import-s per
// operation (ApplyBundle alone).
func BenchmarkMergeUnrelated(b *testing.B) {
	n := benchEnvInt("PEERSYNC_BENCH_MERGE_FILES", 2000)
	ctx := context.Background()
	files := genBenchFiles(n, 20)
	other := make([]benchFile, len(files))
	for i, f := range files {
		other[i] = f
		if i%2 == 1 {
			other[i].data = append(bytes.Clone(f.data), 'b')
		}
	}
	src := openBenchStore(b, other)
	_, err := src.Scan(ctx)
	require.NoError(b, err)
	var bundle bytes.Buffer
	_, err = src.WriteBundle(ctx, &bundle, nil)
	require.NoError(b, err)
	var merge, imp time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dst := openBenchStore(b, files)
		_, err := dst.Scan(ctx)
		require.NoError(b, err)
		empty := openBenchStore(b, nil)
		b.StartTimer()
		t0 := time.Now()
		res, err := dst.ApplyBundle(ctx, bytes.NewReader(bundle.Bytes()), peerB)
		merge += time.Since(t0)
		require.NoError(b, err)
		require.Equal(b, Merged, res.Kind)
		require.Len(b, res.Conflicts, n/2)
		t0 = time.Now()
		_, err = empty.ApplyBundle(ctx, bytes.NewReader(bundle.Bytes()), peerB)
		imp += time.Since(t0)
		require.NoError(b, err)
		b.StopTimer()
		require.NoError(b, dst.Close())
		require.NoError(b, empty.Close())
		require.NoError(b, os.RemoveAll(dst.Dir()))
		require.NoError(b, os.RemoveAll(empty.Dir()))
		b.StartTimer()
	}
	b.ReportMetric(merge.Seconds()/float64(b.N), "merge-s")
	b.ReportMetric(imp.Seconds()/float64(b.N), "import-s")
	b.ReportMetric(merge.Seconds()/imp.Seconds(), "merge/import")
}
