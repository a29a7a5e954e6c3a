package gitstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errDup = errors.New("duplicate")

// checkTree runs treeVersions.check and returns the entries it looked at.
func checkTree(v treeVersions, dir string, raw []byte) ([]rawTreeEntry, error) {
	var seen []rawTreeEntry
	err := v.check(dir, raw, func(mode filemode.FileMode, name []byte, h plumbing.Hash) error {
		seen = append(seen, rawTreeEntry{mode, string(name), h})
		return nil
	}, func(name []byte, h plumbing.Hash, reason string) error {
		if name == nil {
			return errors.New(reason)
		}
		return fmt.Errorf("%w: %s", errDup, name)
	})
	return seen, err
}

// TestTreeVersionsSameAsFullCheck: random successions of versions of a
// directory's tree (entries added, removed, renamed, changed; sometimes an
// unrelated tree; sometimes a duplicate name, of a file and a directory
// too): the incremental check refuses exactly the versions a check of
// every entry refuses, every entry it does not look at is an entry of the
// version validated before it (so it was checked then), and it keeps the
// entries' places right.
func TestTreeVersionsSameAsFullCheck(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 15))
	hash := func() plumbing.Hash {
		return plumbing.ComputeHash(plumbing.BlobObject, fmt.Appendf(nil, "%d", rng.Int()))
	}
	for round := range 300 {
		v := treeVersions{}
		var ents []rawTreeEntry
		for i := range rng.IntN(40) {
			ents = append(ents, rawTreeEntry{filemode.Regular, fmt.Sprintf("f%04d", i*3), hash()})
		}
		var valid []rawTreeEntry // the version validated last
		for step := range 30 {
			next := slices.Clone(ents)
			switch op := rng.IntN(10); {
			case op < 3 || len(next) == 0:
				next = append(next, rawTreeEntry{filemode.Regular, fmt.Sprintf("f%04d", rng.IntN(200)), hash()})
			case op < 5:
				i := rng.IntN(len(next))
				next = slices.Delete(next, i, i+1)
			case op < 7:
				next[rng.IntN(len(next))].hash = hash()
			case op < 8:
				i := rng.IntN(len(next))
				next[i].name = fmt.Sprintf("g%04d", rng.IntN(200))
			case op < 9: // a directory of the same name as a file
				i := rng.IntN(len(next))
				next = append(next, rawTreeEntry{filemode.Dir, next[i].name, hash()})
			default: // unrelated
				next = nil
				for i := range rng.IntN(20) {
					next = append(next, rawTreeEntry{filemode.Executable, fmt.Sprintf("u%03d", i), hash()})
				}
			}
			slices.SortStableFunc(next, func(a, b rawTreeEntry) int {
				return compareTreeEntries(treeEntry{name: []byte(a.name), mode: uint32(a.mode)}, treeEntry{name: []byte(b.name), mode: uint32(b.mode)})
			})
			raw := rawTree(next...)
			_, fullErr := checkTree(treeVersions{}, "d", raw)
			looked, err := checkTree(v, "d", raw)
			require.Equal(t, fullErr != nil, err != nil, "round %d step %d: full %v, incremental %v", round, step, fullErr, err)
			if err != nil {
				assert.ErrorIs(t, err, errDup)
				// A refused version is not the validated one: go on from
				// the last good one.
				v = treeVersions{}
				if valid != nil {
					_, err := checkTree(v, "d", rawTree(valid...))
					require.NoError(t, err)
				}
				continue
			}
			for _, e := range next {
				if !slices.Contains(looked, e) {
					assert.Contains(t, valid, e, "round %d step %d: an entry neither looked at nor validated before", round, step)
				}
			}
			var want []int32
			for pos := 0; pos < len(raw); {
				want = append(want, int32(pos))
				_, _, _, rest, ok := parseTreeEntry(raw[pos:])
				require.True(t, ok)
				pos = len(raw) - len(rest)
			}
			assert.Equal(t, want, append([]int32(nil), v["d"].offs...), "entry places")
			assert.Len(t, v["d"].names, len(next))
			ents, valid = next, next
		}
	}
}

// TestTreeVersionsLooksAtChangesOnly: a directory growing one file at a
// time in name order (a first sync of one commit per file) is checked one
// entry per version, not the whole tree each time.
func TestTreeVersionsLooksAtChangesOnly(t *testing.T) {
	v := treeVersions{}
	var ents []rawTreeEntry
	looked := 0
	for i := range 2000 {
		ents = append(ents, rawTreeEntry{filemode.Regular, fmt.Sprintf("file%05d.txt", i), plumbing.ComputeHash(plumbing.BlobObject, fmt.Appendf(nil, "%d", i))})
		seen, err := checkTree(v, "docs", rawTree(ents...))
		require.NoError(t, err)
		looked += len(seen)
	}
	// Each new version re-parses at most the entry where it starts to
	// differ (the last old one, which the new one's prefix may cut), plus
	// the new one.
	assert.LessOrEqual(t, looked, 2*2000)
	_, err := checkTree(v, "docs", rawTree(append(ents, ents[7])...))
	assert.ErrorIs(t, err, errDup, "a duplicate of an entry far back is still found")
}
