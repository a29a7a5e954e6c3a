package gitstore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// mergeLocked computes the three-way merge of our commit and theirs against
// their best common ancestor (an empty tree when the histories are
// unrelated). It returns the merged flat tree and the conflict copies made,
// sorted. The result depends only on the two commits, never on which side
// runs it, so peers merging each other's heads get identical trees.
func (s *Store) mergeLocked(ourC, theirC *object.Commit, ours map[string]fileEntry) (map[string]fileEntry, []string, error) {
	bases, err := ourC.MergeBase(theirC)
	if err != nil {
		return nil, nil, fmt.Errorf("gitstore: merge base: %w", err)
	}
	base := map[string]fileEntry{}
	if len(bases) > 0 {
		sort.Slice(bases, func(i, j int) bool { return bases[i].Hash.String() < bases[j].Hash.String() })
		t, err := s.loadTreeLocked(bases[0].TreeHash)
		if err != nil {
			return nil, nil, err
		}
		base = t.flat()
	}
	tt, err := s.loadTreeLocked(theirC.TreeHash)
	if err != nil {
		return nil, nil, err
	}
	theirs := tt.flat()

	paths := map[string]bool{}
	for _, m := range []map[string]fileEntry{base, ours, theirs} {
		for p := range m {
			paths[p] = true
		}
	}
	// The paths both sides changed differently: who touched them last is
	// read in one walk of each side's history (lastTouchesLocked).
	var both []string
	for _, p := range sortedKeys(paths) {
		b, hb := base[p]
		o, ho := ours[p]
		t, ht := theirs[p]
		if ho && ht && o != t && !(hb && (b == o || b == t)) {
			both = append(both, p)
		}
	}
	lastOurs, err := s.lastTouchesLocked(ourC, both)
	if err != nil {
		return nil, nil, err
	}
	lastTheirs, err := s.lastTouchesLocked(theirC, both)
	if err != nil {
		return nil, nil, err
	}
	var leads map[string]int64
	if len(both) > 0 {
		if leads, err = s.clockLeadsLocked(ourC, theirC); err != nil {
			return nil, nil, err
		}
	}
	out := map[string]fileEntry{}
	var conflicts []string
	for _, p := range sortedKeys(paths) {
		b, hb := base[p]
		o, ho := ours[p]
		t, ht := theirs[p]
		switch {
		case ho == ht && o == t: // same on both sides (or deleted on both)
			if ho {
				out[p] = o
			}
		case hb == ho && b == o: // only theirs changed
			if ht {
				out[p] = t
			}
		case hb == ht && b == t: // only ours changed
			if ho {
				out[p] = o
			}
		case !ho: // we deleted, they modified: keep the modification
			out[p] = t
		case !ht:
			out[p] = o
		default: // both changed differently
			lo, lt := lastOurs[p], lastTheirs[p]
			win, lose, loser := o, t, lt
			if newerWithLeads(lt, lo, leads) {
				win, lose, loser = t, o, lo
			}
			out[p] = win
			cn := conflictName(p, loser)
			out[cn] = lose
			conflicts = append(conflicts, cn)
		}
	}

	more, err := s.fileDirConflictsLocked(ourC, theirC, ours, out)
	if err != nil {
		return nil, nil, err
	}
	conflicts = append(conflicts, more...)
	sort.Strings(conflicts)
	return out, conflicts, nil
}

// fileDirConflictsLocked handles, in the merged tree out, a file on one side
// where the other side has a directory: the directory keeps the name, the
// file becomes a conflict copy. It returns the copies made.
func (s *Store) fileDirConflictsLocked(ourC, theirC *object.Commit, ours, out map[string]fileEntry) ([]string, error) {
	dirs := map[string]bool{}
	for p := range out {
		for i := strings.IndexByte(p, '/'); i >= 0; i = nextSlash(p, i) {
			dirs[p[:i]] = true
		}
	}
	var fromOurs, fromTheirs []string
	for _, p := range sortedKeys(out) {
		if !dirs[p] {
			continue
		}
		if e, ok := ours[p]; ok && e == out[p] {
			fromOurs = append(fromOurs, p)
		} else {
			fromTheirs = append(fromTheirs, p)
		}
	}
	touchedOurs, err := s.lastTouchesLocked(ourC, fromOurs)
	if err != nil {
		return nil, err
	}
	touchedTheirs, err := s.lastTouchesLocked(theirC, fromTheirs)
	if err != nil {
		return nil, err
	}
	var conflicts []string
	for _, p := range append(fromOurs, fromTheirs...) {
		c := touchedOurs[p]
		if c == nil {
			c = touchedTheirs[p]
		}
		cn := conflictName(p, c)
		out[cn] = out[p]
		delete(out, p)
		conflicts = append(conflicts, cn)
	}
	return conflicts, nil
}

func nextSlash(p string, i int) int {
	j := strings.IndexByte(p[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
