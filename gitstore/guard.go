package gitstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The mass-delete guard's defaults (docs/design.md section 5).
const (
	defaultMaxDeleteShare = 0.5
	defaultMaxDeleteCount = 100
)

// ErrMassDelete is wrapped by every *[MassDeleteError]: a Scan, ApplyBundle or
// IntegratePeer that would delete too many tracked files at once was refused.
var ErrMassDelete = errors.New("gitstore: mass delete refused")

// MassDeleteError is returned (wrapping [ErrMassDelete]) when one operation
// would delete more than Config.MaxDeleteShare of the Total tracked files
// and more than Config.MaxDeleteCount of them. For a local scan refused
// because of the deletions it adds to those committed by local scans in the
// last 60 s, Deleted is that sum and Total the number of files tracked when
// those 60 s started. Nothing was committed and no file was touched; see the
// package documentation, section "Guards".
type MassDeleteError struct {
	Deleted int // files the operation would have deleted (with the window's, for a local scan)
	Total   int // files tracked before the operation (or at the window's start)
}

// Error describes the refused deletion.
func (e *MassDeleteError) Error() string {
	return fmt.Sprintf("gitstore: mass delete refused: %d of %d tracked files would be deleted (confirm with AllowMassDeleteOnce)",
		e.Deleted, e.Total)
}

// Unwrap returns [ErrMassDelete].
func (e *MassDeleteError) Unwrap() error { return ErrMassDelete }

// AllowMassDeleteOnce lets the next operation that the mass-delete guard
// would refuse go through (the user confirmed the deletion). The permission
// is used up by that operation; operations below the threshold do not use
// it.
func (s *Store) AllowMassDeleteOnce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guard.massDeleteOnce = true
}

// DisallowMassDelete withdraws a permission given by AllowMassDeleteOnce
// that no operation used, so that it cannot let a later, unrelated
// deletion through.
func (s *Store) DisallowMassDelete() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.guard.massDeleteOnce = false
}

// massDeleteWindow is how far back the mass-delete guard counts the
// deletions committed by local scans (see checkLocalDeleteLocked).
const massDeleteWindow = 60 * time.Second

// localDelete records the deletions one local scan committed.
type localDelete struct {
	at    time.Time // time of the last deletion's commit (the store's clock)
	n     int       // files deleted
	total int       // files tracked before that scan
}

// tooManyDeletes reports whether deleting deleted of total tracked files
// crosses the mass-delete guard's threshold.
func (s *Store) tooManyDeletes(deleted, total int) bool {
	return float64(deleted) > s.opts.maxDeleteShare*float64(total) && deleted > s.opts.maxDeleteCount
}

// checkMassDeleteLocked applies the mass-delete guard to an operation that
// deletes deleted of total tracked files.
func (s *Store) checkMassDeleteLocked(deleted, total int) error {
	if deleted == 0 || s.opts.allowMassDelete || !s.tooManyDeletes(deleted, total) {
		return nil
	}
	return s.refuseMassDeleteLocked(deleted, total)
}

// refuseMassDeleteLocked returns the *MassDeleteError for deleted of total
// files, or nil when AllowMassDeleteOnce confirmed it (using the permission
// up, and forgetting the local deletions counted so far: the user has seen
// them).
func (s *Store) refuseMassDeleteLocked(deleted, total int) error {
	if s.guard.massDeleteOnce {
		s.guard.massDeleteOnce = false
		s.guard.localDeletes = nil
		s.opts.log.Warn("gitstore: mass delete confirmed", "deleted", deleted, "total", total)
		return nil
	}
	s.opts.log.Warn("gitstore: mass delete refused", "deleted", deleted, "total", total)
	return &MassDeleteError{Deleted: deleted, Total: total}
}

// checkLocalDeleteLocked applies the mass-delete guard to a local scan that
// would commit the deletion of deleted of total tracked files: the scan
// alone, and the scan together with the deletions committed by local scans
// in the last massDeleteWindow (by the store's clock) against the number of
// files tracked when that window started. So a deletion the watcher sees in
// several batches (rm -rf of a big directory), each under the threshold, is
// refused by the batch that takes the sum over it.
func (s *Store) checkLocalDeleteLocked(deleted, total int) error {
	if deleted == 0 || s.opts.allowMassDelete {
		return nil
	}
	if len(s.guard.localDeletes) > 0 {
		s.pruneLocalDeletesLocked(s.opts.now())
	}
	if s.tooManyDeletes(deleted, total) {
		return s.refuseMassDeleteLocked(deleted, total)
	}
	if len(s.guard.localDeletes) == 0 {
		return nil
	}
	sum, start := deleted, s.guard.localDeletes[0].total
	for _, d := range s.guard.localDeletes {
		sum += d.n
	}
	if s.tooManyDeletes(sum, start) {
		return s.refuseMassDeleteLocked(sum, start)
	}
	return nil
}

// recordLocalDeletesLocked remembers that a local scan committed n
// deletions out of total tracked files, the last at time at, for
// checkLocalDeleteLocked.
func (s *Store) recordLocalDeletesLocked(n, total int, at time.Time) {
	if n == 0 || s.opts.allowMassDelete {
		return
	}
	s.pruneLocalDeletesLocked(at)
	s.guard.localDeletes = append(s.guard.localDeletes, localDelete{at: at, n: n, total: total})
}

// pruneLocalDeletesLocked forgets the local deletions committed
// massDeleteWindow or more before now.
func (s *Store) pruneLocalDeletesLocked(now time.Time) {
	i := 0
	for i < len(s.guard.localDeletes) && now.Sub(s.guard.localDeletes[i].at) >= massDeleteWindow {
		i++
	}
	s.guard.localDeletes = s.guard.localDeletes[i:]
}

// IntegratePeer integrates refs/peers/<peer>/main, the head of the last
// bundle applied from peer, into main, exactly as [Store.ApplyBundle] does
// once a bundle is verified and stored: local edits are committed first,
// then fast-forward or merge, and the folder is checked out.
//
// It finishes an ApplyBundle that stopped after storing the bundle: one
// refused by the mass-delete guard (call [Store.AllowMassDeleteOnce] first),
// or one interrupted by a crash. It returns an error when no bundle from peer
// was ever applied, a *[MassDeleteError] when the guard refuses again, and
// an error wrapping [ErrNotInitialized] when the folder guard trips.
func (s *Store) IntegratePeer(ctx context.Context, peer string) (ApplyResult, error) {
	pref, err := peerRef(peer)
	if err != nil {
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
	theirs, err := s.refLocked(pref)
	if err != nil {
		return ApplyResult{}, err
	}
	if theirs.IsZero() {
		return ApplyResult{}, fmt.Errorf("gitstore: no bundle from peer %q was applied", peer)
	}
	if _, err := s.scanLocked(ctx); err != nil {
		return ApplyResult{}, err
	}
	res, err := s.integrateReportLocked(ctx, theirs, peer)
	res.PeerHead = fromPlumbing(theirs)
	return res, err
}
