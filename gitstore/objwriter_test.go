package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// packFiles returns the .pack files of s and asserts there is no loose
// object and no temporary pack left.
func packFiles(t *testing.T, s *Store) []string {
	t.Helper()
	var packs []string
	for _, f := range objectFiles(t, s) {
		rel, _ := filepath.Rel(filepath.Join(s.Dir(), GitDirName, "objects"), f)
		switch {
		case strings.HasPrefix(rel, "pack/pack-") && strings.HasSuffix(rel, ".pack"):
			packs = append(packs, f)
		case strings.HasPrefix(rel, "pack/pack-") && strings.HasSuffix(rel, ".idx"):
		case looseObjectPath.MatchString(rel): // a small scan's objects
		default:
			t.Errorf("unexpected file in objects: %s", rel)
		}
	}
	return packs
}

var looseObjectPath = regexp.MustCompile(`^[0-9a-f]{2}/[0-9a-f]{38}$`)

var verifyPackLine = regexp.MustCompile(`^([0-9a-f]{40}) (\w+) +(\d+) (\d+) (\d+)(?: (\d+) ([0-9a-f]{40}))?$`)

// verifyPack runs git verify-pack -v on every pack of s and returns the
// number of objects per type, of deltas, and the longest delta chain.
func verifyPack(t *testing.T, s *Store) (types map[string]int, deltas, maxDepth int) {
	t.Helper()
	types = map[string]int{}
	for _, p := range packFiles(t, s) {
		out := git(t, s.Dir(), "verify-pack", "-v", strings.TrimSuffix(p, ".pack")+".idx")
		for _, l := range strings.Split(out, "\n") {
			m := verifyPackLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			types[m[2]]++
			if m[6] != "" {
				deltas++
				d, _ := strconv.Atoi(m[6])
				maxDepth = max(maxDepth, d)
			}
		}
	}
	return types, deltas, maxDepth
}

func TestScanWritesPacksWithTreeDeltas(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := s.Dir()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]string{}
	for i := 0; i < 120; i++ {
		p := fmt.Sprintf("d%d/sub%d/f%03d.txt", i%3, i%2, i)
		want[p] = strings.Repeat(fmt.Sprintf("line %d %d\n", i, rng.IntN(1000)), 1+rng.IntN(50))
		writeFile(t, dir, p, want[p])
	}
	writeFile(t, dir, "same1", "same content")
	writeFile(t, dir, "same2", "same content")
	require.Len(t, scan(t, s), 122)
	types, deltas, depth := verifyPack(t, s)
	assert.Equal(t, 121, types["blob"], "identical files share one blob")
	assert.Equal(t, 122, types["commit"])
	// Every version of the 20-entry folders but the first few (too small
	// to be worth a delta) is one.
	assert.Greater(t, deltas, 90, "new tree versions are deltas")
	assert.LessOrEqual(t, depth, maxTreeDeltaDepth)
	assert.Len(t, packFiles(t, s), 1)
	fsck(t, s)

	// A second scan: modify, delete, add (a file replacing a directory).
	writeFile(t, dir, "d0/sub0/f000.txt", "changed")
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "d1")))
	writeFile(t, dir, "d1", "now a file")
	ch := scan(t, s)
	assert.Len(t, ch, 42) // 40 deletions, 1 modification, 1 addition
	assert.Len(t, packFiles(t, s), 2)
	fsck(t, s)
	assert.Empty(t, scan(t, s))
	assert.Len(t, packFiles(t, s), 2, "a scan with nothing new writes no pack")

	// The git CLI and a fresh Store read the history; a bundle carries it.
	assert.Equal(t, "changed", gitStore(t, s, "show", "HEAD:d0/sub0/f000.txt"))
	assert.Equal(t, want["d2/sub1/f005.txt"], gitStore(t, s, "show", "HEAD:d2/sub1/f005.txt")+"\n")
	b, _ := bundleOf(t, s)
	other := newTestStore(t, "other", epoch)
	apply(t, other, b, peerA)
	assert.Equal(t, folderFiles(t, dir), folderFiles(t, other.Dir()))
	fsck(t, other)
	_, deltas, depth = verifyPack(t, other)
	assert.Greater(t, deltas, 90, "the bundle's tree deltas are kept")
	assert.LessOrEqual(t, depth, maxTreeDeltaDepth)
}

func TestScanPackDeltaChainsBounded(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	for i := 0; i < 3*maxTreeDeltaDepth; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("dir/f%04d", i), strconv.Itoa(i))
	}
	scan(t, s)
	_, deltas, depth := verifyPack(t, s)
	assert.Equal(t, maxTreeDeltaDepth, depth)
	// All but one in 50, and the first ones, queued before the pack opened.
	assert.Greater(t, deltas, 3*maxTreeDeltaDepth-packMinObjects/3-10)
	fsck(t, s)
}

// cancelAfter is a context whose Err starts failing after n calls.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// An interrupted scan keeps the commits made so far (their pack is
// completed before main moves) and the next scan makes the rest.
func TestScanInterruptedKeepsPack(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	for i := 0; i < 20; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("f%02d", i), strconv.Itoa(i))
	}
	ctx := &cancelAfter{Context: context.Background(), n: 10}
	ch, err := s.Scan(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.NotEmpty(t, ch)
	require.Less(t, len(ch), 20)
	assert.Equal(t, ch[len(ch)-1].Commit, head(t, s))
	fsck(t, s)
	rest := scan(t, s)
	assert.Len(t, rest, 20-len(ch))
	fsck(t, s)

	// Cancelled during the walk: nothing written, nothing remembered.
	for i := 0; i < 5; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("g%02d", i), "g"+strconv.Itoa(i))
	}
	before := head(t, s)
	_, err = s.Scan(&cancelAfter{Context: context.Background(), n: 0})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, before, head(t, s))
	assert.Len(t, scan(t, s), 5)
	fsck(t, s)
	packFiles(t, s) // no temporary pack left
}

func TestScanLargeBlobStreamed(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	big := make([]byte, 3<<20+17)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "big"), big, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "big2"), big, 0o644))
	require.Len(t, scan(t, s), 2)
	types, _, _ := verifyPack(t, s)
	assert.Equal(t, 1, types["blob"])
	fsck(t, s)
	b, _ := bundleOf(t, s)
	other := newTestStore(t, "other", epoch)
	apply(t, other, b, peerA)
	got, err := os.ReadFile(filepath.Join(other.Dir(), "big2"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, got))
}

func TestAppendDelta(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 300; i++ {
		base := make([]byte, rng.IntN(3000)+1)
		for j := range base {
			base[j] = byte(rng.IntN(4))
		}
		lo := rng.IntN(len(base) + 1)
		tail := rng.IntN(len(base) - lo + 1)
		mid := make([]byte, rng.IntN(400))
		for j := range mid {
			mid[j] = byte(rng.Uint32())
		}
		target := append(append(append([]byte{}, base[:lo]...), mid...), base[len(base)-tail:]...)
		d := appendDelta(nil, len(base), target, lo, tail)
		got, err := packfile.PatchDelta(base, d)
		require.NoError(t, err)
		require.Equal(t, target, got)
	}
}

// A bundle from git holding a large blob stored as a delta against another
// large blob: the base is read back from the spool, the result is right,
// and no temporary file is left.
func TestApplyGitBundleLargeDelta(t *testing.T) {
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "repo")
	git(t, tmp, "init", "-q", repo)
	rng := rand.New(rand.NewPCG(5, 6))
	v1 := make([]byte, 2<<20)
	for i := range v1 {
		v1[i] = byte('a' + rng.IntN(26))
	}
	require.NoError(t, os.WriteFile(filepath.Join(repo, "big.txt"), v1, 0o644))
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "v1")
	v2 := append(append([]byte{}, v1[:1<<20]...), []byte("inserted in the middle")...)
	v2 = append(v2, v1[1<<20:]...)
	require.NoError(t, os.WriteFile(filepath.Join(repo, "big.txt"), v2, 0o644))
	git(t, repo, "commit", "-q", "-am", "v2")
	git(t, repo, "repack", "-adq")
	bundle := filepath.Join(tmp, "all.bundle")
	git(t, repo, "bundle", "create", "-q", bundle, "main")
	data, err := os.ReadFile(bundle)
	require.NoError(t, err)
	require.Less(t, len(data), 3<<19, "git stored one version as a delta")

	s := newTestStore(t, "dev", epoch)
	apply(t, s, data, peerA)
	got, err := os.ReadFile(filepath.Join(s.Dir(), "big.txt"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(v2, got))
	packFiles(t, s) // only complete packs: the spool is gone
	fsck(t, s)

	// A truncated copy is rejected and leaves nothing behind either.
	other := newTestStore(t, "other", epoch)
	_, err = other.ApplyBundle(context.Background(), bytes.NewReader(data[:len(data)-100]), peerA)
	require.Error(t, err)
	assert.Empty(t, objectFiles(t, other))
}

func TestStaleTmpPacksRemoved(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	dir := filepath.Join(s.Dir(), GitDirName, "objects", "pack")
	old, fresh := filepath.Join(dir, "tmp_pack_old.pack"), filepath.Join(dir, "tmp_pack_fresh.pack")
	require.NoError(t, os.WriteFile(old, []byte("PACK"), 0o644))
	require.NoError(t, os.WriteFile(fresh, []byte("PACK"), 0o644))
	past := epoch.Add(-48 * 3600 * 1e9)
	require.NoError(t, os.Chtimes(old, past, past))
	writeFile(t, s.Dir(), "f", "x")
	scan(t, s)
	assert.NoFileExists(t, old)
	assert.FileExists(t, fresh, "possibly another writer's: kept")
	fsck(t, s)
}

// A small scan (a watcher's usual one) writes loose objects, not a tiny
// pack; a big one a pack.
func TestSmallScanWritesLoose(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	writeFile(t, s.Dir(), "a", "1")
	writeFile(t, s.Dir(), "d/b", "2")
	require.Len(t, scan(t, s), 2)
	assert.Empty(t, packFiles(t, s))
	assert.Len(t, objectFiles(t, s), 2+2+3) // blobs, commits, trees (root twice, d)
	for i := 0; i < 40; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("d/f%02d", i), strconv.Itoa(i))
	}
	require.Len(t, scan(t, s), 40)
	assert.Len(t, packFiles(t, s), 1)
	fsck(t, s)
}
