package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// defaultDebounce is Watch's quiet time when its debounce is 0.
	defaultDebounce = 50 * time.Millisecond
	// maxDebounceFactor bounds how long a stream of events can delay a scan:
	// at most this many debounce periods after the first event.
	maxDebounceFactor = 10
	// watchEventBuffer is how many events fsnotify's reader may hold for
	// Watch's loop (about 64 bytes each plus the path): the kernel's queue
	// (fs.inotify.max_queued_events, 16,384 by default) is drained into it
	// while the loop scans, so a burst does not overflow the queue.
	watchEventBuffer = 8192
)

// Watch commits changes as they happen until ctx is done, then returns an
// error wrapping ctx.Err(). It watches every directory of the folder with
// fsnotify (except .peersync, our temporary files, directories excluded by
// the ignore rules and nested histories), adds watches for new directories,
// and after debounce of quiet (0 means 50 ms; a steady stream of events
// delays a scan by at most 10 debounce periods) scans the touched paths
// (their directories, one level, and new directories whole: the rest of the
// folder is not walked), committing as [Store.Scan] does, and calls onChange
// with the commits made, if any. A changed file modified less than
// debounce ago when the scan reaches it is still being written (caught
// between its truncation and its write, say): it is left as last committed
// and looked at again after another debounce, so a save is one commit with
// the whole content; a file written to without pause is committed anyway
// after 10 such delays. onChange is called from
// Watch's goroutine, never while the store's lock is held; it may call the
// store's methods. A full scan also runs when Watch starts (so edits made
// while nothing was watching are committed), every 60 s as a safety net,
// when the kernel's event queue overflowed and when a .peersyncignore
// changed.
//
// What the store writes itself is not scanned again (see "Watcher" in
// the package documentation): a file that a checkout renamed into place
// from its temporary file is ours, and a touched file that is, by the stat
// cache, exactly main's version is dropped before the scan. The watcher
// never waits for the store's lock while an apply holds it: it keeps
// reading events (so our own checkout of thousands of files does not
// overflow the kernel's queue) and scans once the lock is free.
//
// Watch returns early, with the scan's error, when the folder guard trips
// (an error wrapping [ErrNotInitialized]: the folder vanished), the
// mass-delete guard refuses a scan (a *[MassDeleteError]: the caller should
// pause the folder and ask the user), or the store is closed ([ErrClosed]).
// Other scan errors (a full disk, say) are logged, and the next event or
// the periodic rescan runs a full scan. A file the scan cannot read is not
// an error: it is skipped and reported (see [Store.Skipped]). It returns an error if the watcher cannot start.
//
// (Over 120 lines: one event loop, whose cases share its state: the paths
// pending, the deferred counts and the timers.)
func (s *Store) Watch(ctx context.Context, debounce time.Duration, onChange func([]Change)) error {
	if debounce <= 0 {
		debounce = defaultDebounce
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	fw, err := fsnotify.NewBufferedWatcher(watchEventBuffer)
	if err != nil {
		return fmt.Errorf("gitstore: watch: %w", err)
	}
	defer fw.Close()
	w := &watcher{s: s, fw: fw}
	w.addTree("", s.dir, ignoreScope{}, nil)

	// pending holds the slash paths touched since the last scan; full
	// asks for a full scan instead.
	pending := map[string]bool{}
	full := true
	// deferred counts, per path, the scans in a row that found it still
	// being written (see Store.settle); after maxDebounceFactor it is
	// committed as it is (a file appended to without pause).
	deferred := map[string]int{}
	var unsettled []string
	scan := func() error {
		exempt := map[string]bool{}
		for p, n := range deferred {
			if n >= maxDebounceFactor {
				exempt[p] = true
			}
		}
		var changes []Change
		var err error
		changes, unsettled, err = s.watchScan(ctx, full, sortedKeys(pending), debounce, exempt)
		if errors.Is(err, errStoreBusy) {
			return err // nothing scanned: pending and full stay for the next try
		}
		full = false
		clear(pending)
		again := map[string]int{}
		for _, p := range unsettled {
			again[p] = deferred[p] + 1
			pending[p] = true
		}
		deferred = again
		if len(changes) > 0 && onChange != nil {
			onChange(changes)
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("gitstore: watch: %w", ctx.Err())
		case errors.Is(err, ErrNotInitialized), errors.Is(err, ErrMassDelete), errors.Is(err, ErrClosed):
			return err
		}
		s.opts.log.Warn("gitstore: watch: scan failed; will retry", "err", err)
		full = true // what the failed scan missed is found by the next
		return nil
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	var first time.Time // first event of the pending batch
	arm := func() {
		now := time.Now()
		if !armed {
			armed, first = true, now
		}
		d := min(debounce, first.Add(maxDebounceFactor*debounce).Sub(now))
		timer.Reset(max(d, 0))
	}
	afterScan := func() {
		if len(unsettled) > 0 {
			arm() // look again at the files still being written
		}
	}
	// try runs scan unless the store is busy (an apply holds its lock):
	// then it tries again after another debounce, and the loop goes on
	// reading events meanwhile.
	try := func() (ran bool, err error) {
		err = scan()
		if errors.Is(err, errStoreBusy) {
			armed = false
			arm()
			return false, nil
		}
		if err == nil {
			afterScan()
		}
		return true, err
	}
	if _, err := try(); err != nil {
		return err
	}
	rescan := time.NewTicker(watchRescan)
	defer rescan.Stop()
	rebuild := false // re-read the ignore rules and watches after the scan
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("gitstore: watch: %w", ctx.Err())
		case ev, ok := <-fw.Events:
			if !ok {
				return errors.New("gitstore: watch: event channel closed")
			}
			rel, relevant, ignoreFile, listed := w.handle(ev)
			if ignoreFile || rel == GitDirName {
				full = true // new rules apply everywhere below
			}
			rebuild = rebuild || ignoreFile
			if relevant {
				pending[rel] = true
				arm()
			}
			for _, p := range listed {
				pending[p] = true
			}
			if len(listed) > 0 {
				arm()
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return errors.New("gitstore: watch: error channel closed")
			}
			s.opts.log.Warn("gitstore: watch: fsnotify error; rescanning", "err", err)
			rebuild, full = true, true
			arm()
		case <-timer.C:
			armed = false
			ran, err := try()
			if err != nil {
				return err
			}
			if rebuild && ran {
				rebuild = false
				w.prune()
				w.addTree("", s.dir, ignoreScope{}, nil)
			}
		case <-rescan.C:
			full = true
			if _, err := try(); err != nil {
				return err
			}
			w.prune()
			w.addTree("", s.dir, ignoreScope{}, nil)
		}
	}
}

// watchRescan is the period of Watch's safety-net full scan (a variable
// for tests that must tell it from the other full scans).
var watchRescan = 60 * time.Second

// errStoreBusy is watchScan's answer when the store's lock is held (an
// apply's checkout, say): Watch tries again later rather than wait.
var errStoreBusy = errors.New("gitstore: watch: store busy")

// watchScanned, when set (tests), is called by watchScan with what it
// scans: full, or the touched paths left once what the store wrote itself
// was dropped.
var watchScanned func(full bool, paths []string)

// watchOwnRename, when set (tests), is called by Watch's goroutine with
// each path it does not scan because our checkout renamed it into place.
var watchOwnRename func(rel string)

// watchScan runs, for Watch, a full Scan (full, or too many paths) or a
// scan of the touched paths, leaving files modified less than settle ago
// (other than those in exempt) as last committed; it returns them in
// unsettled. It returns errStoreBusy, having done nothing, when the store's
// lock is held.
func (s *Store) watchScan(ctx context.Context, full bool, paths []string, settle time.Duration,
	exempt map[string]bool) (changes []Change, unsettled []string, err error) {
	if !s.mu.TryLock() {
		return nil, nil, errStoreBusy
	}
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	if !full {
		if paths, err = s.dropCurrentLocked(paths); err != nil {
			return nil, nil, err
		}
		if len(paths) == 0 {
			return nil, nil, nil
		}
	}
	full = full || len(paths) > maxTargetedPaths
	if watchScanned != nil {
		watchScanned(full, paths)
	}
	s.fst.settle, s.fst.settleExempt, s.fst.unsettled = settle, exempt, nil
	defer func() { s.fst.settle, s.fst.settleExempt, s.fst.unsettled = 0, nil, nil }()
	if full {
		changes, err = s.scanLocked(ctx)
	} else {
		changes, err = s.scanPathsLocked(ctx, paths)
	}
	return changes, sortedKeys(s.fst.unsettled), err
}

// dropCurrentLocked returns the touched paths less those that hold exactly
// main's version: a regular file whose Lstat matches its stat cache entry
// (the same rule Scan uses to skip a file), whose cached hash is the blob
// main has at that path; or nothing at a path main does not track. What a
// checkout, merge or restore wrote is such a path (each records the stat
// of what it wrote), so the watcher does not scan it again; a file edited
// since no longer matches and is kept. Directories, and any path whose
// parent is missing or unusual, are kept for the scan to judge.
func (s *Store) dropCurrentLocked(paths []string) ([]string, error) {
	if _, err := os.Lstat(s.gitDir); err != nil {
		return paths, nil // the scan reports the folder guard
	}
	_, root, err := s.headTreeLocked()
	if err != nil {
		return nil, err
	}
	kept := paths[:0:0]
	for _, p := range paths {
		fi, err := os.Lstat(s.abs(p))
		switch {
		case err == nil && fi.Mode().IsRegular():
			e, tracked := root.get(p)
			if h, ok := s.fst.stats.lookup(p, fi); ok && tracked && h == e.hash {
				continue
			}
		case errors.Is(err, fs.ErrNotExist):
			if _, tracked := root.get(p); !tracked && root.node(p) == nil {
				if _, perr := os.Lstat(s.abs(parentDir(p))); perr == nil {
					continue
				}
			}
		}
		kept = append(kept, p)
	}
	return kept, nil
}

// watcher adds fsnotify watches on the folder's directories. It is used by
// Watch's goroutine only.
type watcher struct {
	s  *Store
	fw *fsnotify.Watcher
	// rules holds the ignore scope of every watched directory, by slash
	// path ("" = root), to drop events on ignored names.
	rules map[string]ignoreScope
}

// addTree watches absDir (slash path rel) and its subdirectories, except
// those Scan skips. Adding a watch twice is harmless. Errors (such as the
// inotify watch limit) are logged: the periodic rescan still finds changes.
// When files is not nil, the slash paths of the other entries it lists
// (after their directory is watched: anything made later has its own
// event) are appended to *files; ok is false when a watch could not be
// added, so what was listed may not be all.
func (w *watcher) addTree(rel, absDir string, parent ignoreScope, files *[]string) (ok bool) {
	if rel == "" {
		w.rules = map[string]ignoreScope{}
	}
	if err := w.fw.Add(absDir); err != nil {
		w.s.opts.log.Warn("gitstore: watch: cannot watch directory", "dir", absDir, "err", err)
		return false
	}
	sc := parent.enter(absDir, rel, w.s.opts.log)
	w.rules[rel] = sc
	entries, err := os.ReadDir(absDir)
	if err != nil {
		return false
	}
	ok = true
	for _, de := range entries {
		name := de.Name()
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		if !de.IsDir() {
			if files != nil && !strings.HasPrefix(name, tmpPrefix) {
				*files = append(*files, p)
			}
			continue
		}
		abs := filepath.Join(absDir, name)
		if w.skipDir(p, abs, sc) {
			continue
		}
		ok = w.addTree(p, abs, sc, files) && ok
	}
	return ok
}

// unwatch removes the watches of abs and of every directory under it. A
// watched directory that is renamed keeps its watch, and fsnotify keeps
// reporting its events under the old name (even when the new name is added:
// same inode, same watch), so the old watches go and the new name is
// watched afresh when its Create event comes.
func (w *watcher) unwatch(abs string) {
	for _, p := range w.fw.WatchList() {
		if p == abs || strings.HasPrefix(p, abs+string(filepath.Separator)) {
			w.fw.Remove(p) // an error means it is gone already
		}
	}
}

// prune removes the watches of directories that no longer exist under
// their watched name (a safety net for missed renames).
func (w *watcher) prune() {
	for _, p := range w.fw.WatchList() {
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			w.fw.Remove(p)
		}
	}
}

// skipDir reports whether the directory abs (slash path p) is one Scan
// skips.
func (w *watcher) skipDir(p, abs string, sc ignoreScope) bool {
	name := filepath.Base(abs)
	return name == GitDirName || strings.HasPrefix(name, tmpPrefix) || validComponent(name) != nil ||
		sc.skip(p, true) || exists(filepath.Join(abs, GitDirName)) || exists(filepath.Join(abs, ".git"))
}

// handle looks at one event on the slash path rel: relevant is false for
// events Scan would not care about (our temporary files, ignored names,
// inside .peersync, a file our checkout renamed into place); ignoreFile is
// true when a .peersyncignore changed. A new directory is watched at once;
// the files it already holds are returned in listed (for the scan that
// follows, which drops those the store wrote itself), or, when there are
// many, the directory itself is relevant and the scan walks it whole.
func (w *watcher) handle(ev fsnotify.Event) (rel string, relevant, ignoreFile bool, listed []string) {
	rel, err := filepath.Rel(w.s.dir, ev.Name)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", false, false, nil
	}
	rel = filepath.ToSlash(rel)
	name := filepath.Base(ev.Name)
	if strings.HasPrefix(name, tmpPrefix) {
		return rel, false, false, nil // ours, and never a directory we watch
	}
	if ev.Has(fsnotify.Rename) {
		w.unwatch(ev.Name) // if it was a directory: re-watched under its new name
	}
	if rel == GitDirName {
		return rel, true, false, nil // the folder guard: let the scan notice
	}
	if strings.HasPrefix(rel, GitDirName+"/") {
		return rel, false, false, nil
	}
	if name == IgnoreFileName {
		return rel, true, true, nil
	}
	if ev.Op == fsnotify.Create && w.renamedFromOurs(ev) {
		// A checkout's rename of its temporary file: the content is what
		// the store wrote and recorded. A later edit has its own event.
		if watchOwnRename != nil {
			watchOwnRename(rel)
		}
		return rel, false, false, nil
	}
	dir := ""
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir = rel[:i]
	}
	sc := w.rules[dir]
	isDir := false
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			isDir = true
		}
	}
	if sc.skip(rel, isDir) {
		return rel, false, false, nil
	}
	if isDir && !w.skipDir(rel, ev.Name, sc) {
		var files []string
		if w.addTree(rel, ev.Name, w.rules[dir], &files) && len(files) <= maxTargetedPaths {
			return rel, false, false, files
		}
	}
	return rel, true, false, nil
}

// renamedFromOurs reports whether ev (a Create) is the second half of a
// rename from one of our temporary files in the folder, as a checkout makes
// when it puts a file into place. fsnotify pairs a rename's two halves by
// the kernel's cookie but keeps the old name unexported: its String form
// ends with ` ← "old name"` for such an event (the format is pinned by
// TestWatchSkipsOwnCheckout, which fails without the match). Any doubt
// answers false: the path is then scanned as before.
func (w *watcher) renamedFromOurs(ev fsnotify.Event) bool {
	str := ev.String()
	i := strings.LastIndex(str, " ← ")
	if i < 0 {
		return false
	}
	old, err := strconv.Unquote(str[i+len(" ← "):])
	if err != nil || filepath.Dir(old) != filepath.Dir(ev.Name) {
		return false
	}
	return strings.HasPrefix(filepath.Base(old), tmpPrefix)
}
