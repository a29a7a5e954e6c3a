package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// The folder walk of Scan (and of the watcher's targeted scans) runs in two
// phases. First a pool of walkWorkers() goroutines lists directories and
// Lstats their entries in parallel, one directory per job (git does the same
// with core.preloadIndex): each job applies the skip rules, looks every
// regular file up in the stat cache and compares it with main's tree node
// for that directory, and keeps only what may differ (a file whose cache
// entry does not match, or that main does not have, or has with another
// blob or mode; a tracked name no longer found), and deletes our stale
// temporary files as a serial walk would. Nothing is written to the store
// and no shared state changes during this phase (the stat cache and the
// tree are only read), so the store's lock, held by the caller, covers it. Then, serially and in path order, the candidates are
// resolved: changed files are hashed into the pack being written, and the
// result is handed to commitFoundLocked as two small maps. An unchanged
// file thus costs one Lstat and one map lookup, done in parallel, and no
// allocation for its path.

// walkWorkers is the number of directories listed at once.
func walkWorkers() int {
	return min(max(2*runtime.GOMAXPROCS(0), 4), 8)
}

// dirScan is what the walk found in one directory.
type dirScan struct {
	rel      string              // slash path, "" = root
	node     *dirNode            // main's tree at rel (nil: compare nothing, report every file)
	patterns []gitignore.Pattern // ignore rules in force in rel
	// changed lists the files that may differ from node (every file when
	// node is nil), in the order the directory listed them.
	changed []scanFile
	// gone lists the names of node's files not found as a file here (gone,
	// skipped, or now something else); goneDirs those of node's
	// subdirectories not walked.
	gone, goneDirs []string
	// subdirs lists, in one-level mode, the subdirectories a full walk
	// would have entered (slash paths).
	subdirs []string
	// regular lists the names of the regular files found, hits the number
	// of them whose stat cache entry matched.
	regular []string
	hits    int
}

// scanFile is a file (regular, or a symlink when allowed) that may differ
// from main.
type scanFile struct {
	path   string
	fi     fs.FileInfo
	hash   plumbing.Hash // the cached blob hash, or the symlink's
	cached bool          // hash is valid (stat cache hit, or a symlink)
	target string        // a symlink's target
}

// walkJob is one directory to list.
type walkJob struct {
	rel, abs string
	node     *dirNode
	parent   ignoreScope // the scope in force in the parent (entered by the job)
}

// walkTree lists absDir (slash path rel) and, unless oneLevel, every
// directory under it that Scan walks, comparing each with node (main's tree
// at rel; nil reports every file as changed). parent is the ignore scope in
// force in absDir's parent; its dirs and subdirs maps are not used. start is
// the scan's start (for the stale temporary file rule).
func (s *Store) walkTree(ctx context.Context, rel, absDir string, node *dirNode, parent ignoreScope,
	oneLevel bool, start time.Time) ([]*dirScan, error) {
	parent.dirs, parent.subdirs = nil, nil
	w := &walkPool{s: s, ctx: ctx, start: start, oneLevel: oneLevel}
	w.cond = sync.NewCond(&w.mu)
	w.jobs = []walkJob{{rel: rel, abs: absDir, node: node, parent: parent}}
	n := 1
	if !oneLevel {
		n = walkWorkers()
	}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work()
		}()
	}
	wg.Wait()
	if w.err != nil {
		return nil, w.err
	}
	return w.out, nil
}

// walkPool is the shared state of one walkTree.
type walkPool struct {
	s        *Store
	ctx      context.Context
	start    time.Time
	oneLevel bool

	mu   sync.Mutex
	cond *sync.Cond
	jobs []walkJob // to do (taken last first: depth first keeps it short)
	busy int       // jobs taken and not finished
	out  []*dirScan
	err  error
}

func (w *walkPool) work() {
	w.mu.Lock()
	for {
		for len(w.jobs) == 0 && w.busy > 0 && w.err == nil {
			w.cond.Wait()
		}
		if len(w.jobs) == 0 || w.err != nil {
			w.cond.Broadcast()
			w.mu.Unlock()
			return
		}
		j := w.jobs[len(w.jobs)-1]
		w.jobs = w.jobs[:len(w.jobs)-1]
		w.busy++
		w.mu.Unlock()

		ds, subs, err := w.s.listDir(w.ctx, j, w.start, w.oneLevel)

		w.mu.Lock()
		w.busy--
		switch {
		case err != nil:
			if w.err == nil {
				w.err = err
			}
		case ds != nil:
			w.out = append(w.out, ds)
			w.jobs = append(w.jobs, subs...)
		}
		w.cond.Broadcast()
	}
}

// listDir lists one directory: see walkTree. It returns nil (and no error)
// for a directory other than the walk's first that vanished, and the
// subdirectories to walk.
// (Over 120 lines: one pass over the directory's entries, whose ignore
// rules, skip records and per-entry checks share that directory's state.)
func (s *Store) listDir(ctx context.Context, j walkJob, start time.Time, oneLevel bool) (*dirScan, []walkJob, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, nil, err
	}
	entries, err := readDirUnsorted(j.abs)
	if err != nil {
		if j.rel != "" && errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil // vanished during the scan
		}
		if j.rel == "" {
			return nil, nil, fmt.Errorf("gitstore: scan: %w", err)
		}
		s.noteSkip(j.rel, err) // an unreadable directory: skipped, reported
		return nil, nil, nil
	}
	ign, err := j.parent.enterDir(j.abs, j.rel, s.opts.log)
	if err != nil {
		s.noteSkip(j.rel, err) // its rules are unknown: skipped, reported
		return nil, nil, nil
	}
	ds := &dirScan{rel: j.rel, node: j.node, patterns: ign.patterns}
	var subs []walkJob
	prefix := ""
	if j.rel != "" {
		prefix = j.rel + "/"
	}
	// key is prefix+name, rebuilt in place: the stat cache lookup of an
	// unchanged file allocates nothing.
	key := make([]byte, 0, len(prefix)+64)
	key = append(key, prefix...)
	pathOf := func(name string) string { return prefix + name }
	var matchedFiles, matchedDirs int // node's files (dirs) found as such
	absPrefix := j.abs + string(filepath.Separator)
	for _, de := range entries {
		name := de.Name()
		if j.rel == "" && name == GitDirName {
			continue
		}
		if strings.HasPrefix(name, tmpPrefix) {
			removeStaleTemp(absPrefix+name, de, start, s.opts.log)
			continue
		}
		if err := validComponent(name); err != nil {
			s.opts.log.Debug("gitstore: scan: skipping unsyncable name", "path", pathOf(name), "err", err)
			continue
		}
		if len(ign.patterns) > 0 && ign.skip(pathOf(name), de.IsDir()) {
			continue
		}
		abs := absPrefix + name
		fi, err := os.Lstat(abs)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			s.noteSkip(pathOf(name), err)
			continue
		}
		switch {
		case fi.IsDir():
			if exists(filepath.Join(abs, GitDirName)) || exists(filepath.Join(abs, ".git")) {
				continue // an independent history
			}
			if oneLevel {
				ds.subdirs = append(ds.subdirs, pathOf(name))
				continue
			}
			var sub *dirNode
			if j.node != nil {
				if sub = j.node.dirs[name]; sub != nil {
					matchedDirs++
				}
			}
			subs = append(subs, walkJob{rel: pathOf(name), abs: abs, node: sub, parent: ign})
		case fi.Mode()&fs.ModeSymlink != 0:
			if !s.opts.allowSymlinks {
				continue
			}
			target, err := os.Readlink(abs)
			if err != nil {
				continue
			}
			h := plumbing.ComputeHash(plumbing.BlobObject, []byte(target))
			if j.node != nil {
				if old, ok := j.node.files[name]; ok {
					matchedFiles++
					if old == (fileEntry{mode: filemode.Symlink, hash: h}) {
						continue
					}
				}
			}
			ds.changed = append(ds.changed, scanFile{path: pathOf(name), fi: fi, hash: h, cached: true, target: target})
		case fi.Mode().IsRegular():
			ds.regular = append(ds.regular, name)
			key = append(key[:len(prefix)], name...)
			h, hit := s.fst.stats.lookupKey(key, fi)
			if hit {
				ds.hits++
			}
			if j.node != nil {
				if old, ok := j.node.files[name]; ok {
					matchedFiles++
					if hit && old == (fileEntry{mode: fileMode(fi), hash: h}) {
						continue // unchanged
					}
				}
			}
			ds.changed = append(ds.changed, scanFile{path: pathOf(name), fi: fi, hash: h, cached: hit})
		default:
			s.noteSkip(pathOf(name), specialFileError(fi.Mode()))
		}
	}
	if j.node != nil && matchedFiles < len(j.node.files) {
		found := make(map[string]bool, len(entries))
		for _, f := range ds.changed {
			found[f.path[len(prefix):]] = true
		}
		for _, name := range ds.regular {
			found[name] = true
		}
		for name := range j.node.files {
			if !found[name] {
				ds.gone = append(ds.gone, name)
			}
		}
		sort.Strings(ds.gone)
	}
	if j.node != nil && !oneLevel && matchedDirs < len(j.node.dirs) {
		walked := make(map[string]bool, len(subs))
		for _, sj := range subs {
			walked[sj.rel[len(prefix):]] = true
		}
		for name := range j.node.dirs {
			if !walked[name] {
				ds.goneDirs = append(ds.goneDirs, name)
			}
		}
		sort.Strings(ds.goneDirs)
	}
	return ds, subs, nil
}

// readDirUnsorted lists a directory as os.ReadDir does, in the order the
// file system returns the entries.
func readDirUnsorted(abs string) ([]fs.DirEntry, error) {
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// resolveLocked turns the walk's candidates into found (the files present,
// with their entries) and, when tracked is not nil, tracked (main's entries
// of the candidates and of the names gone): it hashes changed files into the
// store, in path order, and updates the stat cache; a changed file still
// being written (unsettledLocked) or that vanished while it was read is left
// out of found. A file modified at or after racyFrom is not cached.
func (s *Store) resolveLocked(ctx context.Context, scans []*dirScan, found, tracked map[string]fileEntry,
	racyFrom time.Time) error {
	var todo []scanFile
	for _, ds := range scans {
		todo = append(todo, ds.changed...)
		if tracked == nil || ds.node == nil {
			continue
		}
		prefix := ""
		if ds.rel != "" {
			prefix = ds.rel + "/"
		}
		for _, name := range ds.gone {
			tracked[prefix+name] = ds.node.files[name]
		}
		for _, name := range ds.goneDirs {
			ds.node.dirs[name].flatten(prefix+name+"/", tracked)
		}
		for _, f := range ds.changed {
			if e, ok := ds.node.files[f.path[len(prefix):]]; ok {
				tracked[f.path] = e
			}
		}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].path < todo[j].path })
	for i, f := range todo {
		if i%256 == 0 {
			if err := ctxErr(ctx); err != nil {
				return err
			}
		}
		if f.fi.Mode()&fs.ModeSymlink != 0 {
			e := fileEntry{mode: filemode.Symlink, hash: f.hash}
			if old, ok := tracked[f.path]; !ok || old != e {
				// New or changed (main's objects are stored already).
				h, err := s.writeObjectLocked(plumbing.BlobObject, []byte(f.target))
				if err != nil {
					return err
				}
				e.hash = h
			}
			found[f.path] = e
			continue
		}
		h := f.hash
		if !f.cached {
			if s.unsettledLocked(f.path, f.fi) {
				continue // commitFoundLocked keeps what main has
			}
			var ok bool
			var err error
			h, f.fi, ok, err = s.hashFileLocked(f.path, s.abs(f.path), f.fi)
			if err != nil {
				return err
			}
			if !ok {
				continue // vanished, unreadable or replaced: see hashFileLocked
			}
			s.fst.stats.put(f.path, f.fi, h, racyFrom)
		}
		found[f.path] = fileEntry{mode: fileMode(f.fi), hash: h}
	}
	return nil
}
