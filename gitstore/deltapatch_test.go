package gitstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPatchDeltaExactSameAsGoGit: deltas made by go-git's encoder (copies
// of every size and offset width, inserts, the 64 KiB copy of size 0) and
// from an empty base give the same result as go-git's PatchDelta, in a
// buffer of exactly the result's size; every truncation of a delta, a
// wrong base size and a target over the limit are refused.
func TestPatchDeltaExactSameAsGoGit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	for i, sizes := range [][2]int{{10, 10}, {1000, 1200}, {70_000, 70_100}, {400_000, 400_040}, {3 << 20, 3<<20 + 5}} {
		base := random(sizes[0])
		// The target: pieces of base moved around, with new bytes between.
		var target []byte
		for len(target) < sizes[1] {
			off := rng.IntN(len(base))
			n := min(rng.IntN(len(base)-off)+1, sizes[1]-len(target))
			target = append(target, base[off:off+n]...)
			target = append(target, random(rng.IntN(40))...)
		}
		delta := packfile.DiffDelta(base, target)
		want, err := packfile.PatchDelta(base, delta)
		require.NoError(t, err)
		require.Equal(t, target, want)
		got, err := patchDeltaExact(base, delta, 1<<30)
		require.NoError(t, err, "case %d", i)
		assert.True(t, bytes.Equal(want, got), "case %d: same result as go-git", i)
		assert.Equal(t, len(got), cap(got), "case %d: allocated once, exactly", i)

		_, err = patchDeltaExact(base, delta, int64(len(target)-1))
		assert.Error(t, err, "case %d: target over the limit", i)
		_, err = patchDeltaExact(base[1:], delta, 1<<30)
		assert.Error(t, err, "case %d: wrong base", i)
		if len(delta) < 5000 {
			for cut := 0; cut < len(delta); cut++ {
				_, err := patchDeltaExact(base, delta[:cut], 1<<30)
				assert.Error(t, err, "case %d: delta cut at %d", i, cut)
			}
		}
	}

	// An empty base: inserts only (git may write such a delta).
	delta := []byte{0, 5, 5, 'h', 'e', 'l', 'l', 'o'}
	got, err := patchDeltaExact(nil, delta, 100)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))
	_, err = patchDeltaExact(nil, []byte{0, 5, 0x90, 5}, 100)
	assert.Error(t, err, "a copy from an empty base")
	_, err = patchDeltaExact([]byte("x"), []byte{1, 1, 0}, 100)
	assert.Error(t, err, "command 0 is reserved")
}

// BenchmarkPatchDelta400K: one version of a 400 KB tree resolved from the
// previous one (one entry changed), as a bundle's tree deltas are, by
// go-git's PatchDelta and by patchDeltaExact; B/op is the point.
func BenchmarkPatchDelta400K(b *testing.B) {
	base := bytes.Repeat([]byte("100644 file-name.txt\x0001234567890123456789"), 400_000/40)
	target := bytes.Clone(base)
	copy(target[200_000:], "changed!")
	delta := packfile.DiffDelta(base, target)
	for _, impl := range []struct {
		name string
		f    func() ([]byte, error)
	}{
		{"go-git", func() ([]byte, error) { return packfile.PatchDelta(base, delta) }},
		{"exact", func() ([]byte, error) { return patchDeltaExact(base, delta, 1<<30) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				out, err := impl.f()
				if err != nil || len(out) != len(target) {
					b.Fatal(fmt.Sprint(err))
				}
			}
		})
	}
}
