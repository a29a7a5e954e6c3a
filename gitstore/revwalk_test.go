package gitstore

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gitObjects lists `git rev-list --objects main ^since...` in s.
func gitObjects(t *testing.T, s *Store, since ...Hash) []string {
	t.Helper()
	args := []string{"rev-list", "--objects", "main"}
	for _, h := range since {
		args = append(args, "^"+h.String())
	}
	var out []string
	for _, l := range strings.Split(gitStore(t, s, args...), "\n") {
		if h, _, _ := strings.Cut(l, " "); h != "" {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

// bundleObjects lists the objects of a bundle of s (thin: delta bases come
// from s), read by our own pack reader.
func bundleObjects(t *testing.T, s *Store, bundle []byte) []string {
	t.Helper()
	i := bytes.Index(bundle, []byte("\n\n"))
	require.Positive(t, i)
	objs, err := readPack(context.Background(), bufio.NewReader(bytes.NewReader(bundle[i+2:])), 1<<30, s.externalBaseLocked)
	require.NoError(t, err)
	var out []string
	for _, o := range objs.list {
		out = append(out, o.hash.String())
	}
	sort.Strings(out)
	return out
}

// fetchInto fetches bundle into a git repository holding the history of
// s up to the commits at, and checks the result.
func fetchInto(t *testing.T, s *Store, bundle []byte, at ...Hash) {
	t.Helper()
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	git(t, dir, "init", "-q", "--bare", repo)
	for i, h := range at {
		git(t, repo, "fetch", "-q", filepath.Join(s.Dir(), GitDirName), fmt.Sprintf("%s:refs/heads/old%d", h, i))
	}
	b := filepath.Join(dir, "x.bundle")
	require.NoError(t, os.WriteFile(b, bundle, 0o644))
	git(t, repo, "bundle", "verify", b)
	git(t, repo, "fetch", "-q", b, "refs/heads/main:refs/heads/main")
	git(t, repo, "fsck", "--strict", "--no-dangling")
}

func TestWriteBundleWalkLinear(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	for i := 0; i < 40; i++ { // a folder big enough for tree deltas
		writeFile(t, s.Dir(), fmt.Sprintf("big/file-with-a-long-name-%03d", i), fmt.Sprint(i))
	}
	scan(t, s)
	var heads []Hash
	var peer *Store
	for i := 0; i < 12; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("d%d/f%d", i%3, i), fmt.Sprint(i))
		writeFile(t, s.Dir(), fmt.Sprintf("big/new%02d", i), fmt.Sprint(i))
		if i == 7 {
			require.NoError(t, os.Remove(filepath.Join(s.Dir(), "d0/f0")))
		}
		scan(t, s)
		heads = append(heads, head(t, s))
		if i == 5 {
			peer = newTestStore(t, "peer", epoch)
			b, _ := bundleOf(t, s)
			apply(t, peer, b, peerA)
		}
	}
	for _, since := range []Hash{heads[0], heads[5], heads[10]} {
		b, info := bundleOf(t, s, since)
		assert.Equal(t, []Hash{since}, info.Prerequisites)
		// Everything git would send; maybe a few blobs more (a new file
		// whose content the peer has under another path).
		got := bundleObjects(t, s, b)
		want := gitObjects(t, s, since)
		for _, h := range want {
			assert.Contains(t, got, h, "since %s", since)
		}
		assert.LessOrEqual(t, len(got), len(want)+12)
		fetchInto(t, s, b, since)
		if since == heads[10] {
			// Two commits, big/ as a delta against the peer's version (thin)
			// then against the first (in the pack): far less than the
			// ~2.4 KB a whole big/ tree takes.
			assert.Less(t, len(b), 1500)
		}
	}
	// Our reader completes the thin pack from our own objects.
	b, _ := bundleOf(t, s, heads[5])
	apply(t, peer, b, peerA)
	assert.Equal(t, head(t, s), head(t, peer))
	assert.Equal(t, folderFiles(t, s.Dir()), folderFiles(t, peer.Dir()))
	fsck(t, peer)
}

// Merges, a since commit off our history, several since commits: the
// bundle holds at least what git would send, its prerequisites are git's
// boundary, and git fetches it.
func TestWriteBundleWalkMerges(t *testing.T) {
	a, b := pair(t, map[string]string{"x": "x0", "y": "y0", "d/z": "z0"})
	base := head(t, a)
	writeFile(t, a.Dir(), "x", "x1")
	writeFile(t, a.Dir(), "d/a", "a1")
	scan(t, a)
	aSide := head(t, a)
	writeFile(t, b.Dir(), "y", "y1")
	writeFile(t, b.Dir(), "d/z", "z1")
	scan(t, b)
	bSide := head(t, b)
	exchange(t, a, b) // both merge
	writeFile(t, a.Dir(), "after", "1")
	scan(t, a)

	for _, since := range [][]Hash{{base}, {bSide}, {aSide}, {aSide, bSide}, {base, bSide}} {
		bundle, info := bundleOf(t, a, since...)
		boundary := strings.Fields(gitStore(t, a, append([]string{"rev-list", "--boundary", "main"}, hashArgs(since)...)...))
		var want []Hash
		for _, f := range boundary {
			if strings.HasPrefix(f, "-") {
				h, err := ParseHash(f[1:])
				require.NoError(t, err)
				want = append(want, h)
			}
		}
		sort.Slice(want, func(i, j int) bool { return want[i].String() < want[j].String() })
		assert.Equal(t, want, info.Prerequisites, "since %v", since)
		got := bundleObjects(t, a, bundle)
		for _, h := range gitObjects(t, a, since...) {
			assert.Contains(t, got, h, "since %v", since)
		}
		fetchInto(t, a, bundle, since...)
		again, _ := bundleOf(t, a, since...)
		assert.Equal(t, bundle, again, "the walk is deterministic")
	}
	// b lacks only a's last commit.
	bundle, info := bundleOf(t, a, head(t, b))
	assert.Equal(t, 3, info.Objects)
	apply(t, b, bundle, peerA)
	assert.Equal(t, head(t, a), head(t, b))
	fsck(t, b)
}

func hashArgs(hs []Hash) []string {
	var out []string
	for _, h := range hs {
		out = append(out, "^"+h.String())
	}
	return out
}

// TestBundleSinceDanglingCommit: a peer's head that we hold only as a
// dangling commit whose parents we lack (a kill left it) is no reason to
// fail: the walk stops excluding there and the bundle carries our history.
func TestBundleSinceDanglingCommit(t *testing.T) {
	s := newTestStore(t, "a", time2020())
	writeFile(t, s.Dir(), "x.txt", "x")
	scan(t, s)
	var missing plumbing.Hash
	missing[0] = 0x42
	s.mu.Lock()
	_, root, err := s.headTreeLocked()
	require.NoError(t, err)
	tree, err := s.writeTreeLocked(root)
	require.NoError(t, err)
	dangling, err := s.newCommitLocked(tree, []plumbing.Hash{missing}, "lost parent\n", s.signature())
	s.mu.Unlock()
	require.NoError(t, err)

	b, info := bundleOf(t, s, fromPlumbing(dangling))
	assert.NotEmpty(t, b)
	assert.Equal(t, head(t, s), info.Head)
}

// TestApplySmallBundleIsOnePack: even a bundle of a few objects is stored
// as one pack (all or nothing), never as loose objects written one by one,
// which a kill could leave as a commit without its parent.
func TestApplySmallBundleIsOnePack(t *testing.T) {
	a, b := newTestStore(t, "a", time2020()), newTestStore(t, "b", time2020())
	writeFile(t, a.Dir(), "x.txt", "x")
	scan(t, a)
	raw, _ := bundleOf(t, a)
	loose := func() (out []string) {
		for _, f := range objectFiles(t, b) {
			if !strings.Contains(f, string(filepath.Separator)+"pack"+string(filepath.Separator)) {
				out = append(out, f)
			}
		}
		return out
	}
	before := loose()
	apply(t, b, raw, peerA)
	assert.Equal(t, before, loose(), "no loose object written")
	packs, err := filepath.Glob(filepath.Join(b.Dir(), GitDirName, "objects", "pack", "pack-*.pack"))
	require.NoError(t, err)
	assert.NotEmpty(t, packs)
	fsck(t, b)
}

// The since commits are looked up through the export's own pack reader:
// a packed commit and a loose one count (they become the prerequisites),
// and a blob, a tree or an unknown hash is ignored.
func TestWriteBundleSinceKinds(t *testing.T) {
	s := newTestStore(t, "a", time2020())
	for i := range 120 { // enough objects for a pack
		writeFile(t, s.Dir(), fmt.Sprintf("f%03d.txt", i), fmt.Sprint(i))
	}
	scan(t, s)
	packed := head(t, s)
	writeFile(t, s.Dir(), "g.txt", "g")
	scan(t, s) // a few objects: loose
	loose := head(t, s)
	writeFile(t, s.Dir(), "h.txt", "h")
	scan(t, s)
	hx := loose.String()
	require.FileExists(t, filepath.Join(s.Dir(), GitDirName, "objects", hx[:2], hx[2:]), "the second commit is loose")
	blob := plumbing.NewHash(strings.TrimSpace(gitStore(t, s, "rev-parse", "main:g.txt")))
	tree := plumbing.NewHash(strings.TrimSpace(gitStore(t, s, "rev-parse", "main^{tree}")))
	unknown := plumbing.NewHash("1111111111111111111111111111111111111111")
	for _, since := range []Hash{packed, loose} {
		_, info := bundleOf(t, s, fromPlumbing(blob), since, fromPlumbing(tree), fromPlumbing(unknown))
		assert.Equal(t, []Hash{since}, info.Prerequisites)
	}
	_, info := bundleOf(t, s, fromPlumbing(blob), fromPlumbing(tree), fromPlumbing(unknown))
	assert.Empty(t, info.Prerequisites, "nothing the peer has: the whole history")
}
