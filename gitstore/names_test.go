package gitstore

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWindowsName(t *testing.T) {
	for _, bad := range []string{"con", "CON", "Con.txt", "aux.c", "nul.txt", "prn", "com1", "COM9.log", "lpt3.x.y",
		"con ", "a.", "a ", "dir.", "a<b", "a>b", "a:b", `a"b`, "a|b", "a?b", "a*b", "a\x01b"} {
		assert.Error(t, windowsName(bad), "%q", bad)
	}
	for _, good := range []string{"a", "console", "auxiliary.c", "com0", "com10", "lpt", "nul_", ".hidden", "a.b", "a b", "über"} {
		assert.NoError(t, windowsName(good), "%q", good)
	}
}

func TestNameCheckCaseFold(t *testing.T) {
	s := &Store{fst: folderState{disk: diskState{caseFold: true, goos: "linux"}}}
	files := map[string]fileEntry{}
	for _, p := range []string{"README", "readme", "Readme.txt", "Docs/a", "docs/b", "docs/c/d", "x/Y", "x/y", "file", "FILE/z", "ok"} {
		files[p] = fileEntry{}
	}
	c := s.newNameCheckFlat(files)
	var bad []string
	for p := range files {
		if err := c.holdable(p); err != nil {
			assert.ErrorIs(t, err, ErrNameNotHoldable)
			bad = append(bad, p)
		}
	}
	sort.Strings(bad)
	// The smallest name in byte order wins ("Docs" < "docs", "FILE" < "file").
	assert.Equal(t, []string{"docs/b", "docs/c/d", "file", "readme", "x/y"}, bad)

	s.fst.disk.caseFold = false
	c = s.newNameCheckFlat(files)
	for p := range files {
		require.NoError(t, c.holdable(p))
	}
	s.fst.disk.goos = "windows"
	assert.ErrorIs(t, s.newNameCheckFlat(map[string]fileEntry{"a/con/b": {}}).holdable("a/con/b"), ErrNameNotHoldable)
}

// Names Windows cannot hold, committed on another OS, are skipped by a
// Windows peer's checkout and reported; they never block the bundle nor
// later ones, are never committed as deleted there, and stay in the history
// for the peers that can hold them. (The target OS is injected: this runs on
// Linux.)
func TestCheckoutSkipsWindowsNames(t *testing.T) {
	a := newTestStore(t, "a", epoch)
	bad := []string{"a<b.txt", "aux.c", "con", "dir./x.txt", "sub/nul.txt", "trail "}
	for _, p := range append([]string{"ok.txt", "sub/fine.txt"}, bad...) {
		writeFile(t, a.Dir(), p, "v1 "+p)
	}
	scan(t, a)
	b := newTestStore(t, "b", epoch)
	b.fst.disk.goos = "windows"
	bundle, _ := bundleOf(t, a)
	res := apply(t, b, bundle, peerA)
	assert.Equal(t, bad, skipPathsOf(res.Skipped))
	for _, sp := range res.Skipped {
		assert.ErrorIs(t, sp.Err, ErrNameNotHoldable)
	}
	assert.Equal(t, map[string]string{"ok.txt": "v1 ok.txt", "sub/fine.txt": "v1 sub/fine.txt"}, folderFiles(t, b.Dir()))
	assert.Empty(t, scan(t, b), "the names never written are not deletions")
	assert.Equal(t, bad, skipPathsOf(b.Skipped()))

	// A later bundle changing a good and a bad name applies.
	base := head(t, a)
	writeFile(t, a.Dir(), "ok.txt", "v2")
	writeFile(t, a.Dir(), "con", "v2")
	scan(t, a)
	bundle, _ = bundleOf(t, a, base)
	res = apply(t, b, bundle, peerA)
	assert.Equal(t, []string{"ok.txt"}, res.Changed)
	assert.Equal(t, []string{"con"}, skipPathsOf(res.Skipped), "only what this bundle changed")
	assert.Equal(t, "v2", folderFiles(t, b.Dir())["ok.txt"])

	// B's own edit goes back to A, which keeps every name.
	writeFile(t, b.Dir(), "ok.txt", "v3 from b")
	assert.Equal(t, []string{"modify ok.txt"}, actions(scan(t, b)))
	bundle, _ = bundleOf(t, b, head(t, a))
	apply(t, a, bundle, peerB)
	got := folderFiles(t, a.Dir())
	assert.Equal(t, "v3 from b", got["ok.txt"])
	assert.Equal(t, "v2", got["con"])
	for _, p := range bad {
		assert.Contains(t, got, p)
	}
	fsck(t, b)
}

func skipPathsOf(sk []SkippedPath) []string {
	out := []string{}
	for _, sp := range sk {
		out = append(out, sp.Path)
	}
	return out
}

// Restore refuses a name this device cannot hold rather than write it over
// another file.
func TestRestoreRefusesUnholdableName(t *testing.T) {
	a := newTestStore(t, "a", epoch)
	writeFile(t, a.Dir(), "con", "c1")
	writeFile(t, a.Dir(), "ok.txt", "o1")
	scan(t, a)
	writeFile(t, a.Dir(), "con", "c2")
	scan(t, a)
	b := newTestStore(t, "b", epoch)
	b.fst.disk.goos = "windows"
	bundle, _ := bundleOf(t, a)
	apply(t, b, bundle, peerA)
	hist := history(t, b, "con", 10)
	require.Len(t, hist, 2)
	_, err := b.Restore(context.Background(), "con", hist[1].Commit)
	assert.ErrorIs(t, err, ErrNameNotHoldable)
	assert.NotContains(t, folderFiles(t, b.Dir()), "con")
}
