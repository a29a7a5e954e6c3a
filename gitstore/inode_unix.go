//go:build unix

package gitstore

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// openNoFollow opens p for reading without following a final symlink
// (ELOOP instead) and without blocking: a FIFO opens at once (and a read
// from it, with no writer, finds EOF), so the caller's fstat can refuse it.
// Regular files ignore O_NONBLOCK.
func openNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// isSymlinkLoop reports whether err is openNoFollow's refusal of a symlink.
func isSymlinkLoop(err error) bool {
	return errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK) // EMLINK: FreeBSD
}
