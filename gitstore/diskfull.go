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

// DiskFullError is returned (wrapping [ErrDiskFull]) when a step of
// ApplyBundle would leave less than Config.Limits.MinFreeBytes free on the
// disk it writes to: checked before the bundle is spooled (when its size is
// known) and before the checkout writes its first file.
type DiskFullError struct {
	Dir  string // the directory whose file system is short of space
	Need int64  // bytes the step needs, MinFreeBytes included
	Free int64  // bytes free for us on that file system
	Step string // "spool" or "checkout"
}

// Error says how much space is missing.
func (e *DiskFullError) Error() string {
	return fmt.Sprintf("gitstore: not enough free disk space for the %s in %q: %s needed and %s free (no space left on device): "+
		"free some space, then sync resumes (or lower gitstore.Config.Limits.MinFreeBytes)",
		e.Step, e.Dir, humanBytes(e.Need), humanBytes(e.Free))
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

// checkFreeSpaceLocked returns a *DiskFullError when writing need bytes of
// files into the folder would leave less than Limits.MinFreeBytes (and 2 %
// of need, for directories, refs and the stat cache) free. A file system
// whose free space cannot be read passes.
func (s *Store) checkFreeSpaceLocked(need int64) error {
	if need <= 0 {
		return nil
	}
	err := checkFree(s.dir, need+need/50, s.opts.limits.MinFreeBytes, "checkout")
	if err != nil {
		s.opts.log.Warn("gitstore: checkout refused: not enough free disk space", "err", err)
	}
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
