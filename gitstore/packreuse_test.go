package gitstore

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bundleDeltas counts the delta entries (OFS_DELTA and REF_DELTA) of a
// bundle's pack, walking its entries.
func bundleDeltas(t *testing.T, bundle []byte) (ofs, ref int) {
	t.Helper()
	i := bytes.Index(bundle, []byte("\n\n"))
	require.Positive(t, i)
	pack := bundle[i+2 : len(bundle)-20]
	require.Equal(t, "PACK", string(pack[:4]))
	n := int(binary.BigEndian.Uint32(pack[8:12]))
	r := bytes.NewReader(pack[12:])
	for k := 0; k < n; k++ {
		c, err := r.ReadByte()
		require.NoError(t, err)
		typ := plumbing.ObjectType(c >> 4 & 7)
		for c&0x80 != 0 {
			c, err = r.ReadByte()
			require.NoError(t, err)
		}
		switch typ {
		case plumbing.OFSDeltaObject:
			ofs++
			for c, err = r.ReadByte(); c&0x80 != 0; c, err = r.ReadByte() {
				require.NoError(t, err)
			}
		case plumbing.REFDeltaObject:
			ref++
			_, err = r.Seek(20, io.SeekCurrent)
			require.NoError(t, err)
		}
		z, err := zlib.NewReader(r)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, z)
		require.NoError(t, err)
	}
	require.Zero(t, r.Len(), "nothing after the last entry")
	return ofs, ref
}

// addFiles writes n files named <dir>/<prefix>-with-a-long-name-<i>.
func addFiles(t *testing.T, s *Store, dir, prefix string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("%s/%s-with-a-long-name-%04d", dir, prefix, i), fmt.Sprintf("content %s %d\n", prefix, i))
	}
}

// A scan stores each version of a tree as a delta against the previous
// one; a bundle copies those entries as stored (compressed bytes, deltas
// re-pointed at the base's place in the bundle, or REF_DELTA against the
// peer's version in a thin bundle) and git and our own apply read it.
func TestWriteBundleReusesStoredDeltas(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	addFiles(t, s, "big", "a", 0, 150)
	addFiles(t, s, "other", "b", 0, 10)
	scan(t, s) // 160 commits in one pack
	first := head(t, s)

	full, info := bundleOf(t, s)
	assert.Equal(t, info.Objects, s.views.exp.src.reused, "every object comes from the pack as stored")
	assert.Zero(t, s.views.exp.src.fresh)
	ofs, ref := bundleDeltas(t, full)
	assert.Greater(t, ofs, 150, "the tree versions stay deltas")
	assert.Zero(t, ref)
	assert.Equal(t, gitObjects(t, s), bundleObjects(t, s, full))
	fetchInto(t, s, full)

	peer := newTestStore(t, "peer", epoch)
	apply(t, peer, full, peerA)
	assert.Equal(t, first, head(t, peer))

	// A second pack; the peer has the first head.
	addFiles(t, s, "big", "c", 0, 120)
	scan(t, s)
	inc, info := bundleOf(t, s, first)
	assert.Equal(t, []Hash{first}, info.Prerequisites)
	// Written anew: the root and big/ trees, whole in the new pack, as
	// deltas against the peer's; and the big/ version that this shift
	// puts one past the delta depth limit.
	assert.LessOrEqual(t, s.views.exp.src.fresh, 3)
	assert.Equal(t, info.Objects-s.views.exp.src.fresh, s.views.exp.src.reused)
	ofs, ref = bundleDeltas(t, inc)
	assert.Greater(t, ofs, 110)
	assert.Equal(t, 1, ref, "big/ against the peer's version")
	assert.Equal(t, gitObjects(t, s, first), bundleObjects(t, s, inc))
	fetchInto(t, s, inc, first)
	apply(t, peer, inc, peerA)
	assert.Equal(t, head(t, s), head(t, peer))
	assert.Equal(t, folderFiles(t, s.Dir()), folderFiles(t, peer.Dir()))
	fsck(t, peer)

	// The peer's own bundle back to a third store (its pack holds our
	// deltas as the bundle brought them).
	third := newTestStore(t, "third", epoch)
	back, _ := bundleOf(t, peer)
	assert.Positive(t, peer.views.exp.src.reused)
	apply(t, third, back, peerB)
	assert.Equal(t, head(t, s), head(t, third))
	fsck(t, third)
}

// A pack made by git holds deltas in git's order (a newer version as the
// base of an older one): the walk lists the older one first, so those
// entries cannot be copied and are written anew; the bundle is still
// complete and valid. (While git's pack is the whole history it goes out
// whole, as it is: see TestWriteBundleCopiesOnePackWhole. A local edit
// makes the history more than that pack.)
func TestWriteBundleFromGitPack(t *testing.T) {
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "repo")
	git(t, tmp, "init", "-q", "-b", "main", repo)
	text := strings.Repeat("a line of text that repeats in every version\n", 200)
	for i := 0; i < 12; i++ {
		text += fmt.Sprintf("version %d\n", i)
		gitCommit(t, repo, map[string]string{"doc.txt": text, fmt.Sprintf("d/f%02d", i): fmt.Sprint(i)}, fmt.Sprint("v", i))
	}
	git(t, repo, "repack", "-adq", "--depth=50", "--window=50")
	// git's pack as our store's, deltas and all.
	s := newTestStore(t, "s", epoch)
	gitDir := filepath.Join(s.Dir(), GitDirName)
	git(t, tmp, "--git-dir="+gitDir, "-c", "fetch.unpackLimit=1", "fetch", "-q", repo, "main:main")
	require.NoError(t, s.Close())
	s, err := Open(Config{Dir: s.Dir()})
	require.NoError(t, err)
	defer s.Close()
	whole, _ := bundleOf(t, s)
	assert.True(t, s.views.exp.src.whole, "git's pack alone goes out whole")
	fetchInto(t, s, whole)
	writeFile(t, s.Dir(), "doc.txt", text) // the checkout git's fetch did not make
	for i := 0; i < 12; i++ {
		writeFile(t, s.Dir(), fmt.Sprintf("d/f%02d", i), fmt.Sprint(i))
	}
	writeFile(t, s.Dir(), "local.txt", "a local edit")
	scan(t, s)

	out, info := bundleOf(t, s)
	assert.False(t, s.views.exp.src.whole)
	assert.Positive(t, s.views.exp.src.fresh, "git's backward deltas are written anew")
	assert.Positive(t, s.views.exp.src.reused)
	assert.Equal(t, info.Objects, s.views.exp.src.reused+s.views.exp.src.fresh)
	assert.Equal(t, gitObjects(t, s), bundleObjects(t, s, out))
	fetchInto(t, s, out)
	other := newTestStore(t, "o", epoch)
	apply(t, other, out, peerB)
	assert.Equal(t, text, folderFiles(t, other.Dir())["doc.txt"])
	fsck(t, other)
}

// A damaged pack entry is never sent: its CRC-32 no longer matches the
// index, and WriteBundle fails rather than write it.
func TestWriteBundleRefusesDamagedPack(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	addFiles(t, s, "d", "f", 0, 120)
	scan(t, s)
	blob := plumbing.ComputeHash(plumbing.BlobObject, []byte("content f 7\n"))
	src := newObjectSource(filepath.Join(s.Dir(), GitDirName, "objects"))
	require.NoError(t, src.refresh())
	l, ok := src.locate(blob)
	require.True(t, ok, "the blob is packed")
	h, err := src.header(l)
	require.NoError(t, err)
	src.close()
	f, err := os.OpenFile(filepath.Join(s.Dir(), GitDirName, "objects", "pack", l.p.name+".pack"), os.O_RDWR, 0)
	require.NoError(t, err)
	var b [1]byte
	_, err = f.ReadAt(b[:], h.dataOff+4)
	require.NoError(t, err)
	b[0] ^= 0x40
	_, err = f.WriteAt(b[:], h.dataOff+4)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var buf bytes.Buffer
	_, err = s.WriteBundle(context.Background(), &buf, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CRC")
}

// Stored-block zlib streams (how tiny entries are written) are read
// without a decompressor, with the same result; anything else is left to
// one.
func TestInflateStored(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("tree delta "), 20), bytes.Repeat([]byte{7}, 70000)} {
		for _, level := range []int{zlib.NoCompression, zlib.DefaultCompression} {
			var b bytes.Buffer
			z, err := zlib.NewWriterLevel(&b, level)
			require.NoError(t, err)
			_, err = z.Write(data)
			require.NoError(t, err)
			require.NoError(t, z.Close())
			var pool bufPool
			out, ok := inflateStored(b.Bytes(), int64(len(data)), &pool)
			if level == zlib.DefaultCompression && len(data) > 20 {
				assert.False(t, ok, "a compressed stream is not read as stored")
				continue
			}
			if !ok && level != zlib.NoCompression {
				continue // compressed: for the decompressor
			}
			require.True(t, ok, "%d bytes at level %d", len(data), level)
			assert.Equal(t, len(data), len(out))
			assert.True(t, bytes.Equal(data, out))
			_, ok = inflateStored(b.Bytes(), int64(len(data))+1, &pool)
			assert.False(t, ok, "the size must match")
			if len(data) > 0 {
				bad := bytes.Clone(b.Bytes())
				bad[len(bad)-1] ^= 1
				_, ok = inflateStored(bad, int64(len(data)), &pool)
				assert.False(t, ok, "the checksum must match")
			}
		}
	}
}

// versionedTree encodes entries (name -> mode) as a git tree, in git's order,
// each entry's hash derived from its name and version v[name].
func versionedTree(entries map[string]uint32, v map[string]int) []byte {
	var es []treeEntry
	for n, m := range entries {
		es = append(es, treeEntry{mode: m, name: []byte(n)})
	}
	slices.SortFunc(es, compareTreeEntries)
	var b []byte
	for _, e := range es {
		h := plumbing.ComputeHash(plumbing.BlobObject, []byte(fmt.Sprint(string(e.name), v[string(e.name)])))
		b = fmt.Appendf(b, "%o %s\x00", e.mode, e.name)
		b = append(b, h[:]...)
	}
	return b
}

// The offsets of a tree version's entries derived from its previous
// version's (treewalk.go) are those a full parse finds, and the span said
// to differ covers every entry that changed, whatever changed: entries
// added, removed or modified at the start, the middle or the end, names
// sharing prefixes, a file and a directory of the same name.
func TestTreeDiffDerivedIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "a.txt", "a0", "ab", "b", "b-", "b.d", "c", "zz", "zzz"}
	for i := 0; i < 60; i++ {
		names = append(names, fmt.Sprintf("f%03d", i))
	}
	entries := map[string]uint32{}
	ver := map[string]int{}
	for _, n := range names[:40] {
		entries[n] = 0o100644
	}
	d := treeDiffer{src: newObjectSource(t.TempDir())}
	prev := &cobj{data: versionedTree(entries, ver)}
	require.NoError(t, d.index(prev))
	for round := 0; round < 500; round++ {
		for k := rng.IntN(3) + 1; k > 0; k-- {
			n := names[rng.IntN(len(names))]
			switch m, ok := entries[n]; {
			case !ok:
				entries[n] = []uint32{0o100644, 0o40000, 0o100755}[rng.IntN(3)]
			case rng.IntN(3) == 0:
				delete(entries, n)
			case rng.IntN(4) == 0 && m != 0o40000:
				entries[n] = 0o40000 // a file becomes a directory
			default:
				ver[n]++
			}
		}
		next := &cobj{data: versionedTree(entries, ver)}
		tSpan, pSpan, err := d.deriveIndex(next, prev)
		require.NoError(t, err)
		want := &cobj{data: next.data}
		require.NoError(t, d.index(want))
		require.Equal(t, want.ents, next.ents, "round %d", round)
		// Every entry outside the spans is the same in both versions.
		require.Equal(t, tSpan.a, pSpan.a)
		require.Equal(t, len(next.ents)-tSpan.b, len(prev.ents)-pSpan.b)
		for k := 0; k < tSpan.a; k++ {
			a, _, _ := parseRawEntry(next.data, int(next.ents[k]))
			b, _, _ := parseRawEntry(prev.data, int(prev.ents[k]))
			require.Equal(t, b, a)
		}
		for k := tSpan.b; k < len(next.ents); k++ {
			a, _, _ := parseRawEntry(next.data, int(next.ents[k]))
			b, _, _ := parseRawEntry(prev.data, int(prev.ents[k-tSpan.b+pSpan.b]))
			require.Equal(t, b, a)
		}
		prev = next
	}
}
