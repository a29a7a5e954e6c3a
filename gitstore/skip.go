package gitstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
)

// SkippedPath is a file or directory that this device left alone because of
// a fault of its own disk or operating system, while everything else
// synced: a scan could not read it (permission denied, an I/O error), it is
// not a regular file (a FIFO, socket or device), its directory's
// .peersyncignore could not be read, a checkout could not write a name
// from a peer that this file system cannot hold (see [ErrNameNotHoldable]),
// or a checkout could not enter or write to the file's directory
// (permission denied: the file is then left as it is on disk).
// A skipped path stays in the history as last committed: it is neither
// committed as deleted by a scan nor deleted on disk by a checkout.
type SkippedPath struct {
	// Path is the slash path relative to the folder root ("" = the root);
	// a skipped directory stands for everything under it.
	Path string
	// Err says why; it wraps the operating system's error (such as
	// fs.ErrPermission), [ErrNotRegular] or [ErrNameNotHoldable].
	Err error
}

// String returns "path: reason".
func (p SkippedPath) String() string {
	name := p.Path
	if name == "" {
		name = "."
	}
	return fmt.Sprintf("%q: %v", name, p.Err)
}

// ErrNotRegular is wrapped by the Err of a [SkippedPath] that is neither a
// regular file, a directory nor a symlink (a FIFO, socket or device), or
// that became one between the scan's listing and its read.
var ErrNotRegular = errors.New("not a regular file, so not synced")

// ErrNameNotHoldable is wrapped by the Err of a [SkippedPath] that a checkout
// did not write because this device cannot hold the name: a Windows
// reserved name or forbidden character on Windows, or a name that differs
// only in case from another on a case-insensitive file system. The file
// stays in the history (and on the peers that can hold it).
var ErrNameNotHoldable = errors.New("name cannot be held by this device's file system")

// Skipped returns what the latest scans and checkouts left alone (see
// [SkippedPath]), sorted by path: the current list of the folder's problem
// files, for a status display. A full scan replaces the scan part of the
// list, a watcher's targeted scan the part of the folder it looked at; each
// checkout replaces the checkout part. A path skipped for the first time is
// also logged as a warning.
func (s *Store) Skipped() []SkippedPath {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SkippedPath
	for p, err := range s.fst.disk.scanSkips {
		out = append(out, SkippedPath{Path: p, Err: err})
	}
	for p, err := range s.fst.disk.checkoutSkips {
		if _, dup := s.fst.disk.scanSkips[p]; !dup {
			out = append(out, SkippedPath{Path: p, Err: err})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// diskState is what the Store knows about the folder's disk: the faults met
// and how the file system treats names. Guarded by Store.mu, except skipMu's
// fields, which the scan's parallel walk fills.
type diskState struct {
	// caseFold is true when the folder's file system ignores case (probed
	// by Open).
	caseFold bool
	// mask holds the permission bits a file created with 0777 gets on
	// the folder's file system (0777 less the umask; probed by Open).
	mask fs.FileMode
	// keepsModes is false on a file system whose files all show one mode
	// (FAT): scans then keep main's modes (probed by Open).
	keepsModes bool
	// goos is the operating system whose naming rules checkouts obey
	// (runtime.GOOS; tests set another).
	goos string

	// scanSkips and checkoutSkips: see Store.Skipped. lastCheckout holds
	// those of the last checkout's skipped paths that it had to write
	// (new or changed), for ApplyResult.Skipped.
	scanSkips, checkoutSkips map[string]error
	lastCheckout             []SkippedPath
	// stale maps the paths a checkout could not update (permission
	// denied) to the blob the disk still held there (zero: nothing), so
	// that scans do not commit that superseded state back (see
	// catchUpStaleLocked); checkoutOld is the running checkout's old tree.
	stale       map[string]plumbing.Hash
	checkoutOld map[string]fileEntry
	// lastIgnore lists the .peersyncignore files the last checkout
	// changed, applyPeer the peer whose head is being integrated.
	lastIgnore []string
	applyPeer  string

	skipMu sync.Mutex
	// walkSkips collects what the running scan skipped (reported);
	// walkKeep the files it found changing under it (not reported, looked
	// at again by the next scan). Both keep their tracked entries as last
	// committed.
	walkSkips map[string]error
	walkKeep  map[string]bool
}

// beginScanSkipsLocked starts collecting a scan's skipped paths.
func (s *Store) beginScanSkipsLocked() {
	s.fst.disk.skipMu.Lock()
	s.fst.disk.walkSkips, s.fst.disk.walkKeep = map[string]error{}, map[string]bool{}
	s.fst.disk.skipMu.Unlock()
}

// noteSkip records that the running scan skipped slash path p (a directory:
// all of it) because of err. Safe for the walk's goroutines.
func (s *Store) noteSkip(p string, err error) {
	s.fst.disk.skipMu.Lock()
	defer s.fst.disk.skipMu.Unlock()
	if s.fst.disk.walkSkips != nil {
		s.fst.disk.walkSkips[p] = err
	}
}

// noteKeep records that the running scan found p changing under it: p stays
// as last committed, unreported, until the next scan.
func (s *Store) noteKeep(p string) {
	s.fst.disk.skipMu.Lock()
	defer s.fst.disk.skipMu.Unlock()
	if s.fst.disk.walkKeep != nil {
		s.fst.disk.walkKeep[p] = true
	}
}

// keepSkippedLocked makes every tracked file that the running scan skipped
// (itself or a parent directory), or that main holds under a name this
// device cannot hold (never checked out, so never on disk), count as found
// unchanged: a skipped path is never committed as deleted.
func (s *Store) keepSkippedLocked(root *dirNode, tracked, found map[string]fileEntry) {
	s.fst.disk.skipMu.Lock()
	skips, keep := s.fst.disk.walkSkips, s.fst.disk.walkKeep
	s.fst.disk.skipMu.Unlock()
	var names *nameCheck
	for p, e := range tracked {
		if _, ok := found[p]; ok {
			continue
		}
		if keep[p] || underSkipped(p, skips) {
			found[p] = e
			continue
		}
		if names == nil {
			names = s.newNameCheckLocked(root)
		}
		if names.holdable(p) != nil {
			found[p] = e
		}
	}
}

// underSkipped reports whether p or one of its parent directories is in
// skips.
func underSkipped(p string, skips map[string]error) bool {
	if len(skips) == 0 {
		return false
	}
	if _, ok := skips[""]; ok {
		return true
	}
	for {
		if _, ok := skips[p]; ok {
			return true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

// endScanSkipsLocked publishes the running scan's skipped paths: all of
// them for a full scan (scope nil), or, for a targeted scan, in place of
// the entries scope says it looked at. Paths skipped for the first time
// are logged as warnings.
func (s *Store) endScanSkipsLocked(scope func(p string) bool) {
	s.fst.disk.skipMu.Lock()
	skips := s.fst.disk.walkSkips
	s.fst.disk.walkSkips, s.fst.disk.walkKeep = nil, nil
	s.fst.disk.skipMu.Unlock()
	old := s.fst.disk.scanSkips
	next := make(map[string]error, len(skips))
	for p, err := range old {
		if scope != nil && !scope(p) {
			next[p] = err
		}
	}
	for p, err := range skips {
		if _, seen := old[p]; !seen {
			s.opts.log.Warn("gitstore: scan: skipped; the rest of the folder syncs", "path", p, "err", err)
		}
		next[p] = err
	}
	s.fst.disk.scanSkips = next
}

// specialFileError describes a directory entry that is neither a regular
// file, a directory nor a symlink.
func specialFileError(m fs.FileMode) error {
	kind := "special file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		kind = "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	case m&fs.ModeDevice != 0:
		kind = "device"
	}
	return fmt.Errorf("%s: %w", kind, ErrNotRegular)
}

// integrateReportLocked is integrateLocked of a head from peer, with
// ApplyResult.Skipped and IgnoreRules filled in from its checkout.
func (s *Store) integrateReportLocked(ctx context.Context, theirs plumbing.Hash, peer string) (ApplyResult, error) {
	s.fst.disk.lastCheckout, s.fst.disk.lastIgnore, s.fst.disk.applyPeer = nil, nil, peer
	res, err := s.integrateLocked(ctx, theirs)
	res.Skipped, res.IgnoreRules = s.fst.disk.lastCheckout, s.fst.disk.lastIgnore
	sort.Slice(res.Skipped, func(i, j int) bool { return res.Skipped[i].Path < res.Skipped[j].Path })
	s.fst.disk.applyPeer = ""
	return res, diskFullError(err)
}

// noteCheckoutSkipLocked records that the running checkout left p alone
// because of err (a directory it may not enter or write to): reported as
// the names it cannot hold are, and logged.
func (s *Store) noteCheckoutSkipLocked(p string, err error) {
	if s.fst.disk.checkoutSkips == nil {
		s.fst.disk.checkoutSkips = map[string]error{}
	}
	if _, seen := s.fst.disk.checkoutSkips[p]; seen {
		return
	}
	s.fst.disk.checkoutSkips[p] = err
	s.fst.disk.lastCheckout = append(s.fst.disk.lastCheckout, SkippedPath{Path: p, Err: err})
	if s.fst.disk.checkoutOld != nil {
		if s.fst.disk.stale == nil {
			s.fst.disk.stale = map[string]plumbing.Hash{}
		}
		s.fst.disk.stale[p] = s.fst.disk.checkoutOld[p].hash
	}
	s.opts.log.Warn("gitstore: checkout: cannot write here; skipped, the rest is checked out", "path", p, "err", err)
}

// catchUpStaleLocked, in a scan, deals with the files a checkout could not
// update (Store.disk.stale): one the scan finds still holding what it held
// then is not a local edit to commit (that would undo the peer's change on
// every device) but a file to bring up to main now, if it can be written
// (else it stays as main has it, for the next scan); one found otherwise
// (edited, or deleted) is a local change as usual and forgotten here.
func (s *Store) catchUpStaleLocked(tracked, found map[string]fileEntry) {
	for p, had := range s.fst.disk.stale {
		f, onDisk := found[p]
		want, inMain := tracked[p]
		switch {
		case !onDisk && !inMain:
			continue // not in the part of the folder just scanned
		case onDisk && inMain && f == want:
			continue // as main has it (or skipped again)
		case onDisk && f.hash == had, !onDisk && had.IsZero():
			// Still the superseded state: catch up, commit nothing.
			var err error
			if inMain {
				found[p] = want
				_, err = s.writeFileLocked(p, want)
			} else {
				delete(found, p)
				err = s.removeFileLocked(p)
			}
			if err != nil {
				s.opts.log.Debug("gitstore: scan: still cannot update a file a checkout skipped", "path", p, "err", err)
				continue
			}
			s.opts.log.Info("gitstore: scan: updated a file a checkout had to skip", "path", p)
		}
		delete(s.fst.disk.stale, p)
	}
}
