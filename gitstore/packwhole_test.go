package gitstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersync/peersync/internal/testutil"
)

// onlyPack returns the bytes of s's one pack (it must have exactly one, and
// no loose object).
func onlyPack(t *testing.T, s *Store) []byte {
	t.Helper()
	packs, _ := filepath.Glob(filepath.Join(s.Dir(), GitDirName, "objects", "pack", "*.pack"))
	require.Len(t, packs, 1)
	loose, _ := filepath.Glob(filepath.Join(s.Dir(), GitDirName, "objects", "[0-9a-f][0-9a-f]", "*"))
	require.Empty(t, loose)
	b, err := os.ReadFile(packs[0])
	require.NoError(t, err)
	return b
}

// packOf returns the pack part of a bundle.
func packOf(t *testing.T, bundle []byte) []byte {
	t.Helper()
	i := bytes.Index(bundle, []byte("\n\n"))
	require.Positive(t, i)
	return bundle[i+2:]
}

// TestWriteBundleCopiesOnePackWhole: a full bundle of a store whose history
// is one pack (after a first scan, and after maintenance consolidated two
// scans) is that pack byte for byte, taken by the whole-pack path (no
// SHA-1 over the output); git verifies and fetches it and our apply takes
// it. A store of two packs, and an incremental bundle, go the entry-by-entry
// way and stay valid.
func TestWriteBundleCopiesOnePackWhole(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	addFiles(t, s, "big", "a", 0, 150) // tree versions stored as deltas
	addFiles(t, s, "other", "b", 0, 10)
	testutil.WriteRandomFile(t, filepath.Join(s.Dir(), "random.bin"), 3<<20, 1)
	scan(t, s)
	first := head(t, s)

	full, info := bundleOf(t, s)
	src := s.views.exp.src
	assert.True(t, src.whole, "the one pack is copied whole")
	assert.Equal(t, info.Objects, src.reused)
	assert.Equal(t, onlyPack(t, s), packOf(t, full), "the bundle's pack is the stored pack")
	assert.Equal(t, gitObjects(t, s), bundleObjects(t, s, full))
	fetchInto(t, s, full)
	peer := newTestStore(t, "peer", epoch)
	apply(t, peer, full, peerA)
	assert.Equal(t, first, head(t, peer))
	assert.Equal(t, folderFiles(t, s.Dir()), folderFiles(t, peer.Dir()))
	fsck(t, peer)

	// A second pack: the full bundle is written entry by entry; so is the
	// incremental one (its new trees go as deltas against the peer's).
	addFiles(t, s, "big", "c", 0, 120)
	scan(t, s)
	full2, _ := bundleOf(t, s)
	assert.False(t, s.views.exp.src.whole)
	fetchInto(t, s, full2)
	inc, _ := bundleOf(t, s, first)
	assert.False(t, s.views.exp.src.whole)
	_, ref := bundleDeltas(t, inc)
	assert.Positive(t, ref, "the incremental bundle is thin")
	fetchInto(t, s, inc, first)
	apply(t, peer, inc, peerA)
	assert.Equal(t, folderFiles(t, s.Dir()), folderFiles(t, peer.Dir()))

	// Maintenance makes it one pack again: whole again, and that pack.
	_, err := s.maintain(context.Background(), maintainAll)
	require.NoError(t, err)
	full3, info3 := bundleOf(t, s)
	assert.True(t, s.views.exp.src.whole, "the consolidated pack is copied whole")
	assert.Equal(t, info3.Objects, s.views.exp.src.reused)
	assert.Equal(t, onlyPack(t, s), packOf(t, full3))
	fetchInto(t, s, full3)
	other := newTestStore(t, "other", epoch)
	apply(t, other, full3, peerA)
	assert.Equal(t, folderFiles(t, s.Dir()), folderFiles(t, other.Dir()))
	fsck(t, other)
}

// TestWholePackDamagedTrailerNotSent: the whole-pack path sends the stored
// trailer, which the pack's index also records; a pack whose trailer no
// longer matches its index is not read (nor sent) at all.
func TestWholePackDamagedTrailerNotSent(t *testing.T) {
	s := newTestStore(t, "dev", epoch)
	addFiles(t, s, "d", "f", 0, 120)
	scan(t, s)
	packs, _ := filepath.Glob(filepath.Join(s.Dir(), GitDirName, "objects", "pack", "*.pack"))
	require.Len(t, packs, 1)
	f, err := os.OpenFile(packs[0], os.O_RDWR, 0)
	require.NoError(t, err)
	fi, err := f.Stat()
	require.NoError(t, err)
	var b [1]byte
	_, err = f.ReadAt(b[:], fi.Size()-5)
	require.NoError(t, err)
	b[0] ^= 0x40
	_, err = f.WriteAt(b[:], fi.Size()-5)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var buf bytes.Buffer
	_, err = s.WriteBundle(context.Background(), &buf, nil)
	require.Error(t, err)
	assert.Contains(t, fmt.Sprint(err), "does not match its pack")
}

// TestBigIncrementalBundleSelfContained: an incremental bundle that
// carries a big file (selfContainedMin, lowered here) has no delta against
// the peer's objects, so the receiver adopts its pack as it comes instead
// of storing every object again; here it is the scan's own pack, sent
// whole. The same bundle under the default threshold, and a small
// incremental bundle, stay thin.
func TestBigIncrementalBundleSelfContained(t *testing.T) {
	defer func(old int64) { selfContainedMin = old }(selfContainedMin)
	selfContainedMin = 256 << 10
	s := newTestStore(t, "dev", epoch)
	addFiles(t, s, "big", "a", 0, 150) // tree versions stored as deltas
	addFiles(t, s, "other", "b", 0, 10)
	scan(t, s)
	first := head(t, s)
	full, _ := bundleOf(t, s)
	peer := newTestStore(t, "peer", epoch)
	apply(t, peer, full, peerA)

	testutil.WriteRandomFile(t, filepath.Join(s.Dir(), "big", "video.bin"), 512<<10, 2)
	writeFile(t, s.Dir(), "other/new.txt", "beside the video")
	scan(t, s)
	inc, info := bundleOf(t, s, first)
	assert.Equal(t, []Hash{first}, info.Prerequisites)
	assert.True(t, s.views.exp.src.whole, "the scan's pack goes out as it is")
	_, ref := bundleDeltas(t, inc)
	assert.Zero(t, ref, "no delta against the peer's objects")
	fetchInto(t, s, inc, first)
	apply(t, peer, inc, peerA)
	pack := packOf(t, inc)
	_, names := packsOf(t, peer)
	assert.Contains(t, names, "pack-"+hex.EncodeToString(pack[len(pack)-20:]), "the receiver adopted the pack")
	assert.Equal(t, folderFiles(t, s.Dir()), folderFiles(t, peer.Dir()))
	fsck(t, peer)

	selfContainedMin = 1 << 40
	thin, _ := bundleOf(t, s, first)
	assert.False(t, s.views.exp.src.whole)
	_, ref = bundleDeltas(t, thin)
	assert.Positive(t, ref, "under the threshold the bundle is thin")
	assert.Less(t, len(thin), len(inc))
	selfContainedMin = 256 << 10

	second := head(t, s)
	writeFile(t, s.Dir(), "big/a-with-a-long-name-0007", "a small edit\n")
	scan(t, s)
	small, _ := bundleOf(t, s, second)
	_, ref = bundleDeltas(t, small)
	assert.Positive(t, ref, "a small incremental bundle stays thin")
	selfContainedMin = 1 << 40
	same, _ := bundleOf(t, s, second)
	selfContainedMin = 256 << 10
	assert.Equal(t, same, small, "byte for byte what it was before")
	fetchInto(t, s, small, second)
	apply(t, peer, small, peerA)
	assert.Equal(t, folderFiles(t, s.Dir()), folderFiles(t, peer.Dir()))

	// The video and the edit (a pack and loose objects) to a peer at the
	// first head: written entry by entry, self-contained, adopted.
	late := newTestStore(t, "late", epoch)
	apply(t, late, full, peerA)
	both, _ := bundleOf(t, s, first)
	assert.False(t, s.views.exp.src.whole)
	_, ref = bundleDeltas(t, both)
	assert.Zero(t, ref, "no delta against the peer's objects")
	fetchInto(t, s, both, first)
	apply(t, late, both, peerA)
	pack = packOf(t, both)
	_, names = packsOf(t, late)
	assert.Contains(t, names, "pack-"+hex.EncodeToString(pack[len(pack)-20:]), "the receiver adopted the pack")
	assert.Equal(t, folderFiles(t, s.Dir()), folderFiles(t, late.Dir()))
	fsck(t, late)
}
