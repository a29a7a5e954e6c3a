//go:build !(linux || darwin || freebsd)

package gitstore

import (
	"errors"
	"syscall"
)

// freeSpace cannot read the free space here: the checkout's early check
// passes, and a full disk shows as the write's error.
func freeSpace(string) (uint64, bool) { return 0, false }

// isNoSpace reports whether err is "no space left on device" (Windows:
// ERROR_DISK_FULL, ERROR_HANDLE_DISK_FULL).
func isNoSpace(err error) bool {
	var errno syscall.Errno
	if errors.As(err, &errno) && (errno == 112 || errno == 39) {
		return true
	}
	return errors.Is(err, syscall.ENOSPC)
}
