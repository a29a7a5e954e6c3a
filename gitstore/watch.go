package gitstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// defaultDebounce is Watch's quiet time when its debounce is 0.
	defaultDebounce = 50 * time.Millisecond
	// watchRescan is the period of Watch's safety-net full scan.
	watchRescan = 60 * time.Second
	// maxDebounceFactor bounds how long a stream of events can delay a scan:
	// at most this many debounce periods after the first event.
	maxDebounceFactor = 10
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
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("gitstore: watch: %w", err)
	}
	defer fw.Close()
	w := &watcher{s: s, fw: fw}
	w.addTree("", s.dir, ignoreScope{})

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
	if err := scan(); err != nil {
		return err
	}
	afterScan()
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
			rel, relevant, ignoreFile := w.handle(ev)
			if ignoreFile || rel == GitDirName {
				full = true // new rules apply everywhere below
			}
			rebuild = rebuild || ignoreFile
			if relevant {
				pending[rel] = true
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
			if err := scan(); err != nil {
				return err
			}
			afterScan()
			if rebuild {
				rebuild = false
				w.prune()
				w.addTree("", s.dir, ignoreScope{})
			}
		case <-rescan.C:
			full = true
			if err := scan(); err != nil {
				return err
			}
			afterScan()
			w.prune()
			w.addTree("", s.dir, ignoreScope{})
		}
	}
}

// watchScan runs, for Watch, a full Scan (full, or too many paths) or a
// scan of the touched paths, leaving files modified less than settle ago
// (other than those in exempt) as last committed; it returns them in
// unsettled.
func (s *Store) watchScan(ctx context.Context, full bool, paths []string, settle time.Duration,
	exempt map[string]bool) (changes []Change, unsettled []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	s.fst.settle, s.fst.settleExempt, s.fst.unsettled = settle, exempt, nil
	defer func() { s.fst.settle, s.fst.settleExempt, s.fst.unsettled = 0, nil, nil }()
	if full || len(paths) > maxTargetedPaths {
		changes, err = s.scanLocked(ctx)
	} else {
		changes, err = s.scanPathsLocked(ctx, paths)
	}
	return changes, sortedKeys(s.fst.unsettled), err
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
func (w *watcher) addTree(rel, absDir string, parent ignoreScope) {
	if rel == "" {
		w.rules = map[string]ignoreScope{}
	}
	if err := w.fw.Add(absDir); err != nil {
		w.s.opts.log.Warn("gitstore: watch: cannot watch directory", "dir", absDir, "err", err)
		return
	}
	sc := parent.enter(absDir, rel, w.s.opts.log)
	w.rules[rel] = sc
	entries, err := os.ReadDir(absDir)
	if err != nil {
		return
	}
	for _, de := range entries {
		if !de.IsDir() {
			continue
		}
		name := de.Name()
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		abs := filepath.Join(absDir, name)
		if w.skipDir(p, abs, sc) {
			continue
		}
		w.addTree(p, abs, sc)
	}
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
// inside .peersync); ignoreFile is true when a .peersyncignore changed. A
// new directory is watched at once (its content is found by the scan that
// follows).
func (w *watcher) handle(ev fsnotify.Event) (rel string, relevant, ignoreFile bool) {
	rel, err := filepath.Rel(w.s.dir, ev.Name)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", false, false
	}
	rel = filepath.ToSlash(rel)
	name := filepath.Base(ev.Name)
	if ev.Has(fsnotify.Rename) {
		w.unwatch(ev.Name) // if it was a directory: re-watched under its new name
	}
	if rel == GitDirName {
		return rel, true, false // the folder guard: let the scan notice
	}
	if strings.HasPrefix(rel, GitDirName+"/") || strings.HasPrefix(name, tmpPrefix) {
		return rel, false, false
	}
	if name == IgnoreFileName {
		return rel, true, true
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
		return rel, false, false
	}
	if isDir && !w.skipDir(rel, ev.Name, sc) {
		w.addTree(rel, ev.Name, w.rules[dir])
	}
	return rel, true, false
}
