package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/peersync/peersync/internal/atomicfile"
)

// checkoutLocked makes the folder go from the old flat tree to the new one.
// Deleted files go first (and then their empty directories), then written
// files, each sorted by path. A path whose file on disk no longer has the old
// content (a local edit raced in) is left alone for the next Scan. It returns
// the paths it changed, sorted.
// (Over 120 lines: its phases — deletions, emptied directories, batched
// writes and their fsyncs — share what changed and what was left alone.)
func (s *Store) checkoutLocked(ctx context.Context, old, new map[string]fileEntry) ([]string, error) {
	// Names this device cannot hold were never written: they are not in
	// the folder to delete or compare with, and new ones are not written.
	origOld, origNew := old, new
	old = s.holdableOnlyLocked(old, false)
	new = s.holdableOnlyLocked(new, true)
	s.fst.disk.lastCheckout = nil
	for p, err := range s.fst.disk.checkoutSkips {
		if o, ok := origOld[p]; !ok || o != origNew[p] {
			s.fst.disk.lastCheckout = append(s.fst.disk.lastCheckout, SkippedPath{Path: p, Err: err})
		}
	}
	sort.Slice(s.fst.disk.lastCheckout, func(i, j int) bool { return s.fst.disk.lastCheckout[i].Path < s.fst.disk.lastCheckout[j].Path })
	var dels, puts []string
	for p := range old {
		if _, ok := new[p]; !ok {
			dels = append(dels, p)
		}
	}
	var need int64
	for p, e := range new {
		if o, ok := old[p]; !ok || o != e {
			puts = append(puts, p)
			if o.hash != e.hash && !s.fst.prewritten.has(e.hash) { // one written as it arrived is on disk
				need += s.blobSizeLocked(e)
			}
		}
	}
	sort.Strings(dels)
	sort.Strings(puts)
	for _, ps := range [][]string{dels, puts} {
		for _, p := range ps {
			delete(s.fst.disk.stale, p) // written now, or recorded again
		}
	}
	s.fst.disk.checkoutOld = old
	defer func() { s.fst.disk.checkoutOld = nil }()
	// One AllowMassDeleteOnce confirms both guards of one checkout.
	permitted := s.guard.massDeleteOnce
	if err := s.checkMassDeleteLocked(len(dels), len(old)); err != nil {
		return nil, err
	}
	if ch := ignoreFilesChanged(old, new); len(ch) > 0 {
		if err := s.checkIgnoreRulesLocked(old, new, ch, permitted); err != nil {
			return nil, err
		}
		s.fst.disk.lastIgnore = ch
	}
	if err := s.checkFreeSpaceLocked(need); err != nil {
		return nil, err
	}
	var changed []string
	defer func() {
		if err := s.saveStatCacheLocked(); err != nil {
			s.opts.log.Warn("gitstore: save stat cache", "err", err)
		}
	}()
	for _, p := range dels {
		if err := ctxErr(ctx); err != nil {
			return changed, err
		}
		ok, err := s.diskHasLocked(p, old[p], true)
		if err != nil {
			return changed, err
		}
		if !ok {
			s.opts.log.Warn("gitstore: checkout: local edit kept", "path", p)
			continue
		}
		if err := s.removeFileLocked(p); errors.Is(err, fs.ErrPermission) {
			s.noteCheckoutSkipLocked(p, err)
			continue
		} else if err != nil {
			return changed, err
		}
		changed = append(changed, p)
	}
	// Files are written in batches: every temp file of a batch first, then
	// all of them fsynced (batchSync), then renamed into place.
	// Interleaving create, fsync and rename per file made each create wait
	// for the journal commit of the previous fsync (2,001 files: 0.85 s in
	// open alone); fsyncing each file as soon as it was written, on other
	// goroutines, did the same in a first sync's race, where the sender
	// writes its pack on the same disk (BENCHMARKS.md, "The receiver's
	// tail"). Each temp file is durable before its rename.
	var batch []pendingWrite
	var batchBytes int64
	var tm checkoutTimes
	defer tm.log(s, len(puts))
	flush := func() error {
		done, err := s.commitWritesLocked(batch, old, new, &tm)
		changed = append(changed, done...)
		batch, batchBytes = batch[:0], 0
		return err
	}
	defer func() {
		for _, w := range batch { // left by an error: never renamed
			os.Remove(w.tmp)
		}
	}()
	for _, p := range puts {
		if err := ctxErr(ctx); err != nil {
			return changed, err
		}
		tm0 := time.Now()
		if ok, err := s.mayWriteLocked(p, old, new); err != nil {
			return changed, err
		} else if !ok {
			s.opts.log.Warn("gitstore: checkout: local edit kept", "path", p)
			continue
		}
		tm.check += time.Since(tm0)
		t0 := time.Now()
		w, err := s.writeTempLocked(p, new[p])
		tm.write += time.Since(t0)
		tm.bytes += w.size
		if errors.Is(err, fs.ErrPermission) {
			s.noteCheckoutSkipLocked(p, err) // a directory we may not write to
			continue
		} else if err != nil {
			return changed, err
		}
		if w.tmp == "" {
			if w.wrote {
				changed = append(changed, p) // a symlink, written at once
			}
			continue
		}
		batch = append(batch, w)
		if batchBytes += w.size; len(batch) >= checkoutBatchFiles || batchBytes >= checkoutBatchBytes {
			if err := flush(); err != nil {
				return changed, err
			}
		}
	}
	if err := flush(); err != nil {
		return changed, err
	}
	sort.Strings(changed)
	return changed, nil
}

// checkoutTimes is where a checkout's time went: writing the temporary
// files, fsyncing them, renaming them (with the local-edit check before
// each rename).
type checkoutTimes struct {
	write, fsync, rename, check time.Duration
	bytes                       int64
}

// log reports tm when the checkout wrote enough for it to matter (a first
// sync's: the fsync share is what decides how to batch them).
func (tm *checkoutTimes) log(s *Store, files int) {
	if files < 100 && tm.bytes < 64<<20 {
		return
	}
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	s.opts.log.Info("gitstore: checkout", "files", files, "bytes", tm.bytes,
		"write", ms(tm.write), "fsync", ms(tm.fsync), "rename", ms(tm.rename), "check", ms(tm.check))
}

// Bounds of one checkout batch (see checkoutLocked).
const (
	checkoutBatchFiles = 1024
	checkoutBatchBytes = 256 << 20
)

// pendingWrite is a file of a checkout batch written to its temp file.
type pendingWrite struct {
	p, tmp, abs string
	size        int64
	wrote       bool // (tmp == "") the file was written at once
}

// mayWriteLocked reports whether checkout may put new[p] at p: the folder
// still holds old[p] there (or nothing, if p is new), or already new[p].
func (s *Store) mayWriteLocked(p string, old, new map[string]fileEntry) (bool, error) {
	oe, had := old[p]
	ok, err := s.diskHasLocked(p, oe, had)
	if err != nil || ok {
		return ok, err
	}
	same, _ := s.diskHasLocked(p, new[p], true) // maybe it has the new content already
	return same, nil
}

// commitWritesLocked makes a batch of temp files durable (fsync each,
// several at once) and renames each into place, unless a local edit raced
// in since its temp file was written (then the temp file goes and the edit
// stays, for the next Scan). An fsync that fails renames nothing of the
// batch and removes its temp files. It returns the paths renamed.
func (s *Store) commitWritesLocked(batch []pendingWrite, old, new map[string]fileEntry, tm *checkoutTimes) ([]string, error) {
	fail := func(w pendingWrite, err error) error {
		return fmt.Errorf("gitstore: checkout %q: %w", w.p, err)
	}
	t0 := time.Now()
	bs := newBatchSync()
	for i, w := range batch {
		bs.add(i, w.tmp)
	}
	if i, err := bs.wait(); err != nil {
		for _, w := range batch {
			os.Remove(w.tmp)
		}
		return nil, fail(batch[i], err)
	}
	t1 := time.Now()
	tm.fsync += t1.Sub(t0)
	defer func() { tm.rename += time.Since(t1) }()
	var done []string
	for i, w := range batch {
		ok, err := s.mayWriteLocked(w.p, old, new)
		if err == nil && ok {
			err = os.Rename(w.tmp, w.abs)
		} else if err == nil {
			s.opts.log.Warn("gitstore: checkout: local edit kept", "path", w.p)
			os.Remove(w.tmp)
			continue
		}
		if err != nil {
			for _, rest := range batch[i:] {
				os.Remove(rest.tmp)
			}
			return done, fail(w, err)
		}
		if fi, err := os.Lstat(w.abs); err == nil {
			s.fst.stats.entries[w.p] = newStatEntry(fi, new[w.p].hash)
			s.fst.stats.dirty = true
		}
		done = append(done, w.p)
	}
	return done, nil
}

// checkoutSyncWorkers is how many fsyncs of a batch run at once. The file
// system commits its journal once for all the fsyncs waiting on it (ext4,
// XFS and APFS group them), so a batch costs a few journal commits instead
// of one per file: a first sync of 5,000 small files spent 11 of its 24 s
// in fsyncs made one after another.
const checkoutSyncWorkers = 32

// batchSync fsyncs the temp files of a checkout batch as they are added,
// on up to checkoutSyncWorkers goroutines (see checkoutLocked).
type batchSync struct {
	jobs    chan syncJob
	workers int
	wg      sync.WaitGroup
	mu      sync.Mutex
	failed  int   // the lowest index of a write whose fsync failed; -1: none
	err     error // that fsync's error
	waited  bool
}

// syncJob is a temp file for batchSync to fsync: the index of its write in
// the batch and its path.
type syncJob struct {
	i    int
	path string
}

func newBatchSync() *batchSync {
	return &batchSync{jobs: make(chan syncJob, checkoutBatchFiles), failed: -1}
}

// add hands the temp file of the batch's write i to the fsync goroutines,
// starting one more while there are fewer than checkoutSyncWorkers. It
// does not wait (the queue holds a whole batch).
func (b *batchSync) add(i int, path string) {
	if b.workers < checkoutSyncWorkers {
		b.workers++
		b.wg.Add(1)
		go b.work()
	}
	b.jobs <- syncJob{i: i, path: path}
}

func (b *batchSync) work() {
	defer b.wg.Done()
	for j := range b.jobs {
		if err := syncFile(j.path); err != nil {
			b.mu.Lock()
			if b.failed < 0 || j.i < b.failed {
				b.failed, b.err = j.i, err
			}
			b.mu.Unlock()
		}
	}
}

// wait waits until every file added was fsynced; on failure it returns
// the index of a write whose fsync failed. Nothing can be added after.
func (b *batchSync) wait() (int, error) {
	if !b.waited {
		b.waited = true
		close(b.jobs)
		b.wg.Wait()
	}
	return b.failed, b.err
}

// syncFile fsyncs the file at path.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// safeParentLocked checks that every parent directory of p inside the folder
// is a real directory (not a symlink), creating missing ones when create is
// set. ok is false when a parent is missing (and not created) or is not a
// plain directory.
func (s *Store) safeParentLocked(p string, create bool) (bool, error) {
	parts := strings.Split(p, "/")
	cur := s.dir
	for _, c := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if !create {
				return false, nil
			}
			if err := os.Mkdir(cur, 0o777); err != nil { // less the umask, as git

				return false, fmt.Errorf("gitstore: checkout: %w", err)
			}
			continue
		}
		if errors.Is(err, fs.ErrPermission) {
			s.noteCheckoutSkipLocked(p, err) // a directory we cannot enter: not ours to touch
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("gitstore: checkout: %w", err)
		}
		if !fi.IsDir() { // a file, or a symlink we must never write through
			return false, nil
		}
	}
	return true, nil
}

// diskHasLocked reports whether the folder holds exactly e at p; with
// present false, whether nothing is at p.
func (s *Store) diskHasLocked(p string, e fileEntry, present bool) (bool, error) {
	if err := ValidPath(p); err != nil {
		return false, fmt.Errorf("gitstore: checkout: %q: %w", p, err)
	}
	ok, err := s.safeParentLocked(p, false)
	if err != nil {
		return false, err
	}
	if !ok {
		return !present, nil // nothing can be there
	}
	abs := filepath.Join(s.dir, filepath.FromSlash(p))
	fi, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return !present, nil
	}
	if err != nil {
		// Cannot look (a directory we may not enter): not ours to touch.
		s.noteCheckoutSkipLocked(p, err)
		return false, nil
	}
	if !present {
		return false, nil
	}
	if e.mode == filemode.Symlink {
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false, nil
		}
		target, err := os.Readlink(abs)
		if err != nil {
			return false, nil
		}
		return plumbing.ComputeHash(plumbing.BlobObject, []byte(target)) == e.hash, nil
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	if h, ok := s.fst.stats.lookup(p, fi); ok {
		return h == e.hash, nil
	}
	f, err := openNoFollow(abs)
	if errors.Is(err, fs.ErrPermission) {
		s.noteCheckoutSkipLocked(p, err) // unreadable: never overwritten
		return false, nil
	} else if err != nil {
		return false, nil
	}
	defer f.Close()
	if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) || fi2.Size() != fi.Size() {
		return false, nil // replaced since the Lstat (by a FIFO, say): not ours to touch
	}
	hasher := plumbing.NewHasher(plumbing.BlobObject, fi.Size())
	if _, err := io.Copy(hasher, f); err != nil {
		return false, nil
	}
	return hasher.Sum() == e.hash, nil
}

// writeFileLocked writes e at p through a temp file in the same directory,
// fsync and rename, and records it in the stat cache. wrote is false when p
// was skipped because a parent is not a plain directory or a directory is in
// the way (the next Scan sees the difference).
func (s *Store) writeFileLocked(p string, e fileEntry) (wrote bool, err error) {
	w, err := s.writeTempLocked(p, e)
	if err != nil || w.tmp == "" {
		return w.wrote, err
	}
	if err := syncFile(w.tmp); err != nil {
		os.Remove(w.tmp)
		return false, fmt.Errorf("gitstore: checkout %q: %w", p, err)
	}
	if err := os.Rename(w.tmp, w.abs); err != nil {
		os.Remove(w.tmp)
		return false, fmt.Errorf("gitstore: checkout %q: %w", p, err)
	}
	if fi, err := os.Lstat(w.abs); err == nil {
		s.fst.stats.entries[p] = newStatEntry(fi, e.hash)
		s.fst.stats.dirty = true
	}
	return true, nil
}

// writeTempLocked writes e's content for p into a new temp file beside p
// (not yet fsynced, not renamed: the caller does both) and returns it. A
// symlink is made and renamed into place at once (w.tmp is "", w.wrote
// true). When p is blocked (a parent is not a plain directory, or a
// directory is in the way), w is empty and err nil: the next Scan sees the
// difference.
func (s *Store) writeTempLocked(p string, e fileEntry) (w pendingWrite, err error) {
	if err := ValidPath(p); err != nil {
		return w, fmt.Errorf("gitstore: checkout: %q: %w", p, err)
	}
	ok, err := s.safeParentLocked(p, true)
	if err != nil {
		return w, err
	}
	abs := filepath.Join(s.dir, filepath.FromSlash(p))
	if fi, err := os.Lstat(abs); err == nil && fi.IsDir() {
		ok = false
	}
	if !ok {
		s.opts.log.Warn("gitstore: checkout: path blocked by a symlink, file or directory; skipped", "path", p)
		return w, nil
	}
	if tmp, n := s.prewrittenLocked(e, abs); tmp != "" {
		return pendingWrite{p: p, tmp: tmp, abs: abs, size: n}, nil // written as it arrived
	}
	o, err := s.st.EncodedObject(plumbing.BlobObject, e.hash)
	if err != nil {
		return w, fmt.Errorf("gitstore: checkout %q: %w", p, err)
	}
	rc, err := o.Reader()
	if err != nil {
		return w, err
	}
	defer rc.Close()
	dir := filepath.Dir(abs)
	if e.mode == filemode.Symlink {
		target, err := io.ReadAll(rc)
		if err != nil {
			return w, err
		}
		tmp := filepath.Join(dir, fmt.Sprintf("%s%d", tmpPrefix, s.opts.now().UnixNano()))
		if err := os.Symlink(string(target), tmp); err != nil {
			return w, fmt.Errorf("gitstore: checkout: %w", err)
		}
		if err := os.Rename(tmp, abs); err != nil {
			os.Remove(tmp)
			return w, fmt.Errorf("gitstore: checkout: %w", err)
		}
		return pendingWrite{p: p, abs: abs, wrote: true}, nil
	}
	perm, keep := checkoutPerm(abs, e.mode)
	f, err := atomicfile.CreateTemp(dir, tmpPrefix+"*", perm)
	if err != nil {
		return w, fmt.Errorf("gitstore: checkout: %w", err)
	}
	tmp := f.Name()
	if keep && s.fst.disk.keepsModes {
		err = f.Chmod(perm) // the replaced file's own permissions
	}
	var n int64
	if err == nil {
		n, err = copySparse(f, rc)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return w, fmt.Errorf("gitstore: checkout %q: %w", p, err)
	}
	return pendingWrite{p: p, tmp: tmp, abs: abs, size: n}, nil
}

// checkoutPerm returns the permissions for a checkout's new file at abs,
// whose commit mode is m (regular or executable). A new file gets git's:
// 0666, or 0777 when executable, less the umask (which the create applies:
// keep false). A file replacing an existing one keeps that file's
// permissions (keep true), with the execute bits set where it has read bits
// (executable) or cleared: a file the user made private (0600) stays private
// whatever a peer sends.
func checkoutPerm(abs string, m filemode.FileMode) (perm fs.FileMode, keep bool) {
	exec := m == filemode.Executable
	if fi, err := os.Lstat(abs); err == nil && fi.Mode().IsRegular() {
		perm = fi.Mode().Perm()
		if exec {
			return perm | perm&0o444>>2, true
		}
		return perm &^ 0o111, true
	}
	if exec {
		return 0o777, false
	}
	return 0o666, false
}
