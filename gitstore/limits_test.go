package gitstore

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawPack writes a packfile entry by entry, for bundles go-git's encoder
// cannot make (a delta written by hand).
type rawPack struct {
	body bytes.Buffer
	n    uint32
	offs []int64
}

// add appends a whole object; it returns its offset.
func (p *rawPack) add(t plumbing.ObjectType, data []byte) int64 {
	return p.entry(objectHeader(nil, t, int64(len(data))), data)
}

// addOfsDelta appends an OFS_DELTA against the entry at base.
func (p *rawPack) addOfsDelta(base int64, delta []byte) int64 {
	off := int64(12 + p.body.Len())
	hdr := objectHeader(nil, plumbing.OFSDeltaObject, int64(len(delta)))
	return p.entry(ofsDeltaOffset(hdr, off-base), delta)
}

func (p *rawPack) entry(hdr, data []byte) int64 {
	off := int64(12 + p.body.Len())
	p.body.Write(hdr)
	zw := zlib.NewWriter(&p.body)
	zw.Write(data)
	zw.Close()
	p.n++
	return off
}

// bundle returns a bundle of the pack with head as refs/heads/main.
func (p *rawPack) bundle(head plumbing.Hash) []byte {
	var pack bytes.Buffer
	pack.WriteString("PACK\x00\x00\x00\x02")
	binary.Write(&pack, binary.BigEndian, p.n)
	pack.Write(p.body.Bytes())
	sum := sha1.Sum(pack.Bytes())
	pack.Write(sum[:])
	return append([]byte("# v2 git bundle\n"+head.String()+" refs/heads/main\n\n"), pack.Bytes()...)
}

// rawTree encodes tree entries (already sorted by the caller).
func rawTree(entries ...rawTreeEntry) []byte {
	var b []byte
	for _, e := range entries {
		b = appendTreeEntry(b, e.mode, e.name, e.hash)
	}
	return b
}

type rawTreeEntry struct {
	mode filemode.FileMode
	name string
	hash plumbing.Hash
}

func rawCommit(tree plumbing.Hash, parents ...plumbing.Hash) []byte {
	sig := object.Signature{Name: "evil", Email: "evil@peersync", When: epoch}
	c := &object.Commit{Author: sig, Committer: sig, Message: "evil\n", TreeHash: tree, ParentHashes: parents}
	o := &plumbing.MemoryObject{}
	if err := c.Encode(o); err != nil {
		panic(err)
	}
	return mustRead(o)
}

// deltaBomb returns a bundle of 16 KiB or so whose one file, "big", is a
// delta that expands a 64 KiB base ("base") to size bytes (a multiple of
// 64 KiB): each 64 KiB of output is one byte of delta (copy 0x10000 bytes
// from offset 0). It also returns the expected content's blob name.
func deltaBomb(size int64) ([]byte, plumbing.Hash) {
	base := []byte(strings.Repeat("0123456789abcdef", 4096)) // 64 KiB, compresses well
	delta := appendDeltaSize(appendDeltaSize(nil, len(base)), int(size))
	delta = append(delta, bytes.Repeat([]byte{0x80}, int(size/0x10000))...)
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", size)
	for i := int64(0); i < size/0x10000; i++ {
		h.Write(base)
	}
	var big plumbing.Hash
	h.Sum(big[:0])
	baseHash := plumbing.ComputeHash(plumbing.BlobObject, base)
	tree := rawTree(rawTreeEntry{filemode.Regular, "base", baseHash}, rawTreeEntry{filemode.Regular, "big", big})
	treeHash := plumbing.ComputeHash(plumbing.TreeObject, tree)
	commit := rawCommit(treeHash)
	var p rawPack
	bo := p.add(plumbing.BlobObject, base)
	p.addOfsDelta(bo, delta)
	p.add(plumbing.TreeObject, tree)
	p.add(plumbing.CommitObject, commit)
	return p.bundle(plumbing.ComputeHash(plumbing.CommitObject, commit)), big
}

// TestApplyDeltaBombMemory: a bundle of a few hundred bytes whose delta
// expands to a 256 MiB file is applied without ever holding the file in memory: the
// delta is resolved streaming through the spool, stored and checked out
// as a stream. Asserted on the bytes the Go runtime allocated in total
// during the apply (a deterministic count, not a sampled peak): before the
// fix the delta's result alone was a 1 GiB allocation.
func TestApplyDeltaBombMemory(t *testing.T) {
	const size = 256 << 20
	b, big := deltaBomb(size)
	require.Less(t, len(b), 32<<10)
	s := newTestStore(t, "a", epoch)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := s.ApplyBundle(context.Background(), bytes.NewReader(b), peerB)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	assert.Equal(t, FastForward, res.Kind)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB in total to apply a %d-byte bundle holding a %d MiB file", alloc>>20, len(b), size>>20)
	assert.Less(t, alloc, uint64(size/8), "the expanded object must not be held in memory")
	fi, err := os.Stat(filepath.Join(s.Dir(), "big"))
	require.NoError(t, err)
	assert.Equal(t, int64(size), fi.Size())
	assert.Equal(t, big.String(), gitStore(t, s, "rev-parse", "HEAD:big"))
	assert.Equal(t, big.String(), gitStore(t, s, "hash-object", "big"))
	fsck(t, s)
	matches, _ := filepath.Glob(filepath.Join(s.Dir(), GitDirName, "objects", "pack", packTmpPrefix+"*"))
	assert.Empty(t, matches, "the spool and its raw file are removed")
}

// TestApplyDeltaStreamingMatchesInMemory: deltas over the in-memory
// threshold, in chains and against large bases, resolve to the same objects
// as git itself makes of them (checked by git fsck and the work tree).
func TestApplyDeltaStreamingMatchesInMemory(t *testing.T) {
	b, big := deltaBomb(4 * deltaInMemoryMax)
	s := newTestStore(t, "a", epoch)
	apply(t, s, b, peerB)
	assert.Equal(t, big.String(), gitStore(t, s, "hash-object", "big"))
	fsck(t, s)

	// A git CLI repository with large, similar files packed aggressively
	// (deltas against large bases, chains), bundled and applied.
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	content := bytes.Repeat([]byte("line of text that repeats with a counter "), 60000) // ~2.4 MiB
	for i := 0; i < 4; i++ {
		copy(content[i*1000:], "edit "+strconv.Itoa(i))
		require.NoError(t, os.WriteFile(filepath.Join(repo, "f"+strconv.Itoa(i)), content, 0o644))
		git(t, repo, "add", ".")
		git(t, repo, "commit", "-qm", "v"+strconv.Itoa(i))
	}
	git(t, repo, "repack", "-adf", "--depth=10", "--window=10")
	git(t, repo, "bundle", "create", filepath.Join(repo, "b.bundle"), "main")
	data, err := os.ReadFile(filepath.Join(repo, "b.bundle"))
	require.NoError(t, err)
	s2 := newTestStore(t, "b", epoch)
	apply(t, s2, data, peerA)
	fsck(t, s2)
	for i := 0; i < 4; i++ {
		want, err := os.ReadFile(filepath.Join(repo, "f"+strconv.Itoa(i)))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(s2.Dir(), "f"+strconv.Itoa(i)))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "f%d", i)
	}
}

// BenchmarkApplyDeltaBomb applies a bundle of a few hundred bytes whose
// delta expands to a 1 GiB file (PEERSYNC_BENCH_BOMB_MIB to change) into
// an empty store, and reports the process's peak RSS during the apply.
func BenchmarkApplyDeltaBomb(b *testing.B) {
	size := int64(1 << 30)
	if v, err := strconv.ParseInt(os.Getenv("PEERSYNC_BENCH_BOMB_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20
	}
	bundle, _ := deltaBomb(size)
	var rss int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := openBenchStore(b, nil)
		runtime.GC()
		resetPeakRSS()
		b.StartTimer()
		_, err := s.ApplyBundle(context.Background(), bytes.NewReader(bundle), peerB)
		b.StopTimer()
		rss = max(rss, peakRSS())
		require.NoError(b, err)
		require.NoError(b, s.Close())
		require.NoError(b, os.RemoveAll(s.Dir()))
		b.StartTimer()
	}
	b.ReportMetric(float64(len(bundle)), "bundle-bytes")
	b.ReportMetric(float64(size>>20), "file-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "apply-peak-RSS-MiB")
}

// limitStore opens a store with the given limits.
func limitStore(t *testing.T, lim Limits) *Store {
	return newTestStore(t, "a", epoch, func(c *Config) { c.Limits = lim })
}

// requireLimit checks that err is a *BundleError wrapping a *LimitError on
// limit, and that nothing changed in s.
func requireLimit(t *testing.T, s *Store, err error, limit string, before storeSnapshot) *LimitError {
	t.Helper()
	require.Error(t, err)
	var be *BundleError
	require.True(t, errors.As(err, &be), "want *BundleError, got %T: %v", err, err)
	var le *LimitError
	require.True(t, errors.As(err, &le), "want *LimitError, got %v", err)
	assert.Equal(t, limit, le.Limit)
	assert.Contains(t, err.Error(), "raise gitstore.Config."+limit)
	assert.Equal(t, before, snapshot(t, s), "nothing may change")
	return le
}

// TestApplyLimits: a bundle over any per-bundle limit is refused with a
// *LimitError naming the limit, before anything is written, refs included.
func TestApplyLimits(t *testing.T) {
	t.Run("depth 10,000", func(t *testing.T) {
		s := limitStore(t, Limits{})
		// A chain of 10,000 directories "d/d/d/.../f", each tree written once.
		c := newCrafter()
		h := c.put(plumbing.BlobObject, []byte("deep"))
		tree := c.put(plumbing.TreeObject, rawTree(rawTreeEntry{filemode.Regular, "f", h}))
		for i := 0; i < 10000; i++ {
			tree = c.put(plumbing.TreeObject, rawTree(rawTreeEntry{filemode.Dir, "d", tree}))
		}
		b := c.bundle(t, c.commit(tree), "")
		before := snapshot(t, s)
		_, err := s.ApplyBundle(context.Background(), bytes.NewReader(b), peerB)
		le := requireLimit(t, s, err, "Limits.MaxDepth", before)
		assert.Equal(t, int64(defaultMaxDepth), le.Max)
	})
	t.Run("path length", func(t *testing.T) {
		s := limitStore(t, Limits{MaxPathLen: 100})
		long := strings.Repeat("x", 60)
		b := craftTree(t, dirE(long, file(long, "x")))
		before := snapshot(t, s)
		_, err := s.ApplyBundle(context.Background(), bytes.NewReader(b), peerB)
		le := requireLimit(t, s, err, "Limits.MaxPathLen", before)
		assert.Equal(t, long+"/"+long, le.Path)
	})
	t.Run("one blob named many times", func(t *testing.T) {
		// The 8x amplification: one 1,000-byte blob under 8 names, in 8
		// directories that are the same tree: 64,000 bytes to write.
		s := limitStore(t, Limits{MaxBytes: 50_000})
		c := newCrafter()
		blob := c.put(plumbing.BlobObject, bytes.Repeat([]byte("x"), 1000))
		var files []rawTreeEntry
		for i := 0; i < 8; i++ {
			files = append(files, rawTreeEntry{filemode.Regular, "f" + strconv.Itoa(i), blob})
		}
		sub := c.put(plumbing.TreeObject, rawTree(files...))
		var dirs []rawTreeEntry
		for i := 0; i < 8; i++ {
			dirs = append(dirs, rawTreeEntry{filemode.Dir, "d" + strconv.Itoa(i), sub})
		}
		b := c.bundle(t, c.commit(c.put(plumbing.TreeObject, rawTree(dirs...))), "")
		before := snapshot(t, s)
		_, err := s.ApplyBundle(context.Background(), bytes.NewReader(b), peerB)
		le := requireLimit(t, s, err, "Limits.MaxBytes", before)
		assert.Greater(t, le.Value, int64(50_000))
	})
	t.Run("a million files from a few KiB", func(t *testing.T) {
		// 100 names of a tree of 100 names of a tree of 100 files: 10^6
		// files from three small trees.
		s := limitStore(t, Limits{})
		c := newCrafter()
		blob := c.put(plumbing.BlobObject, []byte("x"))
		level := func(mode filemode.FileMode, h plumbing.Hash) plumbing.Hash {
			var es []rawTreeEntry
			for i := 0; i < 100; i++ {
				es = append(es, rawTreeEntry{mode, fmt.Sprintf("%02d", i), h})
			}
			return c.put(plumbing.TreeObject, rawTree(es...))
		}
		top := level(filemode.Dir, level(filemode.Dir, level(filemode.Regular, blob)))
		top2 := c.put(plumbing.TreeObject, rawTree(rawTreeEntry{filemode.Dir, "a", top}, rawTreeEntry{filemode.Dir, "b", top}))
		b := c.bundle(t, c.commit(top2), "")
		require.Less(t, len(b), 16<<10)
		before := snapshot(t, s)
		_, err := s.ApplyBundle(context.Background(), bytes.NewReader(b), peerB)
		le := requireLimit(t, s, err, "Limits.MaxFiles", before)
		assert.Equal(t, int64(defaultMaxFiles), le.Max)
	})
	t.Run("objects", func(t *testing.T) {
		s := limitStore(t, Limits{MaxObjects: 3})
		b := craftTree(t, file("a", "1"), file("b", "2"))
		before := snapshot(t, s)
		_, err := s.ApplyBundle(context.Background(), bytes.NewReader(b), peerB)
		requireLimit(t, s, err, "Limits.MaxObjects", before)
	})
	t.Run("tree size", func(t *testing.T) {
		s := limitStore(t, Limits{MaxTreeSize: 100})
		b := craftTree(t, file(strings.Repeat("a", 50), "1"), file(strings.Repeat("b", 50), "2"))
		before := snapshot(t, s)
		_, err := s.ApplyBundle(context.Background(), bytes.NewReader(b), peerB)
		requireLimit(t, s, err, "Limits.MaxTreeSize", before)
	})
	t.Run("spool", func(t *testing.T) {
		s := limitStore(t, Limits{MaxSpoolBytes: 2 << 20})
		b, _ := deltaBomb(4 << 20) // small, but its delta expands beyond the spool
		before := snapshot(t, s)
		_, err := s.ApplyBundle(context.Background(), io.MultiReader(bytes.NewReader(b)), peerB)
		requireLimit(t, s, err, "Limits.MaxSpoolBytes", before)
		// A declared size over the cap is refused before reading.
		_, err = s.ApplyBundle(context.Background(), bytes.NewReader(make([]byte, 3<<20)), peerB)
		requireLimit(t, s, err, "Limits.MaxSpoolBytes", before)
	})
	t.Run("within limits", func(t *testing.T) {
		s := limitStore(t, Limits{MaxFiles: 2, MaxDepth: 2, MaxPathLen: 3, MaxBytes: 2})
		apply(t, s, craftTree(t, dirE("d", file("a", "1")), file("b", "2")), peerB)
		assert.Equal(t, map[string]string{"d/a": "1", "b": "2"}, folderFiles(t, s.Dir()))
	})
}

// TestApplyDiskSpace: with less free space than the reserve, a bundle is
// refused with a *DiskFullError before it is spooled, and nothing changes.
func TestApplyDiskSpace(t *testing.T) {
	free0, ok := freeSpace(t.TempDir())
	free := int64(min(free0, 1<<50))
	if !ok {
		t.Skip("LOUD SKIP: free space unknown on this system")
	}
	s := limitStore(t, Limits{MinFreeBytes: free + 1<<40})
	src := newTestStore(t, "b", epoch)
	writeFile(t, src.Dir(), "a", "a")
	scan(t, src)
	b, _ := bundleOf(t, src)
	before := snapshot(t, s)
	for _, r := range []io.Reader{bytes.NewReader(b), io.MultiReader(bytes.NewReader(b))} {
		_, err := s.ApplyBundle(context.Background(), r, peerB)
		var de *DiskFullError
		require.True(t, errors.As(err, &de), "want *DiskFullError, got %v", err)
		assert.Equal(t, "spool", de.Step)
		assert.Contains(t, err.Error(), "MinFreeBytes")
		assert.Equal(t, before, snapshot(t, s))
	}
}

// TestApplySmallDeltaOfLargeBaseStoredWhole: a small file that came as a
// delta against a large one is stored whole, so that reading it back
// (go-git resolves deltas in memory, base included) never loads the large
// base.
func TestApplySmallDeltaOfLargeBaseStoredWhole(t *testing.T) {
	base := []byte(strings.Repeat("0123456789abcdef", 4<<20/16)) // 4 MiB
	delta := appendDeltaSize(appendDeltaSize(nil, len(base)), 100)
	delta = append(delta, 0x80|0x10, 100) // copy 100 bytes from offset 0
	small := plumbing.ComputeHash(plumbing.BlobObject, base[:100])
	baseHash := plumbing.ComputeHash(plumbing.BlobObject, base)
	tree := rawTree(rawTreeEntry{filemode.Regular, "big", baseHash}, rawTreeEntry{filemode.Regular, "small", small})
	commit := rawCommit(plumbing.ComputeHash(plumbing.TreeObject, tree))
	var p rawPack
	bo := p.add(plumbing.BlobObject, base)
	p.addOfsDelta(bo, delta)
	p.add(plumbing.TreeObject, tree)
	p.add(plumbing.CommitObject, commit)
	s := newTestStore(t, "a", epoch)
	apply(t, s, p.bundle(plumbing.ComputeHash(plumbing.CommitObject, commit)), peerB)
	assert.Equal(t, string(base[:100]), folderFiles(t, s.Dir())["small"])
	out := gitStore(t, s, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(deltabase)")
	assert.Contains(t, out, small.String()+" "+plumbing.ZeroHash.String(), "stored whole")
	fsck(t, s)
}
