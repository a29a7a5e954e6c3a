package gitstore

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
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
	var lost []lostEntry
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
			lost = append(lost, lostEntry{p, lose, loser})
		}
	}
	// The copies are named once every path has its merged entry, so that a
	// name already taken is known whatever the order.
	var conflicts []string
	for _, l := range lost {
		if cn := placeCopy(out, l.path, l.entry, l.by); cn != "" {
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
		e := out[p]
		delete(out, p)
		if cn := placeCopy(out, p, e, c); cn != "" {
			conflicts = append(conflicts, cn)
		}
	}
	return conflicts, nil
}

// lostEntry is the losing side of a conflict at path: its entry, and the
// commit that made it.
type lostEntry struct {
	path  string
	entry fileEntry
	by    *object.Commit
}

// conflictMarker finds the ".sync-conflict-YYYYMMDD-HHMMSS-DEV" part of a
// conflict copy's name (DEV possibly followed by "-" and 7 hex digits of
// the content, see placeCopy).
var conflictMarker = regexp.MustCompile(`\.sync-conflict-(\d{8}-\d{6})-([A-Za-z0-9_-]*)`)

// placeCopy writes e, the losing entry of a conflict at p made by commit
// by, into out under its conflict copy name and returns that name ("" when
// none could be given; e then stays in the history only).
//
// The name is conflictName(p, by), except in two cases, where it is the
// conflict copy name of the original file with "-" and the first 7 hex
// digits of e's blob after the device: when p is itself a conflict copy
// (the same copy name holding different contents on two devices: naming
// the loser after p would nest copies of copies, each merge adding a
// suffix), and when the plain name is taken by another content (the same
// device made two versions of the file in the same second). Equal contents
// get equal names, different ones different names, on every device.
func placeCopy(out map[string]fileEntry, p string, e fileEntry, by *object.Commit) string {
	cn := p
	if !isConflictCopy(p) {
		cn = conflictName(p, by)
		if have, ok := out[cn]; !ok || have == e {
			out[cn] = e
			return cn
		}
	}
	cn = withContent(cn, e.hash)
	if have, ok := out[cn]; ok && have != e {
		return "" // 7 hex digits alike, or a copy the user edited on both sides
	}
	out[cn] = e
	return cn
}

// isConflictCopy reports whether p's file name is a conflict copy's.
func isConflictCopy(p string) bool { return conflictMarker.MatchString(path.Base(p)) }

// withContent returns conflict copy name cn with the device part cut to 7
// characters and followed by "-" and the first 7 hex digits of blob h.
func withContent(cn string, h plumbing.Hash) string {
	dir, base := path.Split(cn)
	loc := conflictMarker.FindStringSubmatchIndex(base)
	dev := base[loc[4]:loc[5]]
	if len(dev) > 7 {
		dev = dev[:7]
	}
	return dir + base[:loc[0]] + ".sync-conflict-" + base[loc[2]:loc[3]] + "-" + dev + "-" +
		h.String()[:7] + base[loc[1]:]
}

func nextSlash(p string, i int) int {
	j := strings.IndexByte(p[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// othersMerge reports whether, of two diverged heads holding the same files
// (the same tree), the other side merges: the one with the smaller head
// merges, and the other fast-forwards to its merge once it arrives. Merging
// on both sides too, with three or more peers each merging whatever arrived
// last, made new heads faster than they could meet. Who merges depends on
// the two heads of the moment, so a head held here that waited for the
// peer may need merging here once our head changed: see
// [Store.IntegrateHead].
func othersMerge(ourC, theirC *object.Commit) bool {
	return ourC.TreeHash == theirC.TreeHash && ourC.Hash.String() > theirC.Hash.String()
}

// IntegrateHead integrates commit h, held here already, into main as
// [Store.ApplyBundle] does once a bundle is stored (peer as there): local
// edits committed first, then fast-forward or merge, and checkout. It is
// for a head a peer announces that needs no fetch: one that came in a
// bundle of its own or of another peer while the rule of the package
// documentation ("Merge rule") had the other side merge, when our head has
// changed since. UpToDate, without a scan, when h is in main's history or
// it is still the other side's turn to merge. An error when h is not here.
func (s *Store) IntegrateHead(ctx context.Context, h Hash, peer string) (ApplyResult, error) {
	if _, err := peerRef(peer); err != nil {
		return ApplyResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ApplyResult{}, ErrClosed
	}
	if err := ctxErr(ctx); err != nil {
		return ApplyResult{}, err
	}
	theirs := h.plumbing()
	ours, err := s.refLocked(mainRef)
	if err != nil {
		return ApplyResult{}, err
	}
	res := ApplyResult{Head: fromPlumbing(ours), PeerHead: h, Kind: UpToDate}
	theirC, err := s.commitLocked(theirs)
	if err != nil {
		return res, err
	}
	if ours == theirs {
		return res, nil
	}
	if !ours.IsZero() {
		ourC, err := s.commitLocked(ours)
		if err != nil {
			return res, err
		}
		if othersMerge(ourC, theirC) {
			return res, nil
		}
		if anc, err := theirC.IsAncestor(ourC); err != nil || anc {
			return res, err
		}
	}
	if _, err := s.scanLocked(ctx); err != nil {
		return res, err
	}
	res, err = s.integrateReportLocked(ctx, theirs, peer)
	res.PeerHead = h
	return res, err
}
