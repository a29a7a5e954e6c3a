//go:build linux || darwin || freebsd

package gitstore

import (
	"errors"
	"syscall"
)

// freeSpace returns the bytes an unprivileged user may still write on the
// file system holding dir; ok is false when it cannot be read.
func freeSpace(dir string) (free uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}

// isNoSpace reports whether err is "no space left on device" or "disk
// quota exceeded".
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
