package gitstore

import (
	"errors"
	"fmt"
)

// ErrDiskFull is wrapped by the error of an operation that stopped because
// the disk holding the folder (or its .peersync) is full, or would be by
// what a checkout has to write. Nothing was lost: the history and the
// folder are as before the operation, or as after a part of it that a
// later run completes (refs move only after the objects and files they
// name are written). Free some space and run the operation again; the sync
// engine retries by itself.
var ErrDiskFull = errors.New("gitstore: not enough free disk space (no space left on device): free some space, then sync resumes")

// DiskFullError is returned (wrapping [ErrDiskFull]) by a checkout that
// would not fit on the folder's disk: checked before the first file is
// written.
type DiskFullError struct {
	Dir  string // the folder
	Need int64  // bytes the checkout would write, with a margin
	Free int64  // bytes free for us on the folder's file system
}

// Error says how much space is missing.
func (e *DiskFullError) Error() string {
	return fmt.Sprintf("gitstore: not enough free disk space in %q: the checkout needs %s and %s is free (no space left on device): free some space, then sync resumes",
		e.Dir, humanBytes(e.Need), humanBytes(e.Free))
}

// Unwrap returns [ErrDiskFull].
func (e *DiskFullError) Unwrap() error { return ErrDiskFull }

// diskFullError wraps err with ErrDiskFull when it is the operating
// system's "no space left on device" (or a disk quota exceeded), so the
// caller sees words a user understands; other errors are returned as they
// are.
func diskFullError(err error) error {
	if err == nil || errors.Is(err, ErrDiskFull) || !isNoSpace(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrDiskFull, err)
}

// checkoutMargin is the space a checkout leaves free beyond what it
// writes: room for the directories, the refs, the stat cache and the next
// scan's objects.
const (
	checkoutMarginBytes = 1 << 20
	checkoutMarginShare = 0.02 // of what is written
)

// checkFreeSpaceLocked returns a *DiskFullError when writing need bytes of
// files into the folder would leave less than the margin free. A file
// system whose free space cannot be read passes.
func (s *Store) checkFreeSpaceLocked(need int64) error {
	if need <= 0 {
		return nil
	}
	free, ok := freeSpace(s.dir)
	if !ok {
		return nil
	}
	want := need + checkoutMarginBytes + int64(float64(need)*checkoutMarginShare)
	if uint64(want) <= free {
		return nil
	}
	err := &DiskFullError{Dir: s.dir, Need: want, Free: int64(min(free, 1<<62))}
	s.log.Warn("gitstore: checkout refused: not enough free disk space", "dir", s.dir, "need", want, "free", free)
	return err
}

// humanBytes formats n as "12.3 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
