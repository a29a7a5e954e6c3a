package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// Scan walks the folder and commits each added, modified or deleted file as
// its own commit on refs/heads/main, with the message "add <path>",
// "modify <path>" or "delete <path>". Deletions are committed first, then
// additions and modifications, each group sorted by path (so a file that
// became a directory, or the reverse, never needs two files in one commit).
// It returns the commits made, oldest first; none if nothing changed.
//
// Skipped: .peersync itself, any subdirectory holding its own .peersync or
// .git (an independent history), our temporary files (.peersync-tmp-*),
// names that fail [ValidPath], symlinks unless Config.AllowSymlinks, and
// anything that is not a regular file. A file that changes while it is read
// is committed with the content that was read; the next Scan sees the rest.
//
// A fault of one file never stops the scan: a file or directory that cannot
// be read, a FIFO, socket or device, or a directory whose .peersyncignore
// cannot be read is skipped, logged as a warning the first time and listed
// by [Store.Skipped]; what it held stays in the history as last committed
// (never committed as deleted), and everything else is committed. Errors are
// for the folder as a whole: the folder guard ([ErrNotInitialized]), the
// mass-delete guard, a root directory that cannot be listed, and a store
// that cannot be written (a full disk wraps [ErrDiskFull]).
func (s *Store) Scan(ctx context.Context) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.fst.meter.begin()
	defer s.fst.meter.end()
	return s.scanLocked(ctx)
}

// ScanProgress is how far a Scan has got (see Config.ScanProgress).
type ScanProgress struct {
	// Files and Bytes count the files read and hashed so far, and their
	// bytes; files the stat cache vouches for unchanged are not read and
	// not counted (a first scan reads every file).
	Files, Bytes int64
	// Done is set on the last report of a scan, when it has ended
	// (whether or not it failed).
	Done bool
	// Published, when not zero, says that this long scan has just moved
	// main to this commit partway (see "Long scans publish as they go"
	// in the package doc): Commits commits of this scan are stored, and
	// main names the last of them, so peers may be told and may fetch
	// them while the scan goes on. Reported at once, not paced.
	Published Hash
	// Commits counts the commits this scan has published so far (with
	// Published).
	Commits int
}

// scanMeter feeds Config.ScanProgress during a Scan; guarded by Store.mu.
type scanMeter struct {
	fn       func(ScanProgress)
	on       bool // a Scan runs
	start    time.Time
	last     time.Time // of the last report; zero: none yet
	progress ScanProgress
}

// scanReportEvery and scanReportDelay pace Config.ScanProgress (the
// delay is a variable for tests).
const scanReportEvery = 250 * time.Millisecond

var scanReportDelay = time.Second

func (m *scanMeter) begin() {
	if m.fn != nil {
		*m = scanMeter{fn: m.fn, on: true, start: time.Now()}
	}
}

// add counts one file of n bytes read, and reports if it is time.
func (m *scanMeter) add(n int64) {
	if !m.on {
		return
	}
	m.progress.Files++
	m.progress.Bytes += n
	now := time.Now()
	if now.Sub(m.start) >= scanReportDelay && now.Sub(m.last) >= scanReportEvery {
		m.last = now
		m.fn(m.progress)
	}
}

// published reports that main moved partway through a scan, to head
// after n commits of it.
func (m *scanMeter) published(head Hash, n int) {
	if !m.on {
		return
	}
	m.last = time.Now()
	p := m.progress
	p.Published, p.Commits = head, n
	m.fn(p)
}

// end reports the end of a scan that reported progress.
func (m *scanMeter) end() {
	if m.on && !m.last.IsZero() {
		m.progress.Done = true
		m.fn(m.progress)
	}
	m.on = false
}

type pendingChange struct {
	action Action
	path   string
	entry  fileEntry
}

func (s *Store) scanLocked(ctx context.Context) ([]Change, error) {
	if _, err := os.Lstat(s.gitDir); err != nil {
		// The folder guard: never scan a folder whose marker vanished.
		return nil, fmt.Errorf("%w: %w", ErrNotInitialized, err)
	}
	head, root, err := s.headTreeLocked()
	if err != nil {
		return nil, err
	}
	// New objects go into one pack, completed before main moves.
	s.beginPackLocked()
	defer s.abortPackLocked()
	start := time.Now()                 // for the stale temporary file rule
	racyFrom := s.racyFromLocked(start) // read before any file is looked at
	ign := newIgnoreScope()
	s.beginScanSkipsLocked()
	scans, err := s.walkTree(ctx, "", s.dir, root, ign, false, start)
	if err != nil {
		return nil, err
	}
	hits := 0
	for _, ds := range scans {
		ign.dirs[ds.rel] = ds.patterns
		hits += ds.hits
	}
	// Every unchanged file was a hit: when all cached files were, none is
	// to be forgotten (checked before resolveLocked adds entries).
	stale := hits < len(s.fst.stats.entries)
	late := s.deferBigLocked(scans) // big files last (scan_big.go)
	// Only what may differ from main goes into these maps.
	tracked := map[string]fileEntry{}
	found := map[string]fileEntry{}
	if err := s.resolveLocked(ctx, scans, found, tracked, racyFrom); err != nil {
		return nil, err
	}
	if stale {
		// Some cached files were not found as they were: forget those
		// not found at all (every unchanged file was a hit).
		present := make(map[string]bool, len(s.fst.stats.entries))
		for _, ds := range scans {
			prefix := ""
			if ds.rel != "" {
				prefix = ds.rel + "/"
			}
			for _, name := range ds.regular {
				present[prefix+name] = true
			}
			for _, f := range ds.changed {
				if _, ok := found[f.path]; !ok {
					delete(present, f.path) // unsettled, or vanished
				}
			}
		}
		for p := range s.fst.stats.entries {
			if !present[p] {
				s.fst.stats.drop(p)
			}
		}
	}
	changes, err := s.commitFoundLocked(ctx, head, root, tracked, found, ign, root.count())
	if err == nil {
		s.endScanSkipsLocked(nil)
	}
	if err == nil && len(late) > 0 {
		var more []Change
		more, err = s.scanBigLaterLocked(ctx, changes, late)
		changes = append(changes, more...)
	}
	return changes, diskFullError(err)
}

// commitChangesLocked makes one commit per change on top of head and moves
// main to the last one.
func (s *Store) commitChangesLocked(ctx context.Context, head plumbing.Hash, root *dirNode, todo []pendingChange) ([]Change, error) {
	var out []Change
	pub := publishPace{last: time.Now()}
	fail := func(err error) ([]Change, error) {
		s.cur.root = nil // the in-memory tree no longer matches main
		if perr := s.endPackLocked(); perr != nil {
			return nil, errors.Join(err, perr)
		}
		if len(out) > 0 {
			if rerr := s.setRefLocked(mainRef, head); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
		}
		return out, err
	}
	for _, c := range todo {
		if err := ctxErr(ctx); err != nil {
			return fail(err)
		}
		if c.action == ActionDelete {
			root.remove(c.path)
		} else if err := root.set(c.path, c.entry); err != nil {
			return fail(err)
		}
		tree, err := s.writeTreeLocked(root)
		if err != nil {
			return fail(err)
		}
		var parents []plumbing.Hash
		if !head.IsZero() {
			parents = []plumbing.Hash{head}
		}
		sig := s.signature()
		h, err := s.newCommitLocked(tree, parents, fmt.Sprintf("%s %s\n", c.action, c.path), sig)
		if err != nil {
			return fail(err)
		}
		head = h
		out = append(out, Change{Commit: fromPlumbing(h), Action: c.action, Path: c.path,
			Time: sig.When, Author: fmt.Sprintf("%s <%s>", sig.Name, sig.Email)})
		s.opts.log.Debug("gitstore: commit", "action", c.action, "path", c.path, "commit", fromPlumbing(h))
		if pub.due(len(out), len(todo)) && s.packs.pw != nil {
			if err := s.publishLocked(head, len(out)); err != nil {
				// As at the end below: main stays where it was last
				// published (the pack that failed holds nothing main
				// names).
				s.cur.root = nil
				return nil, err
			}
			pub.done(len(out))
		}
	}
	if err := s.endPackLocked(); err != nil {
		return nil, err
	}
	if len(out) > 0 {
		if err := s.setRefLocked(mainRef, head); err != nil {
			s.cur.root = nil
			return nil, err
		}
		s.cur.rootHead = head
	}
	return out, nil
}

// A long scan publishes its commits as it goes (see the package doc):
// after at least publishCommits commits and publishEvery since the scan
// began or last published, with publishCommits or more still to make, it
// completes the pack written so far, moves main to the last commit made
// and tells Config.ScanProgress, then goes on in a new pack. Variables for
// tests.
var (
	publishCommits = 5000
	publishEvery   = 2 * time.Second
)

// publishPace decides when commitChangesLocked publishes.
type publishPace struct {
	last time.Time // when the scan began or last published
	n    int       // commits made by then
}

// due reports whether main should move now, made of total commits being
// made.
func (p *publishPace) due(made, total int) bool {
	return made-p.n >= publishCommits && total-made >= publishCommits && time.Since(p.last) >= publishEvery
}

func (p *publishPace) done(made int) { p.last, p.n = time.Now(), made }

// publishLocked makes the commits so far visible: the pack written so far
// is completed (objects before the ref that names them, as always), main
// moves to head, and the rest of the scan goes on in a new pack.
func (s *Store) publishLocked(head plumbing.Hash, made int) error {
	if err := s.endPackLocked(); err != nil {
		return err
	}
	if err := s.setRefLocked(mainRef, head); err != nil {
		return err
	}
	s.cur.rootHead = head
	s.fst.meter.published(fromPlumbing(head), made)
	s.beginPackLocked()
	return nil
}

// walkLocked records every file under absDir (slash path rel) in found,
// except those the ignore rules in ign (and absDir's .peersyncignore)
// exclude, recording the rules of every directory walked in ign.dirs. When
// ign.subdirs is not nil, only absDir is listed: the subdirectories a full
// walk would enter are recorded there instead. start and racyFrom are the
// scan's (see scanLocked).
func (s *Store) walkLocked(ctx context.Context, rel, absDir string, found map[string]fileEntry,
	start, racyFrom time.Time, ign ignoreScope) error {
	scans, err := s.walkTree(ctx, rel, absDir, nil, ign, ign.subdirs != nil, start)
	if err != nil {
		return err
	}
	for _, ds := range scans {
		if ign.dirs != nil {
			ign.dirs[ds.rel] = ds.patterns
		}
		for _, sd := range ds.subdirs {
			ign.subdirs[sd] = true
		}
	}
	return s.resolveLocked(ctx, scans, found, nil, racyFrom)
}

// hashFileLocked stores the content of the regular file abs (slash path p)
// as a blob, streaming it (memory stays bounded whatever the file size).
// ok is false when the file vanished (it is then gone for this scan), or
// when it could not be read or is no longer the file fi describes: then it
// is recorded (noteSkip: reported; noteKeep: changed under us, looked at
// again next time) and stays as last committed. err is only for a failure
// to store the blob (the disk of .peersync is full, say).
//
// The file is opened without following a symlink and without blocking (a
// FIFO swapped in since the listing would otherwise block the scan, with
// the store's lock held, until a writer came), then checked (fstat) to be
// a regular file and still the very file (device and inode) that the
// listing saw. Its size and times may have changed since the listing (a
// file being appended to): what is hashed is what the fstat says, and the
// returned cur is that fstat, for the stat cache. During a watcher scan, a
// file that the fstat shows modified within the settle time (though the
// listing saw it settled) is left unsettled, not hashed.
func (s *Store) hashFileLocked(p, abs string, fi fs.FileInfo) (h plumbing.Hash, cur fs.FileInfo, ok bool, err error) {
	if testHookBeforeOpen != nil {
		testHookBeforeOpen(abs)
	}
	f, err := openNoFollow(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return h, nil, false, nil
	case err != nil && isSymlinkLoop(err):
		s.noteKeep(p) // replaced by a symlink: the next scan sees it
		return h, nil, false, nil
	case err != nil:
		s.noteSkip(p, err)
		return h, nil, false, nil
	}
	defer f.Close()
	fi2, err := f.Stat()
	switch {
	case err != nil:
		s.noteSkip(p, err)
		return h, nil, false, nil
	case !fi2.Mode().IsRegular():
		s.noteSkip(p, specialFileError(fi2.Mode()))
		return h, nil, false, nil
	case !os.SameFile(fi, fi2):
		s.noteKeep(p) // another file took its name: the next scan sees it
		return h, nil, false, nil
	case s.unsettledLocked(p, fi2):
		// The listing saw it settled, but it was written to since (the
		// scan came between an editor's truncation and its write): hashing
		// now would commit the half-written state. The watcher comes back.
		return h, nil, false, nil
	}
	size := fi2.Size()
	r := &readErrReader{r: f}
	if s.packs.pw != nil {
		h, ok, err = s.packs.pw.writeBlobFrom(r, size)
	} else {
		h, ok, err = s.writeLooseBlobLocked(r, size)
	}
	switch {
	case r.err != nil:
		// The file, not the store, failed (an I/O error): skip it.
		s.noteSkip(p, r.err)
		return h, nil, false, nil
	case err != nil:
		return h, nil, false, fmt.Errorf("gitstore: scan: store %q: %w", p, diskFullError(err))
	case !ok:
		s.noteKeep(p) // shrank while read
	default:
		s.fst.meter.add(size)
	}
	return h, fi2, ok, nil
}

// testHookBeforeOpen, when set by a test, runs between a scan's listing of
// a file and its open.
var testHookBeforeOpen func(abs string)

// readErrReader remembers the first read error of r other than io.EOF.
type readErrReader struct {
	r   io.Reader
	err error
}

func (r *readErrReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// writeLooseBlobLocked stores size bytes of r as a loose blob (no pack is
// being written). ok is false when r ended early.
func (s *Store) writeLooseBlobLocked(r io.Reader, size int64) (h plumbing.Hash, ok bool, err error) {
	w, writeHeader, err := s.st.LazyWriter()
	if err != nil {
		return h, false, err
	}
	type hasher interface{ Hash() plumbing.Hash }
	if err := writeHeader(plumbing.BlobObject, size); err != nil {
		w.Close()
		return h, false, err
	}
	n, cerr := io.CopyN(w, r, size)
	if n < size {
		// The file shrank while we read it. The object header already
		// promised size bytes: pad, so the stored object is still valid (and
		// unreferenced), and skip the file this time.
		io.CopyN(w, zeroReader{}, size-n)
	}
	if err := w.Close(); err != nil {
		return h, false, err
	}
	if cerr != nil && !errors.Is(cerr, io.EOF) {
		return h, false, cerr
	}
	hw, isHasher := w.(hasher)
	if !isHasher {
		return h, false, errors.New("object writer has no hash")
	}
	return hw.Hash(), n == size, nil
}

// unsettledLocked reports whether the changed regular file p (fi) was
// modified so recently, during a watcher scan, that it may still be being
// written; it is then recorded in s.unsettled. A modification time in the
// future (a clock set back, touch -d) never counts as recent.
func (s *Store) unsettledLocked(p string, fi fs.FileInfo) bool {
	if s.fst.settle <= 0 || s.fst.settleExempt[p] {
		return false
	}
	age := time.Since(fi.ModTime())
	if age < 0 || age >= s.fst.settle {
		return false
	}
	if s.fst.unsettled == nil {
		s.fst.unsettled = map[string]bool{}
	}
	s.fst.unsettled[p] = true
	return true
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func fileMode(fi fs.FileInfo) filemode.FileMode {
	if fi.Mode()&0o111 != 0 {
		return filemode.Executable
	}
	return filemode.Regular
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
