package gitstore

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// maxTargetedPaths is the number of touched paths above which the watcher
// runs a full Scan instead of a targeted one.
const maxTargetedPaths = 1000

// scanPaths is Scan restricted to the folder's parts that the slash paths
// touched (the watcher's events): see scanPathsLocked.
func (s *Store) scanPaths(ctx context.Context, paths []string) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.scanPathsLocked(ctx, paths)
}

// scanPathsLocked commits what changed at the given slash paths, as Scan
// would, without walking the rest of the folder. For each path it lists the
// path's parent directory (one level: files added, changed or gone, and
// subdirectories gone or new) and walks the path itself fully when it is a
// directory; a new subdirectory is walked fully too. A parent that no
// longer exists is replaced by its nearest existing ancestor. Whenever the
// case is unusual (the root itself, too many paths, a nested history or a
// symlink on the way) it runs a full scan instead.
func (s *Store) scanPathsLocked(ctx context.Context, paths []string) ([]Change, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	if len(paths) > maxTargetedPaths {
		return s.scanLocked(ctx)
	}
	if _, err := os.Lstat(s.gitDir); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInitialized, err)
	}
	shallow := map[string]bool{}
	deep := map[string]bool{}
	for _, p := range paths {
		if p == "" {
			return s.scanLocked(ctx)
		}
		if fi, err := os.Lstat(s.abs(p)); err == nil && fi.IsDir() {
			deep[p] = true
		}
		d := parentDir(p)
		for d != "" {
			if fi, err := os.Lstat(s.abs(d)); err == nil && fi.IsDir() {
				break
			}
			d = parentDir(d)
		}
		shallow[d] = true
	}
	head, root, err := s.headTreeLocked()
	if err != nil {
		return nil, err
	}
	s.beginPackLocked()
	defer s.abortPackLocked()
	s.beginScanSkipsLocked()

	start := time.Now()
	racyFrom := s.racyFromLocked(start) // read before any file is looked at
	found := map[string]fileEntry{}
	tracked := map[string]fileEntry{} // the tracked files of the parts scanned
	ign := newIgnoreScope()           // its dirs map collects every rule read
	for _, d := range sortedKeys(deep) {
		if underAny(d, deep, false) {
			continue // walked as part of a parent
		}
		parent, st := s.scopeOfParentLocked(d, ign)
		if st != scopeWalk {
			continue // d's parent's listing sees what became of d
		}
		if n := root.node(d); n != nil {
			n.flatten(d+"/", tracked)
		}
		if err := s.walkLocked(ctx, d, s.abs(d), found, start, racyFrom, parent); err != nil {
			return nil, err
		}
	}
	for _, d := range sortedKeys(shallow) {
		if underAny(d, deep, true) {
			continue
		}
		parent := ign
		if d != "" {
			var st scopeState
			switch parent, st = s.scopeOfParentLocked(d, ign); st {
			case scopeIgnored:
				continue
			case scopeUnusual:
				return s.scanLocked(ctx)
			}
		}
		present := map[string]bool{}
		one := parent
		one.subdirs = present
		if err := s.walkLocked(ctx, d, s.abs(d), found, start, racyFrom, one); err != nil {
			return nil, err
		}
		n := root.node(d)
		if n == nil {
			n = newDirNode()
		}
		prefix := ""
		if d != "" {
			prefix = d + "/"
		}
		for name, e := range n.files {
			tracked[prefix+name] = e
		}
		for name, sub := range n.dirs {
			if !present[prefix+name] {
				sub.flatten(prefix+name+"/", tracked) // gone, or skipped now
			}
		}
		// New subdirectories: walk them whole (files may have been created
		// in them before the watcher watched them).
		inD := ign
		inD.patterns = ign.dirs[d]
		for _, sd := range sortedKeys(present) {
			if _, known := n.dirs[path.Base(sd)]; !known && !deep[sd] {
				if err := s.walkLocked(ctx, sd, s.abs(sd), found, start, racyFrom, inD); err != nil {
					return nil, err
				}
			}
		}
	}

	changes, err := s.commitFoundLocked(ctx, head, root, tracked, found, ign, root.count())
	if err == nil {
		// The skips reported before in the parts just looked at are replaced.
		s.endScanSkipsLocked(func(p string) bool {
			return underAny(p, deep, true) || shallow[parentDir(p)]
		})
	}
	return changes, diskFullError(err)
}

// commitFoundLocked commits, one file per commit, the difference between
// tracked (main's files in the part of the folder just walked) and found
// (what the walk found there), after the mass-delete guard (total = the
// number of tracked files in the whole folder; the guard also counts the
// deletions local scans committed in the last minute, see
// checkLocalDeleteLocked). A tracked file that is not
// found because the ignore rules now exclude it stays as last committed.
func (s *Store) commitFoundLocked(ctx context.Context, head plumbing.Hash, root *dirNode,
	tracked, found map[string]fileEntry, ign ignoreScope, total int) ([]Change, error) {
	for p := range s.fst.unsettled {
		// Left as last committed (or not added yet); the watcher comes back.
		if e, ok := tracked[p]; ok {
			found[p] = e
		}
	}
	s.keepSkippedLocked(root, tracked, found)
	s.fixModesLocked(tracked, found)
	s.catchUpStaleLocked(tracked, found)
	var dels, puts []pendingChange
	for p, e := range tracked {
		if _, ok := found[p]; !ok && !ign.covers(p) {
			dels = append(dels, pendingChange{ActionDelete, p, e})
		}
	}
	permitted := s.guard.massDeleteOnce
	if err := s.checkLocalDeleteLocked(len(dels), total); err != nil {
		return nil, err
	}
	confirmed := permitted && !s.guard.massDeleteOnce // the user saw these deletions
	for p, e := range found {
		old, ok := tracked[p]
		switch {
		case !ok:
			puts = append(puts, pendingChange{ActionAdd, p, e})
		case old != e:
			puts = append(puts, pendingChange{ActionModify, p, e})
		}
	}
	for p := range tracked {
		if _, ok := found[p]; !ok {
			s.fst.stats.drop(p)
		}
	}
	sort.Slice(dels, func(i, j int) bool { return dels[i].path < dels[j].path })
	sort.Slice(puts, func(i, j int) bool { return puts[i].path < puts[j].path })
	changes, err := s.commitChangesLocked(ctx, head, root, append(dels, puts...))
	deleted, at := 0, time.Time{}
	for _, c := range changes {
		if c.Action == ActionDelete {
			deleted, at = deleted+1, c.Time
		}
	}
	if !confirmed {
		s.recordLocalDeletesLocked(deleted, total, at)
	}
	if serr := s.saveStatCacheLocked(); serr != nil && err == nil {
		err = fmt.Errorf("gitstore: save stat cache: %w", serr)
	}
	return changes, err
}

// scopeState says whether a full scan walks a directory.
type scopeState int

const (
	scopeWalk    scopeState = iota // walked
	scopeIgnored                   // excluded by the ignore rules (itself or a parent)
	scopeUnusual                   // missing, not a plain directory, an unsyncable name or a nested history (itself or a parent)
)

// scopeOfParentLocked returns the ignore scope in force in the parent of the
// directory d (the scope walkLocked wants for d), entering every directory
// from the root and recording their rules in ign.dirs, and whether a full
// scan walks d.
func (s *Store) scopeOfParentLocked(d string, ign ignoreScope) (ignoreScope, scopeState) {
	sc := ign.enter(s.dir, "", s.opts.log)
	cur := ""
	for _, name := range strings.Split(d, "/") {
		next := name
		if cur != "" {
			next = cur + "/" + name
		}
		abs := s.abs(next)
		fi, err := os.Lstat(abs)
		if err != nil || !fi.IsDir() || validComponent(name) != nil || strings.HasPrefix(name, tmpPrefix) ||
			cur == "" && name == GitDirName ||
			exists(filepath.Join(abs, GitDirName)) || exists(filepath.Join(abs, ".git")) {
			return sc, scopeUnusual
		}
		if sc.skip(next, true) {
			return sc, scopeIgnored
		}
		if next == d {
			break
		}
		sc = sc.enter(abs, next, s.opts.log)
		cur = next
	}
	return sc, scopeWalk
}

// underAny reports whether d is inside one of the directories in set (or is
// one of them, when orSame).
func underAny(d string, set map[string]bool, orSame bool) bool {
	if orSame && set[d] {
		return true
	}
	for p := parentDir(d); p != ""; p = parentDir(p) {
		if set[p] {
			return true
		}
	}
	return d != "" && set[""]
}

// parentDir returns the slash path of p's parent, "" for the root.
func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// abs returns the absolute path of the slash path p inside the folder.
func (s *Store) abs(p string) string { return filepath.Join(s.dir, filepath.FromSlash(p)) }

// node returns the directory at slash path p ("" = d itself), nil if none.
func (d *dirNode) node(p string) *dirNode {
	if p == "" {
		return d
	}
	for _, c := range strings.Split(p, "/") {
		if d = d.dirs[c]; d == nil {
			return nil
		}
	}
	return d
}

// count returns the number of files under d.
func (d *dirNode) count() int {
	n := len(d.files)
	for _, sub := range d.dirs {
		n += sub.count()
	}
	return n
}
