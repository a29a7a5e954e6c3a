package gitstore

import (
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// treeVersions lets ApplyBundle's validation check each new tree in time
// that follows what changed, not the tree's size. With one commit per file,
// a history of N files in one directory holds N versions of that
// directory's tree, each one entry apart: checking every entry of every
// version visits N²/2 entries (a first sync of 5,000-file folders: 250
// million), while the changes are N.
//
// It keeps, per directory path, the last version of that directory's tree
// validated (its raw bytes, where each entry starts, and the set of its
// names). A new version at the same path is compared with it as bytes:
// the entries within the common prefix and suffix are byte for byte
// entries of the validated version, so their names were checked as safe,
// their modes accepted, and the objects they name were already queued for
// validation. Only the entries in between (the middle) are parsed and
// checked as every entry was before (name, mode, the object it names), and
// duplicates stay exact: the validated version's middle names leave the
// name set, the new middle's names enter it, and a name already there is a
// duplicate. So the checks are the same as checking every entry; only
// entries equal to checked ones are not looked at again. Any validated
// version will do as the reference (a revert, a rename, an unrelated tree:
// the middle is then larger), so the result never depends on the order
// trees are met in.
type treeVersions map[string]*treeVersion

type treeVersion struct {
	raw   []byte              // the tree's content (never modified: contents are not reused)
	offs  []int32             // where each entry starts in raw, in order
	names map[string]struct{} // the entries' names
}

// treeEntryFunc checks one entry of a tree being validated (the entries of
// the middle only).
type treeEntryFunc func(mode filemode.FileMode, name []byte, h plumbing.Hash) error

// treeBadFunc makes the error for a malformed tree (name nil) or a
// duplicate name.
type treeBadFunc func(name []byte, h plumbing.Hash, reason string) error

// check validates data, the raw content of a tree at directory path dir,
// calling entry for each entry not byte-identical to one of the last
// version validated at dir, and makes data that version.
func (v treeVersions) check(dir string, data []byte, entry treeEntryFunc, bad treeBadFunc) error {
	prev := v[dir]
	if prev == nil || len(prev.offs) == 0 {
		offs, names, err := parseEntries(data, 0, nil, entry, bad)
		if err != nil {
			return err
		}
		tv := &treeVersion{raw: data, offs: offs, names: make(map[string]struct{}, len(names))}
		if err := tv.add(names, offs, data, bad); err != nil {
			return err
		}
		v[dir] = tv
		return nil
	}
	return prev.update(data, entry, bad)
}

// parseEntries checks the entries of data from pos to its end (stop nil)
// or until pos reaches a place stop accepts, and returns where each starts
// and its name.
func parseEntries(data []byte, pos int, stop func(pos int) bool, entry treeEntryFunc, bad treeBadFunc) ([]int32, [][]byte, error) {
	var offs []int32
	var names [][]byte
	for pos < len(data) && (stop == nil || !stop(pos)) {
		mode, name, h, rest, ok := parseTreeEntry(data[pos:])
		if !ok {
			return nil, nil, bad(nil, h, "malformed tree")
		}
		if err := entry(mode, name, h); err != nil {
			return nil, nil, err
		}
		offs, names = append(offs, int32(pos)), append(names, name)
		pos = len(data) - len(rest)
	}
	return offs, names, nil
}

// add puts names (of the entries at offs in data) into the name set; a
// name already there is a duplicate entry.
func (tv *treeVersion) add(names [][]byte, offs []int32, data []byte, bad treeBadFunc) error {
	for i, name := range names {
		if _, dup := tv.names[string(name)]; dup {
			_, _, h, _, _ := parseTreeEntry(data[offs[i]:])
			return bad(name, h, "duplicate tree entry")
		}
		tv.names[string(name)] = struct{}{}
	}
	return nil
}

// update makes data, a new version of tv's directory, the validated one,
// checking only its middle (see treeVersions).
func (tv *treeVersion) update(data []byte, entry treeEntryFunc, bad treeBadFunc) error {
	old, offs := tv.raw, tv.offs
	n := len(offs)
	lo, tail := affixes(old, data)
	// Entries [0, p) lie wholly in the common prefix; the middle starts
	// at offs[p], a place where both versions start an entry.
	p := max(sort.Search(n, func(k int) bool { return int(offs[k]) > lo })-1, 0)
	// Entries [q, n) of the old version lie wholly in the common suffix;
	// in data they start shift bytes later.
	q := sort.Search(n, func(k int) bool { return int(offs[k]) >= len(old)-tail })
	shift := len(data) - len(old)
	suffixAt := len(old) + shift
	if q < n {
		suffixAt = int(offs[q]) + shift
	}
	// The new middle ends where data is back on an entry start of the old
	// version inside the common suffix (usually at suffixAt at once); k
	// is then that entry (n: the end).
	k := q
	stop := func(pos int) bool {
		if pos < suffixAt {
			return false
		}
		at := pos - shift
		for k < n && int(offs[k]) < at {
			k++
		}
		return k < n && int(offs[k]) == at
	}
	mid, names, err := parseEntries(data, int(offs[p]), stop, entry, bad)
	if err != nil {
		return err
	}
	// The old middle's names leave the set; then a name of the new middle
	// still in it is a true duplicate.
	for j := p; j < k; j++ {
		_, name, _, _, _ := parseTreeEntry(old[offs[j]:])
		delete(tv.names, string(name))
	}
	if err := tv.add(names, mid, data, bad); err != nil {
		return err
	}
	suffix := offs[k:]
	out := make([]int32, 0, p+len(mid)+len(suffix))
	out = append(append(out, offs[:p]...), mid...)
	for _, o := range suffix {
		out = append(out, o+int32(shift))
	}
	tv.raw, tv.offs = data, out
	return nil
}
