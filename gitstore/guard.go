package gitstore

import (
	"context"
	"errors"
	"fmt"
)

// The mass-delete guard's defaults (DESIGN.md section 5).
const (
	defaultMaxDeleteShare = 0.5
	defaultMaxDeleteCount = 100
)

// ErrMassDelete is wrapped by every *[MassDeleteError]: a Scan, ApplyBundle or
// IntegratePeer that would delete too many tracked files at once was refused.
var ErrMassDelete = errors.New("gitstore: mass delete refused")

// MassDeleteError is returned (wrapping [ErrMassDelete]) when one operation
// would delete more than Config.MaxDeleteShare of the Total tracked files
// and more than Config.MaxDeleteCount of them. Nothing was committed and no
// file was touched; see the package documentation, section "Guards".
type MassDeleteError struct {
	Deleted int // files the operation would have deleted
	Total   int // files tracked before the operation
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
	s.massDeleteOnce = true
}

// DisallowMassDelete withdraws a permission given by AllowMassDeleteOnce
// that no operation used, so that it cannot let a later, unrelated
// deletion through.
func (s *Store) DisallowMassDelete() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.massDeleteOnce = false
}

// checkMassDeleteLocked applies the mass-delete guard to an operation that
// deletes deleted of total tracked files.
func (s *Store) checkMassDeleteLocked(deleted, total int) error {
	if deleted == 0 || s.allowMassDelete {
		return nil
	}
	if float64(deleted) <= s.maxDeleteShare*float64(total) || deleted <= s.maxDeleteCount {
		return nil
	}
	if s.massDeleteOnce {
		s.massDeleteOnce = false
		s.log.Warn("gitstore: mass delete confirmed", "deleted", deleted, "total", total)
		return nil
	}
	s.log.Warn("gitstore: mass delete refused", "deleted", deleted, "total", total)
	return &MassDeleteError{Deleted: deleted, Total: total}
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
	res, err := s.integrateLocked(ctx, theirs)
	res.PeerHead = fromPlumbing(theirs)
	return res, err
}
